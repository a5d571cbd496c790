//! `POST /auth/magic-link` (README "Routes"): `{email, return_to?, provider?}` as a form or
//! JSON asks a magic-link provider to email a sign-in link: Stytch (`stytch`), or Gatehouse
//! itself (the `email` kind: a link and a 6-digit code, then the code page; see
//! [`crate::providers::email`] and `POST /auth/magic-link/verify` in `magic/verify.rs`).
//!
//! - Origin-checked like every state-changing route; the address and `return_to` are
//!   validated before anything is counted, stored or sent.
//! - Sends are rate limited per client network (a burst limit, then 20 per 15 minutes) and
//!   per address (5 per 15 minutes) (429).
//! - The link is bound to this browser: it lands on [`providers::Flow::callback_url`] with the
//!   `gh_state` of a login transaction whose cookie this answer sets, so a link requested by
//!   someone else cannot complete a sign-in here; and Stytch's token in it is bound by PKCE
//!   to that transaction's verifier, so it cannot complete a sign-in the thief of the link
//!   starts in another browser either.
//! - The answer is the same whether or not the address is known: a "check your email" page
//!   for forms, `202` JSON for API clients.

use super::login::checked_return_to;
use super::{check_origin, Ctx};
use crate::error::{AppError, AppResult};
use crate::http::{Request, Response};
use crate::platform::Platform;
use crate::providers::{email, stytch, ProviderConfig};
use crate::ratelimit::{self, Flow, Limit};
use crate::txn::{self, LoginTxn, Purpose};
use crate::{config::Config, pages};
use serde_json::json;

/// Sends to one address: 5 per 15 minutes.
pub const PER_EMAIL: Limit = Limit {
    max: 5,
    window: 900,
};
/// Sends from one client IP: 20 per 15 minutes.
pub const PER_IP: Limit = Limit {
    max: 20,
    window: 900,
};

struct MagicLinkRequest {
    email: String,
    return_to: Option<String>,
    provider: Option<String>,
}

impl MagicLinkRequest {
    fn parse(req: &Request) -> AppResult<MagicLinkRequest> {
        let v: serde_json::Value = req.parse_body()?;
        let read = || -> Result<MagicLinkRequest, String> {
            let f = crate::fields::Fields::of(&v)?;
            Ok(MagicLinkRequest {
                email: f.str("email")?,
                return_to: f.opt_str("return_to")?,
                provider: f.opt_str("provider")?,
            })
        };
        read().map_err(|e| AppError::BadRequest(format!("Invalid body: {e}.")))
    }
}

/// A provider that signs in by email.
#[derive(Clone, Copy)]
pub(super) enum Magic<'c> {
    Stytch(&'c stytch::StytchConfig),
    Email(&'c email::EmailConfig),
}

/// The magic-link provider named by `wanted`, or the only one configured: the one picker of
/// `POST /auth/magic-link` and the admin API's emailed invitations. `Ok(None)`: none is
/// configured (each route says so with its own status); a bad name or an ambiguous choice is
/// the request's fault (400).
pub(super) fn pick<'c>(
    cfg: &'c Config,
    wanted: Option<&str>,
) -> AppResult<Option<(&'c str, Magic<'c>)>> {
    let as_magic = |(n, p): (&'c String, &'c ProviderConfig)| match p {
        ProviderConfig::Stytch(c) => Some((n.as_str(), Magic::Stytch(c))),
        ProviderConfig::Email(c) => Some((n.as_str(), Magic::Email(c))),
        _ => None,
    };
    let all: Vec<_> = cfg.providers.iter().filter_map(as_magic).collect();
    if all.is_empty() {
        return Ok(None);
    }
    match (wanted.filter(|w| !w.is_empty()), all.as_slice()) {
        (None, [one]) => Ok(Some(*one)),
        (None, _) => Err(AppError::BadRequest(
            "Several magic-link providers are configured; name one in \"provider\".".into(),
        )),
        (Some(w), _) => all
            .iter()
            .find(|(n, _)| *n == w)
            .copied()
            .map(Some)
            .ok_or_else(|| AppError::BadRequest(format!("{w:?} is not a magic-link provider."))),
    }
}

