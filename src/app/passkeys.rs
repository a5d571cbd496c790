//! The `/auth/passkeys` routes (WebAuthn Level 3 JSON): ceremony options and results for
//! signing in with a passkey (anyone) and adding one (signed in), and the person's own list,
//! rename and delete. Everything but signing in changes the account: it needs this browser's
//! session cookie on Gatehouse's own pages ([`require_account_owner`], checked once for all
//! of them). Signing in ends in the same linking and session path as every provider.
//!
//! Written for a small bundle: JSON bodies are read as maps and options written with
//! `format!` (derived deserializers and `json!` trees cost kilobytes each), and the account
//! routes share one gate and one audit-event call.

use super::auth::{require_account_owner, with_cookies};
use super::{check_own_origin, Ctx};
use crate::crypto::{b64url, sha256_b64url};
use crate::error::{AppError, AppResult};
use crate::http::{Method, Request, Response};
use crate::platform::{Platform, SingleUse, SpendKind};
use crate::providers::passkey::{configured, PasskeyConfig};
use crate::ratelimit::{self, Flow};
use crate::users::{Profile, UnlinkOutcome, UserStore};
use crate::validate;
use crate::webauthn::challenge::{self, Challenge, Purpose};
use crate::webauthn::store::{AddOutcome, Passkey, PasskeyStore};
use crate::webauthn::{field, Expected, WebAuthnError, BE, BS};
use serde_json::{json, Map, Value};

/// The passkey script of the login and account pages.
const SCRIPT: &str = include_str!("../../assets/passkeys.js");
/// Longest passkey name.
const MAX_NAME: usize = 64;

/// What an account route did, for the audit log.
type Done = (Response, Option<(&'static str, Value)>);

/// `/auth/passkeys[/…]`, after the `passkeys` segment.
pub async fn route<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    rest: &[&str],
) -> AppResult<Response> {
    match (req.method, rest) {
        (Method::Post, ["login", "options"]) => login_options(ctx, req).await,
        (Method::Post, ["login"]) => login(ctx, req).await,
        (Method::Get, []) => account(ctx, req, Action::List).await,
        (Method::Post, ["register", "options"]) => account(ctx, req, Action::Options).await,
        (Method::Post, ["register"]) => account(ctx, req, Action::Register).await,
        (Method::Patch, [id]) => account(ctx, req, Action::Rename(id)).await,
        (Method::Delete, [id]) => account(ctx, req, Action::Delete(id)).await,
        (_, [] | ["register" | "login", ..] | [_]) => Err(AppError::MethodNotAllowed),
        _ => Err(AppError::NotFound),
    }
}

/// The passkey provider: its name and settings, or 400 when none is configured.
fn provider(cfg: &crate::config::Config) -> AppResult<(&str, &PasskeyConfig)> {
    configured(&cfg.providers)
        .ok_or_else(|| AppError::BadRequest("No passkey provider is configured.".into()))
}

/// What an account route does.
enum Action<'a> {
    List,
    Options,
    Register,
    Rename(&'a str),
    Delete(&'a str),
}

/// The account routes: one gate (this browser's session, Gatehouse's own pages), then the
/// action, then its audit event.
async fn account<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    action: Action<'_>,
) -> AppResult<Response> {
    let (name, pc) = provider(ctx.cfg)?;
    let caller = require_account_owner(ctx, req, true).await?;
    let (r, event) = act(ctx, req, name, pc, &caller.claims, action).await?;
    if let Some((kind, detail)) = event {
        ctx.event(req, Some(&caller.claims.sub), kind, detail).await;
    }
    Ok(with_cookies(r, &caller))
}

/// `GET /auth/passkeys.js`.
pub fn script() -> Response {
    let mut r = Response::new(200);
    r.set_header("content-type", "text/javascript; charset=utf-8");
    r.set_header("cache-control", "public, max-age=300");
    r.set_header("x-content-type-options", "nosniff");
    r.body = SCRIPT.as_bytes().to_vec();
    r
}

/// A JSON string literal of `s`.
fn q(s: &str) -> String {
    crate::fields::json_text(&Value::String(s.into()))
}

/// Ceremony options (JSON written out) with a fresh challenge for `purpose`, whose cookie
/// binds it to this browser. `fill(challenge)` writes the options around the challenge.
fn options<P: Platform>(
    ctx: &Ctx<'_, P>,
    purpose: Purpose,
    user: &str,
    fill: impl FnOnce(&str) -> String,
) -> Response {
    let (bytes, cookie) = challenge::issue(&ctx.cfg.state_secret, purpose, user, ctx.p.now());
    let mut r = Response::new(200);
    r.set_header("content-type", "application/json");
    r.set_header("cache-control", "no-store");
    r.body = fill(&b64url(&bytes)).into_bytes();
    let ttl = challenge::TTL as u64;
    r.append_header(
        "set-cookie",
        &ctx.jar().set(challenge::COOKIE, &cookie, ttl),
    );
    r
}

/// The challenge of this browser for `purpose` (refusing a doubled cookie first).
fn browser_challenge<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    purpose: Purpose,
) -> AppResult<Challenge> {
    let jar = ctx.jar();
    crate::cookies::refuse_sent_twice(req, &[&jar.wire_name(challenge::COOKIE)])?;
    let cookie = jar.get(req, challenge::COOKIE);
    let now = ctx.p.now();
    Ok(challenge::read(
        &ctx.cfg.state_secret,
        cookie.as_deref(),
        purpose,
        now,
    )?)
}

