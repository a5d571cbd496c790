//! Claim checks and signature verification against a key set: exact `iss`, `aud` containing
//! the expected audience, `exp`/`nbf`/`iat` with [`LEEWAY_SECONDS`] against an injected
//! clock, and the per-key algorithm allow-list. `jwt-compact` leaves iss/aud/iat to the
//! caller; this is where Gatehouse does them.

use super::compact::Untrusted;
use super::jwk::PublicJwk;
use super::{JwtError, LEEWAY_SECONDS};
use crate::jwt::Signatures;
use serde_json::{Map, Value};

/// What the claims must say.
#[derive(Debug, Clone)]
pub struct ClaimRules<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    /// Seconds since the epoch, from the platform clock.
    pub now: i64,
    pub require_iat: bool,
}

fn number(claims: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .map(|f| Some(f as i64))
            .ok_or(JwtError::Claim(name)),
    }
}

/// Checks `iss`, `aud`, `exp`, `nbf` and `iat`.
pub fn check_claims(claims: &Map<String, Value>, rules: &ClaimRules<'_>) -> Result<(), JwtError> {
    if claims.get("iss").and_then(|v| v.as_str()) != Some(rules.issuer) {
        return Err(JwtError::Issuer);
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == rules.audience,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(rules.audience)),
        _ => false,
    };
    if !aud_ok {
        return Err(JwtError::Audience);
    }
    let exp = number(claims, "exp")?.ok_or(JwtError::Claim("exp"))?;
    check_times(exp, number(claims, "nbf")?, number(claims, "iat")?, rules)?;
    if claims
        .get("sub")
        .and_then(|v| v.as_str())
        .map(|s| s.is_empty())
        .unwrap_or(true)
    {
        return Err(JwtError::Claim("sub"));
    }
    Ok(())
}

/// Checks `exp`, `nbf` and `iat` against the rules' clock, each with [`LEEWAY_SECONDS`].
pub fn check_times(
    exp: i64,
    nbf: Option<i64>,
    iat: Option<i64>,
    rules: &ClaimRules<'_>,
) -> Result<(), JwtError> {
    // Saturating: a signed but absurd `exp` must not overflow (it is simply far away).
    if rules.now > exp.saturating_add(LEEWAY_SECONDS) {
        return Err(JwtError::Expired);
    }
    if nbf.is_some_and(|nbf| nbf > rules.now.saturating_add(LEEWAY_SECONDS)) {
        return Err(JwtError::NotYetValid);
    }
    match iat {
        Some(iat) if iat > rules.now.saturating_add(LEEWAY_SECONDS) => Err(JwtError::NotYetValid),
        None if rules.require_iat => Err(JwtError::Claim("iat")),
        _ => Ok(()),
    }
}

/// Picks the key named by `kid` (or the only key, when the token names none).
pub fn select_key<'k, C>(
    token: &Untrusted<'_, C>,
    keys: &'k [PublicJwk],
) -> Result<&'k PublicJwk, JwtError> {
    match token.header.kid.as_deref() {
        Some(kid) => keys
            .iter()
            .find(|k| k.kid.as_deref() == Some(kid))
            .ok_or(JwtError::UnknownKey),
        None if keys.len() == 1 => Ok(&keys[0]),
        None => Err(JwtError::UnknownKey),
    }
}

/// Verifies the signature with `key`, which must allow the token's algorithm.
pub async fn verify_signature<S: Signatures, C>(
    sig: &S,
    token: &Untrusted<'_, C>,
    key: &PublicJwk,
) -> Result<(), JwtError> {
    let allowed = key.allowed_alg().map_err(JwtError::Algorithm)?;
    if allowed != token.alg {
        return Err(JwtError::Algorithm(format!(
            "{} with a {} key",
            token.alg.name(),
            allowed.name()
        )));
    }
    if !fits(key, allowed, &token.signature) {
        return Err(JwtError::Signature);
    }
    match sig
        .verify(
            key,
            token.alg,
            token.signing_input.as_bytes(),
            &token.signature,
        )
        .await
    {
        Ok(true) => Ok(()),
        Ok(false) => Err(JwtError::Signature),
        Err(e) => Err(JwtError::Backend(e)),
    }
}

