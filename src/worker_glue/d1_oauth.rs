//! [`OAuthStore`] over D1. The code exchange and the refresh rotation are one batch each
//! (D1 runs a batch as one transaction): the spend or the rotation mark and the new refresh
//! token go together, and the caller learns from the first statement's change count whether
//! it won.

use super::d1::{err, n, nth, opt, s, D1Result, D1Users, Row, Stmt, UserRow};
use crate::fields::Fields;
use crate::oauth::client::{Client, ClientType, Settings};
use crate::oauth::store::{ConsentedApp, OAuthStore, RefreshRow};
use crate::platform::StoreError;
use crate::users::User;
use serde_json::Value;
use wasm_bindgen::JsValue;

/// Rows come back as one JSON text column (`json_object` in SQL): one small row type for
/// every query instead of a serde derive per table, which would cost the bundle kilobytes.
struct J {
    j: Option<String>,
}

impl Row for J {
    fn read(f: &Fields) -> Result<Self, String> {
        Ok(J { j: f.opt_str("j")? })
    }
}

fn parse_json(j: &str) -> Result<Value, StoreError> {
    serde_json::from_slice(j.as_bytes()).map_err(|e| err(format!("row JSON: {e}")))
}

fn text(v: &Value, k: &str) -> Result<String, StoreError> {
    v[k].as_str()
        .map(String::from)
        .ok_or_else(|| err(format!("row without {k}")))
}

fn int(v: &Value, k: &str) -> i64 {
    v[k].as_f64().unwrap_or(0.0) as i64
}

/// A client from its `json_object` row.
fn client_from(v: &Value) -> Result<Client, StoreError> {
    Ok(Client {
        id: text(v, "id")?,
        name: text(v, "name")?,
        kind: ClientType::parse(&text(v, "type")?).unwrap_or(ClientType::Confidential),
        secret_hash: v["secret_hash"].as_str().map(String::from),
        settings: Settings::from_value(&parse_json(&text(v, "settings")?)?),
        created_at: int(v, "created_at"),
        updated_at: int(v, "updated_at"),
    })
}

/// A refresh token from its `json_object` row.
fn refresh_from(v: &Value) -> Result<RefreshRow, StoreError> {
    Ok(RefreshRow {
        hash: text(v, "hash")?,
        family: text(v, "family")?,
        grant: crate::oauth::code::Grant::from_stored(&text(v, "grant_data")?)
            .ok_or_else(|| err("refresh grant: malformed"))?,
        created_at: int(v, "created_at"),
        expires_at: int(v, "expires_at"),
        used_at: v["used_at"].as_f64().map(|t| t as i64),
    })
}

const CLIENT_JSON: &str = "json_object('id', id, 'name', name, 'type', type, 'secret_hash', secret_hash, 'settings', settings, 'created_at', created_at, 'updated_at', updated_at)";
const REFRESH_JSON: &str = "json_object('hash', hash, 'family', family, 'grant_data', grant_data, 'created_at', created_at, 'expires_at', expires_at, 'used_at', used_at)";

fn kind(c: &Client) -> &'static str {
    c.kind.name()
}

fn settings(c: &Client) -> Result<String, StoreError> {
    Ok(crate::fields::json_text(&c.settings.to_value()))
}

/// The JSON of a batch result's first row, if any.
fn first(r: Option<&D1Result>) -> Result<Option<Value>, StoreError> {
    let rows: Vec<J> = r.ok_or_else(|| err("batch result missing"))?.rows()?;
    rows.into_iter()
        .next()
        .and_then(|r| r.j)
        .map(|j| parse_json(&j))
        .transpose()
}

impl D1Users {
    /// One statement's `j` column, parsed.
    async fn json(&self, sql: &str, args: &[JsValue]) -> Result<Option<Value>, StoreError> {
        let row: Option<J> = self.one(sql, args).await?.first()?;
        row.and_then(|r| r.j).map(|j| parse_json(&j)).transpose()
    }

    fn insert_refresh(&self, r: &RefreshRow) -> Result<Stmt, StoreError> {
        let grant = r.grant.to_stored();
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
        let sql = format!("SELECT {CLIENT_JSON} AS j FROM clients WHERE id = ?1");
        self.json(&sql, &[s(id)])
            .await?
            .as_ref()
            .map(client_from)
            .transpose()
    }