/// Spends the challenge once everything else passed: of two uses, one gets through.
async fn spend<P: Platform>(ctx: &Ctx<'_, P>, ch: &Challenge) -> AppResult<()> {
    let key = sha256_b64url(&ch.bytes);
    let once = ctx.p.single_use();
    match once
        .spend(SpendKind::PasskeyChallenge, &key, ch.spent_until())
        .await?
    {
        true => Ok(()),
        false => Err(WebAuthnError::Challenge("already used").into()),
    }
}

fn expected<'a>(
    ctx: &'a Ctx<'_, impl Platform>,
    pc: &'a PasskeyConfig,
    ch: &'a Challenge,
) -> Expected<'a> {
    Expected {
        rp_id: &pc.rp_id,
        origin: &ctx.cfg.public_origin,
        challenge: &ch.bytes,
        require_uv: pc.require_uv,
    }
}

/// A JSON request body (RegistrationResponseJSON, AuthenticationResponseJSON, a rename),
/// read as a map.
struct Body(Map<String, Value>);

impl Body {
    fn parse(req: &Request) -> AppResult<Body> {
        validate::json_object(&req.body)
            .map(Body)
            .map_err(AppError::BadRequest)
    }

    fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }

    fn response_member(&self, name: &str) -> Option<&Value> {
        self.0.get("response").and_then(|r| r.get(name))
    }

    /// `response.{name}`, base64url-decoded.
    fn response(&self, name: &'static str) -> Result<Vec<u8>, WebAuthnError> {
        let v = self.response_member(name).and_then(Value::as_str);
        v.ok_or(WebAuthnError::Malformed(name))
            .and_then(|v| field(v, name))
    }

    /// The credential id, which must be named the same in `id` and `rawId`, of type
    /// `public-key`.
    fn credential_id(&self) -> Result<Vec<u8>, WebAuthnError> {
        let bad = WebAuthnError::Malformed("credential id or type");
        let raw = field(self.text("rawId").ok_or(bad.clone())?, "rawId")?;
        let id = self.text("id").map(|i| field(i, "id"));
        if self.text("type") != Some("public-key") || id != Some(Ok(raw.clone())) {
            return Err(bad);
        }
        Ok(raw)
    }
}

/// A passkey's name: trimmed, 1 to 64 characters, no control characters.
fn passkey_name(raw: Option<&str>) -> AppResult<String> {
    let name = raw
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("Passkey");
    if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(AppError::BadRequest(format!(
            "A passkey name is 1 to {MAX_NAME} characters, with no control characters."
        )));
    }
    Ok(name.to_string())
}

