//! JWTs: the compact form and its JSON, claim checks, JWKs, and Gatehouse's own access tokens.

use crate::gen;
use gatehouse::access::{self, AccessClaims};
use gatehouse::crypto::{b64url, random_bytes};
use gatehouse::jwt::compact;
use gatehouse::jwt::jwk::{parse_set, PublicJwk};
use gatehouse::jwt::keys::SigningKey;
use gatehouse::jwt::native::NativeSignatures;
use gatehouse::jwt::validate::{check_claims, ClaimRules};
use gatehouse::jwt::{Alg, JwtError, LEEWAY_SECONDS};
use gatehouse::testing::{block_on, test_config};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// A header that is often nearly right: a real or wrong `alg`, maybe `kid`/`typ`, sometimes
/// a key-carrying field or `crit`.
fn header() -> impl Strategy<Value = Value> {
    let alg = prop_oneof![
        proptest::sample::select(
            &["EdDSA", "Ed25519", "ES256", "RS256", "none", "HS256", "None"][..]
        )
        .prop_map(Value::from),
        gen::json(),
    ];
    (
        alg,
        proptest::option::of(gen::text()),
        proptest::option::of(gen::text()),
        gen::object(),
    )
        .prop_map(|(alg, kid, typ, extra)| {
            let mut h = extra;
            h.insert("alg".into(), alg);
            if let Some(k) = kid {
                h.insert("kid".into(), k.into());
            }
            if let Some(t) = typ {
                h.insert("typ".into(), t.into());
            }
            Value::Object(h)
        })
}

/// Tokens: three base64url JSON parts (with the odd one replaced), or any string at all.
fn token() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        4 => gen::json().prop_map(|v| b64url(v.to_string().as_bytes())),
        1 => gen::body_bytes().prop_map(|b| b64url(&b)),
        1 => gen::text(),
    ];
    prop_oneof![
        4 => (header(), part.clone(), proptest::collection::vec(any::<u8>(), 0..80))
            .prop_map(|(h, c, s)| format!("{}.{c}.{}", b64url(h.to_string().as_bytes()), b64url(&s))),
        1 => proptest::collection::vec(part, 0..5).prop_map(|p| p.join(".")),
        1 => any::<String>(),
    ]
}

proptest! {
    /// Whatever the token, parsing does not panic, and what it accepts has three parts, a
    /// non-empty signature, a known algorithm and a signing input that is the first two.
    #[test]
    fn fuzz_jwt_compact(t in token()) {
        if let Ok(u) = compact::parse(&t) {
            prop_assert_eq!(t.matches('.').count(), 2);
            prop_assert_eq!(u.signing_input, t.rsplit_once('.').unwrap().0);
            prop_assert!(!u.signature.is_empty());
            prop_assert!(Alg::from_name(&u.header.alg).is_some());
            prop_assert!(u.header.crit.is_none());
        }
        let _ = compact::parse_as::<AccessClaims>(&t);
    }

    /// Claims of any shape: no panic; accepted ones name the issuer, contain the audience,
    /// are unexpired within the leeway and have a subject.
    #[test]
    fn fuzz_jwt_claims(
        base in any::<bool>(),
        over in overrides(&["iss", "aud", "sub", "exp", "iat", "nbf", "azp"]),
        any_claims in gen::object(),
    ) {
        let rules = ClaimRules { issuer: "https://idp", audience: "client", now: 1_700_000_000, require_iat: true };
        // Valid claims with a few set to anything, or claims of any shape.
        let mut c = if base {
            json!({"iss": "https://idp", "aud": ["x", "client"], "sub": "s", "exp": 1_700_000_300, "iat": 1_700_000_000})
                .as_object().unwrap().clone()
        } else {
            any_claims
        };
        c.extend(over);
        if check_claims(&c, &rules).is_ok() {
            prop_assert_eq!(c["iss"].as_str(), Some("https://idp"));
            let exp = c["exp"].as_f64().unwrap() as i64;
            prop_assert!(exp.saturating_add(LEEWAY_SECONDS) >= rules.now);
            prop_assert!(!c["sub"].as_str().unwrap().is_empty());
        }
    }
}

fn b64_of_len() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => Just(32usize),
        1 => 0usize..300,
    ]
    .prop_map(|n| {
        Value::from(b64url(
            &(0..n).map(|i| (i * 7 + 3) as u8).collect::<Vec<_>>(),
        ))
    })
}

