//! [`UserStore`] over D1. The first sign-in of an identity is one D1 batch (a transaction):
//! insert the user only if the identity does not exist yet, insert the identity unless it
//! exists, read back its owner — so concurrent first sign-ins for one `sub` make one user.
//!
//! D1 is called through its JavaScript methods directly (`prepare`, `bind`, `all`, `batch`)
//! and rows are read through `JSON.stringify` into serde_json: the `worker` crate's D1
//! wrapper decodes rows with `serde-wasm-bindgen`, about 8 KB of the wasm for the same rows.

use super::js::{call, call_method, js_message};
use crate::fields::Fields;
use crate::ids::SessionId;
use crate::platform::StoreError;
use crate::users::{
    Event, Identity, IdentityKey, Invitation, LinkOutcome, Profile, StoredEvent, UnlinkOutcome,
    User, UserId, UserPatch, UserQuery, UserStore,
};
use js_sys::{Array, Object, Reflect};
use wasm_bindgen::JsValue;

#[path = "d1_passkeys.rs"]
mod passkeys;

/// The database binding (`env.DB`).
pub struct D1Users(pub Object);

pub(super) fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(format!("D1: {e}"))
}

fn js_err(e: JsValue) -> StoreError {
    err(js_message(&e))
}

pub(super) fn s(v: &str) -> JsValue {
    JsValue::from_str(v)
}

pub(super) fn opt(v: &Option<String>) -> JsValue {
    v.as_deref().map(JsValue::from_str).unwrap_or(JsValue::NULL)
}

/// A user id that may be absent (an event's, an invitation's).
fn opt_id(v: &Option<UserId>) -> JsValue {
    v.as_ref().map_or(JsValue::NULL, |u| s(u.as_str()))
}

pub(super) fn n(v: i64) -> JsValue {
    JsValue::from_f64(v as f64)
}

/// A prepared statement with its arguments bound (a JavaScript `D1PreparedStatement`).
pub(super) struct Stmt(JsValue);

/// What D1 answers for one statement (a JavaScript `D1Result`).
pub(super) struct D1Result(JsValue);

impl D1Result {
    fn field(&self, name: &str) -> Result<JsValue, StoreError> {
        Reflect::get(&self.0, &JsValue::from_str(name)).map_err(js_err)
    }

    /// How many rows the statement changed.
    pub(super) fn changes(&self) -> Result<usize, StoreError> {
        let meta = self.field("meta")?;
        let changes = Reflect::get(&meta, &JsValue::from_str("changes")).map_err(js_err)?;
        Ok(changes.as_f64().unwrap_or(0.0) as usize)
    }

    /// The rows, decoded through their JSON text: parsed into a `Value`, then into `T` (the
    /// `Value` reader costs less wasm per row type than the text reader). Everywhere in the
    /// Worker JSON text is read with `from_slice`, never `from_str`: a second reader type
    /// would instantiate serde_json's parser twice (about 3 KB gzip).
    pub(super) fn rows<T: Row>(&self) -> Result<Vec<T>, StoreError> {
        self.row_values()?
            .iter()
            .map(|r| Fields::of(r).and_then(|f| T::read(&f)).map_err(err))
            .collect()
    }

    /// The rows as JSON values: the part of [`Self::rows`] that is the same for every row
    /// type, kept out of its per-type copies.
    fn row_values(&self) -> Result<Vec<serde_json::Value>, StoreError> {
        let results = self.field("results")?;
        if results.is_undefined() || results.is_null() {
            return Ok(Vec::new());
        }
        let json = js_sys::JSON::stringify(&results)
            .map_err(js_err)?
            .as_string()
            .ok_or_else(|| err("rows are not JSON"))?;
        match serde_json::from_slice(json.as_bytes()).map_err(err)? {
            serde_json::Value::Array(rows) => Ok(rows),
            _ => Err(err("rows are not a list")),
        }
    }

    /// The first row, if any.
    pub(super) fn first<T: Row>(&self) -> Result<Option<T>, StoreError> {
        Ok(self.rows::<T>()?.into_iter().next())
    }
}

/// A row type, read from a row's JSON object (through the one shared field reader rather
/// than a serde derive per row type, which costs kilobytes of bundle).
pub(super) trait Row: Sized {
    fn read(f: &Fields) -> Result<Self, String>;
}

