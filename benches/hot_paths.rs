//! Native benchmarks of the request hot path's pure-Rust parts: access-token parsing and
//! verification (native Ed25519 backend — the Worker uses WebCrypto instead, see the load
//! benchmark), token issuing, session-id hashing, cookie and `return_to` checks.
//! Run with `cargo bench`.

use criterion::{criterion_group, criterion_main, Criterion};
use gatehouse::config::Config;
use gatehouse::cookies::CookieJar;
use gatehouse::http::{Method, Request};
use gatehouse::jwt::access::{self, AccessClaims};
use gatehouse::jwt::compact;
use gatehouse::jwt::native::NativeSignatures;
use gatehouse::testing::{block_on, test_config};
use std::hint::black_box;

fn token(cfg: &Config) -> String {
    let claims = AccessClaims::new(
        cfg,
        "usr_bench",
        "sid_bench",
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

criterion_group!(hot_paths, benches);
criterion_main!(hot_paths);
