//! The README's verification example, run against tokens Gatehouse issues: it accepts a
//! valid access token and refuses the wrong type, issuer, key and an expired one.

#[path = "../examples/verify_jwt.rs"]
#[allow(dead_code)]
mod example;

use gatehouse::jwt::access::{issue, AccessClaims};
use gatehouse::jwt::keys::jwks_document;
use gatehouse::jwt::native::NativeSignatures;
use gatehouse::testing::{block_on, test_config, test_key_2};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn example_accepts_gatehouse_tokens_and_refuses_others() {
    let cfg = test_config();
    let jwks = jwks_document(&cfg.signing_keys);
    let claims = AccessClaims::new(
        &cfg,
        "usr_1",
        "sid_1",
        Some("a@example.test".into()),
        None,
        now(),
    );
    let token = block_on(issue(&cfg, &NativeSignatures, &claims)).unwrap();
    let ok = example::verify(&token, &jwks, &cfg.public_url).expect("valid token");
    assert_eq!((ok.sub.as_str(), ok.sid.as_str()), ("usr_1", "sid_1"));

    assert!(
        example::verify(&token, &jwks, "https://other.example").is_none(),
        "issuer"
    );
    let mut other = cfg.clone();
    other.signing_keys = vec![test_key_2()];
    let foreign = block_on(issue(&other, &NativeSignatures, &claims)).unwrap();
    assert!(
        example::verify(&foreign, &jwks, &cfg.public_url).is_none(),
        "unknown key"
    );
    let old = AccessClaims::new(&cfg, "usr_1", "sid_1", None, None, now() - 1000);
    let expired = block_on(issue(&cfg, &NativeSignatures, &old)).unwrap();
    assert!(
        example::verify(&expired, &jwks, &cfg.public_url).is_none(),
        "expired"
    );
}
