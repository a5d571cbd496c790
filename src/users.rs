//! The user model of README "Admin API" (users, identities, events) and the [`UserStore`] trait
//! that D1 implements in the Worker and an in-memory map implements in tests. The trait is
//! shaped around the domain operations, so that atomicity (one user per (issuer, sub)) is the
//! store's promise, not a sequence of calls the caller has to get right.

#![allow(async_fn_in_trait)]

use crate::crypto::{b64url, random_bytes};
use crate::error::StoreError;
use crate::ids::SessionId;
pub use crate::ids::{IdentityKey, UserId};
use serde_json::Value;

/// A local user.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: UserId,
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
    /// Sessions begun at or before this time are refused at renewal: set by "revoke all"
    /// (and so by deactivation and deletion), it stops even a session that KV's index did
    /// not list yet. 0: none refused.
    pub sessions_valid_after: i64,
    /// Roles given by an admin or an invitation (the policy's rule roles are added when a
    /// token is issued, never stored).
    pub roles: Vec<String>,
}

pub use crate::timefmt::rfc3339;

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
            sessions_valid_after: 0,
            roles: Vec::new(),
        }
    }

    /// The email as the policy sees it: trusted only where a provider verified it.
    pub fn policy_email(&self) -> crate::policy::Email<'_> {
        crate::policy::Email {
            address: self.email.as_deref(),
            verified: self.email_verified,
        }
    }

    /// The user object of the API (times as RFC 3339).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "id": self.id.as_str(), "name": self.name, "email": self.email,
            "email_verified": self.email_verified, "phone": self.phone, "picture": self.picture,
            "active": self.active, "metadata": self.metadata, "roles": self.roles,
            "created_at": rfc3339(self.created_at), "updated_at": rfc3339(self.updated_at),
            "last_login_at": self.last_login_at.map(rfc3339),
        })
    }
}

/// A fresh user id: `usr_` + 128 random bits.
pub fn new_user_id() -> UserId {
    UserId::from(format!("usr_{}", b64url(&random_bytes::<16>())))
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

impl Profile {
    /// The key this sign-in's identity is linked by.
    pub fn key(&self) -> IdentityKey<'_> {
        IdentityKey {
            issuer: &self.issuer,
            sub: &self.sub,
        }
    }
}

/// A linked identity.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub issuer: String,
    pub sub: String,
    pub provider: String,
    pub user_id: UserId,
    pub email: Option<String>,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

/// An audit event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub user_id: Option<UserId>,
    pub kind: &'static str,
    pub at: i64,
    pub ip: String,
    pub user_agent: String,
    pub detail: Value,
}

