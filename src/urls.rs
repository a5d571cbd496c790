//! URL rules shared by the configuration and the providers: what a base URL setting may be,
//! which hosts are this machine, and the one place where plain http is told apart from https
//! (allowed only on loopback). A leaf module: it imports only the error model.

use crate::error::AppError;
use url::Url;

/// Parses an absolute http(s) URL with a host and no query or fragment.
pub fn parse_base_url(setting: &str, s: &str) -> Result<Url, AppError> {
    let url = Url::parse(s).map_err(|e| bad(setting, format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad(setting, "must be an http(s) URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(bad(setting, "must not have a query, fragment or user info"));
    }
    Ok(url)
}

/// Whether `url`'s host is this machine: `localhost`, 127.0.0.0/8 or `::1` — the only
/// places where plain http cannot be read or changed on the way.
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Whether `raw` is not https and not on loopback (or not a URL at all).
#[inline(never)]
pub fn plain_http_off_loopback(raw: &str) -> bool {
    Url::parse(raw)
        .map(|u| u.scheme() != "https" && !is_loopback_host(&u))
        .unwrap_or(true)
}

/// An API base URL (http(s), no query) normalized to end in `/`, so that endpoint paths can be
/// appended (the vendor kinds' `api_url` settings).
pub fn api_base(setting: &str, s: &str) -> Result<String, String> {
    parse_base_url(setting, s)
        .map_err(|_| format!("{setting} must be an http(s) URL without a query"))?;
    Ok(format!("{}/", s.trim_end_matches('/')))
}

fn bad(setting: &str, problem: impl Into<String>) -> AppError {
    AppError::Config {
        setting: setting.into(),
        problem: problem.into(),
    }
}
