//! Sessions in KV (README "Sessions, tokens and cookies"): a 256-bit random id given to the browser
//! once; KV stores only its SHA-256 (`sid`), under `s:{sid}`, with a TTL that is the smaller
//! of the idle and absolute lifetimes, plus an index entry `u:{user}:{sid}` so that a user's
//! sessions can be listed and revoked together.
//!
//! A renewal costs two KV operations: the session read and its write-back. The index entry
//! is written once, at creation, to live as long as the session can (its absolute lifetime);
//! an entry whose session idled out is skipped when listing. What stops a revoked session is
//! not KV (a renewal that read the session before the revocation may write it back) but the
//! mark that ending a session leaves in D1's spent-set, which every renewal reads together
//! with the user (see `app::ending`).

use crate::config::Config;
use crate::crypto::{random_token, sha256_b64url, Secret};
use crate::ids::{SessionId, UserId};
use crate::platform::{Kv, StoreError};
use serde::Serialize;

/// KV's smallest TTL.
const KV_MIN_TTL: u64 = 60;

/// What KV keeps about a session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionRecord {
    pub user_id: UserId,
    pub issuer: String,
    pub provider: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub user_agent: String,
    pub ip: String,
    /// A vendor-side session or token to end at logout (Stytch session, LoginRadius token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor_logout: Option<String>,
}

impl SessionRecord {
    /// A stored record from its JSON text.
    pub fn parse(json: &str) -> Result<SessionRecord, String> {
        let v: serde_json::Value =
            serde_json::from_slice(json.as_bytes()).map_err(|e| e.to_string())?;
        let f = crate::fields::Fields::of(&v)?;
        Ok(SessionRecord {
            user_id: UserId::from(f.str("user_id")?),
            issuer: f.str("issuer")?,
            provider: f.str("provider")?,
            created_at: f.i64("created_at")?,
            last_seen_at: f.i64("last_seen_at")?,
            expires_at: f.i64("expires_at")?,
            user_agent: f.str("user_agent")?,
            ip: f.str("ip")?,
            vendor_logout: f.opt_str("vendor_logout")?,
        })
    }
}

/// The stored id of a raw session token.
pub fn sid_of(raw: &str) -> SessionId {
    SessionId::from(sha256_b64url(raw.as_bytes()))
}

fn session_key(sid: &SessionId) -> String {
    format!("s:{}", sid.as_str())
}

fn index_prefix(user_id: &UserId) -> String {
    format!("u:{}:", user_id.as_str())
}

fn index_key(user_id: &UserId, sid: &SessionId) -> String {
    format!("{}{}", index_prefix(user_id), sid.as_str())
}

/// Session operations over a KV store.
pub struct Sessions<'a, K: Kv> {
    pub kv: &'a K,
    pub cfg: &'a Config,
}

