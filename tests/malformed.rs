//! Every route through `app::handle` with the classic malformed inputs — an unknown or wrong
//! method, a body that is not JSON, a body over the size cap, broken percent-encoding in the
//! query and in a form — each from a client with the credentials the route needs (so that
//! the input, not the missing sign-in, is what gets refused). Each must be a 4xx with the
//! JSON error body, and change nothing. (`tests/fuzz.rs` does the same with generated
//! input; this is the fixed list.)

use gatehouse::app::handle;
use gatehouse::config::Config;
use gatehouse::http::{Method, Request, Response, MAX_BODY_BYTES};
use gatehouse::platform::FetchError;
use gatehouse::testing::{block_on, sign_in_directly, test_env, TestPlatform};
use serde_json::json;

const PUBLIC_URL: &str = "http://127.0.0.1:8787";
const ADMIN_KEY: &str = "admin-key-0123456789abcdef-xyz";

fn config() -> Config {
    let mut env = test_env();
    env.insert(
        "PROVIDERS".into(),
        json!({
            "dev": {"kind": "oidc", "issuer": "http://127.0.0.1:9000", "client_id": "gatehouse"},
            "mail": {"kind": "stytch", "project_id": "project-test-1", "api_url": "http://127.0.0.1:9200"},
        })
        .to_string(),
    );
    env.insert("PROVIDER_MAIL_SECRET".into(), "stytch-secret".into());
    env.insert("ADMIN_API_KEY".into(), ADMIN_KEY.into());
    Config::from_env(&env).unwrap()
}

struct World {
    cfg: Config,
    p: TestPlatform,
    user: String,
    sid: String,
    cookies: String,
}

fn world() -> World {
    let cfg = config();
    let p = TestPlatform::new(|_| Err(FetchError::Network("no provider in this test".into())));
    let person = sign_in_directly(&cfg, &p);
    World {
        cookies: format!("gh_session={}; gh_access={}", person.session, person.access),
        cfg,
        p,
        user: person.user_id.as_str().to_string(),
        sid: person.sid.as_str().to_string(),
    }
}

impl World {
    /// What is stored (to check that a refusal changed nothing; events aside).
    fn state(&self) -> (Vec<String>, usize, usize) {
        (
            self.p
                .kv
                .keys()
                .into_iter()
                .filter(|k| !k.starts_with("rl:"))
                .collect(),
            self.p.users.all_users().len(),
            self.p.users.all_identities().len(),
        )
    }

