//! A person's own apps: `GET /auth/apps` lists the apps they agreed to; `DELETE
//! /auth/apps/{client_id}` withdraws the consent and revokes that app's refresh tokens
//! (account-changing: the session cookie and Gatehouse's own origin).

use super::Ctx;
use crate::app::auth::{require_account_owner, require_caller, with_cookies};
use crate::error::AppResult;
use crate::http::{Request, Response};
use crate::oauth::store::OAuthStore;
use crate::platform::Platform;

pub async fn list<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Response> {
    let caller = require_caller(ctx, req).await?;
    let apps = ctx.p.oauth().apps_of(caller.claims.sub.as_str()).await?;
    let list: Vec<serde_json::Value> = apps
        .iter()
        .map(|a| {
            serde_json::json!({
                "client_id": a.client_id, "name": a.name,
                "scopes": crate::oauth::scope_list(&a.scope),
                "consented_at": crate::users::rfc3339(a.created_at),
            })
        })
        .collect();
    let mut r = Response::json(200, &serde_json::json!({ "apps": list }));
    r.set_header("cache-control", "no-store");
    Ok(with_cookies(r, &caller))
}

pub async fn revoke<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    client_id: &str,
) -> AppResult<Response> {
    let caller = require_account_owner(ctx, req, true).await?;
    // Idempotent: withdrawing what is not there is done already.
    let oauth = ctx.p.oauth();
    if oauth
        .revoke_app(caller.claims.sub.as_str(), client_id)
        .await?
    {
        let detail = serde_json::json!({ "client_id": client_id });
        ctx.event(req, Some(&caller.claims.sub), "app_revoked", detail)
            .await;
    }
    Ok(with_cookies(Response::new(204), &caller))
}
