//! The OpenID Provider's routes: discovery, `/oauth/*`, the admin API of clients and the
//! person's own list of apps (`/auth/apps`). Protocol logic is in [`crate::oauth`].

mod admin;
mod apps;
mod authorize;
mod discovery;
mod logout;
mod register;
mod resource;
mod revoke;
mod token;
mod userinfo;

#[cfg(test)]
mod tests;

use super::Ctx;
use crate::error::{AppError, AppResult};
use crate::http::{Method, Request, Response};
use crate::oauth::client::Client;
use crate::oauth::store::OAuthStore;
use crate::oauth::OAuthError;
use crate::platform::Platform;

pub use admin::route as admin_route;
pub use resource::check as resource_check;

/// Paths of the OpenID Provider that proxy mode never forwards.
pub fn is_own_path(path: &str) -> bool {
    path.starts_with("/oauth/")
        || matches!(
            path,
            "/.well-known/openid-configuration"
                | "/.well-known/oauth-authorization-server"
                | "/.well-known/oauth-protected-resource"
        )
}

/// Routes of the OpenID Provider; `None` when the path is not one of them.
pub async fn route<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    segments: &[&str],
) -> Option<AppResult<Response>> {
    Some(match (req.method, segments) {
        (Method::Get, [".well-known", "openid-configuration"]) => Ok(discovery::document(ctx)),
        (Method::Get, [".well-known", "oauth-authorization-server"]) => {
            Ok(discovery::document(ctx))
        }
        (Method::Get, [".well-known", "oauth-protected-resource"]) => {
            discovery::protected_resource_metadata(ctx)
        }
        (Method::Get, ["oauth", "authorize"]) => authorize::get(ctx, req).await,
        (Method::Post, ["oauth", "authorize"]) => authorize::consent(ctx, req).await,
        (Method::Post, ["oauth", "token"]) => token::token(ctx, req).await,
        (Method::Get, ["oauth", "userinfo"]) => userinfo::userinfo(ctx, req).await,
        (Method::Post, ["oauth", "userinfo"]) => userinfo::userinfo(ctx, req).await,
        (Method::Post, ["oauth", "revoke"]) => revoke::revoke(ctx, req).await,
        (Method::Get, ["oauth", "end_session"]) => logout::ask(ctx, req).await,
        (Method::Post, ["oauth", "end_session"]) => logout::confirm(ctx, req).await,
        (Method::Post, ["oauth", "register"]) => register::register(ctx, req).await,
        (Method::Post, ["oauth", "introspect"]) => revoke::introspect(ctx, req).await,
        (Method::Options, ["oauth", "token"]) => Ok(preflight(req)),
        (Method::Options, ["oauth", "userinfo"]) => Ok(preflight(req)),
        (Method::Get, ["auth", "apps"]) => apps::list(ctx, req).await,
        (Method::Delete, ["auth", "apps", client_id]) => apps::revoke(ctx, req, client_id).await,
        (
            _,
            ["oauth", "authorize" | "token" | "userinfo" | "revoke" | "introspect" | "end_session"
            | "register"]
            | ["auth", "apps", ..],
        ) => Err(AppError::MethodNotAllowed),
        _ => return None,
    })
}

/// The client a request names, or `invalid_client`.
async fn known_client<P: Platform>(ctx: &Ctx<'_, P>, id: &str) -> AppResult<Client> {
    ctx.p
        .oauth()
        .get_client(id)
        .await?
        .ok_or_else(|| OAuthError::invalid_client(false).into())
}

/// How a client authenticated at the token, revocation or introspection endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    pub client_id: String,
    pub secret: Option<String>,
    /// Through `Authorization: Basic` (a failure then answers with a Basic challenge).
    pub basic: bool,
}

