//! The `passage` callback through [`crate::app::handle`]. Natively there is no RS256 (the
//! Worker verifies it with WebCrypto; the integration tests do that with real RSA keys), so
//! this platform stands in a keyed digest for RS256 signatures: `sha256(n || "." || input)`.
//! Everything around the signature — key selection by `kid`, JWKS caching and refetch, the
//! algorithm allow-list, claims, linking, `return_to`, no transaction — is the real code.

use crate::app::handle;
use crate::config::Config;
use crate::crypto::{b64url, random_bytes, sha256};
use crate::http::{Method, Request, Response};
use crate::jwt::jwk::PublicJwk;
use crate::jwt::keys::SigningKey;
use crate::jwt::native::NativeSignatures;
use crate::jwt::Alg;
use crate::platform::{FetchError, Inbound, Signatures};
use crate::testing::{block_on, test_env, TestPlatform, WithSignatures};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::rc::Rc;

const APP: &str = "app-123";
const JWKS: &str = "https://passage.test/v1/apps/app-123/.well-known/jwks.json";
const ISS: &str = "https://auth.passage.id/v1/apps/app-123";
const PUBLIC_URL: &str = "http://127.0.0.1:8787";

/// Native signatures, with the keyed digest standing in for RS256.
struct FakeRs256;

fn fake_rs256(n: &str, input: &[u8]) -> Vec<u8> {
    let mut data = n.as_bytes().to_vec();
    data.push(b'.');
    data.extend_from_slice(input);
    // As long as a real one: the modulus' length (shorter ones are refused unverified).
    let modulus = crate::crypto::b64url_decode(n).unwrap_or_default();
    let len = modulus.iter().skip_while(|b| **b == 0).count();
    sha256(&data).iter().cycle().take(len).copied().collect()
}

impl Signatures for FakeRs256 {
    async fn verify(
        &self,
        key: &PublicJwk,
        alg: Alg,
        msg: &[u8],
        sig: &[u8],
    ) -> Result<bool, String> {
        match alg {
            Alg::Rs256 => Ok(fake_rs256(key.n.as_deref().unwrap_or(""), msg) == sig),
            _ => NativeSignatures.verify(key, alg, msg, sig).await,
        }
    }
    async fn sign(&self, key: &SigningKey, msg: &[u8]) -> Result<Vec<u8>, String> {
        NativeSignatures.sign(key, msg).await
    }
}

#[derive(Clone)]
struct Key {
    kid: String,
    n: String,
}

impl Key {
    fn new() -> Key {
        Key {
            kid: b64url(&random_bytes::<8>()),
            n: b64url(&[random_bytes::<32>(); 8].concat()),
        }
    }
    fn jwk(&self) -> Value {
        json!({"kty": "RSA", "kid": self.kid, "alg": "RS256", "use": "sig", "n": self.n, "e": "AQAB"})
    }
}

#[derive(Default)]
struct FakePassage {
    keys: Vec<Key>,
    down: bool,
}

struct H {
    cfg: Config,
    p: WithSignatures<FakeRs256>,
    fake: Rc<RefCell<FakePassage>>,
}

