//! The apps that sign in through Gatehouse (D1 table `clients`): their settings as the admin
//! API takes and shows them, validation, and client secrets (256 random bits, shown once,
//! stored as their SHA-256, compared in constant time).

use crate::config::{is_loopback_host, Config};
use crate::crypto::{b64url, random_bytes, sha256_b64url};
use crate::jwt::Alg;
pub use crate::oauth_store::{Client, ClientType, Settings};
use serde_json::Value;

fn strings(v: &Value) -> Option<Vec<String>> {
    crate::oauth_store::strings(v)
}

/// The client-settable fields (`POST /admin/clients`, `PATCH /admin/clients/{id}`,
/// `POST /oauth/register`). Unknown fields are refused.
#[derive(Debug, Clone, Default)]
pub struct ClientInput {
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub kind: Option<ClientType>,
    pub scopes: Option<Vec<String>>,
    pub audience: Option<Option<String>>,
    pub resources: Option<Vec<String>>,
    pub first_party: Option<bool>,
    pub id_token_signed_response_alg: Option<String>,
}

impl ClientInput {
    /// Reads a JSON object; a field of the wrong type or an unknown field is refused.
    pub fn parse(v: &Value) -> Result<ClientInput, String> {
        let obj = v.as_object().ok_or("the body must be a JSON object")?;
        let mut i = ClientInput::default();
        for (k, x) in obj {
            let wrong = || format!("{k} has the wrong type");
            let text = || x.as_str().map(String::from).ok_or_else(wrong);
            let list = || strings(x).ok_or_else(wrong);
            match k.as_str() {
                "name" => i.name = Some(text()?),
                "redirect_uris" => i.redirect_uris = Some(list()?),
                "post_logout_redirect_uris" => i.post_logout_redirect_uris = Some(list()?),
                "type" => {
                    i.kind = Some(
                        x.as_str()
                            .and_then(ClientType::parse)
                            .ok_or("type must be \"confidential\" or \"public\"")?,
                    )
                }
                "scopes" => i.scopes = Some(list()?),
                "audience" if x.is_null() => i.audience = Some(None),
                "audience" => i.audience = Some(Some(text()?)),
                "resources" => i.resources = Some(list()?),
                "first_party" => i.first_party = Some(x.as_bool().ok_or_else(wrong)?),
                "id_token_signed_response_alg" => i.id_token_signed_response_alg = Some(text()?),
                _ => return Err(format!("unknown field {k:?}")),
            }
        }
        Ok(i)
    }
}

/// A fresh client secret (shown once) and what is stored of it.
pub fn new_secret() -> (crate::crypto::Secret, String) {
    let secret = b64url(&random_bytes::<32>());
    let hash = sha256_b64url(secret.as_bytes());
    (crate::crypto::Secret::new(secret), hash)
}

impl Client {
    /// A new client from `input`; the id is random. Confidential clients get a secret,
    /// returned once.
    pub fn create(
        cfg: &Config,
        input: ClientInput,
        now: i64,
    ) -> Result<(Client, Option<crate::crypto::Secret>), String> {
        let kind = input
            .kind
            .ok_or("type is required: \"confidential\" or \"public\"")?;
        let mut c = Client {
            id: format!("cl_{}", b64url(&random_bytes::<16>())),
            name: String::new(),
            kind,
            secret_hash: None,
            settings: Settings {
                redirect_uris: vec![],
                post_logout_redirect_uris: vec![],
                scopes: ["openid", "profile", "email", "offline_access"]
                    .map(String::from)
                    .to_vec(),
                audience: None,
                resources: vec![],
                first_party: false,
                // RS256 (what OpenID Connect requires providers to offer) whenever
                // SIGNING_KEYS holds an RSA key.
                id_token_signed_response_alg: match cfg.key_for(Alg::Rs256) {
                    Some(_) => "RS256".into(),
                    None => "EdDSA".into(),
                },
            },
            created_at: now,
            updated_at: now,
        };
        if input.name.is_none() || input.redirect_uris.is_none() {
            return Err("name and redirect_uris are required".into());
        }
        c.apply(cfg, input, now)?;
        let secret = match kind {
            ClientType::Confidential => {
                let (secret, hash) = new_secret();
                c.secret_hash = Some(hash);
                Some(secret)
            }
            ClientType::Public => None,
        };
        Ok((c, secret))
    }

