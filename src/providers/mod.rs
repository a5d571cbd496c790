//! Identity providers (SPEC section 4). Each kind lives in its own file behind the same two
//! steps — [`begin`] (where to send the browser) and [`complete`] (turn the callback into a
//! verified [`Profile`]) — so that adding a kind touches one file and one match arm here.

pub mod fetch;
pub mod oauth2;
pub mod oidc;

use crate::config::Config;
use crate::crypto::Secret;
use crate::error::AppResult;
use crate::http::Request;
use crate::platform::Platform;
use crate::txn::LoginTxn;
use crate::users::Profile;
use serde::de::DeserializeOwned;

/// One configured provider.
#[derive(Debug, Clone)]
pub enum ProviderConfig {
    Oidc(oidc::OidcConfig),
    OAuth2(oauth2::OAuth2Config),
}

/// Deserializes a provider's settings, refusing unknown fields (typos must not pass silently).
pub fn settings<T: DeserializeOwned>(v: &serde_json::Value) -> Result<T, String> {
    serde_json::from_value(v.clone()).map_err(|e| e.to_string())
}

/// The secret a kind needs, or a clear error naming the variable.
pub fn require_secret(name: &str, secret: Option<Secret>) -> Result<Secret, String> {
    secret.ok_or_else(|| format!("needs the secret {}", crate::config::secret_var_name(name)))
}

impl ProviderConfig {
    /// Parses one `PROVIDERS` entry.
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
            other => Err(format!("unknown kind {other:?} (known: oidc, oauth2)")),
        }
    }

    /// The name shown on the login page.
    pub fn display_name(&self) -> &str {
        match self {
            ProviderConfig::Oidc(c) => &c.display_name,
            ProviderConfig::OAuth2(c) => &c.display_name,
        }
    }
}

/// Where to send the browser to start signing in with `name`.
pub async fn begin<P: Platform>(
    p: &P,
    cfg: &Config,
    name: &str,
    provider: &ProviderConfig,
    txn: &LoginTxn,
) -> AppResult<String> {
    match provider {
        ProviderConfig::Oidc(c) => oidc::begin(p, cfg, name, c, txn).await,
        ProviderConfig::OAuth2(c) => oauth2::begin(cfg, name, c, txn),
    }
}

/// The state parameter of a callback, where the kind carries one.
pub fn callback_state(req: &Request) -> Option<String> {
    req.query("state")
}

/// Verifies the callback and returns who signed in.
pub async fn complete<P: Platform>(
    p: &P,
    cfg: &Config,
    name: &str,
    provider: &ProviderConfig,
    req: &Request,
    txn: &LoginTxn,
) -> AppResult<Profile> {
    match provider {
        ProviderConfig::Oidc(c) => oidc::complete(p, cfg, name, c, req, txn).await,
        ProviderConfig::OAuth2(c) => oauth2::complete(p, cfg, name, c, req, txn).await,
    }
}
