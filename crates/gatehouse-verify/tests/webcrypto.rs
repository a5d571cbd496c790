//! The wasm32 backend, run: signatures through WebCrypto (`crypto.subtle`, Ed25519), the
//! JWKS cache and the claims checks, as inside another Rust Worker. Runs in Node's WebCrypto:
//! `cargo test -p gatehouse-verify --target wasm32-unknown-unknown` with
//! `wasm-bindgen-test-runner` as the runner (the test command sets it).

#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use gatehouse_verify::{Clock, SystemClock, Verifier, VerifierConfig};
use serde_json::json;
use wasm_bindgen_test::wasm_bindgen_test;

/// The verifier's own clock on wasm32 (`Date.now()`): the tokens are minted against it.
fn now() -> i64 {
    SystemClock.now()
}

#[wasm_bindgen_test]
async fn webcrypto_verifies_gatehouse_tokens_and_refuses_others() {
    let (key, other) = (Key::new(1), Key::new(2));
    let e = Endpoint::serving(&[&key]);
    let v = Verifier::new(VerifierConfig::new(ISS, ISS), e.clone());
    let t = now();
    let good = key.sign(&claims(t), json!({}));
    let c = v
        .verify(&good)
        .await
        .expect("a valid token verifies through WebCrypto");
    assert_eq!(c.sub, "usr_1");
    let code = |r: Result<gatehouse_verify::Claims, gatehouse_verify::VerifyError>| {
        r.err().map(|e| e.code())
    };
    assert_eq!(
        code(
            v.verify(&other.sign(&claims(t), json!({"kid": key.kid})))
                .await
        ),
        Some("bad_signature")
    );
    let [h, _, s]: [&str; 3] = good.split('.').collect::<Vec<_>>().try_into().unwrap();
    let forged = format!(
        "{h}.{}.{s}",
        b64(with(claims(t), json!({"sub": "usr_admin"}))
            .to_string()
            .as_bytes())
    );
    assert_eq!(code(v.verify(&forged).await), Some("bad_signature"));
    assert_eq!(
        code(v.verify(&key.sign(&claims(t - 1000), json!({}))).await),
        Some("expired")
    );
    assert_eq!(
        code(v.verify(&other.sign(&claims(t), json!({}))).await),
        Some("unknown_kid")
    );
    assert_eq!(
        e.fetches(),
        1,
        "one JWKS request; the imported CryptoKey is kept"
    );
}
