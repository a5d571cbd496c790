//! `return_to` (docs/security.md, rule 'return_to'): where Gatehouse may send the browser after
//! sign-in or logout. Relative paths on our own origin, or absolute URLs on an allowed
//! origin; every open-redirect trick (`//evil`, `https:evil`, `\\evil`, `javascript:`,
//! control characters, and their percent-encoded variants) is refused.

use crate::config::Config;
use url::Url;

/// Where to go when no `return_to` is given.
pub const DEFAULT: &str = "/";
/// Longest `return_to` accepted.
const MAX_LEN: usize = 2048;

/// A `return_to` that passed [`validate`]: the only way to make one (besides the default,
/// `/`), so a value of this type is safe to redirect to. One that went through storage (a
/// login transaction, an invitation) is validated again when read back, against the
/// configuration of that moment.
///
/// ```compile_fail,E0423
/// let _ = gatehouse::return_to::ReturnTo("//evil.example".into());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnTo(String);

impl ReturnTo {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The stored form (validated again when read back).
    pub fn into_string(self) -> String {
        self.0
    }
}

/// The default, `/`: where to go when no `return_to` is given.
impl Default for ReturnTo {
    fn default() -> ReturnTo {
        ReturnTo(DEFAULT.to_string())
    }
}

/// Why a `return_to` was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub &'static str);

fn percent_decoded(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Checks the shape that would be dangerous after any number of decodings.
fn check_shape(s: &str) -> Result<(), Refused> {
    if s.chars().any(|c| c.is_control() || c == '\\') {
        return Err(Refused("control characters or backslashes"));
    }
    let lower = s.trim().to_ascii_lowercase();
    if lower.starts_with("//") || lower.starts_with("/\\") {
        return Err(Refused("protocol-relative URL"));
    }
    for scheme in ["javascript:", "data:", "vbscript:", "file:"] {
        if lower.starts_with(scheme) {
            return Err(Refused("forbidden scheme"));
        }
    }
    Ok(())
}

/// Validates `raw` and returns the URL to redirect to (a path, or an absolute URL on an
/// allowed origin).
pub fn validate(cfg: &Config, raw: Option<&str>) -> Result<ReturnTo, Refused> {
    checked(cfg, raw).map(ReturnTo)
}

fn checked(cfg: &Config, raw: Option<&str>) -> Result<String, Refused> {
    let raw = match raw {
        None | Some("") => return Ok(ReturnTo::default().0),
        Some(r) => r,
    };
    if raw.len() > MAX_LEN {
        return Err(Refused("too long"));
    }
    // Check the raw value and up to three layers of percent-decoding, so that `%2F%2Fevil`,
    // `%252F%252Fevil` and `/%5Cevil` are caught like their plain forms.
    let mut layer = raw.to_string();
    for _ in 0..4 {
        check_shape(&layer)?;
        let next = percent_decoded(&layer);
        if next == layer {
            break;
        }
        layer = next;
    }
    let base = Url::parse(&cfg.public_url).map_err(|_| Refused("bad PUBLIC_URL"))?;
    if raw.starts_with('/') {
        let resolved = base.join(raw).map_err(|_| Refused("not a valid path"))?;
        if resolved.origin() != base.origin() {
            return Err(Refused("path leaves our origin"));
        }
        let mut out = resolved.path().to_string();
        if let Some(q) = resolved.query() {
            out.push('?');
            out.push_str(q);
        }
        if let Some(f) = resolved.fragment() {
            out.push('#');
            out.push_str(f);
        }
        // Dot segments resolve away: `/.//evil` becomes `//evil`. Check what we would send.
        check_shape(&out)?;
        return Ok(out);
    }
    // Absolute URLs must be spelled out in full: `https:evil` parses as `https://evil/`.
    let lower = raw.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return Err(Refused("neither a path nor an absolute http(s) URL"));
    }
    let url = Url::parse(raw).map_err(|_| Refused("not a valid URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refused("user info in URL"));
    }
    if !cfg.is_allowed_origin(&url.origin().ascii_serialization()) {
        return Err(Refused("origin not allowed"));
    }
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_config;

    fn cfg() -> Config {
        let mut c = test_config();
        c.allowed_return_origins = vec!["https://app.example.com".into()];
        c
    }

    #[test]
    fn accepts_paths_and_allowed_origins() {
        let c = cfg();
        assert_eq!(validate(&c, None).unwrap().as_str(), "/");
        assert_eq!(
            validate(&c, Some("/dash?x=1#top")).unwrap().as_str(),
            "/dash?x=1#top"
        );
        assert_eq!(
            validate(&c, Some("http://127.0.0.1:8787/a"))
                .unwrap()
                .as_str(),
            "http://127.0.0.1:8787/a"
        );
        assert_eq!(
            validate(&c, Some("https://app.example.com/x"))
                .unwrap()
                .as_str(),
            "https://app.example.com/x"
        );
    }

    #[test]
    fn refuses_open_redirect_variants() {
        let c = cfg();
        for evil in [
            "//evil.com",
            "///evil.com",
            "https:evil.com",
            "https:/evil.com",
            "\\\\evil.com",
            "/\\evil.com",
            "\\/evil.com",
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            " javascript:alert(1)",
            "%2F%2Fevil.com",
            "/%2F/evil.com",
            "%252F%252Fevil.com",
            "/%5Cevil.com",
            "%5C%5Cevil.com",
            "javascript%3Aalert(1)",
            "/\tevil",
            "/%09/evil.com",
            "/\n/evil.com",
            "https://evil.com",
            "http://app.example.com.evil.com/",
            "https://app.example.com@evil.com/",
            "https://user@app.example.com/",
            "data:text/html,x",
            "evil.com",
            "http://127.0.0.1:9999/",
            "/.//evil.com",
            "/a/..//evil.com",
            "/%2e//evil.com",
            "/x/%2e%2e//evil.com",
        ] {
            assert!(validate(&c, Some(evil)).is_err(), "accepted {evil:?}");
        }
    }
}