/// A JWK that is often nearly right.
fn jwk() -> impl Strategy<Value = Value> {
    let pick = |w: &'static [&'static str]| proptest::sample::select(w).prop_map(Value::from);
    (
        pick(&["OKP", "OKP", "EC", "EC", "RSA", "oct", ""]),
        pick(&["Ed25519", "Ed25519", "P-256", "P-256", "X25519", "P-384"]),
        b64_of_len(),
        b64_of_len(),
        b64_of_len(),
        proptest::option::of(pick(&["sig", "enc", ""])),
        any::<bool>(),
        gen::object(),
    )
        .prop_map(|(kty, crv, x, y, n, use_, private, extra)| {
            let mut k = extra;
            for (f, v) in [
                ("kty", kty),
                ("crv", crv),
                ("x", x),
                ("y", y),
                ("n", n.clone()),
            ] {
                k.entry(f).or_insert(v);
            }
            if let Some(u) = use_ {
                k.insert("use".into(), u);
            }
            if private {
                k.insert("d".into(), n);
            }
            Value::Object(k)
        })
}

proptest! {
    /// JWKS documents and private keys of any shape: no panic; the keys accepted allow one
    /// algorithm that fits their type, have a thumbprint, and a signature check with them on
    /// junk does not panic (and is not a yes).
    #[test]
    fn fuzz_jwk(doc in prop_oneof![
        proptest::collection::vec(prop_oneof![3 => jwk(), 1 => gen::json()], 1..4)
            .prop_map(|keys| json!({ "keys": keys })),
        gen::json(),
    ], msg in proptest::collection::vec(any::<u8>(), 0..40), sig in proptest::collection::vec(any::<u8>(), 0..80)) {
        for k in parse_set(&doc) {
            let alg = k.allowed_alg().unwrap();
            prop_assert!(k.is_for_signatures());
            prop_assert_eq!(k.thumbprint().len(), 43);
            if alg != Alg::Rs256 {
                prop_assert_ne!(NativeSignatures.verify_sync(&k, alg, &msg, &sig), Ok(true));
            }
        }
        if let Some(keys) = doc.get("keys").and_then(|k| k.as_array()) {
            for k in keys {
                let _ = PublicJwk::parse(k);
                let _ = SigningKey::from_private_jwk(k);
            }
        }
    }
}

/// Ways to change one token into another.
#[derive(Debug, Clone)]
enum Tamper {
    /// Replace the character at a position with another base64url character.
    Replace(prop::sample::Index, u8),
    Delete(prop::sample::Index),
    Insert(prop::sample::Index, char),
    Truncate(prop::sample::Index),
    /// Replace one part (0–2) with the base64url of any JSON.
    Part(usize, Value),
    /// Claims re-encoded with one claim changed (the signature no longer fits).
    Claim(String, Value),
}

fn tamper() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        3 => (any::<prop::sample::Index>(), 0u8..64).prop_map(|(i, c)| Tamper::Replace(i, c)),
        1 => any::<prop::sample::Index>().prop_map(Tamper::Delete),
        1 => (any::<prop::sample::Index>(), any::<char>()).prop_map(|(i, c)| Tamper::Insert(i, c)),
        1 => any::<prop::sample::Index>().prop_map(Tamper::Truncate),
        1 => (0usize..3, gen::json()).prop_map(|(p, v)| Tamper::Part(p, v)),
        2 => (proptest::sample::select(&["iss", "aud", "sub", "exp", "iat", "sid", "nbf", "email_verified"][..]), gen::json())
            .prop_map(|(k, v)| Tamper::Claim(k.into(), v)),
    ]
}

const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn apply(t: &str, how: &Tamper) -> String {
    let mut s: Vec<char> = t.chars().collect();
    match how {
        Tamper::Replace(i, c) => {
            let i = i.index(s.len());
            s[i] = B64[*c as usize] as char;
        }
        Tamper::Delete(i) => {
            s.remove(i.index(s.len()));
        }
        Tamper::Insert(i, c) => s.insert(i.index(s.len() + 1), *c),
        Tamper::Truncate(i) => s.truncate(i.index(s.len())),
        Tamper::Part(p, v) => {
            let mut parts: Vec<String> = t.split('.').map(String::from).collect();
            parts[*p] = b64url(v.to_string().as_bytes());
            return parts.join(".");
        }
        Tamper::Claim(k, v) => {
            let parts: Vec<&str> = t.split('.').collect();
            let raw = gatehouse::crypto::b64url_decode(parts[1]).unwrap();
            let mut claims: Map<String, Value> = serde_json::from_slice(&raw).unwrap();
            claims.insert(k.clone(), v.clone());
            let c = b64url(Value::Object(claims).to_string().as_bytes());
            return format!("{}.{c}.{}", parts[0], parts[2]);
        }
    }
    s.into_iter().collect()
}

