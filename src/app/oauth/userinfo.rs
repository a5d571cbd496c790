//! `GET|POST /oauth/userinfo` (OpenID Connect Core section 5.3): the claims of the access
//! token's scopes, for a token issued to a client with `openid`.

use super::{cors_for, no_store_json, Ctx};
use crate::app::auth::bearer;
use crate::error::AppResult;
use crate::http::{Request, Response};
use crate::oauth::store::OAuthStore;
use crate::oauth::{has_scope, tokens, OAuthError};
use crate::platform::Platform;
use crate::users::UserStore;

pub async fn userinfo<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Response> {
    let token = bearer(req).ok_or_else(|| {
        let mut e = OAuthError::invalid_token("An access token is required.");
        e.code = "invalid_request";
        e.challenge = Some("Bearer".into());
        e
    })?;
    let claims = tokens::verify_client_access(ctx.cfg, ctx.p.sig(), token, ctx.p.now())
        .await
        .map_err(|e| OAuthError::invalid_token(format!("The access token is not valid: {e}.")))?;
    if !has_scope(&claims.scope, "openid") {
        let mut e = OAuthError::invalid_token("The token was not granted the openid scope.");
        e.code = "insufficient_scope";
        e.status = 403;
        e.challenge = Some("Bearer error=\"insufficient_scope\", scope=\"openid\"".into());
        return Err(e.into());
    }
    let user = match ctx.p.users().get_user(&claims.sub.into()).await? {
        Some(u) if u.active => u,
        _ => return Err(OAuthError::invalid_token("The account is no longer active.").into()),
    };
    let body = serde_json::Value::Object(tokens::scope_claims(&user, &claims.scope));
    let r = no_store_json(&body);
    if req.header("origin").is_none() {
        return Ok(r);
    }
    Ok(match ctx.p.oauth().get_client(&claims.client_id).await? {
        Some(client) => cors_for(r, req, &client),
        None => r,
    })
}
