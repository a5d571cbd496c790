//! The tokens the OpenID Provider issues: ID tokens (OpenID Connect Core section 2; RS256
//! unless the client asked for EdDSA) and access tokens (RFC 9068: `typ` `at+jwt`, `aud`
//! the client's audience or its RFC 8707 resource, `client_id`, `scope`), plus the claims of
//! each scope (ID token and userinfo share them), and the check of an access token at
//! userinfo and at the protected resource.

use super::client::Client;
use super::code::Grant;
use super::has_scope;
use crate::config::Config;
use crate::crypto::{b64url, random_token, sha256};
use crate::jwt::compact;
use crate::jwt::keys::SigningKey;
use crate::jwt::validate::verify_signature;
use crate::jwt::Signatures;
use crate::jwt::{Alg, JwtError};
use crate::users::User;
use serde_json::{json, Map, Value};

/// Signs `claims` (a JSON object) as a compact JWS with `key`.
pub async fn sign<S: Signatures>(
    sig: &S,
    key: &SigningKey,
    typ: &str,
    claims: &str,
) -> Result<String, JwtError> {
    // alg and typ are fixed words, kid a base64url thumbprint: nothing to escape.
    let header = format!(
        r#"{{"alg":"{}","typ":"{typ}","kid":"{}"}}"#,
        key.alg().name(),
        key.kid
    );
    let input = format!(
        "{}.{}",
        b64url(header.as_bytes()),
        b64url(claims.as_bytes())
    );
    let s = sig
        .sign(key, input.as_bytes())
        .await
        .map_err(JwtError::Backend)?;
    Ok(format!("{input}.{}", b64url(&s)))
}

/// The claims of the granted scopes about `user` (OpenID Connect Core section 5.4).
pub fn scope_claims(user: &User, scope: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("sub".into(), user.id.as_str().to_string().into());
    if has_scope(scope, "profile") {
        m.insert("name".into(), json!(user.name));
        m.insert("picture".into(), json!(user.picture));
        m.insert("updated_at".into(), json!(user.updated_at));
    }
    if has_scope(scope, "email") {
        m.insert("email".into(), json!(user.email));
        m.insert(
            "email_verified".into(),
            json!(user.email_verified && user.email.is_some()),
        );
    }
    // The user's own roles (admin or invitation); the policy's rule roles, which depend
    // on the sign-in's provider, are in Gatehouse's own access token only.
    if has_scope(scope, "roles") {
        m.insert("roles".into(), json!(user.roles));
    }
    m
}

/// `at_hash`: the left half of the SHA-256 of the access token (RS256; used for EdDSA too).
pub fn at_hash(access_token: &str) -> String {
    b64url(&sha256(access_token.as_bytes())[..16])
}

/// What the token endpoint answers with.
#[derive(Debug, Clone)]
pub struct Issued {
    pub access_token: String,
    pub id_token: Option<String>,
    pub expires_in: u64,
}

