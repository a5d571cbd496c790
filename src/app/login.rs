//! The sign-in flow: the login page, starting a provider's flow (login transaction, redirect),
//! and the callback (transaction check, provider verification, linking, new session,
//! cookies, audit event, redirect to `return_to`).

use super::auth::issue_for;
use super::invitations;
use super::Ctx;
use crate::cookies::{ACCESS, SESSION};
use crate::crypto::sha256_b64url;
use crate::error::{AppError, AppResult};
use crate::http::{Method, Request, Response};
use crate::platform::Platform;
use crate::providers::callback_state;
use crate::ratelimit::{self, Flow};
use crate::return_to::ReturnTo;
use crate::sessions::SessionRecord;
use crate::txn::{self, LoginTxn, Purpose};
use crate::users::User;
use crate::{linking, pages, providers, return_to};

pub(super) fn checked_return_to(
    cfg: &crate::config::Config,
    raw: Option<&str>,
) -> AppResult<ReturnTo> {
    return_to::validate(cfg, raw)
        .map_err(|r| AppError::BadRequest(format!("return_to refused: {}.", r.0)))
}

/// `GET /auth/login[?provider=&return_to=]`.
pub async fn login<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> AppResult<Response> {
    let mut return_to = checked_return_to(ctx.cfg, req.query("return_to").as_deref())?;
    let invitation = req.query(invitations::PARAM);
    let Some(name) = req.query("provider") else {
        let mut notice = ctx.cfg.policy.login_hint();
        if let Some(token) = &invitation {
            // An anonymous read of D1: bounded per client network like a login start.
            ratelimit::per_network(ctx.p.limiter(), Flow::Start, req).await?;
            let inv = invitations::usable(ctx, &sha256_b64url(token.as_bytes())).await?;
            let to = inv.email.map(|e| format!(" as {e}")).unwrap_or_default();
            notice = Some(format!(
                "You are invited to sign in{to}. Choose how to sign in; the invitation works once."
            ));
            // Validated when it was stored, and again now (the settings may have changed).
            return_to = checked_return_to(ctx.cfg, Some(&inv.return_to))?;
        }
        let list: Vec<pages::LoginOption> = ctx
            .cfg
            .providers
            .iter()
            // An email form starts its own transaction, which could not carry the invitation.
            .filter(|(_, c)| invitation.is_none() || !c.is_magic_link())
            .map(|(n, c)| pages::LoginOption {
                name: n.clone(),
                display: c.display_name().to_string(),
                email_form: c.is_magic_link(),
                passkey: matches!(c, providers::ProviderConfig::Passkey(_)),
            })
            .collect();
        let nonce = crate::crypto::random_token();
        let page = pages::login_page(
            &list,
            return_to.as_str(),
            notice.as_deref(),
            invitation.as_deref(),
            &nonce,
        );
        let mut r = Response::html(200, page);
        if list.iter().any(|o| o.passkey) {
            r.set_header("content-security-policy", &pages::csp_with_script(&nonce));
        }
        r.set_header("cache-control", "no-store");
        r.set_header("referrer-policy", "no-referrer");
        return Ok(r);
    };
    let provider = ctx
        .cfg
        .providers
        .get(&name)
        .ok_or_else(|| AppError::BadRequest(format!("Unknown provider {name:?}.")))?;
    // Before anything is stored or sent (XWMS is called with the client secret).
    ratelimit::per_network(ctx.p.limiter(), Flow::Start, req).await?;
    let purpose = match super::identities::link_user_for_login(ctx, req, provider).await? {
        Some(_) if invitation.is_some() => {
            return Err(AppError::BadRequest(
                "An invitation is accepted by signing in, not while linking.".into(),
            ))
        }
        Some(user_id) => Purpose::Link { user_id },
        // The invitation rides in this browser's login transaction.
        None => match invitation {
            Some(i) if provider.needs_transaction() => Purpose::SignUp {
                invitation: sha256_b64url(i.as_bytes()),
            },
            Some(_) => {
                return Err(AppError::BadRequest(
                    "This provider cannot carry an invitation: choose another.".into(),
                ))
            }
            None => Purpose::SignIn,
        },
    };
    let mut t = LoginTxn::new(&name, return_to, purpose, ctx.p.now());
    t.register = match req.query("action").as_deref() {
        None | Some("login") => false,
        Some("register") => true,
        Some(other) => {
            return Err(AppError::BadRequest(format!(
                "Unknown action {other:?}: use login or register."
            )))
        }
    };
    let location = match providers::begin(ctx.p, provider, &t.flow(ctx.cfg)).await? {
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

/// `GET /auth/callback/{name}` (and, for the `email` kind, the code of
/// `POST /auth/magic-link/verify`): every outcome past the rate limit but a wrong code clears
/// the transaction cookie. A failure is an audit event only once a login transaction was spent: a callback
/// that carries none (forged, replayed, from another browser, or a transaction-less kind)
/// writes no row — it is counted by the per-network limit and logged, so a flood of them
/// writes nothing.
pub async fn callback<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    name: &str,
) -> AppResult<Response> {
    let provider = ctx.cfg.providers.get(name).ok_or(AppError::NotFound)?;
    ratelimit::per_network(ctx.p.limiter(), Flow::Callback, req).await?;
    let req = &providers::normalize_callback(req);
    if let (Method::Get, Some(token)) = (req.method, req.query(txn::INVITE_PARAM)) {
        return invitation_page(ctx, req, name, provider, &token).await;
    }
    if provider.is_email() && !txn::holds(ctx.cfg, req, callback_state(req).as_deref()) {
        // An emailed link opened on another device: nothing is spent or recorded, and this
        // browser's own sign-in (if any) keeps its cookie. The person can still finish where
        // they asked, with the code.
        ctx.p
            .log("gatehouse: email link opened outside the browser that asked");
        let e = AppError::BadRequest(providers::email::OTHER_BROWSER.into());
        return Ok(e.into_response(req.wants()));
    }
    let outcome = finish_sign_in(ctx, req, name, provider).await;
    // A wrong emailed code leaves the sign-in open for another try.
    let keep_txn = matches!(outcome, Err(AppError::WrongCode { .. }));
    let mut r = match outcome {
        Ok(r) => r,
        Err(e) => {
            // Past a spent transaction: a refusal of the transaction itself (or a kind
            // without one, or a wrong code, which spends nothing) is not one.
            let spent = provider.needs_transaction()
                && !matches!(
                    e,
                    AppError::LoginTransaction(_) | AppError::WrongCode { .. }
                );
            if spent {
                let mut detail = serde_json::json!({"provider": name, "error": e.code()});
                let kind = match &e {
                    AppError::AccessDenied(why) => {
                        detail["reason"] = why.as_str().into();
                        "sign_in_denied"
                    }
                    _ => "sign_in_failed",
                };
                ctx.event(req, None, kind, detail).await;
            }
            if let Some(line) = e.log_line() {
                ctx.p.log(&line);
            }
            e.into_response(req.wants())
        }
    };
    if !keep_txn {
        r.append_header("set-cookie", &txn::clear_cookie(ctx.cfg));
    }
    Ok(r)
}

/// `GET /auth/callback/{name}?gh_invite=…`: opening an emailed invitation spends nothing.
/// Mail scanners open links, and another site could send a victim's browser to someone's
/// invitation to sign it into that account (login CSRF): so the link shows who it signs in
/// and a button, and only the same-origin POST of that button ([`confirm_invitation`]) takes
/// the invitation and the provider's token.
async fn invitation_page<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    name: &str,
    provider: &providers::ProviderConfig,
    token: &str,
) -> AppResult<Response> {
    let invitation = txn::show_invitation(ctx.p, token, name).await?;
    let action = match req.url.query() {
        Some(q) => format!("{}?{q}", req.path()),
        None => req.path().to_string(),
    };
    let page = pages::invitation_page(provider.display_name(), invitation.invitee(), &action);
    let mut r = Response::html(200, page);
    r.set_header("cache-control", "no-store");
    // The URL carries single-use tokens: keep them out of Referer headers.
    r.set_header("referrer-policy", "no-referrer");
    Ok(r)
}

