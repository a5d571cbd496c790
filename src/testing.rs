//! In-memory implementations of the platform traits and fixtures, for native unit tests
//! and benchmarks (never compiled into the Worker).

use crate::config::Config;
use crate::jwt::jwk::PublicJwk;
use crate::jwt::keys::SigningKey;
use crate::jwt::native::NativeSignatures;
use crate::jwt::Alg;
use crate::platform::{
    Caches, FetchError, HttpClient, Inbound, Kv, Outbound, Platform, Signatures, StoreError,
};
use crate::users::{Event, Profile, User, UserStore};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};

/// RFC 8037 appendix A's Ed25519 key.
pub const TEST_KEY_1: &str = r#"{"kty":"OKP","crv":"Ed25519","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;

/// A second key, made fresh per process.
pub fn test_key_2() -> SigningKey {
    SigningKey::from_private_jwk(&crate::jwt::native::generate_ed25519_jwk()).unwrap()
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    futures_executor::block_on(f)
}

/// A complete, valid environment.
pub fn test_env() -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert("PUBLIC_URL".into(), "http://127.0.0.1:8787".into());
    env.insert(
        "PROVIDERS".into(),
        r#"{"dev":{"kind":"oidc","issuer":"http://127.0.0.1:9000","client_id":"gatehouse","display_name":"Local dev"}}"#.into(),
    );
    env.insert("PROVIDER_DEV_SECRET".into(), "dev-secret".into());
    env.insert("SIGNING_KEYS".into(), format!("[{TEST_KEY_1}]"));
    env.insert(
        "STATE_SECRET".into(),
        "0123456789abcdef0123456789abcdef".into(),
    );
    env
}

pub fn test_config() -> Config {
    Config::from_env(&test_env()).expect("test env is valid")
}

pub fn profile(issuer: &str, sub: &str, email: Option<&str>) -> Profile {
    Profile {
        issuer: issuer.into(),
        sub: sub.into(),
        provider: "dev".into(),
        email: email.map(String::from),
        email_verified: Some(true),
        name: Some("Test".into()),
        picture: None,
        raw: serde_json::json!({}),
        vendor_logout: None,
    }
}

/// KV in a map (TTL ignored).
#[derive(Default)]
pub struct MemoryKv {
    map: RefCell<BTreeMap<String, String>>,
}

impl MemoryKv {
    pub fn keys(&self) -> Vec<String> {
        self.map.borrow().keys().cloned().collect()
    }
    pub fn values(&self) -> Vec<String> {
        self.map.borrow().values().cloned().collect()
    }
}

impl Kv for MemoryKv {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.map.borrow().get(key).cloned())
    }
    async fn put(&self, key: &str, value: &str, _ttl: u64) -> Result<(), StoreError> {
        self.map.borrow_mut().insert(key.into(), value.into());
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.map.borrow_mut().remove(key);
        Ok(())
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .map
            .borrow()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }
}

/// Users, identities and events in maps.
#[derive(Default)]
pub struct MemoryUsers {
    users: RefCell<HashMap<String, User>>,
    identities: RefCell<HashMap<(String, String), String>>,
    pub events: RefCell<Vec<Event>>,
}

impl MemoryUsers {
    pub fn user_count(&self) -> usize {
        self.users.borrow().len()
    }
    pub fn set_active(&self, id: &str, active: bool) {
        if let Some(u) = self.users.borrow_mut().get_mut(id) {
            u.active = active;
        }
    }
}

impl UserStore for MemoryUsers {
    async fn identity_owner(&self, issuer: &str, sub: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .identities
            .borrow()
            .get(&(issuer.into(), sub.into()))
            .cloned())
    }
    async fn create_linked(
        &self,
        user: &User,
        p: &Profile,
        _now: i64,
    ) -> Result<String, StoreError> {
        let key = (p.issuer.clone(), p.sub.clone());
        if let Some(owner) = self.identities.borrow().get(&key) {
            return Ok(owner.clone());
        }
        self.users
            .borrow_mut()
            .insert(user.id.clone(), user.clone());
        self.identities.borrow_mut().insert(key, user.id.clone());
        Ok(user.id.clone())
    }
    async fn refresh_login(&self, user_id: &str, p: &Profile, now: i64) -> Result<(), StoreError> {
        if let Some(u) = self.users.borrow_mut().get_mut(user_id) {
            u.name = p.name.clone().or(u.name.take());
            u.email = p.email.clone().or(u.email.take());
            u.picture = p.picture.clone().or(u.picture.take());
            u.last_login_at = Some(now);
            u.updated_at = now;
        }
        Ok(())
    }
    async fn get_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        Ok(self.users.borrow().get(id).cloned())
    }
    async fn record_event(&self, event: &Event) -> Result<(), StoreError> {
        self.events.borrow_mut().push(event.clone());
        Ok(())
    }
}

/// Outbound HTTP answered by a closure.
pub struct FakeHttp {
    #[allow(clippy::type_complexity)]
    pub handler: Box<dyn Fn(&Outbound) -> Result<Inbound, FetchError>>,
    pub calls: RefCell<Vec<Outbound>>,
}

impl HttpClient for FakeHttp {
    async fn send(&self, req: Outbound) -> Result<Inbound, FetchError> {
        let r = (self.handler)(&req);
        self.calls.borrow_mut().push(req);
        r
    }
}

/// A platform made of the fakes above, with a settable clock.
pub struct TestPlatform {
    pub kv: MemoryKv,
    pub users: MemoryUsers,
    pub http: FakeHttp,
    pub caches: Caches,
    pub clock: Cell<i64>,
    pub logs: RefCell<Vec<String>>,
}

impl TestPlatform {
    pub fn new(
        handler: impl Fn(&Outbound) -> Result<Inbound, FetchError> + 'static,
    ) -> TestPlatform {
        TestPlatform {
            kv: MemoryKv::default(),
            users: MemoryUsers::default(),
            http: FakeHttp {
                handler: Box::new(handler),
                calls: RefCell::new(vec![]),
            },
            caches: Caches::default(),
            clock: Cell::new(1_700_000_000),
            logs: RefCell::new(vec![]),
        }
    }
}

impl Signatures for TestPlatform {
    async fn verify(
        &self,
        key: &PublicJwk,
        alg: Alg,
        msg: &[u8],
        sig: &[u8],
    ) -> Result<bool, String> {
        NativeSignatures.verify(key, alg, msg, sig).await
    }
    async fn sign(&self, key: &SigningKey, msg: &[u8]) -> Result<Vec<u8>, String> {
        NativeSignatures.sign(key, msg).await
    }
}

impl Platform for TestPlatform {
    type Kv = MemoryKv;
    type Users = MemoryUsers;
    type Http = FakeHttp;
    type Sig = TestPlatform;
    fn kv(&self) -> &MemoryKv {
        &self.kv
    }
    fn users(&self) -> &MemoryUsers {
        &self.users
    }
    fn http(&self) -> &FakeHttp {
        &self.http
    }
    fn sig(&self) -> &TestPlatform {
        self
    }
    fn caches(&self) -> &Caches {
        &self.caches
    }
    fn now(&self) -> i64 {
        self.clock.get()
    }
    fn log(&self, line: &str) {
        self.logs.borrow_mut().push(line.to_string());
    }
}