/// User storage (D1 in the Worker).
pub trait UserStore {
    /// The user that (issuer, sub) is linked to.
    async fn identity_owner(&self, key: &IdentityKey<'_>) -> Result<Option<UserId>, StoreError>;
    /// Atomically creates `user` with the identity of `profile`, unless that identity already
    /// exists; returns the id of the user the identity belongs to afterwards (the new user,
    /// or the winner of a concurrent first sign-in).
    async fn create_linked(
        &self,
        user: &User,
        profile: &Profile,
        now: i64,
    ) -> Result<UserId, StoreError>;
    /// A sign-in of the identity of `profile`, in one round trip (one D1 batch, so one
    /// transaction): creates `fresh` with the identity unless the identity exists (atomically,
    /// as [`UserStore::create_linked`]); then, unless its user is deactivated, refreshes the
    /// user's name/email/picture (where the provider sent them) and login times and the
    /// identity's profile, and records `event` for the user (its `user_id` is filled in);
    /// finally reads the user back. `None`: the identity's user is gone (deleted meanwhile).
    /// A deactivated user is returned as stored, with nothing written.
    /// `fresh: None`: an unknown identity makes no user (`Ok(None)`, nothing written).
    async fn sign_in(
        &self,
        fresh: Option<&User>,
        profile: &Profile,
        event: Option<&Event>,
        now: i64,
    ) -> Result<Option<User>, StoreError>;
    async fn get_user(&self, id: &UserId) -> Result<Option<User>, StoreError>;
    /// The user of a session being renewed, and whether the session `sid` was ended
    /// ([`crate::platform::SpendKind::EndedSession`] in the spent-set): one round trip.
    async fn renewal_view(
        &self,
        user_id: &UserId,
        sid: &SessionId,
    ) -> Result<Option<(User, bool)>, StoreError>;
    async fn record_event(&self, event: &Event) -> Result<(), StoreError>;

    // The admin API and self-service linking (README "Admin API", "Routes").

    /// Users newest first (`created_at` desc, then `id` desc), strictly after `q.after`,
    /// optionally only those whose email equals `q.email` (case-insensitively); at most
    /// `q.limit` of them.
    async fn list_users(&self, q: &UserQuery) -> Result<Vec<User>, StoreError>;
    /// Inserts a new user (no identity).
    async fn create_user(&self, user: &User) -> Result<(), StoreError>;
    /// Applies `patch` in one statement; `None` when there is no such user. A changed email
    /// is no longer verified.
    async fn update_user(
        &self,
        id: &UserId,
        patch: &UserPatch,
        now: i64,
    ) -> Result<Option<User>, StoreError>;
    /// Refuses, from now on, every session of the user begun at or before `at`
    /// ([`User::sessions_valid_after`]; it never moves back).
    async fn end_sessions_until(&self, user_id: &UserId, at: i64) -> Result<(), StoreError>;
    /// Sets `active`; `false` when there is no such user.
    async fn set_user_active(
        &self,
        id: &UserId,
        active: bool,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Deletes the user and its identities in one batch; `false` when there is no such user.
    /// Audit events stay (until pruned).
    async fn delete_user(&self, id: &UserId) -> Result<bool, StoreError>;
    /// The identities linked to a user, oldest first.
    async fn identities_of(&self, user_id: &UserId) -> Result<Vec<Identity>, StoreError>;
    /// Links the identity of `profile` to `user_id` unless it already belongs to someone
    /// (atomic: a concurrent first sign-in cannot make it belong to two users).
    async fn link_identity(
        &self,
        user_id: &UserId,
        profile: &Profile,
        now: i64,
    ) -> Result<LinkOutcome, StoreError>;
    /// Removes the identity `key` from `user_id`, unless it is the user's last identity
    /// (atomic: two concurrent unlinks cannot remove the last two).
    async fn unlink_identity(
        &self,
        user_id: &UserId,
        key: &IdentityKey<'_>,
    ) -> Result<UnlinkOutcome, StoreError>;
    /// A user's audit events newest first (`at` desc, then `id` desc), strictly after
    /// `after` (an `(at, id)` cursor); at most `limit`.
    async fn events_of(
        &self,
        user_id: &UserId,
        limit: u32,
        after: Option<(i64, i64)>,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    /// Deletes at most `max` events older than `before`; returns how many went.
    async fn prune_events(&self, before: i64, max: u32) -> Result<u64, StoreError>;

    // Sign-up invitations (the access policy).

    /// Stores a new invitation.
    async fn create_invitation(&self, inv: &Invitation) -> Result<(), StoreError>;
    /// The invitation whose secret has this SHA-256.
    async fn invitation_by_hash(&self, token_hash: &str) -> Result<Option<Invitation>, StoreError>;
    /// Invitations that have not expired by `now`, newest first, at most `limit`.
    async fn list_invitations(&self, now: i64, limit: u32) -> Result<Vec<Invitation>, StoreError>;
    /// Deletes one; `false` when there is no such invitation.
    async fn delete_invitation(&self, id: &str) -> Result<bool, StoreError>;
    /// Records who accepted it, and when (it was spent in the spent-set first).
    async fn mark_invitation_used(
        &self,
        id: &str,
        user_id: &UserId,
        at: i64,
    ) -> Result<(), StoreError>;
}

/// A sign-up invitation (`POST /admin/invitations`).
#[derive(Debug, Clone, PartialEq)]
pub struct Invitation {
    pub id: String,
    /// SHA-256 (base64url) of the secret in the invitation's URL.
    pub token_hash: String,
    /// When set, the provider-verified email must be this one.
    pub email: Option<String>,
    /// Roles the new user (or the attached one) gets.
    pub roles: Vec<String>,
    pub return_to: String,
    /// Attach the new identity to this existing user instead of making a user.
    pub user_id: Option<UserId>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub used_by: Option<UserId>,
}

impl Invitation {
    /// The invitation object of the API (never its secret).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "id": self.id, "email": self.email, "roles": self.roles, "return_to": self.return_to,
            "user_id": self.user_id.as_ref().map(UserId::as_str), "created_at": rfc3339(self.created_at),
            "expires_at": rfc3339(self.expires_at), "used_at": self.used_at.map(rfc3339),
            "used_by": self.used_by.as_ref().map(UserId::as_str),
        })
    }
}

