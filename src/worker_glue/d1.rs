//! [`UserStore`] over D1. The first sign-in of an identity is one D1 batch (a transaction):
//! insert the user only if the identity does not exist yet, insert the identity unless it
//! exists, read back its owner — so concurrent first sign-ins for one `sub` make one user.

use crate::platform::StoreError;
use crate::users::{
    Event, Identity, Invitation, LinkOutcome, Profile, StoredEvent, UnlinkOutcome, User, UserPatch,
    UserQuery, UserStore,
};
use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::d1::{D1Database, D1PreparedStatement};

pub struct D1Users(pub D1Database);

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(format!("D1: {e}"))
}

fn s(v: &str) -> JsValue {
    JsValue::from_str(v)
}

fn opt(v: &Option<String>) -> JsValue {
    v.as_deref().map(JsValue::from_str).unwrap_or(JsValue::NULL)
}

fn n(v: i64) -> JsValue {
    JsValue::from_f64(v as f64)
}

#[derive(Deserialize)]
struct UserRow {
    id: String,
    name: Option<String>,
    email: Option<String>,
    email_verified: f64,
    phone: Option<String>,
    picture: Option<String>,
    active: f64,
    metadata: String,
    created_at: f64,
    updated_at: f64,
    last_login_at: Option<f64>,
    #[serde(default)]
    sessions_valid_after: f64,
    #[serde(default)]
    roles: Option<String>,
}

