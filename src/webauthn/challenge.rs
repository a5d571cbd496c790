//! Ceremony challenges: 32 random bytes, bound to the browser that asked for them. Nothing is
//! stored when a challenge is handed out (an anonymous page load must not write): the
//! browser keeps it in an HttpOnly cookie, `purpose.challenge.issued_at.user.mac`, with an
//! HMAC under `STATE_SECRET`, so it cannot be forged, stretched or moved to another purpose
//! or user. A ceremony must present the challenge of its own browser's cookie; single use is
//! the spent-set's job (one conditional write when the ceremony succeeds).

use super::{Result, WebAuthnError};
use crate::crypto::{b64url, ct_eq, hmac_sha256, random_bytes, Secret};

/// The cookie that carries the browser's current challenge.
pub const COOKIE: &str = "gh_pk";
/// How long a challenge may be answered.
pub const TTL: i64 = 300;
/// How long a spent challenge is remembered past [`TTL`]: longer than any clock difference
/// between isolates, so it is refused as expired before its spent row is pruned.
const SPENT_MARGIN: i64 = 300;

/// Which ceremony a challenge is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Register,
    Login,
}

impl Purpose {
    fn tag(self) -> &'static str {
        match self {
            Purpose::Register => "r",
            Purpose::Login => "l",
        }
    }
}

/// A challenge read back from a browser's cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub bytes: Vec<u8>,
    pub issued_at: i64,
    /// The user a registration challenge was given to (empty for sign-in).
    pub user: String,
}

impl Challenge {
    /// Until when its spent mark must be kept.
    pub fn spent_until(&self) -> i64 {
        self.issued_at + TTL + SPENT_MARGIN
    }
}

fn mac(secret: &Secret, payload: &str) -> String {
    let mut data = b"gatehouse passkey challenge|".to_vec();
    data.extend_from_slice(payload.as_bytes());
    b64url(&hmac_sha256(secret.expose().as_bytes(), &data))
}

/// A fresh challenge for `purpose` (and `user`, registering): its bytes and the cookie value.
pub fn issue(secret: &Secret, purpose: Purpose, user: &str, now: i64) -> (Vec<u8>, String) {
    let bytes = random_bytes::<32>().to_vec();
    let payload = format!("{}.{}.{now}.{user}", purpose.tag(), b64url(&bytes));
    let cookie = format!("{payload}.{}", mac(secret, &payload));
    (bytes, cookie)
}

/// The challenge of this browser's cookie, if it is genuine, for `purpose`, and fresh.
pub fn read(
    secret: &Secret,
    cookie: Option<&str>,
    purpose: Purpose,
    now: i64,
) -> Result<Challenge> {
    let cookie = cookie.ok_or(WebAuthnError::Challenge("missing in this browser"))?;
    let forged = WebAuthnError::Challenge("not issued here");
    let (payload, tag) = cookie.rsplit_once('.').ok_or(forged.clone())?;
    if !ct_eq(mac(secret, payload).as_bytes(), tag.as_bytes()) {
        return Err(forged);
    }
    let mut parts = payload.splitn(4, '.');
    let (Some(p), Some(c), Some(t), Some(user)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(forged);
    };
    if p != purpose.tag() {
        return Err(WebAuthnError::Challenge("for another ceremony"));
    }
    let issued_at: i64 = t.parse().map_err(|_| forged.clone())?;
    if now - issued_at > TTL || issued_at > now + 60 {
        return Err(WebAuthnError::Challenge("expired"));
    }
    Ok(Challenge {
        bytes: super::field(c, "challenge")?,
        issued_at,
        user: user.to_string(),
    })
}