/// `POST /auth/callback/{name}?gh_invite=…`: the button of [`invitation_page`], pressed on
/// Gatehouse's own page — its exact origin, not merely an allowed one (an app allowed for
/// `return_to` and CORS must not be able to push an invitation into a browser either); then
/// the callback proper.
pub async fn confirm_invitation<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    name: &str,
) -> AppResult<Response> {
    if req.query(txn::INVITE_PARAM).is_none() {
        return Err(AppError::BadRequest(
            "Only an emailed sign-in link is confirmed here; providers return with GET.".into(),
        ));
    }
    super::check_own_origin(ctx.cfg, req)?;
    callback(ctx, req, name).await
}

/// The callback proper, one straight walk: the transaction (spent, if the kind has one) →
/// the kind's own checks before spending (the `email` kind's link token or code) →
/// the provider verifies what came back → the transaction's purpose decides what the
/// identity is for → a session (or a linked identity).
async fn finish_sign_in<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    name: &str,
    provider: &providers::ProviderConfig,
) -> AppResult<Response> {
    let (t, return_to) = if provider.needs_transaction() {
        let state = callback_state(req);
        let pending = txn::open(ctx.p, ctx.cfg, req, state.as_deref(), name).await?;
        if provider.is_email() {
            super::email_code::before_spend(ctx, req, &pending).await?;
        }
        let t = pending.spend(ctx.p).await?;
        // Validated when the sign-in started, and again now (the settings may have changed).
        let return_to = checked_return_to(ctx.cfg, Some(&t.return_to))?;
        (Some(t), return_to)
    } else {
        // Transaction-less kinds (passage) carry `return_to` in the query; a bad one is
        // refused before anything is verified or written.
        (
            None,
            checked_return_to(ctx.cfg, req.query("return_to").as_deref())?,
        )
    };
    let flow = t.as_ref().map(|t| t.flow(ctx.cfg));
    let profile = providers::complete(ctx.p, provider, req, flow.as_ref()).await?;
    match t.as_ref().map_or(&Purpose::SignIn, |t| &t.purpose) {
        Purpose::Link { user_id } => {
            super::identities::finish_link(ctx, req, name, &profile, user_id, &return_to).await
        }
        purpose @ (Purpose::SignIn | Purpose::Invitation { .. } | Purpose::SignUp { .. }) => {
            let invitation = match purpose {
                Purpose::SignUp { invitation } => Some(invitation.as_str()),
                _ => None,
            };
            let signed_in = sign_in(ctx, req, name, &profile, &return_to, invitation).await;
            if signed_in.is_err() {
                // The vendor step may have made a session or spent a token of its own
                // (Stytch, LoginRadius): it must not outlive a sign-in that failed here.
                super::ending::end_vendor(ctx, name, profile.vendor_logout.as_deref()).await;
            }
            signed_in
        }
    }
}

