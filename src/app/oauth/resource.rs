//! Proxy mode as an OAuth protected resource (`RESOURCE_SERVER = "true"`), what MCP servers
//! need: a request whose `Authorization: Bearer` is an access token this provider issued for
//! this resource (`aud` = `PUBLIC_URL`, or a URL under it) goes to the origin; anything else
//! gets 401 with `WWW-Authenticate: Bearer resource_metadata=…` (RFC 9728 section 5.1), so a
//! client can find the authorization server, register and come back with a token.

use super::Ctx;
use crate::app::auth::bearer;
use crate::app::proxy::Decision;
use crate::error::AppResult;
use crate::http::{Method, Request, Wants};
use crate::oauth::tokens;
use crate::platform::Platform;

/// Whether `aud` names this resource.
pub fn is_this_resource(public_url: &str, aud: &str) -> bool {
    aud == public_url
        || aud
            .strip_prefix(public_url)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The decision for a request that carries no first-party session or token.
pub async fn request<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    url: String,
) -> AppResult<Decision> {
    if let Some(token) = bearer(req) {
        let now = ctx.p.now();
        if let Ok(c) = tokens::verify_client_access(ctx.cfg, ctx.p.sig(), token, now).await {
            if is_this_resource(&ctx.cfg.public_url, &c.aud) {
                let mut headers = crate::app::proxy::origin_headers(ctx, req, true);
                headers.push(("x-gatehouse-user".into(), c.sub));
                headers.push(("x-gatehouse-client".into(), c.client_id));
                headers.push(("x-gatehouse-scope".into(), c.scope));
                headers.push(("x-gatehouse-jwt".into(), token.to_string()));
                return Ok(Decision::Forward {
                    url,
                    headers,
                    set_cookies: vec![],
                });
            }
        }
    } else if req.method == Method::Get && req.wants() == Wants::Html {
        // A person in a browser signs in as in plain proxy mode.
        return Ok(Decision::Respond(crate::app::proxy::unauthenticated(req)));
    }
    let mut r = crate::error::AppError::Unauthorized(
        "A valid access token for this resource is required.".into(),
    )
    .into_response(Wants::Json);
    let mut challenge = format!(
        "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource\"",
        ctx.cfg.public_url
    );
    if bearer(req).is_some() {
        challenge.push_str(", error=\"invalid_token\"");
    }
    r.set_header("www-authenticate", &challenge);
    Ok(Decision::Respond(r))
}
