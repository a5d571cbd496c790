//! The whole OIDC sign-in driven through [`crate::app::handle`], against a fake OpenID
//! provider answering the platform's outbound HTTP: discovery, JWKS, token and userinfo.
//! Each test starts a login (`GET /auth/login?provider=dev`), takes the `state`, `nonce` and
//! `code_challenge` of the redirect and the `gh_txn` cookie, lets the fake provider answer the
//! way the case needs, and calls back. Every refused case checks the status, the JSON error
//! code, the reason in the log, and that no user and no session were written.

use crate::app::handle;
use crate::config::Config;
use crate::crypto::b64url;
use crate::http::{Method, Request, Response};
use crate::jwt::keys::SigningKey;
use crate::jwt::native::{generate_ed25519_jwk, NativeSignatures};
use crate::platform::{FetchError, Inbound, Outbound};
use crate::testing::{block_on, test_config, test_env, TestPlatform};
use serde_json::{json, Map, Value};
use std::cell::RefCell;
use std::rc::Rc;

/// The `dev` provider of `test_env()`.
const ISSUER: &str = "http://127.0.0.1:9000";
const CLIENT_ID: &str = "gatehouse";
const CLIENT_SECRET: &str = "dev-secret";
const PUBLIC_URL: &str = "http://127.0.0.1:8787";
const DISCOVERY_URL: &str = "http://127.0.0.1:9000/.well-known/openid-configuration";
const AUTHORIZE_URL: &str = "http://127.0.0.1:9000/authorize";
const TOKEN_URL: &str = "http://127.0.0.1:9000/token";
const JWKS_URL: &str = "http://127.0.0.1:9000/jwks";
const USERINFO_URL: &str = "http://127.0.0.1:9000/userinfo";
/// The code the fake provider hands out (and the only one its token endpoint accepts).
const CODE: &str = "code-123";
/// `TestPlatform`'s initial clock.
const NOW: i64 = 1_700_000_000;
const SUB: &str = "user-42";

// ---------------------------------------------------------------------------------------
// The fake OpenID provider.

/// How the token endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
enum TokenEndpoint {
    #[default]
    Normal,
    Timeout,
    Http500,
    MalformedJson,
}

/// What is done to the ID token after it is built.
#[derive(Debug, Clone, PartialEq, Default)]
enum Tamper {
    #[default]
    Nothing,
    /// One bit of the signature flipped.
    FlipSignatureByte,
    /// Header `{"alg":"none"}` with this (unsigned) signature part.
    AlgNone(String),
}

/// What the fake provider does; tests change it before the callback.
#[derive(Debug, Default)]
struct Scenario {
    /// The login transaction's nonce, which the ID token echoes (set by [`Harness::login`]).
    nonce: String,
    /// Claims merged over the default ID-token claims.
    claims: Map<String, Value>,
    /// Fields merged over the default ID-token header.
    header: Map<String, Value>,
    tamper: Tamper,
    token_endpoint: TokenEndpoint,
    /// The userinfo `sub`, when it must differ from the ID token's.
    userinfo_sub: Option<String>,
    /// Fields merged over the discovery document.
    discovery: Map<String, Value>,
}

struct FakeIdp {
    key: SigningKey,
    scenario: Scenario,
}

fn answer(status: u16, body: &Value) -> Result<Inbound, FetchError> {
    Ok(Inbound {
        status,
        body: body.to_string().into_bytes(),
    })
}

fn b64_json(v: &Value) -> String {
    b64url(v.to_string().as_bytes())
}

fn merged(mut base: Value, overrides: &Map<String, Value>) -> Value {
    let obj = base.as_object_mut().unwrap();
    for (k, v) in overrides {
        obj.insert(k.clone(), v.clone());
    }
    base
}