/// Issues the access token and (with `openid`) the ID token of `grant`.
pub async fn issue<S: Signatures>(
    cfg: &Config,
    sig: &S,
    client: &Client,
    user: &User,
    grant: &Grant,
    nonce: Option<&str>,
    now: i64,
) -> Result<Issued, JwtError> {
    let aud = grant.resource.as_deref().unwrap_or(client.audience());
    let q = |v: &str| crate::fields::json_text(&Value::from(v));
    let exp = now + cfg.access_ttl as i64;
    // Written out, not `json!`: far less code in the Worker.
    let access_claims = format!(
        r#"{{"iss":{},"sub":{},"aud":{},"client_id":{},"scope":{},"exp":{exp},"iat":{now},"auth_time":{},"jti":"{}"}}"#,
        q(&cfg.public_url),
        q(user.id.as_str()),
        q(aud),
        q(&client.id),
        q(&grant.scope),
        grant.auth_time,
        random_token()
    );
    let access_token = sign(
        sig,
        cfg.active_key(),
        crate::jwt::ACCESS_TOKEN_TYP,
        &access_claims,
    )
    .await?;
    let id_token = if has_scope(&grant.scope, "openid") {
        let alg = client.id_token_alg().unwrap_or(Alg::Rs256);
        let key = cfg
            .key_for(alg)
            .ok_or_else(|| JwtError::Backend(format!("no {} key in SIGNING_KEYS", alg.name())))?;
        let mut c = scope_claims(user, &grant.scope);
        c.insert("iss".into(), cfg.public_url.as_str().into());
        c.insert("aud".into(), client.id.as_str().into());
        c.insert("azp".into(), client.id.as_str().into());
        c.insert("exp".into(), exp.into());
        c.insert("iat".into(), now.into());
        c.insert("auth_time".into(), grant.auth_time.into());
        c.insert("sid".into(), grant.sid.as_str().into());
        c.insert("at_hash".into(), at_hash(&access_token).into());
        if let Some(n) = nonce {
            c.insert("nonce".into(), n.into());
        }
        Some(
            sign(
                sig,
                key,
                "JWT",
                &crate::fields::json_text(&Value::Object(c)),
            )
            .await?,
        )
    } else {
        None
    };
    Ok(Issued {
        access_token,
        id_token,
        expires_in: cfg.access_ttl,
    })
}

/// The claims of an access token this provider issued to a client.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientAccess {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub scope: String,
    pub exp: i64,
    pub iat: i64,
}

