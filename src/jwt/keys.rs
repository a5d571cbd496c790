//! Gatehouse's own signing keys (`SIGNING_KEYS`): Ed25519 private JWKs, each with its public
//! half and its `kid` (the RFC 7638 thumbprint, whatever `kid` the JWK itself carries).

use super::jwk::PublicJwk;
use crate::crypto::b64url;
use crate::jwt::jwk::jwk_bytes;

/// One Ed25519 signing key. `Debug` never prints the private half.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    /// The 32-byte seed (`d`).
    seed: [u8; 32],
    pub public: PublicJwk,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("seed", &"[redacted]")
            .finish()
    }
}

impl SigningKey {
    /// Parses a private Ed25519 JWK (`kty: OKP`, `crv: Ed25519`, `d`, `x`).
    pub fn from_private_jwk(v: &serde_json::Value) -> Result<SigningKey, String> {
        if v.get("kty").and_then(|k| k.as_str()) != Some("OKP")
            || v.get("crv").and_then(|k| k.as_str()) != Some("Ed25519")
        {
            return Err("must be an Ed25519 key (kty OKP, crv Ed25519)".into());
        }
        let seed = jwk_bytes::<32>(v, "d")?;
        let x = jwk_bytes::<32>(v, "x")?;
        let mut public = PublicJwk {
            kty: "OKP".into(),
            kid: None,
            alg: Some("EdDSA".into()),
            use_: Some("sig".into()),
            crv: Some("Ed25519".into()),
            x: Some(b64url(&x)),
            y: None,
            n: None,
            e: None,
        };
        let kid = public.thumbprint();
        public.kid = Some(kid.clone());
        Ok(SigningKey { kid, seed, public })
    }

    /// The private seed, for the signature backends only.
    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// The private JWK as WebCrypto imports it.
    pub fn private_jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "x": self.public.x, "d": b64url(&self.seed)
        })
    }
}

/// The public JWKS document for `/.well-known/jwks.json`.
pub fn jwks_document(keys: &[SigningKey]) -> serde_json::Value {
    serde_json::json!({ "keys": keys.iter().map(|k| &k.public).collect::<Vec<_>>() })
}