fn form_value(body: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn outbound_header<'a>(req: &'a Outbound, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

impl FakeIdp {
    fn id_token(&self) -> String {
        let s = &self.scenario;
        let claims = merged(
            json!({
                "iss": ISSUER, "aud": CLIENT_ID, "sub": SUB, "exp": NOW + 3600, "iat": NOW,
                "nonce": s.nonce, "email": "ada@example.com", "name": "Ada",
            }),
            &s.claims,
        );
        if let Tamper::AlgNone(signature) = &s.tamper {
            return format!(
                "{}.{}.{signature}",
                b64_json(&json!({"alg": "none"})),
                b64_json(&claims)
            );
        }
        let header = merged(
            json!({"alg": "EdDSA", "typ": "JWT", "kid": self.key.kid}),
            &s.header,
        );
        let input = format!("{}.{}", b64_json(&header), b64_json(&claims));
        let mut sig = NativeSignatures.sign_sync(&self.key, input.as_bytes());
        if s.tamper == Tamper::FlipSignatureByte {
            sig[10] ^= 0x01;
        }
        format!("{input}.{}", b64url(&sig))
    }

    fn token(&self, req: &Outbound) -> Result<Inbound, FetchError> {
        match self.scenario.token_endpoint {
            TokenEndpoint::Timeout => return Err(FetchError::Timeout),
            TokenEndpoint::Http500 => return answer(500, &json!({"error": "server_error"})),
            TokenEndpoint::MalformedJson => {
                return Ok(Inbound {
                    status: 200,
                    body: b"{\"id_token\": \"abc\", ".to_vec(),
                })
            }
            TokenEndpoint::Normal => {}
        }
        let body = req.body.as_deref().unwrap_or_default();
        if form_value(body, "grant_type").as_deref() != Some("authorization_code")
            || form_value(body, "code").as_deref() != Some(CODE)
        {
            return answer(400, &json!({"error": "invalid_grant"}));
        }
        answer(
            200,
            &json!({"id_token": self.id_token(), "access_token": "at", "token_type": "Bearer"}),
        )
    }

    fn userinfo(&self, req: &Outbound) -> Result<Inbound, FetchError> {
        if outbound_header(req, "authorization") != Some("Bearer at") {
            return answer(401, &json!({"error": "invalid_token"}));
        }
        let sub = self.scenario.userinfo_sub.as_deref().unwrap_or(SUB);
        answer(
            200,
            &json!({"sub": sub, "email": "ada@example.com", "name": "Ada"}),
        )
    }

    fn serve(&self, req: &Outbound) -> Result<Inbound, FetchError> {
        match (req.method, req.url.as_str()) {
            ("GET", DISCOVERY_URL) => answer(
                200,
                &merged(
                    json!({
                        "issuer": ISSUER,
                        "authorization_endpoint": AUTHORIZE_URL,
                        "token_endpoint": TOKEN_URL,
                        "jwks_uri": JWKS_URL,
                        "userinfo_endpoint": USERINFO_URL,
                    }),
                    &self.scenario.discovery,
                ),
            ),
            ("GET", JWKS_URL) => answer(200, &json!({"keys": [self.key.public]})),
            ("POST", TOKEN_URL) => self.token(req),
            ("GET", USERINFO_URL) => self.userinfo(req),
            _ => answer(404, &json!({"error": "not_found"})),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Driving Gatehouse.

/// What the test keeps from `GET /auth/login?provider=dev`.
struct Login {
    state: String,
    nonce: String,
    code_challenge: String,
    code_challenge_method: String,
    /// `gh_txn=...`, ready for a `Cookie` header.
    txn_cookie: String,
}

struct Harness {
    cfg: Config,
    p: TestPlatform,
    idp: Rc<RefCell<FakeIdp>>,
}

fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn encode(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// The `name=value` part of the response's `Set-Cookie` for `name`, if any.
fn set_cookie(r: &Response, name: &str) -> Option<String> {
    r.headers_named("set-cookie")
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap().to_string())
}

fn json_body(r: &Response) -> Value {
    serde_json::from_slice(&r.body)
        .unwrap_or_else(|_| panic!("body is not JSON: {}", String::from_utf8_lossy(&r.body)))
}

impl Harness {
    fn new() -> Harness {
        // The constants above must describe the environment the config is built from.
        let env = test_env();
        assert_eq!(env["PUBLIC_URL"], PUBLIC_URL);
        assert!(env["PROVIDERS"].contains(&format!(r#""issuer":"{ISSUER}""#)));
        assert!(env["PROVIDERS"].contains(&format!(r#""client_id":"{CLIENT_ID}""#)));
        assert_eq!(env["PROVIDER_DEV_SECRET"], CLIENT_SECRET);

        let key = SigningKey::from_private_jwk(&generate_ed25519_jwk()).unwrap();
        let idp = Rc::new(RefCell::new(FakeIdp {
            key,
            scenario: Scenario::default(),
        }));
        let served = idp.clone();
        let p = TestPlatform::new(move |req| served.borrow().serve(req));
        assert_eq!(p.clock.get(), NOW);
        Harness {
            cfg: test_config(),
            p,
            idp,
        }
    }

    /// Changes what the fake provider does.
    fn scenario(&self, change: impl FnOnce(&mut Scenario)) {
        change(&mut self.idp.borrow_mut().scenario);
    }

    fn get(&self, path_and_query: &str, cookie: Option<&str>) -> Response {
        let mut req = Request::new(Method::Get, &format!("{PUBLIC_URL}{path_and_query}"));
        if let Some(c) = cookie {
            req = req.with_header("cookie", c);
        }
        block_on(handle(Ok(&self.cfg), &self.p, req))
    }

    /// Starts a sign-in with `dev`; the fake provider will echo its nonce.
    fn login(&self) -> Login {
        self.login_with("")
    }

    /// Like [`Harness::login`], with `extra` appended to the query (`&return_to=...`).
    fn login_with(&self, extra: &str) -> Login {
        let r = self.get(&format!("/auth/login?provider=dev{extra}"), None);
        assert_eq!(r.status, 302, "login: {}", String::from_utf8_lossy(&r.body));
        let location = r.header("location").expect("login redirects").to_string();
        assert!(
            location.starts_with(&format!("{AUTHORIZE_URL}?")),
            "{location}"
        );
        let param = |n: &str| query_param(&location, n).unwrap_or_else(|| panic!("no {n}"));
        let login = Login {
            state: param("state"),
            nonce: param("nonce"),
            code_challenge: param("code_challenge"),
            code_challenge_method: param("code_challenge_method"),
            txn_cookie: set_cookie(&r, "gh_txn").expect("login sets gh_txn"),
        };
        let nonce = login.nonce.clone();
        self.scenario(|s| s.nonce = nonce);
        login
    }

    /// The provider's redirect back, with the code and the login's state and cookie.
    fn callback(&self, login: &Login) -> Response {
        self.get(
            &format!(
                "/auth/callback/dev?code={CODE}&state={}",
                encode(&login.state)
            ),
            Some(&login.txn_cookie),
        )
    }

    /// One full attempt: login, then the callback, with the provider set up by `change`.
    fn sign_in_with(&self, change: impl FnOnce(&mut Scenario)) -> Response {
        let login = self.login();
        self.scenario(change);
        self.callback(&login)
    }

    fn session_keys(&self) -> Vec<String> {
        self.p
            .kv
            .keys()
            .into_iter()
            .filter(|k| k.starts_with("s:"))
            .collect()
    }

    fn calls_to(&self, url: &str) -> usize {
        self.p
            .http
            .calls
            .borrow()
            .iter()
            .filter(|c| c.url == url)
            .count()
    }

    fn logged(&self, fragment: &str) -> bool {
        self.p.logs.borrow().iter().any(|l| l.contains(fragment))
    }

    /// The request failed with `status` and error code `code`, and nothing was signed in.
    fn assert_refused(&self, r: &Response, status: u16, code: &str) {
        assert_eq!(
            r.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(json_body(r)["error"], code);
        assert!(set_cookie(r, "gh_session").is_none(), "no session cookie");
        assert!(set_cookie(r, "gh_access").is_none(), "no access cookie");
        assert_eq!(self.p.users.user_count(), 0, "no user created");
        assert_eq!(
            self.session_keys(),
            Vec::<String>::new(),
            "no session in KV"
        );
    }

    /// Like [`Harness::assert_refused`], for a callback: also the reason is in the log and the
    /// transaction cookie is cleared. The failure is audited only once a transaction was
    /// spent: a callback refused for its transaction writes no row (a flood of them must
    /// write nothing).
    fn assert_sign_in_refused(&self, r: &Response, status: u16, code: &str, reason: &str) {
        self.assert_refused(r, status, code);
        assert!(
            self.logged(reason),
            "log lacks {reason:?}: {:?}",
            self.p.logs.borrow()
        );
        assert_eq!(set_cookie(r, "gh_txn").as_deref(), Some("gh_txn="));
        let audited = self
            .p
            .users
            .events
            .borrow()
            .iter()
            .any(|e| e.kind == "sign_in_failed" && e.detail["error"] == code);
        let without_transaction = code == "invalid_login_transaction";
        assert_eq!(audited, !without_transaction, "audited: {audited}");
        if without_transaction {
            assert!(self.p.users.events.borrow().is_empty(), "no row at all");
        }
    }
}

// ---------------------------------------------------------------------------------------
// The happy path.

#[test]
fn happy_path_signs_in_and_redirects_home() {
    let h = Harness::new();
    let login = h.login();
    let r = h.callback(&login);

    assert_eq!(r.status, 302, "body: {}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("location"), Some("/"));
    let session = set_cookie(&r, "gh_session").expect("session cookie");
    let access = set_cookie(&r, "gh_access").expect("access cookie");
    assert!(session.len() > "gh_session=".len());
    assert!(access.len() > "gh_access=".len());
    assert_eq!(set_cookie(&r, "gh_txn").as_deref(), Some("gh_txn="));
    assert_eq!(h.p.users.user_count(), 1);
    assert_eq!(h.session_keys().len(), 1);
    assert_eq!(
        h.p.users.spent.borrow().len(),
        1,
        "the login transaction is spent"
    );

    // The cookies identify the new user.
    let me = h.get("/auth/me", Some(&format!("{session}; {access}")));
    assert_eq!(me.status, 200);
    let me = json_body(&me);
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["name"], "Ada");
}

#[test]
fn login_redirect_carries_state_nonce_and_s256_challenge() {
    let h = Harness::new();
    let login = h.login();
    assert_eq!(login.code_challenge_method, "S256");
    assert_ne!(login.state, login.nonce);
    assert!(login
        .txn_cookie
        .starts_with(&format!("gh_txn={}.", login.state)));
}

#[test]
fn token_request_uses_basic_auth_and_the_pkce_verifier_of_the_challenge() {
    use base64::Engine;
    use sha2::{Digest, Sha256};

    let h = Harness::new();
    let login = h.login();
    assert_eq!(h.callback(&login).status, 302);

    let calls = h.p.http.calls.borrow();
    let token_req = calls
        .iter()
        .find(|c| c.url == TOKEN_URL)
        .expect("token endpoint called");
    assert_eq!(token_req.method, "POST");
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    assert_eq!(
        outbound_header(token_req, "authorization"),
        Some(&*expected)
    );
    let body = token_req.body.as_deref().unwrap();
    assert_eq!(
        form_value(body, "client_secret"),
        None,
        "secret not in body"
    );
    assert_eq!(
        form_value(body, "redirect_uri").as_deref(),
        Some("http://127.0.0.1:8787/auth/callback/dev")
    );
    assert_eq!(form_value(body, "code").as_deref(), Some(CODE));

    let verifier = form_value(body, "code_verifier").expect("code_verifier sent");
    let challenge =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier));
    assert_eq!(challenge, login.code_challenge);
}

// ---------------------------------------------------------------------------------------
// The login transaction.

#[test]
fn callback_with_bad_state_is_refused() {
    let h = Harness::new();
    let login = h.login();
    let r = h.get(
        &format!("/auth/callback/dev?code={CODE}&state=forged-state"),
        Some(&login.txn_cookie),
    );
    h.assert_sign_in_refused(
        &r,
        400,
        "invalid_login_transaction",
        "another browser or tab",
    );
    assert_eq!(h.calls_to(TOKEN_URL), 0, "the code is never exchanged");
}

#[test]
fn callback_without_txn_cookie_is_refused() {
    let h = Harness::new();
    let login = h.login();
    let r = h.get(
        &format!(
            "/auth/callback/dev?code={CODE}&state={}",
            encode(&login.state)
        ),
        None,
    );
    h.assert_sign_in_refused(
        &r,
        400,
        "invalid_login_transaction",
        "No sign-in was started",
    );
    assert_eq!(h.calls_to(TOKEN_URL), 0, "the code is never exchanged");
}

#[test]
fn replayed_callback_is_refused_and_creates_no_second_session() {
    let h = Harness::new();
    let login = h.login();
    assert_eq!(h.callback(&login).status, 302);
    assert_eq!(h.p.users.user_count(), 1);
    assert_eq!(h.session_keys().len(), 1);

    let again = h.callback(&login);
    assert_eq!(again.status, 400);
    assert_eq!(json_body(&again)["error"], "invalid_login_transaction");
    assert!(set_cookie(&again, "gh_session").is_none());
    assert!(h.logged("already used"));
    assert_eq!(h.p.users.user_count(), 1);
    assert_eq!(h.session_keys().len(), 1, "no second session");
    assert_eq!(h.calls_to(TOKEN_URL), 1, "the code is exchanged once");
}

#[test]
fn provider_access_denied_is_refused() {
    let h = Harness::new();
    let login = h.login();
    let r = h.get(
        &format!(
            "/auth/callback/dev?error=access_denied&state={}",
            encode(&login.state)
        ),
        Some(&login.txn_cookie),
    );
    h.assert_sign_in_refused(&r, 400, "provider_error", "access_denied");
    assert_eq!(h.calls_to(TOKEN_URL), 0);
}

// ---------------------------------------------------------------------------------------
// The ID token.

#[test]
fn id_token_with_wrong_nonce_is_refused() {
    let h = Harness::new();
    let r = h.sign_in_with(|s| {
        s.claims
            .insert("nonce".into(), json!("not-the-login-nonce"));
    });
    h.assert_sign_in_refused(&r, 400, "provider_error", "nonce mismatch");
}

#[test]
fn id_token_without_nonce_is_refused() {
    let h = Harness::new();
    let r = h.sign_in_with(|s| {
        s.claims.insert("nonce".into(), Value::Null);
    });
    h.assert_sign_in_refused(&r, 400, "provider_error", "nonce mismatch");
}

#[test]
fn id_token_with_wrong_issuer_is_refused() {
    let h = Harness::new();
    let r = h.sign_in_with(|s| {
        s.claims
            .insert("iss".into(), json!("http://127.0.0.1:9001"));
    });
    h.assert_sign_in_refused(&r, 400, "provider_error", "wrong issuer");
}

#[test]
fn id_token_with_wrong_audience_is_refused() {
    let h = Harness::new();
    let r = h.sign_in_with(|s| {
        s.claims.insert("aud".into(), json!("someone-else"));
    });
    h.assert_sign_in_refused(&r, 400, "provider_error", "wrong audience");
}

#[test]
fn id_token_for_several_audiences_needs_azp_naming_us() {
    // OIDC Core §3.1.3.7: with more than one audience, `azp` must be our client id.
    for azp in [None, Some("someone-else")] {
        let h = Harness::new();
        let r = h.sign_in_with(|s| {
            s.claims
                .insert("aud".into(), json!([CLIENT_ID, "someone-else"]));
            if let Some(azp) = azp {
                s.claims.insert("azp".into(), json!(azp));
            }
        });
        h.assert_sign_in_refused(&r, 400, "provider_error", "wrong audience");
    }
    let h = Harness::new();
    let r = h.sign_in_with(|s| {
        s.claims
            .insert("aud".into(), json!([CLIENT_ID, "someone-else"]));
        s.claims.insert("azp".into(), json!(CLIENT_ID));
    });
    assert_eq!(r.status, 302, "{}", String::from_utf8_lossy(&r.body));
}

#[test]
fn id_token_signed_with_an_algorithm_its_key_does_not_allow_is_refused() {
    // The JWKS key is Ed25519; a token claiming ES256 under its kid is refused before any
    // signature math, whatever the signature bytes are.
    let h = Harness::new();
    let r = h.sign_in_with(|s| {
        s.header.insert("alg".into(), json!("ES256"));
    });
    h.assert_sign_in_refused(&r, 400, "provider_error", "ES256 with a EdDSA key");
}

#[test]
fn no_secret_reaches_the_log() {
    // A successful sign-in, the failures that log the most, and a wrong admin key.
    let mut h = Harness::new();
    let admin_key = "admin-key-that-must-stay-out-of-the-log";
    h.cfg.admin_api_key = Some(crate::crypto::Secret::new(admin_key));
    let wrong_key = format!("{admin_key}-but-wrong");
    let login = h.login();
    let ok = h.callback(&login);
    assert_eq!(ok.status, 302);
    let cookie = |name: &str| {
        let c = set_cookie(&ok, name).unwrap();
        c.split_once('=').unwrap().1.to_string()
    };
    let (session, access) = (cookie("gh_session"), cookie("gh_access"));
    h.sign_in_with(|s| s.token_endpoint = TokenEndpoint::Http500);
    h.sign_in_with(|s| s.token_endpoint = TokenEndpoint::MalformedJson);
    h.sign_in_with(|s| s.tamper = Tamper::FlipSignatureByte);
    let r = h.callback(&Login {
        state: "forged".into(),
        ..h.login()
    });
    assert_eq!(r.status, 400);
    let wrong = Request::new(Method::Get, &format!("{PUBLIC_URL}/admin/users"))
        .with_header("authorization", &format!("Bearer {wrong_key}"));
    let wrong = block_on(handle(Ok(&h.cfg), &h.p, wrong));
    assert_eq!(wrong.status, 401, "the wrong admin key was tried");
    assert!(h
        .p
        .users
        .events
        .borrow()
        .iter()
        .any(|e| e.kind == "admin_auth_failed"));
    let state_secret = test_env()["STATE_SECRET"].clone();
    let signing_d = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
    let logs = h.p.logs.borrow().join("\n");
    assert!(
        logs.contains("gatehouse:"),
        "the failures were logged: {logs}"
    );
    for (what, secret) in [
        ("client secret", CLIENT_SECRET),
        ("STATE_SECRET", state_secret.as_str()),
        ("signing key", signing_d),
        ("session token", session.as_str()),
        ("access token", access.as_str()),
        ("login state", login.state.as_str()),
        ("admin key", admin_key),
        ("presented admin key", wrong_key.as_str()),
    ] {
        assert!(!logs.contains(secret), "{what} in the log: {logs}");
    }
}

#[test]
fn expired_id_token_is_refused() {
    let h = Harness::new();
    let r = h.sign_in_with(|s| {
        s.claims.insert("iat".into(), json!(NOW - 90_000));
        s.claims.insert("exp".into(), json!(NOW - 86_400));
    });
    h.assert_sign_in_refused(&r, 400, "provider_error", "token expired");
}

#[test]
fn id_token_with_bad_signature_is_refused() {
    let h = Harness::new();
    let r = h.sign_in_with(|s| s.tamper = Tamper::FlipSignatureByte);
    h.assert_sign_in_refused(&r, 400, "provider_error", "bad signature");
}

#[test]
fn id_token_with_alg_none_is_refused() {
    for signature in ["", "junk-signature"] {
        let h = Harness::new();
        let r = h.sign_in_with(|s| s.tamper = Tamper::AlgNone(signature.into()));
        h.assert_sign_in_refused(&r, 400, "provider_error", "algorithm not allowed: none");
    }
}

#[test]
fn id_token_with_unknown_kid_is_refused_and_jwks_refetched_at_most_once_a_minute() {
    let h = Harness::new();
    // A good sign-in caches the JWKS: one fetch.
    assert_eq!(h.sign_in_with(|_| {}).status, 302);
    assert_eq!(h.calls_to(JWKS_URL), 1);
    // An unknown kid forces exactly one refetch (the provider may have rotated its keys).
    let refused = |r: &Response| {
        assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(json_body(r)["error"], "provider_error");
        assert!(set_cookie(r, "gh_session").is_none());
        assert_eq!(
            h.p.users.user_count(),
            1,
            "only the first sign-in made a user"
        );
    };
    let r = h.sign_in_with(|s| {
        s.header.insert("kid".into(), json!("unknown-kid"));
    });
    refused(&r);
    assert!(h.logged("unknown key id"));
    assert_eq!(h.calls_to(JWKS_URL), 2, "one forced refetch");

    // A second such callback within the minute uses the cached set.
    h.p.clock.set(NOW + 30);
    refused(&h.sign_in_with(|_| {}));
    assert_eq!(h.calls_to(JWKS_URL), 2, "no JWKS fetch within 60 s");
}

#[test]
fn id_token_typed_as_access_token_is_refused() {
    let h = Harness::new();
    let r = h.sign_in_with(|s| {
        s.header.insert("typ".into(), json!("at+jwt"));
    });
    h.assert_sign_in_refused(&r, 400, "provider_error", "wrong token type");
}

#[test]
fn oversized_id_token_is_refused() {
    let h = Harness::new();
    let r = h.sign_in_with(|s| {
        s.claims
            .insert("padding".into(), json!("x".repeat(17 * 1024)));
    });
    h.assert_sign_in_refused(&r, 400, "provider_error", "token too large");
}

#[test]
fn userinfo_sub_differing_from_id_token_sub_is_refused() {
    let h = Harness::new();
    let r = h.sign_in_with(|s| s.userinfo_sub = Some("someone-else".into()));
    h.assert_sign_in_refused(&r, 400, "provider_error", "userinfo sub differs");
}

// ---------------------------------------------------------------------------------------
// The token endpoint failing.

#[test]
fn token_endpoint_timeout_is_provider_unavailable() {
    let h = Harness::new();
    let r = h.sign_in_with(|s| s.token_endpoint = TokenEndpoint::Timeout);
    h.assert_sign_in_refused(&r, 502, "provider_unavailable", "timed out");
}

#[test]
fn token_endpoint_http_500_is_provider_unavailable() {
    let h = Harness::new();
    let r = h.sign_in_with(|s| s.token_endpoint = TokenEndpoint::Http500);
    h.assert_sign_in_refused(&r, 502, "provider_unavailable", "HTTP 500");
}

#[test]
fn token_endpoint_malformed_json_is_refused() {
    let h = Harness::new();
    let r = h.sign_in_with(|s| s.token_endpoint = TokenEndpoint::MalformedJson);
    h.assert_sign_in_refused(&r, 400, "provider_error", "not JSON");
}

// ---------------------------------------------------------------------------------------
// `return_to` at login.

#[test]
fn login_refuses_open_redirect_return_to() {
    for evil in [
        "//evil.com",
        "https:evil.com",
        "\\\\evil.com",
        "/%2F%2Fevil.com",
        "javascript:alert(1)",
    ] {
        let h = Harness::new();
        let r = h.get(
            &format!("/auth/login?provider=dev&return_to={}", encode(evil)),
            None,
        );
        assert_eq!(r.status, 400, "{evil:?} accepted");
        assert_eq!(json_body(&r)["error"], "bad_request", "{evil:?}");
        assert!(r.header("location").is_none(), "{evil:?}");
        assert!(set_cookie(&r, "gh_txn").is_none(), "{evil:?}");
        assert_eq!(h.p.kv.keys(), Vec::<String>::new(), "{evil:?} wrote to KV");
        assert_eq!(h.p.users.user_count(), 0);
    }
}

#[test]
fn login_keeps_a_safe_return_to_for_after_the_callback() {
    let h = Harness::new();
    let login = h.login_with("&return_to=%2Fdash%3Fx%3D1");
    let r = h.callback(&login);
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("/dash?x=1"));
}

#[test]
fn a_return_to_is_checked_again_at_the_callback_against_the_settings_of_then() {
    let mut h = Harness::new();
    h.cfg.allowed_return_origins = vec!["https://app.example.com".into()];
    let login = h.login_with("&return_to=https%3A%2F%2Fapp.example.com%2Fx");
    // The origin is no longer allowed when the browser comes back (a new deployment).
    h.cfg.allowed_return_origins.clear();
    let r = h.callback(&login);
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.header("location").is_none());
    assert!(h.session_keys().is_empty(), "no session");
}

// ---------------------------------------------------------------------------------------
// Rate limits per client network.

#[test]
fn login_starts_past_the_network_limit_are_429_and_store_nothing() {
    let h = Harness::new();
    h.p.limiter.max.set(2);
    h.login();
    h.login();
    let r = h.get("/auth/login?provider=dev", None);
    assert_eq!(r.status, 429);
    assert_eq!(json_body(&r)["error"], "rate_limited");
    assert!(set_cookie(&r, "gh_txn").is_none());
    let txns = h.p.kv.keys().iter().filter(|k| k.starts_with("t:")).count();
    assert_eq!(txns, 2, "no transaction stored past the limit");
    // The login page itself (no provider) starts nothing and is not counted.
    assert_eq!(h.get("/auth/login", None).status, 200);
}

#[test]
fn callbacks_past_the_network_limit_are_429_and_spend_nothing() {
    let h = Harness::new();
    let login = h.login();
    h.p.limiter.max.set(1);
    let forged = h.get("/auth/callback/dev?code=x&state=forged", None);
    assert_eq!(forged.status, 400, "the first callback is within the limit");
    let r = h.callback(&login);
    assert_eq!(r.status, 429);
    assert!(
        set_cookie(&r, "gh_txn").is_none(),
        "the transaction cookie stays"
    );
    assert!(h.p.users.spent.borrow().is_empty(), "nothing spent");
    assert!(h.p.users.events.borrow().is_empty(), "no row");
    assert_eq!(h.calls_to(TOKEN_URL), 0);
    // A new window: the same transaction completes.
    h.p.limiter.reset();
    assert_eq!(h.callback(&login).status, 302);
}

#[test]
fn discovery_naming_a_plain_http_endpoint_off_loopback_is_refused() {
    for field in [
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "userinfo_endpoint",
    ] {
        let h = Harness::new();
        h.scenario(|s| {
            s.discovery
                .insert(field.into(), json!("http://idp.example.com/x"));
        });
        let r = h.get("/auth/login?provider=dev", None);
        assert_eq!(json_body(&r)["error"], "provider_error", "{field}");
        assert_eq!(
            r.status,
            400,
            "{field}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert!(
            set_cookie(&r, "gh_txn").is_none(),
            "{field}: no transaction"
        );
        assert!(
            h.p.logs
                .borrow()
                .iter()
                .any(|l| l.contains("plain-http endpoint off loopback")),
            "{field}: the reason is logged"
        );
    }
    // The same endpoint over https is fine.
    let h = Harness::new();
    h.scenario(|s| {
        s.discovery.insert(
            "userinfo_endpoint".into(),
            json!("https://idp.example.com/x"),
        );
    });
    assert_eq!(h.get("/auth/login?provider=dev", None).status, 302);
}
