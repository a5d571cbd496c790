//! Who is calling: the access JWT (header `Authorization: Bearer` or the access cookie) is
//! verified with no storage read; only when it is missing or expired is the KV session
//! consulted, and then D1 confirms the user is still active before a new token is issued.
//! This is where the revocation bound (`ACCESS_TOKEN_TTL_SECONDS`) comes from.

use super::Ctx;
use crate::cookies::{CookieJar, ACCESS, SESSION, TXN};
use crate::error::{AppError, AppResult};
use crate::http::Request;
use crate::jwt::access::{self, AccessClaims};
use crate::platform::Platform;
use crate::sessions::SessionRecord;
use crate::users::{User, UserStore};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub claims: AccessClaims,
    /// The access token that proves it (fresh when renewed).
    pub token: String,
    /// Cookies to set on the response (a renewed access token).
    pub set_cookies: Vec<String>,
}

/// The bearer token of the `Authorization` header.
pub fn bearer(req: &Request) -> Option<&str> {
    let h = req.header("authorization")?;
    let (scheme, token) = h.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The caller, if any: from a valid access token, else renewed from the session cookie.
pub async fn authenticate<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
) -> AppResult<Option<Caller>> {
    let jar = ctx.jar();
    let now = ctx.p.now();
    if let Some(token) = bearer(req) {
        // An explicit bearer token stands alone: no fallback to cookies.
        return Ok(access::verify(ctx.cfg, ctx.p.sig(), token, now)
            .await
            .ok()
            .map(|claims| Caller {
                claims,
                token: token.to_string(),
                set_cookies: vec![],
            }));
    }
    if let Some(token) = jar.get(req, ACCESS) {
        if let Ok(claims) = access::verify(ctx.cfg, ctx.p.sig(), &token, now).await {
            return Ok(Some(Caller {
                claims,
                token,
                set_cookies: vec![],
            }));
        }
    }
    renew(ctx, req).await
}

/// A fresh access token from the session cookie, after D1 confirms the user is active.
pub async fn renew<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Option<Caller>> {
    let jar = ctx.jar();
    let now = ctx.p.now();
    let Some(raw) = jar.get(req, SESSION) else {
        return Ok(None);
    };
    let Some((sid, rec)) = ctx.sessions().lookup(&raw, now).await? else {
        return Ok(None);
    };
    let Some(user) = live_user(ctx, &sid, &rec).await? else {
        return Ok(None);
    };
    renew_session(ctx, &sid, rec, &user).await
}

/// Whether a session started at `created_at` outlived a "revoke all" of its user.
/// Inclusive: a session started in the same second as the revocation ends too (the clock
/// has only seconds, and a session the revocation may not have seen must not survive it).
pub fn revoked_by_time(created_at: i64, user: &User) -> bool {
    created_at <= user.sessions_valid_after
}

/// The user of session `sid`, read once from D1: active, and not revoked all at once since
/// this session began (which also stops a session that KV's index did not list to "revoke
/// all"). Otherwise the session is ended here and `None` comes back.
async fn live_user<P: Platform>(
    ctx: &Ctx<'_, P>,
    sid: &str,
    rec: &SessionRecord,
) -> AppResult<Option<User>> {
    match ctx.p.users().get_user(&rec.user_id).await? {
        Some(u) if u.active && !revoked_by_time(rec.created_at, &u) => Ok(Some(u)),
        _ => {
            super::ending::end_record(ctx, sid, rec, None).await?;
            Ok(None)
        }
    }
}

/// Marks session `sid` used and issues a fresh access token (and its cookie) for `user`.
async fn renew_session<P: Platform>(
    ctx: &Ctx<'_, P>,
    sid: &str,
    rec: SessionRecord,
    user: &User,
) -> AppResult<Option<Caller>> {
    if !ctx.sessions().touch(sid, rec, ctx.p.now()).await? {
        return Ok(None); // revoked while we looked
    }
    let (claims, token) = issue_for(ctx, user, sid).await?;
    let cookie = ctx.jar().set(ACCESS, &token, ctx.cfg.access_ttl);
    Ok(Some(Caller {
        claims,
        token,
        set_cookies: vec![cookie],
    }))
}

/// Issues an access token for `user` in session `sid`.
pub async fn issue_for<P: Platform>(
    ctx: &Ctx<'_, P>,
    user: &User,
    sid: &str,
) -> AppResult<(AccessClaims, String)> {
    let mut claims = AccessClaims::new(
        ctx.cfg,
        &user.id,
        sid,
        user.email.clone(),
        user.name.clone(),
        ctx.p.now(),
    );
    claims.email_verified = user.email_verified && user.email.is_some();
    let token = access::issue(ctx.cfg, ctx.p.sig(), &claims)
        .await
        .map_err(|e| AppError::Internal(format!("signing: {e}")))?;
    Ok((claims, token))
}

