//! `POST /oauth/token`: the authorization code grant and the refresh token grant (RFC 6749
//! sections 4.1.3 and 6, RFC 7636 section 4.6, OAuth 2.1's refresh-token rotation). Each
//! grant is two D1 round trips: read (client and user, or refresh token with both), then one
//! batch that spends or rotates and stores the new refresh token.

use super::{authenticate, cors_for, no_store, presented_client, Ctx, Form};
use crate::error::{AppError, AppResult};
use crate::http::{Request, Response};
use crate::oauth::client::Client;
use crate::oauth::code::{self, Grant};
use crate::oauth::store::{OAuthStore, RefreshRow};
use crate::oauth::{has_scope, tokens, OAuthError};
use crate::platform::Platform;
use crate::users::User;

/// How long a spent code is remembered past its expiry (clock differences between isolates).
const SPENT_MARGIN: i64 = 300;

pub async fn token<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Response> {
    let form = Form::parse(req)?;
    let presented = presented_client(req, &form)?;
    let (client, body) = match form.require("grant_type")? {
        "authorization_code" => code_grant(ctx, &form, &presented).await?,
        "refresh_token" => refresh_grant(ctx, &form, &presented).await?,
        _ => {
            return Err(OAuthError::unsupported_grant_type(
                "Use authorization_code or refresh_token.",
            )
            .into())
        }
    };
    let mut r = Response::new(200);
    r.set_header("content-type", "application/json");
    r.body = body.into_bytes();
    Ok(cors_for(no_store(r), req, &client))
}

/// The user may still get tokens from a grant made at `auth_time`.
fn user_still_allowed(
    user: Option<User>,
    client: &Client,
    auth_time: i64,
) -> Result<User, OAuthError> {
    match user {
        Some(u)
            if crate::oauth::grant_allowed(&u, client)
                && !crate::app::auth::revoked_by_time(auth_time, &u) =>
        {
            Ok(u)
        }
        _ => Err(OAuthError::invalid_grant(
            "The account behind this grant is no longer active.",
        )),
    }
}

async fn code_grant<P: Platform>(
    ctx: &Ctx<'_, P>,
    form: &Form,
    presented: &super::Presented,
) -> AppResult<(Client, String)> {
    let now = ctx.p.now();
    let raw_code = form.require("code")?;
    let contents = code::open(ctx.cfg, raw_code, now)?;
    let store = ctx.p.oauth();
    let (client, user) = store
        .client_and_user(&presented.client_id, &contents.grant.user_id)
        .await?;
    let client = client.ok_or(OAuthError::invalid_client(presented.basic))?;
    authenticate(&client, presented)?;
    if contents.grant.client_id != client.id {
        return Err(OAuthError::invalid_grant("This code was issued to another client.").into());
    }
    if form.get("redirect_uri") != Some(contents.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request.",
        )
        .into());
    }
    code::check_verifier(
        contents.code_challenge.as_deref(),
        form.get("code_verifier"),
    )?;
    let user = user_still_allowed(user, &client, contents.grant.auth_time)?;
    let hash = code::code_hash(raw_code);
    let refresh = has_scope(&contents.grant.scope, "offline_access")
        .then(|| new_refresh(ctx, &hash, contents.grant.clone(), now));
    let row = refresh.as_ref().map(|(_, row)| row);
    if !store
        .redeem_code(&hash, contents.exp + SPENT_MARGIN, row)
        .await?
    {
        // A replay: whoever holds this code now must not keep what it gave (RFC 6749
        // section 4.1.2). Access tokens are short-lived JWTs; the refresh tokens go.
        store.revoke_family(&hash).await?;
        ctx.p
            .log("gatehouse: an authorization code was replayed; its refresh tokens are revoked");
        return Err(OAuthError::invalid_grant("This code was already used.").into());
    }
    let body = respond(
        ctx,
        &client,
        &user,
        &contents.grant,
        contents.nonce.as_deref(),
        refresh.map(|r| r.0),
        now,
    )
    .await?;
    Ok((client, body))
}

/// A new refresh token of `family` for `grant`: the token, and its row.
fn new_refresh<P: Platform>(
    ctx: &Ctx<'_, P>,
    family: &str,
    grant: Grant,
    now: i64,
) -> (String, RefreshRow) {
    let token = crate::crypto::random_token();
    let row = RefreshRow {
        hash: crate::crypto::sha256_b64url(token.as_bytes()),
        family: family.to_string(),
        grant,
        created_at: now,
        expires_at: now + ctx.cfg.session_ttl as i64,
        used_at: None,
    };
    (token, row)
}

async fn refresh_grant<P: Platform>(
    ctx: &Ctx<'_, P>,
    form: &Form,
    presented: &super::Presented,
) -> AppResult<(Client, String)> {
    let now = ctx.p.now();
    let raw = form.require("refresh_token")?;
    let hash = crate::crypto::sha256_b64url(raw.as_bytes());
    let store = ctx.p.oauth();
    let invalid = || OAuthError::invalid_grant("The refresh token is invalid or was revoked.");
    let (row, client, user) = store.refresh_context(&hash).await?.ok_or_else(invalid)?;
    let client = client.ok_or_else(invalid)?;
    if client.id != presented.client_id {
        // Another client's token: refuse it like an unknown one.
        return Err(invalid().into());
    }
    authenticate(&client, presented)?;
    if row.used_at.is_some() {
        // Reuse of a rotated token: someone else holds a copy. End the whole family.
        store.revoke_family(&row.family).await?;
        ctx.p
            .log("gatehouse: a rotated refresh token was reused; its family is revoked");
        return Err(invalid().into());
    }
    if now >= row.expires_at {
        return Err(OAuthError::invalid_grant("The refresh token has expired.").into());
    }
    let user = user_still_allowed(user, &client, row.grant.auth_time)?;
    let mut grant = row.grant.clone();
    if let Some(scope) = form.get("scope") {
        // A narrower access token; the family keeps its grant (RFC 6749 section 6).
        if !scope.split(' ').all(|s| has_scope(&grant.scope, s)) {
            return Err(OAuthError::invalid_scope("The scope exceeds the original grant.").into());
        }
        grant.scope = crate::oauth::scope_list(scope).join(" ");
    }
    let (token, new_row) = new_refresh(ctx, &row.family, row.grant.clone(), now);
    if !store.rotate_refresh(&hash, &new_row, now).await? {
        store.revoke_family(&row.family).await?;
        return Err(invalid().into());
    }
    let body = respond(ctx, &client, &user, &grant, None, Some(token), now).await?;
    Ok((client, body))
}

async fn respond<P: Platform>(
    ctx: &Ctx<'_, P>,
    client: &Client,
    user: &User,
    grant: &Grant,
    nonce: Option<&str>,
    refresh: Option<String>,
    now: i64,
) -> AppResult<String> {
    let issued = tokens::issue(ctx.cfg, ctx.p.sig(), client, user, grant, nonce, now)
        .await
        .map_err(|e| AppError::Internal(format!("signing: {e}")))?;
    // Tokens are base64url and dots, scopes known words: nothing to escape.
    let mut body = format!(
        r#"{{"access_token":"{}","token_type":"Bearer","expires_in":{},"scope":"{}""#,
        issued.access_token, issued.expires_in, grant.scope
    );
    if let Some(id) = issued.id_token {
        body.push_str(&format!(r#","id_token":"{id}""#));
    }
    if let Some(r) = refresh {
        body.push_str(&format!(r#","refresh_token":"{r}""#));
    }
    body.push('}');
    Ok(body)
}
