//! The access policy, `POLICY` (a TOML table arriving as JSON, or a JSON string): any input is
//! a valid policy or a configuration error naming `POLICY` and the bad key — never a panic —
//! and a parsed policy, written back out as the JSON an operator would write for it, parses
//! to the same policy (its normalizations — lower-cased, trimmed, de-duplicated — are stable).

use crate::gen;
use gatehouse::config::{Config, EnvSource, EnvValue};
use gatehouse::error::AppError;
use gatehouse::policy::routes::{normalize, Route};
use gatehouse::policy::{valid_role, Policy, RoleRule, Rules, SignUp, MAX_ROLES};
use gatehouse::testing::test_env;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The providers of [`gatehouse::testing::test_env`]: overrides may name only these.
const PROVIDERS: &[&str] = &["dev"];

fn pick(words: &'static [&'static str]) -> impl Strategy<Value = Value> {
    proptest::sample::select(words).prop_map(Value::from)
}

/// Mostly `good`, now and then `bad` (plausible mistakes), rarely anything at all.
fn value(good: BoxedStrategy<Value>, bad: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    prop_oneof![30 => good, 1 => bad, 1 => gen::json()].boxed()
}

/// A list of strings, each mostly from `good`.
fn list(good: &'static [&'static str], bad: &'static [&'static str]) -> BoxedStrategy<Value> {
    let item = prop_oneof![
        40 => pick(good),
        1 => pick(bad),
        1 => gen::text().prop_map(Value::from),
    ];
    let good_list = proptest::collection::vec(item, 0..4).prop_map(Value::Array);
    value(good_list.boxed(), Just(json!("not a list")).boxed())
}

const DOMAINS: &[&str] = &["example.com", " Example.COM ", "corp.example.org", "x.io"];
const BAD_DOMAINS: &[&str] = &[
    ".example.com",
    "localhost",
    "a@example.com",
    "",
    "exa mple.com",
];
const EMAILS: &[&str] = &[
    "ada@example.com",
    "ADA@Example.com ",
    "bob@corp.example.org",
    "a.b+c@x.io",
];
const BAD_EMAILS: &[&str] = &[
    "@example.com",
    "no-at.example.com",
    "a@localhost",
    "a b@x.io",
];
const ROLES: &[&str] = &["admin", "staff", "read_only", "a-1", "x"];
const BAD_ROLES: &[&str] = &[
    "Admin",
    "",
    "way-too-long-a-role-name-for-anyone-0123",
    "ünï",
];
const PATHS: &[&str] = &["/", "/*", "/admin", "/admin/*", "/public/assets/*", "/a/b"];
const BAD_PATHS: &[&str] = &["admin/*", "/a/../b", "/a//b", "/a%2Fb", "/a/*/b", "/a/", ""];
const METHODS: &[&str] = &["GET", "post", "Delete", "HEAD", "PATCH", "options"];
const BAD_METHODS: &[&str] = &["FETCH", ""];

fn boolean() -> BoxedStrategy<Value> {
    value(
        any::<bool>().prop_map(Value::from).boxed(),
        Just(json!("yes")).boxed(),
    )
}

