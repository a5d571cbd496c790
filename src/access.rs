//! Access JWTs (README "Sessions, tokens and cookies"): EdDSA, `kid` = thumbprint, `typ` =
//! `at+jwt`, `iss` = `PUBLIC_URL`, `aud` = `PUBLIC_URL`, `sub` = local user id, `sid` =
//! session id, plus `email`, `email_verified` and `name`. Verifying one reads no storage.
//! They expire at `exp` exactly: no leeway (see [`expired`]).

use crate::config::Config;
use crate::crypto::b64url;
use crate::ids::{SessionId, UserId};
use crate::jwt::compact::{self, Untrusted};
use crate::jwt::validate::{check_times, verify_signature, ClaimRules};
use crate::jwt::{JwtError, Signatures};
use serde::Serialize;

/// The `typ` of access tokens (RFC 9068).
pub const TYP: &str = crate::jwt::ACCESS_TOKEN_TYP;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: UserId,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub sid: SessionId,
    pub email: Option<String>,
    pub name: Option<String>,
    /// Whether a provider vouched for `email` (apps must not trust an unverified one).
    pub email_verified: bool,
    /// The user's roles (their own and the policy's rule roles), for proxy-mode routes and
    /// apps; left out when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Never set by Gatehouse; checked if present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Set only on tokens the OpenID Provider issued to an app: those are never first-party
    /// tokens, whatever their audience.
    #[serde(skip_serializing)]
    pub client_id: Option<String>,
}

/// Claims of the wrong type, or a required one missing, do not fit.
impl compact::FromClaims for AccessClaims {
    fn from_claims(claims: serde_json::Map<String, serde_json::Value>) -> Option<Self> {
        let v = serde_json::Value::Object(claims);
        let read = || -> Result<AccessClaims, String> {
            let f = crate::fields::Fields::of(&v)?;
            Ok(AccessClaims {
                iss: f.str("iss")?,
                sub: UserId::from(f.str("sub")?),
                aud: f.str("aud")?,
                exp: f.i64("exp")?,
                iat: f.i64("iat")?,
                sid: SessionId::from(f.str("sid")?),
                email: f.opt_str("email")?,
                name: f.opt_str("name")?,
                email_verified: f.opt_bool("email_verified")?.unwrap_or(false),
                roles: f.opt_strs("roles")?.unwrap_or_default(),
                nbf: f.opt_i64("nbf")?,
                client_id: f.opt_str("client_id")?,
            })
        };
        read().ok()
    }
}

impl AccessClaims {
    pub fn new(
        cfg: &Config,
        user_id: &UserId,
        sid: &SessionId,
        email: Option<String>,
        name: Option<String>,
        now: i64,
    ) -> AccessClaims {
        AccessClaims {
            iss: cfg.public_url.clone(),
            sub: user_id.clone(),
            aud: cfg.public_url.clone(),
            exp: now + cfg.access_ttl as i64,
            iat: now,
            sid: sid.clone(),
            email,
            name,
            email_verified: false,
            roles: Vec::new(),
            nbf: None,
            client_id: None,
        }
    }
}

/// Signs `claims` with the active key.
pub async fn issue<S: Signatures>(
    cfg: &Config,
    sig: &S,
    claims: &AccessClaims,
) -> Result<String, JwtError> {
    let key = cfg.active_key();
    let header = serde_json::json!({"alg": "EdDSA", "typ": TYP, "kid": key.kid});
    let body = serde_json::to_vec(claims).map_err(|_| JwtError::Malformed("claims"))?;
    let input = format!(
        "{}.{}",
        b64url(&serde_json::to_vec(&header).unwrap_or_default()),
        b64url(&body)
    );
    let signature = sig
        .sign(key, input.as_bytes())
        .await
        .map_err(JwtError::Backend)?;
    Ok(format!("{input}.{}", b64url(&signature)))
}

fn check_type<C>(token: &Untrusted<'_, C>) -> Result<(), JwtError> {
    if token.typ().as_deref() != Some(TYP) {
        return Err(JwtError::Type);
    }
    Ok(())
}

/// Verifies an access token: structure, type, our key, signature, claims. The claims go
/// straight into [`AccessClaims`] (no intermediate JSON map): this is the hot path.
pub async fn verify<S: Signatures>(
    cfg: &Config,
    sig: &S,
    token: &str,
    now: i64,
) -> Result<AccessClaims, JwtError> {
    let untrusted = compact::parse_as::<AccessClaims>(token)?;
    check_type(&untrusted)?;
    // Our tokens always name their key; no clone of the key set on the hot path.
    let kid = untrusted
        .header
        .kid
        .as_deref()
        .ok_or(JwtError::UnknownKey)?;
    let key = cfg
        .signing_keys
        .iter()
        .find(|k| k.kid == kid)
        .ok_or(JwtError::UnknownKey)?;
    verify_signature(sig, &untrusted, &key.public).await?;
    let c = untrusted.claims;
    if c.iss != cfg.public_url {
        return Err(JwtError::Issuer);
    }
    if c.aud != cfg.public_url || c.client_id.is_some() {
        return Err(JwtError::Audience);
    }
    if c.sub.as_str().is_empty() {
        return Err(JwtError::Claim("sub"));
    }
    let rules = ClaimRules {
        issuer: &cfg.public_url,
        audience: &cfg.public_url,
        now,
        require_iat: true,
    };
    if expired(c.exp, now) {
        return Err(JwtError::Expired);
    }
    check_times(c.exp, c.nbf, Some(c.iat), &rules)?;
    Ok(c)
}

