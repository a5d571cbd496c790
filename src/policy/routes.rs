//! Proxy-mode routes of the policy and the path they are matched on.
//!
//! A rule must hold for the path the origin acts on, not for the spelling a client chose.
//! So the path is normalized once — percent-decoded once, dot-segments resolved, empty
//! segments (`//`) dropped — the rules are matched on that, and the origin receives exactly
//! that path, re-encoded ([`encode`]): an origin that decodes once sees what was checked.
//! What cannot be normalized without guessing how the origin reads it is refused: an encoded
//! slash or backslash (`%2F`, `%5C`: one segment here, two at many origins), control
//! characters, bytes that are not UTF-8, and `..;`-style segments (Tomcat and Jetty strip
//! `;…` from a segment before resolving dot-segments).

use crate::http::Method;
use serde_json::Value;

/// One `[[POLICY.routes]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The path without its `/*` (for a prefix) — `/admin` for `/admin/*`.
    pub path: String,
    /// Whether `path` is a prefix (`/admin/*` matches `/admin` and everything below it).
    pub prefix: bool,
    /// Methods this rule applies to; empty: all (`GET` also covers `HEAD`).
    pub methods: Vec<Method>,
    /// Any one of these roles is needed (empty: signed in is enough).
    pub roles: Vec<String>,
    /// No sign-in needed.
    pub public: bool,
}

impl Route {
    /// Parses one entry; errors name the key (`routes[0].path`).
    pub fn parse(v: &Value, key: &str) -> Result<Route, String> {
        let o = v
            .as_object()
            .ok_or_else(|| format!("{key} must be a table"))?;
        let mut r = Route {
            path: String::new(),
            prefix: false,
            methods: vec![],
            roles: vec![],
            public: false,
        };
        for (k, v) in o {
            let at = format!("{key}.{k}");
            match k.as_str() {
                "path" => {
                    let raw = v.as_str().ok_or_else(|| format!("{at} must be a string"))?;
                    let (base, prefix) = match raw.strip_suffix("/*") {
                        Some(b) => (b, true),
                        None => (raw, false),
                    };
                    let canonical = normalize(if base.is_empty() { "/" } else { base }).ok();
                    if !raw.starts_with('/')
                        || base.contains('*')
                        || canonical.as_deref() != Some(base) && !(prefix && base.is_empty())
                    {
                        return Err(format!("{at}: {raw:?} must be a normalized path (\"/x/y\"), or a prefix ending in /* (\"/x/*\")"));
                    }
                    r.path = base.to_string();
                    r.prefix = prefix;
                }
                "methods" => {
                    for m in super::strings(v, &at)? {
                        // Any case, as before `Method::parse` took the runtime's spelling.
                        match Method::parse(&m.to_ascii_uppercase()) {
                            Method::Other => return Err(format!("{at}: unknown method {m:?}")),
                            method => r.methods.push(method),
                        }
                    }
                }
                "roles" => r.roles = super::role_list(v, &at)?,
                "public" => {
                    r.public = v
                        .as_bool()
                        .ok_or_else(|| format!("{at} must be true or false"))?
                }
                other => return Err(super::unknown(key, other, "path, methods, roles, public")),
            }
        }
        if r.path.is_empty() && !r.prefix {
            return Err(format!("{key}.path is required"));
        }
        if r.public && !r.roles.is_empty() {
            return Err(format!("{key}: a public route cannot also need roles"));
        }
        Ok(r)
    }

    /// Whether this rule covers `method` on the normalized `path`.
    pub fn matches(&self, method: Method, path: &str) -> bool {
        let method_ok = self.methods.is_empty()
            || self
                .methods
                .iter()
                .any(|m| *m == method || (*m == Method::Get && method == Method::Head));
        let path_ok = if self.prefix {
            path == self.path
                || path
                    .strip_prefix(self.path.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        } else {
            path == self.path
        };
        method_ok && path_ok
    }
}

/// Why a path was refused (400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadPath {
    /// `%2F` or `%5C`: a slash that the origin may or may not split on.
    EncodedSlash,
    /// A control character, broken percent-encoding or bytes that are not UTF-8.
    BadEncoding,
    /// A segment like `..;x` that some servers read as a dot-segment.
    DotSegmentParameter,
}

impl BadPath {
    pub fn message(self) -> &'static str {
        match self {
            BadPath::EncodedSlash => "The path contains an encoded slash or backslash.",
            BadPath::BadEncoding => "The path is not properly encoded.",
            BadPath::DotSegmentParameter => "The path contains a dot-segment with parameters.",
        }
    }
}

/// The path rules are matched on: percent-decoded once, `.` and `..` resolved, empty
/// segments dropped; a trailing slash is kept. `raw` is the request's path as it arrived
/// (percent-encoded).
pub fn normalize(raw: &str) -> Result<String, BadPath> {
    let mut out: Vec<String> = Vec::new();
    let segments: Vec<&str> = raw.split('/').filter(|s| !s.is_empty()).collect();
    for seg in &segments {
        let bytes = decode(seg)?;
        if bytes.iter().any(|b| matches!(b, b'/' | b'\\')) {
            return Err(BadPath::EncodedSlash);
        }
        if bytes.iter().any(|b| *b < 0x20 || *b == 0x7f) {
            return Err(BadPath::BadEncoding);
        }
        let seg = String::from_utf8(bytes).map_err(|_| BadPath::BadEncoding)?;
        let bare = seg.split(';').next().unwrap_or_default();
        match seg.as_str() {
            "." => {}
            ".." => {
                out.pop();
            }
            _ if bare == "." || bare == ".." => return Err(BadPath::DotSegmentParameter),
            _ => out.push(seg),
        }
    }
    let mut path = String::with_capacity(raw.len());
    for s in &out {
        path.push('/');
        path.push_str(s);
    }
    let dir = raw.ends_with('/') || segments.last().is_some_and(|s| matches!(*s, "." | ".."));
    if path.is_empty() || dir {
        path.push('/');
    }
    Ok(path)
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Percent-decodes `s` once; a `%` not followed by two hex digits is refused.
fn decode(s: &str) -> Result<Vec<u8>, BadPath> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let pair = b
                .get(i + 1)
                .copied()
                .and_then(hex)
                .zip(b.get(i + 2).copied().and_then(hex));
            let (hi, lo) = pair.ok_or(BadPath::BadEncoding)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// The normalized `path` as the origin receives it: every byte that is not a plain path
/// character percent-encoded (`%` itself too), so that decoding it once gives `path` back.
pub fn encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
