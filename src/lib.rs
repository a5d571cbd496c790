//! Gatehouse: login at the edge.
//!
//! The crate splits in two. Everything outside `worker_glue` is plain Rust with no Worker
//! calls: protocol and domain logic (JWTs, PKCE, cookies, linking, `return_to`, provider
//! response parsing) written against the small traits of [`platform`] (key-value store, user
//! store, outbound HTTP, signatures, clock), so it is unit-tested natively with `cargo test`.
//! `worker_glue` (wasm32 only) is the thin adapter that implements those traits with D1, KV,
//! `fetch` and WebCrypto, and converts requests and responses.

pub mod access;
pub mod app;
pub mod audit;
pub mod b64;
pub mod config;
pub mod cookies;
pub mod crypto;
pub mod eager;
pub mod error;
pub mod fields;
pub mod http;
pub mod ids;
pub mod jwt;
pub mod linking;
pub mod oauth;
pub mod oauth_store;
pub mod pages;
pub mod platform;
pub mod policy;
pub mod providers;
pub mod ratelimit;
pub mod respond;
pub mod return_to;
pub mod sessions;
pub mod small_map;
pub mod timefmt;
pub mod txn;
pub mod urls;
pub mod users;
pub mod validate;
pub mod webauthn;

#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

#[cfg(target_arch = "wasm32")]
mod worker_glue;
