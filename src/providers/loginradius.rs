//! The `loginradius` kind (docs/vendors.md, "LoginRadius"): the browser goes to the
//! app's hosted page `{hub_url}/auth.aspx?action=login&return_url=…` and comes back with
//! `?token=<access token>`; `GET {api_url}identity/v2/auth/account?apikey=K` with that token as
//! `Authorization: Bearer` gives the profile, linked by its `Uid` under the issuer
//! `loginradius:{app_name}`. The access token is kept with the session
//! ([`Profile::vendor_logout`]) and invalidated at LoginRadius when the session ends.
//!
//! LoginRadius answers errors as `{Description, ErrorCode, Message, IsProviderError,
//! ProviderErrorResponse}`, sometimes with a 2xx status, so the body's `ErrorCode` decides.
//! There is no OAuth `state`: the return URL carries the login transaction as `gh_state`
//! ([`super::callback_url`]), checked against the transaction cookie before the token is used.

use super::fetch::call_json;
use super::{rejected, Flow};
use crate::crypto::Secret;
use crate::error::{AppError, AppResult};
use crate::http::Request;
use crate::platform::{Outbound, Platform};
use crate::urls::{api_base, parse_base_url};
use crate::users::Profile;
use serde_json::{Map, Value};

/// LoginRadius's API base.
pub const DEFAULT_API_URL: &str = "https://api.loginradius.com/";

/// `ErrorCode` of an invalid or expired access token.
pub const INVALID_TOKEN: i64 = 906;

struct Settings {
    app_name: String,
    api_key: String,
    hub_url: Option<String>,
    api_url: Option<String>,
    display_name: Option<String>,
}

impl Settings {
    fn read(v: &Value) -> Result<Settings, String> {
        let f = crate::fields::Fields::strict(
            v,
            &[
                "kind",
                "app_name",
                "api_key",
                "hub_url",
                "api_url",
                "display_name",
            ],
        )?;
        Ok(Settings {
            app_name: f.str("app_name")?,
            api_key: f.str("api_key")?,
            hub_url: f.opt_str("hub_url")?,
            api_url: f.opt_str("api_url")?,
            display_name: f.opt_str("display_name")?,
        })
    }
}

/// Settings of a `loginradius` provider.
#[derive(Debug, Clone)]
pub struct LoginRadiusConfig {
    pub name: String,
    /// The LoginRadius app name (lower-case letters, digits, `-`); part of the issuer.
    pub app_name: String,
    /// The app's API key (sent as `apikey=`; LoginRadius treats it as public).
    pub api_key: String,
    /// The API secret from `PROVIDER_<NAME>_SECRET`, when set. The calls Gatehouse makes
    /// (profile by access token, invalidate) need only the API key, so it is optional and
    /// never sent.
    pub api_secret: Option<Secret>,
    /// The hosted login page's base, without a trailing `/`.
    pub hub_url: String,
    /// API base, always ending in `/`.
    pub api_url: String,
    pub display_name: String,
}

impl LoginRadiusConfig {
    pub fn parse(
        name: &str,
        v: &Value,
        secret: Option<Secret>,
    ) -> Result<LoginRadiusConfig, String> {
        let s = Settings::read(v)?;
        if s.app_name.is_empty()
            || !s
                .app_name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("app_name must be the LoginRadius app name ([a-z0-9-])".into());
        }
        if s.api_key.trim().is_empty() {
            return Err("api_key must not be empty".into());
        }
        let hub = s
            .hub_url
            .unwrap_or_else(|| format!("https://{}.hub.loginradius.com", s.app_name));
        parse_base_url("hub_url", &hub)
            .map_err(|_| "hub_url must be an http(s) URL without a query".to_string())?;
        Ok(LoginRadiusConfig {
            name: name.into(),
            hub_url: hub.trim_end_matches('/').to_string(),
            api_url: api_base("api_url", s.api_url.as_deref().unwrap_or(DEFAULT_API_URL))?,
            display_name: s.display_name.unwrap_or_else(|| name.to_string()),
            api_secret: secret,
            api_key: s.api_key,
            app_name: s.app_name,
        })
    }

    /// The stable issuer of this app's identities.
    pub fn issuer(&self) -> String {
        format!("loginradius:{}", self.app_name)
    }

    /// `GET {api_url}{path}?apikey=K[&extra…]` with the user's access token as bearer; query
    /// values are URL-encoded.
    fn api_get(&self, path: &str, extra: &[(&str, &str)], token: &str) -> Outbound {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("apikey", &self.api_key)
            .extend_pairs(extra)
            .finish();
        Outbound::get(format!("{}{path}?{query}", self.api_url))
            .header("authorization", &format!("Bearer {token}"))
    }
}

