//! The `email` kind: Gatehouse emails the sign-in itself, through a `[[send_email]]` binding
//! of Cloudflare's Email Service — no vendor, no password.
//!
//! `POST /auth/magic-link` starts a login transaction in this browser and sends one message
//! with a 6-digit code and a link ([`challenge`], [`message`]). Neither is stored: the
//! transaction keeps their HMACs under `STATE_SECRET`, bound to its state, so a copy of KV is
//! no help in guessing a code. Either completes the sign-in, once, within the transaction's
//! 10 minutes:
//!
//! - the link lands on `/auth/callback/{name}?gh_state=…&token=…` and, like every
//!   transaction, completes only in the browser holding its cookie; opened anywhere else it
//!   spends nothing and says to type the code in the browser that asked ([`OTHER_BROWSER`]);
//! - the code is typed on the page the send answered with, which posts it to
//!   `POST /auth/magic-link/verify` from the same browser. Every try is counted before it is
//!   compared (one atomic upsert), so even concurrent guesses get at most
//!   [`MAX_CODE_TRIES`] comparisons; the last wrong one ends the request, link included.
//!
//! Completing spends the transaction (the conditional write of [`crate::txn`]): of a link
//! and a code, or two codes, presented at once, exactly one signs in. The identity is
//! `("email", lower-cased address)`, with the address verified.

use super::settings;
use crate::config::Config;
use crate::crypto::{b64url, ct_eq, hmac_sha256, random_bytes, random_token};
use crate::error::{AppError, AppResult};
use crate::http::Request;
use crate::pages::esc;
use crate::platform::{Counters, Mail, MailError, Mailer, Platform};
use crate::txn::{LoginTxn, Pending};
use crate::users::Profile;
use serde::Deserialize;
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[allow(dead_code)]
    kind: String,
    from: String,
    binding: Option<String>,
    display_name: Option<String>,
}

/// Settings of an `email` provider.
#[derive(Debug, Clone)]
pub struct EmailConfig {
    /// The sender address (a domain onboarded to Email Sending).
    pub from: String,
    /// The name of the `[[send_email]]` binding.
    pub binding: String,
    pub display_name: String,
}

