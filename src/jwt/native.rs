//! The native signature backend (jwt-compact with pure-Rust Ed25519 and P-256): used by unit
//! tests, benchmarks and the key tool. The Worker never links it; it uses WebCrypto, which is
//! several times faster in wasm (see docs/toolchain.md). RS256 is WebCrypto-only: natively it
//! reports an unsupported key rather than pull the `rsa` crate in.

use super::jwk::PublicJwk;
use super::keys::SigningKey;
use super::Alg;
use crate::crypto::b64url_decode;
use crate::jwt::Signatures;
use jwt_compact::alg::{Ed25519, Es256, VerifyingKey};
use jwt_compact::{Algorithm, AlgorithmSignature};

/// Pure-Rust signatures through jwt-compact.
#[derive(Debug, Clone, Copy, Default)]
pub struct NativeSignatures;

fn field(key: &PublicJwk, v: &Option<String>) -> Result<Vec<u8>, String> {
    let _ = key;
    v.as_deref()
        .and_then(|s| b64url_decode(s).ok())
        .ok_or_else(|| "missing key field".to_string())
}

impl NativeSignatures {
    /// Verifies synchronously (for benchmarks).
    pub fn verify_sync(
        &self,
        key: &PublicJwk,
        alg: Alg,
        msg: &[u8],
        sig: &[u8],
    ) -> Result<bool, String> {
        // Both are 64 bytes (R || S, r || s); jwt-compact's Ed25519 `try_from_slice` panics on
        // any other length instead of failing.
        if matches!(alg, Alg::EdDsa | Alg::Es256) && sig.len() != 64 {
            return Ok(false);
        }
        match alg {
            Alg::EdDsa => {
                let pk = <ed25519_compact::PublicKey as VerifyingKey<Ed25519>>::from_slice(&field(
                    key, &key.x,
                )?)
                .map_err(|e| e.to_string())?;
                let Ok(s) = <Ed25519 as Algorithm>::Signature::try_from_slice(sig) else {
                    return Ok(false);
                };
                Ok(Ed25519.verify_signature(&s, &pk, msg))
            }
            Alg::Es256 => {
                let mut sec1 = vec![4u8];
                sec1.extend(field(key, &key.x)?);
                sec1.extend(field(key, &key.y)?);
                let vk = <p256::ecdsa::VerifyingKey as VerifyingKey<Es256>>::from_slice(&sec1)
                    .map_err(|e| e.to_string())?;
                let Ok(s) = <Es256 as Algorithm>::Signature::try_from_slice(sig) else {
                    return Ok(false);
                };
                Ok(Es256.verify_signature(&s, &vk, msg))
            }
            Alg::Rs256 => Err("RS256 is verified by WebCrypto only".into()),
        }
    }

    /// Signs synchronously with an Ed25519 key.
    pub fn sign_sync(&self, key: &SigningKey, msg: &[u8]) -> Vec<u8> {
        let kp = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new(*key.seed()));
        Ed25519.sign(&kp.sk, msg).as_bytes().to_vec()
    }
}

impl Signatures for NativeSignatures {
    async fn verify(
        &self,
        key: &PublicJwk,
        alg: Alg,
        msg: &[u8],
        sig: &[u8],
    ) -> Result<bool, String> {
        self.verify_sync(key, alg, msg, sig)
    }

    async fn sign(&self, key: &SigningKey, msg: &[u8]) -> Result<Vec<u8>, String> {
        Ok(self.sign_sync(key, msg))
    }
}

/// A fresh Ed25519 private JWK (the key tool and tests).
pub fn generate_ed25519_jwk() -> serde_json::Value {
    let kp = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new(
        crate::crypto::random_bytes::<32>(),
    ));
    let seed = kp.sk.seed();
    serde_json::json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": crate::crypto::b64url(kp.pk.as_ref()),
        "d": crate::crypto::b64url(seed.as_ref()),
    })
}
