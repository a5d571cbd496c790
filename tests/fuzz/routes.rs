//! Every route through `app::handle` (and proxy mode's decision) with malformed input: any
//! method, path segments, query, headers (cookies, bearer tokens, origins, content types)
//! and body — from a client that is signed in, an admin, or nobody. The stores never fail
//! here, so no answer may be a 500; a provider answering junk may make a 502.

use crate::gen;
use gatehouse::app::proxy::{decide, is_gatehouse_header, Decision, HeaderChange};
use gatehouse::app::{handle, Ctx};
use gatehouse::config::Config;
use gatehouse::http::{Method, Request, MAX_BODY_BYTES};
use gatehouse::platform::Inbound;
use gatehouse::testing::{block_on, sign_in_directly, test_env, SignedIn, TestPlatform};
use proptest::prelude::*;
use serde_json::json;

const PUBLIC_URL: &str = "http://127.0.0.1:8787";
const ADMIN_KEY: &str = "admin-key-0123456789abcdef-xyz";

fn config() -> Config {
    let mut env = test_env();
    env.insert("PROVIDERS".into(), json!({
        "dev": {"kind": "oidc", "issuer": "http://127.0.0.1:9000", "client_id": "gatehouse"},
        "mail": {"kind": "stytch", "project_id": "project-test-1", "api_url": "http://127.0.0.1:9200"},
        "xw": {"kind": "xwms", "api_url": "http://127.0.0.1:9300/api", "client_id": "c", "domain": "d.example"},
    }).to_string());
    env.insert("PROVIDER_MAIL_SECRET".into(), "stytch-secret".into());
    env.insert("PROVIDER_XW_SECRET".into(), "xwms-secret".into());
    env.insert("ADMIN_API_KEY".into(), ADMIN_KEY.into());
    env.insert(
        "ALLOWED_RETURN_ORIGINS".into(),
        "https://app.example.com".into(),
    );
    env.insert("ORIGIN_URL".into(), "http://127.0.0.1:3000".into());
    Config::from_env(&env).unwrap()
}

/// A placeholder the generators use for a value known only once the person exists.
const USER: &str = "{user}";
const SID: &str = "{sid}";

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => proptest::sample::select(&[
            "auth", "login", "callback", "dev", "mail", "xw", "me", "logout", "token", "sessions",
            "identities", "admin", "users", "activate", "deactivate", "events", "magic-links",
            "magic-link", ".well-known", "jwks.json", "healthz", "", USER, SID, "..", "%2F",
            "%00", "%zz", "nope",
        ][..]).prop_map(String::from),
        1 => gen::text(),
    ]
}

/// Gatehouse's routes, each with its method.
/// Gatehouse's routes, each with its method and the query parameters it reads.
const ROUTES: &[(Method, &str, &[&str])] = &[
    (
        Method::Get,
        "/auth/login",
        &["provider", "return_to", "link", "action"],
    ),
    (
        Method::Get,
        "/auth/callback/dev",
        &["code", "state", "error"],
    ),
    (
        Method::Get,
        "/auth/callback/mail",
        &["token", "gh_state", "gh_invite", "stytch_token_type"],
    ),
    (
        Method::Post,
        "/auth/callback/mail",
        &["token", "gh_state", "gh_invite"],
    ),
    (Method::Get, "/auth/callback/xw", &["token", "gh_state"]),
    (Method::Post, "/auth/magic-link", &["return_to"]),
    (Method::Post, "/auth/logout", &["return_to"]),
    (Method::Get, "/auth/me", &[]),
    (Method::Post, "/auth/token", &[]),
    (Method::Options, "/auth/token", &[]),
    (Method::Get, "/auth/sessions", &[]),
    (Method::Delete, "/auth/sessions/{sid}", &[]),
    (Method::Get, "/auth/identities", &[]),
    (Method::Delete, "/auth/identities", &["issuer", "sub"]),
    (Method::Get, "/admin/users", &["limit", "cursor", "email"]),
    (Method::Post, "/admin/users", &[]),
    (Method::Get, "/admin/users/{user}", &[]),
    (Method::Patch, "/admin/users/{user}", &[]),
    (Method::Delete, "/admin/users/{user}", &[]),
    (Method::Post, "/admin/users/{user}/activate", &[]),
    (Method::Post, "/admin/users/{user}/deactivate", &[]),
    (Method::Get, "/admin/users/{user}/sessions", &[]),
    (Method::Delete, "/admin/users/{user}/sessions", &[]),
    (Method::Delete, "/admin/users/{user}/sessions/{sid}", &[]),
    (
        Method::Delete,
        "/admin/users/{user}/identities",
        &["issuer", "sub"],
    ),
    (
        Method::Get,
        "/admin/users/{user}/events",
        &["limit", "cursor"],
    ),
    (Method::Post, "/admin/magic-links", &[]),
    (Method::Get, "/", &[]),
    (Method::Get, "/.well-known/jwks.json", &[]),
    (Method::Get, "/healthz", &[]),
    (Method::Get, "/app/page", &[]),
];

