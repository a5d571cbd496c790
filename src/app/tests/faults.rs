//! Exhaustive fault injection through [`crate::app::handle`]. Each scenario — a first
//! sign-in, a sign-in over an older session, a renewal, a link, an unlink, a logout, an admin
//! delete, a deactivation and a revoked device — runs once to count its storage (KV, D1),
//! fetch and signature operations, then once for every operation `k` and both
//! [`FaultMode`]s with operation `k` failing (see [`crate::testing::Faults`]). After each
//! injected failure:
//!
//! - the answer is a clear error (4xx/5xx with the JSON error body, no session cookie), or a
//!   success whose effect is really there and whose swallowed fault is in the log (audit
//!   events and vendor logouts are best effort by design) — never a panic;
//! - the stored state keeps its invariants: no identity without its user, no user without an
//!   identity, no session record without its index entry, no live session of a missing user,
//!   never a second user (so no half-made link or merge);
//! - the same action without the fault succeeds.

use crate::app::handle;
use crate::config::Config;
use crate::crypto::b64url;
use crate::http::{Method, Request, Response};
use crate::jwt::keys::SigningKey;
use crate::jwt::native::{generate_ed25519_jwk, NativeSignatures};
use crate::platform::{FetchError, Inbound, Outbound};
use crate::sessions::SessionRecord;
use crate::testing::{block_on, test_env, FaultMode, TestPlatform};
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

const PUBLIC_URL: &str = "http://127.0.0.1:8787";
const ADMIN_KEY: &str = "fault-admin-key-0123456789abcdef";
const DEV: &str = "http://127.0.0.1:9000";
const ALT: &str = "http://127.0.0.1:9001";
const CLIENT_ID: &str = "gatehouse";

/// The subject each issuer's fake provider signs in.
fn sub_of(issuer: &str) -> &'static str {
    if issuer == DEV {
        "sub-dev"
    } else {
        "sub-alt"
    }
}

// ---------------------------------------------------------------------------------------
// Two fake OpenID providers (discovery, JWKS, token, userinfo). The code carries the login's
// nonce (`c.{nonce}`), so the token endpoint needs no state of its own.

struct Idp {
    key: SigningKey,
}

fn ok(body: Value) -> Result<Inbound, FetchError> {
    Ok(Inbound {
        status: 200,
        body: body.to_string().into_bytes(),
    })
}

fn b64_json(v: &Value) -> String {
    b64url(v.to_string().as_bytes())
}

impl Idp {
    fn id_token(&self, issuer: &str, nonce: &str, now: i64) -> String {
        let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": self.key.kid});
        let claims = json!({
            "iss": issuer, "aud": CLIENT_ID, "sub": sub_of(issuer), "exp": now + 600,
            "iat": now, "nonce": nonce, "email": "ada@example.com", "name": "Ada",
        });
        let input = format!("{}.{}", b64_json(&header), b64_json(&claims));
        let sig = NativeSignatures.sign_sync(&self.key, input.as_bytes());
        format!("{input}.{}", b64url(&sig))
    }

    fn serve(&self, req: &Outbound, now: i64) -> Result<Inbound, FetchError> {
        let issuer = [DEV, ALT]
            .into_iter()
            .find(|i| req.url.starts_with(&format!("{i}/")))
            .ok_or_else(|| FetchError::Network(format!("no such host: {}", req.url)))?;
        let path = &req.url[issuer.len()..];
        match (req.method, path) {
            ("GET", "/.well-known/openid-configuration") => ok(json!({
                "issuer": issuer,
                "authorization_endpoint": format!("{issuer}/authorize"),
                "token_endpoint": format!("{issuer}/token"),
                "jwks_uri": format!("{issuer}/jwks"),
                "userinfo_endpoint": format!("{issuer}/userinfo"),
            })),
            ("GET", "/jwks") => ok(json!({"keys": [self.key.public]})),
            ("POST", "/token") => {
                let body = req.body.as_deref().unwrap_or_default();
                let code = url::form_urlencoded::parse(body)
                    .find(|(k, _)| k == "code")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                match code.strip_prefix("c.") {
                    Some(nonce) => ok(json!({
                        "id_token": self.id_token(issuer, nonce, now),
                        "access_token": "at", "token_type": "Bearer",
                    })),
                    None => Ok(Inbound {
                        status: 400,
                        body: br#"{"error":"invalid_grant"}"#.to_vec(),
                    }),
                }
            }
            ("GET", "/userinfo") => ok(json!({
                "sub": sub_of(issuer), "email": "ada@example.com", "name": "Ada",
            })),
            _ => Ok(Inbound {
                status: 404,
                body: b"{}".to_vec(),
            }),
        }
    }
}

