//! Verify Gatehouse access tokens in a Rust service or another Cloudflare Worker.
//!
//! Every check Gatehouse's README asks for, in one place: the algorithm pinned to `EdDSA`
//! (the token never chooses), `typ` = `at+jwt`, the exact `iss`, an `aud` that names one of
//! your audiences, `exp`/`nbf`/`iat` with a small leeway, and the JWKS cached and refetched
//! on an unknown `kid` at most once per cooldown. Signatures go through jwt-compact
//! (ed25519-compact) natively and through the runtime's WebCrypto on wasm32. The HTTP fetch of
//! the JWKS is yours: implement [`JwksFetcher`] (on wasm32, [`GlobalFetch`] uses `fetch`).
//!
//! ```no_run
//! use gatehouse_verify::{StaticJwks, Verifier, VerifierConfig};
//! # async fn run(jwks: Vec<u8>, token: &str) -> Result<(), gatehouse_verify::VerifyError> {
//! let url = "https://login.example.com";
//! let verifier = Verifier::new(VerifierConfig::new(url, url), StaticJwks(jwks));
//! let claims = verifier.verify(token).await?;
//! println!("user {} (session {:?})", claims.sub, claims.sid);
//! # Ok(()) }
//! ```

mod claims;
mod error;
mod jwks;
pub mod request;
mod token;
mod verifier;

#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(not(target_arch = "wasm32"))]
use native as backend;

#[cfg(target_arch = "wasm32")]
mod webcrypto;
#[cfg(target_arch = "wasm32")]
use webcrypto as backend;
#[cfg(target_arch = "wasm32")]
mod fetch_wasm;
#[cfg(target_arch = "wasm32")]
pub use fetch_wasm::GlobalFetch;

pub use backend::PublicKey;
pub use claims::{Audience, Claims};
pub use error::VerifyError;
pub use jwks::{FetchError, JwksFetcher, StaticJwks};
pub use request::token_from_headers;
pub use token::MAX_TOKEN_BYTES;
pub use verifier::{Clock, SystemClock, Verifier, VerifierConfig, ACCESS_TOKEN_TYPE, ALGORITHM};