/// The verified `profile` is linked to its user, who gets a new session (ending the one this
/// browser had before, if any) and is sent to `return_to`.
pub(super) async fn sign_in<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    name: &str,
    profile: &crate::users::Profile,
    return_to: &ReturnTo,
    invitation: Option<&str>,
) -> AppResult<Response> {
    let now = ctx.p.now();
    if let Some(token_hash) = invitation {
        invitations::redeem(ctx, req, name, profile, token_hash).await?;
    }
    let may_create = admit(ctx, name, profile)?;
    // The whole sign-in in D1 is one batch, its audit event included; the session then costs
    // two KV writes (see `crate::sessions`).
    let detail = serde_json::json!({"provider": name, "issuer": profile.issuer});
    let event = ctx.new_event(req, None, "sign_in", detail);
    let signed_in =
        linking::sign_in_recorded(ctx.p.users(), profile, Some(&event), now, may_create).await?;
    let Some(user) = signed_in else {
        // A new identity where sign-up is not open: the batch wrote nothing.
        return Err(AppError::AccessDenied(refused_newcomer(ctx, name, profile)));
    };
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
    let mut r = Response::redirect(return_to.as_str());
    for c in start_session(ctx, &user, record).await? {
        r.append_header("set-cookie", &c);
    }
    end_superseded_session(ctx, req, profile.vendor_logout.as_deref()).await;
    Ok(r)
}

