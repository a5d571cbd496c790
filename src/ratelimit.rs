//! Rate limits, two kinds:
//!
//! - Bursts per client network ([`per_network`]): login starts, callbacks and magic-link
//!   sends, through the [`Limiter`] (the Workers Rate Limiting binding). It counts in memory
//!   and writes no storage, so a flood costs no writes and adds no storage round trip to the
//!   sign-in path; its count is checked and raised in one step, so a concurrent burst at one
//!   location cannot slip past it. Cloudflare keeps these counters per location: a client
//!   that reaches several locations gets the limit at each, so this bounds floods, it does
//!   not count exactly across the world (the D1 windows below do).
//! - Long fixed windows in D1 ([`hit`], [`exceeded`]): magic-link sends per address and per
//!   client over 15 minutes, failed admin-key attempts per client network. Each hit is one
//!   atomic upsert through [`Counters`] that adds one and returns the new count, so the count
//!   is exact under concurrency: of a burst, exactly `max` hits are within the limit.

use crate::crypto::sha256_b64url;
use crate::error::{AppError, AppResult};
use crate::http::Request;
use crate::platform::{Counters, Limiter, StoreError};

/// What an anonymous client asks for, each limited on its own per client network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// `GET /auth/login?provider=…`: writes a login transaction and, for some providers
    /// (XWMS), calls the provider with Gatehouse's client secret.
    Start,
    /// `/auth/callback/{name}`: every provider return, invitation page and confirmation.
    Callback,
    /// `POST /auth/magic-link`: a provider emails someone.
    Send,
    /// `POST /oauth/register`: an anonymous client registers an app (a D1 row).
    Register,
}

/// Counts one `flow` request from this client's network (an IPv4 address, an IPv6 /64);
/// `RateLimited` (429) once the network's limit for the window is used up.
pub async fn per_network<L: Limiter>(limiter: &L, flow: Flow, req: &Request) -> AppResult<()> {
    let what = match flow {
        Flow::Start => "start",
        Flow::Callback => "callback",
        Flow::Send => "send",
        Flow::Register => "register",
    };
    match limiter
        .allow(&format!("{what}:{}", req.client_network()))
        .await?
    {
        true => Ok(()),
        false => Err(AppError::RateLimited),
    }
}

/// A limit: at most `max` hits per `window` seconds.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub max: u32,
    pub window: u64,
}

fn key(bucket: &str, limit: Limit, now: i64) -> String {
    let window = now.max(0) as u64 / limit.window;
    format!("rl:{}:{window}", sha256_b64url(bucket.as_bytes()))
}

/// When the current window of `limit` ends: its counter is pruned after that.
fn window_end(limit: Limit, now: i64) -> i64 {
    let window = now.max(0) as u64 / limit.window;
    ((window + 1) * limit.window) as i64
}

/// Whether `bucket` has used up `limit` in the current window, without counting a hit (for
/// limits on failures: once over, even a correct attempt is refused until the window ends).
/// One D1 read.
pub async fn exceeded<C: Counters>(
    counters: &C,
    bucket: &str,
    limit: Limit,
    now: i64,
) -> Result<bool, StoreError> {
    Ok(counters.peek(&key(bucket, limit, now)).await? >= limit.max)
}

/// Counts one hit on `bucket` (hashed, so that emails and IPs are not stored) and says
/// whether it is within `limit`: the first `max` hits of a window are, even when they arrive
/// at once. One D1 write.
pub async fn hit<C: Counters>(
    counters: &C,
    bucket: &str,
    limit: Limit,
    now: i64,
) -> Result<bool, StoreError> {
    let count = counters
        .count(&key(bucket, limit, now), window_end(limit, now))
        .await?;
    Ok(count <= limit.max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;
    use crate::testing::{block_on, MemoryLimiter, MemoryUsers};

    #[test]
    fn per_network_limits_count_each_flow_per_ipv4_address_and_ipv6_slash_64() {
        let limiter = MemoryLimiter::default();
        limiter.max.set(2);
        let from = |ip: &str| {
            Request::new(Method::Get, "http://127.0.0.1:8787/auth/login")
                .with_header("cf-connecting-ip", ip)
        };
        let go = |flow, ip| block_on(per_network(&limiter, flow, &from(ip)));
        for _ in 0..2 {
            assert!(go(Flow::Start, "2001:db8:1:2::1").is_ok());
        }
        assert!(
            matches!(
                go(Flow::Start, "2001:db8:1:2:ffff::9"),
                Err(AppError::RateLimited)
            ),
            "another address in the same /64 shares the limit"
        );
        assert!(go(Flow::Start, "2001:db8:1:3::1").is_ok(), "another /64");
        assert!(
            go(Flow::Callback, "2001:db8:1:2::1").is_ok(),
            "another flow"
        );
        for _ in 0..2 {
            assert!(go(Flow::Send, "192.0.2.1").is_ok());
        }
        assert!(matches!(
            go(Flow::Send, "192.0.2.1"),
            Err(AppError::RateLimited)
        ));
        assert!(go(Flow::Send, "192.0.2.2").is_ok(), "IPv4: per address");
        limiter.reset();
        assert!(go(Flow::Send, "192.0.2.1").is_ok(), "a new window");
    }

    #[test]
    fn allows_up_to_max_per_window_then_refuses() {
        let store = MemoryUsers::default();
        let limit = Limit { max: 3, window: 60 };
        let results: Vec<bool> = (0..5)
            .map(|_| block_on(hit(&store, "email:a@b", limit, 120)).unwrap())
            .collect();
        assert_eq!(results, [true, true, true, false, false]);
        assert!(
            block_on(hit(&store, "email:other", limit, 120)).unwrap(),
            "buckets are separate"
        );
        assert!(
            block_on(hit(&store, "email:a@b", limit, 180)).unwrap(),
            "a new window starts fresh"
        );
        assert!(
            store.counters.borrow().keys().all(|k| !k.contains("a@b")),
            "bucket names are hashed"
        );
        assert!(block_on(exceeded(&store, "email:a@b", limit, 120)).unwrap());
        assert!(!block_on(exceeded(&store, "email:a@b", limit, 180)).unwrap());
        for _ in 0..5 {
            assert!(
                !block_on(exceeded(&store, "email:fresh", limit, 120)).unwrap(),
                "peeking does not count"
            );
        }
        assert!(block_on(hit(&store, "email:fresh", limit, 120)).unwrap());
    }

    #[test]
    fn counters_are_kept_until_their_window_ends() {
        let store = MemoryUsers::default();
        let limit = Limit { max: 3, window: 60 };
        block_on(hit(&store, "ip:1", limit, 125)).unwrap();
        let expiries: Vec<i64> = store.counters.borrow().values().map(|c| c.1).collect();
        assert_eq!(expiries, [180], "the window [120, 180) ends at 180");
        assert_eq!(
            block_on(crate::audit::prune_counters(&store, 180)).unwrap(),
            0,
            "kept through its last second"
        );
        assert_eq!(
            block_on(crate::audit::prune_counters(&store, 181)).unwrap(),
            1
        );
        assert!(store.counters.borrow().is_empty());
    }

    #[test]
    fn a_failed_count_is_an_error_not_a_pass() {
        let store = MemoryUsers::default();
        store.faults.arm(1, crate::testing::FaultMode::Before);
        let limit = Limit { max: 3, window: 60 };
        assert!(block_on(hit(&store, "ip:1", limit, 120)).is_err());
    }
}