    fn send(
        &self,
        method: Method,
        path: &str,
        query: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Response {
        let mut url = url::Url::parse(PUBLIC_URL).unwrap();
        url.set_path(
            &path
                .replace("{user}", &self.user)
                .replace("{sid}", &self.sid),
        );
        url.set_query(query);
        let mut req = Request {
            method,
            url,
            headers: vec![],
            body: vec![],
        }
        .with_header("origin", PUBLIC_URL)
        .with_header("sec-fetch-site", "same-origin")
        .with_header("cf-connecting-ip", "198.51.100.7");
        req = if path.starts_with("/admin") {
            req.with_header("authorization", &format!("Bearer {ADMIN_KEY}"))
        } else {
            req.with_header("cookie", &self.cookies)
        };
        if let Some((content_type, bytes)) = body {
            req = req
                .with_header("content-type", content_type)
                .with_body(bytes);
        }
        block_on(handle(Ok(&self.cfg), &self.p, req))
    }
}

/// Routes with the method they answer and whether they read a body.
const ROUTES: &[(Method, &str, bool)] = &[
    (Method::Get, "/auth/login", false),
    (Method::Get, "/auth/callback/dev", false),
    (Method::Post, "/auth/magic-link", true),
    (Method::Post, "/auth/logout", false),
    (Method::Get, "/auth/me", false),
    (Method::Post, "/auth/token", false),
    (Method::Get, "/auth/sessions", false),
    (Method::Delete, "/auth/sessions/{sid}", false),
    (Method::Get, "/auth/identities", false),
    (Method::Delete, "/auth/identities", false),
    (Method::Get, "/admin/users", false),
    (Method::Post, "/admin/users", true),
    (Method::Get, "/admin/users/{user}", false),
    (Method::Patch, "/admin/users/{user}", true),
    (Method::Delete, "/admin/users/{user}", false),
    (Method::Post, "/admin/users/{user}/deactivate", false),
    (Method::Get, "/admin/users/{user}/sessions", false),
    (Method::Delete, "/admin/users/{user}/identities", false),
    (Method::Get, "/admin/users/{user}/events", false),
    (Method::Post, "/admin/magic-links", true),
];

fn assert_refused(w: &World, r: &Response, before: &(Vec<String>, usize, usize), what: &str) {
    let body = String::from_utf8_lossy(&r.body);
    assert!(
        (400..500).contains(&r.status),
        "{what}: {} {body}",
        r.status
    );
    let v: serde_json::Value =
        serde_json::from_slice(&r.body).unwrap_or_else(|_| panic!("{what}: {body}"));
    assert!(
        v["error"].is_string() && v["message"].is_string(),
        "{what}: {body}"
    );
    assert_eq!(
        &w.state(),
        before,
        "{what}: a refused request changed what is stored"
    );
}

#[test]
fn unknown_and_wrong_methods_are_405() {
    for (method, path, _) in ROUTES {
        for other in [Method::Other, Method::Put] {
            let w = world();
            let before = w.state();
            let r = w.send(other, path, None, None);
            assert_refused(
                &w,
                &r,
                &before,
                &format!("{other:?} {path} (answers {method:?})"),
            );
            assert_eq!(r.status, 405, "{other:?} {path}");
        }
    }
}

#[test]
fn bodies_that_are_not_json_or_too_large_are_400_or_413() {
    let bad: [(&str, Vec<u8>); 5] = [
        ("application/json", br#"{"email": "#.to_vec()),
        ("application/json", b"\xff\xfe{}".to_vec()),
        ("application/json", br#"["not", "an", "object"]"#.to_vec()),
        ("application/json", vec![b'x'; MAX_BODY_BYTES + 1]),
        (
            "application/x-www-form-urlencoded",
            b"email=%zz%E0%A4&return_to=%".to_vec(),
        ),
    ];
    for (method, path, reads_body) in ROUTES.iter().filter(|r| r.2) {
        assert!(reads_body);
        for (content_type, bytes) in &bad {
            let w = world();
            let before = w.state();
            let r = w.send(*method, path, None, Some((content_type, bytes.clone())));
            let what = format!(
                "{method:?} {path} with {content_type} {:?}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(30)])
            );
            assert_refused(&w, &r, &before, &what);
        }
    }
}

#[test]
fn broken_percent_encoding_in_the_query_is_refused() {
    for (method, path, query) in [
        (Method::Get, "/auth/login", "provider=%zz"),
        (
            Method::Get,
            "/auth/login",
            "provider=dev&return_to=%E0%A4%A",
        ),
        (
            Method::Get,
            "/auth/login",
            "provider=dev&return_to=%2F%2Fevil.com",
        ),
        (Method::Get, "/auth/callback/dev", "code=%zz&state=%"),
        (Method::Delete, "/auth/identities", "issuer=%zz&sub=%"),
        (Method::Get, "/admin/users", "limit=%31%30%30%30"),
        (Method::Get, "/admin/users", "cursor=%ZZ%"),
        (Method::Get, "/admin/users/{user}/events", "cursor=%E0%A4%A"),
        (
            Method::Delete,
            "/admin/users/{user}/identities",
            "issuer=%&sub=%zz",
        ),
    ] {
        let w = world();
        let before = w.state();
        let r = w.send(method, path, Some(query), None);
        assert_refused(&w, &r, &before, &format!("{method:?} {path}?{query}"));
    }
}
