//! Provider answers: the vendor parsers on any JSON, and a whole OIDC or OAuth2 sign-in
//! through `app::handle` with one of the provider's answers (discovery, JWKS, token,
//! userinfo) replaced by anything: a wrong status, a body that is not JSON, JSON of any
//! shape, or the right answer with fields changed — including a correctly signed ID token
//! with claims of any shape.

use crate::gen;
use gatehouse::app::handle;
use gatehouse::config::Config;
use gatehouse::crypto::{b64url, Secret};
use gatehouse::error::AppError;
use gatehouse::http::{Method, Request, Response};
use gatehouse::jwt::keys::SigningKey;
use gatehouse::jwt::native::NativeSignatures;
use gatehouse::platform::{FetchError, Inbound, Outbound};
use gatehouse::providers::{loginradius, stytch, xwms};
use gatehouse::testing::{block_on, test_env, TestPlatform, TEST_KEY_1};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use std::rc::Rc;

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![3 => Just(200u16), 1 => 100u16..600]
}

/// A provider error must be a provider error (4xx-class or 502), never ours.
fn is_provider_side(e: &AppError) -> bool {
    matches!(
        e,
        AppError::Provider { .. } | AppError::ProviderUnavailable { .. } | AppError::RateLimited
    )
}

/// Answers shaped like the vendors' (so the parsers get past the first field), or any JSON.
fn vendor_body() -> impl Strategy<Value = Value> {
    let word = |w: &'static [&'static str]| {
        prop_oneof![
            proptest::sample::select(w).prop_map(Value::from),
            gen::json()
        ]
    };
    prop_oneof![
        1 => gen::json(),
        1 => (word(&["success", "error"]), gen::json(), gen::json()).prop_map(|(status, data, message)| {
            json!({"status": status, "data": data, "message": message})
        }),
        1 => (word(&["user-1"]), gen::object(), gen::json(), word(&["email-1"])).prop_map(|(id, mut user, emails, method)| {
            if user.len() % 2 == 0 {
                user.insert("user_id".into(), id.clone());
                user.insert("emails".into(), emails);
            }
            json!({"user_id": id, "user": user, "method_id": method, "session_token": "st"})
        }),
        1 => (word(&["uid-1"]), gen::json(), gen::json(), gen::object()).prop_map(|(uid, email, code, mut rest)| {
            rest.insert("Uid".into(), uid);
            rest.insert("Email".into(), json!([{"Type": "Primary", "Value": email}]));
            if code.is_number() {
                rest.insert("ErrorCode".into(), code);
            }
            Value::Object(rest)
        }),
    ]
}

