//! JSON Web Tokens: parsing with the rules of docs/security.md, 'JWTs' (size cap before
//! parsing, algorithm allow-list per key, no `none`, no `jwk`/`jku`/`x5u`/`x5c` header keys,
//! no unknown `crit`, `typ` kept apart), claim checks with 60 s leeway and an injectable
//! clock, Gatehouse's own access tokens, and the JWK types. Signature math sits behind
//! [`Signatures`]: WebCrypto in the Worker, [`native`] elsewhere.

pub mod compact;
pub mod jwk;
pub mod keys;
#[cfg(not(target_arch = "wasm32"))]
pub mod native;
pub mod remembered;
pub mod validate;

use jwk::PublicJwk;
use keys::SigningKey;

/// Signature primitives: WebCrypto in the Worker, pure Rust natively.
#[allow(async_fn_in_trait)] // single-threaded runtime: the futures need not be Send
pub trait Signatures {
    /// Checks `sig` over `msg` with `key` and `alg`. `Err` for a key the backend cannot use.
    async fn verify(
        &self,
        key: &PublicJwk,
        alg: Alg,
        msg: &[u8],
        sig: &[u8],
    ) -> Result<bool, String>;
    /// Signs `msg` with one of Gatehouse's keys (EdDSA or RS256, by the key).
    async fn sign(&self, key: &SigningKey, msg: &[u8]) -> Result<Vec<u8>, String>;
    /// Like [`Signatures::verify`], for a key that is seen once in a while (a passkey's, one
    /// per person): nothing about the key is kept, so an isolate that serves many people
    /// does not accumulate their keys.
    async fn verify_uncached(
        &self,
        key: &PublicJwk,
        alg: Alg,
        msg: &[u8],
        sig: &[u8],
    ) -> Result<bool, String> {
        self.verify(key, alg, msg, sig).await
    }
}

/// The `typ` of access tokens (RFC 9068): an ID token is never accepted where one is
/// expected, nor one where an ID token is.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECONDS: i64 = 60;

/// Signature algorithms Gatehouse accepts (never `none`, never HMAC for public keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    EdDsa,
    Es256,
    Rs256,
}

impl Alg {
    pub fn from_name(s: &str) -> Option<Alg> {
        match s {
            "EdDSA" | "Ed25519" => Some(Alg::EdDsa),
            "ES256" => Some(Alg::Es256),
            "RS256" => Some(Alg::Rs256),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Alg::EdDsa => "EdDSA",
            Alg::Es256 => "ES256",
            Alg::Rs256 => "RS256",
        }
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwtError {
    /// Longer than [`MAX_TOKEN_BYTES`].
    TooLarge,
    /// Not three base64url parts of JSON.
    Malformed(&'static str),
    /// `alg` is `none`, unknown, or not allowed for the key.
    Algorithm(String),
    /// The header carries a key or key URL (`jwk`, `jku`, `x5u`, `x5c`).
    EmbeddedKey,
    /// `crit` names an extension we do not understand.
    Critical,
    /// `typ` is wrong for this kind of token.
    Type,
    /// No key with this `kid` (after a refetch, where refetching applies).
    UnknownKey,
    /// The signature does not verify.
    Signature,
    /// `iss` is not the expected issuer.
    Issuer,
    /// `aud` does not contain the expected audience.
    Audience,
    /// `exp` has passed (beyond the leeway).
    Expired,
    /// `nbf` or `iat` is in the future (beyond the leeway).
    NotYetValid,
    /// A required claim is missing or has the wrong type.
    Claim(&'static str),
    /// The nonce does not match the login transaction.
    Nonce,
    /// The signature backend failed (the key could not be imported, …).
    Backend(String),
}

impl std::fmt::Display for JwtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwtError::TooLarge => f.write_str("token too large"),
            JwtError::Malformed(m) => write!(f, "malformed token: {m}"),
            JwtError::Algorithm(a) => write!(f, "algorithm not allowed: {a}"),
            JwtError::EmbeddedKey => f.write_str("header carries a key or key URL"),
            JwtError::Critical => f.write_str("unknown critical header"),
            JwtError::Type => f.write_str("wrong token type"),
            JwtError::UnknownKey => f.write_str("unknown key id"),
            JwtError::Signature => f.write_str("bad signature"),
            JwtError::Issuer => f.write_str("wrong issuer"),
            JwtError::Audience => f.write_str("wrong audience"),
            JwtError::Expired => f.write_str("token expired"),
            JwtError::NotYetValid => f.write_str("token not yet valid"),
            JwtError::Claim(c) => write!(f, "missing or invalid claim {c}"),
            JwtError::Nonce => f.write_str("nonce mismatch"),
            JwtError::Backend(m) => write!(f, "signature backend: {m}"),
        }
    }
}
