//! The JWKS: fetched through a small trait, cached, refetched on an unknown `kid` at most
//! once per cooldown.

use crate::backend::{self, PublicKey};
use crate::VerifyError;
use std::future::Future;
use std::sync::Mutex;

/// A failed JWKS request, in words (for logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchError(pub String);

/// How the verifier gets the JWKS document: implement it with your HTTP client, a service
/// binding, or a file. Answer the body of a `200`; anything else is an error. Give the
/// request a timeout: the verifier waits for it.
///
/// Natively the future must be `Send`, so that `verify` can run inside multi-threaded
/// servers (axum, actix); on wasm32 it need not be (JavaScript promises are not).
#[cfg(not(target_arch = "wasm32"))]
pub trait JwksFetcher: Send + Sync {
    fn fetch_jwks(&self, url: &str) -> impl Future<Output = Result<Vec<u8>, FetchError>> + Send;
}

/// How the verifier gets the JWKS document: implement it with `fetch` or a service binding
/// (see [`crate::GlobalFetch`]). Answer the body of a `200`; anything else is an error.
#[cfg(target_arch = "wasm32")]
pub trait JwksFetcher {
    fn fetch_jwks(&self, url: &str) -> impl Future<Output = Result<Vec<u8>, FetchError>>;
}

/// A JWKS that is already at hand (read from a file, say): never fetched over the network.
pub struct StaticJwks(pub Vec<u8>);

impl JwksFetcher for StaticJwks {
    async fn fetch_jwks(&self, _url: &str) -> Result<Vec<u8>, FetchError> {
        Ok(self.0.clone())
    }
}

/// One published key, imported.
#[derive(Clone)]
pub(crate) struct Published {
    kid: String,
    /// The JWK as published, to keep the imported key when a refetch brings the same one.
    jwk: serde_json::Value,
    pub key: PublicKey,
}

#[derive(Default)]
struct State {
    keys: Vec<Published>,
    fetched_at: Option<i64>,
    last_attempt: Option<i64>,
    last_error: Option<String>,
    fetches: u64,
    in_flight: u32,
}

/// The cache. Timing rules (seconds): the set is fetched on first use, again once it is
/// `max_age` old, and again for an unknown `kid` — never more than once per `cooldown`,
/// whatever the reason, so that made-up `kid`s cannot make it hammer the endpoint. When a
/// refresh fails, the keys already known stay in use. Concurrent callers do not share one
/// request; but while the very first one is in flight, others fetch too rather than fail
/// (a cold start under load gets keys, not 503s). After that, the cooldown holds.
pub(crate) struct KeyCache {
    pub url: String,
    pub cooldown: i64,
    pub max_age: i64,
    state: Mutex<State>,
}

/// Whether a JWK is an Ed25519 signing key this verifier can use, and its `kid`.
fn usable(jwk: &serde_json::Value) -> Option<&str> {
    let field = |name: &str| jwk.get(name).and_then(|v| v.as_str());
    let ok = field("kty") == Some("OKP")
        && field("crv") == Some("Ed25519")
        && matches!(field("alg"), None | Some("EdDSA"))
        && matches!(field("use"), None | Some("sig"));
    ok.then_some(field("kid")?)
}

impl KeyCache {
    pub fn new(url: String, cooldown: i64, max_age: i64) -> KeyCache {
        KeyCache {
            url,
            cooldown,
            max_age,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves plain data behind: keep using it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many JWKS requests were made.
    pub fn fetches(&self) -> u64 {
        self.state().fetches
    }

    /// The published key called `kid`, refetching the set once if it is unknown or stale.
    pub async fn key<F: JwksFetcher>(
        &self,
        fetcher: &F,
        kid: &str,
        now: i64,
    ) -> Result<PublicKey, VerifyError> {
        let must_fetch = {
            let s = self.state();
            let stale = s.fetched_at.is_none_or(|t| now - t >= self.max_age);
            let known = s.keys.iter().any(|k| k.kid == kid);
            let may = s.last_attempt.is_none_or(|t| now - t >= self.cooldown)
                || (s.fetched_at.is_none() && s.in_flight > 0);
            (stale || !known) && may
        };
        if must_fetch {
            self.refresh(fetcher, now).await;
        }
        let s = self.state();
        if let Some(k) = s.keys.iter().find(|k| k.kid == kid) {
            // Copy natively; a cheap handle clone of a `CryptoKey` on wasm32.
            #[allow(clippy::clone_on_copy)]
            return Ok(k.key.clone());
        }
        match (&s.fetched_at, &s.last_error) {
            (None, Some(e)) => Err(VerifyError::JwksUnavailable(e.clone())),
            (None, None) => Err(VerifyError::JwksUnavailable("not fetched yet".into())),
            _ => Err(VerifyError::UnknownKid(kid.to_string())),
        }
    }

    async fn refresh<F: JwksFetcher>(&self, fetcher: &F, now: i64) {
        {
            let mut s = self.state();
            s.last_attempt = Some(now);
            s.fetches += 1;
            s.in_flight += 1;
        }
        let outcome = match fetcher.fetch_jwks(&self.url).await {
            Ok(body) => self.import_all(&body).await,
            Err(FetchError(e)) => Err(e),
        };
        let mut s = self.state();
        s.in_flight -= 1;
        match outcome {
            Ok(keys) => {
                s.keys = keys;
                s.fetched_at = Some(now);
                s.last_error = None;
            }
            Err(e) => s.last_error = Some(format!("{}: {e}", self.url)),
        }
    }

    /// Every usable key of the document; one key of an unknown type does not reject the set.
    async fn import_all(&self, body: &[u8]) -> Result<Vec<Published>, String> {
        let doc: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
        let Some(list) = doc.get("keys").and_then(|k| k.as_array()) else {
            return Err("no \"keys\" array".into());
        };
        let known: Vec<Published> = self.state().keys.clone();
        let mut keys = Vec::new();
        for jwk in list {
            let Some(kid) = usable(jwk) else { continue };
            if let Some(same) = known.iter().find(|k| k.kid == kid && &k.jwk == jwk) {
                keys.push(same.clone());
            } else if let Ok(key) = backend::import(jwk).await {
                keys.push(Published {
                    kid: kid.to_string(),
                    jwk: jwk.clone(),
                    key,
                });
            }
        }
        Ok(keys)
    }
}
