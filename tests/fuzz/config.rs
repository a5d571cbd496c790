//! Configuration: `PROVIDERS` (a JSON string, or a TOML table arriving as JSON),
//! `SIGNING_KEYS` and the plain vars. A bad setting is a configuration error naming it.

use crate::gen;
use gatehouse::config::{Config, EnvSource, EnvValue};
use gatehouse::error::AppError;
use gatehouse::testing::{test_env, TEST_KEY_1};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

#[derive(Debug)]
struct Env(BTreeMap<String, EnvValue>);

impl EnvSource for Env {
    fn get(&self, name: &str) -> Option<EnvValue> {
        self.0.get(name).cloned()
    }
}

const KINDS: &[&str] = &[
    "oidc",
    "oauth2",
    "stytch",
    "passage",
    "xwms",
    "loginradius",
    "saml",
    "",
];

/// Settings fields of every kind, with values that are often plausible.
fn setting() -> impl Strategy<Value = (String, Value)> {
    let field = proptest::sample::select(
        &[
            "issuer",
            "client_id",
            "scopes",
            "client_auth",
            "display_name",
            "preset",
            "authorization_endpoint",
            "token_endpoint",
            "userinfo_endpoint",
            "sub_field",
            "email_field",
            "name_field",
            "picture_field",
            "project_id",
            "api_url",
            "session_minutes",
            "app_id",
            "cookie",
            "jwks_url",
            "domain",
            "app_name",
            "api_key",
            "hub_url",
            "extra",
        ][..],
    );
    let value = prop_oneof![
        proptest::sample::select(
            &[
                "http://127.0.0.1:9000",
                "https://idp.example.com",
                "http://idp.example.com",
                "https://idp.example.com/?q=1",
                "ftp://x",
                "github",
                "client_secret_post",
                "client_secret_basic",
                "openid",
                "project-test-123",
                "project-live-1",
                "a:b",
            ][..]
        )
        .prop_map(Value::from),
        (0u64..600_000).prop_map(Value::from),
        gen::json(),
    ];
    (field.prop_map(String::from), value)
}

fn providers() -> impl Strategy<Value = Value> {
    let name = prop_oneof![
        3 => proptest::sample::select(&["dev", "alt", "github", "my-idp", "x_1", "Bad", "", "a b"][..]).prop_map(String::from),
        1 => gen::text(),
    ];
    let settings = (
        proptest::sample::select(KINDS),
        proptest::collection::vec(setting(), 0..8),
    )
        .prop_map(|(kind, fields)| {
            let mut m: Map<String, Value> = fields.into_iter().collect();
            m.insert("kind".into(), kind.into());
            Value::Object(m)
        });
    let valid = json!({"dev": {"kind": "oidc", "issuer": "http://127.0.0.1:9000", "client_id": "gatehouse"}});
    prop_oneof![
        3 => Just(valid),
        4 => proptest::collection::vec((name, prop_oneof![4 => settings, 1 => gen::json()]), 0..4)
            .prop_map(|p| Value::Object(p.into_iter().collect())),
        1 => gen::json(),
    ]
}

fn var(valid: &'static [&'static str]) -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        3 => Just(None),
        3 => proptest::sample::select(valid).prop_map(|v| Some(v.to_string())),
        1 => gen::text().prop_map(Some),
    ]
}

