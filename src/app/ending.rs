//! Ending sessions: the one place that ends a Gatehouse session in KV and, where the session
//! came from a vendor with a session or token of its own (Stytch, LoginRadius), at the vendor
//! too — for logout, a revoked device, "revoke all", deactivation, deletion, a session that a
//! new sign-in in the same browser supersedes, and a sign-in that failed after the vendor step.
//! The vendor call is best effort: ours is already gone, and a vendor that is down must not
//! keep anyone signed in (the failure is logged).

use super::Ctx;
use crate::error::AppResult;
use crate::ids::{SessionId, UserId};
use crate::platform::{Platform, SingleUse, SpendKind};
use crate::sessions::SessionRecord;
use crate::users::UserStore;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

/// Ends the vendor-side session or token `handle` of provider `name`, if there is one.
pub async fn end_vendor<P: Platform>(ctx: &Ctx<'_, P>, name: &str, handle: Option<&str>) {
    let (Some(handle), Some(provider)) = (handle, ctx.cfg.providers.get(name)) else {
        return;
    };
    if let Err(e) = crate::providers::end_session(ctx.p, provider, handle).await {
        crate::providers::log_failed_logout(ctx.p, name, &e);
    }
}

/// The vendor side of a session record.
pub async fn end_vendor_of<P: Platform>(ctx: &Ctx<'_, P>, rec: &SessionRecord) {
    end_vendor(ctx, &rec.provider, rec.vendor_logout.as_deref()).await;
}

/// The record of session `sid`, for its vendor side. A read that fails is logged and counts
/// as no record: it must not stop the revocation, which matters more.
async fn record_of<P: Platform>(ctx: &Ctx<'_, P>, sid: &SessionId) -> Option<SessionRecord> {
    match ctx.sessions().get(sid, ctx.p.now()).await {
        Ok(rec) => rec,
        Err(e) => {
            ctx.p.log(&format!(
                "gatehouse: could not read a session being ended (its vendor side stays): {}",
                e.0
            ));
            None
        }
    }
}

/// Ends session `sid` of `user_id` in Gatehouse: first the mark in D1's spent-set that every
/// renewal reads (it stops the session even if a renewal in flight writes it back to KV),
/// kept until the session could have expired anyway; then the session and its index entry in
/// KV (so that it leaves the device list at once).
pub async fn revoke<P: Platform>(
    ctx: &Ctx<'_, P>,
    sid: &SessionId,
    user_id: &UserId,
) -> AppResult<()> {
    let until = ctx.p.now() + ctx.cfg.session_ttl as i64;
    ctx.p
        .single_use()
        .spend(SpendKind::EndedSession, sid.as_str(), until)
        .await?;
    ctx.sessions().forget(sid, user_id).await?;
    Ok(())
}

/// Ends session `sid`, whose record the caller has already read, here and at the vendor —
/// unless the vendor handle is `keep` (one that a new session carries on).
pub async fn end_record<P: Platform>(
    ctx: &Ctx<'_, P>,
    sid: &SessionId,
    rec: &SessionRecord,
    keep: Option<&str>,
) -> AppResult<()> {
    revoke(ctx, sid, &rec.user_id).await?;
    if keep.is_none() || rec.vendor_logout.as_deref() != keep {
        end_vendor_of(ctx, rec).await;
    }
    Ok(())
}

/// Ends session `sid` of `user_id` here (always, even when its record cannot be read, so that
/// a copy KV has not shown us yet is revoked too) and, when its record is read, at the vendor.
pub async fn end_session<P: Platform>(
    ctx: &Ctx<'_, P>,
    sid: &SessionId,
    user_id: &UserId,
) -> AppResult<()> {
    let rec = record_of(ctx, sid).await;
    revoke(ctx, sid, user_id).await?;
    if let Some(rec) = &rec {
        end_vendor_of(ctx, rec).await;
    }
    Ok(())
}

/// Ends every session of `user_id`, here and at the vendors; returns how many. D1 first:
/// the user's "sessions valid after" time stops every session begun until now at its next
/// renewal, even one that KV's index (which lags) does not list, or one a renewal in flight
/// writes back; so the listed ones need no mark of their own: they are removed from KV at
/// once, and their vendor sides ended.
pub async fn end_all_sessions<P: Platform>(ctx: &Ctx<'_, P>, user_id: &UserId) -> AppResult<usize> {
    ctx.p
        .users()
        .end_sessions_until(user_id, ctx.p.now())
        .await?;
    let s = ctx.sessions();
    let sids = s.sids_of(user_id).await?;
    let mut vendor_sides = Vec::new();
    for sid in &sids {
        let rec = record_of(ctx, sid).await;
        s.forget(sid, user_id).await?;
        vendor_sides.extend(rec.filter(|r| r.vendor_logout.is_some()));
    }
    // Ours are all gone now; the vendors are asked together, so that one that is slow or
    // down costs one timeout, not one per session.
    join(vendor_sides.iter().map(|r| end_vendor_of(ctx, r)).collect()).await;
    Ok(sids.len())
}