/// A few of `fields`, each set to a value of the kinds that matter for them (our issuer and
/// others, times around now and at the extremes, the right and wrong types), or to any JSON.
fn overrides(fields: &'static [&'static str]) -> impl Strategy<Value = Map<String, Value>> {
    let now = 1_700_000_000i64;
    let value = prop_oneof![
        3 => proptest::sample::select(&[
            "http://127.0.0.1:8787", "http://127.0.0.1:8787/", "https://127.0.0.1:8787",
            "http://evil.example", "", "usr_1", "EdDSA", "none", "ES256", "at+jwt",
            "application/at+jwt", "AT+JWT", "JWT",
        ][..]).prop_map(Value::from),
        3 => prop_oneof![
            (now - 400..now + 400),
            Just(i64::MAX),
            Just(i64::MIN),
            Just(0i64),
        ].prop_map(Value::from),
        1 => any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        1 => gen::json(),
    ];
    proptest::collection::vec((proptest::sample::select(fields), value), 0..3)
        .prop_map(|kv| kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

proptest! {
    /// A real access token changed in any way never verifies (and the untouched one does).
    #[test]
    fn fuzz_access_token_tampered(how in tamper()) {
        let cfg = test_config();
        let now = 1_700_000_000;
        let claims = AccessClaims::new(&cfg, &"usr_1".into(), &"sid_1".into(), Some("a@b.c".into()), None, now);
        let token = block_on(access::issue(&cfg, &NativeSignatures, &claims)).unwrap();
        prop_assert!(block_on(access::verify(&cfg, &NativeSignatures, &token, now)).is_ok());
        let bad = apply(&token, &how);
        if bad == token {
            return Ok(()); // (a replacement by the same character)
        }
        let r = block_on(access::verify(&cfg, &NativeSignatures, &bad, now));
        prop_assert!(r.is_err(), "tampered token verified: {:?}", how);
    }

    /// Gatehouse's own header and claims with fields of any shape set over them, signed with
    /// Gatehouse's real key: such a token verifies only when its type, issuer, audience,
    /// subject and times are still what Gatehouse issues.
    #[test]
    fn fuzz_access_token_forged_claims(h in overrides(&["typ", "typ", "alg", "kid", "crit", "jwk"]), c in overrides(&["iss", "aud", "sub", "exp", "iat", "nbf", "sid", "email", "email_verified"]), keep_header in any::<bool>()) {
        let cfg = test_config();
        let key = cfg.active_key();
        let now = 1_700_000_000;
        let mut header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": key.kid});
        if !keep_header {
            header.as_object_mut().unwrap().extend(h);
        }
        let own = AccessClaims::new(&cfg, &"usr_1".into(), &"sid_1".into(), Some("a@b.c".into()), None, now);
        let mut claims = serde_json::to_value(&own).unwrap();
        let unchanged = keep_header && c.is_empty();
        claims.as_object_mut().unwrap().extend(c);
        let input = format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
        let sig = NativeSignatures.sign_sync(key, input.as_bytes());
        let token = format!("{input}.{}", b64url(&sig));
        match block_on(access::verify(&cfg, &NativeSignatures, &token, now)) {
            Ok(got) => {
                let typ = header["typ"].as_str().unwrap_or_default().to_ascii_lowercase();
                prop_assert_eq!(typ.trim_start_matches("application/"), "at+jwt");
                prop_assert_eq!(&got.iss, &cfg.public_url);
                prop_assert_eq!(&got.aud, &cfg.public_url);
                prop_assert!(!got.sub.as_str().is_empty());
                prop_assert!(got.exp.saturating_add(LEEWAY_SECONDS) >= now);
                prop_assert!(got.iat <= now + LEEWAY_SECONDS);
                prop_assert!(got.nbf.is_none_or(|n| n <= now + LEEWAY_SECONDS));
            }
            Err(e) => prop_assert!(!unchanged, "Gatehouse's own token refused: {:?}", e),
        }
    }
}

#[test]
fn a_random_key_never_verifies_gatehouse_tokens() {
    // The tamper target's premise: the token it changes is really checked with our key.
    let cfg = test_config();
    let claims = AccessClaims::new(
        &cfg,
        &"usr_1".into(),
        &"sid_1".into(),
        None,
        None,
        1_700_000_000,
    );
    let token = block_on(access::issue(&cfg, &NativeSignatures, &claims)).unwrap();
    let (input, _) = token.rsplit_once('.').unwrap();
    let forged = format!("{input}.{}", b64url(&random_bytes::<64>()));
    assert_eq!(
        block_on(access::verify(
            &cfg,
            &NativeSignatures,
            &forged,
            1_700_000_000
        ))
        .err(),
        Some(JwtError::Signature)
    );
}
