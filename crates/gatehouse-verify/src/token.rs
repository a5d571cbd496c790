//! Splitting a compact JWS into header, claims and signature, before anything is trusted.

use crate::claims::Claims;
use crate::VerifyError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;

/// Tokens larger than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The header fields the checks read. Fields that let a token bring or point at its own key
/// are captured only to be refused.
#[derive(Debug, Deserialize)]
pub(crate) struct Header {
    pub alg: String,
    #[serde(default)]
    pub typ: Option<String>,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    jwk: Option<serde_json::Value>,
    #[serde(default)]
    jku: Option<serde_json::Value>,
    #[serde(default)]
    x5u: Option<serde_json::Value>,
    #[serde(default)]
    x5c: Option<serde_json::Value>,
    /// No extension is understood here, so any `crit` is refused (RFC 7515 section 4.1.11).
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

impl Header {
    /// The first header parameter this verifier refuses to see, if any.
    pub fn forbidden_parameter(&self) -> Option<&'static str> {
        [
            ("jwk", self.jwk.is_some()),
            ("jku", self.jku.is_some()),
            ("x5u", self.x5u.is_some()),
            ("x5c", self.x5c.is_some()),
            ("crit", self.crit.is_some()),
        ]
        .into_iter()
        .find_map(|(name, present)| present.then_some(name))
    }
}

/// A token taken apart, nothing verified yet.
pub(crate) struct Parts<'a> {
    pub header: Header,
    pub claims_b64: &'a str,
    /// `header.claims`: what the signature covers.
    pub signed: &'a str,
    pub signature: Vec<u8>,
}

fn decode(segment: &str, what: &str) -> Result<Vec<u8>, VerifyError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| VerifyError::Malformed(format!("{what} is not base64url")))
}

pub(crate) fn split(token: &str) -> Result<Parts<'_>, VerifyError> {
    if token.is_empty() {
        return Err(VerifyError::MissingToken);
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(VerifyError::Malformed(format!(
            "over {MAX_TOKEN_BYTES} bytes"
        )));
    }
    let mut it = token.split('.');
    let (Some(h), Some(c), Some(s), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(VerifyError::Malformed("not a compact JWS".into()));
    };
    let header = serde_json::from_slice(&decode(h, "the header")?)
        .map_err(|e| VerifyError::Malformed(format!("header: {e}")))?;
    Ok(Parts {
        header,
        claims_b64: c,
        signed: &token[..h.len() + 1 + c.len()],
        signature: decode(s, "the signature")?,
    })
}

/// The claims, once the signature has been checked.
pub(crate) fn claims(parts: &Parts<'_>) -> Result<Claims, VerifyError> {
    serde_json::from_slice(&decode(parts.claims_b64, "the claims")?)
        .map_err(|e| VerifyError::Malformed(format!("claims: {e}")))
}
