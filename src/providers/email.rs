//! The `email` kind: Gatehouse emails the sign-in itself, through a `[[send_email]]` binding
//! of Cloudflare's Email Service — no vendor, no password.
//!
//! `POST /auth/magic-link` starts a login transaction in this browser and sends one message
//! with a 6-digit code and a link ([`challenge`]; the text in `pages`). Neither is stored: the
//! transaction keeps their HMACs under `STATE_SECRET`, bound to its state, so a copy of KV is
//! no help in guessing a code. Either completes the sign-in, once, within the transaction's
//! 10 minutes:
//!
//! - the link lands on `/auth/callback/{name}?gh_state=…&token=…` and, like every
//!   transaction, completes only in the browser holding its cookie; opened anywhere else it
//!   spends nothing and says to type the code in the browser that asked ([`OTHER_BROWSER`]);
//! - the code is typed on the page the send answered with, which posts it to
//!   `POST /auth/magic-link/verify` from the same browser. Every try is counted before it is
//!   compared ([`check_code`], one atomic upsert), so even concurrent guesses get at most
//!   [`MAX_CODE_TRIES`] comparisons; the last wrong one ends the request, link included.
//!
//! The checks here take the transaction's parts (its state, the packed [`Challenge`]) and the
//! key (`STATE_SECRET`); the request handlers own the transaction itself.
//!
//! Completing spends the transaction (the conditional write of [`crate::txn`]): of a link
//! and a code, or two codes, presented at once, exactly one signs in. The identity is
//! `("email", lower-cased address)`, with the address verified.

use crate::crypto::{b64url, ct_eq, hmac_sha256, random_bytes, random_token};
use crate::error::{AppError, AppResult};
use crate::http::Request;
use crate::platform::{Counters, Mail, MailError, Mailer, Platform};
use crate::users::Profile;
use serde_json::Value;

/// The identity issuer of every `email` provider (so there can be only one).
pub const ISSUER: &str = "email";
/// The default `binding`.
pub const DEFAULT_BINDING: &str = "EMAIL";
/// Code tries per request; the last wrong one ends the request.
pub const MAX_CODE_TRIES: u32 = 5;
/// What a link opened outside the browser that asked for it says.
pub const OTHER_BROWSER: &str = "This link signs in only the browser where it was asked for. \
Type the 6-digit code from the email on that browser's page instead.";

struct Settings {
    from: String,
    binding: Option<String>,
    display_name: Option<String>,
}

impl Settings {
    fn read(v: &Value) -> Result<Settings, String> {
        let f = crate::fields::Fields::strict(v, &["kind", "from", "binding", "display_name"])?;
        Ok(Settings {
            from: f.str("from")?,
            binding: f.opt_str("binding")?,
            display_name: f.opt_str("display_name")?,
        })
    }
}

/// Settings of an `email` provider.
#[derive(Debug, Clone)]
pub struct EmailConfig {
    pub name: String,
    /// The sender address (a domain onboarded to Email Sending).
    pub from: String,
    /// The name of the `[[send_email]]` binding.
    pub binding: String,
    pub display_name: String,
}

impl EmailConfig {
    pub fn parse(name: &str, v: &Value) -> Result<EmailConfig, String> {
        let s = Settings::read(v)?;
        let from = crate::validate::email(&s.from)
            .map_err(|_| "from must be an email address (login@example.com)".to_string())?;
        let binding = s.binding.unwrap_or_else(|| DEFAULT_BINDING.into());
        let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
        if binding.is_empty() || binding.len() > 64 || !binding.chars().all(ident) {
            return Err("binding must be the name of a [[send_email]] binding".into());
        }
        Ok(EmailConfig {
            name: name.into(),
            from,
            binding,
            display_name: s.display_name.unwrap_or_else(|| "Email".into()),
        })
    }
}

/// What a request sent, as the transaction keeps it: the address and the keyed hashes of
/// the code and the link token.
#[derive(Debug, Clone, PartialEq)]
pub struct Challenge {
    pub address: String,
    pub code: String,
    pub link: String,
}

impl Challenge {
    /// One string for the transaction record: the three fields joined by spaces, which none
    /// of them contains (a checked address; base64url hashes).
    pub fn pack(&self) -> String {
        format!("{} {} {}", self.address, self.code, self.link)
    }

    pub fn unpack(packed: &str) -> Option<Challenge> {
        let mut it = packed.split(' ').map(String::from);
        let c = Challenge {
            address: it.next()?,
            code: it.next()?,
            link: it.next()?,
        };
        it.next().is_none().then_some(c)
    }
}

/// The secrets of one request, which only the message carries.
pub struct Secrets {
    pub code: String,
    pub link_token: String,
}

fn keyed(key: &[u8], state: &str, what: &str, value: &str) -> String {
    let msg = format!("gatehouse-email|{what}|{state}|{value}");
    b64url(&hmac_sha256(key, msg.as_bytes()))
}

