//! The signed-in user's routes: `/auth/me`, `/auth/logout`, `/auth/token` (with CORS for
//! allowed origins), the user's own sessions, the JWKS, and the home page.

use super::auth::{authenticate, renew, require_account_owner, require_caller, with_cookies};
use super::{check_origin, Ctx};
use crate::cookies::{ACCESS, SESSION};
use crate::error::{AppError, AppResult};
use crate::http::{Request, Response};
use crate::ids::SessionId;
use crate::jwt::keys::jwks_document;
use crate::platform::Platform;
use crate::users::rfc3339;
use crate::{pages, return_to};
use serde_json::json;

/// `GET /auth/me`: the user, from the access token alone.
pub async fn me<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Response> {
    let caller = require_caller(ctx, req).await?;
    let c = &caller.claims;
    let mut r = Response::json(
        200,
        &json!({
            "id": c.sub, "email": c.email, "email_verified": c.email_verified, "name": c.name,
            "session_id": c.sid, "expires_at": rfc3339(c.exp), "roles": c.roles,
        }),
    );
    r.set_header("cache-control", "no-store");
    Ok(with_cookies(r, &caller))
}

/// `GET /`: who is signed in (the newcomer's landing page).
pub async fn home<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Response> {
    let caller = authenticate(ctx, req).await?;
    let nonce = crate::providers::passkey::configured(&ctx.cfg.providers)
        .and(caller.as_ref())
        .map(|_| crate::crypto::random_token());
    let page = pages::home_page(
        caller.as_ref().map(|c| {
            (
                c.claims
                    .name
                    .as_deref()
                    .or(c.claims.email.as_deref())
                    .unwrap_or(c.claims.sub.as_str()),
                c.claims.email.as_deref(),
            )
        }),
        nonce.as_deref(),
    );
    let mut r = Response::html(200, page);
    if let Some(n) = &nonce {
        r.set_header("content-security-policy", &pages::csp_with_script(n));
    }
    r.set_header("cache-control", "no-store");
    Ok(match caller {
        Some(c) => with_cookies(r, &c),
        None => r,
    })
}

/// `POST /auth/logout`: ends this browser's session, clears cookies; redirect for forms, 204
/// for APIs.
pub async fn logout<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Response> {
    check_origin(ctx.cfg, req)?;
    let jar = ctx.jar();
    let sessions = ctx.sessions();
    let now = ctx.p.now();
    // The session of this browser's cookie only: an access token (which apps, origins and
    // logs see), even an expired one, must not be able to end someone's session.
    if let Some(sid) = jar
        .get(req, SESSION)
        .map(|raw| crate::sessions::sid_of(&raw))
    {
        if let Some(rec) = sessions.get(&sid, now).await? {
            super::ending::end_record(ctx, &sid, &rec, None).await?;
            ctx.event(
                req,
                Some(&rec.user_id),
                "logout",
                json!({ "session_id": sid.as_str() }),
            )
            .await;
        }
    }
    let mut r = if req.is_browser_form() {
        let target = return_to::validate(ctx.cfg, req.query("return_to").as_deref());
        let mut r = Response::redirect(target.as_ref().map_or(return_to::DEFAULT, |t| t.as_str()));
        r.status = 303;
        r
    } else {
        Response::new(204)
    };
    r.append_header("set-cookie", &jar.clear(SESSION));
    r.append_header("set-cookie", &jar.clear(ACCESS));
    Ok(r)
}

fn cors(ctx_origin_ok: bool, req: &Request, r: &mut Response) {
    if let (true, Some(origin)) = (ctx_origin_ok, req.header("origin")) {
        r.set_header("access-control-allow-origin", origin);
        r.set_header("access-control-allow-credentials", "true");
        r.set_header("vary", "Origin");
    }
}

/// `POST /auth/token`: a fresh access JWT for the session (SPAs).
pub async fn token<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Response> {
    check_origin(ctx.cfg, req)?;
    let caller = renew(ctx, req)
        .await?
        .ok_or_else(|| AppError::Unauthorized("Not signed in.".into()))?;
    let mut r = Response::json(
        200,
        &json!({
            "access_token": caller.token, "token_type": "Bearer", "expires_in": ctx.cfg.access_ttl,
        }),
    );
    r.set_header("cache-control", "no-store");
    cors(true, req, &mut r);
    Ok(with_cookies(r, &caller))
}

/// CORS preflight of `/auth/token`, for allowed origins only.
pub fn token_preflight<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Response> {
    let allowed = req
        .header("origin")
        .map(|o| ctx.cfg.is_allowed_origin(o))
        .unwrap_or(false);
    if !allowed {
        return Err(AppError::Forbidden("Origin not allowed.".into()));
    }
    let mut r = Response::new(204);
    cors(true, req, &mut r);
    r.set_header("access-control-allow-methods", "POST");
    r.set_header("access-control-allow-headers", "content-type");
    r.set_header("access-control-max-age", "600");
    Ok(r)
}

/// `GET /auth/sessions`: the caller's own sessions.
pub async fn list_sessions<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Response> {
    let caller = require_caller(ctx, req).await?;
    let sessions = ctx.sessions();
    let list: Vec<_> = sessions
        .list(&caller.claims.sub, ctx.p.now())
        .await?
        .into_iter()
        .map(|(sid, r)| {
            json!({
                "id": sid.as_str(), "current": sid == caller.claims.sid, "provider": r.provider,
                "user_agent": r.user_agent, "ip": r.ip, "created_at": rfc3339(r.created_at),
                "last_seen_at": rfc3339(r.last_seen_at), "expires_at": rfc3339(r.expires_at),
            })
        })
        .collect();
    Ok(with_cookies(
        Response::json(200, &json!({ "sessions": list })),
        &caller,
    ))
}

/// `DELETE /auth/sessions/{id}`: revokes one of the caller's own sessions.
pub async fn revoke_session<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    sid: &str,
) -> AppResult<Response> {
    let sid = &SessionId::from(sid);
    let caller = require_account_owner(ctx, req, true).await?;
    let sessions = ctx.sessions();
    let own = sessions
        .sids_of(&caller.claims.sub)
        .await?
        .iter()
        .any(|s| s == sid);
    if !own {
        return Err(AppError::NotFound);
    }
    super::ending::end_session(ctx, sid, &caller.claims.sub).await?;
    ctx.event(
        req,
        Some(&caller.claims.sub),
        "session_revoked",
        json!({"session_id": sid.as_str()}),
    )
    .await;
    Ok(with_cookies(Response::new(204), &caller))
}

/// `GET /.well-known/jwks.json`: every published key. Cached briefly, so that a key added
/// for rotation reaches verifiers well before it signs.
pub fn jwks<P: Platform>(ctx: &Ctx<'_, P>) -> Response {
    let mut r = Response::json(200, &jwks_document(&ctx.cfg.signing_keys));
    r.set_header("cache-control", "public, max-age=300");
    r.set_header("access-control-allow-origin", "*");
    r
}