/// An account route, past the gate.
async fn act<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    provider: &str,
    pc: &PasskeyConfig,
    c: &crate::access::AccessClaims,
    action: Action<'_>,
) -> AppResult<Done> {
    let users = ctx.p.users();
    let user = c.sub.as_str();
    match action {
        Action::List => {
            let list: Vec<Value> = users
                .passkeys_of(user)
                .await?
                .iter()
                .map(Passkey::to_json)
                .collect();
            let mut r = Response::json(200, &json!({ "passkeys": list }));
            r.set_header("cache-control", "no-store");
            Ok((r, None))
        }
        Action::Options => {
            let exclude: Vec<String> = users
                .passkeys_of(user)
                .await?
                .iter()
                .map(|p| format!("{{\"type\":\"public-key\",\"id\":{}}}", q(&p.id)))
                .collect();
            let label = c.email.as_deref().or(c.name.as_deref()).unwrap_or(user);
            let display = c.name.as_deref().unwrap_or(label);
            let fill = |challenge: &str| {
                format!(
                    "{{\"rp\":{{\"id\":{rp},\"name\":{rp}}},\"user\":{{\"id\":\"{}\",\"name\":{},\"displayName\":{}}},\
\"challenge\":\"{challenge}\",\"pubKeyCredParams\":[{{\"type\":\"public-key\",\"alg\":-7}},\
{{\"type\":\"public-key\",\"alg\":-8}},{{\"type\":\"public-key\",\"alg\":-257}}],\"timeout\":{},\
\"excludeCredentials\":[{}],\"authenticatorSelection\":{{\"residentKey\":\"required\",\
\"requireResidentKey\":true,\"userVerification\":\"{}\"}},\"attestation\":\"none\"}}",
                    b64url(user.as_bytes()),
                    q(label),
                    q(display),
                    challenge::TTL * 1000,
                    exclude.join(","),
                    pc.user_verification(),
                    rp = q(&pc.rp_id),
                )
            };
            Ok((options(ctx, Purpose::Register, user, fill), None))
        }
        Action::Register => register(ctx, req, provider, pc, user).await,
        Action::Rename(id) => {
            let body = Body::parse(req)?;
            let name =
                passkey_name(Some(body.text("name").ok_or_else(|| {
                    AppError::BadRequest("Give the passkey a \"name\".".into())
                })?))?;
            if !users.rename_passkey(user, id, &name).await? {
                return Err(AppError::NotFound);
            }
            Ok((
                Response::new(204),
                Some(("passkey_renamed", json!({ "id": id }))),
            ))
        }
        Action::Delete(id) => {
            // Unlinking its identity takes the passkey with it; never the last sign-in method.
            let issuer = pc.issuer();
            let key = crate::ids::IdentityKey {
                issuer: &issuer,
                sub: id,
            };
            match users.unlink_identity(&c.sub, &key).await? {
                UnlinkOutcome::Unlinked => Ok((
                    Response::new(204),
                    Some(("passkey_deleted", json!({ "id": id }))),
                )),
                UnlinkOutcome::LastIdentity => Err(AppError::Conflict(
                    "This is your last sign-in method; add another before removing it.".into(),
                )),
                UnlinkOutcome::NotFound => Err(AppError::NotFound),
            }
        }
    }
}

/// `POST /auth/passkeys/register`: RegistrationResponseJSON (and an optional `name`) → 201
/// with the passkey; 409 when the credential is registered already.
async fn register<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    provider: &str,
    pc: &PasskeyConfig,
    user: &str,
) -> AppResult<Done> {
    let body = Body::parse(req)?;
    let name = passkey_name(body.text("name"))?;
    let ch = browser_challenge(ctx, req, Purpose::Register)?;
    if ch.user != user {
        return Err(WebAuthnError::Challenge("given to another account").into());
    }
    let raw_id = body.credential_id()?;
    let cred = crate::webauthn::verify_registration(
        &expected(ctx, pc, &ch),
        &body.response("clientDataJSON")?,
        &body.response("attestationObject")?,
        &raw_id,
    )?;
    spend(ctx, &ch).await?;
    let pk = Passkey {
        id: b64url(&cred.id),
        issuer: pc.issuer(),
        user_id: user.to_string(),
        name,
        key: cred.key,
        alg: cred.alg,
        sign_count: cred.sign_count,
        backup_eligible: cred.flags & BE != 0,
        backed_up: cred.flags & BS != 0,
        created_at: ctx.p.now(),
        last_used_at: None,
        owner_email: None,
        owner_email_verified: false,
    };
    if ctx.p.users().add_passkey(&pk, provider).await? == AddOutcome::AlreadyRegistered {
        return Err(AppError::Conflict(
            "This passkey is registered already; nothing was changed.".into(),
        ));
    }
    let mut r = Response::json(201, &pk.to_json());
    r.append_header("set-cookie", &ctx.jar().clear(challenge::COOKIE));
    let detail = json!({"id": pk.id, "algorithm": pk.alg.name()});
    Ok((r, Some(("passkey_added", detail))))
}

