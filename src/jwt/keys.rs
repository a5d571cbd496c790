//! Gatehouse's own signing keys (`SIGNING_KEYS`): private JWKs, Ed25519 (access tokens, and
//! ID tokens on request) or RSA (RS256 ID tokens of the OpenID Provider), each with its
//! public half and its `kid` (the RFC 7638 thumbprint, whatever `kid` the JWK itself carries).

use super::jwk::PublicJwk;
use super::Alg;
use crate::crypto::{b64url, b64url_decode};
use crate::jwt::jwk::jwk_bytes;

/// The private half of a key. Never printed.
#[derive(Clone)]
enum Private {
    /// The 32-byte Ed25519 seed (`d`).
    Ed25519([u8; 32]),
    /// An RSA private JWK (`n`, `e`, `d`, `p`, `q`, `dp`, `dq`, `qi`), as WebCrypto imports it.
    Rsa(serde_json::Value),
}

/// One signing key. `Debug` never prints the private half.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    private: Private,
    pub public: PublicJwk,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("private", &"[redacted]")
            .finish()
    }
}

/// The members of an RSA private JWK that WebCrypto needs to sign.
const RSA_MEMBERS: [&str; 8] = ["n", "e", "d", "p", "q", "dp", "dq", "qi"];

impl SigningKey {
    /// Parses a private JWK: Ed25519 (`kty: OKP`, `crv: Ed25519`, `d`, `x`) or RSA of at
    /// least 2048 bits with every CRT member.
    pub fn from_private_jwk(v: &serde_json::Value) -> Result<SigningKey, String> {
        match v.get("kty").and_then(|k| k.as_str()) {
            Some("RSA") => return Self::rsa(v),
            Some("OKP") if v.get("crv").and_then(|k| k.as_str()) == Some("Ed25519") => {}
            _ => return Err("must be an Ed25519 key (kty OKP, crv Ed25519) or an RSA key".into()),
        }
        let seed = jwk_bytes::<32>(v, "d")?;
        let x = jwk_bytes::<32>(v, "x")?;
        let public = PublicJwk {
            kty: "OKP".into(),
            crv: Some("Ed25519".into()),
            x: Some(b64url(&x)),
            ..PublicJwk::for_signing("EdDSA")
        };
        Ok(Self::with_kid(public, Private::Ed25519(seed)))
    }

    fn rsa(v: &serde_json::Value) -> Result<SigningKey, String> {
        let mut private = serde_json::Map::new();
        for m in RSA_MEMBERS {
            let s = v
                .get(m)
                .and_then(|x| x.as_str())
                .ok_or(format!("RSA key: missing \"{m}\""))?;
            b64url_decode(s).map_err(|_| format!("RSA key: \"{m}\" is not base64url"))?;
            private.insert(m.into(), s.into());
        }
        private.insert("kty".into(), "RSA".into());
        let public = PublicJwk {
            kty: "RSA".into(),
            n: v["n"].as_str().map(String::from),
            e: v["e"].as_str().map(String::from),
            ..PublicJwk::for_signing("RS256")
        };
        public
            .allowed_alg()
            .map_err(|_| "RSA key: the modulus must be at least 2048 bits")?;
        Ok(Self::with_kid(public, Private::Rsa(private.into())))
    }

    fn with_kid(mut public: PublicJwk, private: Private) -> SigningKey {
        let kid = public.thumbprint();
        public.kid = Some(kid.clone());
        SigningKey {
            kid,
            private,
            public,
        }
    }

    /// The algorithm this key signs with.
    pub fn alg(&self) -> Alg {
        match self.private {
            Private::Ed25519(_) => Alg::EdDsa,
            Private::Rsa(_) => Alg::Rs256,
        }
    }

    /// The private Ed25519 seed, for the native signature backend only.
    pub fn seed(&self) -> Option<&[u8; 32]> {
        match &self.private {
            Private::Ed25519(seed) => Some(seed),
            Private::Rsa(_) => None,
        }
    }

    /// The private JWK as WebCrypto imports it.
    pub fn private_jwk(&self) -> serde_json::Value {
        match &self.private {
            Private::Ed25519(seed) => serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "x": self.public.x, "d": b64url(seed)
            }),
            Private::Rsa(jwk) => jwk.clone(),
        }
    }
}

/// The public JWKS document for `/.well-known/jwks.json`.
pub fn jwks_document(keys: &[SigningKey]) -> serde_json::Value {
    serde_json::json!({ "keys": keys.iter().map(|k| &k.public).collect::<Vec<_>>() })
}