/// Reads `client_secret_basic` or `client_secret_post` (or a public client's bare
/// `client_id`). Both at once is refused (RFC 6749 section 2.3).
pub fn presented_client(req: &Request, form: &Form) -> Result<Presented, OAuthError> {
    let basic = req
        .header("authorization")
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"));
    if let Some((_, b64)) = basic {
        if form.get("client_secret").is_some() {
            return Err(OAuthError::invalid_request(
                "Use one client authentication method.",
            ));
        }
        let bad = || OAuthError::invalid_client(true);
        let raw = crate::b64::STANDARD.decode(b64.trim()).map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        let (id, secret) = raw.split_once(':').ok_or_else(bad)?;
        let dec = |s: &str| {
            url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let client_id = dec(id);
        if form.get("client_id").is_some_and(|f| f != client_id) {
            return Err(OAuthError::invalid_client(true));
        }
        return Ok(Presented {
            client_id,
            secret: Some(dec(secret)),
            basic: true,
        });
    }
    let client_id = form
        .get("client_id")
        .ok_or_else(|| OAuthError::invalid_client(false))?;
    Ok(Presented {
        client_id: client_id.to_string(),
        secret: form.get("client_secret").map(String::from),
        basic: false,
    })
}

/// Checks `presented` against `client`: a confidential client needs its secret; a public
/// client must not send one.
pub fn authenticate(client: &Client, presented: &Presented) -> Result<(), OAuthError> {
    use crate::oauth::client::ClientType;
    let ok = client.id == presented.client_id
        && match (client.kind, &presented.secret) {
            (ClientType::Confidential, Some(s)) => client.secret_matches(s),
            (ClientType::Public, None) => true,
            _ => false,
        };
    if ok {
        Ok(())
    } else {
        Err(OAuthError::invalid_client(presented.basic))
    }
}

/// A form body (`application/x-www-form-urlencoded`), each parameter at most once.
#[derive(Debug, Clone, Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(req: &Request) -> Result<Form, OAuthError> {
        let is_form = req
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        if !is_form {
            return Err(OAuthError::invalid_request(
                "The body must be application/x-www-form-urlencoded.",
            ));
        }
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (k, v) in url::form_urlencoded::parse(&req.body) {
            if pairs.iter().any(|(x, _)| *x == k) {
                return Err(OAuthError::invalid_request(format!(
                    "The parameter {k} was sent more than once."
                )));
            }
            pairs.push((k.into_owned(), v.into_owned()));
        }
        Ok(Form(pairs))
    }

    /// A parameter, if sent and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("{name} is required.")))
    }
}

/// A JSON answer of the token endpoint family: never cached.
pub fn no_store_json(value: &serde_json::Value) -> Response {
    no_store(Response::json(200, value))
}

/// `r`, never cached (RFC 6749 section 5.1).
pub fn no_store(mut r: Response) -> Response {
    r.set_header("cache-control", "no-store");
    r.set_header("pragma", "no-cache");
    r
}

/// Lets the browser at `origin` read `r` when the origin is one of `client`'s redirect URIs'.
pub fn cors_for(mut r: Response, req: &Request, client: &Client) -> Response {
    if let Some(origin) = req.header("origin") {
        if client.origins().iter().any(|o| o == origin) {
            r.set_header("access-control-allow-origin", origin);
            r.append_header("vary", "Origin");
        }
    }
    r
}

/// The CORS preflight of the token and userinfo endpoints. It grants nothing by itself: the
/// answer to the real request carries `Access-Control-Allow-Origin` only for the origins of
/// that client's redirect URIs (no credentials are ever allowed).
fn preflight(req: &Request) -> Response {
    let mut r = Response::new(204);
    if let Some(origin) = req.header("origin") {
        r.set_header("access-control-allow-origin", origin);
        r.set_header("access-control-allow-methods", "GET, POST");
        r.set_header(
            "access-control-allow-headers",
            "authorization, content-type, dpop",
        );
        r.set_header("access-control-max-age", "600");
        r.set_header("vary", "Origin");
    }
    r
}