// ---------------------------------------------------------------------------------------
// A world: Gatehouse over the test platform, the providers, and browsers with cookie jars.

/// A browser's cookies (Gatehouse's, by wire name).
#[derive(Default, Clone)]
struct Browser {
    cookies: BTreeMap<String, String>,
}

impl Browser {
    fn cookie_header(&self) -> Option<String> {
        (!self.cookies.is_empty()).then(|| {
            self.cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// Applies the response's `Set-Cookie`s (an empty value or `Max-Age=0` deletes).
    fn absorb(&mut self, r: &Response) {
        for c in r.headers_named("set-cookie") {
            let pair = c.split(';').next().unwrap_or_default();
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            if value.is_empty() || c.contains("Max-Age=0;") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
    }

    fn session(&self) -> Option<String> {
        self.cookies.get("gh_session").cloned()
    }
}

struct World {
    cfg: Config,
    p: TestPlatform,
    /// The fake providers' clock, kept in step with Gatehouse's.
    idp_clock: Rc<Cell<i64>>,
    /// The user an admin scenario acts on (fixed before the action: it may be gone after).
    target: RefCell<Option<String>>,
    /// Browsers by name.
    browsers: RefCell<BTreeMap<&'static str, Browser>>,
    /// Session cookies an earlier step handed out (to check that they end).
    old_sessions: RefCell<Vec<String>>,
}

fn config() -> Config {
    let mut env = test_env();
    let provider = |issuer: &str, name: &str| json!({"kind": "oidc", "issuer": issuer, "client_id": CLIENT_ID, "display_name": name});
    env.insert(
        "PROVIDERS".into(),
        json!({"dev": provider(DEV, "Dev"), "alt": provider(ALT, "Alt")}).to_string(),
    );
    env.insert("PROVIDER_ALT_SECRET".into(), "alt-secret".into());
    env.insert("ADMIN_API_KEY".into(), ADMIN_KEY.into());
    Config::from_env(&env).expect("fault-test config is valid")
}

fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn encode(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

impl World {
    fn new() -> World {
        let idp = Rc::new(Idp {
            key: SigningKey::from_private_jwk(&generate_ed25519_jwk()).unwrap(),
        });
        let idp_clock = Rc::new(Cell::new(0i64));
        let (served, seen) = (idp.clone(), idp_clock.clone());
        let p = TestPlatform::new(move |req| served.serve(req, seen.get()));
        idp_clock.set(p.clock.get());
        World {
            cfg: config(),
            p,
            idp_clock,
            target: RefCell::default(),
            browsers: RefCell::default(),
            old_sessions: RefCell::default(),
        }
    }

    fn advance(&self, seconds: i64) {
        let now = self.p.clock.get() + seconds;
        self.p.clock.set(now);
        self.idp_clock.set(now);
    }

    fn browser(&self, name: &'static str) -> Browser {
        self.browsers
            .borrow()
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    /// Sends a request from browser `who` (its cookies, and `extra` headers), keeping the
    /// cookies the response sets.
    fn send(
        &self,
        who: &'static str,
        method: Method,
        path: &str,
        extra: &[(&str, &str)],
    ) -> Response {
        let mut req = Request::new(method, &format!("{PUBLIC_URL}{path}"))
            .with_header("cf-connecting-ip", "198.51.100.7")
            .with_header("user-agent", "fault-test")
            .with_header("accept", "application/json");
        if let Some(c) = self.browser(who).cookie_header() {
            req = req.with_header("cookie", &c);
        }
        for (k, v) in extra {
            req = req.with_header(k, v);
        }
        let r = block_on(handle(Ok(&self.cfg), &self.p, req));
        self.browsers
            .borrow_mut()
            .entry(who)
            .or_default()
            .absorb(&r);
        r
    }

    /// A same-origin request from one of Gatehouse's pages (fetch or form).
    fn same_origin(&self, who: &'static str, method: Method, path: &str) -> Response {
        self.send(
            who,
            method,
            path,
            &[("origin", PUBLIC_URL), ("sec-fetch-site", "same-origin")],
        )
    }

    /// The whole sign-in with `provider` (`link` for linking): the login start, then the
    /// provider's redirect back. The first response that is not a redirect ends it.
    fn sign_in(&self, who: &'static str, provider: &str, link: bool) -> Response {
        let start = format!(
            "/auth/login?provider={provider}{}",
            if link { "&link=1" } else { "" }
        );
        let r = self.send(
            who,
            Method::Get,
            &start,
            &[("sec-fetch-site", "same-origin")],
        );
        let Some(location) = r.header("location").filter(|_| r.status == 302) else {
            return r;
        };
        let (Some(state), Some(nonce)) = (
            query_param(location, "state"),
            query_param(location, "nonce"),
        ) else {
            panic!("login redirect without state or nonce: {location}");
        };
        let callback = format!(
            "/auth/callback/{provider}?code={}&state={}",
            encode(&format!("c.{nonce}")),
            encode(&state)
        );
        self.send(
            who,
            Method::Get,
            &callback,
            &[("sec-fetch-site", "cross-site")],
        )
    }

    /// The id of the one user (scenarios have one person in them).
    fn user_id(&self) -> Option<String> {
        self.p
            .users
            .all_users()
            .first()
            .map(|u| u.id.as_str().to_string())
    }

    /// Whether this session cookie alone still gets a token (a renewal from KV and D1).
    fn session_works(&self, raw: &str) -> bool {
        let req = Request::new(Method::Post, &format!("{PUBLIC_URL}/auth/token"))
            .with_header("origin", PUBLIC_URL)
            .with_header("sec-fetch-site", "same-origin")
            .with_header("cookie", &format!("gh_session={raw}"));
        let r = block_on(handle(Ok(&self.cfg), &self.p, req));
        match r.status {
            200 => true,
            401 => false,
            s => panic!(
                "a session check answered {s}: {}",
                String::from_utf8_lossy(&r.body)
            ),
        }
    }

    fn identities(&self) -> Vec<(String, String)> {
        let mut ids: Vec<_> = self
            .p
            .users
            .all_identities()
            .into_iter()
            .map(|i| (i.issuer, i.sub))
            .collect();
        ids.sort();
        ids
    }

    /// Whether session `sid` carries the ended mark in the spent-set.
    fn session_ended(&self, sid: &str) -> bool {
        self.p
            .users
            .spent
            .borrow()
            .contains_key(&format!("ses:{sid}"))
    }

    fn kv_has(&self, key: &str) -> bool {
        self.p.kv.keys().iter().any(|k| k == key)
    }

    /// The session records in KV: `(sid, record)`.
    fn session_records(&self) -> Vec<(String, SessionRecord)> {
        self.p
            .kv
            .keys()
            .into_iter()
            .filter_map(|k| k.strip_prefix("s:").map(String::from))
            .map(|sid| {
                let json = self.p.kv.value(&format!("s:{sid}")).unwrap();
                let rec = SessionRecord::parse(&json).expect("a session record is JSON");
                (sid, rec)
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// What must hold after every attempt, failed or not.

fn assert_invariants(w: &World, ctx: &str) {
    let users = w.p.users.all_users();
    let identities = w.p.users.all_identities();
    assert!(users.len() <= 1, "{ctx}: a second user appeared: {users:?}");
    for i in &identities {
        assert!(
            users.iter().any(|u| u.id == i.user_id),
            "{ctx}: identity ({}, {}) without its user",
            i.issuer,
            i.sub
        );
    }
    for u in &users {
        assert!(
            identities.iter().any(|i| i.user_id == u.id),
            "{ctx}: user {} without an identity",
            u.id.as_str()
        );
    }
    for (sid, rec) in w.session_records() {
        assert!(
            w.kv_has(&format!("u:{}:{sid}", rec.user_id.as_str())),
            "{ctx}: session {sid} without its index entry"
        );
        let live = !w.session_ended(&sid);
        assert!(
            !live || users.iter().any(|u| u.id == rec.user_id),
            "{ctx}: live session {sid} of a user that does not exist"
        );
    }
}

/// The sessions in KV that are not revoked.
fn live_sids(w: &World) -> Vec<String> {
    w.session_records()
        .into_iter()
        .map(|(sid, _)| sid)
        .filter(|sid| !w.session_ended(sid))
        .collect()
}

/// No session the action started is left live without a browser holding it (a device in the
/// list that nobody has). Only a write whose answer was lost may leave one.
fn assert_no_orphan_session(w: &World, before: &[String], ctx: &str) {
    let held: Vec<String> = w
        .browsers
        .borrow()
        .values()
        .filter_map(|b| b.session())
        .map(|raw| crate::sessions::sid_of(&raw).as_str().to_string())
        .collect();
    for sid in live_sids(w) {
        assert!(
            before.contains(&sid) || held.contains(&sid),
            "{ctx}: session {sid} was started but nobody holds it"
        );
    }
}

/// A clear error: 4xx/5xx, the JSON error body, and no session handed out.
fn assert_clear_error(r: &Response, ctx: &str) {
    let body = String::from_utf8_lossy(&r.body);
    assert!((400..600).contains(&r.status), "{ctx}: {} {body}", r.status);
    let v: Value = serde_json::from_slice(&r.body)
        .unwrap_or_else(|_| panic!("{ctx}: error body is not JSON: {body}"));
    assert!(
        v["error"].is_string() && v["message"].is_string(),
        "{ctx}: {body}"
    );
    let sets_session = r
        .headers_named("set-cookie")
        .any(|c| c.starts_with("gh_session=") && !c.starts_with("gh_session=;"));
    assert!(!sets_session, "{ctx}: an error handed out a session");
}

// ---------------------------------------------------------------------------------------
// The scenarios.

struct Scenario {
    name: &'static str,
    /// What exists before the action (run without faults, not counted).
    setup: fn(&World),
    /// The action under test; returns its final response.
    action: fn(&World) -> Response,
    /// The action's success status.
    success: u16,
    /// A retry that finds the work already done may answer this instead (404 for a deleted
    /// user or an identity already unlinked); the goal must hold then too.
    already_done: Option<u16>,
    /// The goal holds (checked after every success).
    done: fn(&World) -> bool,
}

fn signed_in(w: &World) {
    let r = w.sign_in("a", "dev", false);
    assert_eq!(r.status, 302, "setup sign-in: {:?}", r);
    w.old_sessions
        .borrow_mut()
        .push(w.browser("a").session().unwrap());
}

fn signed_in_and_linked(w: &World) {
    signed_in(w);
    let r = w.sign_in("a", "alt", true);
    assert_eq!(r.status, 302, "setup link: {:?}", r);
    assert_eq!(w.identities().len(), 2);
}

fn dev_identity_owned(w: &World) -> bool {
    let owner = w.user_id();
    owner.is_some()
        && w.p
            .users
            .all_identities()
            .iter()
            .any(|i| i.issuer == DEV && Some(i.user_id.as_str()) == owner.as_deref())
}

fn no_old_session_works(w: &World) -> bool {
    let old = w.old_sessions.borrow().clone();
    old.iter().all(|s| !w.session_works(s))
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "first sign-in (cold caches)",
        setup: |_| {},
        action: |w| w.sign_in("a", "dev", false),
        success: 302,
        already_done: None,
        done: |w| {
            dev_identity_owned(w)
                && w.browser("a")
                    .session()
                    .is_some_and(|s| w.session_works(&s))
        },
    },
    Scenario {
        name: "sign-in again over an older session",
        setup: signed_in,
        action: |w| w.sign_in("a", "dev", false),
        success: 302,
        already_done: None,
        done: |w| {
            let now = w.browser("a").session();
            dev_identity_owned(w)
                && now.is_some_and(|s| w.session_works(&s))
                && w.old_sessions.borrow().first() != w.browser("a").session().as_ref()
        },
    },
    Scenario {
        name: "renewal of an expired access token",
        setup: |w| {
            signed_in(w);
            w.advance(w.cfg.access_ttl as i64 + 120);
        },
        action: |w| w.send("a", Method::Get, "/auth/me", &[]),
        success: 200,
        already_done: None,
        done: |w| {
            let r = w.send("a", Method::Get, "/auth/me", &[]);
            r.status == 200 && r.headers_named("set-cookie").next().is_none()
        },
    },
    Scenario {
        name: "POST /auth/token after the access token expired",
        setup: |w| {
            signed_in(w);
            w.advance(w.cfg.access_ttl as i64 + 120);
        },
        action: |w| w.same_origin("a", Method::Post, "/auth/token"),
        success: 200,
        already_done: None,
        done: |w| w.session_works(&w.browser("a").session().unwrap()),
    },
    Scenario {
        name: "link a second provider",
        setup: signed_in,
        action: |w| w.sign_in("a", "alt", true),
        success: 302,
        already_done: None,
        done: |w| {
            w.identities()
                == [
                    (DEV.into(), "sub-dev".into()),
                    (ALT.into(), "sub-alt".into()),
                ]
        },
    },
    Scenario {
        name: "unlink",
        setup: signed_in_and_linked,
        action: |w| {
            let path = format!("/auth/identities?issuer={}&sub=sub-alt", encode(ALT));
            w.same_origin("a", Method::Delete, &path)
        },
        success: 204,
        already_done: Some(404),
        done: |w| w.identities() == [(DEV.into(), "sub-dev".into())],
    },
    Scenario {
        name: "logout",
        setup: signed_in,
        action: |w| w.same_origin("a", Method::Post, "/auth/logout"),
        success: 204,
        already_done: None,
        done: |w| w.browser("a").session().is_none() && no_old_session_works(w),
    },
    Scenario {
        name: "revoke another device",
        setup: |w| {
            signed_in(w);
            let r = w.sign_in("b", "dev", false);
            assert_eq!(r.status, 302);
            // The session that must end is browser b's; a's stays.
            w.old_sessions.borrow_mut()[0] = w.browser("b").session().unwrap();
        },
        action: |w| {
            let r = w.send("a", Method::Get, "/auth/sessions", &[]);
            let list: Value = serde_json::from_slice(&r.body).unwrap_or_default();
            let Some(other) = list["sessions"]
                .as_array()
                .and_then(|l| l.iter().find(|s| s["current"] == false))
            else {
                return r;
            };
            let path = format!("/auth/sessions/{}", other["id"].as_str().unwrap());
            w.same_origin("a", Method::Delete, &path)
        },
        success: 204,
        // The listing no longer shows it, so there is nothing to revoke: the first response.
        already_done: Some(200),
        done: |w| no_old_session_works(w) && w.browser("a").session().is_some(),
    },
    Scenario {
        name: "admin deactivate",
        setup: signed_in,
        action: |w| {
            let path = format!("/admin/users/{}/deactivate", w.user_id().unwrap());
            let auth = format!("Bearer {ADMIN_KEY}");
            w.send("admin", Method::Post, &path, &[("authorization", &auth)])
        },
        success: 200,
        already_done: None,
        done: |w| w.p.users.all_users().iter().all(|u| !u.active) && no_old_session_works(w),
    },
    Scenario {
        name: "admin revoke all sessions",
        setup: |w| {
            signed_in(w);
            assert_eq!(w.sign_in("b", "dev", false).status, 302);
            let b = w.browser("b").session().unwrap();
            w.old_sessions.borrow_mut().push(b);
        },
        action: |w| {
            let path = format!("/admin/users/{}/sessions", w.user_id().unwrap());
            let auth = format!("Bearer {ADMIN_KEY}");
            w.send("admin", Method::Delete, &path, &[("authorization", &auth)])
        },
        success: 204,
        already_done: None,
        done: no_old_session_works,
    },
    Scenario {
        name: "admin delete",
        setup: |w| {
            signed_in_and_linked(w);
            let r = w.sign_in("b", "dev", false);
            assert_eq!(r.status, 302);
            let b = w.browser("b").session().unwrap();
            w.old_sessions.borrow_mut().push(b);
            *w.target.borrow_mut() = w.user_id();
        },
        action: |w| {
            let id = w.target.borrow().clone().unwrap();
            let auth = format!("Bearer {ADMIN_KEY}");
            let path = format!("/admin/users/{id}");
            w.send("admin", Method::Delete, &path, &[("authorization", &auth)])
        },
        success: 204,
        already_done: Some(404),
        done: |w| {
            w.p.users.all_users().is_empty()
                && w.p.users.all_identities().is_empty()
                && no_old_session_works(w)
        },
    },
];

fn is_success(s: &Scenario, r: &Response) -> bool {
    r.status == s.success
}

/// Runs `s` without faults, then with each of its operations failing in each mode; returns
/// how many operations it has.
fn exhaust(s: &Scenario) -> usize {
    let clean = World::new();
    (s.setup)(&clean);
    clean.p.faults.reset();
    let r = (s.action)(&clean);
    let ops = clean.p.faults.trace();
    clean.p.faults.reset();
    assert!(
        is_success(s, &r),
        "{}: fails without faults: {} {}",
        s.name,
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    assert!(
        (s.done)(&clean),
        "{}: goal not reached without faults",
        s.name
    );
    assert_invariants(&clean, s.name);

    for mode in [FaultMode::Before, FaultMode::After] {
        for k in 1..=ops.len() {
            let ctx = format!(
                "{}: operation {k}/{} ({}) failing {mode:?}",
                s.name,
                ops.len(),
                ops[k - 1]
            );
            let w = World::new();
            (s.setup)(&w);
            let logged_before = w.p.logs.borrow().len();
            let sessions_before = live_sids(&w);
            w.p.faults.arm(k, mode);
            let r = catch_unwind(AssertUnwindSafe(|| (s.action)(&w)))
                .unwrap_or_else(|_| panic!("{ctx}: panicked"));
            assert!(w.p.faults.fired(), "{ctx}: the operation was never reached");
            assert_eq!(w.p.faults.trace()[k - 1], ops[k - 1], "{ctx}: another path");
            w.p.faults.reset();
            if is_success(s, &r) {
                // A success despite the fault: the fault hit best-effort work, which must
                // then be in the log, and the action's effect must be complete. (The one
                // exception: a signature check of an access token that fails is taken as a
                // token that does not verify, and the session renews it — see the README.)
                let logs = w.p.logs.borrow()[logged_before..].join("\n");
                assert!(
                    logs.contains(&format!("injected fault #{k} ")) || ops[k - 1] == "sig.verify",
                    "{ctx}: the fault was swallowed without a log line: {logs}"
                );
                assert!(
                    (s.done)(&w),
                    "{ctx}: answered success, but the goal does not hold"
                );
            } else {
                assert_clear_error(&r, &ctx);
            }
            assert_invariants(&w, &ctx);
            if mode == FaultMode::Before {
                assert_no_orphan_session(&w, &sessions_before, &ctx);
            }

            let again = (s.action)(&w);
            let fine = is_success(s, &again) || s.already_done == Some(again.status);
            assert!(
                fine,
                "{ctx}: the next attempt failed: {} {}",
                again.status,
                String::from_utf8_lossy(&again.body)
            );
            assert!(
                (s.done)(&w),
                "{ctx}: the next attempt did not reach the goal"
            );
            assert_invariants(&w, &format!("{ctx}, after the next attempt"));
        }
    }
    println!(
        "fault injection: {}: {} operations x 2 modes = {} failure points: {}",
        s.name,
        ops.len(),
        2 * ops.len(),
        ops.join(", ")
    );
    ops.len()
}

fn scenario(name: &str) -> &'static Scenario {
    SCENARIOS.iter().find(|s| s.name == name).unwrap()
}

#[test]
fn faults_in_a_first_sign_in() {
    exhaust(scenario("first sign-in (cold caches)"));
}

#[test]
fn faults_in_a_sign_in_over_an_older_session() {
    exhaust(scenario("sign-in again over an older session"));
}

#[test]
fn faults_in_a_renewal() {
    exhaust(scenario("renewal of an expired access token"));
}

#[test]
fn faults_in_a_link() {
    exhaust(scenario("link a second provider"));
}

#[test]
fn faults_in_an_unlink() {
    exhaust(scenario("unlink"));
}

#[test]
fn faults_in_a_logout() {
    exhaust(scenario("logout"));
}

#[test]
fn faults_in_revoking_another_device() {
    exhaust(scenario("revoke another device"));
}

#[test]
fn faults_in_an_admin_deactivate() {
    exhaust(scenario("admin deactivate"));
}

#[test]
fn faults_in_an_admin_delete() {
    exhaust(scenario("admin delete"));
}

#[test]
fn faults_in_a_token_for_an_spa() {
    exhaust(scenario("POST /auth/token after the access token expired"));
}

#[test]
fn faults_in_an_admin_revoke_all() {
    exhaust(scenario("admin revoke all sessions"));
}
