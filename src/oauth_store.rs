//! The OpenID Provider's stored data and its storage trait: clients, grants, refresh tokens,
//! consents, and [`OAuthStore`] (D1 in the Worker, maps in tests). A leaf below the platform:
//! it reads no configuration, so [`crate::platform::Platform`] can name the store. The
//! protocol (validation, codes, tokens) is in [`crate::oauth`].

#![allow(async_fn_in_trait)]

use crate::crypto::{ct_eq, sha256_b64url};
use crate::error::StoreError;
use crate::jwt::Alg;
use crate::users::User;
use serde_json::{json, Value};

/// Confidential clients hold a secret; public ones (SPAs, mobile, CLI, MCP clients) cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientType {
    Confidential,
    Public,
}

impl ClientType {
    pub fn name(self) -> &'static str {
        match self {
            ClientType::Confidential => "confidential",
            ClientType::Public => "public",
        }
    }

    pub fn parse(s: &str) -> Option<ClientType> {
        match s {
            "confidential" => Some(ClientType::Confidential),
            "public" => Some(ClientType::Public),
            _ => None,
        }
    }
}

/// A client's settings (the `settings` JSON column). Read and written by hand, not by serde
/// derives: each derive costs kilobytes of the Worker bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Scopes this client may ask for.
    pub scopes: Vec<String>,
    /// The `aud` of its access tokens; the client id when unset.
    pub audience: Option<String>,
    /// RFC 8707 resource indicators it may ask for instead of its audience.
    pub resources: Vec<String>,
    /// Trusted by the operator: no consent page.
    pub first_party: bool,
    /// `RS256` or `EdDSA`.
    pub id_token_signed_response_alg: String,
}

pub(crate) fn strings(v: &Value) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for x in v.as_array()? {
        out.push(x.as_str()?.to_string());
    }
    Some(out)
}

impl Settings {
    /// As stored, and as the admin API shows it (with the client's own fields added).
    pub fn to_value(&self) -> Value {
        json!({
            "redirect_uris": self.redirect_uris,
            "post_logout_redirect_uris": self.post_logout_redirect_uris,
            "scopes": self.scopes, "audience": self.audience, "resources": self.resources,
            "first_party": self.first_party,
            "id_token_signed_response_alg": self.id_token_signed_response_alg,
        })
    }

    /// Reads what [`Settings::to_value`] wrote (missing members take their defaults).
    pub fn from_value(v: &Value) -> Settings {
        let list = |k: &str| strings(&v[k]).unwrap_or_default();
        Settings {
            redirect_uris: list("redirect_uris"),
            post_logout_redirect_uris: list("post_logout_redirect_uris"),
            scopes: list("scopes"),
            audience: v["audience"].as_str().map(String::from),
            resources: list("resources"),
            first_party: v["first_party"].as_bool().unwrap_or(false),
            id_token_signed_response_alg: v["id_token_signed_response_alg"]
                .as_str()
                .unwrap_or("RS256")
                .into(),
        }
    }
}

/// A registered client.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub kind: ClientType,
    /// SHA-256 (base64url) of the secret, for confidential clients.
    pub secret_hash: Option<String>,
    pub settings: Settings,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Client {
    /// The algorithm of this client's ID tokens.
    pub fn id_token_alg(&self) -> Option<Alg> {
        match self.settings.id_token_signed_response_alg.as_str() {
            "RS256" => Some(Alg::Rs256),
            "EdDSA" => Some(Alg::EdDsa),
            _ => None,
        }
    }

    /// The `aud` of this client's access tokens.
    pub fn audience(&self) -> &str {
        self.settings.audience.as_deref().unwrap_or(&self.id)
    }

    /// Whether `presented` is this client's secret (constant time over the hashes).
    pub fn secret_matches(&self, presented: &str) -> bool {
        let Some(hash) = &self.secret_hash else {
            return false;
        };
        ct_eq(
            sha256_b64url(presented.as_bytes()).as_bytes(),
            hash.as_bytes(),
        )
    }

    /// Whether `uri` is one of the registered redirect URIs, exactly (no normalisation).
    pub fn has_redirect_uri(&self, uri: &str) -> bool {
        self.settings.redirect_uris.iter().any(|r| r == uri)
    }

    /// The origins of the registered redirect URIs (CORS).
    pub fn origins(&self) -> Vec<String> {
        self.settings
            .redirect_uris
            .iter()
            .filter_map(|u| url::Url::parse(u).ok())
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .map(|u| u.origin().ascii_serialization())
            .collect()
    }

    /// The client as the admin API shows it (never the secret or its hash).
    pub fn to_json(&self) -> Value {
        let mut v = self.settings.to_value();
        for (k, x) in [
            ("client_id", json!(self.id)),
            ("name", json!(self.name)),
            ("type", json!(self.kind.name())),
            ("audience", json!(self.audience())),
            ("created_at", json!(crate::users::rfc3339(self.created_at))),
            ("updated_at", json!(crate::users::rfc3339(self.updated_at))),
        ] {
            v[k] = x;
        }
        v
    }
}

