//! Discovery (OpenID Connect Discovery 1.0, RFC 8414) and, in protected-resource mode, the
//! resource's own metadata (RFC 9728).

use super::Ctx;
use crate::http::Response;
use crate::jwt::Alg;
use crate::platform::Platform;
use serde_json::json;

/// The discovery document with `{B}` for `PUBLIC_URL` and `{A}` for the ID token algorithms:
/// one string, not a `json!` of thirty members (which costs kilobytes of the bundle).
const DISCOVERY: &str = r#"{"issuer":"{B}","authorization_endpoint":"{B}/oauth/authorize","token_endpoint":"{B}/oauth/token","userinfo_endpoint":"{B}/oauth/userinfo","jwks_uri":"{B}/.well-known/jwks.json","revocation_endpoint":"{B}/oauth/revoke","introspection_endpoint":"{B}/oauth/introspect","end_session_endpoint":"{B}/oauth/end_session",{R}"scopes_supported":["openid","profile","email","offline_access","roles"],"response_types_supported":["code"],"response_modes_supported":["query"],"grant_types_supported":["authorization_code","refresh_token"],"subject_types_supported":["public"],"id_token_signing_alg_values_supported":[{A}],"token_endpoint_auth_methods_supported":["client_secret_basic","client_secret_post","none"],"revocation_endpoint_auth_methods_supported":["client_secret_basic","client_secret_post","none"],"introspection_endpoint_auth_methods_supported":["client_secret_basic","client_secret_post"],"code_challenge_methods_supported":["S256"],"prompt_values_supported":["none","login","consent"],"claims_supported":["sub","iss","aud","exp","iat","auth_time","nonce","azp","sid","at_hash","name","picture","updated_at","email","email_verified"],"authorization_response_iss_parameter_supported":true,"claims_parameter_supported":false,"request_parameter_supported":false,"request_uri_parameter_supported":false}"#;

/// `GET /.well-known/openid-configuration` (also at `/.well-known/oauth-authorization-server`).
pub fn document<P: Platform>(ctx: &Ctx<'_, P>) -> Response {
    let algs: Vec<String> = [Alg::Rs256, Alg::EdDsa]
        .into_iter()
        .filter(|a| ctx.cfg.key_for(*a).is_some())
        .map(|a| format!("\"{}\"", a.name()))
        .collect();
    let registration = if ctx.cfg.dynamic_registration {
        "\"registration_endpoint\":\"{B}/oauth/register\","
    } else {
        ""
    };
    // PUBLIC_URL is a parsed URL: no quote or backslash to escape.
    let body = DISCOVERY
        .replace("{R}", registration)
        .replace("{A}", &algs.join(","))
        .replace("{B}", &ctx.cfg.public_url);
    let mut r = Response::new(200);
    r.set_header("content-type", "application/json");
    r.body = body.into_bytes();
    public(r)
}

/// `GET /.well-known/oauth-protected-resource` (RFC 9728): Gatehouse guards `PUBLIC_URL`
/// and is its authorization server. 404 unless `RESOURCE_SERVER` is on.
pub fn protected_resource_metadata<P: Platform>(
    ctx: &Ctx<'_, P>,
) -> crate::error::AppResult<Response> {
    if !ctx.cfg.resource_server {
        return Err(crate::error::AppError::BadRequest(
            "This deployment is not a protected resource (RESOURCE_SERVER is off).".into(),
        ));
    }
    let base = &ctx.cfg.public_url;
    Ok(public(Response::json(
        200,
        &json!({
            "resource": base,
            "authorization_servers": [base],
            "scopes_supported": crate::oauth::SCOPES,
            "bearer_methods_supported": ["header"],
        }),
    )))
}

/// A public document any origin may read (it carries no credentials and no personal data).
fn public(mut r: Response) -> Response {
    r.set_header("cache-control", "public, max-age=300");
    r.set_header("access-control-allow-origin", "*");
    r
}
