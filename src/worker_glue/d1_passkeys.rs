//! [`PasskeyStore`] over D1. A passkey's row references its identity (`ON DELETE CASCADE`),
//! and every read joins the identity too, so a passkey whose identity was unlinked, or whose
//! user was deleted, can no longer sign anyone in.

use super::{err, n, s, D1Users};
use crate::jwt::Alg;
use crate::platform::StoreError;
use crate::webauthn::store::{AddOutcome, Passkey, PasskeyStore};
use serde_json::Value;

/// One passkey from the JSON object its query builds (`json_object` in SQL): read as a
/// `Value` through the string reader every other query uses, rather than a row struct, whose
/// deserializer would cost kilobytes of bundle.
fn passkey_of(v: &Value) -> Option<Passkey> {
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(String::from);
    let num = |k: &str| v.get(k).and_then(Value::as_i64);
    let key: Value = serde_json::from_slice(v.get("public_key")?.as_str()?.as_bytes()).ok()?;
    Some(Passkey {
        key: crate::jwt::jwk::PublicJwk::parse(&key).ok()?,
        alg: Alg::from_name(v.get("alg")?.as_str()?)?,
        id: text("credential_id")?,
        issuer: text("issuer")?,
        user_id: text("user_id")?,
        name: text("name")?,
        sign_count: num("sign_count")? as u32,
        backup_eligible: num("backup_eligible")? != 0,
        backed_up: num("backup_state")? != 0,
        created_at: num("created_at")?,
        last_used_at: num("last_used_at"),
    })
}

/// The passkeys whose identity still exists, as one JSON array (SQLite aggregates the
/// subquery's rows in its `ORDER BY` order).
const SELECT: &str = "SELECT json_group_array(json_object('credential_id', credential_id, \
    'issuer', issuer, 'user_id', user_id, 'name', name, 'public_key', public_key, 'alg', alg, \
    'sign_count', sign_count, 'backup_eligible', backup_eligible, 'backup_state', backup_state, \
    'created_at', created_at, 'last_used_at', last_used_at)) AS j FROM (SELECT p.* FROM passkeys p \
    JOIN identities i ON i.issuer = p.issuer AND i.sub = p.credential_id AND i.user_id = p.user_id";

impl D1Users {
    async fn passkey_rows(
        &self,
        filter: &str,
        args: &[wasm_bindgen::JsValue],
    ) -> Result<Vec<Passkey>, StoreError> {
        let row: Option<Value> = self
            .one(&format!("{SELECT} WHERE {filter})"), args)
            .await?
            .first()?;
        let json = row
            .as_ref()
            .and_then(|r| r.get("j"))
            .and_then(Value::as_str)
            .unwrap_or("[]");
        let list: Value = serde_json::from_slice(json.as_bytes()).map_err(err)?;
        let rows = list.as_array().map(Vec::as_slice).unwrap_or_default();
        rows.iter()
            .map(|v| passkey_of(v).ok_or_else(|| err("a passkey row that does not parse")))
            .collect()
    }
}

impl PasskeyStore for D1Users {
    async fn add_passkey(&self, pk: &Passkey, provider: &str) -> Result<AddOutcome, StoreError> {
        let key = serde_json::to_vec(&pk.key).map_err(err)?;
        let key = String::from_utf8(key).unwrap_or_default();
        let identity = self.stmt(
            "INSERT INTO identities (issuer, sub, provider, user_id, profile, created_at) \
             SELECT ?1, ?2, ?3, ?4, '{}', ?5 WHERE EXISTS (SELECT 1 FROM users WHERE id = ?4) \
             ON CONFLICT (issuer, sub) DO NOTHING",
            &[
                s(&pk.issuer),
                s(&pk.id),
                s(provider),
                s(&pk.user_id),
                n(pk.created_at),
            ],
        )?;
        let passkey = self.stmt(
            "INSERT INTO passkeys (issuer, credential_id, user_id, name, public_key, alg, sign_count, \
             backup_eligible, backup_state, created_at) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 WHERE EXISTS \
             (SELECT 1 FROM identities WHERE issuer = ?1 AND sub = ?2 AND user_id = ?3) \
             ON CONFLICT (issuer, credential_id) DO NOTHING",
            &[
                s(&pk.issuer), s(&pk.id), s(&pk.user_id), s(&pk.name), s(&key), s(pk.alg.name()),
                n(pk.sign_count as i64), n(pk.backup_eligible as i64), n(pk.backed_up as i64), n(pk.created_at),
            ],
        )?;
        let results = self.batch(vec![identity, passkey]).await?;
        let added = super::nth(&results, 0)?.changes()? > 0;
        Ok(if added {
            AddOutcome::Added
        } else {
            AddOutcome::AlreadyRegistered
        })
    }

    async fn passkey(&self, issuer: &str, id: &str) -> Result<Option<Passkey>, StoreError> {
        let rows = self
            .passkey_rows(
                "p.issuer = ?1 AND p.credential_id = ?2",
                &[s(issuer), s(id)],
            )
            .await?;
        Ok(rows.into_iter().next())
    }

    async fn passkeys_of(&self, user_id: &str) -> Result<Vec<Passkey>, StoreError> {
        self.passkey_rows(
            "p.user_id = ?1 ORDER BY p.created_at, p.credential_id",
            &[s(user_id)],
        )
        .await
    }

    async fn passkey_used(&self, pk: &Passkey, now: i64) -> Result<(), StoreError> {
        self.exec(
            "UPDATE passkeys SET sign_count = MAX(sign_count, ?3), backup_state = ?4, last_used_at = ?5 \
             WHERE issuer = ?1 AND credential_id = ?2",
            &[s(&pk.issuer), s(&pk.id), n(pk.sign_count as i64), n(pk.backed_up as i64), n(now)],
        )
        .await?;
        Ok(())
    }

    async fn rename_passkey(
        &self,
        user_id: &str,
        id: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        let changed = self
            .exec(
                "UPDATE passkeys SET name = ?3 WHERE user_id = ?1 AND credential_id = ?2",
                &[s(user_id), s(id), s(name)],
            )
            .await?;
        Ok(changed > 0)
    }
}