/// What a person granted a client: carried by a code, then by the refresh tokens made from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub client_id: String,
    pub user_id: String,
    /// The Gatehouse session the person was signed in with.
    pub sid: String,
    pub scope: String,
    /// When the person signed in (OpenID Connect `auth_time`).
    pub auth_time: i64,
    /// An RFC 8707 resource the client asked for (the access tokens' audience).
    pub resource: Option<String>,
}

/// Encoded as form pairs (the Worker has that code already; a serde derive would cost
/// kilobytes): the grant's members, then `extra`.
pub(crate) fn encode(g: &Grant, extra: &[(&str, Option<&str>)]) -> String {
    let auth_time = g.auth_time.to_string();
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    let members = [
        ("c", Some(g.client_id.as_str())),
        ("u", Some(&g.user_id)),
        ("s", Some(&g.sid)),
        ("sc", Some(&g.scope)),
        ("at", Some(&auth_time)),
        ("r", g.resource.as_deref()),
    ];
    for (k, v) in members.iter().chain(extra) {
        if let Some(v) = v {
            s.append_pair(k, v);
        }
    }
    s.finish()
}

/// Form pairs back (a list: a map would pull a sort into the bundle).
pub(crate) struct Pairs(Vec<(String, String)>);

impl Pairs {
    pub(crate) fn get(&self, k: &str) -> Option<&String> {
        self.0.iter().find(|(x, _)| x == k).map(|(_, v)| v)
    }
}

pub(crate) fn decode(s: &[u8]) -> Pairs {
    Pairs(url::form_urlencoded::parse(s).into_owned().collect())
}

impl Grant {
    /// The stored form of a refresh token's grant.
    pub fn to_stored(&self) -> String {
        encode(self, &[])
    }

    /// Reads [`Grant::to_stored`]'s form (or a code's); `None` if a member is missing.
    pub fn from_stored(s: &str) -> Option<Grant> {
        Self::from_map(&decode(s.as_bytes()))
    }

    pub(crate) fn from_map(m: &Pairs) -> Option<Grant> {
        Some(Grant {
            client_id: m.get("c")?.clone(),
            user_id: m.get("u")?.clone(),
            sid: m.get("s")?.clone(),
            scope: m.get("sc")?.clone(),
            auth_time: m.get("at")?.parse().ok()?,
            resource: m.get("r").cloned(),
        })
    }
}

/// A refresh token as stored (never the token itself: its SHA-256).
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshRow {
    pub hash: String,
    /// The hash of the code the family began with.
    pub family: String,
    pub grant: Grant,
    pub created_at: i64,
    pub expires_at: i64,
    /// When it was rotated; a rotated token presented again revokes the family.
    pub used_at: Option<i64>,
}

/// An app a person has agreed to (`GET /auth/apps`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConsentedApp {
    pub client_id: String,
    pub name: String,
    pub scope: String,
    pub created_at: i64,
}

/// What the OpenID Provider keeps.
pub trait OAuthStore {
    async fn create_client(&self, c: &Client) -> Result<(), StoreError>;
    async fn get_client(&self, id: &str) -> Result<Option<Client>, StoreError>;
    /// Every client, oldest first.
    async fn list_clients(&self) -> Result<Vec<Client>, StoreError>;
    /// Replaces the stored client; `false` when there is none with its id.
    async fn update_client(&self, c: &Client) -> Result<bool, StoreError>;
    /// Deletes a client with its consents and refresh tokens; `false` when there was none.
    async fn delete_client(&self, id: &str) -> Result<bool, StoreError>;

    /// The client and the user of a grant, in one round trip.
    async fn client_and_user(
        &self,
        client_id: &str,
        user_id: &str,
    ) -> Result<(Option<Client>, Option<User>), StoreError>;
    /// In one round trip: spends the code (`code:` + its hash in the spent-set, kept until
    /// `spent_until`) and stores `refresh`, if any. `false`: the code was spent before —
    /// the caller then revokes the family, which also removes the `refresh` stored here.
    async fn redeem_code(
        &self,
        code_hash: &str,
        spent_until: i64,
        refresh: Option<&RefreshRow>,
    ) -> Result<bool, StoreError>;
    /// Deletes every refresh token of a family (a replayed code, a reused refresh token).
    async fn revoke_family(&self, family: &str) -> Result<(), StoreError>;

    /// A refresh token with its client and user, in one round trip.
    async fn refresh_context(
        &self,
        hash: &str,
    ) -> Result<Option<(RefreshRow, Option<Client>, Option<User>)>, StoreError>;
    /// In one round trip: marks `old_hash` used (only if it was not) and stores `new`.
    /// `false`: it was used already (a concurrent refresh) — the caller revokes the family.
    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new: &RefreshRow,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// The scope a person agreed to for a client, if any.
    async fn consent(&self, user_id: &str, client_id: &str) -> Result<Option<String>, StoreError>;
    async fn save_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &str,
        now: i64,
    ) -> Result<(), StoreError>;
    /// The apps a person agreed to.
    async fn apps_of(&self, user_id: &str) -> Result<Vec<ConsentedApp>, StoreError>;
    /// Removes a person's consent to a client and every refresh token the client holds for
    /// them, in one round trip; `false` when there was neither.
    async fn revoke_app(&self, user_id: &str, client_id: &str) -> Result<bool, StoreError>;
}