/// Query parameters any route reads.
const PARAMS: &[&str] = &[
    "provider",
    "return_to",
    "link",
    "action",
    "issuer",
    "sub",
    "limit",
    "cursor",
    "email",
    "gh_invite",
    "gh_state",
    "state",
    "code",
    "error",
    "token",
    "stytch_token_type",
];

/// A route as it is meant to be called (with its own parameters), or any method on any path.
fn route() -> impl Strategy<Value = (Method, String, &'static [&'static str])> {
    prop_oneof![
        3 => proptest::sample::select(ROUTES).prop_map(|(m, p, q)| (m, p.to_string(), q)),
        1 => (method(), proptest::collection::vec(segment(), 1..6))
            .prop_map(|(m, s)| (m, format!("/{}", s.join("/")), PARAMS)),
    ]
}

fn query(own: &'static [&'static str]) -> impl Strategy<Value = Option<String>> {
    let own = if own.is_empty() { PARAMS } else { own };
    let key = prop_oneof![
        3 => proptest::sample::select(own),
        1 => proptest::sample::select(PARAMS),
    ];
    let value = prop_oneof![
        proptest::sample::select(
            &[
                "dev",
                "mail",
                "xw",
                "1",
                "register",
                "login",
                "http://127.0.0.1:9000",
                "s1",
                "0",
                "101",
                "//evil.com",
                "/ok",
                "%",
                "%zz",
                "a%40b.c",
                "magic_links",
                "x",
                "-1",
                "",
            ][..]
        )
        .prop_map(String::from),
        gen::text().prop_map(|t| url::form_urlencoded::byte_serialize(t.as_bytes()).collect()),
    ];
    let pairs = proptest::collection::vec((key, value), 0..5).prop_map(|kv| {
        kv.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    });
    prop_oneof![1 => Just(None), 4 => pairs.prop_map(Some), 1 => gen::text().prop_map(Some)]
}

/// Credentials: the person's own, someone's forged, or none.
#[derive(Debug, Clone, Copy)]
enum Creds {
    None,
    SessionCookie,
    AccessCookie,
    BothCookies,
    Bearer,
    AdminKey,
    Junk,
}

fn creds() -> impl Strategy<Value = Creds> {
    proptest::sample::select(
        &[
            Creds::None,
            Creds::SessionCookie,
            Creds::AccessCookie,
            Creds::BothCookies,
            Creds::BothCookies,
            Creds::Bearer,
            Creds::AdminKey,
            Creds::Junk,
        ][..],
    )
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    let header = (
        proptest::sample::select(
            &[
                "origin",
                "sec-fetch-site",
                "content-type",
                "accept",
                "cookie",
                "authorization",
                "x-gatehouse-user",
                "cf-connecting-ip",
                "user-agent",
                "referer",
            ][..],
        ),
        prop_oneof![
            proptest::sample::select(
                &[
                    PUBLIC_URL,
                    "https://evil.example",
                    "https://app.example.com",
                    "null",
                    "same-origin",
                    "cross-site",
                    "none",
                    "application/json",
                    "text/html",
                    "application/x-www-form-urlencoded",
                    "Bearer ",
                    "Basic x",
                    "gh_session=;",
                    "2001:db8::1",
                    "198.51.100.7",
                ][..]
            )
            .prop_map(String::from),
            gen::text(),
        ],
    );
    proptest::collection::vec(header.prop_map(|(k, v)| (k.to_string(), v)), 0..5)
}

fn method() -> impl Strategy<Value = Method> {
    proptest::sample::select(
        &[
            Method::Get,
            Method::Head,
            Method::Post,
            Method::Put,
            Method::Patch,
            Method::Delete,
            Method::Options,
            Method::Other,
        ][..],
    )
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => gen::body_bytes(),
        2 => gen::object().prop_map(|m| serde_json::Value::Object(m).to_string().into_bytes()),
        1 => Just(vec![b'{'; MAX_BODY_BYTES + 1]),
    ]
}

