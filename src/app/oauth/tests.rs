//! The OpenID Provider's routes on the test platform: storage budgets (a code exchange and a
//! refresh are two D1 round trips each), expiry, and what ends refresh tokens.

use crate::app::handle;
use crate::config::Config;
use crate::http::{Method, Request, Response};
use crate::oauth::client::{Client, ClientInput};
use crate::oauth::store::OAuthStore;
use crate::platform::Platform;
use crate::testing::{block_on, sign_in_directly, test_config_with_rsa, SignedIn, TestPlatform};
use crate::users::UserStore;

const BASE: &str = "http://127.0.0.1:8787";
const REDIRECT: &str = "https://app.example/cb";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

struct World {
    cfg: Config,
    p: TestPlatform,
    me: SignedIn,
    client: Client,
}

fn world(first_party: bool) -> World {
    let cfg = test_config_with_rsa();
    let p = TestPlatform::new(|_| unreachable!("no outbound calls"));
    let me = sign_in_directly(&cfg, &p);
    let input = ClientInput::parse(&serde_json::json!({"name": "App", "type": "public",
        "redirect_uris": [REDIRECT], "first_party": first_party}))
    .unwrap();
    let client = Client::create(&cfg, input, p.clock.get()).unwrap().0;
    block_on(p.oauth().create_client(&client)).unwrap();
    World { cfg, p, me, client }
}

fn send(w: &World, req: Request) -> Response {
    block_on(handle(Ok(&w.cfg), &w.p, req))
}

fn json(r: &Response) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap()
}

/// A code for the signed-in person (the client is first party: no consent page).
fn code(w: &World, scope: &str) -> String {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &w.client.id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", scope)
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256")
        .finish();
    let r = send(
        w,
        Request::new(Method::Get, &format!("{BASE}/oauth/authorize?{q}"))
            .with_header("cookie", &format!("gh_session={}", w.me.session)),
    );
    assert_eq!(r.status, 302, "{}", String::from_utf8_lossy(&r.body));
    let loc = url::Url::parse(r.header("location").unwrap()).unwrap();
    assert_eq!(loc.as_str().split('?').next(), Some(REDIRECT));
    loc.query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code")
}

fn token(w: &World, pairs: &[(&str, &str)]) -> Response {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .append_pair("client_id", &w.client.id)
        .finish();
    send(
        w,
        Request::new(Method::Post, &format!("{BASE}/oauth/token"))
            .with_header("content-type", "application/x-www-form-urlencoded")
            .with_body(body),
    )
}

fn exchange(w: &World, code: &str) -> Response {
    token(
        w,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
}

fn d1_round_trips(w: &World) -> Vec<&'static str> {
    w.p.faults
        .trace()
        .into_iter()
        .filter(|op| op.starts_with("d1."))
        .collect()
}

