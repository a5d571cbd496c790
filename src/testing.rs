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
use crate::users::{
    Event, Identity, LinkOutcome, Profile, StoredEvent, UnlinkOutcome, User, UserPatch, UserQuery,
    UserStore,
};
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
    identities: RefCell<HashMap<(String, String), Identity>>,
    pub events: RefCell<Vec<Event>>,
}

impl MemoryUsers {
    pub fn user_count(&self) -> usize {
        self.users.borrow().len()
    }
    /// Drops the user row alone, as a delete racing a sign-in leaves it for a moment.
    pub fn drop_user_row(&self, id: &str) {
        self.users.borrow_mut().remove(id);
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
            .map(|i| i.user_id.clone()))
    }
    async fn create_linked(
        &self,
        user: &User,
        p: &Profile,
        now: i64,
    ) -> Result<String, StoreError> {
        let key = (p.issuer.clone(), p.sub.clone());
        if let Some(owner) = self.identities.borrow().get(&key) {
            return Ok(owner.user_id.clone());
        }
        self.users
            .borrow_mut()
            .insert(user.id.clone(), user.clone());
        self.identities
            .borrow_mut()
            .insert(key, identity_of(&user.id, p, now));
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
    async fn list_users(&self, q: &UserQuery) -> Result<Vec<User>, StoreError> {
        let mut all: Vec<User> = self
            .users
            .borrow()
            .values()
            .filter(|u| match &q.email {
                Some(e) => u.email.as_deref().map(str::to_lowercase) == Some(e.to_lowercase()),
                None => true,
            })
            .filter(|u| match &q.after {
                Some((t, id)) => (u.created_at, u.id.as_str()) < (*t, id.as_str()),
                None => true,
            })
            .cloned()
            .collect();
        all.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        all.truncate(q.limit as usize);
        Ok(all)
    }
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        let mut users = self.users.borrow_mut();
        if users.contains_key(&user.id) {
            return Err(StoreError(format!("duplicate user id {}", user.id)));
        }
        users.insert(user.id.clone(), user.clone());
        Ok(())
    }
    async fn update_user(
        &self,
        id: &str,
        patch: &UserPatch,
        now: i64,
    ) -> Result<Option<User>, StoreError> {
        let mut users = self.users.borrow_mut();
        let Some(u) = users.get_mut(id) else {
            return Ok(None);
        };
        patch.apply(u, now);
        Ok(Some(u.clone()))
    }
    async fn end_sessions_until(&self, user_id: &str, at: i64) -> Result<(), StoreError> {
        if let Some(u) = self.users.borrow_mut().get_mut(user_id) {
            u.sessions_valid_after = u.sessions_valid_after.max(at);
        }
        Ok(())
    }
    async fn set_user_active(&self, id: &str, active: bool, now: i64) -> Result<bool, StoreError> {
        let mut users = self.users.borrow_mut();
        let Some(u) = users.get_mut(id) else {
            return Ok(false);
        };
        u.active = active;
        u.updated_at = now;
        Ok(true)
    }
    async fn delete_user(&self, id: &str) -> Result<bool, StoreError> {
        self.identities.borrow_mut().retain(|_, i| i.user_id != id);
        Ok(self.users.borrow_mut().remove(id).is_some())
    }
    async fn identities_of(&self, user_id: &str) -> Result<Vec<Identity>, StoreError> {
        let mut list: Vec<Identity> = self
            .identities
            .borrow()
            .values()
            .filter(|i| i.user_id == user_id)
            .cloned()
            .collect();
        list.sort_by(|a, b| {
            (a.created_at, &a.issuer, &a.sub).cmp(&(b.created_at, &b.issuer, &b.sub))
        });
        Ok(list)
    }
    async fn link_identity(
        &self,
        user_id: &str,
        p: &Profile,
        now: i64,
    ) -> Result<LinkOutcome, StoreError> {
        let key = (p.issuer.clone(), p.sub.clone());
        if let Some(i) = self.identities.borrow().get(&key) {
            return Ok(if i.user_id == user_id {
                LinkOutcome::AlreadyLinked
            } else {
                LinkOutcome::OwnedByOther(i.user_id.clone())
            });
        }
        if !self.users.borrow().contains_key(user_id) {
            return Ok(LinkOutcome::NoUser);
        }
        self.identities
            .borrow_mut()
            .insert(key, identity_of(user_id, p, now));
        Ok(LinkOutcome::Linked)
    }
    async fn unlink_identity(
        &self,
        user_id: &str,
        issuer: &str,
        sub: &str,
    ) -> Result<UnlinkOutcome, StoreError> {
        let mut ids = self.identities.borrow_mut();
        let key = (issuer.to_string(), sub.to_string());
        if ids.get(&key).map(|i| i.user_id.as_str()) != Some(user_id) {
            return Ok(UnlinkOutcome::NotFound);
        }
        if ids.values().filter(|i| i.user_id == user_id).count() < 2 {
            return Ok(UnlinkOutcome::LastIdentity);
        }
        ids.remove(&key);
        Ok(UnlinkOutcome::Unlinked)
    }
    async fn events_of(
        &self,
        user_id: &str,
        limit: u32,
        after: Option<(i64, i64)>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        // The id of an event is its position (1-based) in the log.
        let mut list: Vec<StoredEvent> = self
            .events
            .borrow()
            .iter()
            .enumerate()
            .filter(|(_, e)| e.user_id.as_deref() == Some(user_id))
            .map(|(i, e)| StoredEvent {
                id: i as i64 + 1,
                user_id: e.user_id.clone(),
                kind: e.kind.to_string(),
                at: e.at,
                ip: e.ip.clone(),
                user_agent: e.user_agent.clone(),
                detail: e.detail.clone(),
            })
            .filter(|e| after.is_none_or(|a| (e.at, e.id) < a))
            .collect();
        list.sort_by_key(|e| std::cmp::Reverse((e.at, e.id)));
        list.truncate(limit as usize);
        Ok(list)
    }
    async fn prune_events(&self, before: i64, max: u32) -> Result<u64, StoreError> {
        let mut events = self.events.borrow_mut();
        let mut left = max as u64;
        events.retain(|e| {
            if e.at < before && left > 0 {
                left -= 1;
                false
            } else {
                true
            }
        });
        Ok(max as u64 - left)
    }
}

fn identity_of(user_id: &str, p: &Profile, now: i64) -> Identity {
    Identity {
        issuer: p.issuer.clone(),
        sub: p.sub.clone(),
        provider: p.provider.clone(),
        user_id: user_id.to_string(),
        email: p.email.clone(),
        created_at: now,
        last_login_at: Some(now),
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
