//! The verifier against fixed ceremonies (`vectors.rs`, made by
//! tests/support/gen-webauthn-vectors.mjs with test-only ES256, EdDSA and RS256 keys), each
//! check broken on purpose once: every refusal names the check that refused.

#[allow(dead_code)]
mod vectors {
    include!("vectors.rs");
}

use super::challenge::{self, Purpose};
use super::*;
use crate::crypto::b64url_decode;
use crate::jwt::native::NativeSignatures;
use crate::testing::block_on;
use vectors::{Vector, ORIGIN, RP_ID, VECTORS};

fn d(s: &str) -> Vec<u8> {
    b64url_decode(s).unwrap()
}

fn expect<'a>(challenge: &'a [u8]) -> Expected<'a> {
    Expected {
        rp_id: RP_ID,
        origin: ORIGIN,
        challenge,
        require_uv: false,
    }
}

fn register(v: &Vector) -> Result<NewCredential> {
    let ch = d(v.reg_challenge);
    verify_registration(
        &expect(&ch),
        &d(v.reg_client_data),
        &d(v.attestation_object),
        &d(v.credential_id),
    )
}

/// One assertion of a vector, as the test changes it.
struct Case {
    rp_id: &'static str,
    origin: &'static str,
    challenge: Vec<u8>,
    require_uv: bool,
    auth_data: Vec<u8>,
    client_data: Vec<u8>,
    signature: Vec<u8>,
}

/// The vector's assertion, with `change` applied.
fn assert_with(v: &Vector, change: impl FnOnce(&mut Case)) -> Result<Assertion> {
    let cred = register(v).unwrap();
    let mut c = Case {
        rp_id: RP_ID,
        origin: ORIGIN,
        challenge: d(v.get_challenge),
        require_uv: false,
        auth_data: d(v.auth_data),
        client_data: d(v.get_client_data),
        signature: d(v.signature),
    };
    change(&mut c);
    let exp = Expected {
        rp_id: c.rp_id,
        origin: c.origin,
        challenge: &c.challenge,
        require_uv: c.require_uv,
    };
    block_on(verify_assertion(
        &NativeSignatures,
        &exp,
        &cred.key,
        cred.alg,
        &c.auth_data,
        &c.client_data,
        &c.signature,
    ))
}

#[test]
fn each_algorithm_registers_and_signs_in() {
    let algs = [Alg::Es256, Alg::EdDsa, Alg::Rs256];
    for (v, alg) in VECTORS.iter().zip(algs) {
        let cred = register(v).unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(cred.alg, alg, "{}", v.name);
        assert_eq!(cred.id, d(v.credential_id));
        assert_eq!(cred.sign_count, 1);
        assert_eq!(cred.flags & (BE | BS | AT), BE | BS | AT);
        let a = assert_with(v, |_| {}).unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(a.sign_count, 7, "{}", v.name);
    }
}

#[test]
fn a_tampered_signature_or_signed_byte_is_refused() {
    for v in &VECTORS {
        let flip_sig = assert_with(v, |c| {
            let last = c.signature.len() - 1;
            c.signature[last] ^= 1;
        });
        // A flipped DER byte may also make the ECDSA encoding invalid: refused all the same.
        assert_eq!(flip_sig, Err(WebAuthnError::Signature), "{}", v.name);
        let flip_count = assert_with(v, |c| c.auth_data[36] ^= 1);
        assert_eq!(flip_count, Err(WebAuthnError::Signature), "{}", v.name);
    }
}

#[test]
fn origin_type_challenge_and_rp_id_must_match() {
    let v = &VECTORS[0];
    let cases: [(Result<Assertion>, WebAuthnError); 4] = [
        (
            assert_with(v, |c| c.origin = "http://localhost:8788"),
            WebAuthnError::Origin,
        ),
        (
            assert_with(v, |c| c.rp_id = "example.com"),
            WebAuthnError::RpId,
        ),
        (
            assert_with(v, |c| c.challenge = d(v.reg_challenge)),
            WebAuthnError::Challenge("is not this browser's"),
        ),
        (
            assert_with(v, |c| c.client_data = d(v.reg_client_data)),
            WebAuthnError::Type,
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got, Err(want));
    }
}

