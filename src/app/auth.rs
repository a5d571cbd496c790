//! Who is calling: the access JWT (header `Authorization: Bearer` or the access cookie) is
//! verified with no storage read; only when it is missing or expired is the KV session
//! consulted, and then D1 confirms the user is still active before a new token is issued.
//! This is where the revocation bound (`ACCESS_TOKEN_TTL_SECONDS`) comes from.

use super::Ctx;
use crate::access::{self, AccessClaims};
use crate::cookies::{ACCESS, SESSION};
use crate::error::{AppError, AppResult};
use crate::http::Request;
use crate::ids::SessionId;
use crate::jwt::JwtError;
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
        let claims = verified(access::verify(ctx.cfg, ctx.p.sig(), token, now).await)?;
        return Ok(claims.map(|claims| Caller {
            claims,
            token: token.to_string(),
            set_cookies: vec![],
        }));
    }
    if let Some(token) = jar.get(req, ACCESS) {
        if let Some(claims) = verified(access::verify(ctx.cfg, ctx.p.sig(), &token, now).await)? {
            return Ok(Some(Caller {
                claims,
                token,
                set_cookies: vec![],
            }));
        }
    }
    renew(ctx, req).await
}

/// A token that does not verify is no caller; but a signature backend (WebCrypto) that
/// failed said nothing about the token, and taking it for "not signed in" would hide the
/// failure and answer a signed-in person as a stranger: it is an error, logged and 500
/// (docs/security.md, rule "Provider failures").
fn verified(r: Result<AccessClaims, JwtError>) -> AppResult<Option<AccessClaims>> {
    match r {
        Ok(claims) => Ok(Some(claims)),
        Err(JwtError::Backend(e)) => Err(AppError::Internal(format!(
            "verifying an access token: {e}"
        ))),
        Err(_) => Ok(None),
    }
}

/// A fresh access token from the session cookie, after D1 confirms — in one read — that the
/// session was not ended, and that the user is active and has not revoked all sessions since
/// this one began (which also stops a session that KV's index did not list to "revoke all").
/// Two KV operations (the session read and its write-back) and that one D1 read.
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
    let user = match ctx.p.users().renewal_view(&rec.user_id, &sid).await? {
        Some((u, false)) if u.active && !revoked_by_time(rec.created_at, &u) => u,
        // Ended already (a renewal that raced the ending wrote it back): off the list again.
        Some((_, true)) => {
            sessions.forget(&sid, &rec.user_id).await?;
            return Ok(None);
        }
        _ => {
            super::ending::end_record(ctx, &sid, &rec, None).await?;
            return Ok(None);
        }
    };
    // The policy, on the user row just read: a policy or email change ends the session here.
    if let Err(why) = admit_returning(ctx, &rec.provider, &user) {
        super::ending::end_record(ctx, &sid, &rec, None).await?;
        let detail = serde_json::json!({"provider": rec.provider, "at": "renewal", "reason": why});
        ctx.event(req, Some(&user.id), "sign_in_denied", detail)
            .await;
        return Ok(None);
    }
    sessions.touch(&sid, rec, now).await?;
    let (claims, token) = issue_for(ctx, &user, &sid).await?;
    let cookie = jar.set(ACCESS, &token, ctx.cfg.access_ttl);
    Ok(Some(Caller {
        claims,
        token,
        set_cookies: vec![cookie],
    }))
}

/// The access policy for a known user signing in (or renewing) through `provider`.
pub fn admit_returning<P: Platform>(
    ctx: &Ctx<'_, P>,
    provider: &str,
    user: &User,
) -> Result<(), String> {
    let arrival = crate::policy::Arrival::Returning;
    ctx.cfg.policy.admit(provider, user.policy_email(), arrival)
}

/// Whether a session started at `created_at` is ended by its user's last "revoke all".
/// Inclusive: a session started in the same second as the revocation ends too (the clock
/// has only seconds, and a session the revocation may not have seen must not survive it).
pub fn revoked_by_time(created_at: i64, user: &User) -> bool {
    created_at <= user.sessions_valid_after
}

/// Issues an access token for `user` in session `sid`.
pub async fn issue_for<P: Platform>(
    ctx: &Ctx<'_, P>,
    user: &User,
    sid: &SessionId,
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
    claims.roles = ctx.cfg.policy.roles_of(&user.roles, user.policy_email());
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
    "An access token alone cannot change the account: this needs the browser's live session.";

/// The one gate of every route that changes the account (starting or finishing a link,
/// unlinking, revoking a device): the caller is the owner of this browser's first-party
/// session cookie — renewed from it, so live in KV, its user active in D1 and not revoked
/// since — and the request comes from Gatehouse's own pages (`same_origin`, for everything
/// but the provider's redirect back). The `Authorization` header and the access cookie are
/// not used: access tokens are seen by apps, origins and logs by design, so one that leaks
/// must not be able to take the account over.
pub async fn require_account_owner<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    same_origin: bool,
) -> AppResult<Caller> {
    let caller = renew(ctx, req)
        .await?
        .ok_or_else(|| AppError::Unauthorized(NEEDS_SESSION.into()))?;
    if same_origin {
        // `Origin` exactly `PUBLIC_URL`'s origin, or `Sec-Fetch-Site: same-origin`: this
        // request carries the session cookie, so one that says neither is refused too.
        super::check_own_origin(ctx.cfg, req)?;
    }
    Ok(caller)
}