impl<K: Kv> Sessions<'_, K> {
    fn ttl(&self, rec: &SessionRecord, now: i64) -> u64 {
        let left = (rec.expires_at - now).max(0) as u64;
        left.min(self.cfg.session_idle).max(KV_MIN_TTL)
    }

    async fn write(
        &self,
        sid: &SessionId,
        rec: &SessionRecord,
        now: i64,
    ) -> Result<(), StoreError> {
        let ttl = self.ttl(rec, now);
        let json = serde_json::to_string(rec).map_err(|e| StoreError(e.to_string()))?;
        self.kv.put(&session_key(sid), &json, ttl).await
    }

    /// Starts a session; returns the raw token (for the cookie) and its `sid`.
    pub async fn create(
        &self,
        mut rec: SessionRecord,
        now: i64,
    ) -> Result<(Secret, SessionId), StoreError> {
        let raw = random_token();
        let sid = sid_of(&raw);
        rec.created_at = now;
        rec.last_seen_at = now;
        rec.expires_at = now + self.cfg.session_ttl as i64;
        // The index entry first: should the second put fail, what is left is an index entry
        // without a session (skipped when listing), never a session that "revoke all" misses.
        self.kv
            .put(
                &index_key(&rec.user_id, &sid),
                "",
                self.cfg.session_ttl.max(KV_MIN_TTL),
            )
            .await?;
        self.write(&sid, &rec, now).await?;
        Ok((Secret::new(raw), sid))
    }

    /// The live session of a raw token.
    pub async fn lookup(
        &self,
        raw: &str,
        now: i64,
    ) -> Result<Option<(SessionId, SessionRecord)>, StoreError> {
        if raw.len() > 100 {
            return Ok(None);
        }
        let sid = sid_of(raw);
        Ok(self.get(&sid, now).await?.map(|r| (sid, r)))
    }

    /// The live session with this `sid`.
    pub async fn get(
        &self,
        sid: &SessionId,
        now: i64,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let Some(json) = self.kv.get(&session_key(sid)).await? else {
            return Ok(None);
        };
        let Ok(rec) = SessionRecord::parse(&json) else {
            return Ok(None);
        };
        let idle_deadline = rec.last_seen_at + self.cfg.session_idle as i64;
        if now >= rec.expires_at || now >= idle_deadline {
            return Ok(None);
        }
        Ok(Some(rec))
    }

    /// Marks the session as used now (at renewal, not on every request): one KV write.
    pub async fn touch(
        &self,
        sid: &SessionId,
        mut rec: SessionRecord,
        now: i64,
    ) -> Result<(), StoreError> {
        rec.last_seen_at = now;
        self.write(sid, &rec, now).await
    }

    /// Removes the session and its index entry from KV. This alone does not end a session
    /// (a renewal in flight may write it back): `app::ending` marks it ended in D1 first.
    pub async fn forget(&self, sid: &SessionId, user_id: &UserId) -> Result<(), StoreError> {
        self.kv.delete(&session_key(sid)).await?;
        self.kv.delete(&index_key(user_id, sid)).await
    }

    /// The `sid`s of a user's sessions.
    pub async fn sids_of(&self, user_id: &UserId) -> Result<Vec<SessionId>, StoreError> {
        let prefix = index_prefix(user_id);
        Ok(self
            .kv
            .list(&prefix)
            .await?
            .into_iter()
            .filter_map(|k| k.strip_prefix(&prefix).map(SessionId::from))
            .collect())
    }

    /// A user's live sessions.
    pub async fn list(
        &self,
        user_id: &UserId,
        now: i64,
    ) -> Result<Vec<(SessionId, SessionRecord)>, StoreError> {
        let mut out = Vec::new();
        for sid in self.sids_of(user_id).await? {
            if let Some(rec) = self.get(&sid, now).await? {
                out.push((sid, rec));
            }
        }
        // Newest first; ties in sid order, as KV lists them (an unstable sort is less code
        // than the stable one, and the sid makes it deterministic).
        out.sort_unstable_by(|(a, ra), (b, rb)| rb.created_at.cmp(&ra.created_at).then(a.cmp(b)));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{block_on, test_config, MemoryKv};

    fn rec(user: &str) -> SessionRecord {
        SessionRecord {
            user_id: user.into(),
            issuer: "i".into(),
            provider: "p".into(),
            created_at: 0,
            last_seen_at: 0,
            expires_at: 0,
            user_agent: "ua".into(),
            ip: "1.2.3.4".into(),
            vendor_logout: None,
        }
    }

    #[test]
    fn only_the_hash_is_stored() {
        let kv = MemoryKv::default();
        let cfg = test_config();
        let s = Sessions { kv: &kv, cfg: &cfg };
        let (raw, sid) = block_on(s.create(rec("u1"), 100)).unwrap();
        assert_eq!(sid, sid_of(raw.expose()));
        assert!(
            kv.keys().iter().all(|k| !k.contains(raw.expose())),
            "raw token must not be a key"
        );
        assert!(
            kv.values().iter().all(|v| !v.contains(raw.expose())),
            "raw token must not be stored"
        );
        assert!(block_on(s.lookup(raw.expose(), 101)).unwrap().is_some());
        assert!(block_on(s.lookup("guess", 101)).unwrap().is_none());
    }

    #[test]
    fn idle_and_absolute_expiry() {
        let kv = MemoryKv::default();
        let cfg = test_config();
        let s = Sessions { kv: &kv, cfg: &cfg };
        let (raw, sid) = block_on(s.create(rec("u1"), 0)).unwrap();
        let idle = cfg.session_idle as i64;
        assert!(
            block_on(s.lookup(raw.expose(), idle)).unwrap().is_none(),
            "idle timeout"
        );
        let (_, r) = block_on(s.lookup(raw.expose(), idle - 1)).unwrap().unwrap();
        block_on(s.touch(&sid, r, idle - 1)).unwrap();
        assert!(
            block_on(s.lookup(raw.expose(), idle + 10))
                .unwrap()
                .is_some(),
            "touch extends idle"
        );
        assert!(
            block_on(s.lookup(raw.expose(), cfg.session_ttl as i64))
                .unwrap()
                .is_none(),
            "absolute limit"
        );
    }

    #[test]
    fn index_lists_and_revokes_all() {
        let kv = MemoryKv::default();
        let cfg = test_config();
        let s = Sessions { kv: &kv, cfg: &cfg };
        let (a, _) = block_on(s.create(rec("u1"), 0)).unwrap();
        let (b, _) = block_on(s.create(rec("u1"), 1)).unwrap();
        let (c, _) = block_on(s.create(rec("u2"), 1)).unwrap();
        assert_eq!(block_on(s.list(&"u1".into(), 2)).unwrap().len(), 2);
        // The index lists exactly u1's sessions; revoking them leaves u2's alone.
        let sids = block_on(s.sids_of(&"u1".into())).unwrap();
        assert_eq!(sids.len(), 2);
        for sid in &sids {
            block_on(s.forget(sid, &"u1".into())).unwrap();
        }
        assert!(block_on(s.lookup(a.expose(), 2)).unwrap().is_none());
        assert!(block_on(s.lookup(b.expose(), 2)).unwrap().is_none());
        assert!(block_on(s.lookup(c.expose(), 2)).unwrap().is_some());
    }
}
