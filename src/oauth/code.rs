//! Authorization codes and PKCE. A code is the grant itself, sealed with an HMAC under
//! `STATE_SECRET` (so issuing one writes nothing, and an anonymous flood of authorization
//! requests costs no storage); it lives [`super::CODE_TTL`] seconds and is spent once
//! through the spent-set when it is redeemed. It is bound to its client, its redirect URI
//! and its PKCE challenge: the token endpoint checks all three.

use super::OAuthError;
use crate::config::Config;
use crate::crypto::{b64url, b64url_decode, ct_eq, hmac_sha256, random_token, sha256_b64url};
pub use crate::oauth_store::Grant;
use crate::oauth_store::{decode, encode};

/// Longest code accepted (ours are far shorter).
const MAX_CODE_BYTES: usize = 4096;

/// A code's contents.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeContents {
    pub grant: Grant,
    pub redirect_uri: String,
    pub nonce: Option<String>,
    /// The PKCE S256 challenge.
    pub code_challenge: Option<String>,
    pub exp: i64,
    /// Makes every code unique (two identical grants in one second are two codes).
    pub jti: String,
}

fn mac(cfg: &Config, payload: &str) -> String {
    b64url(&hmac_sha256(
        cfg.state_secret.expose().as_bytes(),
        format!("gatehouse-code|{payload}").as_bytes(),
    ))
}

/// Seals a new code for `grant`.
pub fn seal(
    cfg: &Config,
    grant: Grant,
    redirect_uri: &str,
    nonce: Option<String>,
    code_challenge: Option<String>,
    now: i64,
) -> String {
    let exp = (now + super::CODE_TTL).to_string();
    let jti = random_token();
    let form = encode(
        &grant,
        &[
            ("ru", Some(redirect_uri)),
            ("n", nonce.as_deref()),
            ("cc", code_challenge.as_deref()),
            ("e", Some(&exp)),
            ("j", Some(&jti)),
        ],
    );
    let payload = b64url(form.as_bytes());
    let tag = mac(cfg, &payload);
    format!("{payload}.{tag}")
}

/// Opens a code: ours, untampered and unexpired (`invalid_grant` otherwise). Spending it is
/// the caller's job, after every other check.
pub fn open(cfg: &Config, code: &str, now: i64) -> Result<CodeContents, OAuthError> {
    let invalid = || OAuthError::invalid_grant("The authorization code is invalid.");
    if code.len() > MAX_CODE_BYTES {
        return Err(invalid());
    }
    let (payload, tag) = code.split_once('.').ok_or_else(invalid)?;
    if !ct_eq(tag.as_bytes(), mac(cfg, payload).as_bytes()) {
        return Err(invalid());
    }
    let m = decode(&b64url_decode(payload).map_err(|_| invalid())?);
    let c = CodeContents {
        grant: Grant::from_map(&m).ok_or_else(invalid)?,
        redirect_uri: m.get("ru").ok_or_else(invalid)?.clone(),
        nonce: m.get("n").cloned(),
        code_challenge: m.get("cc").cloned(),
        exp: m
            .get("e")
            .and_then(|e| e.parse().ok())
            .ok_or_else(invalid)?,
        jti: m.get("j").cloned().unwrap_or_default(),
    };
    if now >= c.exp {
        return Err(OAuthError::invalid_grant(
            "The authorization code has expired.",
        ));
    }
    Ok(c)
}

/// The spent-set key of a code (and the refresh-token family it starts).
pub fn code_hash(code: &str) -> String {
    sha256_b64url(code.as_bytes())
}

