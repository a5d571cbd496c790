//! The `passkey` kind: WebAuthn credentials verified by Gatehouse itself (see
//! [`crate::webauthn`] and the `/auth/passkeys` routes). It has no redirect flow and no
//! callback: people sign in from the login page's "Sign in with a passkey" button (or the
//! browser's autofill) and add passkeys from the account page.

use serde_json::Value;
use std::collections::BTreeMap;
use url::Url;

struct Settings {
    rp_id: Option<String>,
    user_verification: Option<String>,
    display_name: Option<String>,
}

impl Settings {
    fn read(v: &Value) -> Result<Settings, String> {
        let f = crate::fields::Fields::strict(
            v,
            &["kind", "rp_id", "user_verification", "display_name"],
        )?;
        Ok(Settings {
            rp_id: f.opt_str("rp_id")?,
            user_verification: f.opt_str("user_verification")?,
            display_name: f.opt_str("display_name")?,
        })
    }
}

/// Settings of a `passkey` provider.
#[derive(Debug, Clone)]
pub struct PasskeyConfig {
    pub name: String,
    /// The WebAuthn relying party id: `PUBLIC_URL`'s host, or a domain it belongs to
    /// (settled once `PUBLIC_URL` is known, see [`settle`]).
    pub rp_id: String,
    /// `user_verification = "required"`: refuse assertions without UV (PIN, biometrics).
    pub require_uv: bool,
    pub display_name: String,
}

impl PasskeyConfig {
    pub fn parse(name: &str, v: &Value) -> Result<PasskeyConfig, String> {
        let s = Settings::read(v)?;
        let require_uv = match s.user_verification.as_deref() {
            None | Some("preferred") => false,
            Some("required") => true,
            Some(other) => {
                return Err(format!(
                    "user_verification must be \"preferred\" or \"required\", not {other:?}"
                ))
            }
        };
        Ok(PasskeyConfig {
            name: name.into(),
            rp_id: s.rp_id.unwrap_or_default().trim().to_ascii_lowercase(),
            require_uv,
            display_name: s.display_name.unwrap_or_else(|| "Passkey".into()),
        })
    }

    /// `webauthn:{rp_id}`: the issuer of its identities.
    pub fn issuer(&self) -> String {
        format!("webauthn:{}", self.rp_id)
    }

    /// `"required"` or `"preferred"`, as the ceremony options say it.
    pub fn user_verification(&self) -> &'static str {
        if self.require_uv {
            "required"
        } else {
            "preferred"
        }
    }
}

/// Fills in each passkey provider's default RP id (`PUBLIC_URL`'s host) and refuses what no
/// browser would accept: an IP address, an RP id that `PUBLIC_URL`'s host is not within, or
/// more than one passkey provider (the `/auth/passkeys` routes serve one).
pub fn settle(
    providers: &mut BTreeMap<String, super::ProviderConfig>,
    public: &Url,
) -> Result<(), String> {
    let host = match public.host() {
        Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
        _ => String::new(),
    };
    let mut seen = None;
    for (name, p) in providers.iter_mut() {
        let super::ProviderConfig::Passkey(c) = p else {
            continue;
        };
        if let Some(first) = seen.replace(name.clone()) {
            return Err(format!(
                "provider {name:?}: only one passkey provider is allowed ({first:?} is one)"
            ));
        }
        if host.is_empty() {
            return Err(format!(
                "provider {name:?}: passkeys need a domain name in PUBLIC_URL (browsers refuse an IP address; use http://localhost:PORT locally)"
            ));
        }
        if c.rp_id.is_empty() {
            c.rp_id = host.clone();
        }
        let within = host == c.rp_id || host.ends_with(&format!(".{}", c.rp_id));
        if !within || c.rp_id.starts_with('.') {
            return Err(format!(
                "provider {name:?}: rp_id {:?} must be PUBLIC_URL's host or a domain it belongs to",
                c.rp_id
            ));
        }
    }
    Ok(())
}

/// The one passkey provider, if configured: its name and settings.
pub fn configured(
    providers: &BTreeMap<String, super::ProviderConfig>,
) -> Option<(&str, &PasskeyConfig)> {
    providers.iter().find_map(|(n, p)| match p {
        super::ProviderConfig::Passkey(c) => Some((n.as_str(), c)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::error::AppError;
    use crate::testing::test_env;

    fn config(public_url: &str, providers: &str) -> Result<Config, AppError> {
        let mut env = test_env();
        env.insert("PUBLIC_URL".into(), public_url.into());
        env.insert("PROVIDERS".into(), providers.into());
        Config::from_env(&env)
    }

    fn problem(r: Result<Config, AppError>) -> String {
        match r {
            Err(AppError::Config { problem, .. }) => problem,
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }

    #[test]
    fn rp_id_defaults_to_the_public_host_and_must_contain_it() {
        let pk =
            |c: &Config| super::configured(&c.providers).map(|(n, p)| (n.to_string(), p.clone()));
        let c = config("http://localhost:8787", r#"{"pk":{"kind":"passkey"}}"#).unwrap();
        let (name, p) = pk(&c).unwrap();
        assert_eq!((name.as_str(), p.rp_id.as_str()), ("pk", "localhost"));
        assert_eq!(p.issuer(), "webauthn:localhost");
        assert!(!p.require_uv);
        let c = config(
            "https://login.example.com",
            r#"{"pk":{"kind":"passkey","rp_id":"example.com","user_verification":"required"}}"#,
        )
        .unwrap();
        let (_, p) = pk(&c).unwrap();
        assert_eq!((p.rp_id.as_str(), p.require_uv), ("example.com", true));
        assert!(problem(config(
            "https://login.example.com",
            r#"{"pk":{"kind":"passkey","rp_id":"ample.com"}}"#
        ))
        .contains("must be PUBLIC_URL's host or a domain it belongs to"));
        assert!(problem(config(
            "https://login.example.com",
            r#"{"pk":{"kind":"passkey","rp_id":"other.example.com"}}"#
        ))
        .contains("must be PUBLIC_URL's host"));
    }

    #[test]
    fn an_ip_address_a_second_provider_and_unknown_settings_are_refused() {
        assert!(problem(config(
            "http://127.0.0.1:8787",
            r#"{"pk":{"kind":"passkey"}}"#
        ))
        .contains("browsers refuse an IP address"));
        assert!(problem(config(
            "http://localhost:8787",
            r#"{"a":{"kind":"passkey"},"b":{"kind":"passkey","rp_id":"localhost"}}"#
        ))
        .contains("one passkey provider"));
        assert!(problem(config(
            "http://localhost:8787",
            r#"{"pk":{"kind":"passkey","user_verification":"always"}}"#
        ))
        .contains("user_verification"));
        assert!(problem(config(
            "http://localhost:8787",
            r#"{"pk":{"kind":"passkey","rpid":"localhost"}}"#
        ))
        .contains("unknown field"));
    }
}
