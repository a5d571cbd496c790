//! The compact serialization: splits a token into header, claims, signing input and
//! signature, enforcing the size cap first and the header rules of docs/security.md (rule 'JWTs').

use super::{Alg, JwtError, MAX_TOKEN_BYTES};
use crate::crypto::b64url_decode;
use crate::fields::Fields;
use serde_json::{Map, Value};

/// The header fields Gatehouse looks at. Key-carrying fields are captured only to refuse them.
#[derive(Debug)]
pub struct Header {
    pub alg: String,
    pub kid: Option<String>,
    pub typ: Option<String>,
    pub crit: Option<Value>,
    jwk: Option<Value>,
    jku: Option<Value>,
    x5u: Option<Value>,
    x5c: Option<Value>,
}

impl Header {
    fn read(v: &Value) -> Result<Header, String> {
        let f = Fields::of(v)?;
        let any = |k| f.get(k).cloned();
        Ok(Header {
            alg: f.str("alg")?,
            kid: f.opt_str("kid")?,
            typ: f.opt_str("typ")?,
            crit: any("crit"),
            jwk: any("jwk"),
            jku: any("jku"),
            x5u: any("x5u"),
            x5c: any("x5c"),
        })
    }
}

/// Claims read into a type (see [`parse_as`]): `None` when they do not fit it.
pub trait FromClaims: Sized {
    fn from_claims(claims: Map<String, Value>) -> Option<Self>;
}

/// The claims as they come.
impl FromClaims for Map<String, Value> {
    fn from_claims(claims: Map<String, Value>) -> Option<Self> {
        Some(claims)
    }
}

/// A token whose structure and header passed; its signature is not checked yet.
#[derive(Debug)]
pub struct Untrusted<'a, C = Map<String, Value>> {
    pub header: Header,
    pub alg: Alg,
    /// The claims, as a JSON map or (see [`parse_as`]) straight into a typed struct.
    pub claims: C,
    pub signing_input: &'a str,
    pub signature: Vec<u8>,
}

impl<C> Untrusted<'_, C> {
    /// `typ` without the optional `application/` prefix, lower-cased.
    pub fn typ(&self) -> Option<String> {
        self.header.typ.as_deref().map(|t| {
            t.to_ascii_lowercase()
                .trim_start_matches("application/")
                .to_string()
        })
    }
}

/// Parses `token`, refusing oversized tokens, `none`, embedded keys and any `crit`.
pub fn parse(token: &str) -> Result<Untrusted<'_>, JwtError> {
    parse_map(token)
}

/// Like [`parse`], with the claims read into `C` (the access-token hot path skips keeping the
/// JSON map). Claims that do not fit `C` are malformed.
pub fn parse_as<C: FromClaims>(token: &str) -> Result<Untrusted<'_, C>, JwtError> {
    let t = parse_map(token)?;
    Ok(Untrusted {
        claims: C::from_claims(t.claims).ok_or(JwtError::Malformed("claims JSON"))?,
        header: t.header,
        alg: t.alg,
        signing_input: t.signing_input,
        signature: t.signature,
    })
}

/// [`parse`] itself: one copy for every claims type.
fn parse_map(token: &str) -> Result<Untrusted<'_>, JwtError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwtError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed("not three parts"));
    };
    let header_bytes = b64url_decode(h).map_err(|_| JwtError::Malformed("header encoding"))?;
    let header = serde_json::from_slice::<Value>(&header_bytes)
        .ok()
        .and_then(|v| Header::read(&v).ok())
        .ok_or(JwtError::Malformed("header JSON"))?;
    if header.jwk.is_some() || header.jku.is_some() || header.x5u.is_some() || header.x5c.is_some()
    {
        return Err(JwtError::EmbeddedKey);
    }
    // We implement no JWS extensions, so any `crit` names one we do not understand.
    if header.crit.is_some() {
        return Err(JwtError::Critical);
    }
    let alg = Alg::from_name(&header.alg).ok_or_else(|| JwtError::Algorithm(header.alg.clone()))?;
    let claims_bytes = b64url_decode(c).map_err(|_| JwtError::Malformed("claims encoding"))?;
    // Read as a `Value` (the one reader instance in the Worker), then as an object.
    let claims = match serde_json::from_slice::<Value>(&claims_bytes) {
        Ok(Value::Object(m)) => m,
        _ => return Err(JwtError::Malformed("claims JSON")),
    };
    let signature = b64url_decode(s).map_err(|_| JwtError::Malformed("signature encoding"))?;
    if signature.is_empty() {
        return Err(JwtError::Signature);
    }
    Ok(Untrusted {
        header,
        alg,
        claims,
        signing_input: &token[..h.len() + 1 + c.len()],
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::b64url;

    fn tok(header: &str, claims: &str) -> String {
        format!(
            "{}.{}.{}",
            b64url(header.as_bytes()),
            b64url(claims.as_bytes()),
            b64url(b"sig")
        )
    }

    #[test]
    fn refuses_none_and_unknown_algs() {
        for alg in ["none", "None", "HS256", "RS512", ""] {
            let t = tok(&format!(r#"{{"alg":"{alg}"}}"#), "{}");
            assert!(matches!(parse(&t), Err(JwtError::Algorithm(_))), "{alg}");
        }
        // `none` with an empty signature part.
        let t = format!("{}.{}.", b64url(br#"{"alg":"none"}"#), b64url(b"{}"));
        assert!(matches!(parse(&t), Err(JwtError::Algorithm(_))));
    }

    #[test]
    fn refuses_embedded_keys_and_crit() {
        for h in [
            r#"{"alg":"EdDSA","jwk":{}}"#,
            r#"{"alg":"EdDSA","jku":"https://e"}"#,
            r#"{"alg":"EdDSA","x5u":"https://e"}"#,
            r#"{"alg":"EdDSA","x5c":["x"]}"#,
        ] {
            assert_eq!(
                parse(&tok(h, "{}")).err(),
                Some(JwtError::EmbeddedKey),
                "{h}"
            );
        }
        assert_eq!(
            parse(&tok(r#"{"alg":"EdDSA","crit":["exp"]}"#, "{}")).err(),
            Some(JwtError::Critical)
        );
    }

    #[test]
    fn refuses_oversized_before_parsing() {
        let t = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(parse(&t).err(), Some(JwtError::TooLarge));
    }

    #[test]
    fn refuses_malformed() {
        for t in ["", "a.b", "a.b.c.d", "!!.e30.c2ln", &tok("not json", "{}")] {
            assert!(matches!(parse(t), Err(JwtError::Malformed(_))), "{t}");
        }
    }

    #[test]
    fn signing_input_is_first_two_parts() {
        let t = tok(r#"{"alg":"EdDSA","typ":"at+jwt"}"#, r#"{"a":1}"#);
        let u = parse(&t).unwrap();
        assert_eq!(u.signing_input, t.rsplit_once('.').unwrap().0);
        assert_eq!(u.typ().as_deref(), Some("at+jwt"));
    }
}