fn b64_json(v: &Value) -> String {
    b64url(v.to_string().as_bytes())
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
        let mut env = test_env();
        env.insert(
            "PROVIDERS".into(),
            json!({"psg": {"kind": "passage", "app_id": APP, "jwks_url": JWKS, "display_name": "Passkeys"}}).to_string(),
        );
        let fake = Rc::new(RefCell::new(FakePassage {
            keys: vec![Key::new()],
            down: false,
        }));
        let served = fake.clone();
        let p = TestPlatform::new(move |req| {
            let f = served.borrow();
            if f.down {
                return Err(FetchError::Timeout);
            }
            assert_eq!(req.url, JWKS);
            let keys: Vec<Value> = f.keys.iter().map(Key::jwk).collect();
            Ok(Inbound {
                status: 200,
                body: json!({"keys": keys}).to_string().into_bytes(),
            })
        });
        H {
            cfg: Config::from_env(&env).unwrap(),
            p: WithSignatures { p, sig: FakeRs256 },
            fake,
        }
    }

    fn now(&self) -> i64 {
        self.p.p.clock.get()
    }

    fn claims(&self) -> Value {
        json!({"iss": ISS, "aud": [APP], "sub": "psg-user-1", "exp": self.now() + 3600, "iat": self.now()})
    }

    fn token(&self, claims: &Value, header: Value, key: &Key) -> String {
        let mut h = json!({"alg": "RS256", "typ": "JWT", "kid": key.kid});
        for (k, v) in header.as_object().unwrap() {
            h[k] = v.clone();
        }
        let input = format!("{}.{}", b64_json(&h), b64_json(claims));
        format!("{input}.{}", b64url(&fake_rs256(&key.n, input.as_bytes())))
    }

    fn good(&self) -> String {
        let key = self.fake.borrow().keys[0].clone();
        self.token(&self.claims(), json!({}), &key)
    }

    fn callback(&self, query: &str, token: Option<&str>, cookie: bool) -> Response {
        let mut req = Request::new(
            Method::Get,
            &format!("{PUBLIC_URL}/auth/callback/psg{query}"),
        );
        match (token, cookie) {
            (Some(t), true) => {
                req = req.with_header("cookie", &format!("other=1; psg_auth_token={t}"))
            }
            (Some(t), false) => req = req.with_header("authorization", &format!("Bearer {t}")),
            (None, _) => {}
        }
        block_on(handle(Ok(&self.cfg), &self.p, req))
    }

    fn jwks_fetches(&self) -> usize {
        self.p.p.http.calls.borrow().len()
    }

    fn assert_refused(&self, r: &Response, status: u16, reason: &str) {
        assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
        assert!(set_cookie(r, "gh_session").is_none());
        assert_eq!(self.p.p.users.user_count(), 0, "no user");
        assert!(
            !self.p.p.kv.keys().iter().any(|k| k.starts_with("s:")),
            "no session"
        );
        assert!(
            self.p.p.logs.borrow().iter().any(|l| l.contains(reason)),
            "log lacks {reason:?}: {:?}",
            self.p.p.logs.borrow()
        );
    }
}

#[test]
fn cookie_or_bearer_signs_in_without_a_transaction_and_links_by_sub() {
    let h = H::new();
    let r = h.callback("?return_to=%2Fapp", Some(&h.good()), true);
    assert_eq!(r.status, 302, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("location"), Some("/app"));
    assert!(set_cookie(&r, "gh_session").is_some());
    assert_eq!(h.p.p.users.user_count(), 1);
    let r = h.callback("", Some(&h.good()), false);
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("/"));
    assert_eq!(h.p.p.users.user_count(), 1, "the same sub is the same user");
    assert_eq!(h.jwks_fetches(), 1, "the JWKS is cached");
    assert!(
        !h.p.p.kv.keys().iter().any(|k| k.starts_with("t:")),
        "no transaction"
    );
}

#[test]
fn login_route_sends_the_browser_to_the_callback() {
    let h = H::new();
    let r = block_on(handle(
        Ok(&h.cfg),
        &h.p,
        Request::new(
            Method::Get,
            &format!("{PUBLIC_URL}/auth/login?provider=psg&return_to=%2Fx"),
        ),
    ));
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some("http://127.0.0.1:8787/auth/callback/psg?return_to=%2Fx")
    );
    assert!(set_cookie(&r, "gh_txn").is_none());
    assert_eq!(h.p.p.kv.keys(), Vec::<String>::new());
}

#[test]
fn missing_token_is_401() {
    let h = H::new();
    let r = h.callback("", None, true);
    assert_eq!(r.status, 401);
    assert_eq!(json_body(&r)["error"], "unauthorized");
    assert!(json_body(&r)["message"]
        .as_str()
        .unwrap()
        .contains("Passkeys"));
}

#[test]
fn bad_return_to_is_refused_before_verifying() {
    let h = H::new();
    let r = h.callback("?return_to=%2F%2Fevil.com", Some(&h.good()), true);
    assert_eq!(r.status, 400);
    assert_eq!(h.jwks_fetches(), 0);
    assert_eq!(h.p.p.users.user_count(), 0);
}

