//! Verifying Gatehouse access tokens in another Rust service with `gatehouse-verify`.
//! Here the JWKS comes from a file; a service implements [`JwksFetcher`] with its HTTP
//! client (see the crate's README) and keeps one `Verifier` for the whole process.
//!
//! Usage: `cargo run -p gatehouse-verify --example verify_jwt -- <PUBLIC_URL> <jwks.json file> <token> [audience…]`
//! (the audience defaults to `PUBLIC_URL`, the audience of Gatehouse's own tokens).
//! Prints `valid: user … (session …)` or `invalid: <code>: <reason>` (exit status 1).

use gatehouse_verify::{Claims, StaticJwks, Verifier, VerifierConfig, VerifyError};

/// Verifies `token` for the deployment at `public_url`, with these audiences.
pub fn verify(
    token: &str,
    jwks: Vec<u8>,
    public_url: &str,
    audiences: &[String],
) -> Result<Claims, VerifyError> {
    let mut config = VerifierConfig::new(public_url, public_url);
    if !audiences.is_empty() {
        config = config.audiences(audiences.iter().cloned());
    }
    let verifier = Verifier::new(config, StaticJwks(jwks));
    futures_executor::block_on(verifier.verify(token))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, jwks_file, token, audiences @ ..] = args.as_slice() else {
        eprintln!("usage: verify_jwt <PUBLIC_URL> <jwks.json file> <token> [audience…]");
        std::process::exit(2);
    };
    let jwks = match std::fs::read(jwks_file) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("cannot read {jwks_file}: {e}");
            std::process::exit(2);
        }
    };
    match verify(token, jwks, url, audiences) {
        Ok(c) => println!(
            "valid: user {} (session {})",
            c.sub,
            c.sid.as_deref().unwrap_or("-")
        ),
        Err(e) => {
            println!("invalid: {}: {e}", e.code());
            std::process::exit(1);
        }
    }
}
