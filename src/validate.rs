//! Input checks of the admin API and self-service routes, as plain functions: email shape,
//! names, phone numbers, metadata size, page limits, opaque cursors, and the bodies of
//! `POST /admin/users` and `PATCH /admin/users/{id}` (unknown fields refused). Every error is
//! a sentence for the client (it becomes a 400 `bad_request`).

use crate::crypto::{b64url, b64url_decode};
use crate::users::UserPatch;
use serde_json::{Map, Value};

/// Largest `metadata` object, as compact JSON.
pub const MAX_METADATA_BYTES: usize = 8 * 1024;
/// Largest name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Page size of list routes when `limit` is not given, and the largest allowed.
pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 100;

/// A plausible email address (RFC 5321 sizes, one `@`, a dotted domain of letters, digits
/// and hyphens under a top-level domain that is not a number, no spaces or control
/// characters), trimmed. The one email rule of Gatehouse: the admin API, magic-link sends
/// and invitations all use it. Deliverability is the provider's
/// business; this keeps obvious garbage out of the user table.
pub fn email(raw: &str) -> Result<String, String> {
    let e = raw.trim();
    let bad = || {
        Err(format!(
            "{:?} is not a valid email address.",
            truncate(e, 80)
        ))
    };
    if e.is_empty() || e.len() > 254 {
        return bad();
    }
    let Some((local, domain)) = e.rsplit_once('@') else {
        return bad();
    };
    if local.is_empty()
        || local.len() > 64
        || local.contains('@')
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
        || local
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"".contains(c))
    {
        return bad();
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2
        || labels.iter().any(|l| {
            l.is_empty()
                || l.len() > 63
                || l.starts_with('-')
                || l.ends_with('-')
                || !l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
    {
        return bad();
    }
    // A top-level domain has two characters or more and is not a number (`a@1.2.3.4` is an
    // IP address, not a domain).
    let tld = labels[labels.len() - 1];
    if tld.chars().count() < 2 || tld.chars().all(|c| c.is_ascii_digit()) {
        return bad();
    }
    Ok(e.to_string())
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// A display name: 1–200 characters after trimming, no control characters.
pub fn name(raw: &str) -> Result<String, String> {
    let n = raw.trim();
    if n.is_empty() {
        return Err("name must not be empty (use null to clear it).".into());
    }
    if n.chars().count() > MAX_NAME_CHARS {
        return Err(format!("name must be at most {MAX_NAME_CHARS} characters."));
    }
    if n.chars().any(char::is_control) {
        return Err("name must not contain control characters.".into());
    }
    Ok(n.to_string())
}

/// A phone number in E.164 form: `+` and 8–15 digits (spaces, dashes, dots and parentheses
/// are accepted and removed).
pub fn phone(raw: &str) -> Result<String, String> {
    let bad = || {
        Err(format!(
            "{:?} is not a phone number in E.164 form (+ and 8 to 15 digits).",
            truncate(raw.trim(), 40)
        ))
    };
    let compact: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let Some(digits) = compact.strip_prefix('+') else {
        return bad();
    };
    if !(8..=15).contains(&digits.len())
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || digits.starts_with('0')
    {
        return bad();
    }
    Ok(compact)
}

/// `metadata`: a JSON object of at most [`MAX_METADATA_BYTES`] as compact JSON.
pub fn metadata(v: &Value) -> Result<Value, String> {
    if !v.is_object() {
        return Err("metadata must be a JSON object.".into());
    }
    let size = crate::fields::json_text(v).len();
    if size > MAX_METADATA_BYTES {
        return Err(format!(
            "metadata is {size} bytes; at most {MAX_METADATA_BYTES} are allowed."
        ));
    }
    Ok(v.clone())
}

/// `limit` of a list route: default [`DEFAULT_PAGE`], 1 to [`MAX_PAGE`].
pub fn page_limit(raw: Option<&str>) -> Result<u32, String> {
    match raw.map(str::trim) {
        None | Some("") => Ok(DEFAULT_PAGE),
        Some(s) => match s.parse::<u32>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(format!(
                "limit must be a whole number from 1 to {MAX_PAGE}."
            )),
        },
    }
}

/// An opaque cursor for a position `(time, key)` in a newest-first list.
pub fn encode_cursor(t: i64, key: &str) -> String {
    b64url(format!("{t}.{key}").as_bytes())
}

/// The position of a cursor made by [`encode_cursor`].
pub fn decode_cursor(c: &str) -> Result<(i64, String), String> {
    let bad = || "cursor is not one this API returned.".to_string();
    if c.len() > 200 {
        return Err(bad());
    }
    let raw = b64url_decode(c).map_err(|_| bad())?;
    let s = String::from_utf8(raw).map_err(|_| bad())?;
    let (t, key) = s.split_once('.').ok_or_else(bad)?;
    let t = t.parse::<i64>().map_err(|_| bad())?;
    if key.is_empty() {
        return Err(bad());
    }
    Ok((t, key.to_string()))
}

/// The cursor of an event list: `(at, id)`.
pub fn decode_event_cursor(c: &str) -> Result<(i64, i64), String> {
    let (t, id) = decode_cursor(c)?;
    let id = id
        .parse::<i64>()
        .map_err(|_| "cursor is not one this API returned.".to_string())?;
    Ok((t, id))
}

/// The body of `POST /admin/users`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewUser {
    pub email: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub metadata: Option<Value>,
}

const USER_FIELDS: &str = "email, name, phone, metadata";

/// Parses a JSON object body; every error is a sentence.
pub fn json_object(body: &[u8]) -> Result<Map<String, Value>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("The body must be a JSON object.".into());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("The body must be a JSON object.".into()),
        Err(e) => Err(format!("The body is not valid JSON: {e}.")),
    }
}

