//! Verifying Gatehouse access tokens in another Rust service or Worker, with `jwt-compact`
//! and the keys of `{PUBLIC_URL}/.well-known/jwks.json` (fetch it, cache it, refetch on an
//! unknown `kid`). `cargo test` compiles this example and `tests/verify_example.rs` runs it.
//!
//! Usage: `cargo run --example verify_jwt -- <PUBLIC_URL> <jwks.json file> <token>`

use jwt_compact::{alg::Ed25519, jwk::JsonWebKey, AlgorithmExt, TimeOptions, UntrustedToken};
use serde::Deserialize;

/// The claims an app reads from a Gatehouse access token.
#[derive(Debug, Clone, Deserialize)]
pub struct GatehouseClaims {
    pub iss: String,
    pub aud: String,
    /// The Gatehouse user id.
    pub sub: String,
    /// The session id.
    pub sid: String,
    pub email: Option<String>,
    pub name: Option<String>,
}

/// Verifies `token` against `jwks` for the deployment at `public_url`.
pub fn verify(token: &str, jwks: &serde_json::Value, public_url: &str) -> Option<GatehouseClaims> {
    let untrusted = UntrustedToken::new(token).ok()?;
    // Never let the token choose: EdDSA only, and only access tokens (not some ID token).
    if untrusted.algorithm() != "EdDSA"
        || untrusted.header().token_type.as_deref() != Some("at+jwt")
    {
        return None;
    }
    let kid = untrusted.header().key_id.as_deref()?;
    let jwk = jwks["keys"].as_array()?.iter().find(|k| k["kid"] == kid)?;
    let jwk: JsonWebKey<'_> = serde_json::from_value(jwk.clone()).ok()?;
    let key = ed25519_compact::PublicKey::try_from(&jwk).ok()?;
    // Checks the signature; then `exp` with jwt-compact's default 60 s leeway.
    let token = Ed25519
        .validator::<GatehouseClaims>(&key)
        .validate(&untrusted)
        .ok()?;
    let claims = token
        .claims()
        .validate_expiration(&TimeOptions::default())
        .ok()?;
    let c = &claims.custom;
    (c.iss == public_url && c.aud == public_url).then(|| c.clone())
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, jwks_file, token] = args.as_slice() else {
        eprintln!("usage: verify_jwt <PUBLIC_URL> <jwks.json file> <token>");
        std::process::exit(2);
    };
    let jwks = std::fs::read_to_string(jwks_file)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    match verify(token, &jwks, url) {
        Some(c) => println!("valid: user {} (session {})", c.sub, c.sid),
        None => {
            println!("invalid");
            std::process::exit(1);
        }
    }
}

#[cfg(target_arch = "wasm32")]
fn main() {}