    async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        let sql = format!("SELECT json_group_array({CLIENT_JSON}) AS j FROM (SELECT * FROM clients ORDER BY created_at, id LIMIT 1000)");
        let all = self.json(&sql, &[]).await?.unwrap_or_default();
        all.as_array()
            .into_iter()
            .flatten()
            .map(client_from)
            .collect()
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
        let results = self.batch(stmts).await?;
        Ok(nth(&results, 2)?.changes()? > 0)
    }

    async fn client_and_user(
        &self,
        client_id: &str,
        user_id: &str,
    ) -> Result<(Option<Client>, Option<User>), StoreError> {
        let stmts = vec![
            self.stmt(
                &format!("SELECT {CLIENT_JSON} AS j FROM clients WHERE id = ?1"),
                &[s(client_id)],
            )?,
            self.stmt("SELECT * FROM users WHERE id = ?1", &[s(user_id)])?,
        ];
        let results = self.batch(stmts).await?;
        let client = first(results.first())?
            .as_ref()
            .map(client_from)
            .transpose()?;
        let user = user_row(results.get(1))?;
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
        let results = self.batch(stmts).await?;
        Ok(nth(&results, 0)?.changes()? == 1)
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
                &format!("SELECT {REFRESH_JSON} AS j FROM oauth_refresh_tokens WHERE hash = ?1"),
                &[s(hash)],
            )?,
            self.stmt(
                &format!("SELECT {CLIENT_JSON} AS j FROM clients WHERE id = (SELECT client_id FROM oauth_refresh_tokens WHERE hash = ?1)"),
                &[s(hash)],
            )?,
            self.stmt(
                "SELECT * FROM users WHERE id = (SELECT user_id FROM oauth_refresh_tokens WHERE hash = ?1)",
                &[s(hash)],
            )?,
        ];
        let results = self.batch(stmts).await?;
        let Some(row) = first(results.first())? else {
            return Ok(None);
        };
        let client = first(results.get(1))?
            .as_ref()
            .map(client_from)
            .transpose()?;
        let user = user_row(results.get(2))?;
        Ok(Some((refresh_from(&row)?, client, user)))
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
        let results = self.batch(stmts).await?;
        Ok(nth(&results, 0)?.changes()? == 1)
    }

    async fn consent(&self, user_id: &str, client_id: &str) -> Result<Option<String>, StoreError> {
        struct Scope {
            scope: String,
        }
        impl Row for Scope {
            fn read(f: &Fields) -> Result<Self, String> {
                Ok(Scope {
                    scope: f.str("scope")?,
                })
            }
        }
        let row: Option<Scope> = self
            .one(
                "SELECT scope FROM oauth_consents WHERE user_id = ?1 AND client_id = ?2",
                &[s(user_id), s(client_id)],
            )
            .await?
            .first()?;
        Ok(row.map(|r| r.scope))
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
        let all = self
            .json(
                "SELECT json_group_array(json_object('client_id', c.client_id, 'name', k.name, 'scope', c.scope, 'created_at', c.created_at)) AS j \
                 FROM (SELECT * FROM oauth_consents WHERE user_id = ?1 ORDER BY created_at DESC LIMIT 200) c LEFT JOIN clients k ON k.id = c.client_id",
                &[s(user_id)],
            )
            .await?
            .unwrap_or_default();
        all.as_array()
            .into_iter()
            .flatten()
            .map(|v| {
                Ok(ConsentedApp {
                    client_id: text(v, "client_id")?,
                    name: v["name"].as_str().unwrap_or_default().to_string(),
                    scope: text(v, "scope")?,
                    created_at: int(v, "created_at"),
                })
            })
            .collect()
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
        let results = self.batch(stmts).await?;
        let mut total = 0;
        for r in &results {
            total += r.changes()?;
        }
        Ok(total > 0)
    }
}

/// The user of a batch result (`SELECT * FROM users`), if any.
fn user_row(r: Option<&D1Result>) -> Result<Option<User>, StoreError> {
    let rows: Vec<UserRow> = r.ok_or_else(|| err("batch result missing"))?.rows()?;
    Ok(rows.into_iter().next().map(User::from))
}
