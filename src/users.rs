//! The user model of SPEC section 6 (users, identities, events) and the [`UserStore`] trait
//! that D1 implements in the Worker and an in-memory map implements in tests. The trait is
//! shaped around the domain operations, so that atomicity (one user per (issuer, sub)) is the
//! store's promise, not a sequence of calls the caller has to get right.

#![allow(async_fn_in_trait)]

use crate::crypto::{b64url, random_bytes};
use crate::platform::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A local user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
    pub phone: Option<String>,
    pub picture: Option<String>,
    pub active: bool,
    pub metadata: Value,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_login_at: Option<i64>,
}

/// RFC 3339 for a Unix time.
pub fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

impl User {
    /// A new, active user from a provider profile.
    pub fn from_profile(p: &Profile, now: i64) -> User {
        User {
            id: new_user_id(),
            name: p.name.clone(),
            email: p.email.clone(),
            email_verified: p.email_verified.unwrap_or(false),
            phone: None,
            picture: p.picture.clone(),
            active: true,
            metadata: Value::Object(Default::default()),
            created_at: now,
            updated_at: now,
            last_login_at: Some(now),
        }
    }

    /// The user object of the API (times as RFC 3339).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "id": self.id, "name": self.name, "email": self.email,
            "email_verified": self.email_verified, "phone": self.phone, "picture": self.picture,
            "active": self.active, "metadata": self.metadata,
            "created_at": rfc3339(self.created_at), "updated_at": rfc3339(self.updated_at),
            "last_login_at": self.last_login_at.map(rfc3339),
        })
    }
}

/// A fresh user id: `usr_` + 128 random bits.
pub fn new_user_id() -> String {
    format!("usr_{}", b64url(&random_bytes::<16>()))
}

/// What a provider vouched for after a successful sign-in.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// The stable issuer of the identity key (OIDC `iss`, or `xwms:{domain}`, …).
    pub issuer: String,
    /// The provider's stable subject id.
    pub sub: String,
    /// The configured provider name (may change; the link does not depend on it).
    pub provider: String,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub name: Option<String>,
    pub picture: Option<String>,
    /// The provider's claims, kept on the identity row.
    pub raw: Value,
    /// A vendor-side session or token to end when the Gatehouse session ends (Stytch
    /// session token, LoginRadius access token); never shown to the client.
    pub vendor_logout: Option<String>,
}

/// A linked identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    pub issuer: String,
    pub sub: String,
    pub provider: String,
    pub user_id: String,
    pub email: Option<String>,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

/// An audit event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub user_id: Option<String>,
    pub kind: &'static str,
    pub at: i64,
    pub ip: String,
    pub user_agent: String,
    pub detail: Value,
}

/// User storage (D1 in the Worker).
pub trait UserStore {
    /// The user that (issuer, sub) is linked to.
    async fn identity_owner(&self, issuer: &str, sub: &str) -> Result<Option<String>, StoreError>;
    /// Atomically creates `user` with the identity of `profile`, unless that identity already
    /// exists; returns the id of the user the identity belongs to afterwards (the new user,
    /// or the winner of a concurrent first sign-in).
    async fn create_linked(
        &self,
        user: &User,
        profile: &Profile,
        now: i64,
    ) -> Result<String, StoreError>;
    /// Refreshes name/email/picture (where the provider sent them) and login times.
    async fn refresh_login(
        &self,
        user_id: &str,
        profile: &Profile,
        now: i64,
    ) -> Result<(), StoreError>;
    async fn get_user(&self, id: &str) -> Result<Option<User>, StoreError>;
    async fn record_event(&self, event: &Event) -> Result<(), StoreError>;
}