/// Two cookies of one name on one of Gatehouse's own cookies (session, access, login
/// transaction) → 400 before anything is read or written. A Passage provider's cookie is
/// checked only where it is read (its callback): it has no `__Host-` prefix, so a sibling
/// subdomain can set two of it, and refusing every route for that would let the sibling lock
/// the browser out of Gatehouse, logout included. See [`crate::cookies::sent_twice`].
pub fn refuse_duplicate_cookies(cfg: &crate::config::Config, req: &Request) -> AppResult<()> {
    crate::cookies::refuse_sent_twice(
        req,
        &crate::cookies::WIRE_NAMES[cfg.secure_cookies as usize],
    )
}

/// `r` with the caller's renewed cookies, if any.
pub fn with_cookies(mut r: crate::http::Response, caller: &Caller) -> crate::http::Response {
    for c in &caller.set_cookies {
        r.append_header("set-cookie", c);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;
    use crate::platform::Kv;
    use crate::testing::{block_on, sign_in_directly, test_config, TestPlatform};

    fn renewal(session: &str) -> Request {
        Request::new(Method::Post, "http://127.0.0.1:8787/auth/token")
            .with_header("cookie", &format!("gh_session={session}"))
    }

    #[test]
    fn a_renewal_racing_an_ending_cannot_bring_the_session_back() {
        let (cfg, p) = (test_config(), TestPlatform::new(|_| unreachable!()));
        let ctx = Ctx { cfg: &cfg, p: &p };
        let me = sign_in_directly(&cfg, &p);
        // A renewal read the session, then the session was ended, then the renewal (or a KV
        // location the delete had not reached) wrote the stale copy back.
        let stale =
            p.kv.value(&format!("s:{}", me.sid.as_str()))
                .expect("stored");
        block_on(super::super::ending::revoke(&ctx, &me.sid, &me.user_id)).unwrap();
        block_on(p.kv.put(&format!("s:{}", me.sid.as_str()), &stale, 60)).unwrap();
        let renewed = block_on(renew(&ctx, &renewal(&me.session))).unwrap();
        assert!(renewed.is_none(), "an ended session renews nothing");
        assert!(
            p.kv.value(&format!("s:{}", me.sid.as_str())).is_none(),
            "and the copy written back leaves the device list"
        );
    }

    #[test]
    fn a_failing_signature_backend_is_a_logged_500_not_an_anonymous_caller() {
        use crate::testing::FaultMode;
        let (cfg, p) = (test_config(), TestPlatform::new(|_| unreachable!()));
        let me = sign_in_directly(&cfg, &p);
        let me_with = |header: (&str, String)| {
            let req = Request::new(Method::Get, "http://127.0.0.1:8787/auth/me")
                .with_header(header.0, &header.1);
            block_on(crate::app::handle(Ok(&cfg), &p, req))
        };
        let bearer = ("authorization", format!("Bearer {}", me.access));
        let cookies = (
            "cookie",
            format!("gh_access={}; gh_session={}", me.access, me.session),
        );
        for (how, header) in [("bearer", bearer), ("cookies", cookies)] {
            assert_eq!(
                me_with(header.clone()).status,
                200,
                "{how}: fine without the fault"
            );
            p.faults.arm(1, FaultMode::Before);
            let r = me_with(header);
            assert_eq!(
                p.faults.trace(),
                ["sig.verify"],
                "{how}: no renewal instead"
            );
            assert_eq!(r.status, 500, "{how}: {}", String::from_utf8_lossy(&r.body));
            assert!(r.header("set-cookie").is_none(), "{how}: nothing renewed");
            let logged = p.logs.borrow().join("\n");
            assert!(
                logged.contains("verifying an access token: injected fault #1"),
                "{how}: the failure is logged: {logged}"
            );
            p.faults.reset();
        }
        // A token that does not verify is still no caller (the cookie renews, a bearer is 401).
        let r = me_with(("authorization", format!("Bearer {}x", me.access)));
        assert_eq!(r.status, 401);
    }

    #[test]
    fn a_live_session_renews_with_one_d1_read_and_two_kv_operations() {
        let (cfg, p) = (test_config(), TestPlatform::new(|_| unreachable!()));
        let ctx = Ctx { cfg: &cfg, p: &p };
        let me = sign_in_directly(&cfg, &p);
        p.faults.reset();
        let renewed = block_on(renew(&ctx, &renewal(&me.session))).unwrap();
        assert_eq!(renewed.expect("renewed").claims.sub, me.user_id);
        assert_eq!(
            p.faults.trace(),
            ["kv.get", "d1.renewal_view", "kv.put", "sig.sign"]
        );
    }
}
