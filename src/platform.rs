//! The seams between the domain logic and the runtime: one small trait per concern (key-value
//! store, outbound HTTP, signatures, clock), bundled by [`Platform`]. The Worker implements
//! them with KV, `fetch` and WebCrypto (`worker_glue`); unit tests with in-memory fakes
//! (`testing`). User storage has its own trait in [`crate::users`].

#![allow(async_fn_in_trait)] // single-threaded runtime: the futures need not be Send

use crate::jwt::jwk::PublicJwk;
use crate::jwt::keys::SigningKey;
use crate::jwt::Alg;
use crate::users::UserStore;
use std::cell::RefCell;
use std::collections::HashMap;

/// A storage failure (the detail is for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl From<StoreError> for crate::error::AppError {
    fn from(e: StoreError) -> Self {
        crate::error::AppError::Storage(e.0)
    }
}

/// Workers KV, as far as sessions and login transactions need it.
pub trait Kv {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Stores `value` for `ttl` seconds (KV's minimum TTL is 60 s; callers round up).
    async fn put(&self, key: &str, value: &str, ttl: u64) -> Result<(), StoreError>;
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Keys starting with `prefix` (every page of them).
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
}

/// An outbound HTTP request.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    /// Abort after this many milliseconds.
    pub timeout_ms: u32,
}

impl Outbound {
    pub fn get(url: impl Into<String>) -> Outbound {
        Outbound {
            method: "GET",
            url: url.into(),
            headers: vec![("accept".into(), "application/json".into())],
            body: None,
            timeout_ms: DEFAULT_TIMEOUT_MS,
        }
    }

    pub fn post_form(url: impl Into<String>, pairs: &[(&str, &str)]) -> Outbound {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        let mut o = Outbound::get(url);
        o.method = "POST";
        o.headers.push((
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
        o.body = Some(body.into_bytes());
        o
    }

    pub fn post_json(url: impl Into<String>, value: &serde_json::Value) -> Outbound {
        let mut o = Outbound::get(url);
        o.method = "POST";
        o.headers
            .push(("content-type".into(), "application/json".into()));
        o.body = Some(value.to_string().into_bytes());
        o
    }

    pub fn header(mut self, name: &str, value: &str) -> Outbound {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }
}

/// Outbound calls time out after this long unless a caller says otherwise.
pub const DEFAULT_TIMEOUT_MS: u32 = 5_000;

/// The answer to an outbound request.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Why an outbound request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchError {
    /// No answer within the timeout.
    Timeout,
    /// DNS, connection or protocol failure.
    Network(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Timeout => f.write_str("timed out"),
            FetchError::Network(m) => write!(f, "network error: {m}"),
        }
    }
}

/// Outbound HTTP (the Workers fetch API).
pub trait HttpClient {
    async fn send(&self, req: Outbound) -> Result<Inbound, FetchError>;
}

/// Signature primitives: WebCrypto in the Worker, pure Rust natively.
pub trait Signatures {
    /// Checks `sig` over `msg` with `key` and `alg`. `Err` for a key the backend cannot use.
    async fn verify(
        &self,
        key: &PublicJwk,
        alg: Alg,
        msg: &[u8],
        sig: &[u8],
    ) -> Result<bool, String>;
    /// Signs `msg` with one of Gatehouse's Ed25519 keys.
    async fn sign(&self, key: &SigningKey, msg: &[u8]) -> Result<Vec<u8>, String>;
}

/// Per-isolate caches of remote documents (discovery, JWKS) and of successful signature
/// checks: they live as long as the isolate, which is what makes the hot path cheap.
#[derive(Default)]
pub struct Caches {
    /// URL → (fetched at, body).
    pub documents: RefCell<HashMap<String, (i64, serde_json::Value)>>,
    /// URL → last forced refetch (the once-a-minute limit on unknown `kid`s).
    pub last_refetch: RefCell<HashMap<String, i64>>,
    /// Signature checks that succeeded (see [`crate::jwt::remembered`]).
    pub verified: crate::jwt::remembered::VerifiedSet,
}

/// Everything a request handler needs from the runtime.
pub trait Platform {
    type Kv: Kv;
    type Users: UserStore;
    type Http: HttpClient;
    type Sig: Signatures;
    fn kv(&self) -> &Self::Kv;
    fn users(&self) -> &Self::Users;
    fn http(&self) -> &Self::Http;
    fn sig(&self) -> &Self::Sig;
    fn caches(&self) -> &Caches;
    /// Seconds since the Unix epoch.
    fn now(&self) -> i64;
    /// One line to the Worker's log.
    fn log(&self, line: &str);
}
