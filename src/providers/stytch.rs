//! The `stytch` kind: email magic links through Stytch's consumer API (docs/vendors.md).
//!
//! `POST /auth/magic-link` ([`crate::app`]'s `magic` module) calls [`send_magic_link`]
//! (`magic_links/email/login_or_create`) with the magic link URL set to
//! [`super::callback_url`], so the link carries the login transaction's `gh_state` and only
//! completes in the browser that asked for it. The link lands on
//! `/auth/callback/{name}?gh_state=…&stytch_token_type=magic_links&token=…`; [`complete`]
//! trades the token at `magic_links/authenticate` for the Stytch user (its `user_id` is the
//! `sub`) and a Stytch session, whose token is kept so that [`end_session`] can revoke it
//! (`sessions/revoke`) at logout.
//!
//! PKCE binds the emailed token to the login transaction that asked for it: the send carries
//! `code_challenge` (the S256 challenge of the transaction's random verifier) and
//! `magic_links/authenticate` carries `code_verifier`. Stytch refuses a token minted with a
//! challenge without the matching verifier (400 `pkce_mismatch`), so a token taken from
//! someone's mail cannot be spent in a flow the thief starts in their own browser: their
//! transaction holds another verifier. For an admin's invitation the verifier stays in the
//! invitation record on the server (no browser started it); see docs/providers-stytch-passage.md.
//!
//! Every call uses HTTP Basic `project_id:secret`. Stytch errors
//! (`{status_code, request_id, error_type, error_message, error_url}`) become provider
//! errors whose detail goes to the log only; Stytch's own 429 becomes Gatehouse's 429.

use super::fetch::call_json;
use super::{rejected, require_secret, Flow};
use crate::crypto::Secret;
use crate::error::{AppError, AppResult};
use crate::http::Request;
use crate::platform::{HttpClient, Outbound, Platform};
use crate::urls::parse_base_url;
use crate::users::Profile;
use serde_json::{json, Value};

/// Stytch's test and live API bases.
pub const TEST_API_URL: &str = "https://test.stytch.com/v1/";
pub const LIVE_API_URL: &str = "https://api.stytch.com/v1/";
/// How long a sent link stays valid: no longer than the login transaction it is bound to.
pub const LINK_EXPIRATION_MINUTES: u64 = super::SIGN_IN_TTL / 60;
/// The only `stytch_token_type` this kind accepts.
pub const TOKEN_TYPE: &str = "magic_links";
/// Longest magic-link token Gatehouse forwards.
const MAX_TOKEN_LEN: usize = 512;

struct Settings {
    project_id: String,
    api_url: Option<String>,
    session_minutes: Option<u32>,
    display_name: Option<String>,
}

impl Settings {
    fn read(v: &Value) -> Result<Settings, String> {
        let f = crate::fields::Fields::strict(
            v,
            &[
                "kind",
                "project_id",
                "api_url",
                "session_minutes",
                "display_name",
            ],
        )?;
        Ok(Settings {
            project_id: f.str("project_id")?,
            api_url: f.opt_str("api_url")?,
            session_minutes: f
                .opt_u64("session_minutes")?
                .map(|n| u32::try_from(n).map_err(|_| "field `session_minutes` is too large"))
                .transpose()?,
            display_name: f.opt_str("display_name")?,
        })
    }
}

/// Settings of a `stytch` provider.
#[derive(Debug, Clone)]
pub struct StytchConfig {
    pub name: String,
    pub project_id: String,
    pub secret: Secret,
    /// API base, always ending in `/`.
    pub api_url: String,
    /// `session_duration_minutes` of `magic_links/authenticate`.
    pub session_minutes: u32,
    pub display_name: String,
}

impl StytchConfig {
    pub fn parse(name: &str, v: &Value, secret: Option<Secret>) -> Result<StytchConfig, String> {
        let s = Settings::read(v)?;
        let project_id = s.project_id.trim().to_string();
        if project_id.is_empty() || project_id.len() > 200 || project_id.contains(':') {
            return Err("project_id must be a Stytch project id".into());
        }
        let mut api_url = match s.api_url {
            Some(u) => u,
            None if project_id.starts_with("project-live-") => LIVE_API_URL.into(),
            None => TEST_API_URL.into(),
        };
        parse_base_url("api_url", &api_url)
            .map_err(|_| "api_url must be an http(s) URL without query".to_string())?;
        if !api_url.ends_with('/') {
            api_url.push('/');
        }
        let session_minutes = s.session_minutes.unwrap_or(60);
        // Stytch accepts 5 minutes up to a year.
        if !(5..=525_600).contains(&session_minutes) {
            return Err("session_minutes must be between 5 and 525600".into());
        }
        Ok(StytchConfig {
            name: name.into(),
            secret: require_secret(name, secret)?,
            display_name: s.display_name.unwrap_or_else(|| name.to_string()),
            project_id,
            api_url,
            session_minutes,
        })
    }