/// A page of users (see [`UserStore::list_users`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserQuery {
    pub limit: u32,
    /// The `(created_at, id)` of the last user of the previous page.
    pub after: Option<(i64, String)>,
    pub email: Option<String>,
}

/// An update of a user's editable fields: `None` leaves a field alone, `Some(None)` clears
/// it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserPatch {
    pub name: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub metadata: Option<Value>,
    pub roles: Option<Vec<String>>,
}

impl UserPatch {
    /// The names of the fields the patch sets.
    pub fn fields(&self) -> Vec<&'static str> {
        let mut f = Vec::new();
        if self.name.is_some() {
            f.push("name");
        }
        if self.email.is_some() {
            f.push("email");
        }
        if self.phone.is_some() {
            f.push("phone");
        }
        if self.metadata.is_some() {
            f.push("metadata");
        }
        if self.roles.is_some() {
            f.push("roles");
        }
        f
    }

    pub fn is_empty(&self) -> bool {
        self.fields().is_empty()
    }

    /// Applies the patch to `u` (what a store's single UPDATE does).
    pub fn apply(&self, u: &mut User, now: i64) {
        if let Some(v) = &self.name {
            u.name = v.clone();
        }
        if let Some(v) = &self.email {
            if *v != u.email {
                u.email_verified = false;
            }
            u.email = v.clone();
        }
        if let Some(v) = &self.phone {
            u.phone = v.clone();
        }
        if let Some(v) = &self.metadata {
            u.metadata = v.clone();
        }
        if let Some(v) = &self.roles {
            u.roles = v.clone();
        }
        u.updated_at = now;
    }
}

/// What [`UserStore::link_identity`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkOutcome {
    /// The identity is now linked to the user.
    Linked,
    /// It already was.
    AlreadyLinked,
    /// It belongs to this other user; nothing changed.
    OwnedByOther(UserId),
    /// There is no such user.
    NoUser,
}

/// What [`UserStore::unlink_identity`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlinkOutcome {
    Unlinked,
    /// Refused: it is the user's last identity.
    LastIdentity,
    /// The user has no such identity.
    NotFound,
}

/// An audit event as stored (read back for the admin API).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub id: i64,
    pub user_id: Option<UserId>,
    pub kind: String,
    pub at: i64,
    pub ip: String,
    pub user_agent: String,
    pub detail: Value,
}

impl StoredEvent {
    /// The event object of the API.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "id": self.id, "type": self.kind, "at": rfc3339(self.at), "ip": self.ip,
            "user_agent": self.user_agent, "detail": self.detail,
        })
    }
}

impl Identity {
    /// The identity object of the API (the provider's raw profile is not shown).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "issuer": self.issuer, "sub": self.sub, "provider": self.provider,
            "email": self.email, "created_at": rfc3339(self.created_at),
            "last_login_at": self.last_login_at.map(rfc3339),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_object_has_exactly_the_api_fields() {
        let mut u = User::from_profile(&crate::testing::profile("i", "s", Some("a@b.c")), 0);
        u.phone = Some("+4912345678".into());
        u.sessions_valid_after = 99;
        assert_eq!(
            u.to_json(),
            serde_json::json!({
                "id": u.id, "name": "Test", "email": "a@b.c", "email_verified": true,
                "phone": "+4912345678", "picture": null, "active": true, "metadata": {}, "roles": [],
                "created_at": "1970-01-01T00:00:00Z", "updated_at": "1970-01-01T00:00:00Z",
                "last_login_at": "1970-01-01T00:00:00Z",
            })
        );
    }
}
