//! The access policy (`POLICY`, see the README's "Access policy and roles"): who may sign in
//! (sign-up mode, allowed email domains and addresses, verified email), which roles a rule
//! grants, and which proxied paths need which roles ([`routes`]). Pure decisions over data the
//! caller already has — a provider profile at sign-in, the user row at renewal, the access
//! token's claims in proxy mode — so checking the policy never costs a storage round trip.

pub mod routes;

use crate::http::Method;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Who may become a new user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignUp {
    /// Anyone the provider vouches for (the default).
    #[default]
    Open,
    /// Only through an invitation.
    Invite,
    /// Nobody new; people are added with an invitation to an existing user.
    Closed,
}

/// The sign-in rules of the policy, or of one provider's override (`None`: not set there).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rules {
    pub sign_up: Option<SignUp>,
    pub allowed_email_domains: Option<Vec<String>>,
    pub allowed_emails: Option<Vec<String>>,
    pub require_verified_email: Option<bool>,
}

/// A role granted at sign-in to a verified email of these domains or addresses.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleRule {
    pub role: String,
    pub email_domains: Vec<String>,
    pub emails: Vec<String>,
}

/// The whole `POLICY`. The default is today's behaviour: open, no rules, no routes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    pub rules: Rules,
    /// Per-provider overrides (provider name → the keys it sets).
    pub providers: BTreeMap<String, Rules>,
    pub roles: Vec<RoleRule>,
    pub routes: Vec<routes::Route>,
}

/// What a sign-in or renewal is checked with: the email as the provider (or the user row)
/// has it, and whether a provider verified it.
#[derive(Debug, Clone, Copy)]
pub struct Email<'a> {
    pub address: Option<&'a str>,
    pub verified: bool,
}

impl<'a> Email<'a> {
    /// The address only if a provider verified it: the only one rules may trust.
    fn trusted(self) -> Option<&'a str> {
        self.address.filter(|_| self.verified)
    }
}

/// Whether the identity is new (no user yet) and whether an invitation comes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// A known identity (a returning user), or a renewal.
    Returning,
    /// An unknown identity without an invitation.
    New,
    /// An unknown identity (or one being attached) that brings a valid invitation.
    Invited,
}

/// The most roles a user may carry.
pub const MAX_ROLES: usize = 20;

/// Whether `r` is a role name: `[a-z0-9_-]{1,32}`.
pub fn valid_role(r: &str) -> bool {
    (1..=32).contains(&r.len())
        && r.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A list of role names, checked: each valid, at most [`MAX_ROLES`], duplicates dropped.
pub fn role_list(v: &Value, key: &str) -> Result<Vec<String>, String> {
    let list = strings(v, key)?;
    if list.len() > MAX_ROLES {
        return Err(format!("{key}: at most {MAX_ROLES} roles"));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for r in list {
        if !valid_role(&r) {
            return Err(format!("{key}: role {r:?} must be [a-z0-9_-]{{1,32}}"));
        }
        if !out.contains(&r) {
            out.push(r);
        }
    }
    Ok(out)
}

fn strings(v: &Value, key: &str) -> Result<Vec<String>, String> {
    let Some(items) = v.as_array() else {
        return Err(format!("{key} must be a list of strings"));
    };
    items
        .iter()
        .map(|i| {
            i.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("{key} must be a list of strings"))
        })
        .collect()
}

/// Lower-cased, trimmed entries; each must look like `what` (a domain or an address).
fn lowered(v: &Value, key: &str, is_address: bool) -> Result<Vec<String>, String> {
    strings(v, key)?
        .into_iter()
        .map(|s| {
            let s = s.trim().to_ascii_lowercase();
            let ok = match s.rsplit_once('@') {
                Some((local, domain)) => is_address && !local.is_empty() && domain.contains('.'),
                None => !is_address && s.contains('.') && !s.starts_with('.'),
            };
            if ok && !s.contains(char::is_whitespace) {
                Ok(s)
            } else {
                let what = if is_address {
                    "an email address"
                } else {
                    "a domain like example.com"
                };
                Err(format!("{key}: {s:?} is not {what}"))
            }
        })
        .collect()
}

fn object<'v>(v: &'v Value, key: &str) -> Result<&'v Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{key} must be a table"))
}

