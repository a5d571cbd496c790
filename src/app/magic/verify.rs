//! `POST /auth/magic-link/verify {code}` (form or JSON): the code of an `email` provider's
//! message, typed in the browser that asked for it. The form carries no state: the browser's
//! login-transaction cookie names its sign-in, and the code goes through that provider's
//! callback like a link would ([`login::callback`], [`email::check`]): the same rate limit,
//! single use, linking, session and access checks as every other sign-in.

use crate::app::{check_origin, login, Ctx};
use crate::error::{AppError, AppResult};
use crate::http::{Request, Response};
use crate::platform::Platform;
use crate::providers::email;
use crate::providers::STATE_PARAM;
use crate::txn;

/// `POST /auth/magic-link/verify`.
pub async fn verify<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Response> {
    check_origin(ctx.cfg, req)?;
    let (name, _) = ctx
        .cfg
        .providers
        .iter()
        .find(|(_, p)| p.is_email())
        .ok_or_else(|| AppError::BadRequest("No email sign-in is configured.".into()))?;
    // A malformed code is refused here, before it could count as a try or end anything.
    email::parse_code(&email::code_of(req)?)?;
    let state = txn::cookie_state(ctx.cfg, req)?;
    let mut own = req.clone();
    own.url.set_query(Some(&format!("{STATE_PARAM}={state}")));
    login::callback(ctx, &own, name).await
}
