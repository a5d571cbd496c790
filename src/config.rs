//! Typed configuration (README "Configuration"): each setting is read from [`EnvSource`] once per
//! isolate, validated, and turned into a [`Config`]. A missing or malformed setting becomes
//! an [`AppError::Config`] naming the setting — one log line and a 500 page, never a panic.

use crate::crypto::Secret;
use crate::error::AppError;
use crate::jwt::keys::SigningKey;
use crate::jwt::Alg;
pub use crate::providers::secret_var_name;
use crate::providers::ProviderConfig;
pub use crate::urls::{is_loopback_host, parse_base_url, plain_http_off_loopback};
use std::collections::BTreeMap;
use url::Url;

/// A raw value from the environment: plain vars and secrets are text; a TOML table in
/// `[vars]` arrives as JSON.
#[derive(Debug, Clone)]
pub enum EnvValue {
    Text(String),
    Json(serde_json::Value),
}

/// Where settings come from (the Worker's `env`, or a map in tests).
pub trait EnvSource {
    fn get(&self, name: &str) -> Option<EnvValue>;
}

impl EnvSource for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<EnvValue> {
        BTreeMap::get(self, name).map(|v| EnvValue::Text(v.clone()))
    }
}

/// Defaults of README "Configuration".
pub const DEFAULT_SESSION_TTL: u64 = 30 * 24 * 3600;
pub const DEFAULT_SESSION_IDLE: u64 = 7 * 24 * 3600;
pub const DEFAULT_ACCESS_TTL: u64 = 300;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// External base URL, without a trailing slash.
    pub public_url: String,
    /// Origin of `public_url` (scheme://host[:port]).
    pub public_origin: String,
    /// `true` unless the public URL is plain-http localhost (cookie prefix and `Secure`).
    pub secure_cookies: bool,
    /// Providers by configured name, in a stable order.
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Signing keys; the first signs, all are published.
    pub signing_keys: Vec<SigningKey>,
    /// Key for the login-transaction cookie.
    pub state_secret: Secret,
    /// Bearer key of `/admin`; the admin API answers 401 to everyone when unset.
    pub admin_api_key: Option<Secret>,
    /// Origins beyond `public_origin` that `return_to` and CORS may name.
    pub allowed_return_origins: Vec<String>,
    pub session_ttl: u64,
    pub session_idle: u64,
    pub access_ttl: u64,
    /// Proxy mode's origin, when set.
    pub origin_url: Option<Url>,
    /// The access policy (`POLICY`; unset: open, no rules).
    pub policy: crate::policy::Policy,
    /// `OAUTH_DYNAMIC_REGISTRATION = "true"`: `POST /oauth/register` (RFC 7591) is open.
    pub dynamic_registration: bool,
    /// `RESOURCE_SERVER = "true"` (with `ORIGIN_URL`): proxy mode is an OAuth protected
    /// resource whose identifier is `PUBLIC_URL`.
    pub resource_server: bool,
}

fn flag(env: &dyn EnvSource, name: &str) -> Result<bool, AppError> {
    match text(env, name)?.as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(bad(
            name,
            format!("must be \"true\" or \"false\", got {other:?}"),
        )),
    }
}

fn bad(setting: &str, problem: impl Into<String>) -> AppError {
    AppError::Config {
        setting: setting.to_string(),
        problem: problem.into(),
    }
}

fn text(env: &dyn EnvSource, name: &str) -> Result<Option<String>, AppError> {
    match env.get(name) {
        None => Ok(None),
        Some(EnvValue::Text(s)) if s.trim().is_empty() => Ok(None),
        Some(EnvValue::Text(s)) => Ok(Some(s.trim().to_string())),
        Some(EnvValue::Json(serde_json::Value::String(s))) => Ok(Some(s)),
        Some(EnvValue::Json(v)) => Ok(Some(crate::fields::json_text(&v))),
    }
}

fn required(env: &dyn EnvSource, name: &str) -> Result<String, AppError> {
    text(env, name)?.ok_or_else(|| bad(name, "is not set"))
}

fn seconds(env: &dyn EnvSource, name: &str, default: u64) -> Result<u64, AppError> {
    match text(env, name)? {
        None => Ok(default),
        Some(s) => match s.parse::<u64>() {
            Ok(n) if n > 0 && n <= 10 * 365 * 24 * 3600 => Ok(n),
            _ => Err(bad(
                name,
                format!("must be a positive number of seconds, got {s:?}"),
            )),
        },
    }
}

