//! Finding the access token in a request: `Authorization: Bearer`, `X-Gatehouse-Jwt`
//! (Gatehouse's proxy mode), or the access cookie. Framework-neutral: pass a header lookup.

use crate::VerifyError;

/// The access cookie's name on the wire: `__Host-gh_access` on https, `gh_access` on
/// plain-http localhost (as Gatehouse sets it).
pub fn access_cookie_name(https: bool) -> &'static str {
    if https {
        "__Host-gh_access"
    } else {
        "gh_access"
    }
}

/// The token of an `Authorization: Bearer …` value.
pub fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, rest) = authorization.trim().split_once(' ')?;
    let token = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains([' ', ',']))
        .then_some(token)
}

/// The value of cookie `name` in a `Cookie` header; two of that name are refused (a sibling
/// subdomain may have tossed one in).
pub fn cookie<'a>(cookie_header: &'a str, name: &str) -> Result<Option<&'a str>, VerifyError> {
    let mut found = cookie_header.split(';').filter_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    });
    let first = found.next();
    if found.next().is_some() {
        return Err(VerifyError::Malformed(format!("two {name} cookies")));
    }
    Ok(first.filter(|v| !v.is_empty()))
}

/// The request's access token, first found of: `Authorization: Bearer`, `X-Gatehouse-Jwt`,
/// the access cookie. `header(name)` looks up a header by lower-case name; `https` says
/// whether the request came over https (which cookie name to read).
pub fn token_from_headers<'a>(
    header: impl Fn(&str) -> Option<&'a str>,
    https: bool,
) -> Result<&'a str, VerifyError> {
    if let Some(t) = header("authorization").and_then(bearer) {
        return Ok(t);
    }
    if let Some(t) = header("x-gatehouse-jwt")
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        return Ok(t);
    }
    match header("cookie") {
        Some(c) => cookie(c, access_cookie_name(https))?.ok_or(VerifyError::MissingToken),
        None => Err(VerifyError::MissingToken),
    }
}
