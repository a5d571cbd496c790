//! Where passkeys live: one row per credential (public key, algorithm, sign count, backup
//! flags, name) beside its identity `("webauthn:{rp_id}", credential id)`, which is what
//! makes it one of its user's sign-in methods. D1 in the Worker (the row references the
//! identity, so unlinking the identity or deleting the user removes it), maps in tests.

#![allow(async_fn_in_trait)]

use crate::error::StoreError;
use crate::jwt::jwk::PublicJwk;
use crate::jwt::Alg;
use crate::users::rfc3339;

/// A registered passkey.
#[derive(Debug, Clone, PartialEq)]
pub struct Passkey {
    /// The credential id, base64url: the `sub` of its identity.
    pub id: String,
    /// `webauthn:{rp_id}`: the issuer of its identity.
    pub issuer: String,
    pub user_id: String,
    pub name: String,
    pub key: PublicJwk,
    pub alg: Alg,
    pub sign_count: u32,
    /// The authenticator may back the credential up (BE), and has (BS).
    pub backup_eligible: bool,
    pub backed_up: bool,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl Passkey {
    /// The passkey object of the API (no key material).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id, "name": self.name, "algorithm": self.alg.name(),
            "backup_eligible": self.backup_eligible, "backed_up": self.backed_up,
            "created_at": rfc3339(self.created_at), "last_used_at": self.last_used_at.map(rfc3339),
        })
    }
}

/// What [`PasskeyStore::add_passkey`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    Added,
    /// The credential is registered already (to this user or another); nothing changed.
    AlreadyRegistered,
}

/// Passkey storage (D1 in the Worker).
pub trait PasskeyStore {
    /// Adds the passkey and its identity in one transaction, unless the credential is
    /// registered already.
    async fn add_passkey(&self, pk: &Passkey, provider: &str) -> Result<AddOutcome, StoreError>;
    /// The passkey `id` of `issuer`, if its identity still exists.
    async fn passkey(&self, issuer: &str, id: &str) -> Result<Option<Passkey>, StoreError>;
    /// A user's passkeys, oldest first.
    async fn passkeys_of(&self, user_id: &str) -> Result<Vec<Passkey>, StoreError>;
    /// Records a sign-in: the sign count (never lowered), the backup state, the time.
    async fn passkey_used(&self, pk: &Passkey, now: i64) -> Result<(), StoreError>;
    /// Renames one of `user_id`'s passkeys; `false` when it has none with this id.
    async fn rename_passkey(&self, user_id: &str, id: &str, name: &str)
        -> Result<bool, StoreError>;
}