fn build(
    person: &SignedIn,
    m: Method,
    path: &str,
    q: Option<&str>,
    creds: Creds,
    hs: &[(String, String)],
    body: Vec<u8>,
) -> Request {
    let fill = |s: &str| {
        s.replace(USER, person.user_id.as_str())
            .replace(SID, person.sid.as_str())
    };
    let mut url = url::Url::parse(PUBLIC_URL).unwrap();
    url.set_path(&fill(path));
    url.set_query(q.map(fill).as_deref());
    let mut headers: Vec<(String, String)> = hs.to_vec();
    let cookie = |v: String| ("cookie".to_string(), v);
    match creds {
        Creds::None => {}
        Creds::SessionCookie => headers.push(cookie(format!("gh_session={}", person.session))),
        Creds::AccessCookie => headers.push(cookie(format!("gh_access={}", person.access))),
        Creds::BothCookies => headers.push(cookie(format!(
            "gh_session={}; gh_access={}",
            person.session, person.access
        ))),
        Creds::Bearer => {
            headers.push(("authorization".into(), format!("Bearer {}", person.access)))
        }
        Creds::AdminKey => headers.push(("authorization".into(), format!("Bearer {ADMIN_KEY}"))),
        Creds::Junk => headers.push(cookie(format!(
            "gh_session={0}x; gh_access={0}",
            person.sid.as_str()
        ))),
    }
    Request {
        method: m,
        url,
        headers,
        body,
    }
}

proptest! {
    /// Any request to any route: no panic, no 500; a 5xx only from a provider (502).
    #[test]
    fn fuzz_routes(
        (m, path, creds, q) in route().prop_flat_map(|(m, path, params)| {
            // The admin API mostly with its key, so that its handlers are reached.
            let admin = path.starts_with("/admin");
            let c = prop_oneof![(if admin { 3 } else { 0 }) => Just(Creds::AdminKey), 2 => creds()];
            (Just(m), Just(path), c, query(params))
        }),
        hs in headers(), body in body(),
        provider_answer in (prop_oneof![Just(200u16), 400u16..600], gen::json()),
    ) {
        let cfg = config();
        let (status, answer) = provider_answer;
        let p = TestPlatform::new(move |_| Ok(Inbound { status, body: answer.to_string().into_bytes() }));
        let person = sign_in_directly(&cfg, &p);
        let req = build(&person, m, &path, q.as_deref(), creds, &hs, body);
        let shown = format!("{:?} {} {:?}", req.method, req.url, req.headers);
        let r = block_on(handle(Ok(&cfg), &p, req.clone()));
        prop_assert!((200..600).contains(&r.status), "{}: {}", shown, r.status);
        prop_assert!(r.status < 500 || r.status == 502, "{}: {} {}", shown, r.status, String::from_utf8_lossy(&r.body));
        if r.status >= 400 {
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            let html = r.header("content-type").is_some_and(|c| c.starts_with("text/html"));
            prop_assert!(html || v["error"].is_string(), "{}: {} {}", shown, r.status, String::from_utf8_lossy(&r.body));
        }

        // Proxy mode decides on the same request: no internal error; what it forwards names
        // the caller in Gatehouse's own headers only.
        let ctx = Ctx { cfg: &cfg, p: &p };
        match block_on(decide(&ctx, &req)) {
            Ok(Decision::Forward { changes, .. }) => {
                let mut headers = req.headers.clone();
                HeaderChange::apply_all(&changes, &mut headers);
                const OURS: [&str; 5] = ["x-gatehouse-user", "x-gatehouse-email", "x-gatehouse-email-verified", "x-gatehouse-roles", "x-gatehouse-jwt"];
                let foreign = headers.iter().find(|(k, _)| is_gatehouse_header(k) && !OURS.contains(&k.as_str()));
                prop_assert!(foreign.is_none(), "{}: {:?}", shown, headers);
                let ours: Vec<&String> = headers.iter().map(|(k, _)| k).filter(|k| k.starts_with("x-gatehouse-")).collect();
                let mut unique = ours.clone();
                unique.dedup();
                prop_assert_eq!(ours.len(), unique.len(), "{}: {:?}", shown, headers);
                let user = headers.iter().find(|(k, _)| k == "x-gatehouse-user").map(|(_, v)| v.as_str());
                prop_assert_eq!(user, Some(person.user_id.as_str()));
            }
            Ok(Decision::Respond(r)) => prop_assert!(r.status < 500, "{}: {}", shown, r.status),
            Err(e) => prop_assert!(e.status() < 500, "{}: {:?}", shown, e),
        }
    }
}