/// Verifies an access token issued to a client: ours (`typ`, key, signature, `iss`), with a
/// `client_id`, unexpired (no leeway on our own tokens). The audience is the caller's check.
pub async fn verify_client_access<S: Signatures>(
    cfg: &Config,
    sig: &S,
    token: &str,
    now: i64,
) -> Result<ClientAccess, JwtError> {
    let t = compact::parse(token)?;
    if t.typ().as_deref() != Some(crate::jwt::ACCESS_TOKEN_TYP) {
        return Err(JwtError::Type);
    }
    let kid = t.header.kid.as_deref().ok_or(JwtError::UnknownKey)?;
    let key = cfg
        .signing_keys
        .iter()
        .find(|k| k.kid == kid)
        .ok_or(JwtError::UnknownKey)?;
    verify_signature(sig, &t, &key.public).await?;
    let m = &t.claims;
    let text = |k: &'static str| -> Result<String, JwtError> {
        m.get(k)
            .and_then(|v| v.as_str())
            .map(String::from)
            .ok_or(JwtError::Claim(k))
    };
    let int = |k: &'static str| m.get(k).and_then(|v| v.as_i64()).ok_or(JwtError::Claim(k));
    let c = ClientAccess {
        iss: text("iss")?,
        sub: text("sub")?,
        aud: text("aud")?,
        client_id: text("client_id")?,
        scope: text("scope")?,
        exp: int("exp")?,
        iat: int("iat")?,
    };
    if c.iss != cfg.public_url {
        return Err(JwtError::Issuer);
    }
    if crate::access::expired(c.exp, now) {
        return Err(JwtError::Expired);
    }
    if c.iat > now + crate::jwt::LEEWAY_SECONDS {
        return Err(JwtError::NotYetValid);
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::native::NativeSignatures;
    use crate::oauth::client::ClientInput;
    use crate::testing::{block_on, test_config_with_rsa};

    fn fixture(alg: &str) -> (Config, Client, User, Grant) {
        let cfg = test_config_with_rsa();
        let input = ClientInput::parse(&json!({"name": "A", "type": "confidential",
            "redirect_uris": ["https://a.example/cb"], "id_token_signed_response_alg": alg}))
        .unwrap();
        let client = Client::create(&cfg, input, 1).unwrap().0;
        let mut user = User::from_profile(
            &crate::testing::profile("http://idp", "s1", Some("a@b.c")),
            1,
        );
        user.email_verified = true;
        let grant = Grant {
            client_id: client.id.clone(),
            user_id: user.id.as_str().to_string(),
            sid: "sid1".into(),
            scope: "openid email".into(),
            auth_time: 900,
            resource: None,
        };
        (cfg, client, user, grant)
    }

    fn claims(t: &str) -> (Value, Value) {
        let mut parts = t.split('.');
        let dec = |p: &str| -> Value {
            serde_json::from_slice(&crate::crypto::b64url_decode(p).unwrap()).unwrap()
        };
        (dec(parts.next().unwrap()), dec(parts.next().unwrap()))
    }

    #[test]
    fn id_token_is_rs256_by_default_with_every_claim() {
        let (cfg, client, user, grant) = fixture("RS256");
        let out = block_on(issue(
            &cfg,
            &NativeSignatures,
            &client,
            &user,
            &grant,
            Some("n1"),
            1000,
        ))
        .unwrap();
        let id = out.id_token.unwrap();
        let (h, c) = claims(&id);
        assert_eq!(h["alg"], "RS256");
        let rsa = cfg.key_for(Alg::Rs256).unwrap();
        assert_eq!(h["kid"], rsa.kid.as_str());
        for (k, v) in [
            ("iss", json!(cfg.public_url)),
            ("sub", json!(user.id)),
            ("aud", json!(client.id)),
            ("azp", json!(client.id)),
            ("nonce", json!("n1")),
            ("auth_time", json!(900)),
            ("sid", json!("sid1")),
            ("iat", json!(1000)),
            ("exp", json!(1000 + cfg.access_ttl as i64)),
            ("email", json!("a@b.c")),
            ("email_verified", json!(true)),
            ("at_hash", json!(at_hash(&out.access_token))),
        ] {
            assert_eq!(c[k], v, "{k}");
        }
        assert!(c.get("name").is_none(), "no profile scope, no name");
        // The signature verifies with the published RSA key.
        let t = compact::parse(&id).unwrap();
        assert!(block_on(verify_signature(&NativeSignatures, &t, &rsa.public)).is_ok());
    }

    #[test]
    fn eddsa_on_request_and_access_tokens_per_rfc9068() {
        let (cfg, client, user, mut grant) = fixture("EdDSA");
        let out = block_on(issue(
            &cfg,
            &NativeSignatures,
            &client,
            &user,
            &grant,
            None,
            1000,
        ))
        .unwrap();
        assert_eq!(claims(out.id_token.as_ref().unwrap()).0["alg"], "EdDSA");
        let (h, c) = claims(&out.access_token);
        assert_eq!(h["typ"], "at+jwt");
        assert_eq!(c["aud"], client.id.as_str());
        assert_eq!(c["client_id"], client.id.as_str());
        assert_eq!(c["scope"], "openid email");
        let v = block_on(verify_client_access(
            &cfg,
            &NativeSignatures,
            &out.access_token,
            1000,
        ))
        .unwrap();
        assert_eq!(v.sub, user.id.as_str());
        assert_eq!(
            block_on(verify_client_access(
                &cfg,
                &NativeSignatures,
                &out.access_token,
                1000 + cfg.access_ttl as i64
            )),
            Err(JwtError::Expired)
        );
        // A client access token is never a first-party token, nor is an ID token an access token.
        assert!(block_on(crate::access::verify(
            &cfg,
            &NativeSignatures,
            &out.access_token,
            1000
        ))
        .is_err());
        assert!(block_on(verify_client_access(
            &cfg,
            &NativeSignatures,
            out.id_token.as_ref().unwrap(),
            1000
        ))
        .is_err());
        grant.resource = Some("https://api.example".into());
        grant.scope = "profile".into();
        let out = block_on(issue(
            &cfg,
            &NativeSignatures,
            &client,
            &user,
            &grant,
            None,
            1000,
        ))
        .unwrap();
        assert!(out.id_token.is_none(), "no openid, no ID token");
        assert_eq!(claims(&out.access_token).1["aud"], "https://api.example");
    }
}