impl Config {
    /// Reads and validates every setting.
    pub fn from_env(env: &dyn EnvSource) -> Result<Config, AppError> {
        let public = parse_base_url("PUBLIC_URL", &required(env, "PUBLIC_URL")?)?;
        if public.scheme() == "http" && !is_loopback_host(&public) {
            return Err(bad(
                "PUBLIC_URL",
                "must be https (plain http only on localhost)",
            ));
        }
        let public_url = public.as_str().trim_end_matches('/').to_string();
        let public_origin = public.origin().ascii_serialization();
        let secure_cookies = public.scheme() == "https";

        let mut providers = parse_providers(env)?;
        crate::providers::passkey::settle(&mut providers, &public)
            .map_err(|p| bad("PROVIDERS", p))?;
        let signing_keys = parse_signing_keys(&required(env, "SIGNING_KEYS")?)?;

        let state_secret = required(env, "STATE_SECRET")?;
        if state_secret.len() < 32 {
            return Err(bad(
                "STATE_SECRET",
                "must be at least 32 characters (use gatehouse-keys)",
            ));
        }
        let admin_api_key = match text(env, "ADMIN_API_KEY")? {
            Some(k) if k.len() < 24 => {
                return Err(bad("ADMIN_API_KEY", "must be at least 24 characters"))
            }
            k => k.map(Secret::new),
        };

        let allowed_return_origins = parse_origins(text(env, "ALLOWED_RETURN_ORIGINS")?)?;
        let session_ttl = seconds(env, "SESSION_TTL_SECONDS", DEFAULT_SESSION_TTL)?;
        let session_idle = seconds(env, "SESSION_IDLE_SECONDS", DEFAULT_SESSION_IDLE)?;
        let access_ttl = seconds(env, "ACCESS_TOKEN_TTL_SECONDS", DEFAULT_ACCESS_TTL)?;
        if session_idle > session_ttl {
            return Err(bad(
                "SESSION_IDLE_SECONDS",
                "must not exceed SESSION_TTL_SECONDS",
            ));
        }
        if access_ttl > session_idle {
            return Err(bad(
                "ACCESS_TOKEN_TTL_SECONDS",
                "must not exceed SESSION_IDLE_SECONDS",
            ));
        }
        let origin_url = match text(env, "ORIGIN_URL")? {
            None => None,
            Some(s) => Some(parse_base_url("ORIGIN_URL", &s)?),
        };
        let dynamic_registration = flag(env, "OAUTH_DYNAMIC_REGISTRATION")?;
        let resource_server = flag(env, "RESOURCE_SERVER")?;
        if resource_server && origin_url.is_none() {
            return Err(bad("RESOURCE_SERVER", "needs ORIGIN_URL (proxy mode)"));
        }
        let policy = parse_policy(env, &providers)?;
        Ok(Config {
            dynamic_registration,
            resource_server,
            public_url,
            public_origin,
            secure_cookies,
            providers,
            signing_keys,
            state_secret: Secret::new(state_secret),
            admin_api_key,
            allowed_return_origins,
            session_ttl,
            session_idle,
            access_ttl,
            origin_url,
            policy,
        })
    }

    /// `{PUBLIC_URL}/auth/callback/{provider}`.
    pub fn redirect_uri(&self, provider: &str) -> String {
        format!("{}/auth/callback/{}", self.public_url, provider)
    }

    /// The key that signs new access tokens: the first Ed25519 key (there is always one).
    pub fn active_key(&self) -> &SigningKey {
        self.key_for(Alg::EdDsa).unwrap_or(&self.signing_keys[0])
    }

    /// The first key that signs with `alg` (RS256 ID tokens need an RSA key).
    pub fn key_for(&self, alg: Alg) -> Option<&SigningKey> {
        self.signing_keys.iter().find(|k| k.alg() == alg)
    }

    /// Whether `origin` is ours or one of `ALLOWED_RETURN_ORIGINS`.
    pub fn is_allowed_origin(&self, origin: &str) -> bool {
        origin == self.public_origin || self.allowed_return_origins.iter().any(|o| o == origin)
    }
}

