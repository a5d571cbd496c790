//! Ending sessions: the one place that ends a Gatehouse session in KV and, where the session
//! came from a vendor with a session or token of its own (Stytch, LoginRadius), at the vendor
//! too — for logout, a revoked device, "revoke all", deactivation, deletion, a session that a
//! new sign-in in the same browser supersedes, and a sign-in that failed after the vendor step.
//! The vendor call is best effort: ours is already gone, and a vendor that is down must not
//! keep anyone signed in (the failure is logged).

use super::Ctx;
use crate::error::AppResult;
use crate::platform::Platform;
use crate::sessions::{SessionRecord, Sessions};

fn sessions<'a, P: Platform>(ctx: &'a Ctx<'a, P>) -> Sessions<'a, P::Kv> {
    Sessions {
        kv: ctx.p.kv(),
        cfg: ctx.cfg,
    }
}

/// Ends the vendor-side session or token `handle` of provider `name`, if there is one.
pub async fn end_vendor<P: Platform>(ctx: &Ctx<'_, P>, name: &str, handle: Option<&str>) {
    let (Some(handle), Some(provider)) = (handle, ctx.cfg.providers.get(name)) else {
        return;
    };
    if let Err(e) = crate::providers::end_session(ctx.p, name, provider, handle).await {
        ctx.p.log(&format!(
            "gatehouse: vendor logout at {name} failed: {}",
            e.log_line().unwrap_or_else(|| e.to_string())
        ));
    }
}

/// The vendor side of a session record.
pub async fn end_vendor_of<P: Platform>(ctx: &Ctx<'_, P>, rec: &SessionRecord) {
    end_vendor(ctx, &rec.provider, rec.vendor_logout.as_deref()).await;
}

/// Ends session `sid` of `user_id` here (always, even when its record cannot be read, so that
/// a copy KV has not shown us yet is revoked too) and at the vendor; returns the record if it
/// was live.
pub async fn end_session<P: Platform>(
    ctx: &Ctx<'_, P>,
    sid: &str,
    user_id: &str,
) -> AppResult<Option<SessionRecord>> {
    let s = sessions(ctx);
    let rec = s.get(sid, ctx.p.now()).await?;
    s.revoke(sid, user_id).await?;
    if let Some(rec) = &rec {
        end_vendor_of(ctx, rec).await;
    }
    Ok(rec)
}

/// Ends every session of `user_id`, here and at the vendors; returns how many.
pub async fn end_all_sessions<P: Platform>(ctx: &Ctx<'_, P>, user_id: &str) -> AppResult<usize> {
    let s = sessions(ctx);
    let now = ctx.p.now();
    let sids = s.sids_of(user_id).await?;
    let mut vendor_sides = Vec::new();
    for sid in &sids {
        let rec = s.get(sid, now).await?;
        s.revoke(sid, user_id).await?;
        vendor_sides.extend(rec.filter(|r| r.vendor_logout.is_some()));
    }
    // Ours are all gone now; the vendors are asked together, so that one that is slow or
    // down costs one timeout, not one per session.
    futures_util::future::join_all(vendor_sides.iter().map(|r| end_vendor_of(ctx, r))).await;
    Ok(sids.len())
}