fn env() -> impl Strategy<Value = Env> {
    (
        providers(),
        any::<bool>(),
        proptest::collection::vec(any::<bool>(), 3),
        prop_oneof![
            3 => Just(format!("[{TEST_KEY_1}]")),
            1 => gen::json().prop_map(|v| json!([v]).to_string()),
            1 => gen::text(),
        ],
        (
            var(&[
                "http://127.0.0.1:8787",
                "https://login.example.com/",
                "http://example.com",
                "https://x/?a",
                "localhost",
            ]),
            var(&["0123456789abcdef0123456789abcdef", "short"]),
            var(&["admin-key-0123456789abcdef-xyz", "short"]),
            var(&[
                "https://app.example.com",
                "[\"https://a.example\"]",
                "https://a.example/path",
                "[1]",
                "a, b",
            ]),
        ),
        (
            var(&["60", "0", "-5", "86400", "2592000", "99999999999999999999"]),
            var(&["60", "300", "604800"]),
            var(&["60", "300", "3600"]),
            var(&[
                "https://origin.example.com",
                "http://127.0.0.1:3000",
                "origin",
            ]),
        ),
    )
        .prop_map(
            |(
                providers,
                as_table,
                secrets,
                keys,
                (public, state, admin, origins),
                (ttl, idle, access, origin),
            )| {
                let mut m: BTreeMap<String, EnvValue> = test_env()
                    .into_iter()
                    .map(|(k, v)| (k, EnvValue::Text(v)))
                    .collect();
                if let Some(table) = providers.as_object() {
                    for (name, on) in table.keys().zip(secrets.iter().cycle()) {
                        if *on {
                            let var = gatehouse::config::secret_var_name(name);
                            m.insert(var, EnvValue::Text("provider-secret".into()));
                        }
                    }
                }
                let providers = if as_table {
                    EnvValue::Json(providers)
                } else {
                    EnvValue::Text(providers.to_string())
                };
                m.insert("PROVIDERS".into(), providers);
                m.insert("SIGNING_KEYS".into(), EnvValue::Text(keys));
                for (k, v) in [
                    ("PUBLIC_URL", public),
                    ("STATE_SECRET", state),
                    ("ADMIN_API_KEY", admin),
                    ("ALLOWED_RETURN_ORIGINS", origins),
                    ("SESSION_TTL_SECONDS", ttl),
                    ("SESSION_IDLE_SECONDS", idle),
                    ("ACCESS_TOKEN_TTL_SECONDS", access),
                    ("ORIGIN_URL", origin),
                ] {
                    if let Some(v) = v {
                        m.insert(k.into(), EnvValue::Text(v));
                    }
                }
                Env(m)
            },
        )
}

/// Every setting a configuration error may name.
const SETTINGS: &[&str] = &[
    "PUBLIC_URL",
    "PROVIDERS",
    "SIGNING_KEYS",
    "STATE_SECRET",
    "ADMIN_API_KEY",
    "ALLOWED_RETURN_ORIGINS",
    "SESSION_TTL_SECONDS",
    "SESSION_IDLE_SECONDS",
    "ACCESS_TOKEN_TTL_SECONDS",
    "ORIGIN_URL",
];

proptest! {
    /// No panic; a refusal is a configuration error naming a setting; an accepted
    /// configuration keeps its invariants.
    #[test]
    fn fuzz_config(env in env()) {
        match Config::from_env(&env) {
            Ok(c) => {
                prop_assert!(!c.public_url.ends_with('/'));
                prop_assert!(c.public_url.starts_with("https://") || c.public_url.starts_with("http://127.0.0.1") || c.public_url.starts_with("http://localhost") || c.public_url.starts_with("http://[::1]"));
                prop_assert!(c.session_idle <= c.session_ttl && c.access_ttl <= c.session_idle);
                prop_assert!(!c.providers.is_empty() && !c.signing_keys.is_empty());
                prop_assert!(c.state_secret.expose().len() >= 32);
                for name in c.providers.keys() {
                    prop_assert!(!name.is_empty() && name.len() <= 40);
                    prop_assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'));
                }
                for o in &c.allowed_return_origins {
                    prop_assert!(o.starts_with("http://") || o.starts_with("https://"));
                    prop_assert!(!o.ends_with('/'));
                }
            }
            Err(AppError::Config { setting, .. }) => {
                prop_assert!(SETTINGS.contains(&setting.as_str()), "{}", setting);
            }
            Err(other) => prop_assert!(false, "not a configuration error: {:?}", other),
        }
    }
}
