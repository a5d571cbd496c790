//! Property tests of every parser that sees outside input (README "Robustness"): JWTs (compact
//! form, header and claims JSON, JWKs), cookies, `return_to`, configuration (the access policy
//! included), provider JSON answers, form and JSON bodies, query strings, and every route
//! through `app::handle`.
//! Properties: nothing panics; bad input is a typed 4xx-class error (never a 500 or an
//! internal error); and, where meaningful, what is accepted keeps its invariant (an accepted
//! `return_to` stays on an allowed origin, a parsed cookie never contains `;`, a tampered
//! token never verifies, …).
//!
//! Each target runs `PROPTEST_CASES` inputs (proptest's default, 256, in `cargo test`);
//! `scripts/fuzz` runs every target with a million or more.

#[path = "fuzz/gen.rs"]
mod gen;

#[path = "fuzz/jwt.rs"]
mod jwt;

#[path = "fuzz/cookies.rs"]
mod cookies;

#[path = "fuzz/return_to.rs"]
mod return_to;

#[path = "fuzz/config.rs"]
mod config;

#[path = "fuzz/providers.rs"]
mod providers;

#[path = "fuzz/bodies.rs"]
mod bodies;

#[path = "fuzz/routes.rs"]
mod routes;

#[path = "fuzz/policy.rs"]
mod policy;
