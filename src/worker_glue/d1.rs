//! [`UserStore`] over D1. The first sign-in of an identity is one D1 batch (a transaction):
//! insert the user only if the identity does not exist yet, insert the identity unless it
//! exists, read back its owner — so concurrent first sign-ins for one `sub` make one user.

use crate::platform::StoreError;
use crate::users::{Event, Profile, User, UserStore};
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
        }
    }
}

impl D1Users {
    fn stmt(&self, sql: &str, args: &[JsValue]) -> Result<D1PreparedStatement, StoreError> {
        self.0.prepare(sql).bind(args).map_err(err)
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
            "INSERT INTO users (id, name, email, email_verified, picture, active, metadata, created_at, updated_at, last_login_at) \
             SELECT ?1, ?2, ?3, ?4, ?5, 1, '{}', ?6, ?6, ?6 \
             WHERE NOT EXISTS (SELECT 1 FROM identities WHERE issuer = ?7 AND sub = ?8)",
            &[s(&u.id), opt(&u.name), opt(&u.email), n(u.email_verified as i64), opt(&u.picture), n(now), s(&p.issuer), s(&p.sub)],
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
        #[derive(Deserialize)]
        struct Owner {
            user_id: String,
        }
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
        self.stmt(
            "INSERT INTO events (user_id, type, at, ip, user_agent, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            &[opt(&e.user_id), s(e.kind), n(e.at), s(&e.ip), s(&e.user_agent), s(&e.detail.to_string())],
        )?
        .run()
        .await
        .map_err(err)?;
        Ok(())
    }
}