fn parse_providers(env: &dyn EnvSource) -> Result<BTreeMap<String, ProviderConfig>, AppError> {
    let value = match env.get("PROVIDERS") {
        None => return Err(bad("PROVIDERS", "is not set")),
        Some(EnvValue::Json(v)) => v,
        Some(EnvValue::Text(s)) => serde_json::from_slice(s.as_bytes())
            .map_err(|e| bad("PROVIDERS", format!("is not valid JSON: {e}")))?,
    };
    let table = value
        .as_object()
        .ok_or_else(|| bad("PROVIDERS", "must be a table of provider name → settings"))?;
    if table.is_empty() {
        return Err(bad("PROVIDERS", "names no provider"));
    }
    let mut out = BTreeMap::new();
    for (name, settings) in table {
        if name.is_empty()
            || name.len() > 40
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(bad(
                "PROVIDERS",
                format!("provider name {name:?} must be [a-z0-9_-]{{1,40}}"),
            ));
        }
        let secret = text(env, &secret_var_name(name))?.map(Secret::new);
        let provider = ProviderConfig::parse(name, settings, secret)
            .map_err(|problem| bad("PROVIDERS", format!("provider {name:?}: {problem}")))?;
        check_provider(name, &provider, &out)?;
        out.insert(name.clone(), provider);
    }
    Ok(out)
}

/// Refuses `provider` when one of its URLs is plain http off loopback (its URLs carry its
/// secrets and the identities it vouches for; loopback is for local providers and fakes),
/// or when an `earlier` provider has the same identity issuer: two providers with one
/// issuer (two `oauth2` entries both `issuer = "github"`, GitHub Enterprise beside
/// github.com, one OIDC issuer twice) would put their users in one identity space, so a
/// `sub` at one would sign in as the user with that `sub` at the other.
fn check_provider(
    name: &str,
    provider: &ProviderConfig,
    earlier: &BTreeMap<String, ProviderConfig>,
) -> Result<(), AppError> {
    let issuer = provider.identity_issuer();
    let same = |p: &ProviderConfig| {
        p.identity_issuer().trim_end_matches('/') == issuer.trim_end_matches('/')
    };
    let problem = if let Some(setting) = provider.url_setting_where(plain_http_off_loopback) {
        format!("{setting} must be https (http only on localhost, 127.0.0.0/8, ::1)")
    } else if let Some((first, _)) = earlier.iter().find(|(_, p)| same(p)) {
        format!("has the same identity issuer {issuer:?} as provider {first:?} (their users would merge)")
    } else {
        return Ok(());
    };
    Err(bad("PROVIDERS", format!("provider {name:?}: {problem}")))
}

/// `POLICY`: a TOML table (arriving as JSON) or a JSON string; unset is open.
fn parse_policy(
    env: &dyn EnvSource,
    providers: &BTreeMap<String, ProviderConfig>,
) -> Result<crate::policy::Policy, AppError> {
    let value = match env.get("POLICY") {
        None => return Ok(Default::default()),
        Some(EnvValue::Json(v)) => v,
        Some(EnvValue::Text(s)) if s.trim().is_empty() => return Ok(Default::default()),
        Some(EnvValue::Text(s)) => serde_json::from_slice(s.as_bytes())
            .map_err(|e| bad("POLICY", format!("is not valid JSON: {e}")))?,
    };
    let names: Vec<&str> = providers.keys().map(String::as_str).collect();
    crate::policy::Policy::parse(&value, &names).map_err(|problem| bad("POLICY", problem))
}

