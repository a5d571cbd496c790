//! Gatehouse as an OpenID Provider for other apps (OAuth 2.1 authorization code flow with
//! PKCE, OpenID Connect Core, RFC 9068 access tokens, refresh-token rotation). Protocol logic
//! only, over the platform traits: the routes are in `app::oauth`.
//!
//! Hook for the access policy: [`grant_allowed`] is asked before any code or token is issued
//! for a person, at authorization and at every refresh.

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

/// Whether `user` may get tokens for `client` now. Today: an active user. The access policy
/// (roles, allowed domains) plugs in here, so that it applies to apps as it does to sign-in.
pub fn grant_allowed(user: &crate::users::User, _client: &client::Client) -> bool {
    user.active
}

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
