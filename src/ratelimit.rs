//! Rate limits, two kinds:
//!
//! - Bursts per client network ([`per_network`]): login starts, callbacks and magic-link
//!   sends, through the [`Limiter`] (the Workers Rate Limiting binding). It counts in memory
//!   and writes no storage, so a flood costs no writes and adds no storage round trip to the
//!   sign-in path; its count is checked and raised in one step, so a concurrent burst cannot
//!   slip past it.
//! - Long fixed windows in KV ([`hit`], [`exceeded`]): magic-link sends per address and per
//!   client over 15 minutes, failed admin-key attempts. KV is eventually consistent and a
//!   get-then-put, so these are approximate (a concurrent burst is bounded by the first kind);
//!   good enough to stop floods and guessing.

use crate::crypto::sha256_b64url;
use crate::error::{AppError, AppResult};
use crate::http::Request;
use crate::platform::{Kv, Limiter, StoreError};

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
}

/// Counts one `flow` request from this client's network (an IPv4 address, an IPv6 /64);
/// `RateLimited` (429) once the network's limit for the window is used up.
pub async fn per_network<L: Limiter>(limiter: &L, flow: Flow, req: &Request) -> AppResult<()> {
    let what = match flow {
        Flow::Start => "start",
        Flow::Callback => "callback",
        Flow::Send => "send",
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

/// Whether `bucket` has used up `limit` in the current window, without counting a hit (for
/// limits on failures: once over, even a correct attempt is refused until the window ends).
pub async fn exceeded<K: Kv>(
    kv: &K,
    bucket: &str,
    limit: Limit,
    now: i64,
) -> Result<bool, StoreError> {
    let count = kv
        .get(&key(bucket, limit, now))
        .await?
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0);
    Ok(count >= limit.max)
}

/// Counts one hit on `bucket` (hashed, so that emails and IPs are not KV keys) and says
/// whether it is within `limit`.
pub async fn hit<K: Kv>(kv: &K, bucket: &str, limit: Limit, now: i64) -> Result<bool, StoreError> {
    let key = key(bucket, limit, now);
    let count = kv
        .get(&key)
        .await?
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0);
    if count >= limit.max {
        return Ok(false);
    }
    kv.put(&key, &(count + 1).to_string(), limit.window.max(60))
        .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;
    use crate::testing::{block_on, MemoryKv, MemoryLimiter};

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
        let kv = MemoryKv::default();
        let limit = Limit { max: 3, window: 60 };
        let results: Vec<bool> = (0..5)
            .map(|_| block_on(hit(&kv, "email:a@b", limit, 120)).unwrap())
            .collect();
        assert_eq!(results, [true, true, true, false, false]);
        assert!(
            block_on(hit(&kv, "email:other", limit, 120)).unwrap(),
            "buckets are separate"
        );
        assert!(
            block_on(hit(&kv, "email:a@b", limit, 180)).unwrap(),
            "a new window starts fresh"
        );
        assert!(
            kv.keys().iter().all(|k| !k.contains("a@b")),
            "bucket names are hashed"
        );
        assert!(block_on(exceeded(&kv, "email:a@b", limit, 120)).unwrap());
        assert!(!block_on(exceeded(&kv, "email:a@b", limit, 180)).unwrap());
        for _ in 0..5 {
            assert!(
                !block_on(exceeded(&kv, "email:fresh", limit, 120)).unwrap(),
                "peeking does not count"
            );
        }
    }
}