/// A table of some of `keys` (each with its value strategy), now and then an unknown key.
fn table(keys: Vec<(&'static str, BoxedStrategy<Value>)>) -> BoxedStrategy<Value> {
    let n = keys.len();
    let entries: Vec<_> = keys
        .into_iter()
        .map(|(k, v)| {
            // A rule's role and a route's path are required: mostly there.
            let p = if matches!(k, "role" | "path") {
                0.95
            } else {
                0.5
            };
            proptest::option::weighted(p, v.prop_map(move |v| (k.to_string(), v)))
        })
        .collect();
    let unknown = proptest::option::weighted(0.03, (gen::text(), gen::json()));
    let t = (entries, unknown).prop_map(move |(entries, unknown)| {
        let mut m: Map<String, Value> = entries.into_iter().flatten().collect();
        m.extend(unknown);
        debug_assert!(m.len() <= n + 1);
        Value::Object(m)
    });
    value(t.boxed(), Just(json!(["not a table"])).boxed())
}

/// The four sign-in rule keys.
fn rules() -> Vec<(&'static str, BoxedStrategy<Value>)> {
    vec![
        (
            "sign_up",
            value(
                pick(&["open", "invite", "closed"]).boxed(),
                pick(&["Open", ""]).boxed(),
            ),
        ),
        ("allowed_email_domains", list(DOMAINS, BAD_DOMAINS)),
        ("allowed_emails", list(EMAILS, BAD_EMAILS)),
        ("require_verified_email", boolean()),
    ]
}

fn role_rule() -> BoxedStrategy<Value> {
    table(vec![
        ("role", value(pick(ROLES).boxed(), pick(BAD_ROLES).boxed())),
        ("email_domains", list(DOMAINS, BAD_DOMAINS)),
        ("emails", list(EMAILS, BAD_EMAILS)),
    ])
}

fn route() -> BoxedStrategy<Value> {
    table(vec![
        ("path", value(pick(PATHS).boxed(), pick(BAD_PATHS).boxed())),
        ("methods", list(METHODS, BAD_METHODS)),
        ("roles", list(ROLES, BAD_ROLES)),
        ("public", boolean()),
    ])
}

fn items(item: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    let list = proptest::collection::vec(item, 0..4).prop_map(Value::Array);
    value(list.boxed(), Just(json!({"not": "a list"})).boxed())
}

/// A `POLICY` value: mostly the shape the README documents, with wrong types, bad entries,
/// unknown keys and unknown providers mixed in; sometimes any JSON at all.
fn policy() -> impl Strategy<Value = Value> {
    let name = prop_oneof![
        20 => Just("dev"),
        1 => proptest::sample::select(&["other", "Dev", ""][..]),
    ];
    let overrides = proptest::collection::vec((name, table(rules())), 0..2)
        .prop_map(|p| Value::Object(p.into_iter().map(|(k, v)| (k.to_string(), v)).collect()));
    let mut keys = rules();
    keys.push((
        "providers",
        value(overrides.boxed(), Just(json!(1)).boxed()),
    ));
    keys.push(("roles", items(role_rule())));
    keys.push(("routes", items(route())));
    table(keys)
}

/// The JSON an operator would write for `p`: every key it sets, nothing else.
fn written(p: &Policy) -> Value {
    fn rules(r: &Rules) -> Map<String, Value> {
        let mut m = Map::new();
        if let Some(s) = r.sign_up {
            let s = match s {
                SignUp::Open => "open",
                SignUp::Invite => "invite",
                SignUp::Closed => "closed",
            };
            m.insert("sign_up".into(), s.into());
        }
        if let Some(d) = &r.allowed_email_domains {
            m.insert("allowed_email_domains".into(), json!(d));
        }
        if let Some(e) = &r.allowed_emails {
            m.insert("allowed_emails".into(), json!(e));
        }
        if let Some(v) = r.require_verified_email {
            m.insert("require_verified_email".into(), v.into());
        }
        m
    }
    let role = |r: &RoleRule| json!({"role": r.role, "email_domains": r.email_domains, "emails": r.emails});
    let route = |r: &Route| {
        let path = if r.prefix {
            format!("{}/*", r.path)
        } else {
            r.path.clone()
        };
        let methods: Vec<String> = r
            .methods
            .iter()
            .map(|m| format!("{m:?}").to_uppercase())
            .collect();
        json!({"path": path, "methods": methods, "roles": r.roles, "public": r.public})
    };
    let mut top = rules(&p.rules);
    let providers: Map<String, Value> = p
        .providers
        .iter()
        .map(|(k, r)| (k.clone(), Value::Object(rules(r))))
        .collect();
    top.insert("providers".into(), Value::Object(providers));
    top.insert("roles".into(), p.roles.iter().map(role).collect());
    top.insert("routes".into(), p.routes.iter().map(route).collect());
    Value::Object(top)
}

/// What every accepted policy keeps.
fn check_invariants(p: &Policy) -> Result<(), TestCaseError> {
    let all_rules = std::iter::once(&p.rules).chain(p.providers.values());
    for r in all_rules {
        for d in r.allowed_email_domains.iter().flatten() {
            prop_assert!(
                d == &d.trim().to_ascii_lowercase() && d.contains('.') && !d.contains('@'),
                "{:?}",
                d
            );
        }
        for e in r.allowed_emails.iter().flatten() {
            prop_assert!(
                e == &e.trim().to_ascii_lowercase() && e.contains('@'),
                "{:?}",
                e
            );
        }
    }
    for name in p.providers.keys() {
        prop_assert!(
            PROVIDERS.contains(&name.as_str()),
            "override of an unknown provider {:?}",
            name
        );
    }
    for r in &p.roles {
        prop_assert!(valid_role(&r.role), "{:?}", r.role);
    }
    for r in &p.routes {
        prop_assert!(r.roles.len() <= MAX_ROLES && r.roles.iter().all(|x| valid_role(x)));
        prop_assert!(r.prefix || !r.path.is_empty());
        if !r.path.is_empty() {
            let normalized = normalize(&r.path).ok();
            prop_assert_eq!(
                normalized.as_deref(),
                Some(r.path.as_str()),
                "a route's path is normalized"
            );
        }
    }
    Ok(())
}

struct Env(BTreeMap<String, EnvValue>);

impl EnvSource for Env {
    fn get(&self, name: &str) -> Option<EnvValue> {
        self.0.get(name).cloned()
    }
}

fn config_with(policy: EnvValue) -> Result<Config, AppError> {
    let mut m: BTreeMap<String, EnvValue> = test_env()
        .into_iter()
        .map(|(k, v)| (k, EnvValue::Text(v)))
        .collect();
    m.insert("POLICY".into(), policy);
    Config::from_env(&Env(m))
}

proptest! {
    /// No panic; refused ⇒ a message naming what is wrong; accepted ⇒ the invariants hold,
    /// and the policy written back out parses to itself.
    #[test]
    fn fuzz_policy(v in policy()) {
        match Policy::parse(&v, PROVIDERS) {
            Ok(p) => {
                check_invariants(&p)?;
                let again = Policy::parse(&written(&p), PROVIDERS);
                prop_assert_eq!(again.as_ref(), Ok(&p), "round trip of {}", written(&p));
            }
            Err(problem) => {
                // It names the key first ("roles[0].role …"), or is about the whole table.
                let first = problem.chars().next();
                prop_assert!(first.is_some_and(char::is_alphabetic), "{:?}", problem);
            }
        }
    }

    /// Through the configuration, as a TOML table or a JSON string (or not JSON at all): the
    /// same answer either way, and a refusal is a configuration error of `POLICY`.
    #[test]
    fn fuzz_policy_setting(v in policy(), junk in gen::text(), as_junk in proptest::bool::weighted(0.1)) {
        let text = if as_junk { junk } else { v.to_string() };
        let from_text = config_with(EnvValue::Text(text.clone()));
        match &from_text {
            Ok(c) => check_invariants(&c.policy)?,
            Err(AppError::Config { setting, problem }) => {
                prop_assert_eq!(setting.as_str(), "POLICY");
                prop_assert!(!problem.is_empty());
            }
            Err(other) => prop_assert!(false, "not a configuration error: {:?}", other),
        }
        if !as_junk {
            let from_table = config_with(EnvValue::Json(v));
            prop_assert_eq!(from_table.map(|c| c.policy), from_text.map(|c| c.policy));
        }
    }
}
