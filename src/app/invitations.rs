//! Sign-up invitations of the access policy: the admin API makes them (`POST
//! /admin/invitations`, or `POST /admin/users/{id}/invitations` to attach a new identity to an
//! existing user), lists and deletes them; a person opens the invitation's URL — the login
//! page with `?invitation=` — and signs in with any provider. The invitation rides in that
//! browser's login transaction (so it is bound to the browser like every sign-in) and is
//! redeemed at the callback: single use (spent atomically in the spent-set), 7 days, its
//! email (if any) must be the provider-verified one, and its roles go to the user.

use super::Ctx;
use crate::crypto::{b64url, random_bytes, random_token, sha256_b64url};
use crate::error::{AppError, AppResult};
use crate::http::{Request, Response};
use crate::platform::{Platform, SingleUse, SpendKind};
use crate::policy::{Arrival, Email};
use crate::return_to::ReturnTo;
use crate::users::{rfc3339, Invitation, LinkOutcome, Profile, User, UserId, UserPatch, UserStore};
use serde_json::{json, Value};

/// How long an invitation can be accepted: 7 days.
pub const INVITATION_TTL: i64 = 7 * 24 * 3600;
/// Invitations listed at most.
const LIST_LIMIT: u32 = 100;

fn bad(msg: String) -> AppError {
    AppError::BadRequest(msg)
}

/// `POST /admin/invitations` (`for_user` None) and `POST /admin/users/{id}/invitations`:
/// `{email?, roles?, return_to?}` → 201 `{id, url, expires_at}`.
pub async fn create<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    for_user: Option<&str>,
) -> AppResult<Response> {
    let for_user = for_user.map(UserId::from);
    let for_user = for_user.as_ref();
    let body = crate::validate::json_object(&req.body).map_err(bad)?;
    let mut email = None;
    let mut roles = Vec::new();
    let mut return_to = ReturnTo::default();
    for (k, v) in &body {
        match (k.as_str(), v) {
            (_, Value::Null) => {}
            ("email", Value::String(e)) => email = Some(crate::validate::email(e).map_err(bad)?),
            ("roles", v) => roles = crate::policy::role_list(v, "roles").map_err(bad)?,
            ("return_to", Value::String(r)) => {
                return_to = crate::return_to::validate(ctx.cfg, Some(r))
                    .map_err(|e| bad(format!("return_to refused: {}.", e.0)))?;
            }
            ("email" | "return_to", _) => return Err(bad(format!("{k} must be a string."))),
            _ => {
                return Err(bad(format!(
                    "Unknown field {k:?} (allowed: email, roles, return_to)."
                )))
            }
        }
    }
    let store = ctx.p.users();
    if let Some(id) = for_user {
        store.get_user(id).await?.ok_or(AppError::NotFound)?;
    }
    let now = ctx.p.now();
    let token = random_token();
    let inv = Invitation {
        id: format!("inv_{}", b64url(&random_bytes::<16>())),
        token_hash: sha256_b64url(token.as_bytes()),
        email,
        roles,
        return_to: return_to.into_string(),
        user_id: for_user.cloned(),
        created_at: now,
        expires_at: now + INVITATION_TTL,
        used_at: None,
        used_by: None,
    };
    store.create_invitation(&inv).await?;
    let detail = json!({"by": "admin", "invitation": inv.id, "roles": inv.roles});
    ctx.event(req, for_user, "invitation_created", detail).await;
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair(PARAM, &token)
        .finish();
    let url = format!("{}/auth/login?{query}", ctx.cfg.public_url);
    let mut r = Response::json(
        201,
        &json!({"id": inv.id, "url": url, "expires_at": rfc3339(inv.expires_at)}),
    );
    r.set_header("location", &format!("/admin/invitations/{}", inv.id));
    Ok(r)
}

/// The query parameter of an invitation's URL (on `/auth/login`).
pub const PARAM: &str = "invitation";

/// `GET /admin/invitations`: those not expired yet, newest first (used ones say so).
pub async fn list<P: Platform>(ctx: &Ctx<'_, P>) -> AppResult<Response> {
    let all = ctx
        .p
        .users()
        .list_invitations(ctx.p.now(), LIST_LIMIT)
        .await?;
    let list: Vec<Value> = all.iter().map(Invitation::to_json).collect();
    Ok(Response::json(200, &json!({ "invitations": list })))
}

