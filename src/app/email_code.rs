//! The `email` kind's checks in its callback, before the login transaction is spent: the
//! emailed code of `POST /auth/magic-link/verify`, or the emailed link's token.

use super::Ctx;
use crate::error::{AppError, AppResult};
use crate::http::Request;
use crate::platform::Platform;
use crate::providers::email::{self, CodeCheck};
use crate::txn;

/// The code of `POST /auth/magic-link/verify`, or the link's token. A wrong code with tries
/// left keeps the sign-in open ([`AppError::WrongCode`]); the last one ends it, link included.
pub async fn before_spend<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    pending: &txn::Pending,
) -> AppResult<()> {
    let key = ctx.cfg.state_secret.expose().as_bytes();
    let (state, packed) = (&pending.txn.state, pending.txn.email.as_deref());
    if req.method != crate::http::Method::Post {
        return email::check_link(key, state, packed, req);
    }
    let code = email::parse_code(&email::code_of(req)?)?;
    let tries = format!("code:{}", pending.key_hash());
    let until = pending.txn.created_at + txn::TXN_TTL as i64 + 300;
    let counters = ctx.p.counters();
    match email::check_code(counters, key, state, packed, (&tries, until), &code).await? {
        CodeCheck::Right => Ok(()),
        CodeCheck::Wrong { left } if left > 0 => Err(AppError::WrongCode { left }),
        CodeCheck::Wrong { .. } => {
            pending.end(ctx.p).await?;
            Err(AppError::LoginTransaction(email::ENDED.into()))
        }
        CodeCheck::Exhausted => Err(AppError::LoginTransaction(email::ENDED.into())),
    }
}