/// The hosted login (or, for `action=register`, sign-up) page, returning to this
/// transaction's callback URL.
pub fn begin(c: &LoginRadiusConfig, flow: &Flow<'_>) -> AppResult<String> {
    let mut url = url::Url::parse(&format!("{}/auth.aspx", c.hub_url))
        .map_err(|e| AppError::Internal(format!("hub_url: {e}")))?;
    url.query_pairs_mut()
        .append_pair("action", if flow.register { "register" } else { "login" })
        .append_pair("return_url", &flow.callback_url());
    Ok(url.into())
}

/// The error a LoginRadius answer carries, if any: a non-null `ErrorCode` in the body (whatever
/// the status), or a non-2xx status without one. `what` names the call for the log.
pub fn check_answer(name: &str, what: &str, status: u16, body: &Value) -> AppResult<()> {
    let code = body.get("ErrorCode").filter(|c| !c.is_null());
    if code.is_none() && (200..300).contains(&status) {
        return Ok(());
    }
    let field = |k: &str| {
        body.get(k)
            .and_then(|v| v.as_str())
            .map(|s| s.chars().take(200).collect::<String>())
            .unwrap_or_default()
    };
    let code = code
        .map(crate::fields::json_text)
        .unwrap_or_else(|| "(none)".into());
    let hint = match body.get("ErrorCode").and_then(|c| c.as_i64()) {
        Some(901) => " (the api_key is not valid for this app)",
        Some(INVALID_TOKEN) => " (invalid or expired access token)",
        _ => "",
    };
    Err(rejected(
        name,
        format!(
            "{what}: HTTP {status}, ErrorCode {code}{hint}: {} {}",
            field("Message"),
            field("Description")
        )
        .trim_end()
        .to_string(),
    ))
}

