//! [`Limiter`] over the Workers Rate Limiting binding (`[[ratelimits]]` in wrangler.toml):
//! counters kept in memory at each Cloudflare location, no storage written.

use crate::platform::{Limiter, StoreError};

pub struct WorkerLimiter(pub worker::RateLimiter);

impl Limiter for WorkerLimiter {
    async fn allow(&self, key: &str) -> Result<bool, StoreError> {
        self.0
            .limit(key.to_string())
            .await
            .map(|o| o.success)
            .map_err(|e| StoreError(format!("rate limiter: {e}")))
    }
}
