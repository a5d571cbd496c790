//! Public JSON Web Keys (RFC 7517): parsing one key at a time (so one unknown key type does
//! not reject a whole set), the algorithm each key allows, and RFC 7638 thumbprints.

use super::Alg;
use crate::crypto::{b64url_decode, sha256_b64url};
use serde::Serialize;

/// A public key Gatehouse can verify with.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct PublicJwk {
    pub kty: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
}

fn decoded_len(s: &Option<String>) -> Option<usize> {
    s.as_deref()
        .and_then(|v| b64url_decode(v).ok())
        .map(|b| b.len())
}

impl PublicJwk {
    /// An empty key of no type for `alg`, for signatures (fill in `kty` and the members).
    pub fn for_signing(alg: &str) -> PublicJwk {
        PublicJwk {
            kty: String::new(),
            kid: None,
            alg: Some(alg.into()),
            use_: Some("sig".into()),
            crv: None,
            x: None,
            y: None,
            n: None,
            e: None,
        }
    }

    /// Parses one JWK, refusing private keys and shapes we cannot verify with.
    pub fn parse(v: &serde_json::Value) -> Result<PublicJwk, String> {
        if v.get("d").is_some() {
            return Err("a private key where a public key belongs".into());
        }
        let f = crate::fields::Fields::of(v)?;
        let k = PublicJwk {
            kty: f.str("kty")?,
            kid: f.opt_str("kid")?,
            alg: f.opt_str("alg")?,
            use_: f.opt_str("use")?,
            crv: f.opt_str("crv")?,
            x: f.opt_str("x")?,
            y: f.opt_str("y")?,
            n: f.opt_str("n")?,
            e: f.opt_str("e")?,
        };
        k.allowed_alg()?;
        Ok(k)
    }

    /// The one algorithm this key may be used with: its `alg` if set, else its type's.
    pub fn allowed_alg(&self) -> Result<Alg, String> {
        let by_type = match (self.kty.as_str(), self.crv.as_deref()) {
            ("OKP", Some("Ed25519")) if decoded_len(&self.x) == Some(32) => Alg::EdDsa,
            ("EC", Some("P-256"))
                if decoded_len(&self.x) == Some(32) && decoded_len(&self.y) == Some(32) =>
            {
                Alg::Es256
            }
            ("RSA", _)
                if decoded_len(&self.n).unwrap_or(0) >= 256 && decoded_len(&self.e).is_some() =>
            {
                Alg::Rs256
            }
            _ => {
                return Err(format!(
                    "unsupported or malformed key ({} {:?})",
                    self.kty, self.crv
                ))
            }
        };
        match self.alg.as_deref() {
            None => Ok(by_type),
            Some(a) if Alg::from_name(a) == Some(by_type) => Ok(by_type),
            Some(a) => Err(format!("key alg {a} does not fit its type")),
        }
    }

    /// Whether the key may sign (a `use` other than `sig` rules it out).
    pub fn is_for_signatures(&self) -> bool {
        self.use_.as_deref().map(|u| u == "sig").unwrap_or(true)
    }

    /// RFC 7638 thumbprint (base64url SHA-256 of the required members in order).
    pub fn thumbprint(&self) -> String {
        // The canonical JSON written out directly (members in lexicographic order, no
        // spaces), each value escaped by serde_json: far less code in wasm than building a
        // JSON map to serialize.
        let q = |v: Option<&str>| serde_json::to_string(v.unwrap_or_default()).unwrap_or_default();
        let (crv, x) = (q(self.crv.as_deref()), q(self.x.as_deref()));
        let canonical = match self.kty.as_str() {
            "OKP" => format!(r#"{{"crv":{crv},"kty":"OKP","x":{x}}}"#),
            "EC" => format!(
                r#"{{"crv":{crv},"kty":"EC","x":{x},"y":{}}}"#,
                q(self.y.as_deref())
            ),
            kty => format!(
                r#"{{"e":{},"kty":{},"n":{}}}"#,
                q(self.e.as_deref()),
                q(Some(kty)),
                q(self.n.as_deref())
            ),
        };
        sha256_b64url(canonical.as_bytes())
    }
}

/// The usable signature keys of a JWKS document; keys we cannot use are skipped.
pub fn parse_set(doc: &serde_json::Value) -> Vec<PublicJwk> {
    doc.get("keys")
        .and_then(|k| k.as_array())
        .map(|keys| {
            keys.iter()
                .filter_map(|k| PublicJwk::parse(k).ok())
                .filter(|k| k.is_for_signatures())
                .collect()
        })
        .unwrap_or_default()
}

/// Decodes a base64url field of a JWK into exactly `N` bytes.
pub fn jwk_bytes<const N: usize>(v: &serde_json::Value, field: &str) -> Result<[u8; N], String> {
    let s = v
        .get(field)
        .and_then(|x| x.as_str())
        .ok_or(format!("missing \"{field}\""))?;
    let bytes = b64url_decode(s).map_err(|_| format!("\"{field}\" is not base64url"))?;
    bytes
        .try_into()
        .map_err(|_| format!("\"{field}\" must be {N} bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_matches_rfc8037_example() {
        // RFC 8037 appendix A.3.
        let k = PublicJwk::parse(&serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        }))
        .unwrap();
        assert_eq!(
            k.thumbprint(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
        assert_eq!(k.allowed_alg().unwrap(), Alg::EdDsa);
    }

    #[test]
    fn thumbprints_are_the_canonical_json_of_rfc7638() {
        // RFC 7638 section 3.1's RSA example.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let rsa = PublicJwk::parse(
            &serde_json::json!({"kty": "RSA", "n": n, "e": "AQAB", "alg": "RS256"}),
        )
        .unwrap();
        assert_eq!(
            rsa.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        // An EC key: the same as hashing serde_json's (ordered) canonical object.
        let (x, y) = (
            "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
        );
        let ec =
            PublicJwk::parse(&serde_json::json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}))
                .unwrap();
        let canonical =
            serde_json::json!({"crv": "P-256", "kty": "EC", "x": x, "y": y}).to_string();
        assert_eq!(ec.thumbprint(), sha256_b64url(canonical.as_bytes()));
    }

    #[test]
    fn alg_must_fit_type_and_private_keys_are_refused() {
        let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
        let err = |v: serde_json::Value| PublicJwk::parse(&v).unwrap_err();
        assert_eq!(
            err(serde_json::json!({"kty":"OKP","crv":"Ed25519","x":x,"alg":"RS256"})),
            "key alg RS256 does not fit its type"
        );
        assert_eq!(
            err(serde_json::json!({"kty":"OKP","crv":"Ed25519","x":x,"d":x})),
            "a private key where a public key belongs"
        );
        assert!(err(serde_json::json!({"kty":"oct","k":"AAAA"}))
            .starts_with("unsupported or malformed key (oct"));
        // An HMAC algorithm on an RSA key (algorithm confusion: the public key used as an
        // HMAC secret) is refused as a mismatch, not quietly accepted.
        let n = crate::crypto::b64url(&[0xab; 256]);
        assert_eq!(
            err(serde_json::json!({"kty":"RSA","n":n,"e":"AQAB","alg":"HS256"})),
            "key alg HS256 does not fit its type"
        );
    }

    #[test]
    fn set_skips_unusable_keys() {
        let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
        let doc = serde_json::json!({"keys": [
            {"kty":"oct","k":"AAAA"},
            {"kty":"OKP","crv":"Ed25519","x":x,"use":"enc"},
            {"kty":"OKP","crv":"Ed25519","x":x,"kid":"good"}
        ]});
        let keys = parse_set(&doc);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("good"));
    }
}
