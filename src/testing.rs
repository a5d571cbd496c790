//! In-memory implementations of the platform traits and fixtures, for native unit tests
//! and benchmarks (never compiled into the Worker).

use crate::config::Config;
use crate::ids::SessionId;
use crate::jwt::jwk::PublicJwk;
use crate::jwt::keys::SigningKey;
use crate::jwt::native::NativeSignatures;
use crate::jwt::Alg;
use crate::platform::{
    Caches, Counters, FetchError, HttpClient, Inbound, Kv, Limiter, Mail, MailError, Mailer,
    Outbound, Platform, Signatures, SingleUse, SpendKind, StoreError,
};
use crate::users::{
    Event, Identity, IdentityKey, Invitation, LinkOutcome, Profile, StoredEvent, UnlinkOutcome,
    User, UserId, UserPatch, UserQuery, UserStore,
};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

/// RFC 8037 appendix A's Ed25519 key.
pub const TEST_KEY_1: &str = r#"{"kty":"OKP","crv":"Ed25519","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;

/// A fixed 2048-bit RSA key (RS256 ID tokens), made once with Node's crypto for these tests.
pub const TEST_RSA_KEY: &str = r#"{"kty":"RSA","n":"x-GxWZx5ilGguEAo3BLF4_6Iq1cofM2I_6cf1ajHoHwJ-EJyx2jnK4ldXlalkxMYKdxxEKTqPCOIeKc7Wgf2qG0fUQE0hf0T7ryJ-Kiy5s9TM7aUXWLuLbRpWALFxaRjCZHo63Trl6DaeZAvomSmQGAf9C8eQoz0H6WPyNxYsqhyjTA5M99pVm5vtOUsOStxXnG3JYE_7_aALVQWJIl8hJiprqd_Jfuxza_jR4enosWdMVWN3cinOh6_9c0XSo9OyFBDdn1ityjsCjHp1ChzlGYMHS3wmTONet9s2oVXLtKDblotVgOIRt3Kea5sBAq-eV-sHJoJR4cv431lejIHrw","e":"AQAB","d":"RH5E0THK_kh5fBnURpGSSU3sFFayE44073Ib-RG0knxeyDkw7r82VBdmrNChPVRSN-oHvo3cjE4a0klwD6ph7hYyoIX6sx1liq4F03UvlOMfnj1m-tdPSc8kOBn_Hnp1y4451BGFN7jRlM2BXTMDO1UVLg5FXsXBU-TecBR9un5dZ3KDHOjpsDwiWS8kN-i3aCSNjGHyDHAxYokyuh-Qk2isc0jyY2j80k9tIViEeVxeiiK8sUacW5jvyNrxhgWigzQljL9h8c7h3X-jGipUW7kPtm1RkS0sI6ePzcBcCianI4tqQRECwp2u0USXTrpnpRWKDpMjSMsrqPAlpIAK8Q","p":"_j-IPrTd3rSo7Jadqn0ggjM9JeH8TLA7ywaX7r6NCzN7kuZDlCnmGr5VYOoLHuOyqlc_d6Ag-vPR1f9Ads08NaHabVRsC7rONw8cfQRJ5lKr8RBM-cMjwKV3cqAvXeH1gUdV3eMzwXIVGII0dQDIz3HKA1xHT1jySntDwwPOUV8","q":"yUJDdW1amPcBlemAKZa7x5A_0P4I8BkuB9-dHcSbw0is4DQO1lHDUZD-vWHLMQNSzweOEoBwqIn5i-GZueHEj5XQCUtczRA2wduQh97ZS-MFvaZzLXHTKeHorozL7MQ-_9A0bGWxlmwtyPcir2pssafnA7MI9_qrzbZhiXfBW7E","dp":"wlR1ItjDrPGRHCSTJji1nE7lsgrk-QjK6weDIWxsCd-z2Dg_9wN_aXmJcKXzEg0gBqrhS-IM00OBY3vSHfwIxUWM2nvoiZ6i99qI_9VDVtRhr8Ox0kWhEiJnBioBilSnfcS0kQCUEovMLAt5ZOTQmB51NdRWfQOTTfKhfHFwRSk","dq":"VZVdFGltNlELlpFWE9lqfuGjkZ8Fc_xxK532tTrvNesIwMrCaHcahOwQt74HZw9PvoQq8Uk3HySVPtuvwHD2YkzFy74Fd5pmfqd83ZpxcyjWPyCyJ-gYcN4FUXzEFyoY1DXYpSPVke7sxWH6mPe7wwxwW41dyf4J4w-kiI2pZvE","qi":"2YppEStFzQLmRf8V3A_MADInwn4ad-IrV0JGPT_qfTOUXA1o39fKXhuJZ5Qlhjh9Jw1HtTb2UWUhZlNdLEUvBHeiFtBu1QE-90EBO69J3_tMvU0gmOLBqKWTi-1Uf79Rm6yCKMP52P7yuvCMaYHsc_6Y0-C_5VvgtG4V1ixbjJk"}"#;

