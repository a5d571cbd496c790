//! Request handling: the routes of README "Routes" over the [`Platform`] traits. Every
//! handler returns `AppResult<Response>`; [`handle`] is the one place where an error becomes
//! the client's page or JSON (and its log line).

mod account;
mod admin;
mod auth;
mod email_code;
mod ending;
mod identities;
mod invitations;
mod login;
mod magic;
mod oauth;
mod passkeys;
pub mod proxy;

#[cfg(test)]
mod tests;

use crate::config::Config;
use crate::cookies::CookieJar;
use crate::error::{AppError, AppResult};
use crate::http::{Method, Request, Response};
use crate::platform::Platform;
use crate::sessions::Sessions;
use crate::users::{Event, UserId, UserStore};

pub use auth::{authenticate, Caller};

/// A request in flight: the configuration and the platform.
pub struct Ctx<'a, P: Platform> {
    pub cfg: &'a Config,
    pub p: &'a P,
}

impl<P: Platform> Ctx<'_, P> {
    /// Session operations over this platform's KV.
    pub fn sessions(&self) -> Sessions<'_, P::Kv> {
        Sessions {
            kv: self.p.kv(),
            cfg: self.cfg,
        }
    }

    /// The cookie jar for this deployment (`__Host-` and `Secure` unless plain-http localhost).
    pub fn jar(&self) -> CookieJar {
        CookieJar {
            secure: self.cfg.secure_cookies,
        }
    }

    /// An audit event of this request, now.
    pub fn new_event(
        &self,
        req: &Request,
        user_id: Option<&UserId>,
        kind: &'static str,
        detail: serde_json::Value,
    ) -> Event {
        Event {
            user_id: user_id.cloned(),
            kind,
            at: self.p.now(),
            ip: req.client_ip().to_string(),
            user_agent: req.user_agent().chars().take(256).collect(),
            detail,
        }
    }

    /// Records an audit event; a failure is logged, never fatal (the action itself is done).
    pub async fn event(
        &self,
        req: &Request,
        user_id: Option<&UserId>,
        kind: &'static str,
        detail: serde_json::Value,
    ) {
        let e = self.new_event(req, user_id, kind, detail);
        if let Err(err) = self.p.users().record_event(&e).await {
            self.p.log(&format!(
                "gatehouse: could not record {kind} event: {}",
                err.0
            ));
        }
    }
}

/// `/healthz`, answered before anything else: liveness must not depend on configuration,
/// bindings or storage (the Worker glue asks this before it builds its platform).
pub fn liveness(req: &Request) -> Option<Response> {
    (req.path() == "/healthz").then(|| match req.method {
        Method::Get | Method::Head => {
            let mut r = Response::new(200);
            r.set_header("content-type", "application/json");
            r.body = br#"{"status":"ok"}"#.to_vec(); // a constant: nothing to serialize
            r
        }
        _ => AppError::MethodNotAllowed.into_response(req.wants()),
    })
}

/// Handles one request. `cfg` is the isolate's parsed configuration, or why it failed.
pub async fn handle<P: Platform>(cfg: Result<&Config, &AppError>, p: &P, req: Request) -> Response {
    let wants = req.wants();
    if let Some(resp) = liveness(&req) {
        return resp;
    }
    let result = match cfg {
        Ok(cfg) => route(&Ctx { cfg, p }, &req).await,
        Err(e) => Err(e.clone()),
    };
    match result {
        Ok(resp) => resp,
        Err(err) => {
            if let Some(line) = err.log_line() {
                p.log(&line);
            }
            err.into_response(wants)
        }
    }
}

async fn route<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Response> {
    auth::refuse_duplicate_cookies(ctx.cfg, req)?;
    let path = req.path().to_string();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if let Some(r) = oauth::route(ctx, req, &segments).await {
        return r;
    }
    match (req.method, segments.as_slice()) {
        (Method::Get, ["auth", "login"]) => login::login(ctx, req).await,
        (Method::Post, ["auth", "magic-link"]) => magic::send(ctx, req).await,
        (Method::Post, ["auth", "magic-link", "verify"]) => magic::verify::verify(ctx, req).await,
        (Method::Get, ["auth", "callback", name]) => login::callback(ctx, req, name).await,
        (Method::Post, ["auth", "callback", name]) => {
            login::confirm_invitation(ctx, req, name).await
        }
        (Method::Get, ["auth", "me"]) => account::me(ctx, req).await,
        (Method::Post, ["auth", "logout"]) => account::logout(ctx, req).await,
        (Method::Post, ["auth", "token"]) => account::token(ctx, req).await,
        (Method::Options, ["auth", "token"]) => account::token_preflight(ctx, req),
        (Method::Get, ["auth", "sessions"]) => account::list_sessions(ctx, req).await,
        (Method::Delete, ["auth", "sessions", sid]) => account::revoke_session(ctx, req, sid).await,
        (Method::Get, ["auth", "identities"]) => identities::list(ctx, req).await,
        (Method::Delete, ["auth", "identities"]) => identities::unlink(ctx, req).await,
        (_, ["admin", rest @ ..]) => admin::route(ctx, req, rest).await,
        (Method::Get, ["auth", "passkeys.js"]) => Ok(passkeys::script()),
        (_, ["auth", "passkeys", rest @ ..]) => passkeys::route(ctx, req, rest).await,
        (_, ["auth", "identities"]) => Err(AppError::MethodNotAllowed),
        (Method::Get, [".well-known", "jwks.json"]) => Ok(account::jwks(ctx)),
        (Method::Get, [""]) => account::home(ctx, req).await,
        (
            _,
            ["auth", "login" | "callback" | "magic-link" | "me" | "logout" | "token" | "sessions"
            | "passkeys.js", ..],
        ) => Err(AppError::MethodNotAllowed),
        _ => Err(AppError::NotFound),
    }
}

/// State-changing routes check `Origin` (or Fetch Metadata) besides SameSite (docs/security.md,
/// rule 'Origin check'). `PUBLIC_URL`'s origin and `ALLOWED_RETURN_ORIGINS` may send them.
pub fn check_origin(cfg: &Config, req: &Request) -> AppResult<()> {
    check_sender(cfg, req, false)
}

/// Like [`check_origin`], but only Gatehouse's own pages may send it: for a button that must
/// be pressed on a page Gatehouse served (an invitation's confirmation), which no allowed app
/// may press on someone's behalf.
pub fn check_own_origin(cfg: &Config, req: &Request) -> AppResult<()> {
    check_sender(cfg, req, true)
}

fn check_sender(cfg: &Config, req: &Request, own_only: bool) -> AppResult<()> {
    if let Some(origin) = req.header("origin") {
        let allowed = if own_only {
            origin == cfg.public_origin
        } else {
            cfg.is_allowed_origin(origin)
        };
        return if allowed {
            Ok(())
        } else {
            Err(AppError::Forbidden("Cross-origin request refused.".into()))
        };
    }
    if let Some(site) = req.header("sec-fetch-site") {
        return if site == "same-origin" || (site == "none" && !own_only) {
            Ok(())
        } else {
            Err(AppError::Forbidden("Cross-site request refused.".into()))
        };
    }
    // Neither header: a non-browser client. It carries no ambient credentials unless it
    // sends cookies, and a cookie-carrying request must say where it comes from.
    if req.header("cookie").is_some() {
        return Err(AppError::Forbidden(
            "Requests with cookies must send an Origin header.".into(),
        ));
    }
    Ok(())
}
