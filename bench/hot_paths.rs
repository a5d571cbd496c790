//! Native benchmarks of the request hot path's pure-Rust parts: access-token parsing and
//! verification (native Ed25519 backend — the Worker uses WebCrypto instead, see the load
//! benchmark), token issuing, session-id hashing, cookie and `return_to` checks; and a whole
//! OIDC login callback through `app::handle` with in-memory stores, which is Gatehouse's own
//! work on the callback (docs/budgets.md) without the runtime, storage or network around it.
//! Run with `cargo bench`.

use criterion::{criterion_group, criterion_main, Criterion};
use gatehouse::access::{self, AccessClaims};
use gatehouse::config::Config;
use gatehouse::cookies::CookieJar;
use gatehouse::crypto::b64url;
use gatehouse::http::{Method, Request};
use gatehouse::jwt::compact;
use gatehouse::jwt::keys::SigningKey;
use gatehouse::jwt::native::generate_ed25519_jwk;
use gatehouse::jwt::native::NativeSignatures;
use gatehouse::platform::{Inbound, Outbound};
use gatehouse::testing::{block_on, test_config};
use gatehouse::testing::{test_env, TestPlatform};
use serde_json::json;
use std::cell::RefCell;
use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

fn token(cfg: &Config) -> String {
    let claims = AccessClaims::new(
        cfg,
        &"usr_bench".into(),
        &"sid_bench".into(),
        Some("b@example.test".into()),
        Some("Bench".into()),
        1_700_000_000,
    );
    block_on(access::issue(cfg, &NativeSignatures, &claims)).unwrap()
}

fn benches(c: &mut Criterion) {
    let cfg = test_config();
    let t = token(&cfg);
    let now = 1_700_000_100;
    c.bench_function("access token: parse (structure + header rules)", |b| {
        b.iter(|| compact::parse(black_box(&t)).unwrap())
    });
    c.bench_function("access token: full verify (native Ed25519)", |b| {
        b.iter(|| block_on(access::verify(&cfg, &NativeSignatures, black_box(&t), now)).unwrap())
    });
    c.bench_function("access token: issue (native Ed25519)", |b| {
        b.iter(|| token(black_box(&cfg)))
    });
    c.bench_function("session id: sha256", |b| {
        b.iter(|| {
            gatehouse::sessions::sid_of(black_box("4WlSMP2Awh7UVPN1S44JYq8Ujx6D9JGUP_jQXuzbCB4"))
        })
    });
    let req = Request::new(Method::Get, "http://127.0.0.1:8787/auth/me").with_header(
        "cookie",
        &format!("a=1; b=2; gh_session=xyz; gh_access={t}; c=3"),
    );
    let jar = CookieJar { secure: false };
    c.bench_function("cookie: find the access cookie", |b| {
        b.iter(|| jar.get(black_box(&req), "gh_access"))
    });
    c.bench_function("return_to: validate a path", |b| {
        b.iter(|| {
            gatehouse::return_to::validate(&cfg, Some(black_box("/dash/board?x=1#top"))).unwrap()
        })
    });
}

/// The `dev` provider of `test_env()`, answered in memory. The ID token for the next callback
/// is made (and signed) before the clock starts, so only Gatehouse's work is timed.
struct Idp {
    key: SigningKey,
    id_token: RefCell<String>,
}

impl Idp {
    fn serve(&self, req: &Outbound) -> Result<Inbound, gatehouse::platform::FetchError> {
        let body = match req.url.as_str() {
            "http://127.0.0.1:9000/.well-known/openid-configuration" => json!({
                "issuer": "http://127.0.0.1:9000",
                "authorization_endpoint": "http://127.0.0.1:9000/authorize",
                "token_endpoint": "http://127.0.0.1:9000/token",
                "jwks_uri": "http://127.0.0.1:9000/jwks",
                "userinfo_endpoint": "http://127.0.0.1:9000/userinfo",
            }),
            "http://127.0.0.1:9000/jwks" => json!({"keys": [self.key.public]}),
            "http://127.0.0.1:9000/token" => {
                json!({"id_token": *self.id_token.borrow(), "access_token": "at", "token_type": "Bearer"})
            }
            "http://127.0.0.1:9000/userinfo" => {
                json!({"sub": "user-42", "email": "ada@example.com", "name": "Ada"})
            }
            _ => json!({}),
        };
        Ok(Inbound {
            status: 200,
            body: body.to_string().into_bytes(),
        })
    }

    fn prepare(&self, nonce: &str, now: i64) {
        let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": self.key.kid});
        let claims = json!({
            "iss": "http://127.0.0.1:9000", "aud": "gatehouse", "sub": "user-42", "exp": now + 3600,
            "iat": now, "nonce": nonce, "email": "ada@example.com", "name": "Ada",
        });
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let sig = NativeSignatures.sign_sync(&self.key, input.as_bytes());
        *self.id_token.borrow_mut() = format!("{input}.{}", b64url(&sig));
    }
}

fn query_param(url: &str, name: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

fn login_callback(c: &mut Criterion) {
    let cfg = Config::from_env(&test_env()).unwrap();
    let idp = Rc::new(Idp {
        key: SigningKey::from_private_jwk(&generate_ed25519_jwk()).unwrap(),
        id_token: RefCell::default(),
    });
    let served = idp.clone();
    let p = TestPlatform::new(move |req| served.serve(req));
    let base = "http://127.0.0.1:8787";
    let get = |url: &str, cookie: Option<&str>| {
        let mut req = Request::new(Method::Get, url);
        if let Some(c) = cookie {
            req = req.with_header("cookie", c);
        }
        block_on(gatehouse::app::handle(Ok(&cfg), &p, req))
    };
    c.bench_function(
        "login callback: code exchange, ID-token verify, userinfo, link, session (native, in-memory stores)",
        |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    // Untimed: the login redirect, and the provider's side of the callback.
                    let login = get(&format!("{base}/auth/login?provider=dev"), None);
                    let location = login.header("location").unwrap().to_string();
                    let txn = login
                        .headers_named("set-cookie")
                        .find(|c| c.starts_with("gh_txn="))
                        .map(|c| c.split(';').next().unwrap().to_string())
                        .unwrap();
                    idp.prepare(&query_param(&location, "nonce"), p.clock.get());
                    let url = format!(
                        "{base}/auth/callback/dev?code=c&state={}",
                        query_param(&location, "state")
                    );
                    let started = Instant::now();
                    let r = get(&url, Some(&txn));
                    spent += started.elapsed();
                    assert_eq!(r.status, 302, "{}", String::from_utf8_lossy(&r.body));
                }
                spent
            })
        },
    );
}

criterion_group!(hot_paths, benches, login_callback);
criterion_main!(hot_paths);
