//! Cookie rules (README "Sessions, tokens and cookies"): parsing `Cookie`, building `Set-Cookie`
//! values with `__Host-` prefix, `Secure`, `HttpOnly`, `SameSite=Lax`, `Path=/` — the prefix
//! and `Secure` dropped only on plain-http localhost, where browsers would refuse them.

use crate::error::AppError;
use crate::http::{Request, READ_HEADERS};

/// The long-lived opaque session cookie.
pub const SESSION: &str = "gh_session";
/// The short-lived access JWT cookie.
pub const ACCESS: &str = "gh_access";
/// The login-transaction cookie (10 minutes).
pub const TXN: &str = "gh_txn";

/// Gatehouse's own cookies as they are named on the wire: plain-http localhost, then https.
pub const WIRE_NAMES: [[&str; 3]; 2] = [
    [SESSION, ACCESS, TXN],
    ["__Host-gh_session", "__Host-gh_access", "__Host-gh_txn"],
];

/// Cookie settings derived from `PUBLIC_URL`.
#[derive(Debug, Clone, Copy)]
pub struct CookieJar {
    pub secure: bool,
}

impl CookieJar {
    /// The name on the wire: `__Host-` prefixed when secure.
    pub fn wire_name(&self, name: &str) -> String {
        if self.secure {
            format!("__Host-{name}")
        } else {
            name.to_string()
        }
    }

    /// A `Set-Cookie` value that sets `name` for `max_age` seconds.
    pub fn set(&self, name: &str, value: &str, max_age: u64) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{}={}; Max-Age={}; Path=/; HttpOnly; SameSite=Lax{}",
            self.wire_name(name),
            value,
            max_age,
            secure
        )
    }

    /// A `Set-Cookie` value that deletes `name`.
    pub fn clear(&self, name: &str) -> String {
        self.set(name, "", 0)
    }

    /// The value of our cookie `name` in the request, if any.
    pub fn get(&self, req: &Request, name: &str) -> Option<String> {
        let wire = self.wire_name(name);
        read_cookie(req, &wire)
    }

    /// Whether a `Cookie` header pair is one of Gatehouse's own (never forwarded to an origin).
    pub fn is_own(&self, cookie_name: &str) -> bool {
        [SESSION, ACCESS, TXN]
            .iter()
            .any(|n| self.wire_name(n) == cookie_name)
    }
}

/// The values of the request's `Cookie` headers.
fn cookie_headers(req: &Request) -> impl Iterator<Item = &str> {
    debug_assert!(
        READ_HEADERS.contains(&"cookie"),
        "the Worker must pass Cookie"
    );
    req.headers
        .iter()
        .filter(|(k, _)| k == "cookie")
        .map(|(_, v)| v.as_str())
}

/// The names of the cookies in the request's `Cookie` headers, in order, repeats included.
/// Also split at `,`: the runtime joins repeated `Cookie` headers with ", ", and a comma is
/// not a cookie-value character (RFC 6265 §4.1.1). Bytes, not chars: this runs on every
/// request that carries cookies, over a header that holds a whole access token.
fn cookie_names(req: &Request) -> impl Iterator<Item = &[u8]> {
    cookie_headers(req)
        .flat_map(|v| v.as_bytes().split(|b| matches!(b, b';' | b',')))
        .map(|pair| {
            let name = pair.split(|b| *b == b'=').next().unwrap_or_default();
            name.trim_ascii()
        })
}

/// Whether the request's `Cookie` headers carry a cookie called `name` more than once.
/// Browsers send every cookie whose domain and path match, so two of one name means one
/// was set by someone else — a sibling subdomain "tossing" a cookie of its own choosing —
/// and taking either would let it pick the session (or token) this request runs as.
pub fn sent_twice(req: &Request, name: &str) -> bool {
    first_sent_twice(req, &[name]).is_some()
}

/// The first of `names` (at most 32) the request's `Cookie` headers carry more than once, in
/// one pass over them (see [`sent_twice`]).
pub fn first_sent_twice<'n>(req: &Request, names: &[&'n str]) -> Option<&'n str> {
    debug_assert!(names.len() <= 32);
    let mut seen = 0u32;
    for sent in cookie_names(req) {
        if let Some(i) = names.iter().position(|n| n.as_bytes() == sent) {
            if seen & (1 << i) != 0 {
                return Some(names[i]);
            }
            seen |= 1 << i;
        }
    }
    None
}