#[test]
fn a_cross_origin_frame_and_a_lookalike_origin_are_refused() {
    let ch = [7u8; 32];
    let cd = |origin: &str, cross: bool| {
        serde_json::json!({"type": "webauthn.get", "challenge": crate::crypto::b64url(&ch),
            "origin": origin, "crossOrigin": cross})
        .to_string()
    };
    let check = |s: String| check_client_data(s.as_bytes(), "webauthn.get", &expect(&ch));
    assert_eq!(check(cd(ORIGIN, false)), Ok(()));
    assert_eq!(check(cd(ORIGIN, true)), Err(WebAuthnError::Origin));
    for bad in [
        "http://localhost:8787/",
        "https://localhost:8787",
        "http://localhost",
        "http://evil.localhost:8787",
    ] {
        assert_eq!(check(cd(bad, false)), Err(WebAuthnError::Origin), "{bad}");
    }
    assert_eq!(
        check("{\"type\":\"webauthn.get\"}".into()),
        Err(WebAuthnError::Malformed("clientDataJSON"))
    );
}

#[test]
fn user_presence_is_required_and_verification_when_configured() {
    let v = &VECTORS[1];
    let no_up = assert_with(v, |c| c.auth_data[32] &= !UP);
    assert_eq!(no_up, Err(WebAuthnError::UserPresence));
    let no_uv_required = assert_with(v, |c| {
        c.require_uv = true;
        c.auth_data[32] &= !UV;
    });
    assert_eq!(no_uv_required, Err(WebAuthnError::UserVerification));
    // Without the requirement the flag passes; the changed byte then fails the signature.
    let no_uv_preferred = assert_with(v, |c| c.auth_data[32] &= !UV);
    assert_eq!(no_uv_preferred, Err(WebAuthnError::Signature));
    let with_uv_required = assert_with(v, |c| c.require_uv = true);
    assert!(with_uv_required.is_ok());
}

#[test]
fn registration_refuses_another_credential_id_and_trailing_bytes() {
    let v = &VECTORS[2]; // RS256: an authData long enough for a 2-byte CBOR length
    let ch = d(v.reg_challenge);
    let reg =
        |att: &[u8], id: &[u8]| verify_registration(&expect(&ch), &d(v.reg_client_data), att, id);
    let att = d(v.attestation_object);
    assert_eq!(
        reg(&att, b"another id"),
        Err(WebAuthnError::Malformed("credential id"))
    );
    // authData with one byte more, its CBOR byte-string length raised to match.
    let ad = authdata::auth_data_of_attestation(&att).unwrap().to_vec();
    let mut longer = ad.clone();
    longer.push(0);
    let prefix = &att[..att.len() - ad.len() - 3];
    let rebuilt = |ad: &[u8]| {
        let mut b = prefix.to_vec();
        b.extend_from_slice(&[0x59, (ad.len() >> 8) as u8, ad.len() as u8]);
        b.extend_from_slice(ad);
        b
    };
    assert_eq!(
        att[att.len() - ad.len() - 3],
        0x59,
        "authData has a 2-byte length"
    );
    assert!(reg(&rebuilt(&ad), &d(v.credential_id)).is_ok());
    assert_eq!(
        reg(&rebuilt(&longer), &d(v.credential_id)),
        Err(WebAuthnError::Malformed(
            "authenticator data (trailing bytes)"
        ))
    );
    assert_eq!(
        reg(&att[..att.len() - 1], &d(v.credential_id)),
        Err(WebAuthnError::Malformed("CBOR"))
    );
    let get_type = verify_registration(
        &expect(&ch),
        &d(v.get_client_data),
        &att,
        &d(v.credential_id),
    );
    assert_eq!(get_type, Err(WebAuthnError::Type));
}

