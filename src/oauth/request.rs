//! The authorization request (RFC 6749 section 4.1.1, OpenID Connect Core 3.1.2.1, RFC 7636,
//! RFC 8707): parsed from the query (or the consent form, which carries it back), checked
//! against its client. Two kinds of failure: an unknown client or a redirect URI that is not
//! registered exactly is never redirected to ([`AuthRequest::check_redirect`], an error
//! page); everything else goes back to the client's redirect URI with `error`, `state` and
//! `iss` ([`AuthRequest::check`]).

use super::client::Client;
use super::code::check_challenge;
use super::OAuthError;

/// The parameters Gatehouse reads; anything else is ignored (RFC 6749 section 3.1).
const PARAMS: [&str; 12] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "login_hint",
    "resource",
];

/// An authorization request, as sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthRequest {
    /// Every known parameter that was present, in the order sent.
    pairs: Vec<(&'static str, String)>,
}

/// `prompt` values Gatehouse acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    None,
    Login,
    Consent,
}

/// A request that passed [`AuthRequest::check`].
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub scope: String,
    pub code_challenge: Option<String>,
    pub prompt: Option<Prompt>,
    pub max_age: Option<i64>,
    pub resource: Option<String>,
}

impl AuthRequest {
    /// Reads the known parameters of `pairs`; one sent twice is refused (RFC 6749 section 3.1).
    pub fn from_pairs<'a>(
        pairs: impl Iterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
    ) -> Result<AuthRequest, String> {
        let mut r = AuthRequest::default();
        for (k, v) in pairs {
            let Some(name) = PARAMS.iter().find(|p| **p == k) else {
                continue;
            };
            if r.get(name).is_some() {
                return Err(format!("The parameter {name} was sent more than once."));
            }
            if v.len() > 2000 {
                return Err(format!("The parameter {name} is too long."));
            }
            r.pairs.push((name, v.into_owned()));
        }
        Ok(r)
    }

    /// A parameter's value, if sent (an empty value counts as absent).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// The request as a query string, without `drop` (the login round trip drops
    /// `prompt=login` once the person has signed in again).
    pub fn to_query(&self, drop: &[&str]) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.pairs.iter().filter(|(k, _)| !drop.contains(k)) {
            s.append_pair(k, v);
        }
        s.finish()
    }

    /// The (name, value) pairs, for the consent form's hidden fields.
    pub fn pairs(&self) -> &[(&'static str, String)] {
        &self.pairs
    }

    /// The redirect URI, if it is registered for `client` exactly; the reason otherwise.
    /// Nothing may be redirected anywhere before this passes.
    pub fn check_redirect(&self, client: &Client) -> Result<String, String> {
        match self.get("redirect_uri") {
            None => Err("The request has no redirect_uri.".into()),
            Some(uri) if client.has_redirect_uri(uri) => Ok(uri.to_string()),
            Some(_) => Err("The redirect_uri is not registered for this app.".into()),
        }
    }

    /// Every check that can be answered at the redirect URI.
    pub fn check(
        &self,
        client: &Client,
        resource_server: Option<&str>,
    ) -> Result<Checked, OAuthError> {
        if self.get("response_type") != Some("code") {
            return Err(OAuthError::unsupported_response_type(
                "Only response_type=code is supported.",
            ));
        }
        let scope = super::scope_list(self.get("scope").unwrap_or("openid"));
        if let Some(bad) = scope.iter().find(|s| !client.settings.scopes.contains(s)) {
            return Err(OAuthError::invalid_scope(format!(
                "The scope {bad:?} is unknown or not allowed for this app."
            )));
        }
        let code_challenge = check_challenge(
            self.get("code_challenge"),
            self.get("code_challenge_method"),
        )?;
        if code_challenge.is_none() && client.kind == super::client::ClientType::Public {
            return Err(OAuthError::invalid_request(
                "PKCE (code_challenge with S256) is required for public clients.",
            ));
        }
        let prompt = match self.get("prompt") {
            None => None,
            Some("none") => Some(Prompt::None),
            Some("login") => Some(Prompt::Login),
            Some("consent") => Some(Prompt::Consent),
            Some(_) => {
                return Err(OAuthError::invalid_request(
                    "prompt must be one of none, login, consent.",
                ))
            }
        };
        let max_age = match self.get("max_age") {
            None => None,
            Some(s) => Some(s.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                OAuthError::invalid_request("max_age must be a number of seconds.")
            })?),
        };
        let resource = self.get("resource").map(String::from);
        if let Some(r) = &resource {
            check_resource(client, r, resource_server)?;
        }
        Ok(Checked {
            scope: scope.join(" "),
            code_challenge,
            prompt,
            max_age,
            resource,
        })
    }
}

/// RFC 8707: a resource the client may name — one of its registered resources, or, in
/// protected-resource mode, Gatehouse's own resource (`resource_server`) or a URL under it.
pub fn check_resource(
    client: &Client,
    resource: &str,
    resource_server: Option<&str>,
) -> Result<(), OAuthError> {
    let registered = client.settings.resources.iter().any(|r| r == resource);
    let ours = resource_server.is_some_and(|rs| {
        resource == rs
            || resource
                .strip_prefix(rs)
                .is_some_and(|rest| rest.starts_with('/') && !rest.contains(".."))
    });
    if registered || ours {
        Ok(())
    } else {
        Err(OAuthError::invalid_target(
            "This app may not ask for that resource.",
        ))
    }
}

