//! Gatehouse as an OpenID Provider for other apps (OAuth 2.1 authorization code flow with
//! PKCE, OpenID Connect Core, RFC 9068 access tokens, refresh-token rotation). Protocol logic
//! only, over the platform traits: the routes are in `app::oauth`.
//!
//! The access policy applies to apps as to sign-in: its rules are checked on the user row
//! (`app::auth::admit_returning`, as at renewal) before any code or token is issued for a
//! person — at authorization, at the code exchange and at every refresh.

pub mod client;
pub mod code;
#[cfg(not(target_arch = "wasm32"))]
pub mod memory;
pub mod request;
pub mod store;
pub mod tokens;

pub use crate::error::OAuthError;

/// Scopes Gatehouse knows.
pub const SCOPES: [&str; 5] = ["openid", "profile", "email", "offline_access", "roles"];

/// How long an authorization code lives (seconds).
pub const CODE_TTL: i64 = 60;

/// A space-separated scope string as a list, in order, without duplicates.
pub fn scope_list(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in s.split(' ').filter(|p| !p.is_empty()) {
        if !out.iter().any(|o| o == part) {
            out.push(part.to_string());
        }
    }
    out
}

/// Whether the space-separated `scope` includes `name`.
pub fn has_scope(scope: &str, name: &str) -> bool {
    scope.split(' ').any(|s| s == name)
}
