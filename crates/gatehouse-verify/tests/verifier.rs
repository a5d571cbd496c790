//! The verifier's rules with the crate's own signer, an injected clock and an injected
//! JWKS endpoint. Tokens from the real Worker: tests/real_worker.rs.

#![cfg(not(target_arch = "wasm32"))] // native; tests/webcrypto.rs runs on wasm32

mod common;

use common::*;
use gatehouse_verify::request::{bearer, cookie, token_from_headers};
use gatehouse_verify::{Verifier, VerifierConfig, VerifyError};
use serde_json::json;

const T0: i64 = 1_800_000_000;

fn verifier(e: &Endpoint, clock: &ManualClock) -> Verifier<Endpoint, ManualClock> {
    Verifier::with_clock(VerifierConfig::new(ISS, ISS), e.clone(), clock.clone())
}

fn code(r: Result<gatehouse_verify::Claims, VerifyError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

#[test]
fn a_valid_token_gives_its_claims_and_every_other_case_its_own_code() {
    let (key, other) = (Key::new(1), Key::new(2));
    let e = Endpoint::serving(&[&key]);
    let clock = ManualClock::at(T0);
    let v = verifier(&e, &clock);
    let good = key.sign(&claims(T0), json!({}));
    let c = block_on(v.verify(&good)).expect("valid");
    assert_eq!((c.sub.as_str(), c.sid.as_deref()), ("usr_1", Some("sid_1")));

    let [h, p, s]: [&str; 3] = good.split('.').collect::<Vec<_>>().try_into().unwrap();
    let hs_header = b64(json!({"alg": "HS256", "typ": "at+jwt", "kid": key.kid})
        .to_string()
        .as_bytes());
    let none = format!(
        "{}.{p}.",
        b64(json!({"alg": "none", "typ": "at+jwt", "kid": key.kid})
            .to_string()
            .as_bytes())
    );
    let tampered = format!(
        "{h}.{}.{s}",
        b64(with(claims(T0), json!({"sub": "usr_admin"}))
            .to_string()
            .as_bytes())
    );
    let cases: Vec<(&str, String, &str)> = vec![
        ("alg none", none, "alg_not_allowed"),
        ("HS256", format!("{hs_header}.{p}.{s}"), "alg_not_allowed"),
        (
            "typ JWT",
            key.sign(&claims(T0), json!({"typ": "JWT"})),
            "wrong_type",
        ),
        (
            "no typ",
            key.sign(&claims(T0), json!({"typ": null})),
            "wrong_type",
        ),
        (
            "wrong iss",
            key.sign(
                &with(claims(T0), json!({"iss": "https://evil.example"})),
                json!({}),
            ),
            "wrong_issuer",
        ),
        (
            "wrong aud",
            key.sign(
                &with(claims(T0), json!({"aud": "https://other.example"})),
                json!({}),
            ),
            "wrong_audience",
        ),
        (
            "expired",
            key.sign(&with(claims(T0), json!({"exp": T0 - 5})), json!({})),
            "expired",
        ),
        (
            "iat in the future",
            key.sign(&with(claims(T0), json!({"iat": T0 + 60})), json!({})),
            "not_yet_valid",
        ),
        (
            "nbf in the future",
            key.sign(&with(claims(T0), json!({"nbf": T0 + 60})), json!({})),
            "not_yet_valid",
        ),
        (
            "another key under our kid",
            other.sign(&claims(T0), json!({"kid": key.kid})),
            "bad_signature",
        ),
        ("tampered claims", tampered, "bad_signature"),
        (
            "embedded jwk",
            key.sign(&claims(T0), json!({"jwk": other.jwk()})),
            "malformed",
        ),
        (
            "jku",
            key.sign(&claims(T0), json!({"jku": "https://evil.example/jwks"})),
            "malformed",
        ),
        (
            "x5u",
            key.sign(&claims(T0), json!({"x5u": "https://evil.example/c"})),
            "malformed",
        ),
        (
            "crit",
            key.sign(&claims(T0), json!({"crit": ["urn:evil"]})),
            "malformed",
        ),
        (
            "no kid",
            key.sign(&claims(T0), json!({"kid": null})),
            "malformed",
        ),
        (
            "no sub",
            key.sign(
                &json!({"iss": ISS, "aud": ISS, "iat": T0, "exp": T0 + 300}),
                json!({}),
            ),
            "malformed",
        ),
        (
            "over 16 KB",
            key.sign(
                &with(claims(T0), json!({"pad": "x".repeat(17 * 1024)})),
                json!({}),
            ),
            "malformed",
        ),
        ("garbage", "not.a.jwt".into(), "malformed"),
        ("JWE-shaped", "a.b.c.d.e".into(), "malformed"),
        ("empty", String::new(), "missing_token"),
    ];
    for (name, token, want) in cases {
        assert_eq!(code(block_on(v.verify(&token))), want, "{name}");
    }
    assert_eq!(e.fetches(), 1, "one JWKS fetch for all of it");
}

#[test]
fn leeway_is_five_seconds_by_default_and_exp_itself_is_invalid() {
    let key = Key::new(1);
    let e = Endpoint::serving(&[&key]);
    let clock = ManualClock::at(T0);
    let token = key.sign(&claims(T0), json!({}));
    let exp = T0 + 300;
    let v = verifier(&e, &clock);
    clock.set(exp + 4);
    assert_eq!(code(block_on(v.verify(&token))), "ok");
    clock.set(exp + 5);
    assert_eq!(code(block_on(v.verify(&token))), "expired");
    let strict = Verifier::with_clock(
        VerifierConfig::new(ISS, ISS).leeway(0),
        e.clone(),
        clock.clone(),
    );
    clock.set(exp - 1);
    assert_eq!(code(block_on(strict.verify(&token))), "ok");
    clock.set(exp);
    assert_eq!(code(block_on(strict.verify(&token))), "expired");
}

#[test]
fn audience_a_token_must_name_one_of_the_configured() {
    let key = Key::new(1);
    let e = Endpoint::serving(&[&key]);
    let clock = ManualClock::at(T0);
    let token = key.sign(
        &with(
            claims(T0),
            json!({"aud": ["https://app.example", "https://other.example"]}),
        ),
        json!({}),
    );
    let with_aud = |list: &[&str]| {
        Verifier::with_clock(
            VerifierConfig::new(ISS, ISS).audiences(list.iter().copied()),
            e.clone(),
            clock.clone(),
        )
    };
    assert_eq!(
        code(block_on(with_aud(&["https://app.example"]).verify(&token))),
        "ok"
    );
    assert_eq!(
        code(block_on(
            with_aud(&["https://x.example", "https://other.example"]).verify(&token)
        )),
        "ok"
    );
    assert_eq!(
        code(block_on(with_aud(&[ISS]).verify(&token))),
        "wrong_audience"
    );
}

#[test]
fn unknown_kid_one_refetch_then_nothing_until_the_cooldown_has_passed() {
    let (a, b) = (Key::new(1), Key::new(2));
    let e = Endpoint::serving(&[&a]);
    let clock = ManualClock::at(T0);
    let v = verifier(&e, &clock);
    block_on(v.verify(&a.sign(&claims(T0), json!({})))).unwrap();
    assert_eq!(e.fetches(), 1);
    let stranger = b.sign(&claims(T0), json!({}));
    assert_eq!(code(block_on(v.verify(&stranger))), "unknown_kid");
    assert_eq!(e.fetches(), 1, "within the cooldown of the first fetch");
    clock.advance(60);
    assert_eq!(code(block_on(v.verify(&stranger))), "unknown_kid");
    assert_eq!(e.fetches(), 2, "one refetch");
    for _ in 0..5 {
        assert_eq!(code(block_on(v.verify(&stranger))), "unknown_kid");
    }
    clock.advance(59);
    assert_eq!(code(block_on(v.verify(&stranger))), "unknown_kid");
    assert_eq!(e.fetches(), 2, "then none during the cooldown");
    e.serve(&[&a, &b]);
    clock.advance(1);
    assert_eq!(
        code(block_on(v.verify(&b.sign(&claims(clock.get()), json!({}))))),
        "ok"
    );
    assert_eq!((e.fetches(), v.jwks_fetches()), (3, 3));
}

#[test]
fn the_cache_ages_out_and_a_failing_jwks_keeps_the_known_keys() {
    let (a, b) = (Key::new(1), Key::new(2));
    let e = Endpoint::serving(&[&a]);
    let clock = ManualClock::at(T0);
    let v = verifier(&e, &clock);
    block_on(v.verify(&a.sign(&claims(T0), json!({})))).unwrap();
    clock.advance(300);
    e.serve(&[&b]);
    assert_eq!(
        code(block_on(v.verify(&a.sign(&claims(clock.get()), json!({}))))),
        "unknown_kid",
        "retired after max-age"
    );
    assert_eq!(e.fetches(), 2);
    clock.advance(300);
    e.fail();
    assert_eq!(
        code(block_on(v.verify(&b.sign(&claims(clock.get()), json!({}))))),
        "ok",
        "stale keys while the JWKS is down"
    );
    assert_eq!(e.fetches(), 3);

    let fresh = verifier(&e, &clock);
    assert_eq!(
        code(block_on(
            fresh.verify(&b.sign(&claims(clock.get()), json!({})))
        )),
        "jwks_unavailable"
    );
    assert_eq!(
        code(block_on(
            fresh.verify(&b.sign(&claims(clock.get()), json!({})))
        )),
        "jwks_unavailable"
    );
    assert_eq!(e.fetches(), 4, "a failed fetch also starts the cooldown");
    e.serve_raw(br#"{"keys": [{"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB"}, {"kty": "OKP", "crv": "Ed25519", "kid": "bad", "x": "!!"}]}"#.to_vec());
    clock.advance(60);
    let mut doc: serde_json::Value =
        serde_json::from_slice(&e.doc.lock().unwrap().clone().unwrap()).unwrap();
    doc["keys"].as_array_mut().unwrap().push(b.jwk());
    e.serve_raw(doc.to_string().into_bytes());
    assert_eq!(
        code(block_on(
            fresh.verify(&b.sign(&claims(clock.get()), json!({})))
        )),
        "ok",
        "unusable keys are skipped, not fatal"
    );
}

#[test]
fn tokens_are_found_in_bearer_header_or_cookie_and_two_cookies_are_refused() {
    assert_eq!(bearer("Bearer abc"), Some("abc"));
    assert_eq!(bearer("bearer  abc "), Some("abc"));
    assert_eq!(bearer("Basic abc"), None);
    assert_eq!(
        cookie("a=1; __Host-gh_access=t", "__Host-gh_access"),
        Ok(Some("t"))
    );
    assert!(cookie("__Host-gh_access=t; __Host-gh_access=u", "__Host-gh_access").is_err());
    let headers = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    };
    assert_eq!(
        token_from_headers(
            headers(&[
                ("authorization", "Bearer b"),
                ("cookie", "__Host-gh_access=c")
            ]),
            true
        ),
        Ok("b")
    );
    assert_eq!(
        token_from_headers(headers(&[("x-gatehouse-jwt", "x")]), true),
        Ok("x")
    );
    assert_eq!(
        token_from_headers(headers(&[("cookie", "__Host-gh_access=c")]), true),
        Ok("c")
    );
    assert_eq!(
        token_from_headers(headers(&[("cookie", "gh_access=c")]), true),
        Err(VerifyError::MissingToken),
        "no prefix on https"
    );
    assert_eq!(
        token_from_headers(headers(&[("cookie", "gh_access=c")]), false),
        Ok("c")
    );
    assert_eq!(
        token_from_headers(headers(&[]), false),
        Err(VerifyError::MissingToken)
    );
}

#[test]
fn a_verifier_is_shareable_across_threads_and_its_future_is_send() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: T) {}
    let e = Endpoint::serving(&[&Key::new(1)]);
    let v = Verifier::new(VerifierConfig::new(ISS, ISS), e);
    send_sync(&v);
    send(v.verify("x"));
}