#[test]
fn bad_tokens_are_refused() {
    let h = H::new();
    let key = h.fake.borrow().keys[0].clone();
    let forger = Key {
        kid: key.kid.clone(),
        ..Key::new()
    };
    let now = h.now();
    let with = |k: &str, v: Value| {
        let mut c = h.claims();
        c[k] = v;
        c
    };
    let cases: Vec<(String, &str)> = vec![
        (h.token(&h.claims(), json!({}), &forger), "bad signature"),
        (
            h.token(&with("aud", json!(["other-app"])), json!({}), &key),
            "wrong audience",
        ),
        (
            h.token(&with("iss", json!("https://evil.example")), json!({}), &key),
            "wrong issuer",
        ),
        (
            h.token(&with("exp", json!(now - 3600)), json!({}), &key),
            "token expired",
        ),
        (
            h.token(&with("sub", json!("")), json!({}), &key),
            "invalid claim sub",
        ),
        (
            format!(
                "{}.{}.",
                b64_json(&json!({"alg": "none"})),
                b64_json(&h.claims())
            ),
            "algorithm not allowed: none",
        ),
        (
            h.token(&h.claims(), json!({"alg": "EdDSA"}), &key),
            "Passage tokens are RS256",
        ),
        (
            h.token(&h.claims(), json!({"typ": "at+jwt"}), &key),
            "wrong token type",
        ),
        (
            h.token(
                &h.claims(),
                json!({"jku": "https://evil.example/jwks"}),
                &key,
            ),
            "key URL",
        ),
        ("not-a-jwt".into(), "malformed"),
    ];
    for (token, reason) in cases {
        let r = h.callback("", Some(&token), true);
        h.assert_refused(&r, 400, reason);
        assert_eq!(json_body(&r)["error"], "provider_error");
    }
}

#[test]
fn rotated_key_is_found_by_refetching_at_most_once_a_minute() {
    let h = H::new();
    assert_eq!(h.callback("", Some(&h.good()), true).status, 302);
    assert_eq!(h.jwks_fetches(), 1);
    let new = Key::new();
    h.fake.borrow_mut().keys.push(new.clone());
    let r = h.callback("", Some(&h.token(&h.claims(), json!({}), &new)), true);
    assert_eq!(r.status, 302, "unknown kid → refetch → found");
    assert_eq!(h.jwks_fetches(), 2);

    let unknown = Key::new();
    let r = h.callback("", Some(&h.token(&h.claims(), json!({}), &unknown)), true);
    assert_eq!(r.status, 400);
    assert_eq!(
        h.jwks_fetches(),
        2,
        "no second forced refetch within the minute"
    );
}

#[test]
fn unreachable_jwks_is_provider_unavailable() {
    let h = H::new();
    h.fake.borrow_mut().down = true;
    let r = h.callback("", Some(&h.good()), true);
    h.assert_refused(&r, 502, "timed out");
    assert_eq!(json_body(&r)["error"], "provider_unavailable");
}