impl EmailConfig {
    pub fn parse(v: &Value) -> Result<EmailConfig, String> {
        let s: Settings = settings(v)?;
        let from = crate::validate::email(&s.from)
            .map_err(|_| "from must be an email address (login@example.com)".to_string())?;
        let binding = s.binding.unwrap_or_else(|| DEFAULT_BINDING.into());
        let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
        if binding.is_empty() || binding.len() > 64 || !binding.chars().all(ident) {
            return Err("binding must be the name of a [[send_email]] binding".into());
        }
        Ok(EmailConfig {
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

fn keyed(cfg: &Config, state: &str, what: &str, value: &str) -> String {
    let msg = format!("gatehouse-email|{what}|{state}|{value}");
    b64url(&hmac_sha256(
        cfg.state_secret.expose().as_bytes(),
        msg.as_bytes(),
    ))
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

/// A fresh code and link token for `address` in transaction `txn`, and what `txn` keeps.
pub fn challenge(cfg: &Config, txn: &LoginTxn, address: &str) -> (Challenge, Secrets) {
    let s = Secrets {
        code: new_code(),
        link_token: random_token(),
    };
    let c = Challenge {
        address: address.to_ascii_lowercase(),
        code: keyed(cfg, &txn.state, "code", &s.code),
        link: keyed(cfg, &txn.state, "link", &s.link_token),
    };
    (c, s)
}

fn challenge_of(packed: Option<&str>) -> AppResult<Challenge> {
    packed.and_then(Challenge::unpack).ok_or_else(|| {
        AppError::LoginTransaction("This sign-in was not started with an email.".into())
    })
}

/// The link's `token` is the one sent for `txn` (checked before anything is spent).
pub fn check_link(cfg: &Config, txn: &LoginTxn, req: &Request) -> AppResult<()> {
    let c = challenge_of(txn.email.as_deref())?;
    // Every refusal here is of the transaction (nothing was spent, nothing is recorded).
    let token = super::query_token(req, 64).map_err(|_| {
        AppError::LoginTransaction("This sign-in link is incomplete or damaged.".into())
    })?;
    let presented = keyed(cfg, &txn.state, "link", &token);
    if !ct_eq(presented.as_bytes(), c.link.as_bytes()) {
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

/// The kind's check before its transaction is spent: the code of
/// `POST /auth/magic-link/verify`, or the link's token. A wrong code with tries left keeps
/// the sign-in open ([`AppError::WrongCode`]); the last one ends it.
pub async fn check<P: Platform>(
    p: &P,
    cfg: &Config,
    req: &Request,
    pending: &Pending,
) -> AppResult<()> {
    if req.method != crate::http::Method::Post {
        return check_link(cfg, &pending.txn, req);
    }
    let code = parse_code(&code_of(req)?)?;
    match check_code(p, cfg, pending, &code).await? {
        CodeCheck::Right => Ok(()),
        CodeCheck::Wrong { left } if left > 0 => Err(AppError::WrongCode { left }),
        CodeCheck::Wrong { .. } => {
            pending.end(p).await?;
            Err(AppError::LoginTransaction(ENDED.into()))
        }
        CodeCheck::Exhausted => Err(AppError::LoginTransaction(ENDED.into())),
    }
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

/// Counts one try of `code` against the pending transaction, then compares.
pub async fn check_code<P: Platform>(
    p: &P,
    cfg: &Config,
    pending: &Pending,
    code: &str,
) -> AppResult<CodeCheck> {
    let c = challenge_of(pending.txn.email.as_deref())?;
    let until = pending.txn.created_at + crate::txn::TXN_TTL as i64 + 300;
    let key = format!("code:{}", pending.key_hash());
    let tries = p.counters().count(&key, until).await?;
    if tries > MAX_CODE_TRIES {
        return Ok(CodeCheck::Exhausted);
    }
    let presented = keyed(cfg, &pending.txn.state, "code", code);
    Ok(if ct_eq(presented.as_bytes(), c.code.as_bytes()) {
        CodeCheck::Right
    } else {
        CodeCheck::Wrong {
            left: MAX_CODE_TRIES - tries,
        }
    })
}

/// Who signed in: the address of a spent transaction.
pub fn profile(name: &str, flow: &super::Flow<'_>) -> AppResult<Profile> {
    let address = challenge_of(flow.email)?.address;
    Ok(Profile {
        issuer: ISSUER.into(),
        sub: address.clone(),
        provider: name.into(),
        raw: serde_json::json!({ "email": address }),
        email: Some(address),
        email_verified: Some(true),
        name: None,
        picture: None,
        vendor_logout: None,
    })
}

/// The sign-in message: a plain-text and an HTML part saying the same, every interpolated
/// value escaped in the HTML, no images, no remote content, no tracking.
pub fn message(cfg: &Config, c: &EmailConfig, to: &str, s: &Secrets, link: &str) -> Mail {
    let host = url::Url::parse(&cfg.public_url)
        .ok()
        .and_then(|u| u.host_str().map(String::from))
        .unwrap_or_else(|| cfg.public_url.clone());
    let code = &s.code;
    let text = format!(
        "Your code to sign in to {host} as {to}:\n\n    {code}\n\n\
Type it on the page where you asked for it, or open this link in that same browser:\n\
{link}\n\nThe code and the link work once, for 10 minutes. If you did not ask to sign in, \
ignore this message: nobody can sign in without it.\n"
    );
    let (h, t, l) = (esc(&host), esc(to), esc(link));
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Sign in to {h}</title></head><body style=\"font-family:sans-serif;color:#1a1a1a\">\
<p>Your code to sign in to <b>{h}</b> as <b>{t}</b>:</p>\
<p style=\"font-size:28px;letter-spacing:6px;font-weight:bold\">{code}</p>\
<p>Type it on the page where you asked for it, or open this link in that same browser:</p>\
<p><a href=\"{l}\">Sign in to {h}</a></p>\
<p style=\"color:#555\">The code and the link work once, for 10 minutes. If you did not ask \
to sign in, ignore this message: nobody can sign in without it.</p></body></html>"
    );
    Mail {
        from: c.from.clone(),
        to: to.to_string(),
        subject: format!("Your sign-in code for {host}"),
        text,
        html,
    }
}

/// Emails `to` a fresh code and link for `txn` (whose callback URL is `callback`), and keeps
/// their hashes in `txn`.
pub async fn send_sign_in<P: Platform>(
    p: &P,
    cfg: &Config,
    c: &EmailConfig,
    to: &str,
    txn: &mut LoginTxn,
    callback: &str,
) -> AppResult<()> {
    let (challenge, secrets) = challenge(cfg, txn, to);
    let link = format!("{callback}&token={}", secrets.link_token);
    send(p, c, &message(cfg, c, to, &secrets, &link)).await?;
    txn.email = Some(challenge.pack());
    Ok(())
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