fn text(m: &Map<String, Value>, k: &str) -> Option<String> {
    m.get(k)
        .and_then(|v| v.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// The profile fields kept on the identity row (not the whole LoginRadius profile).
const KEPT_FIELDS: [&str; 10] = [
    "Uid",
    "ID",
    "Provider",
    "FirstName",
    "LastName",
    "FullName",
    "Email",
    "ImageUrl",
    "EmailVerified",
    "CreatedDate",
];

/// Turns a profile-by-access-token answer into a profile; `token` becomes the session's
/// vendor logout handle.
pub fn profile_from_account(
    name: &str,
    issuer: &str,
    status: u16,
    body: &Value,
    token: &str,
) -> AppResult<Profile> {
    check_answer(name, "profile", status, body)?;
    let rejected = |reason: &str| rejected(name, format!("profile: {reason}"));
    let m = body
        .as_object()
        .ok_or_else(|| rejected("the answer is not an object"))?;
    let sub = text(m, "Uid").ok_or_else(|| rejected("no Uid"))?;
    let email = m
        .get("Email")
        .and_then(|e| e.as_array())
        .and_then(|list| {
            list.iter()
                .find(|e| e["Type"] == "Primary")
                .or_else(|| list.first())
        })
        .and_then(|e| e.get("Value"))
        .and_then(|v| v.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from);
    let full_name = text(m, "FullName").or_else(|| {
        let first = text(m, "FirstName").unwrap_or_default();
        let last = text(m, "LastName").unwrap_or_default();
        Some(format!("{first} {last}").trim().to_string()).filter(|n| !n.is_empty())
    });
    // Inserted one by one: `collect` into the map would link a sort of its own.
    let mut raw = Map::new();
    for k in KEPT_FIELDS {
        if let Some(v) = m.get(k) {
            raw.insert(k.to_string(), v.clone());
        }
    }
    Ok(Profile {
        issuer: issuer.to_string(),
        sub,
        provider: name.into(),
        email,
        email_verified: m.get("EmailVerified").and_then(|v| v.as_bool()),
        name: full_name,
        picture: text(m, "ImageUrl"),
        raw: Value::Object(raw),
        vendor_logout: Some(token.to_string()),
    })
}

/// Reads the profile of the callback's access token. The login transaction (`gh_state` and
/// its cookie) was checked by the caller before this runs.
pub async fn complete<P: Platform>(
    p: &P,
    c: &LoginRadiusConfig,
    req: &Request,
    _flow: &Flow<'_>,
) -> AppResult<Profile> {
    let name = c.name.as_str();
    let token = super::query_token(req, super::MAX_QUERY_TOKEN_LEN)?;
    let (status, body) = call_json(
        p.http(),
        name,
        c.api_get("identity/v2/auth/account", &[], &token),
    )
    .await?;
    let refused = match profile_from_account(name, &c.issuer(), status, &body, &token) {
        Ok(profile) => return Ok(profile),
        Err(e) => e,
    };
    // LoginRadius answered, but not with a profile Gatehouse can use: the access token the
    // hosted page issued must not outlive the refused sign-in (best effort).
    if let Err(e) = end_session(p, c, &token).await {
        super::log_failed_logout(p, name, &e);
    }
    Err(refused)
}

/// Invalidates the session's access token at LoginRadius. A token LoginRadius already holds
/// invalid (ErrorCode 906: expired or invalidated) counts as done.
pub async fn end_session<P: Platform>(p: &P, c: &LoginRadiusConfig, token: &str) -> AppResult<()> {
    let name = c.name.as_str();
    let (status, body) = call_json(
        p.http(),
        name,
        c.api_get(
            "identity/v2/auth/access_token/invalidate",
            &[("preventRefresh", "true")],
            token,
        ),
    )
    .await?;
    if body.get("ErrorCode").and_then(|c| c.as_i64()) == Some(INVALID_TOKEN) {
        return Ok(());
    }
    check_answer(name, "invalidate", status, &body)?;
    match body.get("IsPosted") {
        Some(Value::Bool(true)) => Ok(()),
        _ => Err(rejected(name, "invalidate: answer without IsPosted: true")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::http::Method;
    use crate::platform::{FetchError, Inbound};
    use crate::testing::{block_on, test_env, TestPlatform};
    use crate::txn::{LoginTxn, Purpose};
    use serde_json::json;

    const ISSUER: &str = "loginradius:acme-test";

    fn lr_error(code: i64, message: &str) -> Value {
        json!({
            "Description": format!("{message} (description)"), "ErrorCode": code,
            "Message": message, "IsProviderError": false, "ProviderErrorResponse": null,
        })
    }

    fn account(status: u16, body: Value) -> AppResult<Profile> {
        profile_from_account("lr", ISSUER, status, &body, "tok-1")
    }

    fn reason(r: AppResult<Profile>) -> String {
        match r {
            Err(AppError::Provider { provider, reason }) => {
                assert_eq!(provider, "lr");
                reason
            }
            other => panic!("expected a provider error, got {other:?}"),
        }
    }

    #[test]
    fn success_links_by_uid_and_keeps_the_token_for_logout() {
        let p = account(
            200,
            json!({
                "Uid": "7f3c-uid", "ID": "provider-id-1", "Provider": "Email",
                "FirstName": "Ada", "LastName": "Lovelace", "FullName": "Ada Lovelace",
                "Email": [{"Type": "Primary", "Value": "ada@example.com"}, {"Type": "Secondary", "Value": "x@y"}],
                "ImageUrl": "https://img.example/ada.png", "EmailVerified": true,
                "CreatedDate": "2026-01-01T00:00:00", "PhoneId": "+15550000", "Password": null,
            }),
        )
        .unwrap();
        assert_eq!(p.issuer, ISSUER);
        assert_eq!(p.sub, "7f3c-uid", "Uid, not ID");
        assert_eq!(p.email.as_deref(), Some("ada@example.com"));
        assert_eq!(p.name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(p.picture.as_deref(), Some("https://img.example/ada.png"));
        assert_eq!(p.email_verified, Some(true));
        assert_eq!(p.vendor_logout.as_deref(), Some("tok-1"));
        assert_eq!(p.raw["ID"], "provider-id-1");
        assert!(
            p.raw.get("PhoneId").is_none(),
            "only the identity fields are kept"
        );
    }

    #[test]
    fn name_falls_back_to_first_and_last_and_missing_fields_stay_empty() {
        let p = account(
            200,
            json!({"Uid": "u", "FullName": " ", "FirstName": "Ada", "LastName": null}),
        )
        .unwrap();
        assert_eq!(p.name.as_deref(), Some("Ada"));
        let p = account(
            200,
            json!({"Uid": "u", "FirstName": "Ada", "LastName": "Lovelace"}),
        )
        .unwrap();
        assert_eq!(p.name.as_deref(), Some("Ada Lovelace"));
        let p = account(
            200,
            json!({"Uid": "u", "Email": null, "EmailVerified": null}),
        )
        .unwrap();
        assert_eq!(p.name, None);
        assert_eq!(p.email, None);
        assert_eq!(
            p.email_verified, None,
            "EmailVerified is not always present"
        );
        assert_eq!(p.picture, None);
        let p = account(200, json!({"Uid": "u", "Email": []})).unwrap();
        assert_eq!(p.email, None);
    }

    #[test]
    fn error_code_decides_whatever_the_status() {
        for (status, body) in [
            (401, lr_error(906, "The provided access token is invalid")),
            (
                403,
                lr_error(901, "The provided LoginRadius API key is invalid"),
            ),
            (400, lr_error(908, "A parameter is not formatted correctly")),
            (200, lr_error(906, "The provided access token is invalid")),
            (200, json!({"Uid": "u", "ErrorCode": 906})),
        ] {
            let r = reason(account(status, body.clone()));
            assert!(r.starts_with("profile: HTTP"), "{r}");
            assert!(r.contains("ErrorCode 90"), "{body}: {r}");
        }
        assert!(reason(account(403, lr_error(901, "bad key"))).contains("api_key"));
        let r = reason(account(404, json!({"Uid": "u"})));
        assert!(
            r.contains("HTTP 404"),
            "a non-2xx without ErrorCode is an error too: {r}"
        );
        // An explicit null ErrorCode is no error.
        assert!(account(200, json!({"Uid": "u", "ErrorCode": null})).is_ok());
    }

    #[test]
    fn missing_uid_is_a_provider_error() {
        for body in [
            json!({}),
            json!({"ID": "x"}),
            json!({"Uid": ""}),
            json!({"Uid": 5}),
            json!([1]),
        ] {
            reason(account(200, body));
        }
    }

    fn config(extra: &str) -> Result<LoginRadiusConfig, String> {
        let v: Value = serde_json::from_str(&format!(
            r#"{{"kind":"loginradius","app_name":"acme-test","api_key":"key-1"{extra}}}"#
        ))
        .unwrap();
        LoginRadiusConfig::parse("lr", &v, None)
    }

    #[test]
    fn settings_defaults_and_refusals() {
        let c = config("").unwrap();
        assert_eq!(c.hub_url, "https://acme-test.hub.loginradius.com");
        assert_eq!(c.api_url, DEFAULT_API_URL);
        assert_eq!(c.issuer(), ISSUER);
        assert_eq!(c.display_name, "lr");
        assert!(c.api_secret.is_none(), "the API secret is optional");
        let c =
            config(r#","hub_url":"http://127.0.0.1:9/","api_url":"http://127.0.0.1:9""#).unwrap();
        assert_eq!(c.hub_url, "http://127.0.0.1:9");
        assert_eq!(c.api_url, "http://127.0.0.1:9/");
        for bad in [
            r#","hub_url":"nope""#,
            r#","api_url":"http://x/?q=1""#,
            r#","secret":"x""#,
        ] {
            assert!(config(bad).is_err(), "{bad}");
        }
        for app in ["", "Acme", "a.b", "a/b", "a b"] {
            let v = json!({"kind": "loginradius", "app_name": app, "api_key": "k"});
            assert!(LoginRadiusConfig::parse("lr", &v, None).is_err(), "{app:?}");
        }
        let v = json!({"kind": "loginradius", "app_name": "a", "api_key": ""});
        assert!(LoginRadiusConfig::parse("lr", &v, None).is_err());
    }

    fn platform(
        answer: impl Fn(&Outbound) -> Result<Inbound, FetchError> + 'static,
    ) -> (TestPlatform, Config) {
        let mut env = test_env();
        env.insert(
            "PROVIDERS".into(),
            r#"{"lr":{"kind":"loginradius","app_name":"acme-test","api_key":"k&y=1","hub_url":"http://127.0.0.1:7002/hub","api_url":"http://127.0.0.1:7002/"}}"#.into(),
        );
        (TestPlatform::new(answer), Config::from_env(&env).unwrap())
    }

    fn lr(cfg: &Config) -> &LoginRadiusConfig {
        match &cfg.providers["lr"] {
            super::super::ProviderConfig::LoginRadius(c) => c,
            other => panic!("{other:?}"),
        }
    }

    fn answer(status: u16, body: Value) -> Result<Inbound, FetchError> {
        Ok(Inbound {
            status,
            body: body.to_string().into_bytes(),
        })
    }

    fn bearer(o: &Outbound) -> Option<&str> {
        o.headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn register_intent_opens_the_sign_up_page() {
        let (_, cfg) = platform(|_| unreachable!());
        let mut txn = LoginTxn::new("lr", Default::default(), Purpose::SignIn, 0);
        txn.register = true;
        let url = begin(lr(&cfg), &txn.flow(&cfg)).unwrap();
        let parsed = url::Url::parse(&url).unwrap();
        assert!(
            parsed
                .query_pairs()
                .any(|(k, v)| k == "action" && v == "register"),
            "{url}"
        );
    }

    #[test]
    fn begin_sends_the_browser_to_the_hosted_page_with_an_encoded_return_url() {
        let (_, cfg) = platform(|_| unreachable!());
        let txn = LoginTxn::new("lr", Default::default(), Purpose::SignIn, 0);
        let url = begin(lr(&cfg), &txn.flow(&cfg)).unwrap();
        let parsed = url::Url::parse(&url).unwrap();
        assert_eq!(parsed.path(), "/hub/auth.aspx");
        let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        assert_eq!(
            pairs,
            vec![
                ("action".into(), "login".into()),
                (
                    "return_url".into(),
                    format!(
                        "http://127.0.0.1:8787/auth/callback/lr?gh_state={}",
                        txn.state
                    )
                ),
            ]
        );
        assert!(
            url.contains(
                "return_url=http%3A%2F%2F127.0.0.1%3A8787%2Fauth%2Fcallback%2Flr%3Fgh_state%3D"
            ),
            "{url}"
        );
    }

    #[test]
    fn complete_reads_the_profile_with_the_token_as_bearer() {
        let (p, cfg) = platform(|req| match bearer(req) {
            Some("Bearer good") => answer(
                200,
                json!({"Uid": "u1", "Email": [{"Type": "Primary", "Value": "a@b"}]}),
            ),
            Some("Bearer slow") => Err(FetchError::Timeout),
            Some("Bearer down") => answer(502, json!({})),
            _ => answer(401, lr_error(906, "The provided access token is invalid")),
        });
        let txn = LoginTxn::new("lr", Default::default(), Purpose::SignIn, 0);
        let call = |token: &str| {
            let req = Request::new(
                Method::Get,
                &format!("http://127.0.0.1:8787/auth/callback/lr?gh_state=s&token={token}"),
            );
            block_on(complete(&p, lr(&cfg), &req, &txn.flow(&cfg)))
        };
        let profile = call("good").unwrap();
        assert_eq!(profile.sub, "u1");
        assert_eq!(profile.vendor_logout.as_deref(), Some("good"));
        assert_eq!(
            p.http.calls.borrow()[0].url,
            "http://127.0.0.1:7002/identity/v2/auth/account?apikey=k%26y%3D1",
            "the API key is URL-encoded"
        );
        assert!(matches!(call("bad"), Err(AppError::Provider { .. })));
        assert!(matches!(
            call("slow"),
            Err(AppError::ProviderUnavailable { .. })
        ));
        assert!(matches!(
            call("down"),
            Err(AppError::ProviderUnavailable { .. })
        ));
    }

    #[test]
    fn end_session_invalidates_the_token_and_accepts_an_already_dead_one() {
        let (p, cfg) = platform(|req| match bearer(req) {
            Some("Bearer live") => answer(200, json!({"IsPosted": true})),
            Some("Bearer dead") => {
                answer(401, lr_error(906, "The provided access token is invalid"))
            }
            Some("Bearer weird") => answer(200, json!({"IsPosted": false})),
            _ => answer(
                403,
                lr_error(901, "The provided LoginRadius API key is invalid"),
            ),
        });
        let c = lr(&cfg);
        block_on(end_session(&p, c, "live")).unwrap();
        assert_eq!(
            p.http.calls.borrow()[0].url,
            "http://127.0.0.1:7002/identity/v2/auth/access_token/invalidate?apikey=k%26y%3D1&preventRefresh=true"
        );
        assert_eq!(bearer(&p.http.calls.borrow()[0]), Some("Bearer live"));
        block_on(end_session(&p, c, "dead")).unwrap();
        assert!(matches!(
            block_on(end_session(&p, c, "weird")),
            Err(AppError::Provider { .. })
        ));
        assert!(matches!(
            block_on(end_session(&p, c, "other")),
            Err(AppError::Provider { .. })
        ));
    }
}