/// A string field that may be null (`Ok(None)`).
fn nullable_string(
    field: &str,
    v: &Value,
    check: fn(&str) -> Result<String, String>,
) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => check(s).map(Some),
        _ => Err(format!("{field} must be a string or null.")),
    }
}

/// `POST /admin/users`: `{email?, name?, phone?, metadata?}`, nothing else.
pub fn new_user(body: &[u8]) -> Result<NewUser, String> {
    let mut out = NewUser::default();
    for (k, v) in json_object(body)? {
        match k.as_str() {
            "email" => out.email = nullable_string("email", &v, email)?,
            "name" => out.name = nullable_string("name", &v, name)?,
            "phone" => out.phone = nullable_string("phone", &v, phone)?,
            "metadata" => out.metadata = Some(metadata(&v)?),
            other => {
                return Err(format!(
                    "Unknown field {:?} (allowed: {USER_FIELDS}).",
                    truncate(other, 40)
                ))
            }
        }
    }
    Ok(out)
}

/// `PATCH /admin/users/{id}`: any of `name`, `email`, `phone` (a string, or null to clear)
/// and `metadata` (an object, replacing the old one), nothing else.
pub fn user_patch(body: &[u8]) -> Result<UserPatch, String> {
    let mut out = UserPatch::default();
    for (k, v) in json_object(body)? {
        match k.as_str() {
            "email" => out.email = Some(nullable_string("email", &v, email)?),
            "name" => out.name = Some(nullable_string("name", &v, name)?),
            "phone" => out.phone = Some(nullable_string("phone", &v, phone)?),
            "metadata" => out.metadata = Some(metadata(&v)?),
            "roles" => out.roles = Some(crate::policy::role_list(&v, "roles")?),
            other => {
                return Err(format!(
                    "Unknown field {:?} (allowed: {USER_FIELDS}, roles).",
                    truncate(other, 40)
                ))
            }
        }
    }
    Ok(out)
}

