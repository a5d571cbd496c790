//! Identity providers (README "Providers"). Each kind lives in its own file behind the same
//! steps — [`begin`] (where to send the browser), [`complete`] (turn the callback into a
//! verified [`Profile`]) and [`end_session`] (vendor-side logout) — so that adding a kind
//! touches one file and one match arm in each function here.
//!
//! Browser binding: every kind except `passage` runs inside a login transaction
//! ([`crate::txn`]), which a provider sees as a [`Flow`]. OAuth kinds carry its key in
//! `state`; vendor kinds without `state` carry it as `gh_state` in the URL they come back to
//! ([`Flow::callback_url`]), and the callback
//! checks it against the transaction cookie, so that a link or token minted in the
//! attacker's own sign-in (with the attacker's `gh_state`) cannot sign a victim in. (The
//! vendors do not bind their tokens to a return URL, so the binding rests on `gh_state`
//! staying secret to the browser that started the sign-in; it is 256 random bits.)

pub mod email;
pub mod fetch;
pub mod loginradius;
pub mod oauth2;
pub mod oidc;
pub mod passage;
pub mod passkey;
pub mod stytch;
pub mod xwms;

use crate::crypto::{sha256_b64url, Secret};
use crate::error::{AppError, AppResult};
use crate::http::Request;
use crate::platform::Platform;
use crate::users::Profile;

/// One configured provider.
#[derive(Debug, Clone)]
pub enum ProviderConfig {
    Oidc(oidc::OidcConfig),
    OAuth2(oauth2::OAuth2Config),
    Stytch(stytch::StytchConfig),
    Passage(passage::PassageConfig),
    Xwms(xwms::XwmsConfig),
    LoginRadius(loginradius::LoginRadiusConfig),
    Email(email::EmailConfig),
    Passkey(passkey::PasskeyConfig),
}

/// The secret a kind needs, or a clear error naming the variable.
pub fn require_secret(name: &str, secret: Option<Secret>) -> Result<Secret, String> {
    secret.ok_or_else(|| format!("needs the secret {}", secret_var_name(name)))
}

/// The env var holding a provider's secret: `PROVIDER_<NAME>_SECRET`.
pub fn secret_var_name(provider: &str) -> String {
    format!(
        "PROVIDER_{}_SECRET",
        provider.to_ascii_uppercase().replace('-', "_")
    )
}

/// How long a sign-in may take, from its start to the provider's callback (the login
/// transaction lives this long; an emailed link is valid this long).
pub const SIGN_IN_TTL: u64 = 600;

/// The sign-in under way as a provider sees it: where the browser comes back, and the
/// secrets of the login transaction that bind the flow to the browser that started it.
/// Built from the transaction by [`crate::txn::LoginTxn::flow`]; providers see neither the
/// whole configuration nor the transaction. (No `Debug`: it holds the PKCE verifier.)
pub struct Flow<'a> {
    /// `{PUBLIC_URL}/auth/callback/{name}`.
    pub redirect_uri: String,
    /// The OAuth `state` (or `gh_state` on flows without one): the transaction's key.
    pub state: &'a str,
    /// The OpenID Connect `nonce`.
    pub nonce: &'a str,
    /// The PKCE verifier; only its challenge leaves Gatehouse before the callback.
    pub pkce_verifier: &'a str,
    /// The person asked to create an account; providers with a separate sign-up page (LoginRadius) open it.
    pub register: bool,
    /// Where to go after signing in, when that is not the default.
    pub return_to: Option<&'a str>,
    /// The `email` kind's address and hashes ([`email::Challenge::pack`]).
    pub email: Option<&'a str>,
}

impl Flow<'_> {
    /// The PKCE S256 challenge of the verifier.
    pub fn pkce_challenge(&self) -> String {
        sha256_b64url(self.pkce_verifier.as_bytes())
    }

    /// `{PUBLIC_URL}/auth/callback/{name}?gh_state={state}`: the return URL of state-less flows.
    pub fn callback_url(&self) -> String {
        let mut url = self.redirect_uri.clone();
        url.push('?');
        url.push_str(
            &url::form_urlencoded::Serializer::new(String::new())
                .append_pair(STATE_PARAM, self.state)
                .finish(),
        );
        url
    }
}

