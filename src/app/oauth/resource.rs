//! Proxy mode as an OAuth protected resource (`RESOURCE_SERVER = "true"`), what MCP servers
//! need: a request whose `Authorization: Bearer` is an access token this provider issued for
//! this resource (`aud` = `PUBLIC_URL`, or a URL under it) goes to the origin; anything else
//! gets 401 with `WWW-Authenticate: Bearer resource_metadata=…` (RFC 9728 section 5.1), so a
//! client can find the authorization server, register and come back with a token.

use super::Ctx;
use crate::app::auth::bearer;
use crate::error::AppResult;
use crate::http::{Request, Response, Wants};
use crate::oauth::tokens;
use crate::platform::Platform;

/// Whether `aud` names this resource.
pub fn is_this_resource(public_url: &str, aud: &str) -> bool {
    aud == public_url
        || aud
            .strip_prefix(public_url)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// For a request that carries no first-party session or token: the identity headers for the
/// origin when its bearer token is an access token for this resource; otherwise the 401 that
/// points the client at the resource metadata.
pub async fn check<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
) -> AppResult<Result<Vec<(String, String)>, Response>> {
    let token = bearer(req);
    if let Some(token) = token {
        let now = ctx.p.now();
        if let Ok(c) = tokens::verify_client_access(ctx.cfg, ctx.p.sig(), token, now).await {
            if is_this_resource(&ctx.cfg.public_url, &c.aud) {
                return Ok(Ok(vec![
                    ("x-gatehouse-user".into(), c.sub),
                    ("x-gatehouse-client".into(), c.client_id),
                    ("x-gatehouse-scope".into(), c.scope),
                    ("x-gatehouse-jwt".into(), token.to_string()),
                ]));
            }
        }
    }
    let mut r = crate::error::AppError::Unauthorized(
        "A valid access token for this resource is required.".into(),
    )
    .into_response(Wants::Json);
    let mut challenge = format!(
        "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource\"",
        ctx.cfg.public_url
    );
    if token.is_some() {
        challenge.push_str(", error=\"invalid_token\"");
    }
    r.set_header("www-authenticate", &challenge);
    Ok(Err(r))
}