/// A uniform 6-digit code (rejection sampling: no digit is likelier than another).
fn new_code() -> String {
    loop {
        let n = u32::from_le_bytes(random_bytes::<4>());
        if n < 4_294_000_000 {
            return format!("{:06}", n % 1_000_000);
        }
    }
}

/// A fresh code and link token for `address` in the transaction `state`, and what the
/// transaction keeps of them; `key` is `STATE_SECRET`.
pub fn challenge(key: &[u8], state: &str, address: &str) -> (Challenge, Secrets) {
    let s = Secrets {
        code: new_code(),
        link_token: random_token(),
    };
    let c = Challenge {
        address: address.to_ascii_lowercase(),
        code: keyed(key, state, "code", &s.code),
        link: keyed(key, state, "link", &s.link_token),
    };
    (c, s)
}

fn challenge_of(packed: Option<&str>) -> AppResult<Challenge> {
    packed.and_then(Challenge::unpack).ok_or_else(|| {
        AppError::LoginTransaction("This sign-in was not started with an email.".into())
    })
}

/// The link's `token` is the one sent in the transaction `state` (checked before anything is
/// spent).
pub fn check_link(key: &[u8], state: &str, packed: Option<&str>, req: &Request) -> AppResult<()> {
    let c = challenge_of(packed)?;
    // Every refusal here is of the transaction (nothing was spent, nothing is recorded).
    let token = super::query_token(req, 64).map_err(|_| {
        AppError::LoginTransaction("This sign-in link is incomplete or damaged.".into())
    })?;
    if !ct_eq(
        keyed(key, state, "link", &token).as_bytes(),
        c.link.as_bytes(),
    ) {
        return Err(AppError::LoginTransaction(
            "This link is not the one sent for this sign-in.".into(),
        ));
    }
    Ok(())
}

/// `raw` as a 6-digit code (spaces and dashes, as people copy them, ignored).
pub fn parse_code(raw: &str) -> AppResult<String> {
    let code: String = raw.chars().filter(|c| !" -".contains(*c)).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AppError::BadRequest(
            "The code is the 6 digits from the email.".into(),
        ));
    }
    Ok(code)
}

/// What a request says once its tries are used up.
pub const ENDED: &str = "Too many wrong codes: this sign-in has ended.";

/// The `code` field of a form or a JSON object.
pub fn code_of(req: &Request) -> AppResult<String> {
    let code = if req.is_form() {
        url::form_urlencoded::parse(&req.body)
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
    } else {
        crate::validate::json_object(&req.body)
            .ok()
            .and_then(|m| m.get("code")?.as_str().map(String::from))
    };
    code.ok_or_else(|| AppError::BadRequest("Send the 6-digit code as \"code\".".into()))
}

/// The outcome of one code try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    /// The code is right: spend the transaction and sign in.
    Right,
    /// Wrong, with this many tries left (0: the request has ended; spend it).
    Wrong { left: u32 },
    /// The tries were used up before this one: nothing was compared.
    Exhausted,
}

/// One try of `code` in the transaction `state`: counted under `tries_key` (kept until
/// `until`) before it is compared.
pub async fn check_code<C: Counters>(
    counters: &C,
    key: &[u8],
    state: &str,
    packed: Option<&str>,
    (tries_key, until): (&str, i64),
    code: &str,
) -> AppResult<CodeCheck> {
    let c = challenge_of(packed)?;
    let tries = counters.count(tries_key, until).await?;
    if tries > MAX_CODE_TRIES {
        return Ok(CodeCheck::Exhausted);
    }
    Ok(
        if ct_eq(
            keyed(key, state, "code", code).as_bytes(),
            c.code.as_bytes(),
        ) {
            CodeCheck::Right
        } else {
            CodeCheck::Wrong {
                left: MAX_CODE_TRIES - tries,
            }
        },
    )
}

/// Who signed in: the address of a spent transaction.
pub fn profile(c: &EmailConfig, flow: &super::Flow<'_>) -> AppResult<Profile> {
    let address = challenge_of(flow.email)?.address;
    Ok(Profile {
        issuer: ISSUER.into(),
        sub: address.clone(),
        provider: c.name.clone(),
        raw: serde_json::json!({ "email": address }),
        email: Some(address),
        email_verified: Some(true),
        name: None,
        picture: None,
        vendor_logout: None,
    })
}

/// Sends `mail` through the provider's binding; a missing binding is a configuration error.
pub async fn send<P: Platform>(p: &P, c: &EmailConfig, mail: &Mail) -> AppResult<()> {
    p.mailer()
        .send(&c.binding, mail)
        .await
        .map_err(|e| match e {
            MailError::NoBinding(problem) => AppError::Config {
                setting: format!("{} (send_email binding)", c.binding),
                problem,
            },
            MailError::Refused(reason) => AppError::ProviderUnavailable {
                provider: "The email service".into(),
                reason: format!("send_email {}: {reason}", c.binding),
            },
        })
}

#[cfg(test)]
mod tests;