/// A JSON array of strings from a TEXT column ('[]' when unreadable: roles are only ever
/// written by Gatehouse, checked). Through `Value`, whose parser the bundle has anyway.
fn string_list(json: Option<&str>) -> Vec<String> {
    match json.and_then(|j| serde_json::from_str(j).ok()) {
        Some(serde_json::Value::Array(items)) => items
            .into_iter()
            .filter_map(|i| i.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> User {
        User {
            id: r.id,
            name: r.name,
            email: r.email,
            email_verified: r.email_verified != 0.0,
            phone: r.phone,
            picture: r.picture,
            active: r.active != 0.0,
            metadata: serde_json::from_str(&r.metadata).unwrap_or_else(|_| serde_json::json!({})),
            created_at: r.created_at as i64,
            updated_at: r.updated_at as i64,
            last_login_at: r.last_login_at.map(|t| t as i64),
            sessions_valid_after: r.sessions_valid_after as i64,
            roles: string_list(r.roles.as_deref()),
        }
    }
}

#[derive(Deserialize)]
struct IdentityRow {
    issuer: String,
    sub: String,
    provider: String,
    user_id: String,
    email: Option<String>,
    created_at: f64,
    last_login_at: Option<f64>,
}

impl From<IdentityRow> for Identity {
    fn from(r: IdentityRow) -> Identity {
        Identity {
            issuer: r.issuer,
            sub: r.sub,
            provider: r.provider,
            user_id: r.user_id,
            email: r.email,
            created_at: r.created_at as i64,
            last_login_at: r.last_login_at.map(|t| t as i64),
        }
    }
}

#[derive(Deserialize)]
struct EventRow {
    id: f64,
    user_id: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    at: f64,
    ip: String,
    user_agent: String,
    detail: String,
}

impl From<EventRow> for StoredEvent {
    fn from(r: EventRow) -> StoredEvent {
        StoredEvent {
            id: r.id as i64,
            user_id: r.user_id,
            kind: r.kind,
            at: r.at as i64,
            ip: r.ip,
            user_agent: r.user_agent,
            detail: serde_json::from_str(&r.detail).unwrap_or_else(|_| serde_json::json!({})),
        }
    }
}

#[derive(Deserialize)]
struct Count {
    n: f64,
}

#[derive(Deserialize)]
struct Owner {
    user_id: String,
}

fn roles_json(roles: &[String]) -> String {
    serde_json::Value::from(roles.to_vec()).to_string()
}

/// A row read as one JSON text (`json_object(…) AS j`): one small row type and the JSON
/// parser the bundle has anyway, instead of a deserializer per table.
#[derive(Deserialize)]
struct JsonRow {
    j: String,
}

/// The columns of an invitation as one JSON object.
const INVITATION_JSON: &str = "json_object('id', id, 'token_hash', token_hash, 'email', email, \
    'roles', roles, 'return_to', return_to, 'user_id', user_id, 'created_at', created_at, \
    'expires_at', expires_at, 'used_at', used_at, 'used_by', used_by) AS j";

fn invitation_of(row: JsonRow) -> Option<Invitation> {
    let v: serde_json::Value = serde_json::from_str(&row.j).ok()?;
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).map(String::from);
    let time = |k: &str| v.get(k).and_then(|x| x.as_f64()).map(|t| t as i64);
    Some(Invitation {
        id: text("id")?,
        token_hash: text("token_hash")?,
        email: text("email"),
        roles: string_list(text("roles").as_deref()),
        return_to: text("return_to")?,
        user_id: text("user_id"),
        created_at: time("created_at")?,
        expires_at: time("expires_at")?,
        used_at: time("used_at"),
        used_by: text("used_by"),
    })
}

fn changes(r: &worker::d1::D1Result) -> Result<usize, StoreError> {
    Ok(r.meta().map_err(err)?.and_then(|m| m.changes).unwrap_or(0))
}

impl D1Users {
    fn stmt(&self, sql: &str, args: &[JsValue]) -> Result<D1PreparedStatement, StoreError> {
        self.0.prepare(sql).bind(args).map_err(err)
    }

    /// Runs one statement; how many rows it changed. (One copy of the run-and-count code
    /// for every single-statement write: it is sizeable in wasm.)
    async fn exec(&self, sql: &str, args: &[JsValue]) -> Result<usize, StoreError> {
        let r = self.stmt(sql, args)?.run().await.map_err(err)?;
        changes(&r)
    }

    async fn rows<T: serde::de::DeserializeOwned>(
        &self,
        sql: &str,
        args: &[JsValue],
    ) -> Result<Vec<T>, StoreError> {
        self.stmt(sql, args)?
            .all()
            .await
            .map_err(err)?
            .results::<T>()
            .map_err(err)
    }
}

impl UserStore for D1Users {
    async fn identity_owner(&self, issuer: &str, sub: &str) -> Result<Option<String>, StoreError> {
        self.stmt(
            "SELECT user_id FROM identities WHERE issuer = ?1 AND sub = ?2",
            &[s(issuer), s(sub)],
        )?
        .first::<String>(Some("user_id"))
        .await
        .map_err(err)
    }

    async fn create_linked(&self, u: &User, p: &Profile, now: i64) -> Result<String, StoreError> {
        let raw = p.raw.to_string();
        let insert_user = self.stmt(
            "INSERT INTO users (id, name, email, email_verified, picture, active, metadata, created_at, updated_at, last_login_at, roles) \
             SELECT ?1, ?2, ?3, ?4, ?5, 1, '{}', ?6, ?6, ?6, ?9 \
             WHERE NOT EXISTS (SELECT 1 FROM identities WHERE issuer = ?7 AND sub = ?8)",
            &[s(&u.id), opt(&u.name), opt(&u.email), n(u.email_verified as i64), opt(&u.picture), n(now), s(&p.issuer), s(&p.sub), s(&roles_json(&u.roles))],
        )?;
        let insert_identity = self.stmt(
            "INSERT INTO identities (issuer, sub, provider, user_id, email, profile, created_at, last_login_at) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7 WHERE EXISTS (SELECT 1 FROM users WHERE id = ?4) \
             ON CONFLICT (issuer, sub) DO NOTHING",
            &[s(&p.issuer), s(&p.sub), s(&p.provider), s(&u.id), opt(&p.email), s(&raw), n(now)],
        )?;
        let owner = self.stmt(
            "SELECT user_id FROM identities WHERE issuer = ?1 AND sub = ?2",
            &[s(&p.issuer), s(&p.sub)],
        )?;
        let results = self
            .0
            .batch(vec![insert_user, insert_identity, owner])
            .await
            .map_err(err)?;
        let rows: Vec<Owner> = results
            .get(2)
            .ok_or_else(|| err("batch returned no owner"))?
            .results()
            .map_err(err)?;
        rows.into_iter()
            .next()
            .map(|o| o.user_id)
            .ok_or_else(|| err("identity missing after insert"))
    }

    async fn refresh_login(&self, user_id: &str, p: &Profile, now: i64) -> Result<(), StoreError> {
        let user = self.stmt(
            "UPDATE users SET name = COALESCE(?2, name), email = COALESCE(?3, email), \
             email_verified = CASE WHEN ?3 IS NULL THEN email_verified ELSE ?4 END, \
             picture = COALESCE(?5, picture), last_login_at = ?6, updated_at = ?6 WHERE id = ?1",
            &[
                s(user_id),
                opt(&p.name),
                opt(&p.email),
                n(p.email_verified.unwrap_or(false) as i64),
                opt(&p.picture),
                n(now),
            ],
        )?;
        let identity = self.stmt(
            "UPDATE identities SET email = COALESCE(?3, email), profile = ?4, provider = ?5, last_login_at = ?6 WHERE issuer = ?1 AND sub = ?2",
            &[s(&p.issuer), s(&p.sub), opt(&p.email), s(&p.raw.to_string()), s(&p.provider), n(now)],
        )?;
        self.0.batch(vec![user, identity]).await.map_err(err)?;
        Ok(())
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let row = self
            .stmt("SELECT * FROM users WHERE id = ?1", &[s(id)])?
            .first::<UserRow>(None)
            .await
            .map_err(err)?;
        Ok(row.map(User::from))
    }

    async fn record_event(&self, e: &Event) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO events (user_id, type, at, ip, user_agent, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            &[opt(&e.user_id), s(e.kind), n(e.at), s(&e.ip), s(&e.user_agent), s(&e.detail.to_string())],
        )
        .await?;
        Ok(())
    }

    async fn list_users(&self, q: &UserQuery) -> Result<Vec<User>, StoreError> {
        let (after_t, after_id) = match &q.after {
            Some((t, id)) => (n(*t), s(id)),
            None => (JsValue::NULL, JsValue::NULL),
        };
        let rows: Vec<UserRow> = self
            .rows(
                "SELECT * FROM users WHERE (?1 IS NULL OR lower(email) = lower(?1)) \
                 AND (?2 IS NULL OR created_at < ?2 OR (created_at = ?2 AND id < ?3)) \
                 ORDER BY created_at DESC, id DESC LIMIT ?4",
                &[opt(&q.email), after_t, after_id, n(q.limit as i64)],
            )
            .await?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    async fn create_user(&self, u: &User) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO users (id, name, email, email_verified, phone, picture, active, metadata, created_at, updated_at, last_login_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            &[
                s(&u.id), opt(&u.name), opt(&u.email), n(u.email_verified as i64), opt(&u.phone),
                opt(&u.picture), n(u.active as i64), s(&u.metadata.to_string()), n(u.created_at),
                n(u.updated_at), u.last_login_at.map(n).unwrap_or(JsValue::NULL),
            ],
        )
        .await?;
        Ok(())
    }

    async fn update_user(
        &self,
        id: &str,
        patch: &UserPatch,
        now: i64,
    ) -> Result<Option<User>, StoreError> {
        // One UPDATE (SQLite evaluates every SET expression on the old row), then read back.
        let mut sets = vec!["updated_at = ?2".to_string()];
        let mut args = vec![s(id), n(now)];
        let mut arg = |sets: &mut Vec<String>, col: &str, v: JsValue| {
            args.push(v);
            sets.push(format!("{col} = ?{}", args.len()));
            args.len()
        };
        if let Some(v) = &patch.name {
            arg(&mut sets, "name", opt(v));
        }
        if let Some(v) = &patch.email {
            let i = arg(&mut sets, "email", opt(v));
            sets.push(format!(
                "email_verified = CASE WHEN email IS ?{i} THEN email_verified ELSE 0 END"
            ));
        }
        if let Some(v) = &patch.phone {
            arg(&mut sets, "phone", opt(v));
        }
        if let Some(v) = &patch.metadata {
            arg(&mut sets, "metadata", s(&v.to_string()));
        }
        if let Some(v) = &patch.roles {
            arg(&mut sets, "roles", s(&roles_json(v)));
        }
        let update = self.stmt(
            &format!("UPDATE users SET {} WHERE id = ?1", sets.join(", ")),
            &args,
        )?;
        let read = self.stmt("SELECT * FROM users WHERE id = ?1", &[s(id)])?;
        let results = self.0.batch(vec![update, read]).await.map_err(err)?;
        let rows: Vec<UserRow> = results
            .get(1)
            .ok_or_else(|| err("batch returned no user"))?
            .results()
            .map_err(err)?;
        Ok(rows.into_iter().next().map(User::from))
    }

    async fn end_sessions_until(&self, user_id: &str, at: i64) -> Result<(), StoreError> {
        self.exec(
            "UPDATE users SET sessions_valid_after = MAX(sessions_valid_after, ?2) WHERE id = ?1",
            &[s(user_id), n(at)],
        )
        .await?;
        Ok(())
    }

    async fn set_user_active(&self, id: &str, active: bool, now: i64) -> Result<bool, StoreError> {
        let changed = self
            .exec(
                "UPDATE users SET active = ?2, updated_at = ?3 WHERE id = ?1",
                &[s(id), n(active as i64), n(now)],
            )
            .await?;
        Ok(changed > 0)
    }

    async fn delete_user(&self, id: &str) -> Result<bool, StoreError> {
        let identities = self.stmt("DELETE FROM identities WHERE user_id = ?1", &[s(id)])?;
        let user = self.stmt("DELETE FROM users WHERE id = ?1", &[s(id)])?;
        let results = self.0.batch(vec![identities, user]).await.map_err(err)?;
        let r = results
            .get(1)
            .ok_or_else(|| err("batch returned no result"))?;
        Ok(changes(r)? > 0)
    }

    async fn identities_of(&self, user_id: &str) -> Result<Vec<Identity>, StoreError> {
        let rows: Vec<IdentityRow> = self
            .rows(
                "SELECT issuer, sub, provider, user_id, email, created_at, last_login_at FROM identities \
                 WHERE user_id = ?1 ORDER BY created_at, issuer, sub",
                &[s(user_id)],
            )
            .await?;
        Ok(rows.into_iter().map(Identity::from).collect())
    }

    async fn link_identity(
        &self,
        user_id: &str,
        p: &Profile,
        now: i64,
    ) -> Result<LinkOutcome, StoreError> {
        let insert = self.stmt(
            "INSERT INTO identities (issuer, sub, provider, user_id, email, profile, created_at, last_login_at) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7 WHERE EXISTS (SELECT 1 FROM users WHERE id = ?4) \
             ON CONFLICT (issuer, sub) DO NOTHING",
            &[s(&p.issuer), s(&p.sub), s(&p.provider), s(user_id), opt(&p.email), s(&p.raw.to_string()), n(now)],
        )?;
        let owner = self.stmt(
            "SELECT user_id FROM identities WHERE issuer = ?1 AND sub = ?2",
            &[s(&p.issuer), s(&p.sub)],
        )?;
        let results = self.0.batch(vec![insert, owner]).await.map_err(err)?;
        let inserted = changes(
            results
                .first()
                .ok_or_else(|| err("batch returned nothing"))?,
        )? > 0;
        let owners: Vec<Owner> = results
            .get(1)
            .ok_or_else(|| err("batch returned no owner"))?
            .results()
            .map_err(err)?;
        Ok(match owners.into_iter().next() {
            None => LinkOutcome::NoUser,
            Some(o) if o.user_id != user_id => LinkOutcome::OwnedByOther(o.user_id),
            Some(_) if inserted => LinkOutcome::Linked,
            Some(_) => LinkOutcome::AlreadyLinked,
        })
    }

    async fn unlink_identity(
        &self,
        user_id: &str,
        issuer: &str,
        sub: &str,
    ) -> Result<UnlinkOutcome, StoreError> {
        // The count is evaluated inside the DELETE, so two concurrent unlinks cannot both
        // see a second identity.
        let delete = self.stmt(
            "DELETE FROM identities WHERE issuer = ?1 AND sub = ?2 AND user_id = ?3 \
             AND (SELECT COUNT(*) FROM identities WHERE user_id = ?3) > 1",
            &[s(issuer), s(sub), s(user_id)],
        )?;
        let still = self.stmt(
            "SELECT COUNT(*) AS n FROM identities WHERE issuer = ?1 AND sub = ?2 AND user_id = ?3",
            &[s(issuer), s(sub), s(user_id)],
        )?;
        let results = self.0.batch(vec![delete, still]).await.map_err(err)?;
        if changes(
            results
                .first()
                .ok_or_else(|| err("batch returned nothing"))?,
        )? > 0
        {
            return Ok(UnlinkOutcome::Unlinked);
        }
        let left: Vec<Count> = results
            .get(1)
            .ok_or_else(|| err("batch returned no count"))?
            .results()
            .map_err(err)?;
        Ok(match left.first() {
            Some(c) if c.n > 0.0 => UnlinkOutcome::LastIdentity,
            _ => UnlinkOutcome::NotFound,
        })
    }

    async fn events_of(
        &self,
        user_id: &str,
        limit: u32,
        after: Option<(i64, i64)>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let (at, id) = match after {
            Some((at, id)) => (n(at), n(id)),
            None => (JsValue::NULL, JsValue::NULL),
        };
        let rows: Vec<EventRow> = self
            .rows(
                "SELECT id, user_id, type, at, ip, user_agent, detail FROM events WHERE user_id = ?1 \
                 AND (?2 IS NULL OR at < ?2 OR (at = ?2 AND id < ?3)) ORDER BY at DESC, id DESC LIMIT ?4",
                &[s(user_id), at, id, n(limit as i64)],
            )
            .await?;
        Ok(rows.into_iter().map(StoredEvent::from).collect())
    }

    async fn prune_events(&self, before: i64, max: u32) -> Result<u64, StoreError> {
        let deleted = self
            .exec(
                "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < ?1 LIMIT ?2)",
                &[n(before), n(max as i64)],
            )
            .await?;
        Ok(deleted as u64)
    }

    async fn create_invitation(&self, i: &Invitation) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO invitations (id, token_hash, email, roles, return_to, user_id, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            &[s(&i.id), s(&i.token_hash), opt(&i.email), s(&roles_json(&i.roles)), s(&i.return_to), opt(&i.user_id), n(i.created_at), n(i.expires_at)],
        )
        .await?;
        Ok(())
    }

    async fn invitation_by_hash(&self, hash: &str) -> Result<Option<Invitation>, StoreError> {
        let sql = format!("SELECT {INVITATION_JSON} FROM invitations WHERE token_hash = ?1");
        let rows: Vec<JsonRow> = self.rows(&sql, &[s(hash)]).await?;
        Ok(rows.into_iter().next().and_then(invitation_of))
    }

    async fn list_invitations(&self, now: i64, limit: u32) -> Result<Vec<Invitation>, StoreError> {
        let sql = format!(
            "SELECT {INVITATION_JSON} FROM invitations WHERE expires_at > ?1 \
             ORDER BY created_at DESC, id DESC LIMIT ?2"
        );
        let rows: Vec<JsonRow> = self.rows(&sql, &[n(now), n(limit as i64)]).await?;
        Ok(rows.into_iter().filter_map(invitation_of).collect())
    }

    async fn delete_invitation(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .exec("DELETE FROM invitations WHERE id = ?1", &[s(id)])
            .await?
            > 0)
    }

    async fn mark_invitation_used(
        &self,
        id: &str,
        user_id: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        self.exec(
            "UPDATE invitations SET used_at = ?3, used_by = ?2 WHERE id = ?1",
            &[s(id), s(user_id), n(at)],
        )
        .await?;
        Ok(())
    }
}