#[test]
fn jwks_down_on_the_refetch_for_a_new_kid_is_provider_unavailable() {
    let h = H::new();
    assert_eq!(h.callback("", Some(&h.good()), true).status, 302);
    // The key rotated at Passage, and Passage went down before Gatehouse refetched.
    let new = Key::new();
    let token = h.token(&h.claims(), json!({}), &new);
    h.fake.borrow_mut().down = true;
    h.p.p.clock.set(h.now() + 61);
    let users = h.p.p.users.user_count();
    let r = h.callback("", Some(&token), true);
    assert_eq!(r.status, 502, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(json_body(&r)["error"], "provider_unavailable");
    assert_eq!(h.p.p.users.user_count(), users, "nothing written");
}

#[test]
fn a_navigation_from_another_origin_cannot_sign_in_with_the_cookie() {
    let h = H::new();
    let token = h.good();
    let req = |site: &str, bearer: bool| {
        let r = Request::new(Method::Get, &format!("{PUBLIC_URL}/auth/callback/psg"))
            .with_header("sec-fetch-site", site);
        if bearer {
            r.with_header("authorization", &format!("Bearer {token}"))
        } else {
            r.with_header("cookie", &format!("psg_auth_token={token}"))
        }
    };
    // Cross-site, and same-site too: a sibling subdomain can both plant the cookie and start
    // the navigation.
    for site in ["cross-site", "same-site"] {
        let r = block_on(handle(Ok(&h.cfg), &h.p, req(site, false)));
        assert_eq!(
            r.status,
            403,
            "{site}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    assert_eq!(h.p.p.users.user_count(), 0);
    assert_eq!(h.jwks_fetches(), 0, "refused before anything is verified");
    for (site, bearer) in [
        ("same-origin", false),
        ("none", false),
        ("cross-site", true),
        ("same-site", true),
    ] {
        let r = block_on(handle(Ok(&h.cfg), &h.p, req(site, bearer)));
        assert_eq!(r.status, 302, "{site} bearer={bearer}");
    }
}

/// The unit tests of the Passage kind's own functions.
mod unit {
    use super::super::*;
    use crate::http::Method;
    use serde_json::json;

    #[test]
    fn defaults_follow_the_app_id() {
        let c =
            PassageConfig::parse("psg", &json!({"kind": "passage", "app_id": "abc123"})).unwrap();
        assert_eq!(
            c.jwks_url,
            "https://auth.passage.id/v1/apps/abc123/.well-known/jwks.json"
        );
        assert_eq!(c.issuer, "https://auth.passage.id/v1/apps/abc123");
        assert_eq!(c.audience, "abc123");
        assert_eq!(c.cookie, "psg_auth_token");
        assert_eq!(c.display_name, "psg");
        assert_eq!(c.identity_issuer(), "passage:abc123");
        let o = PassageConfig::parse(
            "psg",
            &json!({"kind": "passage", "app_id": "a", "jwks_url": "http://127.0.0.1:1/jwks", "issuer": "https://i", "audience": "https://app", "cookie": "tok", "display_name": "Passkeys"}),
        )
        .unwrap();
        assert_eq!(
            (
                o.jwks_url.as_str(),
                o.issuer.as_str(),
                o.audience.as_str(),
                o.cookie.as_str(),
                o.display_name.as_str()
            ),
            (
                "http://127.0.0.1:1/jwks",
                "https://i",
                "https://app",
                "tok",
                "Passkeys"
            )
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        for v in [
            json!({"kind": "passage"}),
            json!({"kind": "passage", "app_id": "a/b"}),
            json!({"kind": "passage", "app_id": "a", "jwks_url": "not a url"}),
            json!({"kind": "passage", "app_id": "a", "cookie": "a b;c"}),
            json!({"kind": "passage", "app_id": "a", "secret": "x"}),
        ] {
            assert!(PassageConfig::parse("psg", &v).is_err(), "{v}");
        }
    }

    #[test]
    fn token_comes_from_bearer_or_cookie() {
        let base = || Request::new(Method::Get, "http://h/auth/callback/psg");
        assert_eq!(presented_token(&base(), "psg_auth_token"), None);
        let c = base().with_header("cookie", "a=1; psg_auth_token=from-cookie");
        assert_eq!(
            presented_token(&c, "psg_auth_token"),
            Some(("from-cookie".into(), Source::Cookie))
        );
        assert_eq!(presented_token(&c, "other"), None);
        let b = c.clone().with_header("authorization", "Bearer from-header");
        assert_eq!(
            presented_token(&b, "psg_auth_token"),
            Some(("from-header".into(), Source::Bearer))
        );
        let basic = base().with_header("authorization", "Basic xyz");
        assert_eq!(presented_token(&basic, "psg_auth_token"), None);
        // Another scheme (or an empty bearer) falls back to the cookie, and says so.
        let basic_and_cookie = c.clone().with_header("authorization", "Basic xyz");
        assert_eq!(
            presented_token(&basic_and_cookie, "psg_auth_token"),
            Some(("from-cookie".into(), Source::Cookie))
        );
    }
}
