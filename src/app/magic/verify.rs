//! `POST /auth/magic-link/verify {code}` (form or JSON): the code of an `email` provider's
//! message, typed in the browser that asked for it (its login-transaction cookie says which
//! request). Tries are counted before they are compared ([`email::check_code`]); the right
//! code spends the transaction and signs in through the same path as every provider's
//! callback ([`login::conclude`]).

use crate::app::{check_origin, login, Ctx};
use crate::error::{AppError, AppResult};
use crate::http::{Request, Response};
use crate::pages;
use crate::platform::Platform;
use crate::providers::{email, email::CodeCheck};
use crate::ratelimit::{self, Flow};
use crate::txn;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
struct CodeRequest {
    code: String,
}

/// What the request says once its tries are used up.
const ENDED: &str = "Too many wrong codes: this sign-in has ended.";

/// `POST /auth/magic-link/verify`.
pub async fn verify<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Response> {
    check_origin(ctx.cfg, req)?;
    ratelimit::per_network(ctx.p.limiter(), Flow::Callback, req).await?;
    let body: CodeRequest = req.parse_body()?;
    let code = email::parse_code(&body.code)?;
    let pending = txn::open_own(ctx.p, ctx.cfg, req).await?;
    let name = pending.txn.provider.clone();
    if !ctx.cfg.providers.get(&name).is_some_and(|p| p.is_email()) {
        return Err(AppError::LoginTransaction(
            "This sign-in does not take an emailed code.".into(),
        ));
    }
    match email::check_code(ctx.p, ctx.cfg, &pending, &code).await? {
        CodeCheck::Right => {}
        CodeCheck::Wrong { left } if left > 0 => return Ok(wrong_code(req, left)),
        CodeCheck::Wrong { .. } => {
            // The last try: the request ends here, its link included. A lost race means
            // someone else spent it first, which ends it just as well.
            let _ = pending.spend(ctx.p).await?;
            let detail = json!({"provider": name, "error": "too_many_codes"});
            ctx.event(req, None, "sign_in_failed", detail).await;
            return Err(AppError::LoginTransaction(ENDED.into()));
        }
        CodeCheck::Exhausted => return Err(AppError::LoginTransaction(ENDED.into())),
    }
    let t = pending.spend(ctx.p).await?;
    let signed_in = async {
        let profile = email::profile(&name, &t)?;
        login::conclude(ctx, req, &name, &profile, Some(&t), None).await
    }
    .await;
    let mut r = match signed_in {
        Ok(r) if req.is_browser_form() => r,
        Ok(r) => as_json(r),
        Err(e) => {
            let detail = json!({"provider": name, "error": e.code()});
            ctx.event(req, None, "sign_in_failed", detail).await;
            return Err(e);
        }
    };
    r.append_header("set-cookie", &txn::clear_cookie(ctx.cfg));
    Ok(r)
}

/// A wrong code with tries left: the code page again (forms), or 400 JSON.
fn wrong_code(req: &Request, left: u32) -> Response {
    let message = format!(
        "That code is not right. {left} {} left.",
        if left == 1 { "try" } else { "tries" }
    );
    let mut r = if req.is_browser_form() {
        Response::html(400, pages::code_page(Some(&message)))
    } else {
        Response::json(
            400,
            &json!({"error": "invalid_code", "message": message, "tries_left": left}),
        )
    };
    r.set_header("cache-control", "no-store");
    r
}

/// A sign-in's redirect as API clients want it: 200 with where to go, cookies kept.
fn as_json(redirect: Response) -> Response {
    let to = redirect.header("location").unwrap_or("/").to_string();
    let mut r = Response::json(200, &json!({"status": "signed_in", "return_to": to}));
    for c in redirect.headers_named("set-cookie") {
        r.append_header("set-cookie", c);
    }
    r
}