/// A 400 when one of `names` was sent twice (see [`sent_twice`]), before anything reads it.
pub fn refuse_sent_twice(req: &Request, names: &[&str]) -> Result<(), AppError> {
    if let Some(name) = first_sent_twice(req, names) {
        return Err(AppError::BadRequest(format!(
            "Cookie {name} was sent twice (one may come from another site); clear this site's cookies."
        )));
    }
    Ok(())
}

/// All `name=value` pairs of the request's `Cookie` headers.
pub fn parse_cookie_header(header: &str) -> impl Iterator<Item = (&str, &str)> {
    header.split(';').filter_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        Some((k.trim(), v.trim().trim_matches('"')))
    })
}

/// The first cookie called `name` (any name; used for vendor cookies too).
pub fn read_cookie(req: &Request, name: &str) -> Option<String> {
    cookie_headers(req)
        .flat_map(parse_cookie_header)
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    #[test]
    fn secure_cookies_have_host_prefix_and_all_flags() {
        let jar = CookieJar { secure: true };
        let c = jar.set(SESSION, "abc", 60);
        assert!(c.starts_with("__Host-gh_session=abc;"));
        for flag in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=60"] {
            assert!(c.contains(flag), "{c} lacks {flag}");
        }
        assert!(!c.contains("Domain"), "__Host- cookies must not set Domain");
    }

    #[test]
    fn wire_names_are_what_the_jar_sets() {
        for secure in [false, true] {
            let jar = CookieJar { secure };
            let names = [SESSION, ACCESS, TXN].map(|n| jar.wire_name(n));
            assert_eq!(names, WIRE_NAMES[secure as usize]);
        }
    }

    #[test]
    fn localhost_cookies_drop_prefix_and_secure_only() {
        let jar = CookieJar { secure: false };
        let c = jar.set(SESSION, "abc", 60);
        assert!(c.starts_with("gh_session=abc;"));
        assert!(!c.contains("Secure"));
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax"));
    }

    #[test]
    fn reads_cookie_among_others() {
        let req = Request::new(Method::Get, "http://x/")
            .with_header("cookie", "a=1; __Host-gh_session=s3; b=2");
        let jar = CookieJar { secure: true };
        assert_eq!(jar.get(&req, SESSION).as_deref(), Some("s3"));
        assert_eq!(CookieJar { secure: false }.get(&req, SESSION), None);
    }

    #[test]
    fn one_pass_finds_whichever_of_several_names_came_twice() {
        let names = WIRE_NAMES[1];
        let req = |h: &str| Request::new(Method::Get, "http://x/").with_header("cookie", h);
        let each_once = req("__Host-gh_txn=t; __Host-gh_session=s; __Host-gh_access=a; x=1; x=2");
        assert_eq!(first_sent_twice(&each_once, &names), None);
        let access_twice = req("__Host-gh_session=s; __Host-gh_access=a, __Host-gh_access=b");
        assert_eq!(
            first_sent_twice(&access_twice, &names),
            Some("__Host-gh_access")
        );
        let txn_twice = req("__Host-gh_txn=1; gh_txn=2; __Host-gh_txn=3");
        assert_eq!(first_sent_twice(&txn_twice, &names), Some("__Host-gh_txn"));
        assert!(refuse_sent_twice(&txn_twice, &names).is_err());
        assert!(refuse_sent_twice(&each_once, &names).is_ok());
    }

    #[test]
    fn a_cookie_sent_twice_is_detected_across_headers_and_even_when_empty() {
        let once = Request::new(Method::Get, "http://x/")
            .with_header("cookie", "gh_session=a; other=1; other=2; psg_auth_token=t");
        assert!(!sent_twice(&once, "gh_session") && !sent_twice(&once, "psg_auth_token"));
        assert!(sent_twice(&once, "other"));
        for (header, second) in [
            ("gh_session=a; gh_session=b", None),
            // Two `Cookie` headers as the runtime joins them.
            ("other=1, gh_session=a", Some("gh_session=b")),
            ("gh_session=a, gh_session=b", None),
            ("gh_session=; gh_session=b", None),
            ("gh_session=a", Some("gh_session=b")),
            (" gh_session = a ", Some("gh_session=b")),
        ] {
            let mut req = Request::new(Method::Get, "http://x/").with_header("cookie", header);
            if let Some(h) = second {
                req = req.with_header("cookie", h);
            }
            assert!(sent_twice(&req, "gh_session"), "{header} / {second:?}");
        }
        // Another name that merely ends the same way is another cookie.
        let prefixed = Request::new(Method::Get, "http://x/")
            .with_header("cookie", "gh_session=a; __Host-gh_session=b");
        assert!(!sent_twice(&prefixed, "gh_session"));
    }
}