fn unknown(key: &str, k: &str, allowed: &str) -> String {
    format!("{key}: unknown key {k:?} (allowed: {allowed})")
}

fn parse_rules(v: &Value, key: &str) -> Result<Rules, String> {
    let mut r = Rules::default();
    for (k, v) in object(v, key)? {
        let at = |k: &str| {
            if key.is_empty() {
                k.to_string()
            } else {
                format!("{key}.{k}")
            }
        };
        match k.as_str() {
            "sign_up" => {
                r.sign_up = Some(match v.as_str() {
                    Some("open") => SignUp::Open,
                    Some("invite") => SignUp::Invite,
                    Some("closed") => SignUp::Closed,
                    _ => {
                        return Err(format!(
                            "{} must be \"open\", \"invite\" or \"closed\"",
                            at(k)
                        ))
                    }
                })
            }
            "allowed_email_domains" => r.allowed_email_domains = Some(lowered(v, &at(k), false)?),
            "allowed_emails" => r.allowed_emails = Some(lowered(v, &at(k), true)?),
            "require_verified_email" => {
                r.require_verified_email = Some(
                    v.as_bool()
                        .ok_or_else(|| format!("{} must be true or false", at(k)))?,
                )
            }
            "providers" | "roles" | "routes" if key.is_empty() => {}
            other => {
                return Err(unknown(
                    key,
                    other,
                    "sign_up, allowed_email_domains, allowed_emails, require_verified_email",
                ))
            }
        }
    }
    Ok(r)
}

fn parse_role_rule(v: &Value, key: &str) -> Result<RoleRule, String> {
    let mut rule = RoleRule {
        role: String::new(),
        email_domains: vec![],
        emails: vec![],
    };
    for (k, v) in object(v, key)? {
        match k.as_str() {
            "role" => {
                rule.role = v
                    .as_str()
                    .filter(|r| valid_role(r))
                    .ok_or_else(|| format!("{key}.role must be [a-z0-9_-]{{1,32}}"))?
                    .into()
            }
            "email_domains" => {
                rule.email_domains = lowered(v, &format!("{key}.email_domains"), false)?
            }
            "emails" => rule.emails = lowered(v, &format!("{key}.emails"), true)?,
            other => return Err(unknown(key, other, "role, email_domains, emails")),
        }
    }
    if rule.role.is_empty() {
        return Err(format!("{key}.role is required"));
    }
    Ok(rule)
}

impl Policy {
    /// Parses `POLICY` (already JSON). `providers` are the configured provider names, which
    /// every override must name. Errors name the bad key.
    pub fn parse(v: &Value, providers: &[&str]) -> Result<Policy, String> {
        let top = object(v, "POLICY")?;
        let rules = parse_rules(v, "")?;
        let mut p = Policy {
            rules,
            ..Policy::default()
        };
        if let Some(list) = top.get("providers") {
            for (name, o) in object(list, "providers")? {
                if !providers.contains(&name.as_str()) {
                    return Err(format!(
                        "providers.{name}: there is no provider {name:?} in PROVIDERS"
                    ));
                }
                p.providers
                    .insert(name.clone(), parse_rules(o, &format!("providers.{name}"))?);
            }
        }
        if let Some(list) = top.get("roles") {
            let items = list.as_array().ok_or("roles must be a list of tables")?;
            for (i, r) in items.iter().enumerate() {
                p.roles.push(parse_role_rule(r, &format!("roles[{i}]"))?);
            }
        }
        if let Some(list) = top.get("routes") {
            let items = list.as_array().ok_or("routes must be a list of tables")?;
            for (i, r) in items.iter().enumerate() {
                p.routes
                    .push(routes::Route::parse(r, &format!("routes[{i}]"))?);
            }
        }
        Ok(p)
    }

    /// The rules for sign-ins through `provider`: its override's keys, else the policy's.
    pub fn rules_for(&self, provider: &str) -> Rules {
        let top = &self.rules;
        let Some(o) = self.providers.get(provider) else {
            return top.clone();
        };
        Rules {
            sign_up: o.sign_up.or(top.sign_up),
            allowed_email_domains: o
                .allowed_email_domains
                .clone()
                .or_else(|| top.allowed_email_domains.clone()),
            allowed_emails: o
                .allowed_emails
                .clone()
                .or_else(|| top.allowed_emails.clone()),
            require_verified_email: o.require_verified_email.or(top.require_verified_email),
        }
    }