/// Whether `s` is a PKCE verifier or S256 challenge shape: 43 to 128 unreserved characters.
fn pkce_shape(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Checks a code challenge from the authorization request: S256 only (`plain` is refused:
/// it protects nothing once the request is seen).
pub fn check_challenge(
    challenge: Option<&str>,
    method: Option<&str>,
) -> Result<Option<String>, OAuthError> {
    match (challenge, method) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(OAuthError::invalid_request(
            "code_challenge_method without code_challenge.",
        )),
        (Some(_), Some(m)) if m != "S256" => Err(OAuthError::invalid_request(
            "Only the S256 code_challenge_method is supported.",
        )),
        (Some(c), _) if c.len() != 43 || !pkce_shape(c) => Err(OAuthError::invalid_request(
            "code_challenge must be a base64url SHA-256 (43 characters).",
        )),
        (Some(_), None) => Err(OAuthError::invalid_request(
            "code_challenge_method=S256 is required (plain is not supported).",
        )),
        (Some(c), Some(_)) => Ok(Some(c.to_string())),
    }
}

/// Checks the token request's `code_verifier` against the code's challenge. A code with a
/// challenge needs the verifier; a code without one refuses a verifier (a downgrade sign).
pub fn check_verifier(challenge: Option<&str>, verifier: Option<&str>) -> Result<(), OAuthError> {
    match (challenge, verifier) {
        (None, None) => Ok(()),
        (Some(c), Some(v))
            if pkce_shape(v) && ct_eq(sha256_b64url(v.as_bytes()).as_bytes(), c.as_bytes()) =>
        {
            Ok(())
        }
        (Some(_), None) => Err(OAuthError::invalid_grant("code_verifier is required.")),
        (None, Some(_)) => Err(OAuthError::invalid_grant(
            "This code was issued without a code_challenge.",
        )),
        _ => Err(OAuthError::invalid_grant("code_verifier does not match.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_config;

    fn grant() -> Grant {
        Grant {
            client_id: "cl_1".into(),
            user_id: "usr_1".into(),
            sid: "sid".into(),
            scope: "openid".into(),
            auth_time: 100,
            resource: None,
        }
    }

    #[test]
    fn seal_open_round_trip_and_expiry() {
        let cfg = test_config();
        let code = seal(&cfg, grant(), "https://a/cb", Some("n".into()), None, 1000);
        let c = open(&cfg, &code, 1000 + CODE_TTL_MINUS_ONE).unwrap();
        assert_eq!(c.grant, grant());
        assert_eq!(c.nonce.as_deref(), Some("n"));
        assert!(c.exp - 1000 <= 60, "codes live at most 60 s");
        let e = open(&cfg, &code, 1000 + super::super::CODE_TTL).unwrap_err();
        assert_eq!(e.code, "invalid_grant");
        assert_ne!(
            code,
            seal(&cfg, grant(), "https://a/cb", Some("n".into()), None, 1000)
        );
    }
    const CODE_TTL_MINUS_ONE: i64 = super::super::CODE_TTL - 1;

    #[test]
    fn tampered_or_foreign_codes_are_refused() {
        let cfg = test_config();
        let code = seal(&cfg, grant(), "https://a/cb", None, None, 1000);
        let (payload, tag) = code.split_once('.').unwrap();
        let mut g = grant();
        g.user_id = "usr_admin".into();
        let body = encode(&g, &[("ru", Some("https://a/cb")), ("e", Some("2000"))]);
        let forged = format!("{}.{tag}", b64url(body.as_bytes()));
        for bad in [
            forged,
            format!("{payload}.AAAA"),
            payload.to_string(),
            "x".repeat(5000),
        ] {
            assert_eq!(open(&cfg, &bad, 1000).unwrap_err().code, "invalid_grant");
        }
        let mut other = cfg.clone();
        other.state_secret = crate::crypto::Secret::new("another-state-secret-of-32-chars!!");
        assert!(open(&other, &code, 1000).is_err());
    }

    #[test]
    fn pkce_is_s256_only() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"; // RFC 7636 appendix B
        assert_eq!(sha256_b64url(verifier.as_bytes()), challenge);
        assert_eq!(
            check_challenge(Some(challenge), Some("S256"))
                .unwrap()
                .as_deref(),
            Some(challenge)
        );
        for (c, m) in [
            (Some(challenge), Some("plain")),
            (Some(challenge), None),
            (None, Some("S256")),
            (Some("short"), Some("S256")),
        ] {
            assert_eq!(check_challenge(c, m).unwrap_err().code, "invalid_request");
        }
        assert!(check_verifier(Some(challenge), Some(verifier)).is_ok());
        assert!(check_verifier(None, None).is_ok());
        for (c, v) in [
            (Some(challenge), None),
            (
                Some(challenge),
                Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx"),
            ),
            (Some(challenge), Some(challenge)),
            (None, Some(verifier)),
        ] {
            assert_eq!(check_verifier(c, v).unwrap_err().code, "invalid_grant");
        }
    }
}
