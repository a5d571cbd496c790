//! Why a token was refused: one code per reason, the same codes as the npm package.

use std::fmt;

/// A refused token (or a key set that cannot be had).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// The request carried no token.
    MissingToken,
    /// Not a compact JWS, undecodable, too large, a forbidden header, or a required claim missing.
    Malformed(String),
    /// The header's `alg` is not `EdDSA` (`none`, `HS256`, …) or not the key's own algorithm.
    AlgNotAllowed(String),
    /// The header's `typ` is not `at+jwt`: some other kind of token (an ID token, say).
    WrongType,
    /// No published key has the token's `kid`, even after the one refetch the cooldown allows.
    UnknownKid(String),
    /// The signature does not verify with the named key.
    BadSignature,
    /// `exp` has passed (beyond the leeway).
    Expired,
    /// `nbf` or `iat` is in the future (beyond the leeway).
    NotYetValid,
    /// `iss` is not exactly the configured issuer.
    WrongIssuer,
    /// `aud` names none of the configured audiences.
    WrongAudience,
    /// The JWKS could not be fetched or read, and no keys were known from before.
    JwksUnavailable(String),
}

impl VerifyError {
    /// The machine-readable code (`"expired"`, `"bad_signature"`, …), as in the npm package.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::MissingToken => "missing_token",
            VerifyError::Malformed(_) => "malformed",
            VerifyError::AlgNotAllowed(_) => "alg_not_allowed",
            VerifyError::WrongType => "wrong_type",
            VerifyError::UnknownKid(_) => "unknown_kid",
            VerifyError::BadSignature => "bad_signature",
            VerifyError::Expired => "expired",
            VerifyError::NotYetValid => "not_yet_valid",
            VerifyError::WrongIssuer => "wrong_issuer",
            VerifyError::WrongAudience => "wrong_audience",
            VerifyError::JwksUnavailable(_) => "jwks_unavailable",
        }
    }

    /// The HTTP status an app should answer: 503 when the keys could not be fetched, else 401.
    pub fn status(&self) -> u16 {
        match self {
            VerifyError::JwksUnavailable(_) => 503,
            _ => 401,
        }
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::MissingToken => write!(f, "no access token"),
            VerifyError::Malformed(why) => write!(f, "malformed token: {why}"),
            VerifyError::AlgNotAllowed(alg) => write!(f, "algorithm {alg:?} is not allowed"),
            VerifyError::WrongType => write!(f, "the token's typ is not at+jwt"),
            VerifyError::UnknownKid(kid) => write!(f, "no published key has kid {kid:?}"),
            VerifyError::BadSignature => write!(f, "the signature does not verify"),
            VerifyError::Expired => write!(f, "the token has expired"),
            VerifyError::NotYetValid => write!(f, "the token is not valid yet"),
            VerifyError::WrongIssuer => write!(f, "the token's issuer is not the expected one"),
            VerifyError::WrongAudience => write!(f, "the token is not meant for this audience"),
            VerifyError::JwksUnavailable(why) => write!(f, "the JWKS is unavailable: {why}"),
        }
    }
}

impl std::error::Error for VerifyError {}