    /// Whether this sign-in (or renewal) through `provider` may go on; `Err` says why in
    /// plain words.
    pub fn admit(&self, provider: &str, email: Email<'_>, arrival: Arrival) -> Result<(), String> {
        let r = self.rules_for(provider);
        match (r.sign_up.unwrap_or_default(), arrival) {
            (SignUp::Invite, Arrival::New) => {
                return Err(
                    "New accounts need an invitation here. Ask an administrator to invite you."
                        .into(),
                )
            }
            (SignUp::Closed, Arrival::New) => {
                return Err(
                    "This site does not accept new accounts. Ask an administrator to add you."
                        .into(),
                )
            }
            _ => {}
        }
        if r.require_verified_email == Some(true) && email.trusted().is_none() {
            return Err("This site needs an email address that your sign-in provider has verified, and it did not send one.".into());
        }
        let domains = r.allowed_email_domains.unwrap_or_default();
        let emails = r.allowed_emails.unwrap_or_default();
        if domains.is_empty() && emails.is_empty() {
            return Ok(());
        }
        let Some(address) = email.trusted() else {
            return Err(format!(
                "{} Your sign-in provider did not verify an email address for this account.",
                who_may(&domains)
            ));
        };
        if email_matches(address, &domains, &emails) {
            Ok(())
        } else {
            Err(format!("{} You signed in as {address}.", who_may(&domains)))
        }
    }

    /// The roles of a user: their own, then the rules' (no duplicates).
    pub fn roles_of(&self, own: &[String], email: Email<'_>) -> Vec<String> {
        let mut all = own.to_vec();
        let Some(address) = email.trusted() else {
            return all;
        };
        for r in &self.roles {
            if email_matches(address, &r.email_domains, &r.emails) && !all.contains(&r.role) {
                all.push(r.role.clone());
            }
        }
        all
    }

    /// One sentence for the login page about who may sign in, if the policy restricts it.
    pub fn login_hint(&self) -> Option<String> {
        let r = &self.rules;
        let domains = r.allowed_email_domains.as_deref().unwrap_or_default();
        let mut hint = match domains {
            [] if r.allowed_emails.as_ref().is_some_and(|e| !e.is_empty()) => {
                "Only invited addresses may sign in here.".to_string()
            }
            [] => String::new(),
            [d] => format!("Sign in with your {d} account."),
            _ => format!("Sign in with your account at {}.", domains.join(", ")),
        };
        match r.sign_up.unwrap_or_default() {
            SignUp::Open => {}
            SignUp::Invite => hint.push_str(" New accounts need an invitation."),
            SignUp::Closed => hint.push_str(" New accounts are not accepted."),
        }
        let hint = hint.trim().to_string();
        (!hint.is_empty()).then_some(hint)
    }
}

fn who_may(domains: &[String]) -> String {
    match domains {
        [] => "This site admits only some email addresses.".into(),
        [d] => format!("Only {d} accounts may sign in here: sign in with your {d} account."),
        _ => format!("Only accounts at {} may sign in here.", domains.join(", ")),
    }
}

/// Whether `address` (verified) is one of `emails` or at one of `domains` (exactly that
/// domain; case-insensitive).
fn email_matches(address: &str, domains: &[String], emails: &[String]) -> bool {
    let address = address.trim().to_ascii_lowercase();
    let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    emails.contains(&address) || domains.iter().any(|d| d == domain)
}

/// What a proxied request needs, from the first route that matches (default: signed in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need<'a> {
    /// No sign-in needed.
    Public,
    /// Signed in, and — when the list is not empty — one of these roles.
    SignedIn(&'a [String]),
}

impl Policy {
    /// What `method` on the normalized `path` needs.
    pub fn need(&self, method: Method, path: &str) -> Need<'_> {
        match self.routes.iter().find(|r| r.matches(method, path)) {
            Some(r) if r.public => Need::Public,
            Some(r) => Need::SignedIn(&r.roles),
            None => Need::SignedIn(&[]),
        }
    }
}

#[cfg(test)]
mod tests;
