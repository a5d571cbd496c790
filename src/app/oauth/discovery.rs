//! Discovery (OpenID Connect Discovery 1.0, RFC 8414) and, in protected-resource mode, the
//! resource's own metadata (RFC 9728).

use super::Ctx;
use crate::http::Response;
use crate::jwt::Alg;
use crate::platform::Platform;
use serde_json::json;

/// `GET /.well-known/openid-configuration` (also at `/.well-known/oauth-authorization-server`).
pub fn document<P: Platform>(ctx: &Ctx<'_, P>) -> Response {
    let base = &ctx.cfg.public_url;
    let algs: Vec<&str> = [Alg::Rs256, Alg::EdDsa]
        .into_iter()
        .filter(|a| ctx.cfg.key_for(*a).is_some())
        .map(Alg::name)
        .collect();
    let mut doc = json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/oauth/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "userinfo_endpoint": format!("{base}/oauth/userinfo"),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "scopes_supported": crate::oauth::SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "azp", "sid", "at_hash", "name", "picture", "updated_at", "email", "email_verified"],
        "authorization_response_iss_parameter_supported": true,
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
    });
    if ctx.cfg.dynamic_registration {
        doc["registration_endpoint"] = json!(format!("{base}/oauth/register"));
    }
    public_json(doc)
}

/// `GET /.well-known/oauth-protected-resource` (RFC 9728): Gatehouse guards `PUBLIC_URL`
/// and is its authorization server.
pub fn protected_resource_metadata<P: Platform>(ctx: &Ctx<'_, P>) -> Response {
    let base = &ctx.cfg.public_url;
    public_json(json!({
        "resource": base,
        "authorization_servers": [base],
        "scopes_supported": crate::oauth::SCOPES,
        "bearer_methods_supported": ["header"],
    }))
}

/// A public document any origin may read (it carries no credentials and no personal data).
fn public_json(doc: serde_json::Value) -> Response {
    let mut r = Response::json(200, &doc);
    r.set_header("cache-control", "public, max-age=300");
    r.set_header("access-control-allow-origin", "*");
    r
}
