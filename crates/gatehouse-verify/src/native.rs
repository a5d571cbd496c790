//! Signatures natively: jwt-compact's Ed25519 (ed25519-compact).

use jwt_compact::alg::Ed25519;
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{AlgorithmExt, Empty, UntrustedToken};

/// An imported public key.
pub type PublicKey = ed25519_compact::PublicKey;

/// Imports an Ed25519 public JWK.
pub async fn import(jwk: &serde_json::Value) -> Result<PublicKey, String> {
    let jwk: JsonWebKey<'_> = serde_json::from_value(jwk.clone()).map_err(|e| e.to_string())?;
    PublicKey::try_from(&jwk).map_err(|e| e.to_string())
}

/// Whether `token`'s signature verifies with `key` (jwt-compact also insists on `EdDSA`).
pub async fn verify(key: &PublicKey, token: &str, _signed: &[u8], _signature: &[u8]) -> bool {
    let Ok(untrusted) = UntrustedToken::new(token) else {
        return false;
    };
    Ed25519.validator::<Empty>(key).validate(&untrusted).is_ok()
}
