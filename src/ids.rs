//! Identifiers that are all strings in storage but must never be mixed up: a local user's id,
//! a session's id and the key of a provider identity. Each is its own type, so a user id
//! cannot be passed where a session id is expected, nor an identity's issuer where its
//! subject is. The stores (D1 rows, KV keys, JWT claims) convert at their boundary with
//! `From<String>` and `as_str`.
//!
//! A user id where a session id is expected does not compile:
//!
//! ```compile_fail,E0308
//! use gatehouse::ids::{SessionId, UserId};
//! fn end_session(_sid: &SessionId, _user: &UserId) {}
//! let (user, sid) = (UserId::from("usr_1"), SessionId::from("abc"));
//! end_session(&user, &sid); // swapped
//! ```
//!
//! nor does an issuer where a subject is, once they are an [`IdentityKey`] (its fields are
//! named at every construction).

use serde::{Serialize, Serializer};
use std::fmt;

/// A local user's id (`usr_` + 128 random bits; the access JWT's `sub`). Not a secret: it
/// appears in audit events and the admin API.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserId(String);

/// A session's id: the SHA-256 (base64url) of the raw session token the browser holds. It is
/// not the bearer credential itself (the hash cannot be turned back into the cookie), but it
/// is the key of the session in KV and the handle that ends it, so `Debug` prints only its
/// first 8 characters: enough to tell a user's sessions apart in a log line, not the whole
/// handle. Its owner sees it in full (`GET /account/sessions`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(String);

/// The key of a provider identity: `(issuer, sub)`, and only that — email never links
/// accounts. Borrowed: it names an identity for a lookup or an unlink (two strings that
/// must not be swapped), it is never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdentityKey<'a> {
    /// The stable issuer (OIDC `iss`, or `xwms:{domain}`, …).
    pub issuer: &'a str,
    /// The provider's stable subject id at that issuer.
    pub sub: &'a str,
}

macro_rules! string_id {
    ($t:ident) => {
        impl $t {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        /// From a value the store or a verified token holds.
        impl From<String> for $t {
            fn from(s: String) -> $t {
                $t(s)
            }
        }

        impl From<&str> for $t {
            fn from(s: &str) -> $t {
                $t(s.to_string())
            }
        }

        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
    };
}

string_id!(UserId);
string_id!(SessionId);

/// Lookups in maps keyed by user id (the in-memory stores of the tests) with a stored
/// string: `Hash` and `Eq` are those of the string.
impl std::borrow::Borrow<str> for UserId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.0.get(..8).unwrap_or("");
        write!(f, "SessionId({shown}…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_id_debug_shows_only_a_prefix() {
        let sid = SessionId::from("AbCdEfGh-the-rest-of-a-sha256-in-base64url");
        let shown = format!("{sid:?}");
        assert_eq!(shown, "SessionId(AbCdEfGh…)");
        assert!(!format!("{:?}", Some(&sid)).contains("the-rest"));
    }

    #[test]
    fn ids_serialize_as_plain_strings() {
        let v = serde_json::json!({ "u": UserId::from("usr_1"), "s": SessionId::from("x") });
        assert_eq!(v, serde_json::json!({ "u": "usr_1", "s": "x" }));
    }
}