#[test]
fn a_code_exchange_and_a_refresh_are_two_d1_round_trips_each() {
    let w = world(true);
    let c = code(&w, "openid offline_access");
    w.p.faults.reset();
    let r = exchange(&w, &c);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        d1_round_trips(&w),
        ["d1.client_and_user", "d1.redeem_code"],
        "one read, one batch"
    );
    let refresh = json(&r)["refresh_token"].as_str().unwrap().to_string();
    w.p.faults.reset();
    let r = token(
        &w,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        d1_round_trips(&w),
        ["d1.refresh_context", "d1.rotate_refresh"]
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

#[test]
fn an_expired_code_is_refused_and_spends_nothing() {
    let w = world(true);
    let c = code(&w, "openid");
    w.p.clock.set(w.p.clock.get() + crate::oauth::CODE_TTL);
    let r = exchange(&w, &c);
    assert_eq!(r.status, 400);
    assert_eq!(json(&r)["error"], "invalid_grant");
    assert!(w.p.users.spent.borrow().is_empty(), "nothing spent");
    // One second earlier it would have worked.
    let w = world(true);
    let c = code(&w, "openid");
    w.p.clock.set(w.p.clock.get() + crate::oauth::CODE_TTL - 1);
    assert_eq!(exchange(&w, &c).status, 200);
}

#[test]
fn refresh_tokens_end_with_deactivation_deletion_revoke_all_and_app_revocation() {
    type End = fn(&World);
    let ends: [(&str, End); 4] = [
        ("deactivated", |w| {
            w.p.users.set_active(&w.me.user_id, false)
        }),
        ("deleted", |w| {
            block_on(w.p.users.delete_user(&w.me.user_id)).unwrap();
        }),
        ("revoke all", |w| {
            let now = w.p.clock.get();
            block_on(w.p.users.end_sessions_until(&w.me.user_id, now)).unwrap();
        }),
        ("app revoked", |w| {
            block_on(w.p.oauth().revoke_app(w.me.user_id.as_str(), &w.client.id)).unwrap();
        }),
    ];
    for (why, end) in ends {
        let w = world(true);
        let r = exchange(&w, &code(&w, "openid offline_access"));
        let refresh = json(&r)["refresh_token"].as_str().unwrap().to_string();
        w.p.clock.set(w.p.clock.get() + 1);
        end(&w);
        let r = token(
            &w,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        );
        assert_eq!(r.status, 400, "{why}");
        assert_eq!(json(&r)["error"], "invalid_grant", "{why}");
    }
}

#[test]
fn consent_needs_the_session_cookie_and_our_own_origin() {
    let w = world(false);
    let form = format!(
        "response_type=code&client_id={}&redirect_uri={}&code_challenge={CHALLENGE}&code_challenge_method=S256&decision=allow",
        w.client.id,
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    let post = |headers: &[(&str, &str)]| {
        let mut r = Request::new(Method::Post, &format!("{BASE}/oauth/authorize"))
            .with_header("content-type", "application/x-www-form-urlencoded")
            .with_body(form.clone());
        for (k, v) in headers {
            r = r.with_header(k, v);
        }
        send(&w, r)
    };
    let cookie = format!("gh_session={}", w.me.session);
    let bearer = format!("Bearer {}", w.me.access);
    assert_eq!(
        post(&[("origin", BASE), ("authorization", &bearer)]).status,
        401
    );
    assert_eq!(
        post(&[("origin", "https://app.example"), ("cookie", &cookie)]).status,
        403
    );
    assert_eq!(
        post(&[("cookie", &cookie)]).status,
        403,
        "no Origin, with a cookie"
    );
    assert!(
        block_on(w.p.oauth().consent(w.me.user_id.as_str(), &w.client.id))
            .unwrap()
            .is_none()
    );
    let r = post(&[("origin", BASE), ("cookie", &cookie)]);
    assert_eq!(r.status, 303);
    assert!(r.header("location").unwrap().starts_with(REDIRECT));
    assert_eq!(
        block_on(w.p.oauth().consent(w.me.user_id.as_str(), &w.client.id)).unwrap(),
        Some("openid".into())
    );
}

#[test]
fn prompt_none_without_a_session_or_consent_answers_at_the_redirect_uri() {
    let w = world(false);
    let q = format!(
        "response_type=code&client_id={}&redirect_uri={}&code_challenge={CHALLENGE}&code_challenge_method=S256&prompt=none&state=s1",
        w.client.id,
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    let url = format!("{BASE}/oauth/authorize?{q}");
    let error_of = |r: Response| {
        let loc = url::Url::parse(r.header("location").unwrap()).unwrap();
        let get = |k: &str| {
            loc.query_pairs()
                .find(|(x, _)| x == k)
                .map(|(_, v)| v.into_owned())
        };
        assert_eq!(get("state").as_deref(), Some("s1"));
        assert_eq!(get("iss").as_deref(), Some(BASE));
        get("error").unwrap()
    };
    assert_eq!(
        error_of(send(&w, Request::new(Method::Get, &url))),
        "login_required"
    );
    let cookie = format!("gh_session={}", w.me.session);
    let r = send(
        &w,
        Request::new(Method::Get, &url).with_header("cookie", &cookie),
    );
    assert_eq!(error_of(r), "consent_required");
    // max_age already passed: the login page (without prompt=none), not a code.
    let stale = url.replace("&prompt=none", "&max_age=0");
    w.p.clock.set(w.p.clock.get() + 5);
    let r = send(
        &w,
        Request::new(Method::Get, &stale).with_header("cookie", &cookie),
    );
    assert!(r
        .header("location")
        .unwrap()
        .starts_with("/auth/login?return_to="));
    assert!(!r.header("location").unwrap().contains("max_age"));
}

#[test]
fn a_replayed_code_is_refused_and_revokes_what_it_gave() {
    let w = world(true);
    let c = code(&w, "openid offline_access");
    let first = exchange(&w, &c);
    assert_eq!(first.status, 200);
    let refresh = json(&first)["refresh_token"].as_str().unwrap().to_string();
    let again = exchange(&w, &c);
    assert_eq!(again.status, 400);
    assert_eq!(json(&again)["error"], "invalid_grant");
    let r = token(
        &w,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    );
    assert_eq!(
        json(&r)["error"],
        "invalid_grant",
        "the replay revoked the refresh token"
    );
    assert!(w.p.users.oauth.refresh.borrow().is_empty());
}

#[test]
fn a_reused_refresh_token_revokes_its_family() {
    let w = world(true);
    let r = exchange(&w, &code(&w, "openid offline_access"));
    let old = json(&r)["refresh_token"].as_str().unwrap().to_string();
    let r = token(
        &w,
        &[("grant_type", "refresh_token"), ("refresh_token", &old)],
    );
    let new = json(&r)["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(old, new, "rotated");
    let reuse = token(
        &w,
        &[("grant_type", "refresh_token"), ("refresh_token", &old)],
    );
    assert_eq!(json(&reuse)["error"], "invalid_grant");
    let r = token(
        &w,
        &[("grant_type", "refresh_token"), ("refresh_token", &new)],
    );
    assert_eq!(
        json(&r)["error"],
        "invalid_grant",
        "the newest token of the family died too"
    );
}