/// `POST /auth/passkeys/login/options`: PublicKeyCredentialRequestOptionsJSON for any of
/// this site's passkeys (discoverable credentials: no list of ids is given away).
async fn login_options<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Response> {
    let (_, pc) = provider(ctx.cfg)?;
    check_own_origin(ctx.cfg, req)?;
    ratelimit::per_network(ctx.p.limiter(), Flow::Start, req).await?;
    let fill = |challenge: &str| {
        format!(
            "{{\"challenge\":\"{challenge}\",\"rpId\":{},\"timeout\":{},\"userVerification\":\"{}\",\"allowCredentials\":[]}}",
            q(&pc.rp_id),
            challenge::TTL * 1000,
            pc.user_verification()
        )
    };
    Ok(options(ctx, Purpose::Login, "", fill))
}

/// `POST /auth/passkeys/login[?return_to=]`: AuthenticationResponseJSON → 200
/// `{"return_to"}` with the new session's cookies.
async fn login<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Response> {
    let (provider, pc) = provider(ctx.cfg)?;
    check_own_origin(ctx.cfg, req)?;
    ratelimit::per_network(ctx.p.limiter(), Flow::Callback, req).await?;
    let return_to = super::login::checked_return_to(ctx.cfg, req.query("return_to").as_deref())?;
    let body = Body::parse(req)?;
    let ch = browser_challenge(ctx, req, Purpose::Login)?;
    let raw_id = body.credential_id()?;
    let users = ctx.p.users();
    let pk = users
        .passkey(&pc.issuer(), &b64url(&raw_id))
        .await?
        .ok_or_else(|| AppError::BadRequest("This passkey is not registered here.".into()))?;
    // The user handle, when the authenticator gives one, is the id its passkey was made for.
    let handle = body.response_member("userHandle");
    if handle.is_some_and(|h| !h.is_null()) && body.response("userHandle")? != pk.user_id.as_bytes()
    {
        return Err(WebAuthnError::Malformed("userHandle").into());
    }
    let a = crate::webauthn::verify_assertion(
        ctx.p.sig(),
        &expected(ctx, pc, &ch),
        &pk.key,
        pk.alg,
        &body.response("authenticatorData")?,
        &body.response("clientDataJSON")?,
        &body.response("signature")?,
    )
    .await?;
    spend(ctx, &ch).await?;
    if crate::webauthn::counter_regressed(pk.sign_count, a.sign_count) {
        let detail = json!({"id": pk.id, "stored": pk.sign_count, "presented": a.sign_count});
        let owner = pk.user_id.as_str().into();
        ctx.event(req, Some(&owner), "passkey_counter_regressed", detail)
            .await;
    }
    let used = Passkey {
        sign_count: a.sign_count,
        backed_up: a.flags & BS != 0,
        ..pk.clone()
    };
    users.passkey_used(&used, ctx.p.now()).await?;
    let profile = Profile {
        issuer: pk.issuer,
        sub: pk.id,
        provider: provider.to_string(),
        email: None,
        email_verified: None,
        name: None,
        picture: None,
        raw: Value::Null,
        vendor_logout: None,
    };
    // The policy's email rules apply to the user's stored email (a passkey carries none).
    let email = crate::policy::Email {
        address: used.owner_email.as_deref(),
        verified: used.owner_email_verified,
    };
    let signed_in =
        super::login::sign_in(ctx, req, provider, &profile, email, &return_to, None).await?;
    // The sign-in's redirect, as JSON for the script: the same cookies, and where to go.
    let mut r = Response::json(200, &json!({ "return_to": return_to.as_str() }));
    r.set_header("cache-control", "no-store");
    for c in signed_in.headers_named("set-cookie") {
        r.append_header("set-cookie", c);
    }
    r.append_header("set-cookie", &ctx.jar().clear(challenge::COOKIE));
    Ok(r)
}
