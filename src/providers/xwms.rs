//! The `xwms` kind (docs/vendors.md, "XWMS"): `POST {api_url}sign-token` with the
//! client credentials and the return URL gives the XWMS login page (`data.url`); the browser
//! comes back with `?token=`, which `POST {api_url}sign-token-verify` turns into the user
//! (`status == "success"`, user in `data`). The identity is `(xwms:{domain}, sub)`.
//!
//! XWMS has no OAuth `state`: the return URL carries the login transaction as `gh_state`
//! ([`super::callback_url`]), which the callback checks against the transaction cookie before
//! the token is looked at.

use super::fetch::{call_json, call_ok};
use super::{rejected, require_secret, Flow};
use crate::crypto::Secret;
use crate::error::AppResult;
use crate::http::Request;
use crate::platform::{Outbound, Platform};
use crate::urls::api_base;
use crate::users::Profile;
use serde_json::{json, Map, Value};

/// XWMS's API base.
pub const DEFAULT_API_URL: &str = "https://api.xwms.com/";

struct Settings {
    client_id: String,
    domain: String,
    api_url: Option<String>,
    display_name: Option<String>,
}

impl Settings {
    fn read(v: &Value) -> Result<Settings, String> {
        let f = crate::fields::Fields::strict(
            v,
            &["kind", "client_id", "domain", "api_url", "display_name"],
        )?;
        Ok(Settings {
            client_id: f.str("client_id")?,
            domain: f.str("domain")?,
            api_url: f.opt_str("api_url")?,
            display_name: f.opt_str("display_name")?,
        })
    }
}

/// Settings of an `xwms` provider.
#[derive(Debug, Clone)]
pub struct XwmsConfig {
    pub name: String,
    pub client_id: String,
    /// The client's domain at XWMS; part of the identity issuer.
    pub domain: String,
    pub client_secret: Secret,
    /// API base, always ending in `/`.
    pub api_url: String,
    pub display_name: String,
}

impl XwmsConfig {
    pub fn parse(name: &str, v: &Value, secret: Option<Secret>) -> Result<XwmsConfig, String> {
        let s = Settings::read(v)?;
        if s.client_id.trim().is_empty() {
            return Err("client_id must not be empty".into());
        }
        if s.domain.is_empty() || s.domain.chars().any(|c| c.is_whitespace()) {
            return Err("domain must be a non-empty name without spaces".into());
        }
        Ok(XwmsConfig {
            name: name.into(),
            api_url: api_base("api_url", s.api_url.as_deref().unwrap_or(DEFAULT_API_URL))?,
            client_secret: require_secret(name, secret)?,
            display_name: s.display_name.unwrap_or_else(|| name.to_string()),
            client_id: s.client_id,
            domain: s.domain,
        })
    }

    /// The stable issuer of this client's identities.
    pub fn issuer(&self) -> String {
        format!("xwms:{}", self.domain)
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.api_url)
    }
}

/// A vendor's `message`, shortened, for the log line (never shown to the client).
fn vendor_message(body: &Value) -> String {
    body.get("message")
        .and_then(|m| m.as_str())
        .map(|m| format!(": {}", m.chars().take(200).collect::<String>()))
        .unwrap_or_default()
}

/// The login page URL of a `sign-token` answer.
pub fn login_url(name: &str, body: &Value) -> AppResult<String> {
    if let Some(status) = body.get("status").and_then(|s| s.as_str()) {
        if status != "success" {
            return Err(rejected(
                name,
                format!("sign-token: status {status:?}{}", vendor_message(body)),
            ));
        }
    }
    let url = body
        .pointer("/data/url")
        .and_then(|u| u.as_str())
        .ok_or_else(|| rejected(name, "sign-token: answer without data.url"))?;
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "https" | "http") => Ok(u.into()),
        _ => Err(rejected(name, "sign-token: data.url is not an http(s) URL")),
    }
}

/// Asks XWMS for a login page that returns to this transaction's callback URL.
pub async fn begin<P: Platform>(p: &P, c: &XwmsConfig, flow: &Flow<'_>) -> AppResult<String> {
    let name = c.name.as_str();
    let body = json!({
        "client_id": c.client_id,
        "domain": c.domain,
        "client_secret": c.client_secret.expose(),
        "redirect_url": flow.callback_url(),
    });
    let answer = call_ok(
        p.http(),
        name,
        Outbound::post_json(c.endpoint("sign-token"), &body),
    )
    .await?;
    login_url(name, &answer)
}