/// Counts one send against the client's and the address's limits.
async fn within_limits<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, email: &str) -> AppResult<()> {
    // The in-memory burst limit first: it costs no storage round trip.
    ratelimit::per_network(ctx.p.limiter(), Flow::Send, req).await?;
    let now = ctx.p.now();
    let ip_ok = ratelimit::hit(
        ctx.p.counters(),
        &format!("magic-ip:{}", req.client_network()),
        PER_IP,
        now,
    )
    .await?;
    if !ip_ok {
        return Err(AppError::RateLimited);
    }
    let email_ok = ratelimit::hit(
        ctx.p.counters(),
        &format!("magic-email:{}", email.to_ascii_lowercase()),
        PER_EMAIL,
        now,
    )
    .await?;
    if !email_ok {
        return Err(AppError::RateLimited);
    }
    Ok(())
}

/// `POST /auth/magic-link`.
pub async fn send<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Response> {
    check_origin(ctx.cfg, req)?;
    let body = MagicLinkRequest::parse(req)?;
    let (name, c) = pick(ctx.cfg, body.provider.as_deref())?
        .ok_or_else(|| AppError::BadRequest("No magic-link provider is configured.".into()))?;
    let email = crate::validate::email(&body.email)
        .ok()
        .ok_or_else(|| AppError::BadRequest("Please enter a valid email address.".into()))?;
    let return_to = checked_return_to(ctx.cfg, body.return_to.as_deref())?;
    within_limits(ctx, req, &email).await?;

    let mut t = LoginTxn::new(name, return_to, Purpose::SignIn, ctx.p.now());
    let link = t.flow(ctx.cfg).callback_url();
    match c {
        Magic::Stytch(c) => {
            stytch::send_magic_link(ctx.p, c, &email, &link, &t.flow(ctx.cfg)).await?
        }
        Magic::Email(c) => send_code(ctx, c, &email, &mut t, &link).await?,
    }
    // Stored only once the link is on its way; the link is useless without it.
    let cookie = txn::start(ctx.p.kv(), ctx.cfg, &t).await?;

    let by_email = matches!(c, Magic::Email(_));
    let mut r = if req.is_browser_form() {
        Response::html(
            200,
            if by_email {
                pages::code_page(None)
            } else {
                pages::check_email_page()
            },
        )
    } else {
        let message = if by_email {
            "If the address can receive email, a 6-digit code and a sign-in link are on their way. Post the code to /auth/magic-link/verify from this client, or open the link in this browser, within 10 minutes."
        } else {
            "If the address can receive email, a sign-in link is on its way. Open it in this browser within 10 minutes."
        };
        Response::json(202, &json!({"status": "sent", "message": message}))
    };
    r.set_header("cache-control", "no-store");
    r.append_header("set-cookie", &cookie);
    Ok(r)
}

/// The `email` kind's message to `to`: a fresh code and link for `t` (whose callback is
/// `callback`), whose hashes `t` keeps.
async fn send_code<P: Platform>(
    ctx: &Ctx<'_, P>,
    c: &email::EmailConfig,
    to: &str,
    t: &mut LoginTxn,
    callback: &str,
) -> AppResult<()> {
    let key = ctx.cfg.state_secret.expose().as_bytes();
    let (challenge, secrets) = email::challenge(key, &t.state, to);
    let link = format!("{callback}&token={}", secrets.link_token);
    let host = url::Url::parse(&ctx.cfg.public_url)
        .ok()
        .and_then(|u| u.host_str().map(String::from))
        .unwrap_or_default();
    let [subject, text, html] = pages::sign_in_mail(&host, to, &secrets.code, &link);
    let mail = crate::platform::Mail {
        from: c.from.clone(),
        to: to.to_string(),
        subject,
        text,
        html,
    };
    email::send(ctx.p, c, &mail).await?;
    t.email = Some(challenge.pack());
    Ok(())
}

pub mod verify;

#[cfg(test)]
mod tests;
