//! `GET /oauth/authorize` and the consent form's `POST /oauth/authorize`.
//!
//! A person who is not signed in goes to Gatehouse's own login page with this request as
//! `return_to` (a relative path): the login transaction carries it through the provider and
//! is bound to this browser by its cookie, and the browser comes back here signed in. A
//! third-party client then gets the consent page; consenting needs the session cookie and a
//! request from Gatehouse's own origin, like every account-changing action.

use super::Ctx;
use crate::cookies::SESSION;
use crate::error::{AppError, AppResult};
use crate::http::{Request, Response};
use crate::oauth::client::Client;
use crate::oauth::code::{self, Grant};
use crate::oauth::request::{redirect_with, AuthRequest, Checked, Prompt};
use crate::oauth::store::OAuthStore;
use crate::oauth::{has_scope, OAuthError};
use crate::pages::{esc, layout};
use crate::platform::Platform;
use crate::users::{User, UserStore};

/// The signed-in person of this browser's session cookie.
struct Person {
    user: User,
    sid: crate::ids::SessionId,
    auth_time: i64,
}

/// The session cookie's person: live in KV, active in D1, not revoked since.
async fn person<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Option<Person>> {
    let Some(raw) = ctx.jar().get(req, SESSION) else {
        return Ok(None);
    };
    let Some((sid, rec)) = ctx.sessions().lookup(&raw, ctx.p.now()).await? else {
        return Ok(None);
    };
    Ok(match ctx.p.users().get_user(&rec.user_id).await? {
        Some(u) if u.active && !crate::app::auth::revoked_by_time(rec.created_at, &u) => {
            Some(Person {
                user: u,
                sid,
                auth_time: rec.created_at,
            })
        }
        _ => None,
    })
}

/// The request's client and registered redirect URI; a failure here is an error page,
/// never a redirect.
async fn client_of<P: Platform>(ctx: &Ctx<'_, P>, ar: &AuthRequest) -> AppResult<(Client, String)> {
    let id = ar
        .get("client_id")
        .ok_or_else(|| AppError::BadRequest("The request names no client_id.".into()))?;
    let client =
        ctx.p.oauth().get_client(id).await?.ok_or_else(|| {
            AppError::BadRequest("This app is not registered with Gatehouse.".into())
        })?;
    let uri = ar.check_redirect(&client).map_err(AppError::BadRequest)?;
    Ok((client, uri))
}

/// An answer at the client's redirect URI (RFC 6749 section 4.1.2, RFC 9207's `iss`).
fn back_to_client(
    ctx_issuer: &str,
    uri: &str,
    ar: &AuthRequest,
    result: Result<&str, &OAuthError>,
) -> Response {
    let mut params: Vec<(&str, &str)> = match result {
        Ok(code) => vec![("code", code)],
        Err(e) => vec![("error", e.code), ("error_description", &e.description)],
    };
    if let Some(state) = ar.get("state") {
        params.push(("state", state));
    }
    params.push(("iss", ctx_issuer));
    Response::redirect(&redirect_with(uri, &params))
}

/// `GET /oauth/authorize`.
pub async fn get<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Response> {
    let ar = AuthRequest::from_pairs(req.url.query_pairs()).map_err(AppError::BadRequest)?;
    let (client, uri) = client_of(ctx, &ar).await?;
    let issuer = &ctx.cfg.public_url;
    let checked = match ar.check(&client, resource_server(ctx)) {
        Ok(c) => c,
        Err(e) => return Ok(back_to_client(issuer, &uri, &ar, Err(&e))),
    };
    let me = person(ctx, req).await?;
    let now = ctx.p.now();
    let stale = |p: &Person| {
        checked.prompt == Some(Prompt::Login)
            || checked.max_age.is_some_and(|m| now - p.auth_time > m)
    };
    let Some(me) = me.filter(|p| !stale(p)) else {
        if checked.prompt == Some(Prompt::None) {
            return Ok(back_to_client(
                issuer,
                &uri,
                &ar,
                Err(&OAuthError::login_required()),
            ));
        }
        return Ok(to_login(&ar));
    };
    if !crate::oauth::grant_allowed(&me.user, &client) {
        let e = OAuthError::access_denied("This account may not use this app.");
        return Ok(back_to_client(issuer, &uri, &ar, Err(&e)));
    }
    if needs_consent(ctx, &client, &me, &checked).await? {
        if checked.prompt == Some(Prompt::None) {
            let e = OAuthError::consent_required();
            return Ok(back_to_client(issuer, &uri, &ar, Err(&e)));
        }
        return Ok(consent_page(&client, &uri, &ar, &checked, &me.user));
    }
    Ok(issue_code(ctx, &ar, &client, &uri, &checked, &me))
}

/// Sends the browser through Gatehouse's login page and back. `prompt` and `max_age` are
/// left out of the way back: the person has just signed in, which satisfies both.
fn to_login(ar: &AuthRequest) -> Response {
    let back = format!("/oauth/authorize?{}", ar.to_query(&["prompt", "max_age"]));
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", &back)
        .finish();
    Response::redirect(&format!("/auth/login?{q}"))
}

fn resource_server<'a, P: Platform>(ctx: &Ctx<'a, P>) -> Option<&'a str> {
    ctx.cfg
        .resource_server
        .then_some(ctx.cfg.public_url.as_str())
}

