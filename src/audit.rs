//! The audit log (README "Admin API", table `events`): what kinds of events there are, and how
//! long they are kept. Events are written through [`crate::app::Ctx::event`] (best effort:
//! the action itself is already done). The Worker's scheduled (cron) handler calls [`prune`]
//! for each of [`Pruned::ALL`]: old events, and the rows that accumulate in D1 but are of no
//! use once expired — spent single-use keys, ended rate-limit windows, invitations and
//! refresh tokens.
//!
//! Kinds: `sign_in`, `sign_in_failed`, `logout`, `link`, `link_refused`, `unlink`,
//! `session_revoked`, `created`, `updated`, `deactivated`, `activated`, `deleted`,
//! `admin_auth_failed`, `magic_link_sent`. Each event has its time, the client's IP and user
//! agent, and a small JSON `detail` (never a secret, a token or a provider response body).

use crate::error::StoreError;
use crate::users::UserStore;

/// How long audit events are kept: 90 days.
pub const RETENTION_SECONDS: i64 = 90 * 24 * 3600;

/// Rows deleted per statement, so that one prune never runs into D1's statement limits.
const PRUNE_BATCH: u32 = 1000;
/// Statements per run; what is left is pruned at the next run.
const PRUNE_ROUNDS: u32 = 50;

pub use crate::users::Pruned;

/// Deletes the rows of `what` that are past their time at `now` (events older than
/// [`RETENTION_SECONDS`], the rest expired before `now`), in bounded rounds (at most
/// `PRUNE_BATCH` rows a statement, `PRUNE_ROUNDS` statements a run; the next run takes what
/// is left); returns how many.
pub async fn prune<U: UserStore>(store: &U, what: Pruned, now: i64) -> Result<u64, StoreError> {
    let cutoff = match what {
        Pruned::Events => now - RETENTION_SECONDS,
        _ => now,
    };
    let mut total = 0;
    for _ in 0..PRUNE_ROUNDS {
        let n = store.prune(what, cutoff, PRUNE_BATCH).await?;
        total += n;
        if n < PRUNE_BATCH as u64 {
            break;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth_store::RefreshRow;
    use crate::platform::{SingleUse, SpendKind};
    use crate::testing::{block_on, MemoryUsers};
    use crate::users::Event;

    fn ev(at: i64) -> Event {
        Event {
            user_id: Some("u".into()),
            kind: "sign_in",
            at,
            ip: String::new(),
            user_agent: String::new(),
            detail: serde_json::json!({}),
        }
    }

    #[test]
    fn prunes_only_events_past_retention_in_rounds() {
        let store = MemoryUsers::default();
        let now = 1_800_000_000;
        for i in 0..2500 {
            block_on(store.record_event(&ev(now - RETENTION_SECONDS - 1 - i))).unwrap();
        }
        block_on(store.record_event(&ev(now - RETENTION_SECONDS))).unwrap();
        block_on(store.record_event(&ev(now))).unwrap();
        assert_eq!(block_on(prune(&store, Pruned::Events, now)).unwrap(), 2500);
        let left: Vec<i64> = store.events.borrow().iter().map(|e| e.at).collect();
        assert_eq!(left, [now - RETENTION_SECONDS, now]);
        assert_eq!(block_on(prune(&store, Pruned::Events, now)).unwrap(), 0);
    }

    fn invitation(id: &str, expires_at: i64, used: bool) -> crate::users::Invitation {
        crate::users::Invitation {
            id: id.into(),
            token_hash: format!("hash-{id}"),
            email: None,
            roles: vec![],
            return_to: "/".into(),
            user_id: None,
            created_at: expires_at - 7 * 86400,
            expires_at,
            used_at: used.then_some(expires_at - 60),
            used_by: used.then(|| "usr_1".into()),
        }
    }

    fn refresh(hash: &str, family: &str, expires_at: i64, used: bool) -> RefreshRow {
        let grant = crate::oauth_store::Grant {
            client_id: "app".into(),
            user_id: "usr_1".into(),
            sid: "sid".into(),
            scope: "openid".into(),
            auth_time: 0,
            resource: None,
            provider: String::new(),
        };
        RefreshRow {
            hash: hash.into(),
            family: family.into(),
            grant,
            created_at: 0,
            expires_at,
            used_at: used.then_some(1),
        }
    }

    #[test]
    fn prunes_expired_invitations_used_or_not_in_rounds_and_keeps_live_ones() {
        let store = MemoryUsers::default();
        let now = 1_800_000_000;
        for i in 0..2500 {
            let inv = invitation(&format!("old{i}"), now - 1 - i, i % 2 == 0);
            store.invitations.borrow_mut().insert(inv.id.clone(), inv);
        }
        for (id, used) in [("live", false), ("accepted", true)] {
            store
                .invitations
                .borrow_mut()
                .insert(id.into(), invitation(id, now, used));
        }
        let pruned = block_on(prune(&store, Pruned::Invitations, now));
        assert_eq!(pruned.unwrap(), 2500);
        assert_eq!(
            store.invitations.borrow().keys().collect::<Vec<_>>(),
            ["accepted", "live"],
            "kept through their expiry second"
        );
        assert_eq!(store.faults.count(), 3, "in batches of {PRUNE_BATCH}");
    }

    #[test]
    fn prunes_refresh_tokens_only_once_their_whole_family_has_expired() {
        let store = MemoryUsers::default();
        let now = 1_800_000_000;
        for row in [
            // A dead family: every token expired.
            refresh("dead-1", "dead", now - 100, true),
            refresh("dead-2", "dead", now - 1, false),
            // A live family: its rotated, expired token is kept, so that a reuse still
            // revokes the family.
            refresh("live-1", "live", now - 100, true),
            refresh("live-2", "live", now + 3600, false),
        ] {
            store
                .oauth
                .refresh
                .borrow_mut()
                .insert(row.hash.clone(), row);
        }
        let pruned = block_on(prune(&store, Pruned::RefreshTokens, now));
        assert_eq!(pruned.unwrap(), 2);
        let left: Vec<String> = store.oauth.refresh.borrow().keys().cloned().collect();
        assert_eq!(left, ["live-1", "live-2"]);
    }

    #[test]
    fn a_failed_prune_is_an_error() {
        let store = MemoryUsers::default();
        store.faults.arm(1, crate::testing::FaultMode::Before);
        assert!(block_on(prune(&store, Pruned::Invitations, 1)).is_err());
    }

    #[test]
    fn prunes_only_expired_spent_keys_in_rounds() {
        let store = MemoryUsers::default();
        let now = 1_800_000_000;
        for i in 0..2500 {
            let spent = block_on(store.spend(SpendKind::LoginTxn, &format!("k{i}"), now - 1 - i));
            assert!(spent.unwrap());
        }
        assert!(block_on(store.spend(SpendKind::Invitation, "live", now)).unwrap());
        assert_eq!(
            block_on(prune(&store, Pruned::SpentKeys, now)).unwrap(),
            2500
        );
        assert_eq!(
            store.spent.borrow().keys().collect::<Vec<_>>(),
            ["inv:live"],
            "a key is kept through its expiry second"
        );
        assert!(
            !block_on(store.spend(SpendKind::Invitation, "live", now)).unwrap(),
            "still spent"
        );
        assert_eq!(block_on(prune(&store, Pruned::SpentKeys, now)).unwrap(), 0);
    }
}