/// The caller, or 401.
pub async fn require_caller<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Caller> {
    authenticate(ctx, req)
        .await?
        .ok_or_else(|| AppError::Unauthorized("Not signed in.".into()))
}

/// What an access token alone cannot do.
const NEEDS_SESSION: &str =
    "Changing your account needs this browser's sign-in session; an access token alone cannot do it.";

/// The one gate of every route that changes the account (starting or finishing a link,
/// unlinking, revoking a device): the caller is the owner of this browser's first-party
/// session cookie — live in KV, its user active in D1 and not revoked since — and the
/// request comes from Gatehouse's own pages (`same_origin`, for everything but the
/// provider's redirect back). An `Authorization: Bearer` token is ignored here: access
/// tokens are seen by apps, origins and logs by design, so one that leaks must not be
/// able to take the account over.
pub async fn require_account_owner<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    same_origin: bool,
) -> AppResult<Caller> {
    let jar = ctx.jar();
    let now = ctx.p.now();
    let raw = jar
        .get(req, SESSION)
        .ok_or_else(|| AppError::Unauthorized(NEEDS_SESSION.into()))?;
    let ended = || AppError::Unauthorized("This session has ended; sign in again.".into());
    let (sid, rec) = ctx.sessions().lookup(&raw, now).await?.ok_or_else(ended)?;
    if same_origin {
        check_same_origin(ctx.cfg, req)?;
    }
    let user = live_user(ctx, &sid, &rec).await?.ok_or_else(ended)?;
    // The access cookie of this very session spares a renewal; any other is not used.
    if let Some(token) = jar.get(req, ACCESS) {
        if let Ok(claims) = access::verify(ctx.cfg, ctx.p.sig(), &token, now).await {
            if claims.sid == sid && claims.sub == user.id {
                return Ok(Caller {
                    claims,
                    token,
                    set_cookies: vec![],
                });
            }
        }
    }
    renew_session(ctx, &sid, rec, &user)
        .await?
        .ok_or_else(ended)
}

/// Only Gatehouse's own pages may change the account: `Origin` exactly `PUBLIC_URL`'s
/// origin or, where a browser sends no `Origin` (a top-level GET), `Sec-Fetch-Site`
/// `same-origin` (or `none`: typed or bookmarked by the user). A cookie-carrying request
/// that says neither is refused: a browser without Fetch Metadata cannot be told apart
/// from a cross-site navigation.
pub fn check_same_origin(cfg: &crate::config::Config, req: &Request) -> AppResult<()> {
    let ok = match (req.header("origin"), req.header("sec-fetch-site")) {
        (Some(origin), _) => origin == cfg.public_origin,
        (None, Some(site)) => matches!(site, "same-origin" | "none"),
        (None, None) => false,
    };
    if ok {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "Account changes are accepted only from this site's own pages.".into(),
        ))
    }
}

/// Two cookies of one name on any cookie Gatehouse authenticates with (its session, access
/// and login-transaction cookies, and each Passage provider's cookie) → 400 before anything
/// is read or written. See [`crate::cookies::duplicated`].
pub fn refuse_duplicate_cookies(cfg: &crate::config::Config, req: &Request) -> AppResult<()> {
    if !req.headers.iter().any(|(k, _)| k == "cookie") {
        return Ok(());
    }
    let jar = CookieJar {
        secure: cfg.secure_cookies,
    };
    let own = [SESSION, ACCESS, TXN].map(|n| jar.wire_name(n));
    let mut names: Vec<&str> = own.iter().map(String::as_str).collect();
    names.extend(cfg.providers.values().filter_map(|p| match p {
        crate::providers::ProviderConfig::Passage(c) => Some(c.cookie.as_str()),
        _ => None,
    }));
    match crate::cookies::duplicated(req, &names) {
        None => Ok(()),
        Some(name) => Err(AppError::BadRequest(format!(
            "The cookie {name} was sent twice (another site may have set one); \
             clear this site's cookies and sign in again."
        ))),
    }
}

/// `r` with the caller's renewed cookies, if any.
pub fn with_cookies(mut r: crate::http::Response, caller: &Caller) -> crate::http::Response {
    for c in &caller.set_cookies {
        r.append_header("set-cookie", c);
    }
    r
}
