//! Storage round trips per route, counted with the in-memory test platform (every D1 method is
//! one round trip — one statement or one batch, which D1 runs as one transaction — and every
//! KV call one operation), and held to the budgets of the README's numbers section. A route
//! that gains a round trip makes this fail. Run with `cargo bench --bench round_trips`.
//!
//! D1 has one primary, often an ocean away from the edge location that runs the Worker:
//! each D1 round trip costs tens of milliseconds there, each KV operation a few. These
//! counts, not CPU, decide a route's latency in production.

use gatehouse::config::Config;
use gatehouse::crypto::b64url;
use gatehouse::http::{Method, Request, Response};
use gatehouse::jwt::keys::SigningKey;
use gatehouse::jwt::native::{generate_ed25519_jwk, NativeSignatures};
use gatehouse::platform::{FetchError, Inbound, Outbound};
use gatehouse::testing::{block_on, test_env, TestPlatform};
use serde_json::json;
use std::process::ExitCode;
use std::rc::Rc;

const BASE: &str = "http://127.0.0.1:8787";
const ISSUER: &str = "http://127.0.0.1:9000";

/// The `dev` provider of `test_env()`, in memory: the code carries the login's nonce and the
/// subject (`{sub}.{nonce}`), so the token endpoint needs no state.
struct Idp {
    key: SigningKey,
}

impl Idp {
    fn serve(&self, req: &Outbound) -> Result<Inbound, FetchError> {
        let path = req.url.strip_prefix(ISSUER).unwrap_or_default();
        let body = match path {
            "/.well-known/openid-configuration" => json!({
                "issuer": ISSUER,
                "authorization_endpoint": format!("{ISSUER}/authorize"),
                "token_endpoint": format!("{ISSUER}/token"),
                "jwks_uri": format!("{ISSUER}/jwks"),
            }),
            "/jwks" => json!({"keys": [self.key.public]}),
            "/token" => {
                let body = req.body.as_deref().unwrap_or_default();
                let code = url::form_urlencoded::parse(body)
                    .find(|(k, _)| k == "code")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                let (sub, nonce) = code.split_once('.').unwrap_or_default();
                json!({"id_token": self.id_token(sub, nonce), "access_token": "at", "token_type": "Bearer"})
            }
            _ => return Err(FetchError::Network(format!("no route {}", req.url))),
        };
        Ok(Inbound {
            status: 200,
            body: body.to_string().into_bytes(),
        })
    }

    fn id_token(&self, sub: &str, nonce: &str) -> String {
        let now = 1_700_000_000i64;
        let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": self.key.kid});
        let claims = json!({
            "iss": ISSUER, "aud": "gatehouse", "sub": sub, "exp": now + 86_400,
            "iat": now, "nonce": nonce, "email": format!("{sub}@example.com"), "name": "Ada",
        });
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let sig = NativeSignatures.sign_sync(&self.key, input.as_bytes());
        format!("{input}.{}", b64url(&sig))
    }
}