/// Whether `signature` has the one length a signature by `key` with `alg` has: 64 bytes for
/// Ed25519 and P-256, the modulus' for RSA. WebCrypto throws on any other length rather than
/// answer "no", and a backend failure is an error (500) where a bad token is a refusal, so
/// what the token got wrong is refused here, before the backend.
fn fits(key: &PublicJwk, alg: super::Alg, signature: &[u8]) -> bool {
    match alg {
        super::Alg::EdDsa | super::Alg::Es256 => signature.len() == 64,
        super::Alg::Rs256 => key
            .n
            .as_deref()
            .and_then(|n| crate::crypto::b64url_decode(n).ok())
            .is_some_and(|n| n.iter().skip_while(|b| **b == 0).count() == signature.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(now: i64) -> ClaimRules<'static> {
        ClaimRules {
            issuer: "https://idp",
            audience: "client",
            now,
            require_iat: true,
        }
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn accepts_within_leeway() {
        let c = claims(
            json!({"iss":"https://idp","aud":["x","client"],"exp":1000,"iat":900,"sub":"s"}),
        );
        assert_eq!(check_claims(&c, &rules(1000 + LEEWAY_SECONDS)), Ok(()));
        assert_eq!(
            check_claims(&c, &rules(1001 + LEEWAY_SECONDS)),
            Err(JwtError::Expired)
        );
    }

    #[test]
    fn nbf_and_iat_in_the_future_are_accepted_within_the_leeway() {
        let now = 1000;
        let at_edge = now + LEEWAY_SECONDS;
        let c = claims(
            json!({"iss":"https://idp","aud":"client","exp":2000,"nbf":at_edge,"iat":at_edge,"sub":"s"}),
        );
        assert_eq!(check_claims(&c, &rules(now)), Ok(()));
        for k in ["nbf", "iat"] {
            let mut c = c.clone();
            c.insert(k.into(), json!(at_edge + 1));
            assert_eq!(
                check_claims(&c, &rules(now)),
                Err(JwtError::NotYetValid),
                "{k}"
            );
        }
    }

    #[test]
    fn absurd_times_do_not_overflow() {
        let c = |exp: i64| {
            claims(json!({"iss":"https://idp","aud":"client","exp":exp,"iat":900,"sub":"s"}))
        };
        assert_eq!(check_claims(&c(i64::MAX), &rules(1000)), Ok(()));
        assert_eq!(
            check_claims(&c(i64::MIN), &rules(1000)),
            Err(JwtError::Expired)
        );
        assert_eq!(
            check_times(i64::MAX, Some(i64::MAX), Some(i64::MAX), &rules(i64::MAX)),
            Ok(()),
            "a clock at the end of time adds no leeway past it"
        );
    }

    #[test]
    fn exact_issuer_and_audience() {
        let base = json!({"iss":"https://idp","aud":"client","exp":2000,"iat":900,"sub":"s"});
        for (k, v, e) in [
            ("iss", json!("https://idp/"), JwtError::Issuer),
            ("iss", json!("https://IDP"), JwtError::Issuer),
            ("aud", json!("client2"), JwtError::Audience),
            ("aud", json!(["other"]), JwtError::Audience),
            ("iat", json!(1000 + 61), JwtError::NotYetValid),
            ("nbf", json!(1000 + 61), JwtError::NotYetValid),
            ("exp", json!("soon"), JwtError::Claim("exp")),
            ("sub", json!(""), JwtError::Claim("sub")),
        ] {
            let mut c = claims(base.clone());
            c.insert(k.into(), v);
            assert_eq!(check_claims(&c, &rules(1000)), Err(e), "{k}");
        }
        let mut c = claims(base);
        c.remove("iat");
        assert_eq!(check_claims(&c, &rules(1000)), Err(JwtError::Claim("iat")));
    }
}
