//! The admin API (README "Admin API"): JSON under `/admin`, behind `Authorization: Bearer
//! <ADMIN_API_KEY>`. The key is compared in constant time; a missing or wrong key gets the
//! same 401 with no detail (also for paths that do not exist, so the API cannot be mapped
//! without the key), is recorded as an `admin_auth_failed` event, and counts against a
//! per-client-IP limit — once over it, every request from that IP (even with the right key)
//! gets 429 until the window ends, so the key cannot be guessed at speed.
//!
//! Multi-row changes are one D1 batch (see [`crate::users::UserStore`]); sessions live in KV
//! and go first on delete (a failure then leaves the user in place, and a retry finishes).

use super::ending::{end_all_sessions, end_session};
use super::invitations;
use super::Ctx;
use crate::app::auth::bearer;
use crate::error::{AppError, AppResult};
use crate::http::{Method, Request, Response};
use crate::ids::{IdentityKey, SessionId, UserId};
use crate::platform::Platform;
use crate::providers::stytch;
use crate::ratelimit::{self, Limit};
use crate::return_to::ReturnTo;
use crate::txn::{self, LoginTxn, Purpose};
use crate::users::{new_user_id, rfc3339, UnlinkOutcome, User, UserQuery, UserStore};
use crate::validate;
use serde_json::{json, Value};

/// Failed admin-key attempts allowed per client IP and window.
pub const AUTH_FAILURES: Limit = Limit {
    max: 10,
    window: 600,
};

/// Events shown in `GET /admin/users/{id}`.
const RECENT_EVENTS: u32 = 20;

const UNAUTHORIZED: &str = "Unauthorized.";

fn bad(msg: String) -> AppError {
    AppError::BadRequest(msg)
}

/// Routes `/admin/{rest…}` after checking the key.
pub async fn route<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    rest: &[&str],
) -> AppResult<Response> {
    authorize(ctx, req).await?;
    if let Some(r) = super::oauth::admin_route(ctx, req, rest).await {
        let mut r = r?;
        r.set_header("cache-control", "no-store");
        return Ok(r);
    }
    let mut r = match (req.method, rest) {
        (Method::Get, ["users"]) => list_users(ctx, req).await,
        (Method::Post, ["users"]) => create_user(ctx, req).await,
        (Method::Get, ["users", id]) => get_user(ctx, id).await,
        (Method::Patch, ["users", id]) => update_user(ctx, req, id).await,
        (Method::Delete, ["users", id]) => delete_user(ctx, req, id).await,
        (Method::Post, ["users", id, "activate"]) => set_active(ctx, req, id, true).await,
        (Method::Post, ["users", id, "deactivate"]) => set_active(ctx, req, id, false).await,
        (Method::Get, ["users", id, "sessions"]) => list_sessions(ctx, id).await,
        (Method::Delete, ["users", id, "sessions"]) => revoke_sessions(ctx, req, id, None).await,
        (Method::Delete, ["users", id, "sessions", sid]) => {
            revoke_sessions(ctx, req, id, Some(sid)).await
        }
        (Method::Delete, ["users", id, "identities"]) => unlink(ctx, req, id).await,
        (Method::Get, ["users", id, "events"]) => events(ctx, req, id).await,
        (Method::Post, ["magic-links"]) => magic_link(ctx, req).await,
        (Method::Post, ["invitations"]) => invitations::create(ctx, req, None).await,
        (Method::Get, ["invitations"]) => invitations::list(ctx).await,
        (Method::Delete, ["invitations", id]) => invitations::delete(ctx, req, id).await,
        (Method::Post, ["users", id, "invitations"]) => {
            invitations::create(ctx, req, Some(id)).await
        }
        (
            _,
            ["users"]
            | ["users", _]
            | ["users", _, "activate" | "deactivate" | "sessions" | "identities" | "events" | "invitations"]
            | ["users", _, "sessions", _]
            | ["magic-links"]
            | ["invitations"]
            | ["invitations", _],
        ) => Err(AppError::MethodNotAllowed),
        _ => Err(AppError::NotFound),
    }?;
    r.set_header("cache-control", "no-store");
    Ok(r)
}

