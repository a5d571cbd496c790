//! [`OAuthStore`] over D1. The code exchange and the refresh rotation are one batch each
//! (D1 runs a batch as one transaction): the spend or the rotation mark and the new refresh
//! token go together, and the caller learns from the first statement's change count whether
//! it won.

use super::d1::{changes, err, n, opt, s, D1Users, UserRow};
use crate::oauth::client::{Client, ClientType};
use crate::oauth::store::{ConsentedApp, OAuthStore, RefreshRow};
use crate::platform::StoreError;
use crate::users::User;
use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::d1::{D1PreparedStatement, D1Result};

#[derive(Deserialize)]
struct ClientRow {
    id: String,
    name: String,
    #[serde(rename = "type")]
    kind: String,
    secret_hash: Option<String>,
    settings: String,
    created_at: f64,
    updated_at: f64,
}

impl ClientRow {
    fn into_client(self) -> Result<Client, StoreError> {
        Ok(Client {
            id: self.id,
            name: self.name,
            kind: if self.kind == "public" {
                ClientType::Public
            } else {
                ClientType::Confidential
            },
            secret_hash: self.secret_hash,
            settings: serde_json::from_str(&self.settings)
                .map_err(|e| err(format!("client settings: {e}")))?,
            created_at: self.created_at as i64,
            updated_at: self.updated_at as i64,
        })
    }
}

#[derive(Deserialize)]
struct RefreshDbRow {
    hash: String,
    family: String,
    grant_data: String,
    created_at: f64,
    expires_at: f64,
    used_at: Option<f64>,
}

impl RefreshDbRow {
    fn into_row(self) -> Result<RefreshRow, StoreError> {
        Ok(RefreshRow {
            hash: self.hash,
            family: self.family,
            grant: serde_json::from_str(&self.grant_data)
                .map_err(|e| err(format!("refresh grant: {e}")))?,
            created_at: self.created_at as i64,
            expires_at: self.expires_at as i64,
            used_at: self.used_at.map(|t| t as i64),
        })
    }
}

#[derive(Deserialize)]
struct ConsentRow {
    client_id: String,
    name: Option<String>,
    scope: String,
    created_at: f64,
}

#[derive(Deserialize)]
struct ScopeRow {
    scope: String,
}

fn kind(c: &Client) -> &'static str {
    match c.kind {
        ClientType::Public => "public",
        ClientType::Confidential => "confidential",
    }
}

fn settings(c: &Client) -> Result<String, StoreError> {
    serde_json::to_string(&c.settings).map_err(err)
}

fn first<T: serde::de::DeserializeOwned>(r: Option<&D1Result>) -> Result<Option<T>, StoreError> {
    let rows: Vec<T> = r
        .ok_or_else(|| err("batch result missing"))?
        .results()
        .map_err(err)?;
    Ok(rows.into_iter().next())
}

const CLIENT_COLUMNS: &str = "id, name, type, secret_hash, settings, created_at, updated_at";

impl D1Users {
    fn insert_refresh(&self, r: &RefreshRow) -> Result<D1PreparedStatement, StoreError> {
        let grant = serde_json::to_string(&r.grant).map_err(err)?;
        self.stmt(
            "INSERT INTO oauth_refresh_tokens (hash, family, client_id, user_id, grant_data, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            &[s(&r.hash), s(&r.family), s(&r.grant.client_id), s(&r.grant.user_id), s(&grant), n(r.created_at), n(r.expires_at)],
        )
    }
}