proptest! {
    /// XWMS, Stytch and LoginRadius answers of any shape: no panic; a refusal is a provider
    /// error; an accepted profile has a subject.
    #[test]
    fn fuzz_vendor_answers(body in vendor_body(), status in status()) {
        match xwms::login_url("xw", &body) {
            Ok(u) => prop_assert!(u.starts_with("http://") || u.starts_with("https://")),
            Err(e) => prop_assert!(is_provider_side(&e), "{:?}", e),
        }
        match xwms::profile_from_verify("xw", "xwms:x", status, &body) {
            Ok(p) => prop_assert!(!p.sub.trim().is_empty()),
            Err(e) => prop_assert!(is_provider_side(&e), "{:?}", e),
        }
        let c = stytch::StytchConfig::parse("mail", &json!({"kind": "stytch", "project_id": "project-test-1"}), Some(Secret::new("s"))).unwrap();
        match stytch::profile_from_authenticate(&c, &body) {
            Ok(p) => prop_assert!(!p.sub.is_empty()),
            Err(e) => prop_assert!(is_provider_side(&e), "{:?}", e),
        }
        let e = stytch::stytch_error("mail", "magic_links/authenticate", status, &body);
        prop_assert!(is_provider_side(&e) || matches!(e, AppError::BadRequest(_)), "{:?}", e);
        match loginradius::profile_from_account("lr", "loginradius:app", status, &body, "tok") {
            Ok(p) => prop_assert!(!p.sub.is_empty()),
            Err(e) => prop_assert!(is_provider_side(&e), "{:?}", e),
        }
        if let Err(e) = loginradius::check_answer("lr", "profile", status, &body) {
            prop_assert!(is_provider_side(&e), "{:?}", e);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Whole sign-ins with one answer replaced.

const PUBLIC_URL: &str = "http://127.0.0.1:8787";
const ISSUER: &str = "http://127.0.0.1:9000";
const GH_TOKEN: &str = "https://github.com/login/oauth/access_token";
const GH_USER: &str = "https://api.github.com/user";

/// Which answer is replaced.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Endpoint {
    Discovery,
    Jwks,
    Token,
    Userinfo,
}

/// What replaces it.
#[derive(Debug, Clone)]
enum Answer {
    /// This status and these bytes.
    Raw(u16, Vec<u8>),
    /// The right answer with these fields set over it.
    Merged(Map<String, Value>),
    /// (Token endpoint of OIDC) an ID token signed with the provider's key, with this header
    /// and these claims over the right ones.
    IdToken(Map<String, Value>, Map<String, Value>),
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        2 => (status(), gen::body_bytes()).prop_map(|(s, b)| Answer::Raw(s, b)),
        2 => gen::object().prop_map(Answer::Merged),
        3 => (gen::object(), gen::object()).prop_map(|(h, c)| Answer::IdToken(h, c)),
    ]
}

struct Idp {
    key: SigningKey,
    target: Endpoint,
    answer: Answer,
    nonce: std::cell::RefCell<String>,
}

fn reply(status: u16, v: Value) -> Result<Inbound, FetchError> {
    Ok(Inbound {
        status,
        body: v.to_string().into_bytes(),
    })
}

fn merged(v: Value, over: &Map<String, Value>) -> Value {
    let mut m = v.as_object().cloned().unwrap_or_default();
    for (k, x) in over {
        m.insert(k.clone(), x.clone());
    }
    Value::Object(m)
}

impl Idp {
    fn id_token(&self, header: &Map<String, Value>, claims: &Map<String, Value>) -> String {
        let h = merged(
            json!({"alg": "EdDSA", "typ": "JWT", "kid": self.key.kid}),
            header,
        );
        let c = merged(
            json!({"iss": ISSUER, "aud": "gatehouse", "sub": "user-42", "exp": 1_700_000_600,
                   "iat": 1_700_000_000, "nonce": *self.nonce.borrow(), "email": "a@b.c"}),
            claims,
        );
        let input = format!(
            "{}.{}",
            b64url(h.to_string().as_bytes()),
            b64url(c.to_string().as_bytes())
        );
        let sig = NativeSignatures.sign_sync(&self.key, input.as_bytes());
        format!("{input}.{}", b64url(&sig))
    }

    fn right(&self, e: Endpoint, github: bool) -> Value {
        match (e, github) {
            (Endpoint::Discovery, _) => json!({
                "issuer": ISSUER, "authorization_endpoint": format!("{ISSUER}/authorize"),
                "token_endpoint": format!("{ISSUER}/token"), "jwks_uri": format!("{ISSUER}/jwks"),
                "userinfo_endpoint": format!("{ISSUER}/userinfo"),
            }),
            (Endpoint::Jwks, _) => json!({"keys": [self.key.public]}),
            (Endpoint::Token, false) => {
                json!({"id_token": self.id_token(&Map::new(), &Map::new()), "access_token": "at", "token_type": "Bearer"})
            }
            (Endpoint::Token, true) => json!({"access_token": "gho_x", "token_type": "bearer"}),
            (Endpoint::Userinfo, false) => {
                json!({"sub": "user-42", "email": "a@b.c", "name": "Ada"})
            }
            (Endpoint::Userinfo, true) => {
                json!({"id": 4711, "login": "ada", "email": "a@b.c", "avatar_url": "https://x/a.png"})
            }
        }
    }

    fn serve(&self, req: &Outbound) -> Result<Inbound, FetchError> {
        let (endpoint, github) = match req.url.as_str() {
            u if u.ends_with("/.well-known/openid-configuration") => (Endpoint::Discovery, false),
            u if u.ends_with("/jwks") => (Endpoint::Jwks, false),
            u if u.ends_with("/token") => (Endpoint::Token, false),
            u if u.ends_with("/userinfo") => (Endpoint::Userinfo, false),
            GH_TOKEN => (Endpoint::Token, true),
            GH_USER => (Endpoint::Userinfo, true),
            _ => return reply(404, json!({})),
        };
        if endpoint != self.target {
            return reply(200, self.right(endpoint, github));
        }
        match &self.answer {
            Answer::Raw(s, b) => Ok(Inbound {
                status: *s,
                body: b.clone(),
            }),
            Answer::Merged(m) => reply(200, merged(self.right(endpoint, github), m)),
            Answer::IdToken(h, c) if endpoint == Endpoint::Token && !github => reply(
                200,
                json!({"id_token": self.id_token(h, c), "access_token": "at"}),
            ),
            Answer::IdToken(_, c) => reply(200, Value::Object(c.clone())),
        }
    }
}

fn config() -> Config {
    let mut env = test_env();
    env.insert(
        "PROVIDERS".into(),
        json!({
            "dev": {"kind": "oidc", "issuer": ISSUER, "client_id": "gatehouse"},
            "gh": {"kind": "oauth2", "preset": "github", "client_id": "Iv1.x"},
        })
        .to_string(),
    );
    env.insert("PROVIDER_GH_SECRET".into(), "gh-secret".into());
    Config::from_env(&env).unwrap()
}

fn param(location: &str, name: &str) -> Option<String> {
    url::Url::parse(location)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn get(cfg: &Config, p: &TestPlatform, path: &str, cookie: Option<&str>) -> Response {
    let mut req = Request::new(Method::Get, &format!("{PUBLIC_URL}{path}"));
    if let Some(c) = cookie {
        req = req.with_header("cookie", c);
    }
    block_on(handle(Ok(cfg), p, req))
}

proptest! {
    /// A sign-in with one provider answer replaced by anything: never a 500 or a panic; a
    /// refusal is a 4xx or a 502 and signs nobody in; a success links the one identity.
    #[test]
    fn fuzz_provider_sign_in(github in any::<bool>(), target in proptest::sample::select(&[Endpoint::Discovery, Endpoint::Jwks, Endpoint::Token, Endpoint::Userinfo][..]), answer in answer()) {
        let cfg = config();
        let idp = Rc::new(Idp {
            key: SigningKey::from_private_jwk(&serde_json::from_str(TEST_KEY_1).unwrap()).unwrap(),
            target, answer, nonce: Default::default(),
        });
        let served = idp.clone();
        let p = TestPlatform::new(move |req| served.serve(req));
        let name = if github { "gh" } else { "dev" };
        let start = get(&cfg, &p, &format!("/auth/login?provider={name}"), None);
        prop_assert!(start.status != 500 && start.status < 600, "login: {} {}", start.status, String::from_utf8_lossy(&start.body));
        if start.status != 302 {
            prop_assert!((400..500).contains(&start.status) || start.status == 502);
            return Ok(());
        }
        let location = start.header("location").unwrap().to_string();
        *idp.nonce.borrow_mut() = param(&location, "nonce").unwrap_or_default();
        let cookie = start.headers_named("set-cookie").find(|c| c.starts_with("gh_txn=")).unwrap().split(';').next().unwrap().to_string();
        let state = param(&location, "state").unwrap();
        let back = get(&cfg, &p, &format!("/auth/callback/{name}?code=c1&state={state}"), Some(&cookie));
        let body = String::from_utf8_lossy(&back.body).to_string();
        match back.status {
            302 => {
                let ids = p.users.all_identities();
                prop_assert_eq!(ids.len(), 1);
                prop_assert!(!ids[0].sub.is_empty());
                prop_assert!(back.headers_named("set-cookie").any(|c| c.starts_with("gh_session=") && !c.starts_with("gh_session=;")));
            }
            s => {
                prop_assert!((400..500).contains(&s) || s == 502, "callback: {} {}", s, body);
                prop_assert_eq!(p.users.user_count(), 0);
                prop_assert!(!p.kv.keys().iter().any(|k| k.starts_with("s:")));
            }
        }
    }
}