/// [`test_config`] with [`TEST_RSA_KEY`] added to `SIGNING_KEYS` (after the Ed25519 key).
pub fn test_config_with_rsa() -> Config {
    let mut env = test_env();
    env.insert(
        "SIGNING_KEYS".into(),
        format!("[{TEST_KEY_1},{TEST_RSA_KEY}]"),
    );
    Config::from_env(&env).expect("test env with RSA is valid")
}

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

/// A person signed in straight through the stores (no provider round trip): their ids, the
/// raw session cookie value and an access token, for tests that aim requests at a session.
pub struct SignedIn {
    pub user_id: UserId,
    pub sid: SessionId,
    pub session: String,
    pub access: String,
}

/// Signs in the local dev provider's `s1` (`a@b.c`) on `p` at its clock: a user, its
/// identity, a session and an access token.
pub fn sign_in_directly(cfg: &Config, p: &TestPlatform) -> SignedIn {
    let now = p.clock.get();
    let issuer = "http://127.0.0.1:9000";
    let user = block_on(crate::linking::sign_in(
        &p.users,
        &profile(issuer, "s1", Some("a@b.c")),
        now,
    ))
    .unwrap();
    let rec = crate::sessions::SessionRecord {
        user_id: user.id.clone(),
        issuer: issuer.into(),
        provider: "dev".into(),
        created_at: now,
        last_seen_at: now,
        expires_at: now,
        user_agent: "ua".into(),
        ip: "198.51.100.7".into(),
        vendor_logout: None,
    };
    let sessions = crate::sessions::Sessions { kv: &p.kv, cfg };
    let (session, sid) = block_on(sessions.create(rec, now)).unwrap();
    let claims =
        crate::access::AccessClaims::new(cfg, &user.id, &sid, user.email.clone(), None, now);
    let access = block_on(crate::access::issue(cfg, &NativeSignatures, &claims)).unwrap();
    SignedIn {
        user_id: user.id,
        sid,
        session: session.expose().to_string(),
        access,
    }
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

/// Which way an injected fault strikes (see [`Faults`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    /// The operation fails before it takes effect: a refused write, a reset connection.
    Before,
    /// The operation takes effect but its answer is lost: a committed D1 batch or a KV put
    /// whose reply never arrives, a provider that handled the request and then timed out.
    After,
}

/// One count of the storage (KV, D1), outbound fetch and signature operations of a test
/// platform, shared by all its seams, and the one of them that is to fail. Unarmed (the
/// default) it only counts, so that a test can learn how many operations a scenario takes
/// and then fail each of them in turn (`src/app/tests/faults.rs`).
#[derive(Debug, Default)]
pub struct Faults {
    count: Cell<usize>,
    armed: Cell<Option<(usize, FaultMode)>>,
    fired: Cell<bool>,
    trace: RefCell<Vec<&'static str>>,
}

impl Faults {
    /// Starts counting from zero; the `k`-th operation from now (1-based) fails as `mode`.
    pub fn arm(&self, k: usize, mode: FaultMode) {
        self.reset();
        self.armed.set(Some((k, mode)));
    }

    /// Starts counting from zero, with nothing to fail.
    pub fn reset(&self) {
        self.count.set(0);
        self.armed.set(None);
        self.fired.set(false);
        self.trace.borrow_mut().clear();
    }

    /// Operations counted since the last [`Faults::arm`] or [`Faults::reset`].
    pub fn count(&self) -> usize {
        self.count.get()
    }

    /// Whether the armed operation was reached (and failed).
    pub fn fired(&self) -> bool {
        self.fired.get()
    }