/// Whether the person must be asked: a third-party client, with `prompt=consent` or a scope
/// they have not agreed to yet.
async fn needs_consent<P: Platform>(
    ctx: &Ctx<'_, P>,
    client: &Client,
    me: &Person,
    checked: &Checked,
) -> AppResult<bool> {
    if client.settings.first_party {
        return Ok(false);
    }
    if checked.prompt == Some(Prompt::Consent) {
        return Ok(true);
    }
    let agreed = ctx
        .p
        .oauth()
        .consent(me.user.id.as_str(), &client.id)
        .await?;
    Ok(match agreed {
        None => true,
        Some(agreed) => !checked.scope.split(' ').all(|s| has_scope(&agreed, s)),
    })
}

fn issue_code<P: Platform>(
    ctx: &Ctx<'_, P>,
    ar: &AuthRequest,
    client: &Client,
    uri: &str,
    checked: &Checked,
    me: &Person,
) -> Response {
    let grant = Grant {
        client_id: client.id.clone(),
        user_id: me.user.id.as_str().to_string(),
        sid: me.sid.as_str().to_string(),
        scope: checked.scope.clone(),
        auth_time: me.auth_time,
        resource: checked.resource.clone(),
    };
    let code = code::seal(
        ctx.cfg,
        grant,
        uri,
        ar.get("nonce").map(String::from),
        checked.code_challenge.clone(),
        ctx.p.now(),
    );
    back_to_client(&ctx.cfg.public_url, uri, ar, Ok(&code))
}

/// `POST /oauth/authorize`: the consent form. Session cookie and own origin, then every
/// check of the request again (the form is only a carrier).
pub async fn consent<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Response> {
    crate::app::check_own_origin(ctx.cfg, req)?;
    let me = person(ctx, req).await?.ok_or_else(|| {
        AppError::Unauthorized("Your session has ended. Please sign in again.".into())
    })?;
    let ar = AuthRequest::from_pairs(url::form_urlencoded::parse(&req.body))
        .map_err(AppError::BadRequest)?;
    let (client, uri) = client_of(ctx, &ar).await?;
    let issuer = &ctx.cfg.public_url;
    let checked = match ar.check(&client, resource_server(ctx)) {
        Ok(c) => c,
        Err(e) => return Ok(back_to_client(issuer, &uri, &ar, Err(&e))),
    };
    let decision = url::form_urlencoded::parse(&req.body)
        .find(|(k, _)| k == "decision")
        .map(|(_, v)| v.into_owned());
    if decision.as_deref() != Some("allow") || !crate::oauth::grant_allowed(&me.user, &client) {
        let e = OAuthError::access_denied("The person did not allow access.");
        return Ok(back_to_client(issuer, &uri, &ar, Err(&e)));
    }
    ctx.p
        .oauth()
        .save_consent(me.user.id.as_str(), &client.id, &checked.scope, ctx.p.now())
        .await?;
    let detail = serde_json::json!({"client_id": client.id, "scope": checked.scope});
    ctx.event(req, Some(&me.user.id), "app_consented", detail)
        .await;
    let mut r = issue_code(ctx, &ar, &client, &uri, &checked, &me);
    r.status = 303;
    Ok(r)
}

/// What each scope lets the app see, in plain words.
fn scope_line(scope: &str) -> &'static str {
    match scope {
        "openid" => "Know who you are (your Gatehouse account id)",
        "profile" => "See your name and picture",
        "email" => "See your email address",
        "offline_access" => "Stay signed in when you are not using it",
        "roles" => "See your roles",
        _ => "",
    }
}

/// The consent page. Its CSP lets the form lead to the client's redirect URI too (browsers
/// apply `form-action` to the redirect that follows the post).
fn consent_page(
    client: &Client,
    uri: &str,
    ar: &AuthRequest,
    checked: &Checked,
    user: &User,
) -> Response {
    let items: String = checked
        .scope
        .split(' ')
        .map(|s| format!("<li>{}</li>", esc(scope_line(s))))
        .collect();
    let hidden: String = ar
        .pairs()
        .iter()
        .map(|(k, v)| format!("<input type=\"hidden\" name=\"{k}\" value=\"{}\">", esc(v)))
        .collect();
    let target = url::Url::parse(uri).ok();
    let host = target
        .as_ref()
        .and_then(|u| u.host_str().map(String::from))
        .unwrap_or_else(|| uri.to_string());
    let who = user
        .email
        .as_deref()
        .or(user.name.as_deref())
        .unwrap_or(user.id.as_str());
    let body = format!(
        "<h1>Allow {name}?</h1><p><strong>{name}</strong> ({host}) wants to use your account \
<strong>{who}</strong> to:</p><ul>{items}</ul>\
<form method=\"post\" action=\"/oauth/authorize\">{hidden}\
<button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\
<p></p><button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>\
<p class=\"muted\">You can withdraw this later in your account's list of apps.</p>",
        name = esc(&client.name),
        host = esc(&host),
        who = esc(who),
    );
    let mut r = Response::html(200, layout("Allow access", &body));
    let source = match &target {
        Some(u) if matches!(u.scheme(), "http" | "https") => u.origin().ascii_serialization(),
        Some(u) => format!("{}:", u.scheme()),
        None => String::new(),
    };
    let csp = crate::pages::CSP.replace(
        "form-action 'self'",
        &format!("form-action 'self' {source}"),
    );
    r.set_header("content-security-policy", &csp);
    r.set_header("cache-control", "no-store");
    r
}