fn query_param(url: &str, name: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn cookie_of(r: &Response, name: &str) -> Option<String> {
    r.headers_named("set-cookie")
        .map(|c| c.split(';').next().unwrap_or_default())
        .find(|c| c.starts_with(&format!("{name}=")) && !c.ends_with('='))
        .map(String::from)
}

/// Gatehouse over the counting test platform, with one fake provider.
struct World {
    cfg: Config,
    p: TestPlatform,
}

impl World {
    fn new(proxy: bool) -> World {
        let mut env = test_env();
        if proxy {
            env.insert("ORIGIN_URL".into(), "http://127.0.0.1:9500".into());
        }
        let idp = Rc::new(Idp {
            key: SigningKey::from_private_jwk(&generate_ed25519_jwk()).unwrap(),
        });
        World {
            cfg: Config::from_env(&env).expect("bench config"),
            p: TestPlatform::new(move |req| idp.serve(req)),
        }
    }

    fn request(&self, method: Method, path: &str, cookies: &[&str]) -> Request {
        let mut req = Request::new(method, &format!("{BASE}{path}"))
            .with_header("cf-connecting-ip", "198.51.100.7")
            .with_header("user-agent", "round-trips")
            .with_header("accept", "application/json");
        if !cookies.is_empty() {
            req = req.with_header("cookie", &cookies.join("; "));
        }
        req
    }

    fn send(&self, req: Request) -> Response {
        block_on(gatehouse::app::handle(Ok(&self.cfg), &self.p, req))
    }

    /// The login redirect for `sub`, then the callback request that finishes it (not sent).
    fn callback_for(&self, sub: &str, cookies: &[&str]) -> Request {
        let login = self.send(self.request(Method::Get, "/auth/login?provider=dev", cookies));
        let location = login
            .header("location")
            .expect("login redirect")
            .to_string();
        let txn = cookie_of(&login, "gh_txn").expect("transaction cookie");
        let code = format!("{sub}.{}", query_param(&location, "nonce"));
        let path = format!(
            "/auth/callback/dev?code={code}&state={}",
            query_param(&location, "state")
        );
        let mut all = cookies.to_vec();
        all.push(&txn);
        self.request(Method::Get, &path, &all)
    }

    /// A whole sign-in of `sub`: the session and access cookies.
    fn sign_in(&self, sub: &str) -> (String, String) {
        let r = self.send(self.callback_for(sub, &[]));
        assert_eq!(r.status, 302, "{}", String::from_utf8_lossy(&r.body));
        (
            cookie_of(&r, "gh_session").expect("session cookie"),
            cookie_of(&r, "gh_access").expect("access cookie"),
        )
    }

    /// Sends `req` alone under the count: (status, D1 round trips, KV operations, trace).
    fn count(&self, req: Request) -> (u16, usize, usize, Vec<&'static str>) {
        self.p.faults.reset();
        let r = self.send(req);
        let trace = self.p.faults.trace();
        let d1 = trace.iter().filter(|op| op.starts_with("d1.")).count();
        let kv = trace.iter().filter(|op| op.starts_with("kv.")).count();
        let storage = trace
            .into_iter()
            .filter(|op| op.starts_with("d1.") || op.starts_with("kv."))
            .collect();
        (r.status, d1, kv, storage)
    }
}

/// One row of the table: a route, its expected status, its budget (None: shown, not held to
/// one) and what it counted.
struct Row {
    route: &'static str,
    status: u16,
    expected: u16,
    budget: Option<(usize, usize)>,
    d1: usize,
    kv: usize,
    trace: Vec<&'static str>,
}

fn row(
    route: &'static str,
    expected: u16,
    budget: Option<(usize, usize)>,
    counted: (u16, usize, usize, Vec<&'static str>),
) -> Row {
    let (status, d1, kv, trace) = counted;
    Row {
        route,
        status,
        expected,
        budget,
        d1,
        kv,
        trace,
    }
}

const SIGN_IN: Option<(usize, usize)> = Some((2, 3));
const RENEWAL: Option<(usize, usize)> = Some((1, 2));
const NONE: Option<(usize, usize)> = Some((0, 0));

fn rows() -> Vec<Row> {
    let mut rows = Vec::new();

    let w = World::new(false);
    let first = w.callback_for("new-user", &[]);
    rows.push(row(
        "sign-in callback, new user",
        302,
        SIGN_IN,
        w.count(first),
    ));
    let again = w.callback_for("new-user", &[]);
    rows.push(row(
        "sign-in callback, returning user",
        302,
        SIGN_IN,
        w.count(again),
    ));

    // Invite-only sign-up: whether an identity is new is decided inside the same batch (no
    // extra read), and a refused newcomer writes nothing.
    let mut invite = World::new(false);
    invite.sign_in("member");
    let mut env = test_env();
    env.insert("POLICY".into(), r#"{"sign_up": "invite"}"#.into());
    invite.cfg = Config::from_env(&env).expect("invite-only config");
    let back = invite.callback_for("member", &[]);
    rows.push(row(
        "sign-in callback, invite-only, returning",
        302,
        SIGN_IN,
        invite.count(back),
    ));
    // Not budgeted: a refusal is no sign-in, and it records its `sign_in_denied` event.
    let stranger = invite.callback_for("stranger", &[]);
    rows.push(row(
        "sign-in callback, invite-only, refused",
        403,
        None,
        invite.count(stranger),
    ));

    let (session, access) = w.sign_in("someone");
    let me = w.request(Method::Get, "/auth/me", &[&access]);
    rows.push(row("/auth/me, valid access token", 200, NONE, w.count(me)));

    // The access token expired: the session cookie renews it.
    w.p.clock
        .set(w.p.clock.get() + w.cfg.access_ttl as i64 + 60);
    let renew = w.request(Method::Get, "/auth/me", &[&session, &access]);
    rows.push(row(
        "/auth/me, renewal from the session",
        200,
        RENEWAL,
        w.count(renew),
    ));
    let token = w
        .request(Method::Post, "/auth/token", &[&session])
        .with_header("origin", BASE)
        .with_header("sec-fetch-site", "same-origin");
    rows.push(row(
        "POST /auth/token (renewal)",
        200,
        RENEWAL,
        w.count(token),
    ));

    // Not budgeted, shown for what they cost: a sign-in in a browser that still has a
    // session (which is ended: its KV read, the D1 mark, two KV deletes, an audit event),
    // and a logout.
    let (old_session, _) = w.sign_in("someone");
    let over = w.callback_for("someone", &[&old_session]);
    rows.push(row(
        "sign-in callback over an older session",
        302,
        None,
        w.count(over),
    ));
    let (session, _) = w.sign_in("leaver");
    let logout = w
        .request(Method::Post, "/auth/logout", &[&session])
        .with_header("origin", BASE)
        .with_header("sec-fetch-site", "same-origin");
    rows.push(row("POST /auth/logout", 204, None, w.count(logout)));

    let w = World::new(true);
    let (_, access) = w.sign_in("proxied");
    let proxied = w.request(Method::Get, "/app/page", &[&access]);
    let ctx = gatehouse::app::Ctx {
        cfg: &w.cfg,
        p: &w.p,
    };
    w.p.faults.reset();
    let decision = block_on(gatehouse::app::proxy::decide(&ctx, &proxied));
    let forwarded = matches!(
        decision,
        Ok(gatehouse::app::proxy::Decision::Forward { .. })
    );
    let trace = w.p.faults.trace();
    let d1 = trace.iter().filter(|op| op.starts_with("d1.")).count();
    let kv = trace.iter().filter(|op| op.starts_with("kv.")).count();
    rows.push(row(
        "proxied request, valid access token",
        200,
        NONE,
        (if forwarded { 200 } else { 500 }, d1, kv, vec![]),
    ));
    rows
}

fn main() -> ExitCode {
    let rows = rows();
    let mut failed = Vec::new();
    println!(
        "{:<42} {:>9} {:>9} {:>10}  storage operations in order",
        "route", "D1 trips", "KV ops", "budget"
    );
    for r in &rows {
        let budget = match r.budget {
            Some((d1, kv)) => format!("{d1} / {kv}"),
            None => "-".into(),
        };
        println!(
            "{:<42} {:>9} {:>9} {:>10}  {}",
            r.route,
            r.d1,
            r.kv,
            budget,
            r.trace.join(", ")
        );
        if r.status != r.expected {
            failed.push(format!(
                "{}: answered {} instead of {}",
                r.route, r.status, r.expected
            ));
        }
        if let Some((d1, kv)) = r.budget {
            if r.d1 > d1 || r.kv > kv {
                failed.push(format!(
                    "{}: {} D1 round trips and {} KV operations, budget {d1} and {kv}",
                    r.route, r.d1, r.kv
                ));
            }
        }
    }
    if failed.is_empty() {
        println!("every route within its storage budget");
        ExitCode::SUCCESS
    } else {
        for f in &failed {
            eprintln!("OVER BUDGET or broken: {f}");
        }
        ExitCode::FAILURE
    }
}