/// Runs `futures` together until all are done: `futures_util`'s `join_all` without its
/// ordered-results machinery, which costs the bundle kilobytes.
async fn join<F: Future<Output = ()>>(futures: Vec<F>) {
    let mut pending: Vec<Option<Pin<Box<F>>>> =
        futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    std::future::poll_fn(|cx| {
        let mut all_done = true;
        for slot in pending.iter_mut() {
            if let Some(f) = slot {
                if f.as_mut().poll(cx).is_ready() {
                    *slot = None;
                } else {
                    all_done = false;
                }
            }
        }
        if all_done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::platform::Inbound;
    use crate::testing::{block_on, test_env, TestPlatform};

    /// A LoginRadius provider whose `invalidate` calls are recorded by the platform.
    fn platform() -> (Config, TestPlatform) {
        let mut env = test_env();
        env.insert(
            "PROVIDERS".into(),
            serde_json::json!({"lr": {"kind": "loginradius", "app_name": "app", "api_key": "key",
                "hub_url": "http://127.0.0.1:9100", "api_url": "http://127.0.0.1:9100/"}})
            .to_string(),
        );
        let p = TestPlatform::new(|_| {
            Ok(Inbound {
                status: 200,
                body: br#"{"IsPosted":true}"#.to_vec(),
            })
        });
        (Config::from_env(&env).unwrap(), p)
    }

    fn session(ctx: &Ctx<'_, TestPlatform>, handle: &str) -> SessionId {
        session_of(ctx, "u1", handle)
    }

    fn session_of(ctx: &Ctx<'_, TestPlatform>, user: &str, handle: &str) -> SessionId {
        let rec = SessionRecord {
            user_id: user.into(),
            issuer: "loginradius:app".into(),
            provider: "lr".into(),
            created_at: ctx.p.now(),
            last_seen_at: ctx.p.now(),
            expires_at: ctx.p.now() + 3600,
            user_agent: "ua".into(),
            ip: "192.0.2.1".into(),
            vendor_logout: Some(handle.into()),
        };
        block_on(ctx.sessions().create(rec, ctx.p.now())).unwrap().1
    }

    fn invalidated(p: &TestPlatform) -> Vec<String> {
        p.http
            .calls
            .borrow()
            .iter()
            .filter(|c| c.url.contains("access_token/invalidate"))
            .filter_map(|c| {
                c.headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                    .map(|(_, v)| v.trim_start_matches("Bearer ").to_string())
            })
            .collect()
    }

    #[test]
    fn a_session_ends_here_and_at_the_vendor_unless_its_handle_carries_on() {
        let (cfg, p) = platform();
        let ctx = Ctx { cfg: &cfg, p: &p };
        let live = |sid: &SessionId| {
            block_on(ctx.sessions().get(sid, p.now()))
                .unwrap()
                .is_some()
        };

        let record = |sid: &SessionId| {
            block_on(ctx.sessions().get(sid, p.now()))
                .unwrap()
                .expect("live")
        };

        // Superseded by a sign-in that LoginRadius gave the same token: only ours ends.
        let same = session(&ctx, "tok-1");
        block_on(end_record(&ctx, &same, &record(&same), Some("tok-1"))).unwrap();
        assert!(!live(&same));
        assert!(invalidated(&p).is_empty());

        // Superseded by one with another token, or ended outright: the vendor side ends too.
        let other = session(&ctx, "tok-2");
        block_on(end_record(&ctx, &other, &record(&other), Some("tok-9"))).unwrap();
        let plain = session(&ctx, "tok-3");
        block_on(end_session(&ctx, &plain, &"u1".into())).unwrap();
        assert!(!live(&other) && !live(&plain));
        assert_eq!(invalidated(&p), ["tok-2", "tok-3"]);
    }

    #[test]
    fn ending_all_sessions_asks_the_vendor_about_each() {
        let (cfg, p) = platform();
        let ctx = Ctx { cfg: &cfg, p: &p };
        let sids = [session(&ctx, "a"), session(&ctx, "b")];
        let theirs = session_of(&ctx, "u2", "c");
        assert_eq!(block_on(end_all_sessions(&ctx, &"u1".into())).unwrap(), 2);
        for sid in &sids {
            assert!(block_on(ctx.sessions().get(sid, p.now()))
                .unwrap()
                .is_none());
        }
        let mut asked = invalidated(&p);
        asked.sort();
        assert_eq!(asked, ["a", "b"]);
        // Another user's session is untouched.
        assert!(block_on(ctx.sessions().get(&theirs, p.now()))
            .unwrap()
            .is_some());
    }
}
