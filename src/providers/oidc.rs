//! The `oidc` kind: discovery (cached), authorization code with PKCE S256, state and nonce,
//! the token exchange with `client_secret_basic` or `client_secret_post`, ID-token
//! verification against the provider's JWKS (cached; refetched on an unknown `kid` at most
//! once a minute), and userinfo, whose `sub` must equal the ID token's.

use super::fetch::{cached_document, call_ok};
use super::{rejected, require_secret, str_claim, Flow};
use crate::crypto::Secret;
use crate::error::{AppError, AppResult};
use crate::fields::Fields;
use crate::http::Request;
use crate::jwt::validate::{check_claims, select_key, verify_signature, ClaimRules};
use crate::jwt::{compact, jwk, JwtError};
use crate::platform::{Outbound, Platform};
use crate::urls::parse_base_url;
use crate::users::Profile;
use serde_json::{Map, Value};

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    ClientSecretBasic,
    ClientSecretPost,
}

/// The optional `client_auth` setting.
pub(super) fn client_auth(f: &Fields) -> Result<Option<ClientAuth>, String> {
    Ok(match f.opt_str("client_auth")?.as_deref() {
        None => None,
        Some("client_secret_basic") => Some(ClientAuth::ClientSecretBasic),
        Some("client_secret_post") => Some(ClientAuth::ClientSecretPost),
        Some(other) => {
            return Err(format!(
                "unknown client_auth {other:?}, expected client_secret_basic or client_secret_post"
            ))
        }
    })
}

struct Settings {
    issuer: String,
    client_id: String,
    display_name: Option<String>,
    scopes: Option<String>,
    client_auth: Option<ClientAuth>,
}

impl Settings {
    fn read(v: &Value) -> Result<Settings, String> {
        let f = crate::fields::Fields::strict(
            v,
            &[
                "kind",
                "issuer",
                "client_id",
                "display_name",
                "scopes",
                "client_auth",
            ],
        )?;
        Ok(Settings {
            issuer: f.str("issuer")?,
            client_id: f.str("client_id")?,
            display_name: f.opt_str("display_name")?,
            scopes: f.opt_str("scopes")?,
            client_auth: super::oidc::client_auth(&f)?,
        })
    }
}

/// Settings of an `oidc` provider.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub scopes: String,
    pub client_auth: ClientAuth,
    pub display_name: String,
}

impl OidcConfig {
    pub fn parse(name: &str, v: &Value, secret: Option<Secret>) -> Result<OidcConfig, String> {
        let s = Settings::read(v)?;
        parse_base_url("issuer", &s.issuer)
            .map_err(|_| "issuer must be an http(s) URL".to_string())?;
        let scopes = s.scopes.unwrap_or_else(|| "openid email profile".into());
        if !scopes.split_whitespace().any(|x| x == "openid") {
            return Err("scopes must include openid".into());
        }
        Ok(OidcConfig {
            name: name.into(),
            issuer: s.issuer,
            client_id: s.client_id,
            client_secret: require_secret(name, secret)?,
            scopes,
            client_auth: s.client_auth.unwrap_or(ClientAuth::ClientSecretBasic),
            display_name: s.display_name.unwrap_or_else(|| name.to_string()),
        })
    }

    fn discovery_url(&self) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        )
    }
}

/// The parts of the discovery document Gatehouse uses.
#[derive(Debug, Clone)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    userinfo_endpoint: Option<String>,
}

impl Discovery {
    fn read(v: &Value) -> Result<Discovery, String> {
        let f = Fields::of(v)?;
        Ok(Discovery {
            issuer: f.str("issuer")?,
            authorization_endpoint: f.str("authorization_endpoint")?,
            token_endpoint: f.str("token_endpoint")?,
            jwks_uri: f.str("jwks_uri")?,
            userinfo_endpoint: f.opt_str("userinfo_endpoint")?,
        })
    }
}

