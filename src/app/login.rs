//! The sign-in flow: the login page, starting a provider's flow (login transaction, redirect),
//! and the callback (transaction check, provider verification, linking, new session,
//! cookies, audit event, redirect to `return_to`).

use super::auth::issue_for;
use super::Ctx;
use crate::cookies::{CookieJar, ACCESS, SESSION};
use crate::error::{AppError, AppResult};
use crate::http::{Request, Response};
use crate::platform::Platform;
use crate::sessions::{SessionRecord, Sessions};
use crate::txn::{self, LoginTxn};
use crate::users::User;
use crate::{linking, pages, providers, return_to};

pub(super) fn checked_return_to(
    cfg: &crate::config::Config,
    raw: Option<&str>,
) -> AppResult<String> {
    return_to::validate(cfg, raw)
        .map_err(|r| AppError::BadRequest(format!("return_to refused: {}.", r.0)))
}

/// `GET /auth/login[?provider=&return_to=]`.
pub async fn login<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Response> {
    let return_to = checked_return_to(ctx.cfg, req.query("return_to").as_deref())?;
    let Some(name) = req.query("provider") else {
        let list: Vec<pages::LoginOption> = ctx
            .cfg
            .providers
            .iter()
            .map(|(n, c)| pages::LoginOption {
                name: n.clone(),
                display: c.display_name().to_string(),
                email_form: c.is_magic_link(),
            })
            .collect();
        let mut r = Response::html(200, pages::login_page(&list, &return_to));
        r.set_header("cache-control", "no-store");
        return Ok(r);
    };
    let provider = ctx
        .cfg
        .providers
        .get(&name)
        .ok_or_else(|| AppError::BadRequest(format!("Unknown provider {name:?}.")))?;
    let link_user = super::identities::link_user_for_login(ctx, req, provider).await?;
    let mut t = LoginTxn::new(&name, return_to, link_user, ctx.p.now());
    t.register = match req.query("action").as_deref() {
        None | Some("login") => false,
        Some("register") => true,
        Some(other) => {
            return Err(AppError::BadRequest(format!(
                "Unknown action {other:?}: use login or register."
            )))
        }
    };
    let location = match providers::begin(ctx.p, ctx.cfg, &name, provider, &t).await? {
        providers::Begin::Redirect(location) => location,
        // Magic links: the transaction starts when an address is entered.
        providers::Begin::EmailForm => {
            let page = pages::magic_link_page(&name, provider.display_name(), &t.return_to);
            let mut r = Response::html(200, page);
            r.set_header("cache-control", "no-store");
            return Ok(r);
        }
    };
    let mut r = Response::redirect(&location);
    if provider.needs_transaction() {
        r.append_header("set-cookie", &txn::start(ctx.p.kv(), ctx.cfg, &t).await?);
    }
    Ok(r)
}

/// `GET /auth/callback/{name}`: every outcome clears the transaction cookie.
pub async fn callback<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    name: &str,
) -> AppResult<Response> {
    let provider = ctx.cfg.providers.get(name).ok_or(AppError::NotFound)?;
    let req = &providers::normalize_callback(req);
    match finish_sign_in(ctx, req, name, provider).await {
        Ok(mut r) => {
            r.append_header("set-cookie", &txn::clear_cookie(ctx.cfg));
            Ok(r)
        }
        Err(e) => {
            ctx.event(
                req,
                None,
                "sign_in_failed",
                serde_json::json!({"provider": name, "error": e.code()}),
            )
            .await;
            if let Some(line) = e.log_line() {
                ctx.p.log(&line);
            }
            let mut r = e.into_response(req.wants());
            r.append_header("set-cookie", &txn::clear_cookie(ctx.cfg));
            Ok(r)
        }
    }
}

async fn finish_sign_in<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    name: &str,
    provider: &providers::ProviderConfig,
) -> AppResult<Response> {
    let now = ctx.p.now();
    // Transaction-less kinds (passage) carry `return_to` in the query; refuse a bad one
    // before anything is verified or written.
    let query_return_to = match provider.needs_transaction() {
        true => None,
        false => Some(checked_return_to(
            ctx.cfg,
            req.query("return_to").as_deref(),
        )?),
    };
    let t = match provider.needs_transaction() {
        true => Some(
            txn::finish(
                ctx.p.kv(),
                ctx.cfg,
                req,
                providers::callback_state(req).as_deref(),
                name,
                now,
            )
            .await?,
        ),
        false => None,
    };
    let profile = providers::complete(ctx.p, ctx.cfg, name, provider, req, t.as_ref()).await?;
    if let Some(t) = t.as_ref().filter(|t| t.link_user.is_some()) {
        let user_id = t.link_user.as_deref().unwrap_or_default();
        return super::identities::finish_link(ctx, req, name, &profile, user_id, &t.return_to)
            .await;
    }
    let user = linking::sign_in(ctx.p.users(), &profile, now).await?;
    let record = SessionRecord {
        user_id: user.id.clone(),
        issuer: profile.issuer.clone(),
        provider: name.to_string(),
        created_at: now,
        last_seen_at: now,
        expires_at: now,
        user_agent: req.user_agent().chars().take(256).collect(),
        ip: req.client_ip().to_string(),
        vendor_logout: profile.vendor_logout.clone(),
    };
    let return_to = t
        .as_ref()
        .map(|t| t.return_to.as_str())
        .or(query_return_to.as_deref())
        .unwrap_or(return_to::DEFAULT);
    let mut r = Response::redirect(return_to);
    for c in start_session(ctx, &user, record).await? {
        r.append_header("set-cookie", &c);
    }
    ctx.event(
        req,
        Some(&user.id),
        "sign_in",
        serde_json::json!({"provider": name, "issuer": profile.issuer}),
    )
    .await;
    Ok(r)
}

/// Creates a session for `user` and returns the cookies that carry it.
async fn start_session<P: Platform>(
    ctx: &Ctx<'_, P>,
    user: &User,
    record: SessionRecord,
) -> AppResult<Vec<String>> {
    let sessions = Sessions {
        kv: ctx.p.kv(),
        cfg: ctx.cfg,
    };
    let (raw, sid) = sessions.create(record, ctx.p.now()).await?;
    let (_, token) = issue_for(ctx, user, &sid).await?;
    let jar = CookieJar {
        secure: ctx.cfg.secure_cookies,
    };
    Ok(vec![
        jar.set(SESSION, &raw, ctx.cfg.session_ttl),
        jar.set(ACCESS, &token, ctx.cfg.access_ttl),
    ])
}