/// `base` with `params` added to its query (RFC 6749 section 4.1.2: the redirect URI's own
/// query is kept).
pub fn redirect_with(base: &str, params: &[(&str, &str)]) -> String {
    let Ok(mut u) = url::Url::parse(base) else {
        return base.to_string();
    };
    {
        let mut q = u.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::client::{ClientInput, ClientType};
    use std::borrow::Cow;

    fn client(kind: &str) -> Client {
        let input = ClientInput::parse(&serde_json::json!({
            "name": "A", "type": kind, "redirect_uris": ["https://app.example/cb?x=1"],
            "resources": ["https://api.example"]}))
        .unwrap();
        Client::create(&crate::testing::test_config_with_rsa(), input, 1)
            .unwrap()
            .0
    }

    fn req(q: &str) -> Result<AuthRequest, String> {
        AuthRequest::from_pairs(url::form_urlencoded::parse(q.as_bytes()))
    }

    const OK: &str = "response_type=code&client_id=c&redirect_uri=https%3A%2F%2Fapp.example%2Fcb%3Fx%3D1&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&scope=openid+email&state=s";

    #[test]
    fn a_good_request_passes_and_round_trips() {
        let c = client("public");
        let r = req(&format!("{OK}&unknown=1")).unwrap();
        assert_eq!(r.check_redirect(&c).unwrap(), "https://app.example/cb?x=1");
        let checked = r.check(&c, None).unwrap();
        assert_eq!(checked.scope, "openid email");
        assert_eq!(req(&r.to_query(&[])).unwrap(), r);
        assert!(!r.to_query(&[]).contains("unknown"));
    }

    #[test]
    fn duplicates_and_bad_redirects_are_fatal() {
        assert!(req(&format!("{OK}&state=again")).is_err());
        let c = client("public");
        for q in [
            "client_id=c",
            "redirect_uri=https%3A%2F%2Fapp.example%2Fcb",
            "redirect_uri=https%3A%2F%2Fapp.example%2Fcb%3Fx%3D1%26y%3D2",
            "redirect_uri=https%3A%2F%2Fevil.example%2Fcb%3Fx%3D1",
        ] {
            assert!(req(q).unwrap().check_redirect(&c).is_err(), "{q}");
        }
    }

    #[test]
    fn public_clients_need_s256_pkce() {
        let c = client("public");
        let without = req(&OK
            .replace("&code_challenge=", "&x=")
            .replace("&code_challenge_method=S256", ""))
        .unwrap();
        assert_eq!(without.check(&c, None).unwrap_err().code, "invalid_request");
        let plain = req(&OK.replace("S256", "plain")).unwrap();
        assert_eq!(plain.check(&c, None).unwrap_err().code, "invalid_request");
        // A confidential client may leave PKCE out, never use plain.
        let conf = client("confidential");
        assert_eq!(conf.kind, ClientType::Confidential);
        assert!(without.check(&conf, None).is_ok());
        assert!(plain.check(&conf, None).is_err());
    }

    #[test]
    fn scopes_prompt_max_age_and_resources_are_checked() {
        let c = client("public");
        let with = |extra: &str| req(&format!("{OK}{extra}")).unwrap().check(&c, None);
        assert_eq!(
            req(&OK.replace("scope=openid+email", "scope=openid+admin"))
                .unwrap()
                .check(&c, None)
                .unwrap_err()
                .code,
            "invalid_scope"
        );
        assert_eq!(
            req(&OK.replace("response_type=code", "response_type=token"))
                .unwrap()
                .check(&c, None)
                .unwrap_err()
                .code,
            "unsupported_response_type"
        );
        assert_eq!(
            with("&prompt=select_account").unwrap_err().code,
            "invalid_request"
        );
        assert_eq!(with("&max_age=-1").unwrap_err().code, "invalid_request");
        assert_eq!(with("&prompt=none&max_age=0").unwrap().max_age, Some(0));
        assert!(with("&resource=https%3A%2F%2Fapi.example").is_ok());
        assert_eq!(
            with("&resource=https%3A%2F%2Fother.example")
                .unwrap_err()
                .code,
            "invalid_target"
        );
        let rs = Some("https://gh.example");
        let r = |res: &str| {
            req(&format!("{OK}&resource={}", urlencode(res)))
                .unwrap()
                .check(&c, rs)
        };
        assert!(r("https://gh.example").is_ok());
        assert!(r("https://gh.example/mcp").is_ok());
        assert!(r("https://gh.example.evil").is_err());
        assert!(r("https://gh.example/../x").is_err());
    }

    fn urlencode(s: &str) -> Cow<'_, str> {
        Cow::Owned(url::form_urlencoded::byte_serialize(s.as_bytes()).collect())
    }

    #[test]
    fn redirects_keep_the_registered_query() {
        assert_eq!(
            redirect_with(
                "https://app.example/cb?x=1",
                &[("code", "a b"), ("state", "s")]
            ),
            "https://app.example/cb?x=1&code=a+b&state=s"
        );
    }
}
