//! Who is calling: the access JWT (header `Authorization: Bearer` or the access cookie) is
//! verified with no storage read; only when it is missing or expired is the KV session
//! consulted, and then D1 confirms the user is still active before a new token is issued.
//! This is where the revocation bound (`ACCESS_TOKEN_TTL_SECONDS`) comes from.

use super::Ctx;
use crate::cookies::{ACCESS, SESSION};
use crate::error::AppResult;
use crate::http::Request;
use crate::jwt::access::{self, AccessClaims};
use crate::platform::Platform;
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
    let sessions = ctx.sessions();
    let Some((sid, rec)) = sessions.lookup(&raw, now).await? else {
        return Ok(None);
    };
    let user = match ctx.p.users().get_user(&rec.user_id).await? {
        Some(u) if u.active => u,
        _ => {
            super::ending::end_record(ctx, &sid, &rec, None).await?;
            return Ok(None);
        }
    };
    if !sessions.touch(&sid, rec, now).await? {
        return Ok(None); // revoked while we looked
    }
    let (claims, token) = issue_for(ctx, &user, &sid).await?;
    let cookie = jar.set(ACCESS, &token, ctx.cfg.access_ttl);
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
        .map_err(|e| crate::error::AppError::Internal(format!("signing: {e}")))?;
    Ok((claims, token))
}

/// The caller, or 401.
pub async fn require_caller<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Caller> {
    authenticate(ctx, req)
        .await?
        .ok_or_else(|| crate::error::AppError::Unauthorized("Not signed in.".into()))
}

/// The caller, whose session must still be live: routes that change the account read storage
/// anyway, so they need not honour a revoked session's access token until it expires.
pub async fn require_live_caller<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
) -> AppResult<Caller> {
    let caller = require_caller(ctx, req).await?;
    let sessions = ctx.sessions();
    if sessions
        .get(&caller.claims.sid, ctx.p.now())
        .await?
        .is_none()
    {
        return Err(crate::error::AppError::Unauthorized(
            "This session has ended.".into(),
        ));
    }
    Ok(caller)
}

/// `r` with the caller's renewed cookies, if any.
pub fn with_cookies(mut r: crate::http::Response, caller: &Caller) -> crate::http::Response {
    for c in &caller.set_cookies {
        r.append_header("set-cookie", c);
    }
    r
}
