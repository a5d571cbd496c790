//! Replays, with this crate, the script that tests/verify.test.mjs (at the repository root)
//! records against the real Gatehouse Worker: its tokens, the JWKS documents it served at
//! each step of a key rotation, the clock, and the expected outcome and JWKS request count
//! of every check. That test runs this one; on its own it is ignored (it needs the fixture).

#![cfg(not(target_arch = "wasm32"))] // native; tests/webcrypto.rs runs on wasm32

mod common;

use common::{block_on, Endpoint, ManualClock};
use gatehouse_verify::{Verifier, VerifierConfig};
use serde_json::Value;
use std::collections::BTreeMap;

#[test]
#[ignore = "run by tests/verify.test.mjs against the real Worker (GATEHOUSE_VERIFY_FIXTURE)"]
fn replays_the_real_worker_script() {
    let path = std::env::var("GATEHOUSE_VERIFY_FIXTURE").expect("GATEHOUSE_VERIFY_FIXTURE");
    let fixture: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let issuer = fixture["issuer"].as_str().unwrap();
    let clock = ManualClock::at(0);
    let mut verifiers = BTreeMap::new();
    for (name, audiences) in fixture["audiences"].as_object().unwrap() {
        let list = audiences
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap());
        let endpoint = Endpoint::default();
        let config = VerifierConfig::new(issuer, issuer).audiences(list);
        let verifier = Verifier::with_clock(config, endpoint.clone(), clock.clone());
        verifiers.insert(name.clone(), (endpoint, verifier));
    }
    let mut checks = 0;
    for step in fixture["steps"].as_array().unwrap() {
        if let Some(doc) = step["serve"].as_str() {
            for (endpoint, _) in verifiers.values() {
                endpoint.serve_raw(fixture["docs"][doc].to_string().into_bytes());
            }
            continue;
        }
        let label = step["label"].as_str().unwrap();
        let (endpoint, verifier) = &verifiers[step["verifier"].as_str().unwrap()];
        clock.set(step["at"].as_i64().unwrap());
        let got = match block_on(verifier.verify(step["token"].as_str().unwrap())) {
            Ok(_) => "ok",
            Err(e) => e.code(),
        };
        assert_eq!(got, step["expect"].as_str().unwrap(), "rust: {label}");
        assert_eq!(
            endpoint.fetches(),
            step["fetches"].as_u64().unwrap(),
            "rust: JWKS requests after {label:?}"
        );
        checks += 1;
    }
    println!("replayed {checks} checks");
}