    /// Applies the fields of `input` that are set, then validates the whole client.
    pub fn apply(&mut self, cfg: &Config, input: ClientInput, now: i64) -> Result<(), String> {
        if input.kind.is_some_and(|k| k != self.kind) {
            return Err("type cannot change; register a new client".into());
        }
        let s = &mut self.settings;
        if let Some(n) = input.name {
            self.name = n;
        }
        if let Some(v) = input.redirect_uris {
            s.redirect_uris = v;
        }
        if let Some(v) = input.post_logout_redirect_uris {
            s.post_logout_redirect_uris = v;
        }
        if let Some(v) = input.scopes {
            s.scopes = v;
        }
        if let Some(v) = input.audience {
            s.audience = v;
        }
        if let Some(v) = input.resources {
            s.resources = v;
        }
        if let Some(v) = input.first_party {
            s.first_party = v;
        }
        if let Some(v) = input.id_token_signed_response_alg {
            s.id_token_signed_response_alg = v;
        }
        self.updated_at = now;
        self.validate(cfg)
    }

    fn validate(&self, cfg: &Config) -> Result<(), String> {
        let s = &self.settings;
        let name_len = self.name.chars().count();
        if name_len == 0 || name_len > 100 || self.name.chars().any(char::is_control) {
            return Err("name must be 1 to 100 printable characters".into());
        }
        if s.redirect_uris.is_empty() || s.redirect_uris.len() > 20 {
            return Err("redirect_uris must list 1 to 20 URIs".into());
        }
        for u in s.redirect_uris.iter().chain(&s.post_logout_redirect_uris) {
            check_redirect_uri(u)?;
        }
        if s.post_logout_redirect_uris.len() > 20 {
            return Err("post_logout_redirect_uris must list at most 20 URIs".into());
        }
        if let Some(bad) = s
            .scopes
            .iter()
            .find(|x| !super::SCOPES.contains(&x.as_str()))
        {
            return Err(format!("unknown scope {bad:?}"));
        }
        let alg = self
            .id_token_alg()
            .ok_or("id_token_signed_response_alg must be RS256 or EdDSA")?;
        if cfg.key_for(alg).is_none() {
            return Err(format!(
                "SIGNING_KEYS holds no key for {} ID tokens (add an RSA key with gatehouse-keys --rotate-rsa, or choose EdDSA)",
                alg.name()
            ));
        }
        for a in s.audience.iter().chain(&s.resources) {
            check_audience(a)?;
        }
        if s.resources.len() > 20 {
            return Err("resources must list at most 20 URIs".into());
        }
        Ok(())
    }
}

/// A redirect URI: absolute, no fragment, no user info; https, http on loopback (native apps,
/// RFC 8252 section 7.3), or a private-use scheme with a dot (`com.example.app:/cb`).
pub fn check_redirect_uri(raw: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("redirect URI {raw:?}: {why}"));
    if raw.len() > 2000 {
        return bad("too long");
    }
    let Ok(u) = url::Url::parse(raw) else {
        return bad("not an absolute URI");
    };
    if u.fragment().is_some() || !u.username().is_empty() || u.password().is_some() {
        return bad("must not have a fragment or user info");
    }
    match u.scheme() {
        "https" if u.host().is_some() => Ok(()),
        "http" if is_loopback_host(&u) => Ok(()),
        "http" | "https" => bad("http only on loopback"),
        "javascript" | "data" | "file" | "vbscript" | "blob" | "about" => bad("forbidden scheme"),
        s if s.contains('.') => Ok(()),
        _ => bad("use https, loopback http, or a private-use scheme like com.example.app"),
    }
}