    /// The names of the operations counted, in order (`"kv.put"`, `"d1.create_linked"`, …).
    pub fn trace(&self) -> Vec<&'static str> {
        self.trace.borrow().clone()
    }

    /// Counts operation `name`; `Some((k, mode))` when it is the one to fail.
    fn next(&self, name: &'static str) -> Option<(usize, FaultMode)> {
        let k = self.count.get() + 1;
        self.count.set(k);
        self.trace.borrow_mut().push(name);
        match self.armed.get() {
            Some((at, mode)) if at == k => {
                self.fired.set(true);
                Some((k, mode))
            }
            _ => None,
        }
    }

    /// Runs `body` as operation `name`: the armed operation fails before `body` runs
    /// ([`FaultMode::Before`]) or after it ([`FaultMode::After`], its result discarded), with
    /// the message the failure gets (it names the operation and `k`, so that a test can find
    /// it in the log).
    pub fn op<T, E>(
        &self,
        name: &'static str,
        body: impl FnOnce() -> Result<T, E>,
        fail: impl FnOnce(FaultMode, String) -> E,
    ) -> Result<T, E> {
        match self.next(name) {
            None => body(),
            Some((k, FaultMode::Before)) => Err(fail(
                FaultMode::Before,
                format!("injected fault #{k} ({name})"),
            )),
            Some((k, FaultMode::After)) => {
                let _ = body();
                Err(fail(
                    FaultMode::After,
                    format!("injected fault #{k} ({name}, answer lost)"),
                ))
            }
        }
    }

    /// [`Faults::op`] for a storage operation, failing with a [`StoreError`] like the glue's
    /// (`prefix` is `"KV"` or `"D1"`).
    pub fn store<T>(
        &self,
        name: &'static str,
        prefix: &'static str,
        body: impl FnOnce() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.op(name, body, |_, m| StoreError(format!("{prefix}: {m}")))
    }
}

/// KV in a map (TTL ignored).
#[derive(Default)]
pub struct MemoryKv {
    map: RefCell<BTreeMap<String, String>>,
    /// The operation count this store reports to (see [`Faults`]).
    pub faults: Rc<Faults>,
}

impl MemoryKv {
    pub fn keys(&self) -> Vec<String> {
        self.map.borrow().keys().cloned().collect()
    }
    pub fn values(&self) -> Vec<String> {
        self.map.borrow().values().cloned().collect()
    }
    /// The value under `key`, read past the fault count (for checks after the fact).
    pub fn value(&self, key: &str) -> Option<String> {
        self.map.borrow().get(key).cloned()
    }
}

impl Kv for MemoryKv {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.faults
            .store("kv.get", "KV", || Ok(self.map.borrow().get(key).cloned()))
    }
    async fn put(&self, key: &str, value: &str, _ttl: u64) -> Result<(), StoreError> {
        self.faults.store("kv.put", "KV", || {
            self.map.borrow_mut().insert(key.into(), value.into());
            Ok(())
        })
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.faults.store("kv.delete", "KV", || {
            self.map.borrow_mut().remove(key);
            Ok(())
        })
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.faults.store("kv.list", "KV", || {
            Ok(self
                .map
                .borrow()
                .keys()
                .filter(|k| k.starts_with(prefix))
                .cloned()
                .collect())
        })
    }
}

/// Users, identities and events in maps.
#[derive(Default)]
pub struct MemoryUsers {
    pub(crate) users: RefCell<HashMap<UserId, User>>,
    identities: RefCell<HashMap<(String, String), Identity>>,
    /// Passkey rows; a row counts only while its identity exists (as D1's join and cascade).
    passkeys: RefCell<Vec<crate::webauthn::store::Passkey>>,
    pub events: RefCell<Vec<Event>>,
    /// The spent-set ([`SingleUse`]): `kind:hash` → expires at.
    pub spent: RefCell<BTreeMap<String, i64>>,
    /// The rate-limit counters ([`Counters`]): key → (count, expires at).
    pub counters: RefCell<BTreeMap<String, (u32, i64)>>,
    /// Sign-up invitations by id.
    pub invitations: RefCell<BTreeMap<String, Invitation>>,
    /// The operation count this store reports to: every method is one D1 round trip (one
    /// statement, or one batch, which D1 runs as a transaction).
    pub faults: Rc<Faults>,
    /// The OpenID Provider's tables (see [`crate::oauth::memory`]).
    pub oauth: crate::oauth::memory::OAuthTables,
}

impl MemoryUsers {
    pub fn user_count(&self) -> usize {
        self.users.borrow().len()
    }
    /// Drops the user row alone, as a delete racing a sign-in leaves it for a moment.
    pub fn drop_user_row(&self, id: &UserId) {
        self.users.borrow_mut().remove(id);
    }
    pub fn set_active(&self, id: &UserId, active: bool) {
        if let Some(u) = self.users.borrow_mut().get_mut(id) {
            u.active = active;
        }
    }
    /// Every user, in no particular order (for invariant checks).
    pub fn all_users(&self) -> Vec<User> {
        self.users.borrow().values().cloned().collect()
    }
    /// Every identity, in no particular order (for invariant checks).
    pub fn all_identities(&self) -> Vec<Identity> {
        self.identities.borrow().values().cloned().collect()
    }
    pub(crate) fn d1<T>(
        &self,
        name: &'static str,
        body: impl FnOnce() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.faults.store(name, "D1", body)
    }
}

