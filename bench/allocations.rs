//! What Gatehouse's own code allocates on the hot authenticated path (README "Per-request
//! overhead and start-up"): `GET /auth/me` with a valid bearer token through `app::handle`, and
//! a proxied request with a valid access cookie through `app::proxy::decide` — the core's
//! work on those requests, without the runtime around it. A counting global allocator counts
//! allocations and bytes per request in the steady state (signature check remembered, as in a
//! warm isolate). Fails when a count grows past its bound: a regression to look at, or a
//! bound to raise on purpose. Runs in `cargo test` (one process, one thread); `cargo bench
//! --bench allocations` prints the same numbers.

use gatehouse::access::{self, AccessClaims};
use gatehouse::app::proxy::{decide, Decision};
use gatehouse::app::Ctx;
use gatehouse::config::Config;
use gatehouse::http::{Method, Request};
use gatehouse::jwt::native::NativeSignatures;
use gatehouse::jwt::remembered::{Remembered, VerifiedSet};
use gatehouse::platform::Platform;
use gatehouse::testing::{block_on, test_env, TestPlatform, WithSignatures};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Counts every allocation and reallocation (a reallocation is a new block).
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        BYTES.fetch_add(layout.size(), Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        BYTES.fetch_add(new_size, Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Allocations and bytes of one call of `f`, averaged over `runs` after one warm-up.
fn per_request(runs: usize, mut f: impl FnMut()) -> (usize, usize) {
    f();
    let (a0, b0) = (ALLOCATIONS.load(Relaxed), BYTES.load(Relaxed));
    for _ in 0..runs {
        f();
    }
    let (a1, b1) = (ALLOCATIONS.load(Relaxed), BYTES.load(Relaxed));
    ((a1 - a0) / runs, (b1 - b0) / runs)
}

/// Upper bounds (allocations, bytes) per request; measured values are in the README.
const ME_BOUND: (usize, usize) = (76, 5_120);
const PROXY_BOUND: (usize, usize) = (76, 4_608);

fn main() {
    let mut env = test_env();
    env.insert("ORIGIN_URL".into(), "http://127.0.0.1:7000/base".into());
    let cfg = Config::from_env(&env).unwrap();
    // The in-memory platform with the Worker's remembered signature checks.
    let p = WithSignatures {
        p: TestPlatform::new(|_| panic!("the hot path fetches nothing")),
        sig: Remembered {
            inner: NativeSignatures,
            seen: Box::leak(Box::new(VerifiedSet::default())),
        },
    };
    let claims = AccessClaims::new(
        &cfg,
        &"usr_bench".into(),
        &"sid_bench".into(),
        Some("b@example.test".into()),
        Some("Bench".into()),
        p.now(),
    );
    let token = block_on(access::issue(&cfg, &NativeSignatures, &claims)).unwrap();
    let base = "http://127.0.0.1:8787";
    // What a browser-like client sends; the Worker converts only READ_HEADERS for /auth/me.
    let me = Request::new(Method::Get, &format!("{base}/auth/me"))
        .with_header("authorization", &format!("Bearer {token}"))
        .with_header("accept", "application/json")
        .with_header("user-agent", "bench/1.0");
    let proxied = Request::new(Method::Get, &format!("{base}/app/page?x=1"))
        .with_header("host", "127.0.0.1:8787")
        .with_header("cookie", &format!("theirs=1; gh_access={token}"))
        .with_header("accept", "text/html")
        .with_header("accept-language", "en")
        .with_header("user-agent", "bench/1.0");

    let me_cost = per_request(200, || {
        let r = block_on(gatehouse::app::handle(Ok(&cfg), &p, me.clone()));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    });
    let ctx = Ctx { cfg: &cfg, p: &p };
    let proxy_cost = per_request(200, || {
        let d = block_on(decide(&ctx, &proxied)).unwrap();
        assert!(matches!(d, Decision::Forward { .. }), "{d:?}");
    });
    println!("hot path allocations per request (core only, warm isolate):");
    println!(
        "  GET /auth/me, valid bearer JWT:        {:>3} allocations, {:>5} bytes (bound {} / {})",
        me_cost.0, me_cost.1, ME_BOUND.0, ME_BOUND.1
    );
    println!(
        "  proxied GET, valid access cookie:      {:>3} allocations, {:>5} bytes (bound {} / {})",
        proxy_cost.0, proxy_cost.1, PROXY_BOUND.0, PROXY_BOUND.1
    );
    assert!(
        me_cost.0 <= ME_BOUND.0 && me_cost.1 <= ME_BOUND.1,
        "/auth/me allocates more than its bound"
    );
    assert!(
        proxy_cost.0 <= PROXY_BOUND.0 && proxy_cost.1 <= PROXY_BOUND.1,
        "the proxied request allocates more than its bound"
    );
}
