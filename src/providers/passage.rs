//! The `passage` kind: the app's front end signs the user in with Passage (passage.id, shut
//! down 2026-01-16; kept for teams migrating off it and for self-hosted look-alikes), then
//! the browser visits `/auth/callback/{name}` carrying the Passage JWT in the `psg_auth_token`
//! cookie (configurable) or `Authorization: Bearer`. Gatehouse verifies it — RS256 only,
//! against the app's JWKS (cached, refetched on an unknown `kid` at most once a minute by
//! [`super::oidc::verify_provider_jwt`]), exact `iss`, `aud` containing the app id, `exp` —
//! links its `sub` under `passage:{app_id}`, and issues its own session.
//!
//! There is no login transaction: nothing Gatehouse started comes back here. A cross-site
//! page cannot attach a bearer header to a navigation, and the cookie is the visitor's own,
//! so the visitor can only ever be signed in as themselves.

use super::oidc::verify_provider_jwt;
use super::{rejected, str_claim, Flow};
use crate::cookies::read_cookie;
use crate::error::{AppError, AppResult};
use crate::http::Request;
use crate::jwt::validate::ClaimRules;
use crate::jwt::{compact, Alg, JwtError};
use crate::platform::Platform;
use crate::urls::parse_base_url;
use crate::users::Profile;
use serde_json::Value;

/// The cookie the Passage element sets.
pub const DEFAULT_COOKIE: &str = "psg_auth_token";

struct Settings {
    app_id: String,
    jwks_url: Option<String>,
    issuer: Option<String>,
    audience: Option<String>,
    cookie: Option<String>,
    display_name: Option<String>,
}

impl Settings {
    fn read(v: &Value) -> Result<Settings, String> {
        let f = crate::fields::Fields::strict(
            v,
            &[
                "kind",
                "app_id",
                "jwks_url",
                "issuer",
                "audience",
                "cookie",
                "display_name",
            ],
        )?;
        Ok(Settings {
            app_id: f.str("app_id")?,
            jwks_url: f.opt_str("jwks_url")?,
            issuer: f.opt_str("issuer")?,
            audience: f.opt_str("audience")?,
            cookie: f.opt_str("cookie")?,
            display_name: f.opt_str("display_name")?,
        })
    }
}

/// Settings of a `passage` provider.
#[derive(Debug, Clone)]
pub struct PassageConfig {
    pub name: String,
    pub app_id: String,
    pub jwks_url: String,
    /// The exact `iss` of the app's tokens.
    pub issuer: String,
    /// What `aud` must contain (the app id unless configured).
    pub audience: String,
    pub cookie: String,
    pub display_name: String,
}

fn is_cookie_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

impl PassageConfig {
    pub fn parse(name: &str, v: &Value) -> Result<PassageConfig, String> {
        let s = Settings::read(v)?;
        let app_id = s.app_id.trim().to_string();
        if app_id.is_empty()
            || app_id.len() > 100
            || !app_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
        {
            return Err("app_id must be a Passage app id ([A-Za-z0-9_-])".into());
        }
        let jwks_url = s.jwks_url.unwrap_or_else(|| {
            format!("https://auth.passage.id/v1/apps/{app_id}/.well-known/jwks.json")
        });
        parse_base_url("jwks_url", &jwks_url)
            .map_err(|_| "jwks_url must be an http(s) URL without query".to_string())?;
        let issuer = s
            .issuer
            .unwrap_or_else(|| format!("https://auth.passage.id/v1/apps/{app_id}"));
        if issuer.is_empty() {
            return Err("issuer must not be empty".into());
        }
        let cookie = s.cookie.unwrap_or_else(|| DEFAULT_COOKIE.into());
        if !is_cookie_name(&cookie) {
            return Err("cookie must be a cookie name".into());
        }
        Ok(PassageConfig {
            name: name.into(),
            audience: s.audience.unwrap_or_else(|| app_id.clone()),
            display_name: s.display_name.unwrap_or_else(|| name.to_string()),
            app_id,
            jwks_url,
            issuer,
            cookie,
        })
    }

    /// The identity issuer: `passage:{app_id}`.
    pub fn identity_issuer(&self) -> String {
        format!("passage:{}", self.app_id)
    }
}

/// Where the login page's button goes: straight to the callback, which either finds a
/// Passage token in this browser or explains that there is none.
pub fn begin(flow: &Flow<'_>) -> String {
    let mut url = flow.redirect_uri.clone();
    if let Some(return_to) = flow.return_to {
        url.push('?');
        url.push_str(
            &url::form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", return_to)
                .finish(),
        );
    }
    url
}

/// Where a presented Passage JWT came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `Authorization: Bearer`: always sent on purpose.
    Bearer,
    /// The Passage cookie: rides along on any navigation to Gatehouse.
    Cookie,
}

/// The Passage JWT of the request: `Authorization: Bearer` first, else the cookie.
pub fn presented_token(req: &Request, cookie: &str) -> Option<(String, Source)> {
    let bearer = req.header("authorization").and_then(|h| {
        let (scheme, rest) = h.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| rest.trim().to_string())
    });
    bearer
        .filter(|t| !t.is_empty())
        .map(|t| (t, Source::Bearer))
        .or_else(|| read_cookie(req, cookie).map(|t| (t, Source::Cookie)))
}

fn token_rejected(name: &str, e: JwtError) -> AppError {
    rejected(name, format!("Passage token: {e}"))
}

/// Verifies the presented Passage JWT and returns who it names.
pub async fn complete<P: Platform>(p: &P, c: &PassageConfig, req: &Request) -> AppResult<Profile> {
    let name = c.name.as_str();
    crate::cookies::refuse_sent_twice(req, &[&c.cookie])?;
    let (token, source) = presented_token(req, &c.cookie).ok_or_else(|| {
        AppError::Unauthorized(format!(
            "No {} sign-in was found in this browser. Please sign in with {} first.",
            c.display_name, c.display_name
        ))
    })?;
    // The cookie rides along on any navigation, also one that another page starts, and a
    // page on a sibling subdomain can plant one (cookie tossing) and then navigate here as
    // `same-site`. So a cookie token signs in only on a navigation from Gatehouse's own origin
    // or one the person started (`none`: typed, bookmarked); a browser that sends no Fetch
    // Metadata is taken as is.
    if source == Source::Cookie
        && !matches!(
            req.header("sec-fetch-site"),
            None | Some("same-origin" | "none")
        )
    {
        return Err(AppError::Forbidden(format!(
            "Continue to {} sign-in from this site's own pages.",
            c.display_name
        )));
    }
    // Passage signs with RS256 and nothing else.
    let alg = compact::parse(&token)
        .map_err(|e| token_rejected(name, e))?
        .alg;
    if alg != Alg::Rs256 {
        return Err(token_rejected(
            name,
            JwtError::Algorithm(format!("{} (Passage tokens are RS256)", alg.name())),
        ));
    }
    let rules = ClaimRules {
        issuer: &c.issuer,
        audience: &c.audience,
        now: p.now(),
        require_iat: false,
    };
    let claims = verify_provider_jwt(p, name, "Passage token", &token, &c.jwks_url, &rules).await?;
    Ok(Profile {
        issuer: c.identity_issuer(),
        sub: str_claim(&claims, "sub").unwrap_or_default(),
        provider: name.into(),
        email: str_claim(&claims, "email"),
        email_verified: claims.get("email_verified").and_then(|v| v.as_bool()),
        name: str_claim(&claims, "name"),
        picture: None,
        raw: Value::Object(claims),
        vendor_logout: None,
    })
}

#[cfg(test)]
mod tests;
