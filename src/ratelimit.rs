//! Fixed-window rate limits in KV (magic-link sends per email and per client, failed admin-key
//! attempts). KV is eventually consistent across locations, so a limit is approximate at the
//! edge — good enough to stop floods and guessing, and it needs no extra binding.

use crate::crypto::sha256_b64url;
use crate::platform::{Kv, StoreError};

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
    use crate::testing::{block_on, MemoryKv};

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
