//! `POST /oauth/revoke` (RFC 7009) and `POST /oauth/introspect` (RFC 7662, confidential
//! clients). Refresh tokens are revoked with their whole family; access tokens are
//! short-lived JWTs that end at `exp` (revocation answers 200 for them, as for unknown tokens).

use super::{authenticate, known_client, no_store_json, presented_client, Ctx, Form};
use crate::error::AppResult;
use crate::http::{Request, Response};
use crate::oauth::client::ClientType;
use crate::oauth::store::OAuthStore;
use crate::oauth::{tokens, OAuthError};
use crate::platform::Platform;
use serde_json::json;

async fn client<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    form: &Form,
) -> AppResult<crate::oauth::client::Client> {
    let presented = presented_client(req, form)?;
    let client = known_client(ctx, &presented.client_id)
        .await
        .map_err(|_| OAuthError::invalid_client(presented.basic))?;
    authenticate(&client, &presented)?;
    Ok(client)
}

pub async fn revoke<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Response> {
    let form = Form::parse(req)?;
    let client = client(ctx, req, &form).await?;
    let token = form.require("token")?;
    let hash = crate::crypto::sha256_b64url(token.as_bytes());
    if let Some((row, _, _)) = ctx.p.oauth().refresh_context(&hash).await? {
        // Only the client the token was issued to may revoke it (RFC 7009 section 2.1).
        if row.grant.client_id == client.id {
            ctx.p.oauth().revoke_family(&row.family).await?;
        }
    }
    Ok(no_store_json(&json!({})))
}

pub async fn introspect<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Response> {
    let form = Form::parse(req)?;
    let client = client(ctx, req, &form).await?;
    if client.kind != ClientType::Confidential {
        return Err(OAuthError::invalid_client(false).into());
    }
    let token = form.require("token")?;
    let now = ctx.p.now();
    if let Ok(c) = tokens::verify_client_access(ctx.cfg, ctx.p.sig(), token, now).await {
        return Ok(no_store_json(&json!({
            "active": true, "token_type": "Bearer", "scope": c.scope, "client_id": c.client_id,
            "sub": c.sub, "aud": c.aud, "iss": c.iss, "exp": c.exp, "iat": c.iat,
        })));
    }
    let hash = crate::crypto::sha256_b64url(token.as_bytes());
    if let Some((row, _, Some(user))) = ctx.p.oauth().refresh_context(&hash).await? {
        let live = row.used_at.is_none() && now < row.expires_at && user.active;
        if live && row.grant.client_id == client.id {
            return Ok(no_store_json(&json!({
                "active": true, "token_type": "refresh_token", "scope": row.grant.scope,
                "client_id": row.grant.client_id, "sub": row.grant.user_id,
                "exp": row.expires_at, "iat": row.created_at, "iss": ctx.cfg.public_url,
            })));
        }
    }
    Ok(no_store_json(&json!({ "active": false })))
}