/// A required, non-empty query parameter of at most 1000 characters.
pub fn required_param(name: &str, v: Option<String>) -> Result<String, String> {
    match v {
        Some(s) if !s.is_empty() && s.len() <= 1000 => Ok(s),
        Some(s) if !s.is_empty() => Err(format!("{name} is too long.")),
        _ => Err(format!("The query parameter {name} is required.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn emails() {
        for ok in [
            "a@b.co",
            "first.last+tag@sub.example.com",
            "  padded@example.org ",
            "ü@bücher.de",
        ] {
            assert_eq!(email(ok).unwrap(), ok.trim(), "{ok}");
        }
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a@.com",
            "a@b..com",
            "a b@example.com",
            "a@exa mple.com",
            "a@-x.com",
            "a@x-.com",
            ".a@x.com",
            "a..b@x.com",
            "a@b@c.com",
            "a\n@x.com",
            "<a>@x.com",
            "a@x_y.com",
            "a@b.c",
            "a@1.2.3.4",
        ] {
            assert!(email(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(email(&format!("{}@x.com", "a".repeat(65))).is_err());
        assert!(email(&format!("a@{}.com", "b".repeat(250))).is_err());
    }

    #[test]
    fn names_and_phones() {
        assert_eq!(name("  Ada Lovelace ").unwrap(), "Ada Lovelace");
        assert!(name("   ").is_err());
        assert!(name("a\u{0}b").is_err());
        assert!(name(&"x".repeat(201)).is_err());
        assert!(name(&"é".repeat(200)).is_ok(), "characters, not bytes");
        assert_eq!(phone("+1 (415) 555-0100").unwrap(), "+14155550100");
        assert_eq!(phone("+4930123456").unwrap(), "+4930123456");
        for bad in [
            "4155550100",
            "+1",
            "+0123456789",
            "+1415555010012345",
            "+1415abc0100",
            "",
        ] {
            assert!(phone(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn metadata_is_an_object_of_at_most_8_kb() {
        assert!(metadata(&json!({"plan": "pro", "n": [1, 2]})).is_ok());
        for bad in [json!([]), json!("x"), json!(1), Value::Null] {
            assert!(metadata(&bad).is_err());
        }
        // {"k":"…"} is 8 bytes of framing.
        let fits = json!({ "k": "x".repeat(MAX_METADATA_BYTES - 8) });
        assert_eq!(fits.to_string().len(), MAX_METADATA_BYTES);
        assert!(metadata(&fits).is_ok());
        let over = json!({ "k": "x".repeat(MAX_METADATA_BYTES - 7) });
        assert!(metadata(&over).unwrap_err().contains("8192"));
    }

    #[test]
    fn page_limits() {
        assert_eq!(page_limit(None), Ok(50));
        assert_eq!(page_limit(Some("")), Ok(50));
        assert_eq!(page_limit(Some("1")), Ok(1));
        assert_eq!(page_limit(Some("100")), Ok(100));
        for bad in ["0", "101", "-1", "ten", "1.5"] {
            assert!(page_limit(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = encode_cursor(1_700_000_000, "usr_abc.def");
        assert_eq!(
            decode_cursor(&c).unwrap(),
            (1_700_000_000, "usr_abc.def".to_string())
        );
        let e = encode_cursor(5, "42");
        assert_eq!(decode_event_cursor(&e).unwrap(), (5, 42));
        for bad in [
            "",
            "!!!",
            "bm9kb3Q",
            &b64url(b"x.y"),
            &b64url(b"1."),
            &"A".repeat(300),
        ] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
        assert!(decode_event_cursor(&encode_cursor(1, "usr_x")).is_err());
    }

    #[test]
    fn new_user_body() {
        let u = new_user(br#"{"email":"a@b.co","name":" A ","phone":null,"metadata":{"x":1}}"#)
            .unwrap();
        assert_eq!(u.email.as_deref(), Some("a@b.co"));
        assert_eq!(u.name.as_deref(), Some("A"));
        assert_eq!(u.phone, None);
        assert_eq!(u.metadata, Some(json!({"x": 1})));
        assert_eq!(new_user(b"{}").unwrap(), NewUser::default());
        for (body, needle) in [
            (&b""[..], "JSON object"),
            (b"[]", "JSON object"),
            (b"{", "not valid JSON"),
            (br#"{"email":"nope"}"#, "not a valid email"),
            (br#"{"email":5}"#, "string or null"),
            (br#"{"admin":true}"#, "Unknown field \"admin\""),
            (br#"{"metadata":[]}"#, "object"),
        ] {
            let e = new_user(body).unwrap_err();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn patch_body_distinguishes_absent_and_null() {
        let p = user_patch(br#"{"name":null,"email":"x@y.zz"}"#).unwrap();
        assert_eq!(p.name, Some(None));
        assert_eq!(p.email, Some(Some("x@y.zz".into())));
        assert_eq!(p.phone, None);
        assert_eq!(p.metadata, None);
        assert_eq!(p.fields(), ["name", "email"]);
        assert!(user_patch(b"{}").unwrap().is_empty());
        assert!(user_patch(br#"{"active":false}"#).is_err());
        assert!(user_patch(br#"{"id":"usr_x"}"#).is_err());
        assert!(user_patch(br#"{"metadata":null}"#).is_err());
        let big = format!(r#"{{"metadata":{{"k":"{}"}}}}"#, "x".repeat(9000));
        assert!(user_patch(big.as_bytes()).unwrap_err().contains("bytes"));
    }

    #[test]
    fn required_params() {
        assert_eq!(required_param("sub", Some("x".into())), Ok("x".into()));
        assert!(required_param("sub", Some("".into())).is_err());
        assert!(required_param("sub", None).unwrap_err().contains("sub"));
        assert!(required_param("sub", Some("x".repeat(1001))).is_err());
    }
}
