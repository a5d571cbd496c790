//! The README's Rust example (examples/verify_jwt.rs): it accepts a valid token and
//! refuses the wrong type, issuer, audience, key and an expired one.

#![cfg(not(target_arch = "wasm32"))] // native; tests/webcrypto.rs runs on wasm32

mod common;
#[path = "../examples/verify_jwt.rs"]
#[allow(dead_code)]
mod example;

use common::*;
use serde_json::json;

#[test]
fn example_accepts_gatehouse_tokens_and_refuses_others() {
    let key = Key::new(7);
    let jwks = json!({"keys": [key.jwk()]}).to_string().into_bytes();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let check = |token: &str, url: &str, aud: &[&str]| {
        let aud: Vec<String> = aud.iter().map(|s| s.to_string()).collect();
        example::verify(token, jwks.clone(), url, &aud)
            .map(|c| c.sub)
            .map_err(|e| e.code())
    };
    let token = key.sign(&claims(now), json!({}));
    assert_eq!(check(&token, ISS, &[]), Ok("usr_1".into()));
    assert_eq!(
        check(&token, "https://other.example", &[]),
        Err("wrong_issuer")
    );
    assert_eq!(
        check(&token, ISS, &["https://app.example"]),
        Err("wrong_audience")
    );
    assert_eq!(
        check(&key.sign(&claims(now), json!({"typ": "JWT"})), ISS, &[]),
        Err("wrong_type")
    );
    assert_eq!(
        check(&Key::new(8).sign(&claims(now), json!({})), ISS, &[]),
        Err("unknown_kid")
    );
    assert_eq!(
        check(&key.sign(&claims(now - 1000), json!({})), ISS, &[]),
        Err("expired")
    );
}
