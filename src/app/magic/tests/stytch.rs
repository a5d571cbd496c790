//! `POST /auth/magic-link` and the `stytch` callback driven through [`crate::app::handle`],
//! against a fake Stytch answering the platform's outbound HTTP with the documented shapes
//! (docs/vendors.md): Basic auth, `login_or_create` (which records the link it "sent"),
//! single-use `magic_links/authenticate` tokens, `sessions/revoke`, and Stytch's error JSON.

use crate::app::handle;
use crate::config::Config;
use crate::http::{Method, Request, Response};
use crate::platform::{FetchError, Inbound, Outbound};
use crate::testing::{block_on, test_env, TestPlatform};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

const PUBLIC_URL: &str = "http://127.0.0.1:8787";
const API: &str = "https://stytch.test/v1/";
const PROJECT: &str = "project-test-11111111-2222";
const SECRET: &str = "secret-test-abc";
const FORM: &str = "application/x-www-form-urlencoded";

/// How the fake answers every call.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
enum Mode {
    #[default]
    Normal,
    Timeout,
    Http500,
    TooMany,
    BadRequest,
    /// `magic_links/authenticate` makes a session but answers with a `user` that is not its
    /// `user_id` (an answer Gatehouse must refuse).
    InconsistentUser,
}

#[derive(Default)]
struct FakeStytch {
    mode: Mode,
    /// email → user_id.
    users: BTreeMap<String, String>,
    /// user_id → current email (changes at the vendor).
    emails: HashMap<String, String>,
    /// Unused magic-link tokens → (user_id, PKCE `code_challenge` it was minted with).
    tokens: HashMap<String, (String, Option<String>)>,
    /// Live session tokens → user_id.
    sessions: HashMap<String, String>,
    /// (email, link) of every link "sent".
    sent: Vec<(String, String)>,
    /// (path, JSON body) of every call.
    calls: Vec<(String, Value)>,
    revoked: Vec<String>,
    counter: u32,
}

fn answer(status: u16, body: Value) -> Result<Inbound, FetchError> {
    Ok(Inbound {
        status,
        body: body.to_string().into_bytes(),
    })
}

fn stytch_error(status: u16, error_type: &str) -> Result<Inbound, FetchError> {
    answer(
        status,
        json!({"status_code": status, "request_id": "request-id-test-1", "error_type": error_type,
               "error_message": format!("{error_type} happened"), "error_url": format!("https://stytch.com/docs/api/errors/{status}")}),
    )
}

fn header<'a>(req: &'a Outbound, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