/// Whether one of Gatehouse's own tokens has expired: at `exp` exactly, with no leeway.
/// Leeway is for other parties' clocks; this token was issued by this service's clock, and
/// any leeway would stretch the revocation bound past `ACCESS_TOKEN_TTL_SECONDS`.
pub fn expired(exp: i64, now: i64) -> bool {
    now >= exp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::native::NativeSignatures;
    use crate::testing::{block_on, test_config, test_key_2};

    fn claims(cfg: &Config, now: i64) -> AccessClaims {
        AccessClaims::new(
            cfg,
            &"u1".into(),
            &"sid1".into(),
            Some("a@b.c".into()),
            Some("A".into()),
            now,
        )
    }

    #[test]
    fn issue_then_verify() {
        let cfg = test_config();
        let t = block_on(issue(&cfg, &NativeSignatures, &claims(&cfg, 1000))).unwrap();
        let c = block_on(verify(&cfg, &NativeSignatures, &t, 1100)).unwrap();
        assert_eq!(c.sub, "u1");
        assert_eq!(c.sid, "sid1");
    }

    #[test]
    fn no_leeway_past_exp_on_our_own_tokens() {
        let cfg = test_config();
        let t = block_on(issue(&cfg, &NativeSignatures, &claims(&cfg, 1000))).unwrap();
        let exp = 1000 + cfg.access_ttl as i64;
        assert!(block_on(verify(&cfg, &NativeSignatures, &t, exp - 1)).is_ok());
        for at in [exp, exp + 1, exp + 30] {
            assert_eq!(
                block_on(verify(&cfg, &NativeSignatures, &t, at)),
                Err(JwtError::Expired),
                "{at}"
            );
        }
    }

    #[test]
    fn tampered_and_foreign_tokens_are_refused() {
        let cfg = test_config();
        let t = block_on(issue(&cfg, &NativeSignatures, &claims(&cfg, 1000))).unwrap();
        let (input, sig) = t.rsplit_once('.').unwrap();
        let (h, _) = input.split_once('.').unwrap();
        let mut other = claims(&cfg, 1000);
        other.sub = "admin".into();
        let forged = format!("{h}.{}.{sig}", b64url(&serde_json::to_vec(&other).unwrap()));
        assert_eq!(
            block_on(verify(&cfg, &NativeSignatures, &forged, 1000)),
            Err(JwtError::Signature)
        );

        // Signed by a key that is not in SIGNING_KEYS.
        let mut foreign = cfg.clone();
        foreign.signing_keys = vec![test_key_2()];
        let t2 = block_on(issue(&foreign, &NativeSignatures, &claims(&cfg, 1000))).unwrap();
        assert_eq!(
            block_on(verify(&cfg, &NativeSignatures, &t2, 1000)),
            Err(JwtError::UnknownKey)
        );

        // Our kid, another algorithm: the key allows EdDSA only.
        let kid = &cfg.active_key().kid;
        for alg in ["ES256", "RS256"] {
            let header = serde_json::json!({"alg": alg, "typ": TYP, "kid": kid});
            let (_, rest) = t.split_once('.').unwrap();
            let relabelled = format!("{}.{rest}", b64url(header.to_string().as_bytes()));
            assert!(
                matches!(
                    block_on(verify(&cfg, &NativeSignatures, &relabelled, 1000)),
                    Err(JwtError::Algorithm(_))
                ),
                "{alg}"
            );
        }
    }

    #[test]
    fn rotation_verifies_tokens_of_every_published_key() {
        let old = test_config();
        let t = block_on(issue(&old, &NativeSignatures, &claims(&old, 1000))).unwrap();
        let mut rotated = old.clone();
        let new_key = test_key_2();
        let new_kid = new_key.kid.clone();
        rotated.signing_keys.insert(0, new_key);
        assert!(block_on(verify(&rotated, &NativeSignatures, &t, 1000)).is_ok());
        let t_new = block_on(issue(&rotated, &NativeSignatures, &claims(&old, 1000))).unwrap();
        let kid_of = |t: &str| crate::jwt::compact::parse(t).unwrap().header.kid;
        assert_eq!(kid_of(&t_new), Some(new_kid), "signed with the first key");
        assert_eq!(kid_of(&t), Some(old.active_key().kid.clone()));
        assert!(block_on(verify(&rotated, &NativeSignatures, &t_new, 1000)).is_ok());
    }

    #[test]
    fn an_id_token_shaped_token_is_not_an_access_token() {
        let cfg = test_config();
        let key = cfg.active_key();
        let header = serde_json::json!({"alg":"EdDSA","kid":key.kid,"typ":"JWT"});
        let body = serde_json::to_vec(&claims(&cfg, 1000)).unwrap();
        let input = format!(
            "{}.{}",
            b64url(&serde_json::to_vec(&header).unwrap_or_default()),
            b64url(&body)
        );
        let s = block_on(NativeSignatures.sign(key, input.as_bytes())).unwrap();
        let t = format!("{input}.{}", b64url(&s));
        assert_eq!(
            block_on(verify(&cfg, &NativeSignatures, &t, 1000)),
            Err(JwtError::Type)
        );
    }
}
