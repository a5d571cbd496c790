//! URL rules shared by the configuration and the providers: what a base URL setting may be,
//! which hosts are this machine, the one place where plain http is told apart from https
//! (allowed only on loopback), and an app's `login_hint` in a sign-in's `return_to`. Near a
//! leaf: it imports only the error model and the stored-form reader.

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

/// The `login_hint` of the OpenID Provider authorization request a sign-in is for (its
/// `return_to` is `/oauth/authorize?…`): passed on to an OpenID Connect provider and filled
/// into the email form. Only a hint: one that is empty, longer than an email address may be
/// (254 bytes) or holds a control character is left out.
pub fn login_hint(return_to: &str) -> Option<String> {
    let query = return_to.strip_prefix("/oauth/authorize?")?;
    crate::oauth_store::decode(query.as_bytes())
        .get("login_hint")
        .filter(|h| !h.is_empty() && h.len() <= 254 && !h.chars().any(char::is_control))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_hint_comes_only_from_an_authorization_request_and_is_bounded() {
        let hint = |r: &str| login_hint(r);
        assert_eq!(
            hint("/oauth/authorize?client_id=c&login_hint=a%40b.example").as_deref(),
            Some("a@b.example")
        );
        assert_eq!(hint("/elsewhere?login_hint=a%40b.example"), None);
        assert_eq!(hint("/oauth/authorize?client_id=c"), None);
        assert_eq!(hint("/oauth/authorize?login_hint="), None);
        assert_eq!(hint("/oauth/authorize?login_hint=a%0Ab"), None, "control");
        let longest = "a".repeat(254);
        assert_eq!(
            hint(&format!("/oauth/authorize?login_hint={longest}")),
            Some(longest.clone())
        );
        assert_eq!(
            hint(&format!("/oauth/authorize?login_hint={longest}a")),
            None
        );
    }
}
