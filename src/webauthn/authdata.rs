//! The binary parts of a ceremony: the attestation object (CBOR), the authenticator data
//! (fixed layout, then CBOR) and the credential's COSE public key (RFC 9053), turned into
//! the [`PublicJwk`] that the signature backend imports. CBOR is read with a small
//! decoder ([`cbor`]), with no allocation: every length is checked against the input it is read from.

use super::cbor::{self, Decoder};
use super::{Result, WebAuthnError, AT, ED};
use crate::crypto::b64url;
use crate::jwt::jwk::PublicJwk;
use crate::jwt::Alg;

/// Longest credential id WebAuthn allows.
pub const MAX_CREDENTIAL_ID: usize = 1023;

fn cbor(_: cbor::Malformed) -> WebAuthnError {
    WebAuthnError::Malformed("CBOR")
}

/// Authenticator data: RP ID hash, flags, sign count and, at registration, the attested
/// credential.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthData<'a> {
    pub rp_id_hash: &'a [u8],
    pub flags: u8,
    pub sign_count: u32,
    pub credential: Option<AttestedCredential<'a>>,
}

/// The credential an authenticator attests at registration.
#[derive(Debug, Clone, PartialEq)]
pub struct AttestedCredential<'a> {
    pub id: &'a [u8],
    pub key: PublicJwk,
    pub alg: Alg,
}

impl<'a> AuthData<'a> {
    /// Parses authenticator data; anything after the parts its flags announce is refused.
    pub fn parse(b: &'a [u8]) -> Result<AuthData<'a>> {
        let short = WebAuthnError::Malformed("authenticator data");
        if b.len() < 37 {
            return Err(short);
        }
        let flags = b[32];
        let sign_count = u32::from_be_bytes([b[33], b[34], b[35], b[36]]);
        let mut rest = &b[37..];
        let credential = if flags & AT != 0 {
            // AAGUID (16), credential id length (2), credential id, COSE key.
            if rest.len() < 18 {
                return Err(short);
            }
            let len = u16::from_be_bytes([rest[16], rest[17]]) as usize;
            if len == 0 || len > MAX_CREDENTIAL_ID || rest.len() < 18 + len {
                return Err(WebAuthnError::Malformed("credential id"));
            }
            let id = &rest[18..18 + len];
            let mut d = Decoder::new(&rest[18 + len..]);
            let (key, alg) = cose_key(&mut d)?;
            rest = &rest[18 + len + d.position()..];
            Some(AttestedCredential { id, key, alg })
        } else {
            None
        };
        if flags & ED != 0 {
            let mut d = Decoder::new(rest);
            d.skip().map_err(cbor)?;
            rest = &rest[d.position()..];
        }
        if !rest.is_empty() {
            return Err(WebAuthnError::Malformed(
                "authenticator data (trailing bytes)",
            ));
        }
        Ok(AuthData {
            rp_id_hash: &b[..32],
            flags,
            sign_count,
            credential,
        })
    }
}

/// The `authData` of an attestation object `{fmt, attStmt, authData}`. The statement is
/// skipped, whatever its format: no attestation is trusted or needed.
pub fn auth_data_of_attestation(b: &[u8]) -> Result<&[u8]> {
    let mut d = Decoder::new(b);
    let n = d.map().map_err(cbor)?;
    let mut auth_data = None;
    for _ in 0..n {
        match d.str().map_err(cbor)? {
            "authData" if auth_data.is_none() => auth_data = Some(d.bytes().map_err(cbor)?),
            "authData" => return Err(WebAuthnError::Malformed("attestation object")),
            _ => d.skip().map_err(cbor)?,
        }
    }
    auth_data.ok_or(WebAuthnError::Malformed("attestation object"))
}

/// One COSE_Key member, refusing a label given twice.
fn once<T>(slot: &mut Option<T>, v: T) -> Result<()> {
    match slot.replace(v) {
        None => Ok(()),
        Some(_) => Err(WebAuthnError::Malformed("COSE key")),
    }
}

/// A COSE_Key as a JWK and its algorithm: EC2 P-256 with ES256 (-7), OKP Ed25519 with
/// EdDSA (-8), RSA with RS256 (-257). Anything else is refused.
pub fn cose_key(d: &mut Decoder) -> Result<(PublicJwk, Alg)> {
    let n = d.map().map_err(cbor)?;
    let (mut kty, mut alg, mut crv) = (None, None, None);
    let (mut m1, mut m2, mut m3) = (None, None, None);
    for _ in 0..n {
        match d.i64().map_err(cbor)? {
            1 => once(&mut kty, d.i64().map_err(cbor)?)?,
            3 => once(&mut alg, d.i64().map_err(cbor)?)?,
            // -1 is `crv` for EC2 and OKP keys and `n` (bytes) for RSA keys.
            -1 if d.peek_major().map_err(cbor)? == cbor::BYTES => {
                once(&mut m1, d.bytes().map_err(cbor)?)?
            }
            -1 => once(&mut crv, d.i64().map_err(cbor)?)?,
            -2 => once(&mut m2, d.bytes().map_err(cbor)?)?,
            -3 => once(&mut m3, d.bytes().map_err(cbor)?)?,
            _ => d.skip().map_err(cbor)?,
        }
    }
    let jwk = |kty: &str, crv: Option<&str>| PublicJwk {
        kty: kty.into(),
        kid: None,
        alg: None,
        use_: None,
        crv: crv.map(String::from),
        x: None,
        y: None,
        n: None,
        e: None,
    };
    let (key, want) = match (kty, alg, crv, m1, m2, m3) {
        (Some(2), Some(-7), Some(1), None, Some(x), Some(y)) => {
            let mut k = jwk("EC", Some("P-256"));
            (k.x, k.y) = (Some(b64url(x)), Some(b64url(y)));
            (k, Alg::Es256)
        }
        (Some(1), Some(-8), Some(6), None, Some(x), None) => {
            let mut k = jwk("OKP", Some("Ed25519"));
            k.x = Some(b64url(x));
            (k, Alg::EdDsa)
        }
        (Some(3), Some(-257), None, Some(n), Some(e), None) => {
            let mut k = jwk("RSA", None);
            (k.n, k.e) = (Some(b64url(n)), Some(b64url(e)));
            (k, Alg::Rs256)
        }
        _ => return Err(WebAuthnError::Algorithm),
    };
    // The lengths each type needs (32-byte coordinates, RSA of 2048 bits or more).
    match key.allowed_alg() {
        Ok(a) if a == want => Ok((key, want)),
        _ => Err(WebAuthnError::Algorithm),
    }
}