async fn discover<P: Platform>(p: &P, c: &OidcConfig) -> AppResult<Discovery> {
    let name = c.name.as_str();
    let doc = cached_document(p, name, &c.discovery_url(), false).await?;
    let d =
        Discovery::read(&doc).map_err(|e| rejected(name, format!("discovery document: {e}")))?;
    // OpenID Connect Discovery 1.0 §4.3: the document's issuer must be the one configured.
    if d.issuer != c.issuer {
        return Err(rejected(
            name,
            format!("discovery issuer {} is not {}", d.issuer, c.issuer),
        ));
    }
    // The code, the client secret and the keys travel through these: https, as for the
    // configured URLs, except on loopback.
    let endpoints = [&d.authorization_endpoint, &d.token_endpoint, &d.jwks_uri];
    let userinfo = d.userinfo_endpoint.iter();
    if let Some(url) = endpoints
        .into_iter()
        .chain(userinfo)
        .find(|u| crate::urls::plain_http_off_loopback(u))
    {
        return Err(rejected(
            name,
            format!("discovery names a plain-http endpoint off loopback: {url}"),
        ));
    }
    Ok(d)
}

/// The authorization request URL.
pub async fn begin<P: Platform>(p: &P, c: &OidcConfig, flow: &Flow<'_>) -> AppResult<String> {
    let name = c.name.as_str();
    let d = discover(p, c).await?;
    let mut url = url::Url::parse(&d.authorization_endpoint)
        .map_err(|_| rejected(name, "bad authorization_endpoint"))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &c.client_id)
        .append_pair("redirect_uri", &flow.redirect_uri)
        .append_pair("scope", &c.scopes)
        .append_pair("state", flow.state)
        .append_pair("nonce", flow.nonce)
        .append_pair("code_challenge", &flow.pkce_challenge())
        .append_pair("code_challenge_method", "S256");
    Ok(url.into())
}

/// Refuses a callback that carries the provider's `error`, or lacks a `code`.
pub fn callback_code(req: &Request, name: &str) -> AppResult<String> {
    if let Some(err) = req.query("error") {
        return Err(rejected(name, format!("authorization error {err:?}")));
    }
    req.query("code")
        .filter(|c| !c.is_empty() && c.len() < 4096)
        .ok_or_else(|| AppError::BadRequest("The provider returned no authorization code.".into()))
}

/// RFC 6749 §2.3.1: client id and secret are form-encoded before Basic.
fn basic_auth(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let raw = format!("{}:{}", enc(id), enc(secret));
    format!("Basic {}", crate::b64::STANDARD.encode(raw))
}

/// How Gatehouse authenticates as an OAuth client (shared with `oauth2`).
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    pub id: &'a str,
    pub secret: &'a Secret,
    pub auth: ClientAuth,
}

/// The token request of the code flow.
fn token_request(
    token_endpoint: &str,
    redirect_uri: &str,
    code: &str,
    flow: &Flow<'_>,
    client: Client<'_>,
) -> Outbound {
    let mut pairs = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", flow.pkce_verifier),
    ];
    if client.auth == ClientAuth::ClientSecretPost {
        pairs.push(("client_id", client.id));
        pairs.push(("client_secret", client.secret.expose()));
    }
    let req = Outbound::post_form(token_endpoint, &pairs);
    match client.auth {
        ClientAuth::ClientSecretBasic => req.header(
            "authorization",
            &basic_auth(client.id, client.secret.expose()),
        ),
        ClientAuth::ClientSecretPost => req,
    }
}

/// Exchanges the callback's authorization code (see [`callback_code`]) at `token_endpoint`
/// (shared with `oauth2`); any token-endpoint failure ends here.
pub async fn exchange_code<P: Platform>(
    p: &P,
    name: &str,
    token_endpoint: &str,
    client: Client<'_>,
    code: &str,
    flow: &Flow<'_>,
) -> AppResult<Value> {
    let token_req = token_request(token_endpoint, &flow.redirect_uri, code, flow, client);
    call_ok(p.http(), name, token_req).await
}

fn jwt_rejected(name: &str, what: &str, e: JwtError) -> AppError {
    rejected(name, format!("{what}: {e}"))
}