    /// The identity issuer: `stytch:{project_id}`.
    pub fn issuer(&self) -> String {
        format!("stytch:{}", self.project_id)
    }

    fn basic_auth(&self) -> String {
        let raw = format!("{}:{}", self.project_id, self.secret.expose());
        format!("Basic {}", crate::b64::STANDARD.encode(raw))
    }

    /// A JSON POST to `{api_url}{path}` with Basic auth.
    fn post(&self, path: &str, body: &Value) -> Outbound {
        Outbound::post_json(format!("{}{path}", self.api_url), body)
            .header("authorization", &self.basic_auth())
    }
}

fn text(v: &Value, k: &str) -> Option<String> {
    v.get(k)
        .and_then(|x| x.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// The error for a non-2xx Stytch answer: 429 is ours to pass on; the rest is a provider
/// error with Stytch's `error_type`, `error_message` and `request_id` in the log line.
pub fn stytch_error(name: &str, path: &str, status: u16, body: &Value) -> AppError {
    if status == 429 {
        return AppError::RateLimited;
    }
    let field = |k| text(body, k).unwrap_or_else(|| "-".into());
    rejected(
        name,
        format!(
            "{path}: HTTP {status} {} ({}) request_id={}",
            field("error_type"),
            field("error_message"),
            field("request_id")
        ),
    )
}

/// Calls `path` and returns the 2xx body, or the Stytch error.
async fn call<H: HttpClient>(
    http: &H,
    c: &StytchConfig,
    path: &str,
    body: &Value,
) -> AppResult<Value> {
    let name = c.name.as_str();
    let (status, json) = call_json(http, name, c.post(path, body)).await?;
    if !(200..300).contains(&status) {
        return Err(stytch_error(name, path, status, &json));
    }
    if !json.is_object() {
        return Err(rejected(
            name,
            format!("{path}: HTTP {status} with a body that is not an object"),
        ));
    }
    Ok(json)
}

/// Asks Stytch to email a login-or-signup link to `email` that lands on `link_url`, bound by
/// PKCE to `flow` (its challenge goes to Stytch, its verifier stays in the transaction).
/// Answers the same whether or not Stytch knew the address (`user_created` is not passed on).
pub async fn send_magic_link<P: Platform>(
    p: &P,
    c: &StytchConfig,
    email: &str,
    link_url: &str,
    flow: &Flow<'_>,
) -> AppResult<()> {
    let body = json!({
        "email": email,
        "login_magic_link_url": link_url,
        "signup_magic_link_url": link_url,
        "login_expiration_minutes": LINK_EXPIRATION_MINUTES,
        "signup_expiration_minutes": LINK_EXPIRATION_MINUTES,
        "code_challenge": flow.pkce_challenge(),
    });
    call(p.http(), c, "magic_links/email/login_or_create", &body)
        .await
        .map(|_| ())
}

/// The magic-link token of the callback; other Stytch token types are refused.
pub fn callback_token(req: &Request) -> AppResult<String> {
    match req.query("stytch_token_type").as_deref() {
        Some(TOKEN_TYPE) => {}
        Some(other) => {
            let shown: String = other
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(40)
                .collect();
            return Err(AppError::BadRequest(format!(
                "This link is a Stytch \"{shown}\" link; Gatehouse only accepts email magic links here."
            )));
        }
        None => return Err(AppError::BadRequest(
            "This link has no Stytch token type; Gatehouse only accepts email magic links here."
                .into(),
        )),
    }
    super::query_token(req, MAX_TOKEN_LEN)
}

/// `name{first_name, middle_name, last_name}` as one string.
fn full_name(user: &Value) -> Option<String> {
    let n = user.get("name")?;
    let parts: Vec<String> = ["first_name", "middle_name", "last_name"]
        .iter()
        .filter_map(|k| text(n, k))
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// The email the link was sent to (`method_id` is its `email_id`), else the first verified
/// one, else the first; with its `verified` flag.
fn pick_email(user: &Value, method_id: Option<&str>) -> (Option<String>, Option<bool>) {
    let emails: Vec<&Value> = user
        .get("emails")
        .and_then(|e| e.as_array())
        .map(|a| a.iter().filter(|e| text(e, "email").is_some()).collect())
        .unwrap_or_default();
    let chosen = emails
        .iter()
        .find(|e| method_id.is_some() && text(e, "email_id").as_deref() == method_id)
        .or_else(|| {
            emails
                .iter()
                .find(|e| e.get("verified").and_then(|v| v.as_bool()) == Some(true))
        })
        .or_else(|| emails.first());
    match chosen {
        Some(e) => (
            text(e, "email"),
            e.get("verified").and_then(|v| v.as_bool()),
        ),
        None => (None, None),
    }
}

/// Turns a successful `magic_links/authenticate` body into a profile.
pub fn profile_from_authenticate(c: &StytchConfig, body: &Value) -> AppResult<Profile> {
    let name = c.name.as_str();
    let bad = |what: &str| rejected(name, format!("magic_links/authenticate: {what}"));
    let user_id = text(body, "user_id").ok_or_else(|| bad("no user_id"))?;
    let user = body.get("user").cloned().unwrap_or(Value::Null);
    if let Some(inner) = text(&user, "user_id") {
        if inner != user_id {
            return Err(bad("user.user_id differs from user_id"));
        }
    }
    let (email, email_verified) = pick_email(&user, text(body, "method_id").as_deref());
    Ok(Profile {
        issuer: c.issuer(),
        sub: user_id,
        provider: name.into(),
        email,
        email_verified,
        name: full_name(&user),
        picture: None,
        // Only the user object is kept on the identity row: never the session secrets.
        raw: user,
        vendor_logout: text(body, "session_token"),
    })
}

/// Trades the callback's magic-link token, with the PKCE verifier of the spent transaction
/// (`flow`), for the Stytch user and session.
pub async fn complete<P: Platform>(
    p: &P,
    c: &StytchConfig,
    req: &Request,
    flow: &Flow<'_>,
) -> AppResult<Profile> {
    let name = c.name.as_str();
    let token = callback_token(req)?;
    let body = call(
        p.http(),
        c,
        "magic_links/authenticate",
        &json!({
            "token": token,
            "session_duration_minutes": c.session_minutes,
            "code_verifier": flow.pkce_verifier,
        }),
    )
    .await?;
    let refused = match profile_from_authenticate(c, &body) {
        Ok(profile) => return Ok(profile),
        Err(e) => e,
    };
    // Stytch made a session before its answer turned out unusable here: it must not outlive
    // the refused sign-in (best effort; the refusal stands either way).
    if let Some(session) = text(&body, "session_token").filter(|t| !t.is_empty()) {
        if let Err(e) = end_session(p, c, &session).await {
            super::log_failed_logout(p, name, &e);
        }
    }
    Err(refused)
}

/// Revokes the Stytch session at logout; one that is already gone (404
/// `session_not_found`) counts as revoked.
pub async fn end_session<P: Platform>(
    p: &P,
    c: &StytchConfig,
    session_token: &str,
) -> AppResult<()> {
    let name = c.name.as_str();
    let path = "sessions/revoke";
    let (status, json) = call_json(
        p.http(),
        name,
        c.post(path, &json!({"session_token": session_token})),
    )
    .await?;
    match status {
        200..=299 => Ok(()),
        404 if text(&json, "error_type").as_deref() == Some("session_not_found") => Ok(()),
        _ => Err(stytch_error(name, path, status, &json)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(v: Value) -> Result<StytchConfig, String> {
        StytchConfig::parse("mail", &v, Some(Secret::new("sek")))
    }

    #[test]
    fn defaults_pick_test_or_live_api_by_project_id() {
        let t = cfg(json!({"kind": "stytch", "project_id": "project-test-123"})).unwrap();
        assert_eq!(t.api_url, TEST_API_URL);
        assert_eq!(t.session_minutes, 60);
        assert_eq!(t.display_name, "mail");
        assert_eq!(t.issuer(), "stytch:project-test-123");
        let l = cfg(json!({"kind": "stytch", "project_id": "project-live-9"})).unwrap();
        assert_eq!(l.api_url, LIVE_API_URL);
        let o = cfg(json!({"kind": "stytch", "project_id": "p", "api_url": "http://127.0.0.1:9/v1", "session_minutes": 30, "display_name": "Email"})).unwrap();
        assert_eq!(o.api_url, "http://127.0.0.1:9/v1/");
        assert_eq!(o.session_minutes, 30);
        assert_eq!(o.display_name, "Email");
    }

    #[test]
    fn bad_settings_are_refused() {
        for v in [
            json!({"kind": "stytch"}),
            json!({"kind": "stytch", "project_id": ""}),
            json!({"kind": "stytch", "project_id": "p", "api_url": "ftp://x/"}),
            json!({"kind": "stytch", "project_id": "p", "api_url": "https://x/?a=1"}),
            json!({"kind": "stytch", "project_id": "p", "session_minutes": 1}),
            json!({"kind": "stytch", "project_id": "p", "typo": 1}),
        ] {
            assert!(cfg(v.clone()).is_err(), "{v}");
        }
        let no_secret = StytchConfig::parse(
            "my-mail",
            &json!({"kind": "stytch", "project_id": "p"}),
            None,
        );
        assert!(no_secret.unwrap_err().contains("PROVIDER_MY_MAIL_SECRET"));
    }

    #[test]
    fn basic_auth_is_project_id_and_secret() {
        let c = cfg(json!({"kind": "stytch", "project_id": "project-test-1"})).unwrap();
        let req = c.post("x", &json!({}));
        let auth = req
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .unwrap();
        assert_eq!(auth.1, "Basic cHJvamVjdC10ZXN0LTE6c2Vr");
        assert_eq!(req.url, "https://test.stytch.com/v1/x");
    }

    #[test]
    fn authenticate_body_becomes_a_profile() {
        let c = cfg(json!({"kind": "stytch", "project_id": "project-test-1"})).unwrap();
        let body = json!({
            "status_code": 200, "request_id": "r", "user_id": "user-test-1", "method_id": "email-2",
            "session_token": "sess-tok", "session_jwt": "x.y.z",
            "user": {"user_id": "user-test-1", "name": {"first_name": "Ada", "middle_name": "", "last_name": "Lovelace"},
                     "emails": [{"email_id": "email-1", "email": "old@x.test", "verified": true},
                                {"email_id": "email-2", "email": "ada@x.test", "verified": true}]},
        });
        let p = profile_from_authenticate(&c, &body).unwrap();
        assert_eq!(p.issuer, "stytch:project-test-1");
        assert_eq!(p.sub, "user-test-1");
        assert_eq!(p.email.as_deref(), Some("ada@x.test"));
        assert_eq!(p.email_verified, Some(true));
        assert_eq!(p.name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(p.vendor_logout.as_deref(), Some("sess-tok"));
        assert!(
            !p.raw.to_string().contains("sess-tok"),
            "session token not stored on the identity"
        );

        let mut no_id = body.clone();
        no_id.as_object_mut().unwrap().remove("user_id");
        assert!(profile_from_authenticate(&c, &no_id).is_err());
        let mut mismatch = body;
        mismatch["user"]["user_id"] = json!("someone-else");
        assert!(profile_from_authenticate(&c, &mismatch).is_err());
    }

    #[test]
    fn stytch_errors_are_logged_not_shown_and_429_passes_through() {
        let body = json!({"status_code": 401, "request_id": "request-id-test-1", "error_type": "unable_to_auth_magic_link",
            "error_message": "The magic link could not be authenticated", "error_url": "https://stytch.com/docs/api/errors/401"});
        let e = stytch_error("mail", "magic_links/authenticate", 401, &body);
        let line = e.log_line().unwrap();
        assert!(
            line.contains("unable_to_auth_magic_link") && line.contains("request-id-test-1"),
            "{line}"
        );
        assert!(!e.public_message().contains("unable_to_auth"));
        assert_eq!(
            stytch_error(
                "mail",
                "x",
                429,
                &json!({"error_type": "too_many_requests"})
            ),
            AppError::RateLimited
        );
    }

    #[test]
    fn callback_accepts_only_magic_link_tokens() {
        use crate::http::Method;
        let req = |q: &str| Request::new(Method::Get, &format!("http://h/auth/callback/mail?{q}"));
        assert_eq!(
            callback_token(&req("stytch_token_type=magic_links&token=abc")).unwrap(),
            "abc"
        );
        for q in [
            "stytch_token_type=oauth&token=abc",
            "stytch_token_type=reset_password&token=abc",
            "token=abc",
            "stytch_token_type=magic_links",
            "stytch_token_type=magic_links&token=",
        ] {
            assert!(
                matches!(callback_token(&req(q)), Err(AppError::BadRequest(_))),
                "{q}"
            );
        }
        let long = format!("stytch_token_type=magic_links&token={}", "a".repeat(600));
        assert!(callback_token(&req(&long)).is_err());
        let msg = callback_token(&req("stytch_token_type=oauth&token=abc"))
            .unwrap_err()
            .public_message();
        assert!(msg.contains("\"oauth\""), "{msg}");
    }

    /// The `PROVIDERS` JSON examples of docs/providers-stytch-passage.md parse.
    #[test]
    fn documented_examples_parse() {
        let doc = include_str!("../../docs/providers-stytch-passage.md");
        let examples: Vec<&str> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("PROVIDERS='")?.strip_suffix('\''))
            .collect();
        assert_eq!(examples.len(), 2);
        for json in examples {
            let mut env = crate::testing::test_env();
            env.insert("PROVIDERS".into(), json.into());
            env.insert("PROVIDER_EMAIL_SECRET".into(), "secret-test-x".into());
            let cfg = crate::config::Config::from_env(&env).expect(json);
            assert_eq!(cfg.providers.len(), 1);
        }
    }
}
