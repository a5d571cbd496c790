//! Storage of the OpenID Provider (D1 in the Worker, maps in tests): clients, consents and
//! refresh tokens. The methods are shaped so that each route stays within its D1 budget: a
//! code exchange is [`OAuthStore::client_and_user`] then [`OAuthStore::redeem_code`] — two
//! round trips, each one statement or one batch.

#![allow(async_fn_in_trait)]

use super::client::Client;
use super::code::Grant;
use crate::platform::StoreError;
use crate::users::User;

/// A refresh token as stored (never the token itself: its SHA-256).
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshRow {
    pub hash: String,
    /// The hash of the code the family began with.
    pub family: String,
    pub grant: Grant,
    pub created_at: i64,
    pub expires_at: i64,
    /// When it was rotated; a rotated token presented again revokes the family.
    pub used_at: Option<i64>,
}

/// An app a person has agreed to (`GET /auth/apps`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConsentedApp {
    pub client_id: String,
    pub name: String,
    pub scope: String,
    pub created_at: i64,
}

/// What the OpenID Provider keeps.
pub trait OAuthStore {
    async fn create_client(&self, c: &Client) -> Result<(), StoreError>;
    async fn get_client(&self, id: &str) -> Result<Option<Client>, StoreError>;
    /// Every client, oldest first.
    async fn list_clients(&self) -> Result<Vec<Client>, StoreError>;
    /// Replaces the stored client; `false` when there is none with its id.
    async fn update_client(&self, c: &Client) -> Result<bool, StoreError>;
    /// Deletes a client with its consents and refresh tokens; `false` when there was none.
    async fn delete_client(&self, id: &str) -> Result<bool, StoreError>;

    /// The client and the user of a grant, in one round trip.
    async fn client_and_user(
        &self,
        client_id: &str,
        user_id: &str,
    ) -> Result<(Option<Client>, Option<User>), StoreError>;
    /// In one round trip: spends the code (`code:` + its hash in the spent-set, kept until
    /// `spent_until`) and stores `refresh`, if any. `false`: the code was spent before —
    /// the caller then revokes the family, which also removes the `refresh` stored here.
    async fn redeem_code(
        &self,
        code_hash: &str,
        spent_until: i64,
        refresh: Option<&RefreshRow>,
    ) -> Result<bool, StoreError>;
    /// Deletes every refresh token of a family (a replayed code, a reused refresh token).
    async fn revoke_family(&self, family: &str) -> Result<(), StoreError>;

    /// A refresh token with its client and user, in one round trip.
    async fn refresh_context(
        &self,
        hash: &str,
    ) -> Result<Option<(RefreshRow, Option<Client>, Option<User>)>, StoreError>;
    /// In one round trip: marks `old_hash` used (only if it was not) and stores `new`.
    /// `false`: it was used already (a concurrent refresh) — the caller revokes the family.
    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new: &RefreshRow,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// The scope a person agreed to for a client, if any.
    async fn consent(&self, user_id: &str, client_id: &str) -> Result<Option<String>, StoreError>;
    async fn save_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &str,
        now: i64,
    ) -> Result<(), StoreError>;
    /// The apps a person agreed to.
    async fn apps_of(&self, user_id: &str) -> Result<Vec<ConsentedApp>, StoreError>;
    /// Removes a person's consent to a client and every refresh token the client holds for
    /// them, in one round trip; `false` when there was neither.
    async fn revoke_app(&self, user_id: &str, client_id: &str) -> Result<bool, StoreError>;
}
