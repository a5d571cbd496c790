//! The `oauth2` kind: a plain authorization-code flow (with PKCE and state) for providers
//! without ID tokens, GitHub-style. Identity comes from the userinfo endpoint, with the
//! subject in a configured field (`sub_field`, default `id`); `issuer` is a stable name.

use super::fetch::call_ok;
use super::oidc::{callback_code, exchange_code, Client, ClientAuth};
use super::{rejected, require_secret, Flow};
use crate::crypto::Secret;
use crate::error::{AppError, AppResult};
use crate::http::Request;
use crate::platform::{Outbound, Platform};
use crate::urls::parse_base_url;
use crate::users::Profile;
use serde_json::Value;

struct Settings {
    preset: Option<String>,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    userinfo_endpoint: Option<String>,
    client_id: String,
    scopes: Option<String>,
    sub_field: Option<String>,
    email_field: Option<String>,
    name_field: Option<String>,
    picture_field: Option<String>,
    issuer: Option<String>,
    display_name: Option<String>,
    client_auth: Option<ClientAuth>,
}

impl Settings {
    fn read(v: &Value) -> Result<Settings, String> {
        let f = crate::fields::Fields::strict(
            v,
            &[
                "kind",
                "preset",
                "authorization_endpoint",
                "token_endpoint",
                "userinfo_endpoint",
                "client_id",
                "scopes",
                "sub_field",
                "email_field",
                "name_field",
                "picture_field",
                "issuer",
                "display_name",
                "client_auth",
            ],
        )?;
        Ok(Settings {
            preset: f.opt_str("preset")?,
            authorization_endpoint: f.opt_str("authorization_endpoint")?,
            token_endpoint: f.opt_str("token_endpoint")?,
            userinfo_endpoint: f.opt_str("userinfo_endpoint")?,
            client_id: f.str("client_id")?,
            scopes: f.opt_str("scopes")?,
            sub_field: f.opt_str("sub_field")?,
            email_field: f.opt_str("email_field")?,
            name_field: f.opt_str("name_field")?,
            picture_field: f.opt_str("picture_field")?,
            issuer: f.opt_str("issuer")?,
            display_name: f.opt_str("display_name")?,
            client_auth: super::oidc::client_auth(&f)?,
        })
    }
}

/// Settings of an `oauth2` provider.
#[derive(Debug, Clone)]
pub struct OAuth2Config {
    pub name: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub scopes: String,
    pub sub_field: String,
    pub email_field: String,
    pub name_field: String,
    pub picture_field: String,
    pub issuer: String,
    pub display_name: String,
    pub client_auth: ClientAuth,
}

/// Defaults of a preset: (authorize, token, userinfo, scopes, picture field, issuer, display).
fn preset(name: &str) -> Option<[&'static str; 7]> {
    match name {
        "github" => Some([
            "https://github.com/login/oauth/authorize",
            "https://github.com/login/oauth/access_token",
            "https://api.github.com/user",
            "read:user user:email",
            "avatar_url",
            "github",
            "GitHub",
        ]),
        _ => None,
    }
}

impl OAuth2Config {
    pub fn parse(name: &str, v: &Value, secret: Option<Secret>) -> Result<OAuth2Config, String> {
        let s = Settings::read(v)?;
        let p = match s.preset.as_deref() {
            None => None,
            Some(n) => Some(preset(n).ok_or(format!("unknown preset {n:?}"))?),
        };
        let pick = |own: Option<String>, i: usize, what: &str| -> Result<String, String> {
            own.or_else(|| p.map(|p| p[i].to_string()))
                .ok_or(format!("needs {what}"))
        };
        let url = |own, i, what: &str| -> Result<String, String> {
            let u = pick(own, i, what)?;
            parse_base_url(what, &u).map_err(|_| format!("{what} must be an http(s) URL"))?;
            Ok(u)
        };
        Ok(OAuth2Config {
            name: name.into(),
            authorization_endpoint: url(s.authorization_endpoint, 0, "authorization_endpoint")?,
            token_endpoint: url(s.token_endpoint, 1, "token_endpoint")?,
            userinfo_endpoint: url(s.userinfo_endpoint, 2, "userinfo_endpoint")?,
            scopes: pick(s.scopes, 3, "scopes").unwrap_or_default(),
            picture_field: pick(s.picture_field, 4, "picture_field")
                .unwrap_or_else(|_| "picture".into()),
            issuer: pick(s.issuer, 5, "issuer (a stable name for this provider)")?,
            display_name: s
                .display_name
                .or_else(|| p.map(|p| p[6].to_string()))
                .unwrap_or_else(|| name.to_string()),
            client_id: s.client_id,
            client_secret: require_secret(name, secret)?,
            sub_field: s.sub_field.unwrap_or_else(|| "id".into()),
            email_field: s.email_field.unwrap_or_else(|| "email".into()),
            name_field: s.name_field.unwrap_or_else(|| "name".into()),
            client_auth: s.client_auth.unwrap_or(ClientAuth::ClientSecretPost),
        })
    }
}

pub fn begin(c: &OAuth2Config, flow: &Flow<'_>) -> AppResult<String> {
    let mut url = url::Url::parse(&c.authorization_endpoint)
        .map_err(|e| AppError::Internal(e.to_string()))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &c.client_id)
        .append_pair("redirect_uri", &flow.redirect_uri)
        .append_pair("scope", &c.scopes)
        .append_pair("state", flow.state)
        .append_pair("code_challenge", &flow.pkce_challenge())
        .append_pair("code_challenge_method", "S256");
    Ok(url.into())
}

/// A userinfo field as a string (numbers too: GitHub ids are numbers).
fn field(info: &Value, name: &str) -> Option<String> {
    match info.get(name)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub async fn complete<P: Platform>(
    p: &P,
    c: &OAuth2Config,
    req: &Request,
    flow: &Flow<'_>,
) -> AppResult<Profile> {
    let name = c.name.as_str();
    let code = callback_code(req, name)?;
    let client = Client {
        id: &c.client_id,
        secret: &c.client_secret,
        auth: c.client_auth,
    };
    let tokens = exchange_code(p, name, &c.token_endpoint, client, &code, flow).await?;
    let access = tokens
        .get("access_token")
        .and_then(|t| t.as_str())
        .ok_or_else(|| rejected(name, "token response without access_token"))?;
    let info = call_ok(
        p.http(),
        name,
        Outbound::get(c.userinfo_endpoint.as_str())
            .header("authorization", &format!("Bearer {access}"))
            .header("user-agent", "gatehouse"),
    )
    .await?;
    let sub = field(&info, &c.sub_field)
        .ok_or_else(|| rejected(name, format!("userinfo has no {:?}", c.sub_field)))?;
    Ok(Profile {
        issuer: c.issuer.clone(),
        sub,
        provider: name.into(),
        email: field(&info, &c.email_field),
        email_verified: None,
        name: field(&info, &c.name_field),
        picture: field(&info, &c.picture_field),
        raw: info,
        vendor_logout: None,
    })
}