/// Answers after yielding once, so that two verifies overlap.
struct Slow(Endpoint);

impl gatehouse_verify::JwksFetcher for Slow {
    async fn fetch_jwks(&self, url: &str) -> Result<Vec<u8>, gatehouse_verify::FetchError> {
        let mut yielded = false;
        std::future::poll_fn(|cx| {
            if yielded {
                return std::task::Poll::Ready(());
            }
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        })
        .await;
        self.0.fetch_jwks(url).await
    }
}

/// Polls both futures to completion, interleaved.
fn join2<A: std::future::Future, B: std::future::Future>(a: A, b: B) -> (A::Output, B::Output) {
    use std::task::Poll;
    let (mut a, mut b) = (Box::pin(a), Box::pin(b));
    let (mut ra, mut rb) = (None, None);
    block_on(std::future::poll_fn(|cx| {
        if ra.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        if ra.is_some() && rb.is_some() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }));
    (ra.unwrap(), rb.unwrap())
}

#[test]
fn at_a_cold_start_concurrent_verifies_get_keys_not_jwks_unavailable() {
    let key = Key::new(1);
    let e = Endpoint::serving(&[&key]);
    let v = Verifier::with_clock(
        VerifierConfig::new(ISS, ISS),
        Slow(e.clone()),
        ManualClock::at(T0),
    );
    let token = key.sign(&claims(T0), json!({}));
    let (a, b) = join2(v.verify(&token), v.verify(&token));
    assert_eq!((code(a), code(b)), ("ok", "ok"));
    assert_eq!(
        e.fetches(),
        2,
        "no shared request: both fetched while the first was in flight"
    );
    e.fail();
    let fresh = Verifier::with_clock(
        VerifierConfig::new(ISS, ISS),
        Slow(e.clone()),
        ManualClock::at(T0),
    );
    let (a, b) = join2(fresh.verify(&token), fresh.verify(&token));
    assert_eq!((code(a), code(b)), ("jwks_unavailable", "jwks_unavailable"));
    assert_eq!(code(block_on(fresh.verify(&token))), "jwks_unavailable");
    assert_eq!(e.fetches(), 4, "after the failure, the cooldown holds");
}