/// Checks the bearer key; see the module comment.
async fn authorize<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<()> {
    let now = ctx.p.now();
    let bucket = format!("admin-auth:{}", req.client_network());
    if ratelimit::exceeded(ctx.p.counters(), &bucket, AUTH_FAILURES, now).await? {
        return Err(AppError::RateLimited);
    }
    let presented = bearer(req);
    if let (Some(key), Some(token)) = (&ctx.cfg.admin_api_key, presented) {
        if key.matches(token) {
            return Ok(());
        }
    }
    let within = ratelimit::hit(ctx.p.counters(), &bucket, AUTH_FAILURES, now).await?;
    let reason = match (&ctx.cfg.admin_api_key, presented) {
        (None, _) => "no_key_configured",
        (_, None) => "missing",
        _ => "wrong",
    };
    ctx.event(
        req,
        None,
        "admin_auth_failed",
        json!({"reason": reason, "path": req.path().chars().take(200).collect::<String>()}),
    )
    .await;
    if !within {
        return Err(AppError::RateLimited);
    }
    Err(AppError::Unauthorized(UNAUTHORIZED.into()))
}

async fn existing_user<P: Platform>(ctx: &Ctx<'_, P>, id: &UserId) -> AppResult<User> {
    ctx.p.users().get_user(id).await?.ok_or(AppError::NotFound)
}

/// `GET /admin/users?limit=&cursor=&email=`.
async fn list_users<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Response> {
    let limit = validate::page_limit(req.query("limit").as_deref()).map_err(bad)?;
    let after = match req.query("cursor").filter(|c| !c.is_empty()) {
        Some(c) => Some(validate::decode_cursor(&c).map_err(bad)?),
        None => None,
    };
    let email = req
        .query("email")
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty());
    let q = UserQuery {
        limit: limit + 1,
        after,
        email,
    };
    let mut users = ctx.p.users().list_users(&q).await?;
    let next = if users.len() > limit as usize {
        users.truncate(limit as usize);
        users
            .last()
            .map(|u| validate::encode_cursor(u.created_at, u.id.as_str()))
    } else {
        None
    };
    let list: Vec<Value> = users.iter().map(User::to_json).collect();
    Ok(Response::json(
        200,
        &json!({ "users": list, "next_cursor": next }),
    ))
}

/// `POST /admin/users` → 201 with the user.
async fn create_user<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Response> {
    let input = validate::new_user(&req.body).map_err(bad)?;
    let now = ctx.p.now();
    let user = User {
        id: new_user_id(),
        name: input.name,
        email: input.email,
        email_verified: false,
        phone: input.phone,
        picture: None,
        active: true,
        metadata: input.metadata.unwrap_or_else(|| json!({})),
        created_at: now,
        updated_at: now,
        last_login_at: None,
        sessions_valid_after: 0,
        roles: Vec::new(),
    };
    ctx.p.users().create_user(&user).await?;
    ctx.event(req, Some(&user.id), "created", json!({"by": "admin"}))
        .await;
    let mut r = Response::json(201, &user.to_json());
    r.set_header("location", &format!("/admin/users/{}", user.id.as_str()));
    Ok(r)
}

/// `GET /admin/users/{id}`: the user, its identities and its recent events.
async fn get_user<P: Platform>(ctx: &Ctx<'_, P>, id: &str) -> AppResult<Response> {
    let id = &UserId::from(id);
    let user = existing_user(ctx, id).await?;
    let store = ctx.p.users();
    let identities: Vec<Value> = store
        .identities_of(id)
        .await?
        .iter()
        .map(|i| i.to_json())
        .collect();
    let events: Vec<Value> = store
        .events_of(id, RECENT_EVENTS, None)
        .await?
        .iter()
        .map(|e| e.to_json())
        .collect();
    let mut body = user.to_json();
    body["identities"] = Value::Array(identities);
    body["recent_events"] = Value::Array(events);
    Ok(Response::json(200, &body))
}

/// `PATCH /admin/users/{id}`.
async fn update_user<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    id: &str,
) -> AppResult<Response> {
    let id = &UserId::from(id);
    let patch = validate::user_patch(&req.body).map_err(bad)?;
    if patch.is_empty() {
        return Ok(Response::json(
            200,
            &existing_user(ctx, id).await?.to_json(),
        ));
    }
    let user = ctx
        .p
        .users()
        .update_user(id, &patch, ctx.p.now())
        .await?
        .ok_or(AppError::NotFound)?;
    ctx.event(
        req,
        Some(id),
        "updated",
        json!({"by": "admin", "fields": patch.fields()}),
    )
    .await;
    Ok(Response::json(200, &user.to_json()))
}

