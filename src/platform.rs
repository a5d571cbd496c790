//! The seams between the domain logic and the runtime: one small trait per concern (key-value
//! store, outbound HTTP, signatures, clock), bundled by [`Platform`]. The Worker implements
//! them with KV, D1, the rate-limiting binding, `fetch` and WebCrypto (`worker_glue`); unit tests with in-memory fakes
//! (`testing`). User storage has its own trait in [`crate::users`].

#![allow(async_fn_in_trait)] // single-threaded runtime: the futures need not be Send

use crate::small_map::SmallMap;
use crate::users::UserStore;
use std::cell::RefCell;

pub use crate::error::StoreError;
pub use crate::jwt::Signatures;

/// Workers KV, as far as sessions and login transactions need it.
pub trait Kv {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Stores `value` for `ttl` seconds (KV's minimum TTL is 60 s; callers round up).
    async fn put(&self, key: &str, value: &str, ttl: u64) -> Result<(), StoreError>;
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Keys starting with `prefix` (every page of them).
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
}

/// What a single-use thing is: the namespace of its key in the spent-set, so that two kinds
/// can never collide, and so that a log or a row says what was spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpendKind {
    /// A login transaction (the `state` of a browser's sign-in).
    LoginTxn,
    /// An emailed invitation (`POST /admin/magic-links`).
    Invitation,
    /// A sign-up invitation of the access policy (`POST /admin/invitations`).
    SignUpInvitation,
    /// An ended session (by its `sid`, already a hash): logout, a revoked device, a session
    /// superseded by a new sign-in. Every renewal reads this mark with the user, so a renewal
    /// that raced the ending and wrote the session back to KV renews nothing.
    EndedSession,
    /// A passkey ceremony's challenge.
    PasskeyChallenge,
}

impl SpendKind {
    /// The key prefix of this kind in the spent-set.
    pub fn prefix(self) -> &'static str {
        match self {
            SpendKind::LoginTxn => "txn",
            SpendKind::Invitation => "inv",
            SpendKind::SignUpInvitation => "signup",
            SpendKind::EndedSession => "ses",
            SpendKind::PasskeyChallenge => "pkc",
        }
    }
}