/// A row as it comes.
impl Row for serde_json::Value {
    fn read(f: &Fields) -> Result<Self, String> {
        Ok(serde_json::Value::Object(f.map().clone()))
    }
}

/// The `i`-th result of a batch.
pub(super) fn nth(results: &[D1Result], i: usize) -> Result<&D1Result, StoreError> {
    results
        .get(i)
        .ok_or_else(|| err("a batch returned fewer results than statements"))
}

pub(super) struct UserRow {
    id: String,
    name: Option<String>,
    email: Option<String>,
    email_verified: i64,
    phone: Option<String>,
    picture: Option<String>,
    active: i64,
    metadata: String,
    created_at: i64,
    updated_at: i64,
    last_login_at: Option<i64>,
    /// 0 when absent.
    sessions_valid_after: i64,
    /// Only in [`UserStore::renewal_view`]'s row; 0 when absent.
    session_ended: i64,
    /// A JSON array of strings (absent in older rows' reads).
    roles: Option<String>,
}

/// A JSON array of strings from a TEXT column ('[]' when unreadable: roles are only ever
/// written by Gatehouse, checked). Through `Value`, whose parser the bundle has anyway.
fn string_list(json: Option<&str>) -> Vec<String> {
    match json.and_then(|j| serde_json::from_slice(j.as_bytes()).ok()) {
        Some(serde_json::Value::Array(items)) => items
            .into_iter()
            .filter_map(|i| i.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

fn roles_json(roles: &[String]) -> String {
    crate::fields::json_text(&serde_json::Value::from(roles.to_vec()))
}

struct InvitationRow {
    id: String,
    token_hash: String,
    email: Option<String>,
    roles: String,
    return_to: String,
    user_id: Option<String>,
    created_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
    used_by: Option<String>,
}

impl Row for InvitationRow {
    fn read(f: &Fields) -> Result<Self, String> {
        Ok(InvitationRow {
            id: f.str("id")?,
            token_hash: f.str("token_hash")?,
            email: f.opt_str("email")?,
            roles: f.str("roles")?,
            return_to: f.str("return_to")?,
            user_id: f.opt_str("user_id")?,
            created_at: f.i64("created_at")?,
            expires_at: f.i64("expires_at")?,
            used_at: f.opt_i64("used_at")?,
            used_by: f.opt_str("used_by")?,
        })
    }
}

impl From<InvitationRow> for Invitation {
    fn from(r: InvitationRow) -> Invitation {
        Invitation {
            id: r.id,
            token_hash: r.token_hash,
            email: r.email,
            roles: string_list(Some(&r.roles)),
            return_to: r.return_to,
            user_id: r.user_id.map(UserId::from),
            created_at: r.created_at,
            expires_at: r.expires_at,
            used_at: r.used_at,
            used_by: r.used_by.map(UserId::from),
        }
    }
}

impl Row for UserRow {
    fn read(f: &Fields) -> Result<Self, String> {
        Ok(UserRow {
            id: f.str("id")?,
            name: f.opt_str("name")?,
            email: f.opt_str("email")?,
            email_verified: f.i64("email_verified")?,
            phone: f.opt_str("phone")?,
            picture: f.opt_str("picture")?,
            active: f.i64("active")?,
            metadata: f.str("metadata")?,
            created_at: f.i64("created_at")?,
            updated_at: f.i64("updated_at")?,
            last_login_at: f.opt_i64("last_login_at")?,
            sessions_valid_after: f.opt_i64("sessions_valid_after")?.unwrap_or(0),
            session_ended: f.opt_i64("session_ended")?.unwrap_or(0),
            roles: f.opt_str("roles")?,
        })
    }
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> User {
        User {
            id: UserId::from(r.id),
            name: r.name,
            email: r.email,
            email_verified: r.email_verified != 0,
            phone: r.phone,
            picture: r.picture,
            active: r.active != 0,
            metadata: serde_json::from_slice(r.metadata.as_bytes())
                .unwrap_or_else(|_| serde_json::json!({})),
            created_at: r.created_at,
            updated_at: r.updated_at,
            last_login_at: r.last_login_at,
            sessions_valid_after: r.sessions_valid_after,
            roles: string_list(r.roles.as_deref()),
        }
    }
}

struct IdentityRow {
    issuer: String,
    sub: String,
    provider: String,
    user_id: String,
    email: Option<String>,
    created_at: i64,
    last_login_at: Option<i64>,
}

impl Row for IdentityRow {
    fn read(f: &Fields) -> Result<Self, String> {
        Ok(IdentityRow {
            issuer: f.str("issuer")?,
            sub: f.str("sub")?,
            provider: f.str("provider")?,
            user_id: f.str("user_id")?,
            email: f.opt_str("email")?,
            created_at: f.i64("created_at")?,
            last_login_at: f.opt_i64("last_login_at")?,
        })
    }
}

impl From<IdentityRow> for Identity {
    fn from(r: IdentityRow) -> Identity {
        Identity {
            issuer: r.issuer,
            sub: r.sub,
            provider: r.provider,
            user_id: UserId::from(r.user_id),
            email: r.email,
            created_at: r.created_at,
            last_login_at: r.last_login_at,
        }
    }
}

struct EventRow {
    id: i64,
    user_id: Option<String>,
    /// The `type` column.
    kind: String,
    at: i64,
    ip: String,
    user_agent: String,
    detail: String,
}

impl Row for EventRow {
    fn read(f: &Fields) -> Result<Self, String> {
        Ok(EventRow {
            id: f.i64("id")?,
            user_id: f.opt_str("user_id")?,
            kind: f.str("type")?,
            at: f.i64("at")?,
            ip: f.str("ip")?,
            user_agent: f.str("user_agent")?,
            detail: f.str("detail")?,
        })
    }
}

impl From<EventRow> for StoredEvent {
    fn from(r: EventRow) -> StoredEvent {
        StoredEvent {
            id: r.id,
            user_id: r.user_id.map(UserId::from),
            kind: r.kind,
            at: r.at,
            ip: r.ip,
            user_agent: r.user_agent,
            detail: serde_json::from_slice(r.detail.as_bytes())
                .unwrap_or_else(|_| serde_json::json!({})),
        }
    }
}

struct Count {
    n: i64,
}

impl Row for Count {
    fn read(f: &Fields) -> Result<Self, String> {
        Ok(Count { n: f.i64("n")? })
    }
}

struct Owner {
    user_id: String,
}

impl Row for Owner {
    fn read(f: &Fields) -> Result<Self, String> {
        Ok(Owner {
            user_id: f.str("user_id")?,
        })
    }
}

impl D1Users {
    pub(super) fn stmt(&self, sql: &str, args: &[JsValue]) -> Result<Stmt, StoreError> {
        let prepared = call(&self.0, "prepare", &[sql.into()]).map_err(js_err)?;
        let prepared: Object = prepared.into();
        call(&prepared, "bind", args).map(Stmt).map_err(js_err)
    }

    /// Inserts `u` only if the identity of `p` does not exist yet, and the identity unless it
    /// exists: in one batch, concurrent first sign-ins for one `sub` make one user.
    fn link_new(&self, u: &User, p: &Profile, now: i64) -> Result<[Stmt; 2], StoreError> {
        let insert_user = self.stmt(
            "INSERT INTO users (id, name, email, email_verified, picture, active, metadata, created_at, updated_at, last_login_at, roles) \
             SELECT ?1, ?2, ?3, ?4, ?5, 1, '{}', ?6, ?6, ?6, ?9 \
             WHERE NOT EXISTS (SELECT 1 FROM identities WHERE issuer = ?7 AND sub = ?8)",
            &[s(u.id.as_str()), opt(&u.name), opt(&u.email), n(u.email_verified as i64), opt(&u.picture), n(now), s(&p.issuer), s(&p.sub), s(&roles_json(&u.roles))],
        )?;
        let insert_identity = self.stmt(
            "INSERT INTO identities (issuer, sub, provider, user_id, email, profile, created_at, last_login_at) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7 WHERE EXISTS (SELECT 1 FROM users WHERE id = ?4) \
             ON CONFLICT (issuer, sub) DO NOTHING",
            &[s(&p.issuer), s(&p.sub), s(&p.provider), s(u.id.as_str()), opt(&p.email), s(&crate::fields::json_text(&p.raw)), n(now)],
        )?;
        Ok([insert_user, insert_identity])
    }

    /// Runs one statement (one round trip).
    pub(super) async fn one(&self, sql: &str, args: &[JsValue]) -> Result<D1Result, StoreError> {
        let stmt: Object = self.stmt(sql, args)?.0.into();
        call_method(&stmt, "all", &[])
            .await
            .map(D1Result)
            .map_err(js_err)
    }

    /// Runs statements as one batch: one round trip, one transaction.
    pub(super) async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<D1Result>, StoreError> {
        let list: Array = stmts.into_iter().map(|s| s.0).collect();
        let out = call_method(&self.0, "batch", &[list.into()])
            .await
            .map_err(js_err)?;
        Ok(Array::from(&out).iter().map(D1Result).collect())
    }

    /// Runs one statement; how many rows it changed.
    pub(super) async fn exec(&self, sql: &str, args: &[JsValue]) -> Result<usize, StoreError> {
        self.one(sql, args).await?.changes()
    }

    async fn rows<T: Row>(&self, sql: &str, args: &[JsValue]) -> Result<Vec<T>, StoreError> {
        self.one(sql, args).await?.rows()
    }
}

impl UserStore for D1Users {
    async fn identity_owner(&self, key: &IdentityKey<'_>) -> Result<Option<UserId>, StoreError> {
        let owner: Option<Owner> = self
            .one(
                "SELECT user_id FROM identities WHERE issuer = ?1 AND sub = ?2",
                &[s(key.issuer), s(key.sub)],
            )
            .await?
            .first()?;
        Ok(owner.map(|o| UserId::from(o.user_id)))
    }

    async fn create_linked(&self, u: &User, p: &Profile, now: i64) -> Result<UserId, StoreError> {
        let [insert_user, insert_identity] = self.link_new(u, p, now)?;
        let owner = self.stmt(
            "SELECT user_id FROM identities WHERE issuer = ?1 AND sub = ?2",
            &[s(&p.issuer), s(&p.sub)],
        )?;
        let results = self
            .batch(vec![insert_user, insert_identity, owner])
            .await?;
        nth(&results, 2)?
            .first::<Owner>()?
            .map(|o| UserId::from(o.user_id))
            .ok_or_else(|| err("identity missing after insert"))
    }

    async fn sign_in(
        &self,
        fresh: Option<&User>,
        p: &Profile,
        event: Option<&Event>,
        now: i64,
    ) -> Result<Option<User>, StoreError> {
        let (issuer, sub) = (s(&p.issuer), s(&p.sub));
        let inserts = match fresh {
            Some(fresh) => self.link_new(fresh, p, now)?.into_iter().collect(),
            None => Vec::new(),
        };
        // Every statement after the inserts acts on the identity's owner, whoever made it,
        // and writes only while that user is active.
        const OWNER: &str = "(SELECT user_id FROM identities WHERE issuer = ?1 AND sub = ?2)";
        let refresh_user = self.stmt(
            &format!(
                "UPDATE users SET name = COALESCE(?3, name), email = COALESCE(?4, email), \
                 email_verified = CASE WHEN ?4 IS NULL THEN email_verified ELSE ?5 END, \
                 picture = COALESCE(?6, picture), last_login_at = ?7, updated_at = ?7 \
                 WHERE id = {OWNER} AND active = 1"
            ),
            &[
                issuer.clone(),
                sub.clone(),
                opt(&p.name),
                opt(&p.email),
                n(p.email_verified.unwrap_or(false) as i64),
                opt(&p.picture),
                n(now),
            ],
        )?;
        let refresh_identity = self.stmt(
            "UPDATE identities SET email = COALESCE(?3, email), profile = ?4, provider = ?5, last_login_at = ?6 \
             WHERE issuer = ?1 AND sub = ?2 AND EXISTS (SELECT 1 FROM users WHERE id = identities.user_id AND active = 1)",
            &[issuer.clone(), sub.clone(), opt(&p.email), s(&crate::fields::json_text(&p.raw)), s(&p.provider), n(now)],
        )?;
        let read = self.stmt(
            &format!("SELECT * FROM users WHERE id = {OWNER}"),
            &[issuer.clone(), sub.clone()],
        )?;
        let mut stmts = inserts;
        stmts.extend([refresh_user, refresh_identity]);
        if let Some(e) = event {
            stmts.push(self.stmt(
                &format!(
                    "INSERT INTO events (user_id, type, at, ip, user_agent, detail) \
                     SELECT id, ?3, ?4, ?5, ?6, ?7 FROM users WHERE id = {OWNER} AND active = 1"
                ),
                &[
                    issuer,
                    sub,
                    s(e.kind),
                    n(e.at),
                    s(&e.ip),
                    s(&e.user_agent),
                    s(&crate::fields::json_text(&e.detail)),
                ],
            )?);
        }
        stmts.push(read);
        let results = self.batch(stmts).await?;
        let row: Option<UserRow> = nth(&results, results.len().saturating_sub(1))?.first()?;
        Ok(row.map(User::from))
    }

    async fn get_user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = self
            .one("SELECT * FROM users WHERE id = ?1", &[s(id.as_str())])
            .await?
            .first()?;
        Ok(row.map(User::from))
    }

    async fn renewal_view(
        &self,
        user_id: &UserId,
        sid: &SessionId,
    ) -> Result<Option<(User, bool)>, StoreError> {
        let ended = format!(
            "{}:{}",
            crate::platform::SpendKind::EndedSession.prefix(),
            sid.as_str()
        );
        let row: Option<UserRow> = self
            .one(
                "SELECT *, EXISTS (SELECT 1 FROM spent WHERE key = ?2) AS session_ended FROM users WHERE id = ?1",
                &[s(user_id.as_str()), s(&ended)],
            )
            .await?
            .first()?;
        Ok(row.map(|r| {
            let ended = r.session_ended != 0;
            (User::from(r), ended)
        }))
    }

    async fn record_event(&self, e: &Event) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO events (user_id, type, at, ip, user_agent, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            &[opt_id(&e.user_id), s(e.kind), n(e.at), s(&e.ip), s(&e.user_agent), s(&crate::fields::json_text(&e.detail))],
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
                s(u.id.as_str()), opt(&u.name), opt(&u.email), n(u.email_verified as i64), opt(&u.phone),
                opt(&u.picture), n(u.active as i64), s(&crate::fields::json_text(&u.metadata)), n(u.created_at),
                n(u.updated_at), u.last_login_at.map(n).unwrap_or(JsValue::NULL),
            ],
        )
        .await?;
        Ok(())
    }

    async fn update_user(
        &self,
        id: &UserId,
        patch: &UserPatch,
        now: i64,
    ) -> Result<Option<User>, StoreError> {
        // One UPDATE (SQLite evaluates every SET expression on the old row), then read back.
        let mut sets = vec!["updated_at = ?2".to_string()];
        let mut args = vec![s(id.as_str()), n(now)];
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
            arg(&mut sets, "metadata", s(&crate::fields::json_text(v)));
        }
        if let Some(v) = &patch.roles {
            arg(&mut sets, "roles", s(&roles_json(v)));
        }
        let update = self.stmt(
            &format!("UPDATE users SET {} WHERE id = ?1", sets.join(", ")),
            &args,
        )?;
        let read = self.stmt("SELECT * FROM users WHERE id = ?1", &[s(id.as_str())])?;
        let results = self.batch(vec![update, read]).await?;
        let row: Option<UserRow> = nth(&results, 1)?.first()?;
        Ok(row.map(User::from))
    }

    async fn end_sessions_until(&self, user_id: &UserId, at: i64) -> Result<(), StoreError> {
        self.exec(
            "UPDATE users SET sessions_valid_after = MAX(sessions_valid_after, ?2) WHERE id = ?1",
            &[s(user_id.as_str()), n(at)],
        )
        .await?;
        Ok(())
    }

    async fn set_user_active(
        &self,
        id: &UserId,
        active: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        let changed = self
            .exec(
                "UPDATE users SET active = ?2, updated_at = ?3 WHERE id = ?1",
                &[s(id.as_str()), n(active as i64), n(now)],
            )
            .await?;
        Ok(changed > 0)
    }

    async fn delete_user(&self, id: &UserId) -> Result<bool, StoreError> {
        let id = id.as_str();
        let identities = self.stmt("DELETE FROM identities WHERE user_id = ?1", &[s(id)])?;
        let user = self.stmt("DELETE FROM users WHERE id = ?1", &[s(id)])?;
        let results = self.batch(vec![identities, user]).await?;
        Ok(nth(&results, 1)?.changes()? > 0)
    }

    async fn identities_of(&self, user_id: &UserId) -> Result<Vec<Identity>, StoreError> {
        let rows: Vec<IdentityRow> = self
            .rows(
                "SELECT issuer, sub, provider, user_id, email, created_at, last_login_at FROM identities \
                 WHERE user_id = ?1 ORDER BY created_at, issuer, sub",
                &[s(user_id.as_str())],
            )
            .await?;
        Ok(rows.into_iter().map(Identity::from).collect())
    }

    async fn link_identity(
        &self,
        user_id: &UserId,
        p: &Profile,
        now: i64,
    ) -> Result<LinkOutcome, StoreError> {
        let insert = self.stmt(
            "INSERT INTO identities (issuer, sub, provider, user_id, email, profile, created_at, last_login_at) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7 WHERE EXISTS (SELECT 1 FROM users WHERE id = ?4) \
             ON CONFLICT (issuer, sub) DO NOTHING",
            &[s(&p.issuer), s(&p.sub), s(&p.provider), s(user_id.as_str()), opt(&p.email), s(&crate::fields::json_text(&p.raw)), n(now)],
        )?;
        let owner = self.stmt(
            "SELECT user_id FROM identities WHERE issuer = ?1 AND sub = ?2",
            &[s(&p.issuer), s(&p.sub)],
        )?;
        let results = self.batch(vec![insert, owner]).await?;
        let inserted = nth(&results, 0)?.changes()? > 0;
        Ok(match nth(&results, 1)?.first::<Owner>()? {
            None => LinkOutcome::NoUser,
            Some(o) if o.user_id != user_id.as_str() => LinkOutcome::OwnedByOther(o.user_id.into()),
            Some(_) if inserted => LinkOutcome::Linked,
            Some(_) => LinkOutcome::AlreadyLinked,
        })
    }

    async fn unlink_identity(
        &self,
        user_id: &UserId,
        key: &IdentityKey<'_>,
    ) -> Result<UnlinkOutcome, StoreError> {
        let (issuer, sub, user_id) = (key.issuer, key.sub, user_id.as_str());
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
        let results = self.batch(vec![delete, still]).await?;
        if nth(&results, 0)?.changes()? > 0 {
            return Ok(UnlinkOutcome::Unlinked);
        }
        Ok(match nth(&results, 1)?.first::<Count>()? {
            Some(c) if c.n > 0 => UnlinkOutcome::LastIdentity,
            _ => UnlinkOutcome::NotFound,
        })
    }

    async fn events_of(
        &self,
        user_id: &UserId,
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
                &[s(user_id.as_str()), at, id, n(limit as i64)],
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
            &[s(&i.id), s(&i.token_hash), opt(&i.email), s(&roles_json(&i.roles)), s(&i.return_to), opt_id(&i.user_id), n(i.created_at), n(i.expires_at)],
        )
        .await?;
        Ok(())
    }

    async fn invitation_by_hash(&self, hash: &str) -> Result<Option<Invitation>, StoreError> {
        let sql = "SELECT * FROM invitations WHERE token_hash = ?1";
        let rows: Vec<InvitationRow> = self.rows(sql, &[s(hash)]).await?;
        Ok(rows.into_iter().next().map(Invitation::from))
    }

    async fn list_invitations(&self, now: i64, limit: u32) -> Result<Vec<Invitation>, StoreError> {
        let sql = "SELECT * FROM invitations WHERE expires_at > ?1 ORDER BY created_at DESC, id DESC LIMIT ?2";
        let rows: Vec<InvitationRow> = self.rows(sql, &[n(now), n(limit as i64)]).await?;
        Ok(rows.into_iter().map(Invitation::from).collect())
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
        user_id: &UserId,
        at: i64,
    ) -> Result<(), StoreError> {
        self.exec(
            "UPDATE invitations SET used_at = ?3, used_by = ?2 WHERE id = ?1",
            &[s(id), s(user_id.as_str()), n(at)],
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
        Ok(count.n > 0)
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

struct Counted {
    count: i64,
}

impl Row for Counted {
    fn read(f: &Fields) -> Result<Self, String> {
        Ok(Counted {
            count: f.i64("count")?,
        })
    }
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