/// Verifies a provider-signed JWT (`what`, for the log line) against the JWKS at `jwks_url`,
/// refetching once (at most once a minute) when its `kid` is unknown. Returns the verified
/// claims. A JWKS that cannot be fetched, the first time or on the refetch, is the provider
/// being down (502); everything about the token itself is a refusal (400).
pub async fn verify_provider_jwt<P: Platform>(
    p: &P,
    name: &str,
    what: &str,
    token: &str,
    jwks_url: &str,
    rules: &ClaimRules<'_>,
) -> AppResult<Map<String, Value>> {
    let rejected = |e| jwt_rejected(name, what, e);
    let untrusted = compact::parse(token).map_err(rejected)?;
    // An access token (ours or anyone's) is never an ID token.
    if untrusted.typ().as_deref() == Some(crate::jwt::ACCESS_TOKEN_TYP) {
        return Err(rejected(JwtError::Type));
    }
    let mut keys = jwk::parse_set(&cached_document(p, name, jwks_url, false).await?);
    if select_key(&untrusted, &keys).is_err() {
        keys = jwk::parse_set(&cached_document(p, name, jwks_url, true).await?);
    }
    let key = select_key(&untrusted, &keys).map_err(rejected)?;
    verify_signature(p.sig(), &untrusted, key)
        .await
        .map_err(rejected)?;
    check_claims(&untrusted.claims, rules).map_err(rejected)?;
    Ok(untrusted.claims)
}

/// Exchanges the code, verifies the ID token, reads userinfo, and returns the profile.
pub async fn complete<P: Platform>(
    p: &P,
    c: &OidcConfig,
    req: &Request,
    flow: &Flow<'_>,
) -> AppResult<Profile> {
    let name = c.name.as_str();
    let code = callback_code(req, name)?;
    let d = discover(p, c).await?;
    let client = Client {
        id: &c.client_id,
        secret: &c.client_secret,
        auth: c.client_auth,
    };
    let tokens = exchange_code(p, name, &d.token_endpoint, client, &code, flow).await?;
    let id_token = tokens
        .get("id_token")
        .and_then(|t| t.as_str())
        .ok_or_else(|| rejected(name, "token response without id_token"))?;
    let rules = ClaimRules {
        issuer: &d.issuer,
        audience: &c.client_id,
        now: p.now(),
        require_iat: true,
    };
    let mut claims =
        verify_provider_jwt(p, name, "ID token", id_token, &d.jwks_uri, &rules).await?;
    // OIDC Core §3.1.3.7: with several audiences, azp must be us.
    if let Some(Value::Array(auds)) = claims.get("aud") {
        if auds.len() > 1 && str_claim(&claims, "azp").as_deref() != Some(c.client_id.as_str()) {
            return Err(jwt_rejected(name, "ID token", JwtError::Audience));
        }
    }
    let nonce_ok = str_claim(&claims, "nonce")
        .map(|n| crate::crypto::ct_eq(n.as_bytes(), flow.nonce.as_bytes()))
        .unwrap_or(false);
    if !nonce_ok {
        return Err(jwt_rejected(name, "ID token", JwtError::Nonce));
    }
    let sub = str_claim(&claims, "sub").unwrap_or_default();
    if let (Some(endpoint), Some(access)) = (
        &d.userinfo_endpoint,
        tokens.get("access_token").and_then(|t| t.as_str()),
    ) {
        let info = call_ok(
            p.http(),
            name,
            Outbound::get(endpoint.as_str()).header("authorization", &format!("Bearer {access}")),
        )
        .await?;
        let info = info.as_object().cloned().unwrap_or_default();
        if str_claim(&info, "sub").as_deref() != Some(sub.as_str()) {
            return Err(rejected(name, "userinfo sub differs from the ID token's"));
        }
        // Userinfo fills what the ID token left out; the ID token's own claims win.
        for (k, v) in info {
            claims.entry(k).or_insert(v);
        }
    }
    Ok(Profile {
        issuer: d.issuer,
        sub,
        provider: name.into(),
        email: str_claim(&claims, "email"),
        email_verified: claims.get("email_verified").and_then(|v| v.as_bool()),
        name: str_claim(&claims, "name").or_else(|| str_claim(&claims, "preferred_username")),
        picture: str_claim(&claims, "picture"),
        raw: Value::Object(claims),
        vendor_logout: None,
    })
}
