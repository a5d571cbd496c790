//! `POST /oauth/register` (RFC 7591), when `OAUTH_DYNAMIC_REGISTRATION = "true"`: anyone may
//! register a public client (PKCE, no secret, never first party — its users see the consent
//! page), limited per client network. What MCP clients use to sign in with no set-up.

use super::Ctx;
use crate::error::{AppError, AppResult};
use crate::http::{Request, Response};
use crate::oauth::client::{Client, ClientInput, ClientType};
use crate::oauth::store::OAuthStore;
use crate::oauth::OAuthError;
use crate::platform::Platform;
use crate::ratelimit::{self, Flow};
use serde_json::{json, Value};

fn metadata_error(code: &'static str, d: impl Into<String>) -> AppError {
    let mut e = OAuthError::invalid_request(d);
    e.code = code;
    e.into()
}

/// Reads RFC 7591 client metadata into the admin API's input.
fn input(v: &Value) -> AppResult<ClientInput> {
    let bad = |d: &str| metadata_error("invalid_client_metadata", d);
    let auth = v["token_endpoint_auth_method"].as_str().unwrap_or("none");
    if auth != "none" {
        return Err(bad(
            "Only public clients (token_endpoint_auth_method none) may register.",
        ));
    }
    let allowed = |k: &str, ok: &[&str]| {
        v[k].as_array().is_none_or(|a| {
            a.iter()
                .all(|x| x.as_str().is_some_and(|s| ok.contains(&s)))
        })
    };
    if !allowed("grant_types", &["authorization_code", "refresh_token"])
        || !allowed("response_types", &["code"])
    {
        return Err(bad("Only the authorization code flow is supported."));
    }
    let mut m = json!({
        "type": "public",
        "name": v["client_name"].as_str().unwrap_or("Unnamed app"),
        "redirect_uris": v["redirect_uris"],
        "first_party": false,
    });
    if let Some(scope) = v["scope"].as_str() {
        m["scopes"] = json!(crate::oauth::scope_list(scope));
    }
    ClientInput::parse(&m).map_err(|e| metadata_error("invalid_client_metadata", e))
}

pub async fn register<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Response> {
    if !ctx.cfg.dynamic_registration {
        return Err(AppError::Forbidden(
            "Dynamic client registration is off (OAUTH_DYNAMIC_REGISTRATION).".into(),
        ));
    }
    ratelimit::per_network(ctx.p.limiter(), Flow::Register, req).await?;
    let v: Value = req.parse_body()?;
    let now = ctx.p.now();
    let (client, _) = Client::create(ctx.cfg, input(&v)?, now).map_err(|e| {
        let code = if e.starts_with("redirect") {
            "invalid_redirect_uri"
        } else {
            "invalid_client_metadata"
        };
        metadata_error(code, e)
    })?;
    debug_assert_eq!(client.kind, ClientType::Public);
    ctx.p.oauth().create_client(&client).await?;
    let s = &client.settings;
    let body = json!({
        "client_id": client.id, "client_id_issued_at": now, "client_name": client.name,
        "redirect_uris": s.redirect_uris, "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
        "scope": s.scopes.join(" "),
    });
    let mut r = Response::json(201, &body);
    r.set_header("cache-control", "no-store");
    Ok(r)
}