fn parse_signing_keys(s: &str) -> Result<Vec<SigningKey>, AppError> {
    // Only where the JSON broke, never serde's message: it can quote the input, and the
    // input is private keys.
    // Read as a `Value`, then as a list: a typed `Vec` reader would be a second parser instance.
    let value: serde_json::Value = serde_json::from_slice(s.as_bytes()).map_err(|e| {
        bad(
            "SIGNING_KEYS",
            format!(
                "must be a JSON array of private JWKs (invalid at line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })?;
    let values = value
        .as_array()
        .ok_or_else(|| bad("SIGNING_KEYS", "must be a JSON array of private JWKs"))?;
    if values.is_empty() {
        return Err(bad("SIGNING_KEYS", "holds no key"));
    }
    let keys = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            SigningKey::from_private_jwk(v)
                .map_err(|p| bad("SIGNING_KEYS", format!("key {i}: {p}")))
        })
        .collect::<Result<Vec<SigningKey>, _>>()?;
    if !keys.iter().any(|k| k.alg() == Alg::EdDsa) {
        return Err(bad(
            "SIGNING_KEYS",
            "holds no Ed25519 key (access tokens are signed with one)",
        ));
    }
    Ok(keys)
}

fn parse_origins(raw: Option<String>) -> Result<Vec<String>, AppError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    let items: Vec<String> = if raw.trim_start().starts_with('[') {
        let invalid = |e: String| bad("ALLOWED_RETURN_ORIGINS", format!("invalid JSON array: {e}"));
        let v: serde_json::Value =
            serde_json::from_slice(raw.as_bytes()).map_err(|e| invalid(e.to_string()))?;
        v.as_array()
            .and_then(|a| a.iter().map(|x| x.as_str().map(String::from)).collect())
            .ok_or_else(|| invalid("expected a list of strings".into()))?
    } else {
        raw.split([',', ' '])
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    };
    items
        .iter()
        .map(|o| {
            let url = parse_base_url("ALLOWED_RETURN_ORIGINS", o)?;
            if url.path() != "/" {
                return Err(bad(
                    "ALLOWED_RETURN_ORIGINS",
                    format!("{o:?} is not a bare origin"),
                ));
            }
            Ok(url.origin().ascii_serialization())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_env;

    #[test]
    fn valid_env_parses() {
        let cfg = Config::from_env(&test_env()).unwrap();
        assert_eq!(cfg.public_url, "http://127.0.0.1:8787");
        assert!(!cfg.secure_cookies);
        assert_eq!(cfg.session_ttl, DEFAULT_SESSION_TTL);
        assert_eq!(
            cfg.redirect_uri("dev"),
            "http://127.0.0.1:8787/auth/callback/dev"
        );
    }

    fn err_setting(env: &BTreeMap<String, String>) -> String {
        match Config::from_env(env) {
            Err(AppError::Config { setting, .. }) => setting,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn missing_public_url_is_named() {
        let mut env = test_env();
        env.remove("PUBLIC_URL");
        assert_eq!(err_setting(&env), "PUBLIC_URL");
        env.insert("PUBLIC_URL".into(), "not a url".into());
        assert_eq!(err_setting(&env), "PUBLIC_URL");
        env.insert("PUBLIC_URL".into(), "http://example.com".into());
        assert_eq!(err_setting(&env), "PUBLIC_URL", "plain http off localhost");
    }

    fn problem(env: &BTreeMap<String, String>) -> (String, String) {
        match Config::from_env(env) {
            Err(AppError::Config { setting, problem }) => (setting, problem),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    fn with_providers(providers: serde_json::Value) -> BTreeMap<String, String> {
        let mut env = test_env();
        env.insert("PROVIDERS".into(), providers.to_string());
        for n in ["A", "B"] {
            env.insert(format!("PROVIDER_{n}_SECRET"), "s3cret".into());
        }
        env
    }

    #[test]
    fn two_providers_with_one_identity_issuer_are_refused() {
        let oauth2 = |issuer: &str, base: &str| {
            serde_json::json!({"kind": "oauth2", "client_id": "c", "issuer": issuer,
                "authorization_endpoint": format!("{base}/authorize"),
                "token_endpoint": format!("{base}/token"), "userinfo_endpoint": format!("{base}/user")})
        };
        for (a, b) in [
            (
                oauth2("github", "https://github.com"),
                oauth2("github", "https://ghe.corp.example"),
            ),
            (
                serde_json::json!({"kind": "oauth2", "preset": "github", "client_id": "c"}),
                oauth2("github", "https://ghe.corp.example"),
            ),
            (
                serde_json::json!({"kind": "oidc", "issuer": "https://idp.example", "client_id": "c"}),
                serde_json::json!({"kind": "oidc", "issuer": "https://idp.example/", "client_id": "d"}),
            ),
            (
                serde_json::json!({"kind": "xwms", "client_id": "c", "domain": "example.com"}),
                serde_json::json!({"kind": "xwms", "client_id": "d", "domain": "example.com"}),
            ),
            (
                serde_json::json!({"kind": "passage", "app_id": "app1"}),
                serde_json::json!({"kind": "passage", "app_id": "app1", "cookie": "other"}),
            ),
        ] {
            let (setting, why) = problem(&with_providers(serde_json::json!({"a": a, "b": b})));
            assert_eq!(setting, "PROVIDERS");
            assert!(
                why.contains("same identity issuer") && why.contains("\"a\""),
                "{why}"
            );
        }
        // Distinct issuers are fine.
        let ok = with_providers(serde_json::json!({
            "a": oauth2("github", "https://github.com"),
            "b": oauth2("github-enterprise", "https://ghe.corp.example")}));
        assert!(Config::from_env(&ok).is_ok());
    }

    #[test]
    fn provider_urls_must_be_https_off_loopback() {
        let oidc = |issuer: &str| {
            with_providers(
                serde_json::json!({"a": {"kind": "oidc", "issuer": issuer, "client_id": "c"}}),
            )
        };
        for ok in [
            "https://idp.example",
            "http://127.0.0.1:9000",
            "http://127.8.9.10",
            "http://localhost:9000",
            "http://[::1]:9000",
        ] {
            assert!(Config::from_env(&oidc(ok)).is_ok(), "{ok}");
        }
        for refused in [
            "http://idp.example",
            "http://10.0.0.1",
            "http://localhost.evil.example",
            "http://[::ffff:127.0.0.1]",
        ] {
            let (setting, why) = problem(&oidc(refused));
            assert_eq!(setting, "PROVIDERS", "{refused}");
            assert!(why.contains("issuer must be https"), "{refused}: {why}");
        }
        let lr = with_providers(
            serde_json::json!({"a": {"kind": "loginradius", "app_name": "app",
            "api_key": "k", "api_url": "http://api.example/"}}),
        );
        assert!(problem(&lr).1.contains("api_url must be https"));
        let gh = with_providers(
            serde_json::json!({"a": {"kind": "oauth2", "preset": "github",
            "client_id": "c", "token_endpoint": "http://github.example/token"}}),
        );
        assert!(problem(&gh).1.contains("token_endpoint must be https"));
    }

    #[test]
    fn malformed_providers_is_named() {
        for bad in [
            "{not json",
            "[]",
            "{}",
            r#"{"x":{"kind":"nope"}}"#,
            r#"{"Bad Name":{"kind":"oidc"}}"#,
            r#"{"x":{"kind":"oidc","client_id":"c"}}"#,
        ] {
            let mut env = test_env();
            env.insert("PROVIDERS".into(), bad.into());
            assert_eq!(err_setting(&env), "PROVIDERS", "{bad}");
        }
    }

    #[test]
    fn bad_signing_keys_is_named() {
        for bad in [
            "",
            "[]",
            "{}",
            r#"[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]"#,
            r#"[{"kty":"RSA","n":"x","e":"AQAB","d":"x"}]"#,
        ] {
            let mut env = test_env();
            env.insert("SIGNING_KEYS".into(), bad.into());
            assert_eq!(err_setting(&env), "SIGNING_KEYS", "{bad}");
        }
    }

    #[test]
    fn a_bad_signing_keys_value_is_never_quoted_in_the_log() {
        let secret_d = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
        for bad in [
            // The whole value quoted once too often: a JSON string, not an array.
            format!(r#""[{{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"d\":\"{secret_d}\"}}]""#),
            format!(r#"[{{"kty":"OKP","crv":"Ed25519","d":"{secret_d}","x":7}}]"#),
            format!(r#"[{{"kty":"OKP","crv":"Ed25519","d":"{secret_d}"#),
        ] {
            let mut env = test_env();
            env.insert("SIGNING_KEYS".into(), bad.clone());
            let Err(e) = Config::from_env(&env) else {
                panic!("accepted: {bad}")
            };
            let line = e.log_line().unwrap_or_default();
            assert!(line.contains("SIGNING_KEYS"), "{line}");
            assert!(!line.contains(secret_d), "the private key leaked: {line}");
            assert!(!format!("{e:?}").contains(secret_d), "{e:?}");
        }
    }

    #[test]
    fn short_state_secret_and_bad_ttls_are_named() {
        let mut env = test_env();
        env.insert("STATE_SECRET".into(), "short".into());
        assert_eq!(err_setting(&env), "STATE_SECRET");
        let mut env = test_env();
        env.insert("SESSION_TTL_SECONDS".into(), "-1".into());
        assert_eq!(err_setting(&env), "SESSION_TTL_SECONDS");
        let mut env = test_env();
        env.insert(
            "ALLOWED_RETURN_ORIGINS".into(),
            "https://a.example/path".into(),
        );
        assert_eq!(err_setting(&env), "ALLOWED_RETURN_ORIGINS");
    }

    #[test]
    fn secret_var_names() {
        assert_eq!(secret_var_name("my-idp"), "PROVIDER_MY_IDP_SECRET");
    }
}