fn text(m: &Map<String, Value>, k: &str) -> Option<String> {
    m.get(k)
        .and_then(|v| v.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// Turns a `sign-token-verify` answer into a profile: only HTTP 2xx with `status ==
/// "success"` and a `data` object with a `sub` (a string, or a number as some XWMS SDKs send
/// it) is a sign-in; everything else is a provider error.
pub fn profile_from_verify(
    name: &str,
    issuer: &str,
    http_status: u16,
    body: &Value,
) -> AppResult<Profile> {
    let status = body.get("status").and_then(|s| s.as_str());
    if !(200..300).contains(&http_status) || status != Some("success") {
        return Err(rejected(
            name,
            format!(
                "sign-token-verify: HTTP {http_status}, status {:?}{}",
                status.unwrap_or("(none)"),
                vendor_message(body)
            ),
        ));
    }
    let data = body
        .get("data")
        .and_then(|d| d.as_object())
        .ok_or_else(|| rejected(name, "sign-token-verify: success without a data object"))?;
    let sub = match data.get("sub") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        // XWMS's SDKs send numeric ids; only whole numbers, so that 4711 and 4711.0 are one id.
        Some(Value::Number(n)) if n.as_u64().is_some() => n.to_string(),
        _ => return Err(rejected(name, "sign-token-verify: user without sub")),
    };
    let full_name = text(data, "name").or_else(|| {
        let given = text(data, "given_name").unwrap_or_default();
        let family = text(data, "family_name").unwrap_or_default();
        Some(format!("{given} {family}").trim().to_string()).filter(|n| !n.is_empty())
    });
    Ok(Profile {
        issuer: issuer.to_string(),
        sub,
        provider: name.into(),
        email: text(data, "email"),
        email_verified: data.get("email_verified").and_then(|v| v.as_bool()),
        name: Some(full_name.unwrap_or_else(|| "User".into())),
        picture: text(data, "picture"),
        raw: Value::Object(data.clone()),
        vendor_logout: None,
    })
}

/// Verifies the callback's token with XWMS. The login transaction (`gh_state` and its
/// cookie) was checked by the caller before this runs.
pub async fn complete<P: Platform>(
    p: &P,
    c: &XwmsConfig,
    req: &Request,
    _flow: &Flow<'_>,
) -> AppResult<Profile> {
    let name = c.name.as_str();
    let token = super::query_token(req, super::MAX_QUERY_TOKEN_LEN)?;
    let body = json!({
        "token": token,
        "client_id": c.client_id,
        "domain": c.domain,
        "client_secret": c.client_secret.expose(),
    });
    let (status, answer) = call_json(
        p.http(),
        name,
        Outbound::post_json(c.endpoint("sign-token-verify"), &body),
    )
    .await?;
    profile_from_verify(name, &c.issuer(), status, &answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::error::AppError;
    use crate::http::Method;
    use crate::platform::{FetchError, Inbound};
    use crate::testing::{block_on, test_env, TestPlatform};
    use crate::txn::{LoginTxn, Purpose};

    const ISSUER: &str = "xwms:app.example.test";

    fn verify(status: u16, body: Value) -> AppResult<Profile> {
        profile_from_verify("xw", ISSUER, status, &body)
    }

    fn reason(r: AppResult<Profile>) -> String {
        match r {
            Err(AppError::Provider { provider, reason }) => {
                assert_eq!(provider, "xw");
                reason
            }
            other => panic!("expected a provider error, got {other:?}"),
        }
    }

    #[test]
    fn success_gives_the_user_of_data() {
        let p = verify(
            200,
            json!({"status": "success", "message": "Successful authenticated", "data": {
                "sub": "xwms-user-1234", "name": "Jane Doe", "given_name": "Jane",
                "family_name": "Doe", "email": "jane@example.com",
                "picture": "https://img.example/j.png", "email_verified": true,
            }}),
        )
        .unwrap();
        assert_eq!(p.issuer, ISSUER);
        assert_eq!(p.sub, "xwms-user-1234");
        assert_eq!(p.provider, "xw");
        assert_eq!(p.name.as_deref(), Some("Jane Doe"));
        assert_eq!(p.email.as_deref(), Some("jane@example.com"));
        assert_eq!(p.email_verified, Some(true));
        assert_eq!(p.picture.as_deref(), Some("https://img.example/j.png"));
        assert_eq!(p.raw["sub"], "xwms-user-1234");
        assert_eq!(p.vendor_logout, None);
    }

    #[test]
    fn name_falls_back_to_given_family_then_user() {
        let name = |data: Value| {
            verify(200, json!({"status": "success", "data": data}))
                .unwrap()
                .name
                .unwrap()
        };
        assert_eq!(
            name(json!({"sub": "1", "name": "", "given_name": "Jane", "family_name": "Doe"})),
            "Jane Doe"
        );
        assert_eq!(name(json!({"sub": "1", "given_name": "Jane"})), "Jane");
        assert_eq!(name(json!({"sub": "1", "family_name": "Doe"})), "Doe");
        assert_eq!(
            name(json!({"sub": "1", "given_name": " ", "family_name": null})),
            "User"
        );
        assert_eq!(name(json!({"sub": "1"})), "User");
    }

    #[test]
    fn numeric_sub_is_kept_as_its_decimal_string() {
        let p = verify(200, json!({"status": "success", "data": {"sub": 4711}})).unwrap();
        assert_eq!(p.sub, "4711");
        assert_eq!(p.email, None);
        assert_eq!(p.email_verified, None);
    }

    #[test]
    fn any_other_status_is_a_provider_error() {
        for (http, body) in [
            (
                400,
                json!({"status": "error", "message": "Invalid or expired token."}),
            ),
            (200, json!({"status": "failed", "data": {"sub": "1"}})),
            (200, json!({"status": "Success", "data": {"sub": "1"}})),
            (200, json!({"data": {"sub": "1"}})),
            (401, json!({"status": "success", "data": {"sub": "1"}})),
            (200, json!("success")),
        ] {
            let r = reason(verify(http, body.clone()));
            assert!(r.starts_with("sign-token-verify: HTTP"), "{body}: {r}");
        }
        let r = reason(verify(
            400,
            json!({"status": "error", "message": "Invalid or expired token."}),
        ));
        assert!(
            r.contains("\"error\"") && r.contains("Invalid or expired"),
            "{r}"
        );
    }

    #[test]
    fn missing_data_or_sub_is_a_provider_error() {
        for body in [
            json!({"status": "success"}),
            json!({"status": "success", "data": []}),
            json!({"status": "success", "data": {"email": "a@b"}}),
            json!({"status": "success", "data": {"sub": ""}}),
            json!({"status": "success", "data": {"sub": null}}),
            json!({"status": "success", "data": {"sub": {"id": 1}}}),
        ] {
            reason(verify(200, body));
        }
    }

    #[test]
    fn login_url_needs_an_http_url_in_data() {
        assert_eq!(
            login_url(
                "xw",
                &json!({"data": {"url": "https://xwms.example/login/abc"}})
            )
            .unwrap(),
            "https://xwms.example/login/abc"
        );
        assert!(login_url(
            "xw",
            &json!({"status": "success", "data": {"url": "https://x/"}})
        )
        .is_ok());
        for body in [
            json!({}),
            json!({"data": {}}),
            json!({"data": {"url": 5}}),
            json!({"data": {"url": "javascript:alert(1)"}}),
            json!({"data": {"url": "not a url"}}),
            json!({"status": "error", "message": "bad client", "data": {"url": "https://x/"}}),
        ] {
            assert!(
                matches!(login_url("xw", &body), Err(AppError::Provider { .. })),
                "{body}"
            );
        }
    }

    fn config(extra: &str) -> Result<XwmsConfig, String> {
        let v: Value = serde_json::from_str(&format!(
            r#"{{"kind":"xwms","client_id":"cid","domain":"app.example.test"{extra}}}"#
        ))
        .unwrap();
        XwmsConfig::parse("xw", &v, Some(Secret::new("s3cret")))
    }

    #[test]
    fn settings_defaults_and_refusals() {
        let c = config("").unwrap();
        assert_eq!(c.api_url, DEFAULT_API_URL);
        assert_eq!(c.display_name, "xw");
        assert_eq!(c.issuer(), ISSUER);
        let c = config(r#","api_url":"http://127.0.0.1:9/x","display_name":"XWMS""#).unwrap();
        assert_eq!(c.api_url, "http://127.0.0.1:9/x/");
        assert_eq!(c.display_name, "XWMS");
        for bad in [
            r#","api_url":"ftp://x/""#,
            r#","api_url":"https://x/?a=1""#,
            r#","unknown":1"#,
        ] {
            assert!(config(bad).is_err(), "{bad}");
        }
        let v = json!({"kind": "xwms", "client_id": "c", "domain": "d"});
        let e = XwmsConfig::parse("my-xw", &v, None).unwrap_err();
        assert!(e.contains("PROVIDER_MY_XW_SECRET"), "{e}");
        let v = json!({"kind": "xwms", "client_id": "c", "domain": "a b"});
        assert!(XwmsConfig::parse("xw", &v, Some(Secret::new("s"))).is_err());
    }

    /// A platform whose outbound calls are answered by `answer` and recorded.
    fn platform(
        answer: impl Fn(&Outbound) -> Result<Inbound, FetchError> + 'static,
    ) -> (TestPlatform, Config) {
        let mut env = test_env();
        env.insert(
            "PROVIDERS".into(),
            r#"{"xw":{"kind":"xwms","client_id":"cid","domain":"app.example.test","api_url":"http://127.0.0.1:7001/api"}}"#.into(),
        );
        env.insert("PROVIDER_XW_SECRET".into(), "s3cret".into());
        (TestPlatform::new(answer), Config::from_env(&env).unwrap())
    }

    fn xw(cfg: &Config) -> &XwmsConfig {
        match &cfg.providers["xw"] {
            super::super::ProviderConfig::Xwms(c) => c,
            other => panic!("{other:?}"),
        }
    }

    fn ok(body: Value) -> Result<Inbound, FetchError> {
        Ok(Inbound {
            status: 200,
            body: body.to_string().into_bytes(),
        })
    }

    fn sent_json(o: &Outbound) -> Value {
        serde_json::from_slice(o.body.as_deref().unwrap()).unwrap()
    }

    #[test]
    fn begin_posts_the_credentials_and_the_state_carrying_return_url() {
        let (p, cfg) = platform(|_| ok(json!({"data": {"url": "https://xwms.example/l/1"}})));
        let txn = LoginTxn::new("xw", Default::default(), Purpose::SignIn, 0);
        let url = block_on(begin(&p, xw(&cfg), &txn.flow(&cfg))).unwrap();
        assert_eq!(url, "https://xwms.example/l/1");
        let calls = p.http.calls.borrow();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].method, "POST");
        assert_eq!(calls[0].url, "http://127.0.0.1:7001/api/sign-token");
        assert_eq!(
            sent_json(&calls[0]),
            json!({
                "client_id": "cid", "domain": "app.example.test", "client_secret": "s3cret",
                "redirect_url": format!("http://127.0.0.1:8787/auth/callback/xw?gh_state={}", txn.state),
            })
        );
    }

    #[test]
    fn complete_verifies_the_token_once_and_maps_failures() {
        let (p, cfg) = platform(|req| {
            let body = sent_json(req);
            match body["token"].as_str() {
                Some("good") => ok(json!({"status": "success", "data": {"sub": "u1"}})),
                Some("slow") => Err(FetchError::Timeout),
                Some("down") => Ok(Inbound {
                    status: 503,
                    body: b"<html>".to_vec(),
                }),
                Some("garbled") => Ok(Inbound {
                    status: 200,
                    body: b"{\"status\":".to_vec(),
                }),
                _ => Ok(Inbound {
                    status: 400,
                    body: json!({"status": "error", "message": "Invalid or expired token."})
                        .to_string()
                        .into_bytes(),
                }),
            }
        });
        let txn = LoginTxn::new("xw", Default::default(), Purpose::SignIn, 0);
        let call = |token: &str| {
            let req = Request::new(
                Method::Get,
                &format!("http://127.0.0.1:8787/auth/callback/xw?gh_state=s&token={token}"),
            );
            block_on(complete(&p, xw(&cfg), &req, &txn.flow(&cfg)))
        };
        let profile = call("good").unwrap();
        assert_eq!(
            (profile.issuer.as_str(), profile.sub.as_str()),
            (ISSUER, "u1")
        );
        {
            let calls = p.http.calls.borrow();
            assert_eq!(calls[0].url, "http://127.0.0.1:7001/api/sign-token-verify");
            assert_eq!(
                sent_json(&calls[0]),
                json!({"token": "good", "client_id": "cid", "domain": "app.example.test", "client_secret": "s3cret"})
            );
        }
        assert!(matches!(call("used"), Err(AppError::Provider { .. })));
        assert!(matches!(call("garbled"), Err(AppError::Provider { .. })));
        assert!(matches!(
            call("slow"),
            Err(AppError::ProviderUnavailable { .. })
        ));
        assert!(matches!(
            call("down"),
            Err(AppError::ProviderUnavailable { .. })
        ));
        let calls_before = p.http.calls.borrow().len();
        let no_token = Request::new(
            Method::Get,
            "http://127.0.0.1:8787/auth/callback/xw?gh_state=s&token=",
        );
        assert!(matches!(
            block_on(complete(&p, xw(&cfg), &no_token, &txn.flow(&cfg))),
            Err(AppError::BadRequest(_))
        ));
        assert_eq!(
            p.http.calls.borrow().len(),
            calls_before,
            "no vendor call without a token"
        );
    }
}