/// The spent-set: one `INSERT` whose primary-key conflict means "spent before". D1 runs it
/// on its one primary, so of concurrent spends of one key exactly one inserts the row.
impl crate::platform::SingleUse for D1Users {
    async fn spend(
        &self,
        kind: crate::platform::SpendKind,
        key_hash: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let key = format!("{}:{key_hash}", kind.prefix());
        let inserted = self
            .exec(
                "INSERT INTO spent (key, expires_at) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
                &[s(&key), n(expires_at)],
            )
            .await?;
        Ok(inserted == 1)
    }

    async fn is_spent(
        &self,
        kind: crate::platform::SpendKind,
        key_hash: &str,
    ) -> Result<bool, StoreError> {
        let key = format!("{}:{key_hash}", kind.prefix());
        let rows: Vec<Count> = self
            .rows("SELECT COUNT(*) AS n FROM spent WHERE key = ?1", &[s(&key)])
            .await?;
        let count = rows.first().ok_or_else(|| err("COUNT returned no row"))?;
        Ok(count.n > 0.0)
    }

    async fn prune_spent(&self, now: i64, max: u32) -> Result<u64, StoreError> {
        let deleted = self
            .exec(
                "DELETE FROM spent WHERE key IN (SELECT key FROM spent WHERE expires_at < ?1 LIMIT ?2)",
                &[n(now), n(max as i64)],
            )
            .await?;
        Ok(deleted as u64)
    }
}

