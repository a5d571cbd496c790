//! The native signature backend (jwt-compact with pure-Rust Ed25519 and P-256): used by unit
//! tests, benchmarks and the key tool. The Worker never links it; it uses WebCrypto, which is
//! several times faster in wasm (see docs/toolchain.md). RS256 uses the `rsa` crate here,
//! which is a native-only dependency and so never in the Worker bundle.

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
            Alg::Rs256 => rsa_native::verify(key, msg, sig),
        }
    }

    /// Like [`NativeSignatures::verify_sync`], and RS256 too (the passkey verifier's tests:
    /// passkeys may be RSA keys; JWT tests keep RS256 WebCrypto-only).
    pub fn verify_with_rsa(
        &self,
        key: &PublicJwk,
        alg: Alg,
        msg: &[u8],
        sig: &[u8],
    ) -> Result<bool, String> {
        use rsa::pkcs1v15::{Signature, VerifyingKey};
        use rsa::signature::Verifier;
        if alg != Alg::Rs256 {
            return self.verify_sync(key, alg, msg, sig);
        }
        let n = rsa::BigUint::from_bytes_be(&field(key, &key.n)?);
        let e = rsa::BigUint::from_bytes_be(&field(key, &key.e)?);
        let pk = rsa::RsaPublicKey::new(n, e).map_err(|e| e.to_string())?;
        let Ok(s) = Signature::try_from(sig) else {
            return Ok(false);
        };
        Ok(VerifyingKey::<sha2::Sha256>::new(pk)
            .verify(msg, &s)
            .is_ok())
    }

    /// Signs synchronously (Ed25519, or RS256 with the `rsa` crate, which only native
    /// builds link).
    pub fn sign_sync(&self, key: &SigningKey, msg: &[u8]) -> Vec<u8> {
        match key.seed() {
            Some(seed) => {
                let kp = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new(*seed));
                Ed25519.sign(&kp.sk, msg).as_bytes().to_vec()
            }
            None => rsa_native::sign(&key.private_jwk(), msg),
        }
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

    async fn verify_uncached(
        &self,
        key: &PublicJwk,
        alg: Alg,
        msg: &[u8],
        sig: &[u8],
    ) -> Result<bool, String> {
        self.verify_with_rsa(key, alg, msg, sig)
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

/// RS256 (RSASSA-PKCS1-v1_5 with SHA-256) through the `rsa` crate.
mod rsa_native {
    use super::PublicJwk;
    use crate::crypto::b64url_decode;
    use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
    use rsa::signature::{SignatureEncoding, Signer, Verifier};
    use rsa::{BigUint, RsaPrivateKey, RsaPublicKey};

    fn int(v: Option<&str>) -> Result<BigUint, String> {
        let bytes = b64url_decode(v.ok_or("missing RSA member")?).map_err(|e| e.to_string())?;
        Ok(BigUint::from_bytes_be(&bytes))
    }

    /// Signs with a private JWK that [`crate::jwt::keys::SigningKey`] has validated.
    pub fn sign(jwk: &serde_json::Value, msg: &[u8]) -> Vec<u8> {
        let m = |k: &str| int(jwk[k].as_str()).expect("validated RSA key");
        let key = RsaPrivateKey::from_components(m("n"), m("e"), m("d"), vec![m("p"), m("q")])
            .expect("validated RSA key");
        SigningKey::<sha2::Sha256>::new(key).sign(msg).to_vec()
    }

    pub fn verify(key: &PublicJwk, msg: &[u8], sig: &[u8]) -> Result<bool, String> {
        let public = RsaPublicKey::new(int(key.n.as_deref())?, int(key.e.as_deref())?)
            .map_err(|e| e.to_string())?;
        let Ok(sig) = Signature::try_from(sig) else {
            return Ok(false);
        };
        Ok(VerifyingKey::<sha2::Sha256>::new(public)
            .verify(msg, &sig)
            .is_ok())
    }

    /// A fresh 2048-bit RSA private JWK (the key tool).
    pub fn generate() -> serde_json::Value {
        use rsa::traits::{PrivateKeyParts, PublicKeyParts};
        let mut rng = rand_core::OsRng;
        let mut key = RsaPrivateKey::new(&mut rng, 2048).expect("RSA key generation");
        key.precompute().expect("RSA CRT values");
        let b = |n: &BigUint| crate::crypto::b64url(&n.to_bytes_be());
        let primes = key.primes();
        let dp = key.dp().expect("precomputed");
        let dq = key.dq().expect("precomputed");
        let qi = key.crt_coefficient().expect("precomputed");
        serde_json::json!({
            "kty": "RSA", "alg": "RS256",
            "n": b(key.n()), "e": b(key.e()), "d": b(key.d()),
            "p": b(&primes[0]), "q": b(&primes[1]), "dp": b(dp), "dq": b(dq), "qi": b(&qi),
        })
    }
}

/// A fresh 2048-bit RSA private JWK (the key tool: RS256 ID tokens).
pub fn generate_rsa_jwk() -> serde_json::Value {
    rsa_native::generate()
}
