//! WebAuthn (passkeys), verified by Gatehouse itself: the registration and authentication
//! ceremonies of the W3C WebAuthn Level 3 recommendation, for the `passkey` provider kind.
//! Pure logic over [`Signatures`]: parsing ([`authdata`], CBOR through [`cbor`]), the
//! checks of each ceremony (client data `type`, challenge, exact origin, `rpIdHash`, user
//! presence and verification) and the signature over `authenticatorData ||
//! SHA-256(clientDataJSON)`. No attestation statement is verified or trusted: Gatehouse asks
//! for `attestation: "none"` and keeps only the credential's public key.

pub mod authdata;
pub mod cbor;
pub mod challenge;
pub mod der;
pub mod store;
#[cfg(test)]
mod tests;

use crate::crypto::{b64url_decode, ct_eq, sha256};
use crate::jwt::jwk::PublicJwk;
use crate::jwt::Alg;
use crate::jwt::Signatures;
use authdata::AuthData;
use serde_json::Value;

/// Flag bits of the authenticator data.
pub const UP: u8 = 0x01;
pub const UV: u8 = 0x04;
pub const BE: u8 = 0x08;
pub const BS: u8 = 0x10;
pub const AT: u8 = 0x40;
pub const ED: u8 = 0x80;

/// Why a ceremony was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebAuthnError {
    /// Not the WebAuthn JSON, base64url or CBOR expected; says which part.
    Malformed(&'static str),
    /// `clientDataJSON.type` is not this ceremony's.
    Type,
    /// The challenge is missing, expired, spent, or not the one this browser was given.
    Challenge(&'static str),
    /// `origin` is not exactly Gatehouse's origin, or the call came from a cross-origin frame.
    Origin,
    /// `rpIdHash` is not SHA-256 of the RP ID.
    RpId,
    /// The authenticator did not report user presence.
    UserPresence,
    /// User verification is required and the authenticator did not report it.
    UserVerification,
    /// A key type or algorithm other than ES256, EdDSA and RS256.
    Algorithm,
    /// The signature does not verify with the stored key.
    Signature,
    /// The signature backend could not use the key (the detail is for the log).
    Backend(String),
}

impl std::fmt::Display for WebAuthnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WebAuthnError::Malformed(what) => write!(f, "malformed {what}"),
            WebAuthnError::Type => f.write_str("wrong ceremony type"),
            WebAuthnError::Challenge(why) => write!(f, "challenge {why}"),
            WebAuthnError::Origin => f.write_str("wrong origin"),
            WebAuthnError::RpId => f.write_str("wrong RP ID"),
            WebAuthnError::UserPresence => f.write_str("user presence missing"),
            WebAuthnError::UserVerification => f.write_str("user verification required"),
            WebAuthnError::Algorithm => f.write_str("unsupported key or algorithm"),
            WebAuthnError::Signature => f.write_str("bad signature"),
            WebAuthnError::Backend(_) => f.write_str("the passkey's key cannot be used"),
        }
    }
}

impl From<WebAuthnError> for crate::error::AppError {
    fn from(e: WebAuthnError) -> Self {
        crate::error::AppError::BadRequest(format!("Passkey refused: {e}."))
    }
}

type Result<T> = std::result::Result<T, WebAuthnError>;

/// What a ceremony must match: Gatehouse's settings and the challenge of this browser.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub rp_id: &'a str,
    /// `PUBLIC_URL`'s origin.
    pub origin: &'a str,
    pub challenge: &'a [u8],
    pub require_uv: bool,
}

/// A base64url field of the WebAuthn JSON, decoded.
pub fn field(value: &str, what: &'static str) -> Result<Vec<u8>> {
    b64url_decode(value).map_err(|_| WebAuthnError::Malformed(what))
}