/// The provider `provider` answered with an error or something that failed verification
/// (`reason` goes to the log line, never to the client).
pub fn rejected(provider: &str, reason: impl Into<String>) -> AppError {
    AppError::Provider {
        provider: provider.to_string(),
        reason: reason.into(),
    }
}

/// The provider `provider` could not be reached or did not answer in time.
pub fn unavailable(provider: &str, reason: impl Into<String>) -> AppError {
    AppError::ProviderUnavailable {
        provider: provider.to_string(),
        reason: reason.into(),
    }
}

/// A non-empty string claim or field of a provider's JSON (`None` for a missing, empty or
/// non-string value).
pub fn str_claim(m: &serde_json::Map<String, serde_json::Value>, k: &str) -> Option<String> {
    m.get(k)
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// Longest `?token=` Gatehouse passes on to a vendor (XWMS, LoginRadius).
pub const MAX_QUERY_TOKEN_LEN: usize = 4096;

/// The `?token=` a vendor's redirect or emailed link comes back with (XWMS, LoginRadius,
/// Stytch), at most `max_len` long and made only of the characters of a token
/// (base64/base64url, hex, UUIDs, JWTs): the value goes into a JSON body or an
/// `Authorization` header, where a space or a line break would be the vendor's problem to
/// refuse, or no valid header at all.
pub fn query_token(req: &Request, max_len: usize) -> AppResult<String> {
    let token = req
        .query("token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| AppError::BadRequest("The provider returned no sign-in token.".into()))?;
    let token_char = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    if token.len() > max_len || !token.chars().all(token_char) {
        return Err(AppError::BadRequest(
            "The sign-in token in this link is malformed.".into(),
        ));
    }
    Ok(token)
}

/// The one log line of a vendor logout that failed: it is best effort wherever it is tried.
pub fn log_failed_logout<P: Platform>(p: &P, name: &str, e: &AppError) {
    p.log(&format!(
        "gatehouse: vendor logout at {name} failed: {}",
        e.log_line().unwrap_or_else(|| e.to_string())
    ));
}

/// The query parameter that carries the transaction key back on flows without OAuth `state`.
pub const STATE_PARAM: &str = "gh_state";

/// A callback whose query a vendor extended by plain concatenation — `…?gh_state=S?token=T`
/// for a return URL that already had a query — read as `…?gh_state=S&token=T`. (The state is
/// base64url: it never contains `?`.)
pub fn normalize_callback(req: &Request) -> Request {
    let mut out = req.clone();
    if let Some(q) = req.url.query().filter(|q| q.contains('?')) {
        out.url.set_query(Some(&q.replace('?', "&")));
    }
    out
}

/// How a sign-in starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// Send the browser to this URL (with the transaction cookie).
    Redirect(String),
    /// Show this provider's email form (magic links: `POST /auth/magic-link` starts the
    /// transaction once an address is entered).
    EmailForm,
}

impl ProviderConfig {
    /// Parses one `PROVIDERS` entry named `name`, which its config keeps (errors and log
    /// lines name it). `kind` is read here only; each kind's strict reader lists it among
    /// its known fields just so that it is accepted.
    pub fn parse(
        name: &str,
        v: &serde_json::Value,
        secret: Option<Secret>,
    ) -> Result<ProviderConfig, String> {
        let kind = v
            .get("kind")
            .and_then(|k| k.as_str())
            .ok_or("has no \"kind\"")?;
        match kind {
            "oidc" => oidc::OidcConfig::parse(name, v, secret).map(ProviderConfig::Oidc),
            "oauth2" => oauth2::OAuth2Config::parse(name, v, secret).map(ProviderConfig::OAuth2),
            "stytch" => stytch::StytchConfig::parse(name, v, secret).map(ProviderConfig::Stytch),
            "passage" => passage::PassageConfig::parse(name, v).map(ProviderConfig::Passage),
            "xwms" => xwms::XwmsConfig::parse(name, v, secret).map(ProviderConfig::Xwms),
            "loginradius" => loginradius::LoginRadiusConfig::parse(name, v, secret)
                .map(ProviderConfig::LoginRadius),
            "email" => email::EmailConfig::parse(name, v).map(ProviderConfig::Email),
            "passkey" => passkey::PasskeyConfig::parse(name, v).map(ProviderConfig::Passkey),
            other => Err(format!(
                "unknown kind {other:?} (known: oidc, oauth2, stytch, passage, xwms, loginradius, email, passkey)"
            )),
        }
    }

    /// The name shown on the login page.
    pub fn display_name(&self) -> &str {
        match self {
            ProviderConfig::Oidc(c) => &c.display_name,
            ProviderConfig::OAuth2(c) => &c.display_name,
            ProviderConfig::Stytch(c) => &c.display_name,
            ProviderConfig::Passage(c) => &c.display_name,
            ProviderConfig::Xwms(c) => &c.display_name,
            ProviderConfig::LoginRadius(c) => &c.display_name,
            ProviderConfig::Email(c) => &c.display_name,
            ProviderConfig::Passkey(c) => &c.display_name,
        }
    }

    /// Whether the callback must match a login transaction started in this browser.
    pub fn needs_transaction(&self) -> bool {
        !matches!(
            self,
            ProviderConfig::Passage(_) | ProviderConfig::Passkey(_)
        )
    }

    /// The issuer of the identities this provider vouches for: half of the identity key.
    pub fn identity_issuer(&self) -> String {
        match self {
            ProviderConfig::Oidc(c) => c.issuer.clone(),
            ProviderConfig::OAuth2(c) => c.issuer.clone(),
            ProviderConfig::Stytch(c) => c.issuer(),
            ProviderConfig::Passage(c) => c.identity_issuer(),
            ProviderConfig::Xwms(c) => c.issuer(),
            ProviderConfig::LoginRadius(c) => c.issuer(),
            ProviderConfig::Email(_) => email::ISSUER.into(),
            ProviderConfig::Passkey(c) => c.issuer(),
        }
    }

    /// The name of the first of its URL settings (given or defaulted) for which `bad` holds.
    pub fn url_setting_where(&self, bad: impl Fn(&str) -> bool) -> Option<&'static str> {
        let urls: &[(&'static str, &str)] = match self {
            ProviderConfig::Oidc(c) => &[("issuer", &c.issuer)],
            ProviderConfig::OAuth2(c) => &[
                ("authorization_endpoint", &c.authorization_endpoint),
                ("token_endpoint", &c.token_endpoint),
                ("userinfo_endpoint", &c.userinfo_endpoint),
            ],
            ProviderConfig::Stytch(c) => &[("api_url", &c.api_url)],
            ProviderConfig::Passage(c) => &[("jwks_url", &c.jwks_url)],
            ProviderConfig::Xwms(c) => &[("api_url", &c.api_url)],
            ProviderConfig::LoginRadius(c) => &[("hub_url", &c.hub_url), ("api_url", &c.api_url)],
            ProviderConfig::Email(_) => &[],
            ProviderConfig::Passkey(_) => &[],
        };
        urls.iter()
            .find(|(_, u)| bad(u))
            .map(|(setting, _)| *setting)
    }

    /// Whether Gatehouse itself emails the sign-in (the `email` kind).
    pub fn is_email(&self) -> bool {
        matches!(self, ProviderConfig::Email(_))
    }

    /// Whether sign-in starts with an email address (`POST /auth/magic-link`).
    pub fn is_magic_link(&self) -> bool {
        matches!(self, ProviderConfig::Stytch(_) | ProviderConfig::Email(_))
    }
}

/// Where to send the browser to start signing in with `provider`.
pub async fn begin<P: Platform>(
    p: &P,
    provider: &ProviderConfig,
    flow: &Flow<'_>,
) -> AppResult<Begin> {
    match provider {
        ProviderConfig::Oidc(c) => oidc::begin(p, c, flow).await.map(Begin::Redirect),
        ProviderConfig::OAuth2(c) => oauth2::begin(c, flow).map(Begin::Redirect),
        ProviderConfig::Stytch(_) | ProviderConfig::Email(_) => Ok(Begin::EmailForm),
        ProviderConfig::Passage(_) => Ok(Begin::Redirect(passage::begin(flow))),
        ProviderConfig::Xwms(c) => xwms::begin(p, c, flow).await.map(Begin::Redirect),
        ProviderConfig::LoginRadius(c) => loginradius::begin(c, flow).map(Begin::Redirect),
        // Passkeys start on the login page, with script; there is nothing to redirect to.
        ProviderConfig::Passkey(_) => Err(no_redirect_flow()),
    }
}

/// The transaction key a callback carries: OAuth `state`, or `gh_state` for state-less flows.
pub fn callback_state(req: &Request) -> Option<String> {
    req.query("state").or_else(|| req.query(STATE_PARAM))
}

/// Verifies the callback and returns who signed in. `txn` is `None` only for kinds whose
/// [`ProviderConfig::needs_transaction`] is false.
pub async fn complete<P: Platform>(
    p: &P,
    provider: &ProviderConfig,
    req: &Request,
    flow: Option<&Flow<'_>>,
) -> AppResult<Profile> {
    let txn = || flow.ok_or_else(|| crate::error::AppError::Internal("transaction missing".into()));
    match provider {
        ProviderConfig::Oidc(c) => oidc::complete(p, c, req, txn()?).await,
        ProviderConfig::OAuth2(c) => oauth2::complete(p, c, req, txn()?).await,
        ProviderConfig::Stytch(c) => stytch::complete(p, c, req, txn()?).await,
        ProviderConfig::Passage(c) => passage::complete(p, c, req).await,
        ProviderConfig::Xwms(c) => xwms::complete(p, c, req, txn()?).await,
        ProviderConfig::LoginRadius(c) => loginradius::complete(p, c, req, txn()?).await,
        ProviderConfig::Email(c) => email::profile(c, txn()?),
        ProviderConfig::Passkey(_) => Err(no_redirect_flow()),
    }
}

/// Ends the vendor-side session at logout (best effort: Gatehouse's own session is already
/// gone; a failure is logged by the caller).
pub async fn end_session<P: Platform>(
    p: &P,
    provider: &ProviderConfig,
    handle: &str,
) -> AppResult<()> {
    match provider {
        ProviderConfig::Stytch(c) => stytch::end_session(p, c, handle).await,
        ProviderConfig::LoginRadius(c) => loginradius::end_session(p, c, handle).await,
        // No vendor-side session left behind (listed: a new kind must decide).
        ProviderConfig::Oidc(_)
        | ProviderConfig::OAuth2(_)
        | ProviderConfig::Passage(_)
        | ProviderConfig::Xwms(_)
        | ProviderConfig::Email(_)
        | ProviderConfig::Passkey(_) => Ok(()),
    }
}

/// `/auth/login?provider=` or a callback naming a passkey provider.
fn no_redirect_flow() -> AppError {
    AppError::BadRequest(
        "Passkeys have no redirect flow: use \"Sign in with a passkey\" on the login page.".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    #[test]
    fn a_concatenated_vendor_query_is_read_as_separate_parameters() {
        let req = Request::new(
            Method::Get,
            "http://127.0.0.1:8787/auth/callback/xw?gh_state=abc_-9?token=T1",
        );
        let fixed = normalize_callback(&req);
        assert_eq!(callback_state(&fixed).as_deref(), Some("abc_-9"));
        assert_eq!(fixed.query("token").as_deref(), Some("T1"));
        let plain = Request::new(
            Method::Get,
            "http://127.0.0.1:8787/auth/callback/xw?gh_state=abc&token=T1",
        );
        assert_eq!(normalize_callback(&plain).url, plain.url);
    }

    #[test]
    fn callback_tokens_are_token_characters_only() {
        let req = |q: &str| {
            Request::new(
                Method::Get,
                &format!("https://gh.example/auth/callback/xw?{q}"),
            )
        };
        for ok in [
            "token=abc-DEF_123.x~y",
            "token=eyJh.eyJz.c2ln",
            "token=YWJj%2Bdw%3D%3D",
        ] {
            assert!(query_token(&req(ok), MAX_QUERY_TOKEN_LEN).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "token=",
            "token=a%20b",
            "token=a%0D%0ASet-Cookie:x",
            "token=%22a%22",
            "token=a;b",
        ] {
            assert!(
                matches!(
                    query_token(&req(bad), MAX_QUERY_TOKEN_LEN),
                    Err(crate::error::AppError::BadRequest(_))
                ),
                "{bad}"
            );
        }
        let long = format!("token={}", "a".repeat(MAX_QUERY_TOKEN_LEN + 1));
        assert!(query_token(&req(&long), MAX_QUERY_TOKEN_LEN).is_err());
    }
}