#[derive(Deserialize)]
struct Counted {
    count: f64,
}

/// Rate-limit counters: one upsert that adds one and returns the new count. D1 runs it on its
/// one primary, so concurrent hits on one key each get a different count.
impl crate::platform::Counters for D1Users {
    async fn count(&self, key: &str, expires_at: i64) -> Result<u32, StoreError> {
        let rows: Vec<Counted> = self
            .rows(
                "INSERT INTO counters (key, count, expires_at) VALUES (?1, 1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET count = count + 1 RETURNING count",
                &[s(key), n(expires_at)],
            )
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| err("upsert returned no count"))?;
        Ok(row.count as u32)
    }

    async fn peek(&self, key: &str) -> Result<u32, StoreError> {
        let rows: Vec<Counted> = self
            .rows("SELECT count FROM counters WHERE key = ?1", &[s(key)])
            .await?;
        Ok(rows.first().map_or(0, |r| r.count as u32))
    }

    async fn prune_counters(&self, now: i64, max: u32) -> Result<u64, StoreError> {
        let deleted = self
            .exec(
                "DELETE FROM counters WHERE key IN (SELECT key FROM counters WHERE expires_at < ?1 LIMIT ?2)",
                &[n(now), n(max as i64)],
            )
            .await?;
        Ok(deleted as u64)
    }
}