/// `DELETE /admin/users/{id}`: sessions (KV), then the user and its identities (one D1
/// batch) → 204.
async fn delete_user<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    id: &str,
) -> AppResult<Response> {
    let id = &UserId::from(id);
    existing_user(ctx, id).await?;
    let revoked = end_all_sessions(ctx, id).await?;
    if !ctx.p.users().delete_user(id).await? {
        return Err(AppError::NotFound);
    }
    ctx.event(
        req,
        Some(id),
        "deleted",
        json!({"by": "admin", "sessions_revoked": revoked}),
    )
    .await;
    Ok(Response::new(204))
}

/// `POST /admin/users/{id}/activate` and `…/deactivate` (which also ends every session:
/// D1 first, so that a renewal racing with it already sees the user inactive).
async fn set_active<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    id: &str,
    active: bool,
) -> AppResult<Response> {
    let id = &UserId::from(id);
    if !ctx
        .p
        .users()
        .set_user_active(id, active, ctx.p.now())
        .await?
    {
        return Err(AppError::NotFound);
    }
    if active {
        ctx.event(req, Some(id), "activated", json!({"by": "admin"}))
            .await;
    } else {
        let revoked = end_all_sessions(ctx, id).await?;
        ctx.event(
            req,
            Some(id),
            "deactivated",
            json!({"by": "admin", "sessions_revoked": revoked}),
        )
        .await;
    }
    Ok(Response::json(
        200,
        &existing_user(ctx, id).await?.to_json(),
    ))
}

/// `GET /admin/users/{id}/sessions`.
async fn list_sessions<P: Platform>(ctx: &Ctx<'_, P>, id: &str) -> AppResult<Response> {
    let id = &UserId::from(id);
    existing_user(ctx, id).await?;
    let list: Vec<Value> = ctx
        .sessions()
        .list(id, ctx.p.now())
        .await?
        .into_iter()
        .map(|(sid, r)| {
            json!({
                "id": sid.as_str(), "provider": r.provider, "issuer": r.issuer,
                "user_agent": r.user_agent, "ip": r.ip, "created_at": rfc3339(r.created_at),
                "last_seen_at": rfc3339(r.last_seen_at), "expires_at": rfc3339(r.expires_at),
            })
        })
        .collect();
    Ok(Response::json(200, &json!({ "sessions": list })))
}

/// `DELETE /admin/users/{id}/sessions[/{sid}]` → 204.
async fn revoke_sessions<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    id: &str,
    sid: Option<&str>,
) -> AppResult<Response> {
    let id = &UserId::from(id);
    existing_user(ctx, id).await?;
    let s = ctx.sessions();
    let detail = match sid {
        Some(sid) => {
            let sid = &SessionId::from(sid);
            if !s.sids_of(id).await?.iter().any(|x| x == sid) {
                return Err(AppError::NotFound);
            }
            end_session(ctx, sid, id).await?;
            json!({"by": "admin", "session_id": sid.as_str()})
        }
        None => json!({"by": "admin", "all": true, "count": end_all_sessions(ctx, id).await?}),
    };
    ctx.event(req, Some(id), "session_revoked", detail).await;
    Ok(Response::new(204))
}

/// `DELETE /admin/users/{id}/identities?issuer=&sub=` → 204; 409 for the last identity.
async fn unlink<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, id: &str) -> AppResult<Response> {
    let id = &UserId::from(id);
    let issuer = validate::required_param("issuer", req.query("issuer")).map_err(bad)?;
    let sub = validate::required_param("sub", req.query("sub")).map_err(bad)?;
    existing_user(ctx, id).await?;
    let key = IdentityKey {
        issuer: &issuer,
        sub: &sub,
    };
    match ctx.p.users().unlink_identity(id, &key).await? {
        UnlinkOutcome::Unlinked => {
            ctx.event(
                req,
                Some(id),
                "unlink",
                json!({"by": "admin", "issuer": issuer, "sub": sub}),
            )
            .await;
            Ok(Response::new(204))
        }
        UnlinkOutcome::LastIdentity => Err(AppError::Conflict(
            "This is the user's last identity; it cannot be unlinked.".into(),
        )),
        UnlinkOutcome::NotFound => Err(AppError::NotFound),
    }
}

