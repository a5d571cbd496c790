//! The verifier: every check of a Gatehouse access token, in a fixed order.

use crate::claims::Claims;
use crate::jwks::{JwksFetcher, KeyCache};
use crate::token::{self, Parts};
use crate::{backend, VerifyError};

/// The `typ` of an access token (RFC 9068): nothing else is accepted.
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
/// The one signature algorithm accepted: what Gatehouse signs with.
pub const ALGORITHM: &str = "EdDSA";

/// The time, in seconds since the Unix epoch. Inject one in tests.
pub trait Clock {
    fn now(&self) -> i64;
}

/// The system clock (`Date.now()` on wasm32).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[cfg(not(target_arch = "wasm32"))]
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
    #[cfg(target_arch = "wasm32")]
    fn now(&self) -> i64 {
        (js_sys::Date::now() / 1000.0) as i64
    }
}

/// What a verifier accepts.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// Gatehouse's `PUBLIC_URL`, exactly as in the tokens' `iss`.
    pub issuer: String,
    /// A token passes when its `aud` names at least one of these: `PUBLIC_URL` for
    /// first-party tokens, an app's own audience for tokens Gatehouse issued to that app.
    pub audiences: Vec<String>,
    /// Default `{issuer}/.well-known/jwks.json`.
    pub jwks_url: String,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds (default 5). It adds to the
    /// revocation bound.
    pub leeway: i64,
    /// The least time between two JWKS requests, in seconds (default 60).
    pub cooldown: i64,
    /// How long a fetched JWKS is used before it is fetched again, in seconds (default 300).
    pub max_age: i64,
}

impl VerifierConfig {
    /// The defaults for `issuer` (Gatehouse's `PUBLIC_URL`) and one audience.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> VerifierConfig {
        let issuer = issuer.into();
        VerifierConfig {
            jwks_url: format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/')),
            issuer,
            audiences: vec![audience.into()],
            leeway: 5,
            cooldown: 60,
            max_age: 300,
        }
    }

    /// Accept these audiences instead (a token must name one of them).
    pub fn audiences<I: IntoIterator<Item = S>, S: Into<String>>(mut self, list: I) -> Self {
        self.audiences = list.into_iter().map(Into::into).collect();
        self
    }

    pub fn leeway(mut self, seconds: i64) -> Self {
        self.leeway = seconds;
        self
    }

    pub fn cooldown(mut self, seconds: i64) -> Self {
        self.cooldown = seconds;
        self
    }

    pub fn max_age(mut self, seconds: i64) -> Self {
        self.max_age = seconds;
        self
    }

    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks_url = url.into();
        self
    }
}

/// A verifier of Gatehouse access tokens. Make one per process (or isolate) and keep it: it
/// holds the cached JWKS and the imported keys.
pub struct Verifier<F, C = SystemClock> {
    config: VerifierConfig,
    fetcher: F,
    clock: C,
    keys: KeyCache,
}

impl<F: JwksFetcher> Verifier<F, SystemClock> {
    pub fn new(config: VerifierConfig, fetcher: F) -> Self {
        Verifier::with_clock(config, fetcher, SystemClock)
    }
}

impl<F: JwksFetcher, C: Clock> Verifier<F, C> {
    pub fn with_clock(config: VerifierConfig, fetcher: F, clock: C) -> Self {
        let keys = KeyCache::new(config.jwks_url.clone(), config.cooldown, config.max_age);
        Verifier {
            config,
            fetcher,
            clock,
            keys,
        }
    }

    /// How many JWKS requests this verifier has made.
    pub fn jwks_fetches(&self) -> u64 {
        self.keys.fetches()
    }

    /// The token's claims when every check passes.
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let parts = token::split(token)?;
        check_header(&parts)?;
        let kid = parts.header.kid.as_deref().unwrap_or_default();
        let now = self.clock.now();
        let key = self.keys.key(&self.fetcher, kid, now).await?;
        if !backend::verify(&key, token, parts.signed.as_bytes(), &parts.signature).await {
            return Err(VerifyError::BadSignature);
        }
        let claims = token::claims(&parts)?;
        self.check_claims(&claims, now)?;
        Ok(claims)
    }

    /// In the order jose checks them, so both verifiers give the same code for one token.
    fn check_claims(&self, c: &Claims, now: i64) -> Result<(), VerifyError> {
        let leeway = self.config.leeway;
        if c.iss != self.config.issuer {
            return Err(VerifyError::WrongIssuer);
        }
        if !self.config.audiences.iter().any(|a| c.aud.contains(a)) {
            return Err(VerifyError::WrongAudience);
        }
        if c.nbf.is_some_and(|nbf| nbf > now + leeway) {
            return Err(VerifyError::NotYetValid);
        }
        // `exp` is the first second the token is no longer valid (RFC 7519 section 4.1.4).
        if c.exp <= now - leeway {
            return Err(VerifyError::Expired);
        }
        if c.iat > now + leeway {
            return Err(VerifyError::NotYetValid);
        }
        Ok(())
    }
}

/// The checks that need no key: `alg`, `typ`, no key-carrying parameters, a `kid`.
fn check_header(parts: &Parts<'_>) -> Result<(), VerifyError> {
    let h = &parts.header;
    if h.alg != ALGORITHM {
        return Err(VerifyError::AlgNotAllowed(h.alg.clone()));
    }
    if h.typ.as_deref() != Some(ACCESS_TOKEN_TYPE) {
        return Err(VerifyError::WrongType);
    }
    if let Some(name) = h.forbidden_parameter() {
        return Err(VerifyError::Malformed(format!("header parameter {name}")));
    }
    if h.kid.is_none() {
        return Err(VerifyError::Malformed(
            "the token names no key (kid)".into(),
        ));
    }
    Ok(())
}