impl FakeStytch {
    /// The JSON bodies of every call to `path`.
    fn calls_body(&self, path: &str) -> Vec<Value> {
        self.calls
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, b)| b.clone())
            .collect()
    }

    fn next(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}-{}", self.counter)
    }

    fn user(&self, user_id: &str) -> Value {
        json!({"user_id": user_id, "status": "active", "name": {"first_name": "Ada", "middle_name": "", "last_name": "Lovelace"},
               "emails": [{"email_id": format!("email-{user_id}"), "email": self.emails[user_id], "verified": true}],
               "phone_numbers": [], "created_at": "2026-01-01T00:00:00Z"})
    }

    fn serve(&mut self, req: &Outbound) -> Result<Inbound, FetchError> {
        match self.mode {
            Mode::Timeout => return Err(FetchError::Timeout),
            Mode::Http500 => return answer(500, json!({"status_code": 500})),
            Mode::TooMany => return stytch_error(429, "too_many_requests"),
            Mode::BadRequest => return stytch_error(400, "invalid_magic_link_url"),
            Mode::Normal | Mode::InconsistentUser => {}
        }
        use base64::Engine;
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{PROJECT}:{SECRET}"))
        );
        if header(req, "authorization") != Some(basic.as_str()) {
            return stytch_error(401, "unauthorized_credentials");
        }
        let body: Value =
            serde_json::from_slice(req.body.as_deref().unwrap_or_default()).unwrap_or(Value::Null);
        let path = req.url.strip_prefix(API).unwrap_or("?");
        self.calls.push((path.to_string(), body.clone()));
        match (req.method, path) {
            ("POST", "magic_links/email/login_or_create") => {
                let email = body["email"].as_str().unwrap().to_string();
                assert_eq!(body["login_magic_link_url"], body["signup_magic_link_url"]);
                assert_eq!(body["login_expiration_minutes"], 10);
                let created = !self.users.contains_key(&email);
                if created {
                    let id = self.next("user-test");
                    self.users.insert(email.clone(), id.clone());
                    self.emails.insert(id, email.clone());
                }
                let user_id = self.users[&email].clone();
                let token = self.next("tok");
                let challenge = body["code_challenge"].as_str().map(String::from);
                self.tokens
                    .insert(token.clone(), (user_id.clone(), challenge));
                let url = body["login_magic_link_url"].as_str().unwrap();
                let sep = if url.contains('?') { '&' } else { '?' };
                self.sent.push((
                    email,
                    format!("{url}{sep}stytch_token_type=magic_links&token={token}"),
                ));
                answer(
                    200,
                    json!({"status_code": 200, "request_id": "r", "user_id": user_id, "email_id": format!("email-{user_id}"), "user_created": created}),
                )
            }
            ("POST", "magic_links/authenticate") => {
                let token = body["token"].as_str().unwrap_or("");
                assert_eq!(body["session_duration_minutes"], 60);
                let Some((user_id, challenge)) = self.tokens.get(token).cloned() else {
                    return stytch_error(401, "unable_to_auth_magic_link");
                };
                // PKCE: a token minted with a challenge needs its verifier.
                if let Some(challenge) = challenge {
                    let verifier = body["code_verifier"].as_str().unwrap_or("");
                    if crate::crypto::sha256_b64url(verifier.as_bytes()) != challenge {
                        return stytch_error(400, "pkce_mismatch");
                    }
                }
                self.tokens.remove(token);
                let session_token = self.next("session-token");
                self.sessions.insert(session_token.clone(), user_id.clone());
                let mut user = self.user(&user_id);
                if self.mode == Mode::InconsistentUser {
                    user["user_id"] = json!("user-test-someone-else");
                }
                answer(
                    200,
                    json!({"status_code": 200, "request_id": "r", "user_id": user_id, "method_id": format!("email-{user_id}"),
                           "session_token": session_token, "session_jwt": "a.b.c", "user": user,
                           "session": {"session_id": "session-1", "user_id": user_id}, "reset_sessions": false}),
                )
            }
            ("POST", "sessions/revoke") => {
                let token = body["session_token"].as_str().unwrap_or("").to_string();
                if self.sessions.remove(&token).is_none() {
                    return stytch_error(404, "session_not_found");
                }
                self.revoked.push(token);
                answer(200, json!({"status_code": 200, "request_id": "r"}))
            }
            _ => stytch_error(404, "not_found"),
        }
    }
}

fn env_with(providers: Value) -> BTreeMap<String, String> {
    let mut env = test_env();
    env.insert("PROVIDERS".into(), providers.to_string());
    env.insert("PROVIDER_MAIL_SECRET".into(), SECRET.into());
    env.insert("PROVIDER_MAIL2_SECRET".into(), SECRET.into());
    env
}

fn default_providers() -> Value {
    json!({
        "dev": {"kind": "oidc", "issuer": "http://127.0.0.1:9000", "client_id": "gatehouse"},
        "mail": {"kind": "stytch", "project_id": PROJECT, "api_url": API, "display_name": "Email"},
        "psg": {"kind": "passage", "app_id": "app1", "jwks_url": "https://passage.test/jwks"},
    })
}

struct H {
    cfg: Config,
    p: TestPlatform,
    fake: Rc<RefCell<FakeStytch>>,
}

fn set_cookie(r: &Response, name: &str) -> Option<String> {
    r.headers_named("set-cookie")
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap().to_string())
}