/// Spends single-use things atomically: of any number of concurrent [`SingleUse::spend`]s
/// of one key, exactly one gets `true`. D1 in the Worker (one conditional `INSERT` into the
/// `spent` table, whose primary key is the spent key: a conflict means someone spent it
/// first); a map in tests. KV cannot do this: a get-then-delete lets two readers both see the
/// thing before either deletes it.
///
/// How to use it for a new single-use thing (authorization code, refresh token, email code,
/// passkey challenge):
///
/// 1. Add a [`SpendKind`] variant with its own prefix.
/// 2. Check everything that does not spend first: the thing exists, is fresh, belongs to
///    this caller — so that a refused request spends (and writes) nothing.
/// 3. Call `spend(kind, &sha256_b64url(secret), expires_at)` with the hash of the secret
///    (never the secret itself) and the time after which the thing is refused anyway by its
///    own expiry check; go on only on `Ok(true)`. `Ok(false)` is a replay or a lost race.
/// 4. The spent row is kept until `expires_at` and then pruned by the cron trigger
///    ([`crate::audit::prune_spent`]): the thing's own expiry check must refuse it from then
///    on, so `expires_at` must not be earlier than the last moment the thing is accepted.
pub trait SingleUse {
    /// Marks `key_hash` of `kind` as spent until `expires_at` (Unix seconds). `Ok(true)`: this
    /// call spent it; `Ok(false)`: it was spent before.
    async fn spend(
        &self,
        kind: SpendKind,
        key_hash: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError>;
    /// Whether `key_hash` of `kind` was spent (for a page that shows a thing without spending
    /// it; never a check before [`SingleUse::spend`], which alone decides).
    async fn is_spent(&self, kind: SpendKind, key_hash: &str) -> Result<bool, StoreError>;
    /// Forgets at most `max` spent keys whose `expires_at` is before `now`; returns how many.
    async fn prune_spent(&self, now: i64, max: u32) -> Result<u64, StoreError>;
}

/// Exact counters for long-window rate limits (see [`crate::ratelimit`]): D1 in the Worker
/// (one upsert that adds one and returns the new count, so of concurrent hits on one key each
/// sees a different count); a map in tests. KV cannot do this: a get-then-put lets a
/// concurrent burst all read the same count.
pub trait Counters {
    /// Adds one to `key` (kept until `expires_at`, Unix seconds) and returns the new count.
    async fn count(&self, key: &str, expires_at: i64) -> Result<u32, StoreError>;
    /// The current count of `key`, without adding to it (0 for a key never counted).
    async fn peek(&self, key: &str) -> Result<u32, StoreError>;
    /// Forgets at most `max` counters whose `expires_at` is before `now`; returns how many.
    async fn prune_counters(&self, now: i64, max: u32) -> Result<u64, StoreError>;
}

/// Short-window request limits per key (a client network and what it asks for): the
/// Workers Rate Limiting binding in the Worker, which counts in memory at the edge and writes
/// no storage; a counter map in tests.
pub trait Limiter {
    /// Counts one request under `key`; `Ok(false)` once the key's limit for the current
    /// window is used up.
    async fn allow(&self, key: &str) -> Result<bool, StoreError>;
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
        o.body = Some(serde_json::to_vec(value).unwrap_or_default());
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

/// One email: a plain-text and an HTML part of the same message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub from: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailError {
    /// The named `send_email` binding is not configured.
    NoBinding(String),
    /// The email service refused the message or could not be reached.
    Refused(String),
}

/// Outbound email (a `[[send_email]]` binding of Cloudflare's Email Service in the Worker; a
/// recording fake in tests).
pub trait Mailer {
    /// Sends `mail` through the binding named `binding`.
    async fn send(&self, binding: &str, mail: &Mail) -> Result<(), MailError>;
}

/// Per-isolate caches of remote documents (discovery, JWKS) and of successful signature
/// checks: they live as long as the isolate, which is what makes the hot path cheap.
#[derive(Default)]
pub struct Caches {
    /// URL → (fetched at, body).
    pub documents: RefCell<SmallMap<String, (i64, serde_json::Value)>>,
    /// URL → last forced refetch (the once-a-minute limit on unknown `kid`s).
    pub last_refetch: RefCell<SmallMap<String, i64>>,
    /// Signature checks that succeeded (see [`crate::jwt::remembered`]).
    pub verified: crate::jwt::remembered::VerifiedSet,
}

/// Everything a request handler needs from the runtime.
pub trait Platform {
    type Kv: Kv;
    type Users: UserStore + crate::webauthn::store::PasskeyStore;
    type Http: HttpClient;
    type Sig: Signatures;
    type Once: SingleUse;
    type Limits: Limiter;
    type Counts: Counters;
    type OAuth: crate::oauth_store::OAuthStore;
    type Mail: Mailer;
    fn kv(&self) -> &Self::Kv;
    /// The OpenID Provider's clients, consents and refresh tokens.
    fn oauth(&self) -> &Self::OAuth;
    fn users(&self) -> &Self::Users;
    fn http(&self) -> &Self::Http;
    fn sig(&self) -> &Self::Sig;
    /// The spent-set of single-use things.
    fn single_use(&self) -> &Self::Once;
    /// Per-client-network limits on what anonymous clients can start.
    fn limiter(&self) -> &Self::Limits;
    /// Exact counters for the long-window rate limits.
    fn counters(&self) -> &Self::Counts;
    fn caches(&self) -> &Caches;
    /// Outbound email (the `email` provider kind).
    fn mailer(&self) -> &Self::Mail;
    /// Seconds since the Unix epoch.
    fn now(&self) -> i64;
    /// One line to the Worker's log.
    fn log(&self, line: &str);
}
