//! `GET /oauth/end_session` (OpenID Connect RP-Initiated Logout 1.0): a page that asks the
//! person to sign out of Gatehouse (a GET alone never ends a session: any site could send a
//! browser there); its button posts back here from Gatehouse's own origin, ends this
//! browser's session and goes to the client's registered `post_logout_redirect_uri`, with
//! `state`. An unregistered URI is never redirected to.

use super::Ctx;
use crate::error::{AppError, AppResult};
use crate::http::{Request, Response};
use crate::jwt::compact;
use crate::oauth::request::redirect_with;
use crate::oauth::store::OAuthStore;
use crate::pages::{esc, layout};
use crate::platform::Platform;

/// The parameters, from the query (GET) or the form (POST).
struct EndSession {
    pairs: Vec<(String, String)>,
}

impl EndSession {
    fn get(&self, k: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(x, _)| x == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// The client named by `client_id`, or by the `aud` of an ID token we signed.
async fn client_id<P: Platform>(ctx: &Ctx<'_, P>, e: &EndSession) -> AppResult<Option<String>> {
    if let Some(id) = e.get("client_id") {
        return Ok(Some(id.to_string()));
    }
    let Some(hint) = e.get("id_token_hint") else {
        return Ok(None);
    };
    let bad = || AppError::BadRequest("The id_token_hint is not an ID token of Gatehouse.".into());
    let t = compact::parse(hint).map_err(|_| bad())?;
    let key = ctx
        .cfg
        .signing_keys
        .iter()
        .find(|k| Some(k.kid.as_str()) == t.header.kid.as_deref())
        .ok_or_else(bad)?;
    crate::jwt::validate::verify_signature(ctx.p.sig(), &t, &key.public)
        .await
        .map_err(|_| bad())?;
    if t.claims.get("iss").and_then(|v| v.as_str()) != Some(ctx.cfg.public_url.as_str()) {
        return Err(bad());
    }
    Ok(t.claims
        .get("aud")
        .and_then(|v| v.as_str())
        .map(String::from))
}

/// Where to go afterwards: a registered post-logout URI (with `state`), or Gatehouse's home.
async fn target<P: Platform>(ctx: &Ctx<'_, P>, e: &EndSession) -> AppResult<String> {
    let Some(uri) = e.get("post_logout_redirect_uri") else {
        return Ok("/".into());
    };
    let refused = || {
        AppError::BadRequest("The post_logout_redirect_uri is not registered for this app.".into())
    };
    let id = client_id(ctx, e).await?.ok_or_else(refused)?;
    let client = ctx.p.oauth().get_client(&id).await?.ok_or_else(refused)?;
    if !client
        .settings
        .post_logout_redirect_uris
        .iter()
        .any(|u| u == uri)
    {
        return Err(refused());
    }
    Ok(match e.get("state") {
        Some(state) => redirect_with(uri, &[("state", state)]),
        None => uri.to_string(),
    })
}

/// `GET /oauth/end_session`: the confirmation page.
pub async fn ask<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Response> {
    let e = EndSession {
        pairs: req.url.query_pairs().into_owned().collect(),
    };
    let to = target(ctx, &e).await?;
    let hidden: String = e
        .pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                esc(k),
                esc(v)
            )
        })
        .collect();
    let body = format!(
        "<h1>Sign out?</h1><p>An app asks to sign you out of Gatehouse.</p>\
<form method=\"post\" action=\"/oauth/end_session\">{hidden}<button type=\"submit\">Sign out</button></form>"
    );
    let mut r = Response::html(200, layout("Sign out", &body));
    if let Ok(u) = url::Url::parse(&to) {
        let csp = crate::pages::CSP.replace(
            "form-action 'self'",
            &format!("form-action 'self' {}", u.origin().ascii_serialization()),
        );
        r.set_header("content-security-policy", &csp);
    }
    r.set_header("cache-control", "no-store");
    Ok(r)
}

/// `POST /oauth/end_session`: from Gatehouse's own page, ends this browser's session.
pub async fn confirm<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Response> {
    crate::app::check_own_origin(ctx.cfg, req)?;
    let e = EndSession {
        pairs: url::form_urlencoded::parse(&req.body)
            .into_owned()
            .collect(),
    };
    let to = target(ctx, &e).await?;
    let mut r = crate::app::account::logout(ctx, req).await?;
    r.status = 303;
    r.set_header("location", &to);
    Ok(r)
}
