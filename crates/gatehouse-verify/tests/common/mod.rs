//! Test support: a native Ed25519 signer shaped like Gatehouse's, a JWKS endpoint the test
//! changes and that counts requests, and a clock the test moves.

#![allow(dead_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use gatehouse_verify::{Clock, FetchError, JwksFetcher};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub const ISS: &str = "https://login.example.test";

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub struct Key {
    pair: ed25519_compact::KeyPair,
    pub kid: String,
}

impl Key {
    pub fn new(seed: u8) -> Key {
        let pair = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([seed; 32]));
        Key {
            pair,
            kid: format!("key-{seed}"),
        }
    }

    pub fn public_x(&self) -> String {
        b64(self.pair.pk.as_ref())
    }

    pub fn jwk(&self) -> Value {
        json!({"kty": "OKP", "crv": "Ed25519", "x": self.public_x(), "kid": self.kid, "alg": "EdDSA", "use": "sig"})
    }

    /// Signs `claims` under `header` (merged over Gatehouse's header).
    pub fn sign(&self, claims: &Value, header: Value) -> String {
        let mut h = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": self.kid});
        for (k, v) in header.as_object().unwrap() {
            if v.is_null() {
                h.as_object_mut().unwrap().remove(k);
            } else {
                h[k] = v.clone();
            }
        }
        let input = format!(
            "{}.{}",
            b64(h.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self.pair.sk.sign(input.as_bytes(), None);
        format!("{input}.{}", b64(sig.as_ref()))
    }
}

pub fn claims(now: i64) -> Value {
    json!({"iss": ISS, "aud": ISS, "sub": "usr_1", "sid": "sid_1", "iat": now, "exp": now + 300, "email": null, "name": null})
}

pub fn with(mut v: Value, extra: Value) -> Value {
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

/// A JWKS endpoint: serves `doc`, or fails when it is `None`; counts requests.
#[derive(Clone, Default)]
pub struct Endpoint {
    pub doc: Arc<Mutex<Option<Vec<u8>>>>,
    pub count: Arc<AtomicU64>,
}

impl Endpoint {
    pub fn serving(keys: &[&Key]) -> Endpoint {
        let e = Endpoint::default();
        e.serve(keys);
        e
    }
    pub fn serve(&self, keys: &[&Key]) {
        let doc = json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()});
        self.serve_raw(doc.to_string().into_bytes());
    }
    pub fn serve_raw(&self, body: Vec<u8>) {
        *self.doc.lock().unwrap() = Some(body);
    }
    pub fn fail(&self) {
        *self.doc.lock().unwrap() = None;
    }
    pub fn fetches(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }
}

impl JwksFetcher for Endpoint {
    async fn fetch_jwks(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        self.count.fetch_add(1, Ordering::SeqCst);
        assert!(url.ends_with("/.well-known/jwks.json"), "{url}");
        self.doc
            .lock()
            .unwrap()
            .clone()
            .ok_or_else(|| FetchError("HTTP 503".into()))
    }
}

/// A clock the test moves.
#[derive(Clone)]
pub struct ManualClock(pub Arc<AtomicI64>);

impl ManualClock {
    pub fn at(t: i64) -> ManualClock {
        ManualClock(Arc::new(AtomicI64::new(t)))
    }
    pub fn set(&self, t: i64) {
        self.0.store(t, Ordering::SeqCst)
    }
    pub fn advance(&self, s: i64) {
        self.0.fetch_add(s, Ordering::SeqCst);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.get()
    }
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    futures_executor::block_on(f)
}