impl UserStore for MemoryUsers {
    async fn identity_owner(&self, key: &IdentityKey<'_>) -> Result<Option<UserId>, StoreError> {
        self.d1("d1.identity_owner", || {
            Ok(self
                .identities
                .borrow()
                .get(&(key.issuer.to_string(), key.sub.to_string()))
                .map(|i| i.user_id.clone()))
        })
    }
    async fn create_linked(
        &self,
        user: &User,
        p: &Profile,
        now: i64,
    ) -> Result<UserId, StoreError> {
        self.d1("d1.create_linked", || {
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
        })
    }
    async fn sign_in(
        &self,
        fresh: Option<&User>,
        p: &Profile,
        event: Option<&Event>,
        now: i64,
    ) -> Result<Option<User>, StoreError> {
        self.d1("d1.sign_in", || {
            let key = (p.issuer.clone(), p.sub.clone());
            let owner = match (self.identities.borrow().get(&key), fresh) {
                (Some(i), _) => i.user_id.clone(),
                (None, Some(fresh)) => fresh.id.clone(),
                (None, None) => return Ok(None),
            };
            if let Some(fresh) = fresh.filter(|f| f.id == owner) {
                self.users
                    .borrow_mut()
                    .insert(fresh.id.clone(), fresh.clone());
                self.identities
                    .borrow_mut()
                    .insert(key.clone(), identity_of(&fresh.id, p, now));
            }
            let mut users = self.users.borrow_mut();
            let Some(u) = users.get_mut(&owner) else {
                return Ok(None);
            };
            if !u.active {
                return Ok(Some(u.clone()));
            }
            u.name = p.name.clone().or(u.name.take());
            if p.email.is_some() {
                u.email = p.email.clone();
                u.email_verified = p.email_verified.unwrap_or(false);
            }
            u.picture = p.picture.clone().or(u.picture.take());
            u.last_login_at = Some(now);
            u.updated_at = now;
            if let Some(i) = self.identities.borrow_mut().get_mut(&key) {
                i.email = p.email.clone().or(i.email.take());
                i.provider = p.provider.clone();
                i.last_login_at = Some(now);
            }
            if let Some(e) = event {
                let mut e = e.clone();
                e.user_id = Some(owner);
                self.events.borrow_mut().push(e);
            }
            Ok(Some(u.clone()))
        })
    }
    async fn get_user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        self.d1("d1.get_user", || Ok(self.users.borrow().get(id).cloned()))
    }
    async fn renewal_view(
        &self,
        user_id: &UserId,
        sid: &SessionId,
    ) -> Result<Option<(User, bool)>, StoreError> {
        let ended = format!("{}:{}", SpendKind::EndedSession.prefix(), sid.as_str());
        self.d1("d1.renewal_view", || {
            let ended = self.spent.borrow().contains_key(&ended);
            Ok(self
                .users
                .borrow()
                .get(user_id)
                .cloned()
                .map(|u| (u, ended)))
        })
    }
    async fn record_event(&self, event: &Event) -> Result<(), StoreError> {
        self.d1("d1.record_event", || {
            self.events.borrow_mut().push(event.clone());
            Ok(())
        })
    }
    async fn list_users(&self, q: &UserQuery) -> Result<Vec<User>, StoreError> {
        self.d1("d1.list_users", || {
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
        })
    }
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        self.d1("d1.create_user", || {
            let mut users = self.users.borrow_mut();
            if users.contains_key(&user.id) {
                return Err(StoreError(format!(
                    "duplicate user id {}",
                    user.id.as_str()
                )));
            }
            users.insert(user.id.clone(), user.clone());
            Ok(())
        })
    }
    async fn update_user(
        &self,
        id: &UserId,
        patch: &UserPatch,
        now: i64,
    ) -> Result<Option<User>, StoreError> {
        self.d1("d1.update_user", || {
            let mut users = self.users.borrow_mut();
            let Some(u) = users.get_mut(id) else {
                return Ok(None);
            };
            patch.apply(u, now);
            Ok(Some(u.clone()))
        })
    }
    async fn end_sessions_until(&self, user_id: &UserId, at: i64) -> Result<(), StoreError> {
        self.d1("d1.end_sessions_until", || {
            if let Some(u) = self.users.borrow_mut().get_mut(user_id) {
                u.sessions_valid_after = u.sessions_valid_after.max(at);
            }
            Ok(())
        })
    }
    async fn set_user_active(
        &self,
        id: &UserId,
        active: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.d1("d1.set_user_active", || {
            let mut users = self.users.borrow_mut();
            let Some(u) = users.get_mut(id) else {
                return Ok(false);
            };
            u.active = active;
            u.updated_at = now;
            Ok(true)
        })
    }
    async fn delete_user(&self, id: &UserId) -> Result<bool, StoreError> {
        self.d1("d1.delete_user", || {
            self.identities.borrow_mut().retain(|_, i| i.user_id != *id);
            // D1's foreign keys cascade to the OpenID Provider's rows.
            self.oauth
                .consents
                .borrow_mut()
                .retain(|(u, _), _| u != id.as_str());
            self.oauth
                .refresh
                .borrow_mut()
                .retain(|_, r| r.grant.user_id != id.as_str());
            Ok(self.users.borrow_mut().remove(id).is_some())
        })
    }
    async fn identities_of(&self, user_id: &UserId) -> Result<Vec<Identity>, StoreError> {
        self.d1("d1.identities_of", || {
            let mut list: Vec<Identity> = self
                .identities
                .borrow()
                .values()
                .filter(|i| i.user_id == *user_id)
                .cloned()
                .collect();
            list.sort_by(|a, b| {
                (a.created_at, &a.issuer, &a.sub).cmp(&(b.created_at, &b.issuer, &b.sub))
            });
            Ok(list)
        })
    }
    async fn link_identity(
        &self,
        user_id: &UserId,
        p: &Profile,
        now: i64,
    ) -> Result<LinkOutcome, StoreError> {
        self.d1("d1.link_identity", || {
            let key = (p.issuer.clone(), p.sub.clone());
            if let Some(i) = self.identities.borrow().get(&key) {
                return Ok(if i.user_id == *user_id {
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
        })
    }
    async fn unlink_identity(
        &self,
        user_id: &UserId,
        key: &IdentityKey<'_>,
    ) -> Result<UnlinkOutcome, StoreError> {
        self.d1("d1.unlink_identity", || {
            let mut ids = self.identities.borrow_mut();
            let key = (key.issuer.to_string(), key.sub.to_string());
            if ids.get(&key).map(|i| &i.user_id) != Some(user_id) {
                return Ok(UnlinkOutcome::NotFound);
            }
            if ids.values().filter(|i| i.user_id == *user_id).count() < 2 {
                return Ok(UnlinkOutcome::LastIdentity);
            }
            ids.remove(&key);
            Ok(UnlinkOutcome::Unlinked)
        })
    }
    async fn events_of(
        &self,
        user_id: &UserId,
        limit: u32,
        after: Option<(i64, i64)>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.d1("d1.events_of", || {
            // The id of an event is its position (1-based) in the log.
            let mut list: Vec<StoredEvent> = self
                .events
                .borrow()
                .iter()
                .enumerate()
                .filter(|(_, e)| e.user_id.as_ref() == Some(user_id))
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
        })
    }
    async fn create_invitation(&self, inv: &Invitation) -> Result<(), StoreError> {
        self.d1("d1.create_invitation", || {
            self.invitations
                .borrow_mut()
                .insert(inv.id.clone(), inv.clone());
            Ok(())
        })
    }
    async fn invitation_by_hash(&self, hash: &str) -> Result<Option<Invitation>, StoreError> {
        self.d1("d1.invitation_by_hash", || {
            Ok(self
                .invitations
                .borrow()
                .values()
                .find(|i| i.token_hash == hash)
                .cloned())
        })
    }
    async fn list_invitations(&self, now: i64, limit: u32) -> Result<Vec<Invitation>, StoreError> {
        self.d1("d1.list_invitations", || {
            let mut all: Vec<Invitation> = self
                .invitations
                .borrow()
                .values()
                .filter(|i| i.expires_at > now)
                .cloned()
                .collect();
            all.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
            all.truncate(limit as usize);
            Ok(all)
        })
    }
    async fn delete_invitation(&self, id: &str) -> Result<bool, StoreError> {
        self.d1("d1.delete_invitation", || {
            Ok(self.invitations.borrow_mut().remove(id).is_some())
        })
    }
    async fn mark_invitation_used(
        &self,
        id: &str,
        user_id: &UserId,
        at: i64,
    ) -> Result<(), StoreError> {
        self.d1("d1.mark_invitation_used", || {
            if let Some(i) = self.invitations.borrow_mut().get_mut(id) {
                i.used_at = Some(at);
                i.used_by = Some(user_id.clone());
            }
            Ok(())
        })
    }
    async fn prune(
        &self,
        what: crate::audit::Pruned,
        cutoff: i64,
        max: u32,
    ) -> Result<u64, StoreError> {
        use crate::audit::Pruned;
        self.d1("d1.prune", || {
            let max = max as usize;
            let n = match what {
                Pruned::Events => {
                    let mut events = self.events.borrow_mut();
                    let old: Vec<usize> = (0..events.len())
                        .filter(|i| events[*i].at < cutoff)
                        .take(max)
                        .collect();
                    for i in old.iter().rev() {
                        events.remove(*i);
                    }
                    old.len()
                }
                Pruned::SpentKeys => drop_before(&self.spent, max, |at| *at < cutoff),
                Pruned::Counters => drop_before(&self.counters, max, |c| c.1 < cutoff),
                Pruned::Invitations => {
                    drop_before(&self.invitations, max, |i| i.expires_at < cutoff)
                }
                Pruned::RefreshTokens => {
                    let live: Vec<String> = (self.oauth.refresh.borrow().values())
                        .filter(|r| r.expires_at >= cutoff)
                        .map(|r| r.family.clone())
                        .collect();
                    drop_before(&self.oauth.refresh, max, |r| {
                        r.expires_at < cutoff && !live.contains(&r.family)
                    })
                }
            };
            Ok(n as u64)
        })
    }
}

/// Removes at most `max` entries of `map` whose value is `old`; returns how many.
fn drop_before<V>(
    map: &RefCell<BTreeMap<String, V>>,
    max: usize,
    old: impl Fn(&V) -> bool,
) -> usize {
    let mut map = map.borrow_mut();
    let keys: Vec<String> = map
        .iter()
        .filter(|(_, v)| old(v))
        .map(|(k, _)| k.clone())
        .take(max)
        .collect();
    for k in &keys {
        map.remove(k);
    }
    keys.len()
}

fn identity_of(user_id: &UserId, p: &Profile, now: i64) -> Identity {
    Identity {
        issuer: p.issuer.clone(),
        sub: p.sub.clone(),
        provider: p.provider.clone(),
        user_id: user_id.clone(),
        email: p.email.clone(),
        created_at: now,
        last_login_at: Some(now),
    }
}

impl SingleUse for MemoryUsers {
    async fn spend(
        &self,
        kind: SpendKind,
        key_hash: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let key = format!("{}:{key_hash}", kind.prefix());
        self.d1("d1.spend", || {
            let mut spent = self.spent.borrow_mut();
            if spent.contains_key(&key) {
                return Ok(false);
            }
            spent.insert(key, expires_at);
            Ok(true)
        })
    }
    async fn is_spent(&self, kind: SpendKind, key_hash: &str) -> Result<bool, StoreError> {
        let key = format!("{}:{key_hash}", kind.prefix());
        self.d1("d1.is_spent", || Ok(self.spent.borrow().contains_key(&key)))
    }
}

impl Counters for MemoryUsers {
    async fn count(&self, key: &str, expires_at: i64) -> Result<u32, StoreError> {
        self.d1("d1.count", || {
            let mut counters = self.counters.borrow_mut();
            let c = counters.entry(key.to_string()).or_insert((0, expires_at));
            c.0 += 1;
            Ok(c.0)
        })
    }
    async fn peek(&self, key: &str) -> Result<u32, StoreError> {
        self.d1("d1.peek", || {
            Ok(self.counters.borrow().get(key).map_or(0, |c| c.0))
        })
    }
}

/// Request limits in a map: at most `max` requests per key until [`MemoryLimiter::reset`]
/// (the window's end).
pub struct MemoryLimiter {
    pub max: Cell<u32>,
    pub counts: RefCell<HashMap<String, u32>>,
}

impl Default for MemoryLimiter {
    fn default() -> Self {
        MemoryLimiter {
            max: Cell::new(1000),
            counts: RefCell::default(),
        }
    }
}

impl MemoryLimiter {
    /// A new window: every key starts from zero.
    pub fn reset(&self) {
        self.counts.borrow_mut().clear();
    }
}

impl Limiter for MemoryLimiter {
    async fn allow(&self, key: &str) -> Result<bool, StoreError> {
        let mut counts = self.counts.borrow_mut();
        let n = counts.entry(key.to_string()).or_insert(0);
        if *n >= self.max.get() {
            return Ok(false);
        }
        *n += 1;
        Ok(true)
    }
}

/// Outbound HTTP answered by a closure.
pub struct FakeHttp {
    #[allow(clippy::type_complexity)]
    pub handler: Box<dyn Fn(&Outbound) -> Result<Inbound, FetchError>>,
    pub calls: RefCell<Vec<Outbound>>,
    /// The operation count this client reports to. An injected fault is a reset connection
    /// before the request leaves ([`FaultMode::Before`]: the handler never sees it) or a
    /// timeout after the provider handled it ([`FaultMode::After`]).
    pub faults: Rc<Faults>,
}

impl HttpClient for FakeHttp {
    async fn send(&self, req: Outbound) -> Result<Inbound, FetchError> {
        let r = self.faults.op(
            "fetch",
            || (self.handler)(&req),
            |mode, m| match mode {
                FaultMode::Before => FetchError::Network(format!("{m}: connection reset")),
                FaultMode::After => FetchError::Timeout,
            },
        );
        self.calls.borrow_mut().push(req);
        r
    }
}

/// Outbound email recorded in a list: `(binding, message)` per send. With `refuse` set, every
/// send fails as the email service would refuse it; with `unbound`, as if no binding had the
/// name (nothing is recorded either way).
#[derive(Default)]
pub struct RecordingMailer {
    pub sent: RefCell<Vec<(String, Mail)>>,
    pub refuse: Cell<bool>,
    pub unbound: Cell<bool>,
}

impl RecordingMailer {
    /// The last message sent, if any.
    pub fn last(&self) -> Option<Mail> {
        self.sent.borrow().last().map(|(_, m)| m.clone())
    }
}

impl Mailer for RecordingMailer {
    async fn send(&self, binding: &str, mail: &Mail) -> Result<(), MailError> {
        if self.unbound.get() {
            return Err(MailError::NoBinding(format!(
                "Binding `{binding}` is undefined."
            )));
        }
        if self.refuse.get() {
            return Err(MailError::Refused("the test refuses every message".into()));
        }
        self.sent
            .borrow_mut()
            .push((binding.to_string(), mail.clone()));
        Ok(())
    }
}

/// A platform made of the fakes above, with a settable clock.
pub struct TestPlatform {
    pub kv: MemoryKv,
    pub users: MemoryUsers,
    pub http: FakeHttp,
    pub limiter: MemoryLimiter,
    pub mailer: RecordingMailer,
    pub caches: Caches,
    pub clock: Cell<i64>,
    pub logs: RefCell<Vec<String>>,
    /// The one operation count of KV, users, HTTP and signatures (see [`Faults`]).
    pub faults: Rc<Faults>,
}

impl TestPlatform {
    pub fn new(
        handler: impl Fn(&Outbound) -> Result<Inbound, FetchError> + 'static,
    ) -> TestPlatform {
        let faults = Rc::new(Faults::default());
        TestPlatform {
            kv: MemoryKv {
                faults: faults.clone(),
                ..MemoryKv::default()
            },
            users: MemoryUsers {
                faults: faults.clone(),
                ..MemoryUsers::default()
            },
            http: FakeHttp {
                handler: Box::new(handler),
                calls: RefCell::new(vec![]),
                faults: faults.clone(),
            },
            limiter: MemoryLimiter::default(),
            mailer: RecordingMailer::default(),
            caches: Caches::default(),
            clock: Cell::new(1_700_000_000),
            logs: RefCell::new(vec![]),
            faults,
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
        // The native backend is synchronous; a fault stands for WebCrypto refusing the key.
        self.faults.op(
            "sig.verify",
            || NativeSignatures.verify_sync(key, alg, msg, sig),
            |_, m| m,
        )
    }
    async fn verify_uncached(
        &self,
        key: &PublicJwk,
        alg: Alg,
        msg: &[u8],
        sig: &[u8],
    ) -> Result<bool, String> {
        self.faults.op(
            "sig.verify",
            || NativeSignatures.verify_with_rsa(key, alg, msg, sig),
            |_, m| m,
        )
    }
    async fn sign(&self, key: &SigningKey, msg: &[u8]) -> Result<Vec<u8>, String> {
        self.faults.op(
            "sig.sign",
            || Ok(NativeSignatures.sign_sync(key, msg)),
            |_, m| m,
        )
    }
}

impl Platform for TestPlatform {
    type Kv = MemoryKv;
    type Users = MemoryUsers;
    type Http = FakeHttp;
    type Sig = TestPlatform;
    type Once = MemoryUsers;
    type Limits = MemoryLimiter;
    type Counts = MemoryUsers;
    type OAuth = MemoryUsers;
    type Mail = RecordingMailer;
    fn kv(&self) -> &MemoryKv {
        &self.kv
    }
    fn mailer(&self) -> &RecordingMailer {
        &self.mailer
    }
    fn oauth(&self) -> &MemoryUsers {
        &self.users
    }
    fn single_use(&self) -> &MemoryUsers {
        &self.users
    }
    fn limiter(&self) -> &MemoryLimiter {
        &self.limiter
    }
    fn counters(&self) -> &MemoryUsers {
        &self.users
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

/// The test platform with other signatures — the Worker's remembered checks, a stand-in for
/// an algorithm the native backend lacks: everything else is `p`'s.
pub struct WithSignatures<S> {
    pub p: TestPlatform,
    pub sig: S,
}

impl<S: Signatures> Platform for WithSignatures<S> {
    type Kv = MemoryKv;
    type Users = MemoryUsers;
    type Http = FakeHttp;
    type Sig = S;
    type Once = MemoryUsers;
    type Limits = MemoryLimiter;
    type Counts = MemoryUsers;
    type OAuth = MemoryUsers;
    type Mail = RecordingMailer;
    fn kv(&self) -> &MemoryKv {
        self.p.kv()
    }
    fn mailer(&self) -> &RecordingMailer {
        self.p.mailer()
    }
    fn oauth(&self) -> &MemoryUsers {
        self.p.oauth()
    }
    fn single_use(&self) -> &MemoryUsers {
        self.p.single_use()
    }
    fn limiter(&self) -> &MemoryLimiter {
        self.p.limiter()
    }
    fn counters(&self) -> &MemoryUsers {
        self.p.counters()
    }
    fn users(&self) -> &MemoryUsers {
        self.p.users()
    }
    fn http(&self) -> &FakeHttp {
        self.p.http()
    }
    fn sig(&self) -> &S {
        &self.sig
    }
    fn caches(&self) -> &Caches {
        self.p.caches()
    }
    fn now(&self) -> i64 {
        self.p.now()
    }
    fn log(&self, line: &str) {
        self.p.log(line)
    }
}

impl MemoryUsers {
    fn live_passkeys(
        &self,
        keep: impl Fn(&crate::webauthn::store::Passkey) -> bool,
    ) -> Vec<crate::webauthn::store::Passkey> {
        let ids = self.identities.borrow();
        let users = self.users.borrow();
        self.passkeys
            .borrow()
            .iter()
            .filter(|p| {
                ids.get(&(p.issuer.clone(), p.id.clone()))
                    .is_some_and(|i| i.user_id == p.user_id.as_str())
            })
            .filter(|p| keep(p))
            .filter_map(|p| {
                // With its user's email, as D1's join reads it.
                let u = users.get(p.user_id.as_str())?;
                Some(crate::webauthn::store::Passkey {
                    owner_email: u.email.clone(),
                    owner_email_verified: u.email_verified,
                    ..p.clone()
                })
            })
            .collect()
    }
}

impl crate::webauthn::store::PasskeyStore for MemoryUsers {
    async fn add_passkey(
        &self,
        pk: &crate::webauthn::store::Passkey,
        provider: &str,
    ) -> Result<crate::webauthn::store::AddOutcome, StoreError> {
        use crate::webauthn::store::AddOutcome;
        self.d1("d1.add_passkey", || {
            let key = (pk.issuer.clone(), pk.id.clone());
            if !self.users.borrow().contains_key(pk.user_id.as_str())
                || self.identities.borrow().contains_key(&key)
            {
                return Ok(AddOutcome::AlreadyRegistered);
            }
            self.identities.borrow_mut().insert(
                key,
                Identity {
                    issuer: pk.issuer.clone(),
                    sub: pk.id.clone(),
                    provider: provider.into(),
                    user_id: UserId::from(pk.user_id.as_str()),
                    email: None,
                    created_at: pk.created_at,
                    last_login_at: None,
                },
            );
            self.passkeys.borrow_mut().push(pk.clone());
            Ok(AddOutcome::Added)
        })
    }

    async fn passkey(
        &self,
        issuer: &str,
        id: &str,
    ) -> Result<Option<crate::webauthn::store::Passkey>, StoreError> {
        self.d1("d1.passkey", || {
            Ok(self
                .live_passkeys(|p| p.issuer == issuer && p.id == id)
                .into_iter()
                .next())
        })
    }

    async fn passkeys_of(
        &self,
        user_id: &str,
    ) -> Result<Vec<crate::webauthn::store::Passkey>, StoreError> {
        self.d1("d1.passkeys_of", || {
            Ok(self.live_passkeys(|p| p.user_id == user_id))
        })
    }

    async fn passkey_used(
        &self,
        pk: &crate::webauthn::store::Passkey,
        now: i64,
    ) -> Result<(), StoreError> {
        self.d1("d1.passkey_used", || {
            for p in self.passkeys.borrow_mut().iter_mut() {
                if p.issuer == pk.issuer && p.id == pk.id {
                    p.sign_count = p.sign_count.max(pk.sign_count);
                    p.backed_up = pk.backed_up;
                    p.last_used_at = Some(now);
                }
            }
            Ok(())
        })
    }

    async fn rename_passkey(
        &self,
        user_id: &str,
        id: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        self.d1("d1.rename_passkey", || {
            let mut found = false;
            for p in self.passkeys.borrow_mut().iter_mut() {
                if p.user_id == user_id && p.id == id {
                    p.name = name.into();
                    found = true;
                }
            }
            Ok(found)
        })
    }
}