/// `GET /admin/users/{id}/events?limit=&cursor=`: newest first. Events outlive their user
/// (until pruned), so a deleted user's events are still listed; an id with neither a user
/// nor events is 404.
async fn events<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, id: &str) -> AppResult<Response> {
    let id = &UserId::from(id);
    let limit = validate::page_limit(req.query("limit").as_deref()).map_err(bad)?;
    let after = match req.query("cursor").filter(|c| !c.is_empty()) {
        Some(c) => Some(validate::decode_event_cursor(&c).map_err(bad)?),
        None => None,
    };
    let store = ctx.p.users();
    let mut list = store.events_of(id, limit + 1, after).await?;
    if list.is_empty() && after.is_none() && store.get_user(id).await?.is_none() {
        return Err(AppError::NotFound);
    }
    let next = if list.len() > limit as usize {
        list.truncate(limit as usize);
        list.last()
            .map(|e| validate::encode_cursor(e.at, &e.id.to_string()))
    } else {
        None
    };
    let list: Vec<Value> = list.iter().map(|e| e.to_json()).collect();
    Ok(Response::json(
        200,
        &json!({ "events": list, "next_cursor": next }),
    ))
}

/// `POST /admin/magic-links` `{email, return_to?, provider?}`: the magic-link provider
/// (`provider`, or the only one configured) emails a sign-in link → 202. The link is an
/// invitation ([`txn::start_invitation`]): the person opens it in their own browser, which
/// did not start the sign-in. Sends count against the same per-address limit as
/// `POST /auth/magic-link`. 409 when no magic-link provider is configured.
async fn magic_link<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Response> {
    let body = validate::json_object(&req.body).map_err(bad)?;
    if let Some(k) = body
        .keys()
        .find(|k| !matches!(k.as_str(), "email" | "return_to" | "provider"))
    {
        return Err(bad(format!(
            "Unknown field {k:?} (allowed: email, return_to, provider)."
        )));
    }
    let email = match body.get("email") {
        Some(Value::String(e)) => crate::validate::email(e).map_err(bad)?,
        _ => return Err(bad("email is required (a string).".into())),
    };
    let return_to = match body.get("return_to") {
        None | Some(Value::Null) => ReturnTo::default(),
        Some(Value::String(r)) => crate::return_to::validate(ctx.cfg, Some(r))
            .map_err(|e| bad(format!("return_to refused: {}.", e.0)))?,
        Some(_) => return Err(bad("return_to must be a string.".into())),
    };
    let wanted = match body.get("provider") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => Some(p.as_str()),
        Some(_) => return Err(bad("provider must be a string.".into())),
    };
    let picked = super::magic::pick(ctx.cfg, wanted)?
        .ok_or_else(|| AppError::Conflict("No magic-link provider is configured.".into()))?;
    let (name, c) = match picked {
        (name, super::magic::Magic::Stytch(c)) => (name, c),
        (name, super::magic::Magic::Email(_)) => {
            return Err(AppError::Conflict(format!(
                "{name:?} (the email kind) does not send admin invitations; use POST /admin/invitations."
            )))
        }
    };
    let within = ratelimit::hit(
        ctx.p.counters(),
        &format!("magic-email:{}", email.to_ascii_lowercase()),
        super::magic::PER_EMAIL,
        ctx.p.now(),
    )
    .await?;
    if !within {
        return Err(AppError::RateLimited);
    }
    let invitation = Purpose::Invitation {
        invitee: email.clone(),
    };
    let t = LoginTxn::new(name, return_to, invitation, ctx.p.now());
    let link = txn::invitation_url(ctx.cfg, &t);
    stytch::send_magic_link(ctx.p, c, &email, &link, &t.flow(ctx.cfg)).await?;
    // Stored only once the link is on its way (the link is useless without it).
    txn::start_invitation(ctx.p.kv(), ctx.cfg, &t).await?;
    ctx.event(
        req,
        None,
        "magic_link_sent",
        json!({"by": "admin", "provider": name}),
    )
    .await;
    Ok(Response::json(
        202,
        &json!({"status": "sent", "provider": name, "expires_in": txn::TXN_TTL}),
    ))
}

#[cfg(test)]
mod tests;