/// `DELETE /admin/invitations/{id}` → 204; 404 when there is none.
pub async fn delete<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, id: &str) -> AppResult<Response> {
    if !ctx.p.users().delete_invitation(id).await? {
        return Err(AppError::NotFound);
    }
    ctx.event(
        req,
        None,
        "invitation_deleted",
        json!({"by": "admin", "invitation": id}),
    )
    .await;
    Ok(Response::new(204))
}

/// The invitation whose secret is `token`, if it can still be accepted.
pub async fn usable<P: Platform>(ctx: &Ctx<'_, P>, token_hash: &str) -> AppResult<Invitation> {
    match ctx.p.users().invitation_by_hash(token_hash).await? {
        Some(inv) if inv.used_at.is_none() && ctx.p.now() < inv.expires_at => Ok(inv),
        _ => Err(AppError::AccessDenied(
            "This invitation has expired, was already used or was withdrawn. Ask for a new one."
                .into(),
        )),
    }
}

/// Redeems the invitation of this sign-in (by the hash its login transaction carries) for the
/// verified `profile`: checks it (usable, its email, the policy's email rules), then spends
/// it — of concurrent redemptions exactly one goes on — and makes the user with its roles, or
/// links the identity to the invitation's user and adds the roles. The sign-in then goes on
/// as a returning one. A refusal before the spend leaves the invitation usable.
pub async fn redeem<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    provider: &str,
    profile: &Profile,
    token_hash: &str,
) -> AppResult<()> {
    let inv = usable(ctx, token_hash).await?;
    let email = Email {
        address: profile.email.as_deref(),
        verified: profile.email_verified == Some(true),
    };
    if let Some(want) = &inv.email {
        if !email
            .address
            .is_some_and(|got| email.verified && got.eq_ignore_ascii_case(want))
        {
            return Err(AppError::AccessDenied(format!(
                "This invitation is for {want}, and your sign-in provider did not verify that address for this account. Sign in with the account of {want}."
            )));
        }
    }
    let policy = &ctx.cfg.policy;
    policy
        .admit(provider, email, Arrival::Invited)
        .map_err(AppError::AccessDenied)?;
    let store = ctx.p.users();
    let owner = store.identity_owner(&profile.key()).await?;
    let taken = || {
        AppError::Conflict("This sign-in already belongs to an account here: sign in without the invitation. The invitation was not used.".into())
    };
    match (&inv.user_id, &owner) {
        (None, Some(_)) => return Err(taken()),
        (Some(u), Some(o)) if u != o => return Err(taken()),
        _ => {}
    }
    if !ctx
        .p
        .single_use()
        .spend(SpendKind::SignUpInvitation, token_hash, inv.expires_at)
        .await?
    {
        return Err(AppError::AccessDenied(
            "This invitation was already used.".into(),
        ));
    }
    let now = ctx.p.now();
    let user_id = match &inv.user_id {
        None => {
            let mut user = User::from_profile(profile, now);
            user.roles = inv.roles.clone();
            let id = store.create_linked(&user, profile, now).await?;
            if id != user.id {
                return Err(taken()); // a first sign-in of this identity won a race
            }
            id
        }
        Some(uid) => {
            match store.link_identity(uid, profile, now).await? {
                LinkOutcome::Linked | LinkOutcome::AlreadyLinked => {}
                LinkOutcome::OwnedByOther(_) => return Err(taken()),
                LinkOutcome::NoUser => {
                    return Err(AppError::Conflict(
                        "The account this invitation was for no longer exists.".into(),
                    ))
                }
            }
            add_roles(store, uid, &inv.roles, now).await?;
            uid.clone()
        }
    };
    store.mark_invitation_used(&inv.id, &user_id, now).await?;
    let detail = json!({"invitation": inv.id, "provider": provider, "roles": inv.roles});
    ctx.event(req, Some(&user_id), "invitation_accepted", detail)
        .await;
    Ok(())
}

/// Adds `roles` to an existing user's own (at most the allowed number).
async fn add_roles<U: UserStore>(
    store: &U,
    id: &UserId,
    roles: &[String],
    now: i64,
) -> AppResult<()> {
    if roles.is_empty() {
        return Ok(());
    }
    let user = store.get_user(id).await?.ok_or(AppError::NotFound)?;
    let mut all = user.roles;
    for r in roles {
        if !all.contains(r) && all.len() < crate::policy::MAX_ROLES {
            all.push(r.clone());
        }
    }
    let patch = UserPatch {
        roles: Some(all),
        ..UserPatch::default()
    };
    store.update_user(id, &patch, now).await?;
    Ok(())
}