#[test]
fn cose_keys_other_than_the_three_algorithms_are_refused() {
    let x = [0x21u8; 32];
    let mut okp = vec![0xa4, 0x01, 0x01, 0x03, 0x27, 0x20, 0x06, 0x21, 0x58, 0x20];
    okp.extend_from_slice(&x);
    let parse = |b: &[u8]| authdata::cose_key(&mut super::cbor::Decoder::new(b)).map(|k| k.1);
    assert_eq!(parse(&okp), Ok(Alg::EdDsa));
    let mut es384 = okp.clone();
    es384[4] = 0x38; // alg -35 (ES384): one more byte, 0x22
    es384.insert(5, 0x22);
    assert_eq!(parse(&es384), Err(WebAuthnError::Algorithm));
    let mut x25519 = okp.clone();
    x25519[6] = 0x04; // crv X25519 (a key-agreement curve)
    assert_eq!(parse(&x25519), Err(WebAuthnError::Algorithm));
    let mut twice = okp.clone();
    twice[0] = 0xa5;
    twice.extend_from_slice(&[0x03, 0x27]); // alg given twice
    assert_eq!(parse(&twice), Err(WebAuthnError::Malformed("COSE key")));
    let short = &okp[..okp.len() - 1];
    assert_eq!(parse(short), Err(WebAuthnError::Malformed("CBOR")));
}

#[test]
fn ecdsa_der_signatures_become_r_and_s() {
    let mut der = vec![0x30, 0x45, 0x02, 0x21, 0x00];
    der.extend_from_slice(&[0x80; 32]);
    der.extend_from_slice(&[0x02, 0x20]);
    der.extend_from_slice(&[0x11; 32]);
    let raw = der::ecdsa_p256_to_raw(&der).unwrap();
    assert_eq!(&raw[..32], &[0x80; 32]);
    assert_eq!(&raw[32..], &[0x11; 32]);
    // A short integer is padded on the left.
    let small = [0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x07];
    let raw = der::ecdsa_p256_to_raw(&small).unwrap();
    assert_eq!((raw[31], raw[63], raw[0]), (5, 7, 0));
    let bad: [&[u8]; 5] = [
        &[0x30, 0x06, 0x02, 0x01, 0x85, 0x02, 0x01, 0x07], // negative r
        &[0x30, 0x07, 0x02, 0x02, 0x00, 0x05, 0x02, 0x01, 0x07], // non-minimal r
        &[0x30, 0x07, 0x02, 0x01, 0x05, 0x02, 0x01, 0x07, 0x00], // trailing byte
        &[0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x02, 0x07], // s runs past the end
        &[0x31, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x07], // not a SEQUENCE
    ];
    for b in bad {
        assert_eq!(der::ecdsa_p256_to_raw(b), None, "{b:x?}");
    }
}

#[test]
fn challenges_are_bound_to_purpose_user_time_and_the_key() {
    let key = crate::crypto::Secret::new("k".repeat(32));
    let (bytes, cookie) = challenge::issue(&key, Purpose::Register, "usr_1", 1000);
    assert_eq!(bytes.len(), 32);
    let read = |c: &str, p, now| challenge::read(&key, Some(c), p, now);
    let ok = read(&cookie, Purpose::Register, 1000 + challenge::TTL).unwrap();
    assert_eq!((ok.bytes, ok.user.as_str()), (bytes, "usr_1"));
    assert_eq!(
        read(&cookie, Purpose::Register, 1001 + challenge::TTL),
        Err(WebAuthnError::Challenge("expired"))
    );
    assert_eq!(
        read(&cookie, Purpose::Login, 1000),
        Err(WebAuthnError::Challenge("for another ceremony"))
    );
    let other_user = cookie.replace("usr_1", "usr_2");
    assert_eq!(
        read(&other_user, Purpose::Register, 1000),
        Err(WebAuthnError::Challenge("not issued here"))
    );
    let other_key = crate::crypto::Secret::new("j".repeat(32));
    assert!(challenge::read(&other_key, Some(&cookie), Purpose::Register, 1000).is_err());
    assert_eq!(
        challenge::read(&key, None, Purpose::Register, 1000),
        Err(WebAuthnError::Challenge("missing in this browser"))
    );
}

#[test]
fn a_sign_count_that_does_not_grow_is_a_regression_unless_both_are_zero() {
    assert!(!counter_regressed(0, 0));
    assert!(!counter_regressed(5, 6));
    assert!(!counter_regressed(0, 1));
    assert!(counter_regressed(5, 5));
    assert!(counter_regressed(5, 4));
    assert!(counter_regressed(5, 0));
}