impl OAuthStore for D1Users {
    async fn create_client(&self, c: &Client) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO clients (id, name, type, secret_hash, settings, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            &[s(&c.id), s(&c.name), s(kind(c)), opt(&c.secret_hash), s(&settings(c)?), n(c.created_at), n(c.updated_at)],
        )
        .await?;
        Ok(())
    }

    async fn get_client(&self, id: &str) -> Result<Option<Client>, StoreError> {
        let rows: Vec<ClientRow> = self
            .rows(
                &format!("SELECT {CLIENT_COLUMNS} FROM clients WHERE id = ?1"),
                &[s(id)],
            )
            .await?;
        rows.into_iter()
            .next()
            .map(ClientRow::into_client)
            .transpose()
    }

    async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        let rows: Vec<ClientRow> = self
            .rows(
                &format!("SELECT {CLIENT_COLUMNS} FROM clients ORDER BY created_at, id LIMIT 1000"),
                &[],
            )
            .await?;
        rows.into_iter().map(ClientRow::into_client).collect()
    }

    async fn update_client(&self, c: &Client) -> Result<bool, StoreError> {
        let changed = self
            .exec(
                "UPDATE clients SET name = ?2, secret_hash = ?3, settings = ?4, updated_at = ?5 WHERE id = ?1",
                &[s(&c.id), s(&c.name), opt(&c.secret_hash), s(&settings(c)?), n(c.updated_at)],
            )
            .await?;
        Ok(changed > 0)
    }

    async fn delete_client(&self, id: &str) -> Result<bool, StoreError> {
        // Explicit deletes, not only the foreign keys' cascade: the same in every database.
        let stmts = vec![
            self.stmt(
                "DELETE FROM oauth_refresh_tokens WHERE client_id = ?1",
                &[s(id)],
            )?,
            self.stmt("DELETE FROM oauth_consents WHERE client_id = ?1", &[s(id)])?,
            self.stmt("DELETE FROM clients WHERE id = ?1", &[s(id)])?,
        ];
        let results = self.0.batch(stmts).await.map_err(err)?;
        Ok(changes(results.get(2).ok_or_else(|| err("batch result missing"))?)? > 0)
    }

    async fn client_and_user(
        &self,
        client_id: &str,
        user_id: &str,
    ) -> Result<(Option<Client>, Option<User>), StoreError> {
        let stmts = vec![
            self.stmt(
                &format!("SELECT {CLIENT_COLUMNS} FROM clients WHERE id = ?1"),
                &[s(client_id)],
            )?,
            self.stmt("SELECT * FROM users WHERE id = ?1", &[s(user_id)])?,
        ];
        let results = self.0.batch(stmts).await.map_err(err)?;
        let client = first::<ClientRow>(results.first())?
            .map(ClientRow::into_client)
            .transpose()?;
        let user = first::<UserRow>(results.get(1))?.map(User::from);
        Ok((client, user))
    }

    async fn redeem_code(
        &self,
        code_hash: &str,
        spent_until: i64,
        refresh: Option<&RefreshRow>,
    ) -> Result<bool, StoreError> {
        let key = format!("code:{code_hash}");
        let mut stmts = vec![self.stmt(
            "INSERT INTO spent (key, expires_at) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
            &[s(&key), n(spent_until)],
        )?];
        if let Some(r) = refresh {
            stmts.push(self.insert_refresh(r)?);
        }
        let results = self.0.batch(stmts).await.map_err(err)?;
        Ok(changes(results.first().ok_or_else(|| err("batch result missing"))?)? == 1)
    }

    async fn revoke_family(&self, family: &str) -> Result<(), StoreError> {
        self.exec(
            "DELETE FROM oauth_refresh_tokens WHERE family = ?1",
            &[s(family)],
        )
        .await?;
        Ok(())
    }

    async fn refresh_context(
        &self,
        hash: &str,
    ) -> Result<Option<(RefreshRow, Option<Client>, Option<User>)>, StoreError> {
        let stmts = vec![
            self.stmt(
                "SELECT hash, family, grant_data, created_at, expires_at, used_at FROM oauth_refresh_tokens WHERE hash = ?1",
                &[s(hash)],
            )?,
            self.stmt(
                &format!("SELECT {CLIENT_COLUMNS} FROM clients WHERE id = (SELECT client_id FROM oauth_refresh_tokens WHERE hash = ?1)"),
                &[s(hash)],
            )?,
            self.stmt(
                "SELECT * FROM users WHERE id = (SELECT user_id FROM oauth_refresh_tokens WHERE hash = ?1)",
                &[s(hash)],
            )?,
        ];
        let results = self.0.batch(stmts).await.map_err(err)?;
        let Some(row) = first::<RefreshDbRow>(results.first())? else {
            return Ok(None);
        };
        let client = first::<ClientRow>(results.get(1))?
            .map(ClientRow::into_client)
            .transpose()?;
        let user = first::<UserRow>(results.get(2))?.map(User::from);
        Ok(Some((row.into_row()?, client, user)))
    }

    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new: &RefreshRow,
        now: i64,
    ) -> Result<bool, StoreError> {
        let stmts = vec![
            self.stmt(
                "UPDATE oauth_refresh_tokens SET used_at = ?2 WHERE hash = ?1 AND used_at IS NULL",
                &[s(old_hash), n(now)],
            )?,
            self.insert_refresh(new)?,
        ];
        let results = self.0.batch(stmts).await.map_err(err)?;
        Ok(changes(results.first().ok_or_else(|| err("batch result missing"))?)? == 1)
    }

    async fn consent(&self, user_id: &str, client_id: &str) -> Result<Option<String>, StoreError> {
        let rows: Vec<ScopeRow> = self
            .rows(
                "SELECT scope FROM oauth_consents WHERE user_id = ?1 AND client_id = ?2",
                &[s(user_id), s(client_id)],
            )
            .await?;
        Ok(rows.into_iter().next().map(|r| r.scope))
    }

    async fn save_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO oauth_consents (user_id, client_id, scope, created_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, created_at = excluded.created_at",
            &[s(user_id), s(client_id), s(scope), n(now)],
        )
        .await?;
        Ok(())
    }

    async fn apps_of(&self, user_id: &str) -> Result<Vec<ConsentedApp>, StoreError> {
        let rows: Vec<ConsentRow> = self
            .rows(
                "SELECT c.client_id, k.name, c.scope, c.created_at FROM oauth_consents c \
                 LEFT JOIN clients k ON k.id = c.client_id WHERE c.user_id = ?1 ORDER BY c.created_at DESC LIMIT 200",
                &[s(user_id)],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| ConsentedApp {
                client_id: r.client_id,
                name: r.name.unwrap_or_default(),
                scope: r.scope,
                created_at: r.created_at as i64,
            })
            .collect())
    }

    async fn revoke_app(&self, user_id: &str, client_id: &str) -> Result<bool, StoreError> {
        let args: [JsValue; 2] = [s(user_id), s(client_id)];
        let stmts = vec![
            self.stmt(
                "DELETE FROM oauth_consents WHERE user_id = ?1 AND client_id = ?2",
                &args,
            )?,
            self.stmt(
                "DELETE FROM oauth_refresh_tokens WHERE user_id = ?1 AND client_id = ?2",
                &args,
            )?,
        ];
        let results = self.0.batch(stmts).await.map_err(err)?;
        let mut total = 0;
        for r in &results {
            total += changes(r)?;
        }
        Ok(total > 0)
    }
}