/// Checks the client data of a `webauthn.create` or `webauthn.get` ceremony. (Read as a
/// `Value`, not a derived struct: one more struct deserializer costs kilobytes of bundle.)
pub fn check_client_data(raw: &[u8], ty: &str, exp: &Expected) -> Result<()> {
    let malformed = WebAuthnError::Malformed("clientDataJSON");
    let cd: Value = serde_json::from_slice(raw).map_err(|_| malformed.clone())?;
    let text = |k: &str| cd.get(k).and_then(Value::as_str).ok_or(malformed.clone());
    if text("type")? != ty {
        return Err(WebAuthnError::Type);
    }
    let challenge = field(text("challenge")?, "challenge")?;
    if !ct_eq(&challenge, exp.challenge) {
        return Err(WebAuthnError::Challenge("is not this browser's"));
    }
    let same_origin_frame = matches!(cd.get("crossOrigin"), None | Some(Value::Bool(false)));
    if text("origin")? != exp.origin || !same_origin_frame {
        return Err(WebAuthnError::Origin);
    }
    Ok(())
}

/// Checks `rpIdHash` and the user presence / verification flags.
pub fn check_auth_data(ad: &AuthData, exp: &Expected) -> Result<()> {
    if !ct_eq(ad.rp_id_hash, &sha256(exp.rp_id.as_bytes())) {
        return Err(WebAuthnError::RpId);
    }
    if ad.flags & UP == 0 {
        return Err(WebAuthnError::UserPresence);
    }
    if exp.require_uv && ad.flags & UV == 0 {
        return Err(WebAuthnError::UserVerification);
    }
    Ok(())
}

/// A credential that passed registration.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCredential {
    pub id: Vec<u8>,
    pub key: PublicJwk,
    pub alg: Alg,
    pub sign_count: u32,
    pub flags: u8,
}

/// Verifies a registration (`navigator.credentials.create`): client data, then the
/// authenticator data inside the attestation object, whose attested credential must be the
/// one the browser names (`raw_id`).
pub fn verify_registration(
    exp: &Expected,
    client_data_json: &[u8],
    attestation_object: &[u8],
    raw_id: &[u8],
) -> Result<NewCredential> {
    check_client_data(client_data_json, "webauthn.create", exp)?;
    let auth_data = authdata::auth_data_of_attestation(attestation_object)?;
    let ad = AuthData::parse(auth_data)?;
    check_auth_data(&ad, exp)?;
    let cred = ad
        .credential
        .ok_or(WebAuthnError::Malformed("attested credential data"))?;
    if cred.id != raw_id {
        return Err(WebAuthnError::Malformed("credential id"));
    }
    Ok(NewCredential {
        id: cred.id.to_vec(),
        key: cred.key,
        alg: cred.alg,
        sign_count: ad.sign_count,
        flags: ad.flags,
    })
}

/// What a verified assertion reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assertion {
    pub sign_count: u32,
    pub flags: u8,
}

/// Verifies an assertion (`navigator.credentials.get`) with the stored key.
pub async fn verify_assertion<S: Signatures>(
    sig: &S,
    exp: &Expected<'_>,
    key: &PublicJwk,
    alg: Alg,
    auth_data: &[u8],
    client_data_json: &[u8],
    signature: &[u8],
) -> Result<Assertion> {
    check_client_data(client_data_json, "webauthn.get", exp)?;
    let ad = AuthData::parse(auth_data)?;
    check_auth_data(&ad, exp)?;
    let mut signed = auth_data.to_vec();
    signed.extend_from_slice(&sha256(client_data_json));
    // WebAuthn's ECDSA signatures are ASN.1 DER; WebCrypto takes r || s.
    let raw_sig = match alg {
        Alg::Es256 => der::ecdsa_p256_to_raw(signature).ok_or(WebAuthnError::Signature)?,
        _ => signature.to_vec(),
    };
    match sig.verify_uncached(key, alg, &signed, &raw_sig).await {
        Ok(true) => Ok(Assertion {
            sign_count: ad.sign_count,
            flags: ad.flags,
        }),
        Ok(false) => Err(WebAuthnError::Signature),
        Err(e) => Err(WebAuthnError::Backend(e)),
    }
}

/// Whether a sign count went backwards (or stood still) where the authenticator counts: a
/// sign of a cloned authenticator, recorded as an event. Both zero: it does not count.
pub fn counter_regressed(stored: u32, presented: u32) -> bool {
    (stored != 0 || presented != 0) && presented <= stored
}