fn check_audience(a: &str) -> Result<(), String> {
    let ok =
        a.len() <= 500 && url::Url::parse(a).is_ok_and(|u| u.fragment().is_none() && u.has_host());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "audience/resource {a:?} must be an absolute URI without a fragment"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_config_with_rsa;

    fn input(v: serde_json::Value) -> ClientInput {
        ClientInput::parse(&v).unwrap()
    }

    #[test]
    fn create_gives_confidential_clients_a_secret_stored_hashed() {
        let cfg = test_config_with_rsa();
        let (c, secret) = Client::create(
            &cfg,
            input(serde_json::json!({"name": "App", "type": "confidential",
                "redirect_uris": ["https://app.example/cb"]})),
            1,
        )
        .unwrap();
        let secret = secret.unwrap();
        assert!(c.secret_matches(secret.expose()));
        assert!(!c.secret_matches("wrong"));
        assert_ne!(c.secret_hash.as_deref(), Some(secret.expose()));
        assert_eq!(c.audience(), c.id);
        assert_eq!(c.id_token_alg(), Some(Alg::Rs256));
        assert!(!c
            .to_json()
            .to_string()
            .contains(c.secret_hash.as_deref().unwrap()));
        let (p, none) = Client::create(
            &cfg,
            input(serde_json::json!({"name": "SPA", "type": "public",
                "redirect_uris": ["http://127.0.0.1:3000/cb"]})),
            1,
        )
        .unwrap();
        assert!(none.is_none() && !p.secret_matches(""));
    }

    #[test]
    fn bad_clients_are_refused() {
        let cfg = test_config_with_rsa();
        for v in [
            serde_json::json!({"name": "A", "type": "public"}),
            serde_json::json!({"name": "A", "redirect_uris": ["https://a.example/cb"]}),
            serde_json::json!({"name": "", "type": "public", "redirect_uris": ["https://a.example/cb"]}),
            serde_json::json!({"name": "A", "type": "public", "redirect_uris": ["http://a.example/cb"]}),
            serde_json::json!({"name": "A", "type": "public", "redirect_uris": ["https://a.example/cb#x"]}),
            serde_json::json!({"name": "A", "type": "public", "redirect_uris": ["javascript:alert(1)"]}),
            serde_json::json!({"name": "A", "type": "public", "redirect_uris": ["/relative"]}),
            serde_json::json!({"name": "A", "type": "public", "redirect_uris": ["https://a.example/cb"], "scopes": ["admin"]}),
            serde_json::json!({"name": "A", "type": "public", "redirect_uris": ["https://a.example/cb"], "id_token_signed_response_alg": "HS256"}),
        ] {
            assert!(Client::create(&cfg, input(v.clone()), 1).is_err(), "{v}");
        }
        // RS256 needs an RSA key in SIGNING_KEYS; without one, EdDSA is the default.
        let no_rsa = crate::testing::test_config();
        let v = serde_json::json!({"name": "A", "type": "public", "redirect_uris": ["https://a.example/cb"]});
        let made = Client::create(&no_rsa, input(v.clone()), 1).unwrap().0;
        assert_eq!(made.id_token_alg(), Some(Alg::EdDsa));
        let mut rs = v;
        rs["id_token_signed_response_alg"] = "RS256".into();
        assert!(Client::create(&no_rsa, input(rs), 1)
            .unwrap_err()
            .contains("RSA"));
        // Unknown fields are refused by the input type.
        assert!(ClientInput::parse(&serde_json::json!({"secret": "x"})).is_err());
        assert!(ClientInput::parse(&serde_json::json!({"name": 7})).is_err());
        assert!(ClientInput::parse(&serde_json::json!({"type": "other"})).is_err());
        // Settings survive their stored form.
        let (c, _) = Client::create(
            &cfg,
            input(serde_json::json!({"name": "A", "type": "public",
            "redirect_uris": ["https://a.example/cb"], "audience": "https://api.example",
            "first_party": true})),
            1,
        )
        .unwrap();
        assert_eq!(Settings::from_value(&c.settings.to_value()), c.settings);
    }

    #[test]
    fn redirect_uris_match_exactly() {
        let cfg = test_config_with_rsa();
        let (c, _) = Client::create(
            &cfg,
            input(serde_json::json!({"name": "A", "type": "public",
                "redirect_uris": ["https://app.example/cb", "com.example.app:/cb"]})),
            1,
        )
        .unwrap();
        assert!(c.has_redirect_uri("https://app.example/cb"));
        for near in [
            "https://app.example/cb/",
            "https://app.example/CB",
            "https://app.example/cb?x=1",
            "https://app.example:443/cb",
            "https://APP.example/cb",
            "https://app.example/cb#",
            "http://app.example/cb",
            "https://app.example.evil/cb",
        ] {
            assert!(!c.has_redirect_uri(near), "{near}");
        }
        assert_eq!(c.origins(), vec!["https://app.example".to_string()]);
    }
}