fn json_body(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

impl H {
    fn new() -> H {
        H::with(default_providers())
    }

    fn with(providers: Value) -> H {
        let cfg = Config::from_env(&env_with(providers)).expect("valid config");
        let fake = Rc::new(RefCell::new(FakeStytch::default()));
        let served = fake.clone();
        H {
            cfg,
            p: TestPlatform::new(move |req| served.borrow_mut().serve(req)),
            fake,
        }
    }

    fn run(&self, req: Request) -> Response {
        block_on(handle(Ok(&self.cfg), &self.p, req))
    }

    fn post(&self, body: &str, content_type: &str, extra: &[(&str, &str)]) -> Response {
        let mut req = Request::new(Method::Post, &format!("{PUBLIC_URL}/auth/magic-link"))
            .with_header("origin", PUBLIC_URL)
            .with_header("content-type", content_type)
            .with_body(body.to_string());
        for (k, v) in extra {
            req = req.with_header(k, v);
        }
        self.run(req)
    }

    fn form(&self, email: &str) -> Response {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("email", email)
            .finish();
        self.post(&body, FORM, &[("accept", "text/html")])
    }

    fn api(&self, v: Value) -> Response {
        self.post(&v.to_string(), "application/json", &[])
    }

    fn get(&self, url: &str, cookie: Option<&str>) -> Response {
        let url = if url.starts_with("http") {
            url.to_string()
        } else {
            format!("{PUBLIC_URL}{url}")
        };
        let mut req = Request::new(Method::Get, &url);
        if let Some(c) = cookie {
            req = req.with_header("cookie", c);
        }
        self.run(req)
    }

    fn last_link(&self) -> String {
        self.fake
            .borrow()
            .sent
            .last()
            .expect("a link was sent")
            .1
            .clone()
    }

    fn calls(&self, path: &str) -> usize {
        let url = format!("{API}{path}");
        self.p
            .http
            .calls
            .borrow()
            .iter()
            .filter(|c| c.url == url)
            .count()
    }

    fn sessions(&self) -> usize {
        self.p
            .kv
            .keys()
            .iter()
            .filter(|k| k.starts_with("s:"))
            .count()
    }

    fn txns(&self) -> usize {
        self.p
            .kv
            .keys()
            .iter()
            .filter(|k| k.starts_with("t:"))
            .count()
    }

    /// Requests a link as a browser form; returns (txn cookie, link).
    fn request_link(&self, email: &str) -> (String, String) {
        let r = self.form(email);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        (
            set_cookie(&r, "gh_txn").expect("txn cookie"),
            self.last_link(),
        )
    }

    /// A callback carrying `token` inside the transaction `state` of the browser holding
    /// `cookie`: what someone who took a link from a mail tries in their own flow.
    fn callback_with_token(&self, state: &str, token: &str, cookie: &str) -> Response {
        self.get(
            &format!(
                "/auth/callback/mail?gh_state={state}&stytch_token_type=magic_links&token={token}"
            ),
            Some(cookie),
        )
    }

    /// Whether one log line contains every one of `needles`.
    fn logged(&self, needles: &[&str]) -> bool {
        self.p
            .logs
            .borrow()
            .iter()
            .any(|l| needles.iter().all(|n| l.contains(n)))
    }

    fn assert_nothing_signed_in(&self, r: &Response) {
        assert!(set_cookie(r, "gh_session").is_none());
        assert_eq!(self.p.users.user_count(), 0, "no user");
        assert_eq!(self.sessions(), 0, "no session");
    }
}

// ---------------------------------------------------------------------------------------
// Sending.

#[test]
fn known_and_unknown_addresses_get_the_same_answer() {
    let h = H::new();
    h.fake
        .borrow_mut()
        .users
        .insert("known@example.com".into(), "user-test-known".into());
    h.fake
        .borrow_mut()
        .emails
        .insert("user-test-known".into(), "known@example.com".into());

    let known = h.form("known@example.com");
    let unknown = h.form("nobody@example.com");
    assert_eq!(known.status, 200);
    for r in [&known, &unknown] {
        assert!(
            set_cookie(r, "gh_txn").is_some(),
            "each answer binds the link to the browser"
        );
    }
    assert_eq!(known.status, unknown.status);
    assert_eq!(known.body, unknown.body, "identical pages");
    assert_eq!(known.header("content-type"), unknown.header("content-type"));
    assert!(String::from_utf8_lossy(&known.body).contains("Check your email"));

    let a = h.api(json!({"email": "known@example.com"}));
    let b = h.api(json!({"email": "other@example.com"}));
    assert_eq!((a.status, b.status), (202, 202));
    assert_eq!(a.body, b.body);
    assert_eq!(json_body(&a)["status"], "sent");
    assert_eq!(h.fake.borrow().sent.len(), 4);
    assert!(!String::from_utf8_lossy(&a.body).contains("user_created"));
}

#[test]
fn the_link_points_at_the_callback_with_this_browsers_state() {
    let h = H::new();
    let (cookie, link) = h.request_link("ada@example.com");
    let state = cookie
        .trim_start_matches("gh_txn=")
        .split('.')
        .next()
        .unwrap()
        .to_string();
    assert!(
        link.starts_with(&format!(
            "{PUBLIC_URL}/auth/callback/mail?gh_state={state}&"
        )),
        "{link}"
    );
    assert_eq!(h.txns(), 1);
}

#[test]
fn bad_addresses_are_refused_before_anything_is_counted_or_sent() {
    let h = H::new();
    for bad in [
        "",
        "plain",
        "@example.com",
        "a@",
        "a@b",
        "a b@example.com",
        "a@exa mple.com",
        "a@@example.com",
        ".a@example.com",
        "a..b@example.com",
        "a@-x.com",
        "a@example.123",
        "\"q\"@example.com",
        &format!("{}@example.com", "a".repeat(65)),
        &format!("a@{}.com", "b".repeat(250)),
    ] {
        let r = h.api(json!({"email": bad}));
        assert_eq!(r.status, 400, "{bad:?}");
        assert_eq!(json_body(&r)["error"], "bad_request", "{bad:?}");
    }
    let missing = h.api(json!({"return_to": "/"}));
    assert_eq!(missing.status, 400);
    let bad_rt = h.api(json!({"email": "a@example.com", "return_to": "//evil.com"}));
    assert_eq!(bad_rt.status, 400);
    let not_json = h.post("{", "application/json", &[]);
    assert_eq!(not_json.status, 400);
    assert_eq!(h.fake.borrow().sent.len(), 0);
    assert_eq!(
        h.p.kv.keys(),
        Vec::<String>::new(),
        "nothing counted or stored"
    );
}

#[test]
fn trims_the_address() {
    let h = H::new();
    assert_eq!(h.api(json!({"email": "  ada@example.com "})).status, 202);
    assert_eq!(h.fake.borrow().sent[0].0, "ada@example.com");
}

#[test]
fn sends_are_rate_limited_per_address() {
    let h = H::new();
    for i in 0..crate::app::magic::PER_EMAIL.max {
        assert_eq!(
            h.api(json!({"email": "Ada@Example.com"})).status,
            202,
            "send {i}"
        );
    }
    let r = h.api(json!({"email": "ada@example.com"}));
    assert_eq!(r.status, 429, "the limit ignores case");
    assert_eq!(json_body(&r)["error"], "rate_limited");
    assert!(set_cookie(&r, "gh_txn").is_none());
    assert_eq!(
        h.fake.borrow().sent.len(),
        crate::app::magic::PER_EMAIL.max as usize
    );
    assert_eq!(
        h.api(json!({"email": "bob@example.com"})).status,
        202,
        "other addresses still work"
    );
    h.p.clock
        .set(h.p.clock.get() + crate::app::magic::PER_EMAIL.window as i64);
    assert_eq!(
        h.api(json!({"email": "ada@example.com"})).status,
        202,
        "a new window"
    );
}

#[test]
fn sends_are_rate_limited_per_client_ip() {
    let h = H::new();
    let send = |i: u32, ip: &str| {
        h.post(
            &json!({"email": format!("u{i}@example.com")}).to_string(),
            "application/json",
            &[("cf-connecting-ip", ip)],
        )
    };
    for i in 0..crate::app::magic::PER_IP.max {
        assert_eq!(send(i, "203.0.113.7").status, 202, "send {i}");
    }
    assert_eq!(send(999, "203.0.113.7").status, 429);
    assert_eq!(
        send(1000, "203.0.113.8").status,
        202,
        "another client is not limited"
    );
}

#[test]
fn cross_site_posts_are_refused() {
    let h = H::new();
    let r = h.post(r#"{"email":"a@example.com"}"#, "application/json", &[]);
    assert_eq!(
        r.status, 202,
        "a non-browser client without cookies may call"
    );
    let h = H::new();
    let mut req = Request::new(Method::Post, &format!("{PUBLIC_URL}/auth/magic-link"))
        .with_header("origin", "https://evil.example")
        .with_header("content-type", FORM)
        .with_body("email=a%40example.com");
    assert_eq!(h.run(req.clone()).status, 403);
    req.headers.retain(|(k, _)| k != "origin");
    let req = req.with_header("sec-fetch-site", "cross-site");
    assert_eq!(h.run(req).status, 403);
    assert_eq!(h.fake.borrow().sent.len(), 0);
}

#[test]
fn the_provider_is_chosen_by_name_or_being_the_only_one() {
    let h = H::new();
    assert_eq!(
        h.api(json!({"email": "a@example.com", "provider": "mail"}))
            .status,
        202
    );
    for (p, why) in [
        ("psg", "passage sends no links"),
        ("nope", "unknown"),
        ("dev", "oidc"),
    ] {
        let r = h.api(json!({"email": "a@example.com", "provider": p}));
        assert_eq!(r.status, 400, "{why}");
    }
    let mut two = default_providers();
    two["mail2"] = json!({"kind": "stytch", "project_id": "project-test-2", "api_url": API});
    let h2 = H::with(two);
    assert_eq!(
        h2.api(json!({"email": "a@example.com"})).status,
        400,
        "ambiguous"
    );
    let none = H::with(
        json!({"dev": {"kind": "oidc", "issuer": "http://127.0.0.1:9000", "client_id": "gatehouse"}}),
    );
    assert_eq!(none.api(json!({"email": "a@example.com"})).status, 400);
}

#[test]
fn stytch_failures_are_clear_and_leave_nothing_behind() {
    for (mode, status, code, logged) in [
        (Mode::TooMany, 429, "rate_limited", None),
        (Mode::Http500, 502, "provider_unavailable", Some("HTTP 500")),
        (
            Mode::Timeout,
            502,
            "provider_unavailable",
            Some("timed out"),
        ),
        (
            Mode::BadRequest,
            400,
            "provider_error",
            Some("invalid_magic_link_url"),
        ),
    ] {
        let h = H::new();
        h.fake.borrow_mut().mode = mode;
        let r = h.api(json!({"email": "a@example.com"}));
        assert_eq!(r.status, status, "{mode:?}");
        assert_eq!(json_body(&r)["error"], code, "{mode:?}");
        assert!(
            !String::from_utf8_lossy(&r.body).contains("happened"),
            "no Stytch message echoed"
        );
        assert!(set_cookie(&r, "gh_txn").is_none(), "{mode:?}");
        assert_eq!(h.txns(), 0, "{mode:?}: no transaction stored");
        if let Some(l) = logged {
            assert!(h.logged(&[l]), "{mode:?}: {:?}", h.p.logs.borrow());
        }
    }
}

#[test]
fn wrong_secret_is_a_provider_error() {
    let mut env = env_with(default_providers());
    env.insert("PROVIDER_MAIL_SECRET".into(), "wrong".into());
    let h = H::new();
    let h = H {
        cfg: Config::from_env(&env).unwrap(),
        ..h
    };
    let r = h.api(json!({"email": "a@example.com"}));
    assert_eq!(r.status, 400);
    assert!(h.logged(&["unauthorized_credentials"]));
}

// ---------------------------------------------------------------------------------------
// The login page.

#[test]
fn login_page_shows_an_email_form_and_provider_page_does_not_redirect() {
    let h = H::new();
    let page = h.get("/auth/login?return_to=%2Fafter", None);
    let html = String::from_utf8_lossy(&page.body).to_string();
    assert!(html.contains("action=\"/auth/magic-link\""));
    assert!(html.contains("name=\"return_to\" value=\"/after\""));
    assert!(
        html.contains("provider=dev"),
        "redirect providers keep their buttons"
    );

    let r = h.get("/auth/login?provider=mail&return_to=%2Fafter", None);
    assert_eq!(r.status, 200);
    let html = String::from_utf8_lossy(&r.body).to_string();
    assert!(html.contains("Sign in with Email") && html.contains("type=\"email\""));
    assert!(set_cookie(&r, "gh_txn").is_none());
    assert_eq!(
        h.p.kv.keys(),
        Vec::<String>::new(),
        "nothing stored until an address is sent"
    );
}

// ---------------------------------------------------------------------------------------
// The callback.

#[test]
fn the_link_signs_in_in_the_same_browser_and_logout_revokes_the_stytch_session() {
    let h = H::new();
    let r = h.post("email=ada%40example.com&return_to=%2Fdash", FORM, &[]);
    let cookie = set_cookie(&r, "gh_txn").unwrap();
    let done = h.get(&h.last_link(), Some(&cookie));
    assert_eq!(done.status, 302, "{}", String::from_utf8_lossy(&done.body));
    assert_eq!(done.header("location"), Some("/dash"));
    assert_eq!(h.p.users.user_count(), 1);
    assert_eq!(h.sessions(), 1);
    let session = set_cookie(&done, "gh_session").unwrap();
    let access = set_cookie(&done, "gh_access").unwrap();
    let me = json_body(&h.get("/auth/me", Some(&format!("{session}; {access}"))));
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["name"], "Ada Lovelace");
    let rec =
        h.p.kv
            .values()
            .into_iter()
            .find(|v| v.contains("session-token"))
            .expect("vendor session kept");
    assert!(rec.contains("\"provider\":\"mail\""));

    // Sign in again: the same user.
    let (cookie, link) = h.request_link("ada@example.com");
    assert_eq!(h.get(&link, Some(&cookie)).status, 302);
    assert_eq!(h.p.users.user_count(), 1);

    // Logout ends the Stytch session too.
    let out = h.run(
        Request::new(Method::Post, &format!("{PUBLIC_URL}/auth/logout"))
            .with_header("origin", PUBLIC_URL)
            .with_header("cookie", &session),
    );
    assert_eq!(out.status, 204);
    assert_eq!(h.fake.borrow().revoked.len(), 1);
    assert_eq!(
        h.fake.borrow().sessions.len(),
        1,
        "the other sign-in's Stytch session lives on"
    );
}

#[test]
fn a_link_from_another_browser_signs_no_one_in() {
    let h = H::new();
    let (_attacker_cookie, attacker_link) = h.request_link("mallory@example.com");
    // No cookie at all.
    let r = h.get(&attacker_link, None);
    assert_eq!(r.status, 400);
    assert_eq!(json_body(&r)["error"], "invalid_login_transaction");
    // The victim's own sign-in in progress.
    let (victim_cookie, _) = h.request_link("victim@example.com");
    let r = h.get(&attacker_link, Some(&victim_cookie));
    assert_eq!(json_body(&r)["error"], "invalid_login_transaction");
    h.assert_nothing_signed_in(&r);
    assert_eq!(
        h.calls("magic_links/authenticate"),
        0,
        "the token is never spent"
    );
}

#[test]
fn a_token_taken_from_the_mail_is_useless_in_the_thiefs_own_flow() {
    let h = H::new();
    let (victim_cookie, victim_link) = h.request_link("victim@example.com");
    let sent = &h
        .fake
        .borrow()
        .calls_body("magic_links/email/login_or_create");
    let challenge = sent[0]["code_challenge"]
        .as_str()
        .expect("a PKCE challenge");
    assert_eq!(challenge.len(), 43, "base64url SHA-256");
    let stolen = victim_link.rsplit("token=").next().unwrap().to_string();

    // The thief starts a flow of their own (own browser, own cookie) and swaps the token in.
    let (thief_cookie, thief_link) = h.request_link("thief@example.com");
    let thief_state = thief_link
        .split("gh_state=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    let r = h.callback_with_token(&thief_state, &stolen, &thief_cookie);
    assert_eq!(r.status, 400);
    assert_eq!(json_body(&r)["error"], "provider_error");
    assert!(h.logged(&["pkce_mismatch"]));
    h.assert_nothing_signed_in(&r);

    // The victim's own browser still signs in with it.
    let done = h.get(&victim_link, Some(&victim_cookie));
    assert_eq!(done.status, 302, "{}", String::from_utf8_lossy(&done.body));
    assert_eq!(h.p.users.user_count(), 1);
}

#[test]
fn a_used_link_cannot_sign_in_again() {
    let h = H::new();
    let (cookie, link) = h.request_link("ada@example.com");
    assert_eq!(h.get(&link, Some(&cookie)).status, 302);
    // Replayed with its used transaction.
    let r = h.get(&link, Some(&cookie));
    assert_eq!(json_body(&r)["error"], "invalid_login_transaction");
    // Replayed inside a fresh transaction of this browser: Stytch refuses the spent token.
    let (fresh, _) = h.request_link("ada@example.com");
    let state = fresh
        .trim_start_matches("gh_txn=")
        .split('.')
        .next()
        .unwrap()
        .to_string();
    let old_token = link.rsplit("token=").next().unwrap().to_string();
    let r = h.callback_with_token(&state, &old_token, &fresh);
    assert_eq!(r.status, 400);
    assert_eq!(json_body(&r)["error"], "provider_error");
    assert!(h.logged(&["unable_to_auth_magic_link", "request-id-test-1"]));
    assert_eq!(h.sessions(), 1, "no second session");
}

#[test]
fn other_token_types_are_a_clear_400() {
    let h = H::new();
    let (cookie, link) = h.request_link("ada@example.com");
    let r = h.get(
        &link.replace("stytch_token_type=magic_links", "stytch_token_type=oauth"),
        Some(&cookie),
    );
    assert_eq!(r.status, 400);
    assert_eq!(json_body(&r)["error"], "bad_request");
    assert!(json_body(&r)["message"].as_str().unwrap().contains("oauth"));
    h.assert_nothing_signed_in(&r);
    assert_eq!(h.calls("magic_links/authenticate"), 0);
}

#[test]
fn authenticate_failures_leave_no_user_and_no_session() {
    for (mode, status) in [
        (Mode::Http500, 502),
        (Mode::Timeout, 502),
        (Mode::BadRequest, 400),
    ] {
        let h = H::new();
        let (cookie, link) = h.request_link("ada@example.com");
        h.fake.borrow_mut().mode = mode;
        let r = h.get(&link, Some(&cookie));
        assert_eq!(r.status, status, "{mode:?}");
        h.assert_nothing_signed_in(&r);
    }
}

#[test]
fn a_refused_authenticate_answer_revokes_the_session_stytch_made() {
    let h = H::new();
    let (cookie, link) = h.request_link("ada@example.com");
    h.fake.borrow_mut().mode = Mode::InconsistentUser;
    let r = h.get(&link, Some(&cookie));
    assert_eq!(r.status, 400);
    h.assert_nothing_signed_in(&r);
    let fake = h.fake.borrow();
    assert_eq!(fake.revoked.len(), 1, "the Stytch session was revoked");
    assert!(fake.sessions.is_empty());
}
