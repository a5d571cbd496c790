//! Calling providers: every outbound call has a timeout, and every failure — timeout,
//! network error, 5xx, error JSON, malformed JSON — becomes a clear [`AppError`] with the
//! provider body kept out of the client's view. Also the per-isolate cache of provider
//! documents (discovery, JWKS) with the once-a-minute refetch limit.

use crate::error::AppResult;
use crate::platform::{Caches, HttpClient, Outbound, Platform};
use serde_json::Value;

/// Largest provider response Gatehouse parses.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// How long discovery documents and JWKS are cached.
pub const DOCUMENT_MAX_AGE: i64 = 3600;
/// Smallest interval between forced refetches of one document (unknown `kid`).
pub const REFETCH_INTERVAL: i64 = 60;

use super::{rejected, unavailable};

/// The URL as it may appear in a log line: without its query, where API keys ride.
fn loggable(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or_default().to_string()
}

/// Sends `req` and returns the status and JSON body (any status; callers judge it).
pub async fn call_json<H: HttpClient>(
    http: &H,
    provider: &str,
    req: Outbound,
) -> AppResult<(u16, Value)> {
    let url = loggable(&req.url);
    let resp = http
        .send(req)
        .await
        .map_err(|e| unavailable(provider, format!("{url}: {e}")))?;
    if resp.status >= 500 {
        return Err(unavailable(
            provider,
            format!("{url}: HTTP {}", resp.status),
        ));
    }
    if resp.body.len() > MAX_RESPONSE_BYTES {
        return Err(rejected(provider, format!("{url}: response too large")));
    }
    let json = serde_json::from_slice(&resp.body).map_err(|_| {
        rejected(
            provider,
            format!("{url}: HTTP {} with a body that is not JSON", resp.status),
        )
    })?;
    Ok((resp.status, json))
}

/// Like [`call_json`] but any non-2xx is a provider error (with the body's `error` logged).
pub async fn call_ok<H: HttpClient>(http: &H, provider: &str, req: Outbound) -> AppResult<Value> {
    let url = loggable(&req.url);
    let (status, json) = call_json(http, provider, req).await?;
    if !(200..300).contains(&status) {
        let code = json
            .get("error")
            .map(crate::fields::json_text)
            .unwrap_or_default();
        return Err(rejected(provider, format!("{url}: HTTP {status} {code}")));
    }
    Ok(json)
}

/// A provider document from the isolate cache, fetched when missing or stale. With `force`,
/// refetches unless the last forced refetch was less than [`REFETCH_INTERVAL`] ago.
pub async fn cached_document<P: Platform>(
    p: &P,
    provider: &str,
    url: &str,
    force: bool,
) -> AppResult<Value> {
    let now = p.now();
    let caches: &Caches = p.caches();
    let cached = caches.documents.borrow().get(url).cloned();
    let fresh = cached
        .as_ref()
        .filter(|(at, _)| now - at < DOCUMENT_MAX_AGE)
        .map(|(_, v)| v.clone());
    match (fresh, force) {
        (Some(v), false) => return Ok(v),
        (Some(v), true) => {
            let last = caches.last_refetch.borrow().get(url).copied();
            if last.map(|t| now - t < REFETCH_INTERVAL).unwrap_or(false) {
                return Ok(v);
            }
            caches
                .last_refetch
                .borrow_mut()
                .insert(url.to_string(), now);
        }
        (None, _) => {}
    }
    let v = call_ok(p.http(), provider, Outbound::get(url)).await?;
    caches
        .documents
        .borrow_mut()
        .insert(url.to_string(), (now, v.clone()));
    Ok(v)
}
