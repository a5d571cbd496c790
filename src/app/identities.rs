//! Self-service linking (README "Routes"): a signed-in user links a second provider
//! explicitly (`/auth/login?provider=X&link=1`), lists their identities
//! (`GET /auth/identities`) and unlinks one while another remains
//! (`DELETE /auth/identities?issuer=&sub=`). Email never links: an identity that already
//! belongs to another user is refused (409) and nothing is merged.

use super::auth::{require_account_owner, require_caller, with_cookies};
use super::Ctx;
use crate::error::{AppError, AppResult};
use crate::http::{Request, Response};
use crate::platform::Platform;
use crate::providers::ProviderConfig;
use crate::return_to::ReturnTo;
use crate::users::{IdentityKey, LinkOutcome, Profile, UnlinkOutcome, UserId, UserStore};
use crate::validate;
use serde_json::json;

/// Whether `/auth/login` asks to link (`link=1` or `link=true`).
pub fn wants_link(req: &Request) -> bool {
    matches!(req.query("link").as_deref(), Some("1" | "true"))
}

/// At the start of `/auth/login?…&link=1`: the signed-in user the new identity will be
/// linked to (kept in the login transaction).
pub async fn link_user_for_login<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    provider: &ProviderConfig,
) -> AppResult<Option<UserId>> {
    if !wants_link(req) {
        return Ok(None);
    }
    if !provider.needs_transaction() || provider.is_magic_link() {
        return Err(AppError::BadRequest(
            "This provider cannot be linked from here.".into(),
        ));
    }
    // Linking attaches whatever identity the provider returns to this account, so only this
    // browser's own session, on Gatehouse's own pages, may start it: not another site (it
    // could have planted its own IdP session), and not a leaked access token.
    let caller = require_account_owner(ctx, req, true).await?;
    Ok(Some(caller.claims.sub))
}

/// The end of a linking callback: the browser must still be signed in as the user that
/// started it; the identity is linked to that user unless it belongs to someone else.
/// No new session is made (the user keeps theirs).
pub async fn finish_link<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    name: &str,
    profile: &Profile,
    user_id: &UserId,
    return_to: &ReturnTo,
) -> AppResult<Response> {
    // A vendor session made by the provider step is not needed when linking.
    super::ending::end_vendor(ctx, name, profile.vendor_logout.as_deref()).await;
    // The provider sends the browser back here from its own site, so there is no same-origin
    // request to check; what binds this step is the login transaction (only a same-origin
    // start by this session made it) and this browser's session cookie, of the same user.
    let caller = match require_account_owner(ctx, req, false).await {
        Ok(c) if c.claims.sub == *user_id => c,
        Ok(_) | Err(AppError::Unauthorized(_)) => {
            return Err(AppError::Forbidden(
                "The account that started linking is no longer signed in here.".into(),
            ))
        }
        Err(e) => return Err(e),
    };
    let store = ctx.p.users();
    let detail = json!({"provider": name, "issuer": profile.issuer, "sub": profile.sub});
    match store.link_identity(user_id, profile, ctx.p.now()).await? {
        LinkOutcome::Linked => ctx.event(req, Some(user_id), "link", detail).await,
        LinkOutcome::AlreadyLinked => {}
        LinkOutcome::OwnedByOther(_) => {
            ctx.event(req, Some(user_id), "link_refused", detail).await;
            return Err(AppError::Conflict(format!(
                "This {name} account is already linked to another user; nothing was changed."
            )));
        }
        LinkOutcome::NoUser => {
            return Err(AppError::Forbidden("This account no longer exists.".into()))
        }
    }
    Ok(with_cookies(
        Response::redirect(return_to.as_str()),
        &caller,
    ))
}

/// `GET /auth/identities`: the caller's linked identities.
pub async fn list<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Response> {
    let caller = require_caller(ctx, req).await?;
    let list: Vec<_> = ctx
        .p
        .users()
        .identities_of(&caller.claims.sub)
        .await?
        .iter()
        .map(|i| i.to_json())
        .collect();
    let mut r = Response::json(200, &json!({ "identities": list }));
    r.set_header("cache-control", "no-store");
    Ok(with_cookies(r, &caller))
}

/// `DELETE /auth/identities?issuer=&sub=`: unlinks one of the caller's identities; 409 for
/// the last one.
pub async fn unlink<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Response> {
    let caller = require_account_owner(ctx, req, true).await?;
    let bad = AppError::BadRequest;
    let issuer = validate::required_param("issuer", req.query("issuer")).map_err(bad)?;
    let sub = validate::required_param("sub", req.query("sub")).map_err(bad)?;
    let user_id = &caller.claims.sub;
    let key = IdentityKey {
        issuer: &issuer,
        sub: &sub,
    };
    match ctx.p.users().unlink_identity(user_id, &key).await? {
        UnlinkOutcome::Unlinked => {
            ctx.event(
                req,
                Some(user_id),
                "unlink",
                json!({"issuer": issuer, "sub": sub}),
            )
            .await;
            Ok(with_cookies(Response::new(204), &caller))
        }
        UnlinkOutcome::LastIdentity => Err(AppError::Conflict(
            "This is your last sign-in method; link another before removing it.".into(),
        )),
        UnlinkOutcome::NotFound => Err(AppError::NotFound),
    }
}