/// The access policy for this sign-in, before anything is written (a refused new identity
/// leaves no user, identity or session): the email rules on the verified profile, checked
/// here; and whether a new identity may become a user (sign-up open), which the sign-in's
/// one D1 batch applies — an unknown identity then writes nothing and comes back empty
/// ([`refused_newcomer`] says why). No extra round trip either way.
fn admit<P: Platform>(
    ctx: &Ctx<'_, P>,
    name: &str,
    profile: &crate::users::Profile,
) -> AppResult<bool> {
    use crate::policy::{Arrival, SignUp};
    let policy = &ctx.cfg.policy;
    policy
        .admit(name, profile_email(profile), Arrival::Returning)
        .map_err(AppError::AccessDenied)?;
    Ok(matches!(
        policy.rules_for(name).sign_up.unwrap_or_default(),
        SignUp::Open
    ))
}

/// Why a new identity is refused where sign-up is not open (the policy's own words).
fn refused_newcomer<P: Platform>(
    ctx: &Ctx<'_, P>,
    name: &str,
    profile: &crate::users::Profile,
) -> String {
    ctx.cfg
        .policy
        .admit(name, profile_email(profile), crate::policy::Arrival::New)
        .err()
        .unwrap_or_else(|| "New accounts are not accepted here.".into())
}

fn profile_email(profile: &crate::users::Profile) -> crate::policy::Email<'_> {
    crate::policy::Email {
        address: profile.email.as_deref(),
        verified: profile.email_verified == Some(true),
    }
}

/// The session this browser had before signing in again: its cookie is replaced, so nobody
/// could use it any more, but it would linger in the device list until it idled out. Its
/// vendor side ends too, unless the vendor handed the new sign-in the same session or token
/// (`new_vendor_handle`). Best effort: the new sign-in stands either way.
async fn end_superseded_session<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    new_vendor_handle: Option<&str>,
) {
    let Some(raw) = ctx.jar().get(req, SESSION) else {
        return;
    };
    let ended = async {
        let Some((sid, old)) = ctx.sessions().lookup(&raw, ctx.p.now()).await? else {
            return Ok(());
        };
        super::ending::end_record(ctx, &sid, &old, new_vendor_handle).await?;
        let detail = serde_json::json!({"session_id": sid.as_str(), "reason": "superseded"});
        ctx.event(req, Some(&old.user_id), "session_revoked", detail)
            .await;
        Ok::<(), AppError>(())
    }
    .await;
    if let Err(e) = ended {
        ctx.p.log(&format!(
            "gatehouse: could not end the superseded session: {}",
            e.log_line().unwrap_or_else(|| e.to_string())
        ));
    }
}

/// Creates a session for `user` and returns the cookies that carry it.
async fn start_session<P: Platform>(
    ctx: &Ctx<'_, P>,
    user: &User,
    record: SessionRecord,
) -> AppResult<Vec<String>> {
    let sessions = ctx.sessions();
    let (raw, sid) = sessions.create(record, ctx.p.now()).await?;
    let token = match issue_for(ctx, user, &sid).await {
        Ok((_, token)) => token,
        Err(e) => {
            // Nobody will ever hold this session: end it now rather than leave a device in
            // the user's list that no browser has (until it idles out).
            if let Err(r) = super::ending::revoke(ctx, &sid, &user.id).await {
                ctx.p.log(&format!(
                    "gatehouse: could not end a session whose token failed: {}",
                    r.log_line().unwrap_or_else(|| r.to_string())
                ));
            }
            return Err(e);
        }
    };
    let jar = ctx.jar();
    Ok(vec![
        jar.set(SESSION, raw.expose(), ctx.cfg.session_ttl),
        jar.set(ACCESS, &token, ctx.cfg.access_ttl),
    ])
}
