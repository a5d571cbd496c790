//! The login transaction: what must survive the round trip to the provider (state, nonce,
//! PKCE verifier, provider, `return_to`). It lives in KV under the hash of its `state` for 10
//! minutes; the browser that started it holds a cookie with the state and an HMAC under
//! `STATE_SECRET`, so a callback in another browser or without the cookie is refused.
//!
//! Single use is the spent-set's job ([`SingleUse`], a conditional write in D1), not KV's: a
//! KV get-then-delete lets two concurrent callbacks both read the transaction before either
//! deletes it. A callback reads the transaction, checks it, then spends its state; of any
//! number of concurrent callbacks exactly one gets past the spend. The KV entry is left to
//! expire (deleting it would be one more KV operation on the sign-in path, and it is dead
//! once spent).

use crate::config::Config;
use crate::cookies::{CookieJar, TXN};
use crate::crypto::{b64url, b64url_decode, ct_eq, hmac_sha256, random_token, sha256_b64url};
use crate::error::{AppError, AppResult};
use crate::fields::Fields;
use crate::http::Request;
use crate::ids::UserId;
use crate::platform::{Kv, Platform, SingleUse, SpendKind};
use crate::providers::Flow;
use crate::return_to::ReturnTo;
use serde::Serialize;

/// How long a sign-in may take.
pub const TXN_TTL: u64 = crate::providers::SIGN_IN_TTL;
/// How long a spent state is remembered past [`TXN_TTL`]: longer than any clock difference
/// between two isolates, so that a transaction is refused as expired before its spent row is
/// pruned.
const SPENT_MARGIN: i64 = 300;

/// Why a sign-in was started: what its callback does with the identity the provider
/// vouches for. The callback is one straight walk — transaction → provider → purpose →
/// session — and a new kind of flow is a new variant here, not another optional field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Sign in (a first sign-in makes the user) and start a session.
    SignIn,
    /// A signed-in user links this provider's identity to their account.
    Link { user_id: UserId },
    /// An emailed invitation from the admin API signs its bearer in; `invitee` is the address
    /// it was sent to, shown on its confirmation page.
    Invitation { invitee: String },
    /// Sign in and redeem a sign-up invitation of the access policy (`POST
    /// /admin/invitations`); `invitation` is the SHA-256 of its secret.
    SignUp { invitation: String },
}

/// A login in progress.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoginTxn {
    pub provider: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// Its stored form: validated again when the callback reads it back.
    pub return_to: String,
    pub created_at: i64,
    pub purpose: Purpose,
    /// The person asked to create an account (`/auth/login?…&action=register`); providers
    /// with separate sign-up pages (LoginRadius) open that one.
    pub register: bool,
    /// Data of the provider's own, like `nonce`: for the `email` kind, the address and the
    /// hashes of the code and link sent to it ([`crate::providers::email::Challenge::pack`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl Purpose {
    /// Reads what `Serialize` writes: `"sign_in"`, `{"link":{"user_id":…}}`,
    /// `{"sign_up":{"invitation":…}}`, `{"invitation":{"invitee":…}}`.
    fn read(v: &serde_json::Value) -> Result<Purpose, String> {
        if v.as_str() == Some("sign_in") {
            return Ok(Purpose::SignIn);
        }
        let f = Fields::of(v)?;
        if let Some(link) = f.get("link") {
            return Ok(Purpose::Link {
                user_id: UserId::from(Fields::of(link)?.str("user_id")?),
            });
        }
        if let Some(up) = f.get("sign_up") {
            return Ok(Purpose::SignUp {
                invitation: Fields::of(up)?.str("invitation")?,
            });
        }
        if let Some(inv) = f.get("invitation") {
            return Ok(Purpose::Invitation {
                invitee: Fields::of(inv)?.str("invitee")?,
            });
        }
        Err("unknown purpose".into())
    }
}

impl LoginTxn {
    fn read(v: &serde_json::Value) -> Result<LoginTxn, String> {
        let f = Fields::of(v)?;
        Ok(LoginTxn {
            provider: f.str("provider")?,
            state: f.str("state")?,
            nonce: f.str("nonce")?,
            pkce_verifier: f.str("pkce_verifier")?,
            return_to: f.str("return_to")?,
            created_at: f.i64("created_at")?,
            purpose: Purpose::read(f.value("purpose")?)?,
            register: f.opt_bool("register")?.unwrap_or(false),
            email: f.opt_str("email")?,
        })
    }
}

impl LoginTxn {
    pub fn new(provider: &str, return_to: ReturnTo, purpose: Purpose, now: i64) -> LoginTxn {
        LoginTxn {
            provider: provider.to_string(),
            state: random_token(),
            nonce: random_token(),
            pkce_verifier: random_token(),
            return_to: return_to.into_string(),
            created_at: now,
            purpose,
            register: false,
            email: None,
        }
    }

    /// The address an invitation was sent to (for its confirmation page).
    pub fn invitee(&self) -> Option<&str> {
        match &self.purpose {
            Purpose::Invitation { invitee } => Some(invitee),
            _ => None,
        }
    }

    /// The PKCE S256 challenge of the verifier.
    pub fn pkce_challenge(&self) -> String {
        sha256_b64url(self.pkce_verifier.as_bytes())
    }

    /// What the provider's flow needs of this transaction.
    pub fn flow(&self, cfg: &Config) -> Flow<'_> {
        Flow {
            redirect_uri: cfg.redirect_uri(&self.provider),
            state: &self.state,
            nonce: &self.nonce,
            pkce_verifier: &self.pkce_verifier,
            register: self.register,
            return_to: (self.return_to != crate::return_to::DEFAULT).then_some(&self.return_to),
            email: self.email.as_deref(),
        }
    }
}

fn key(state: &str) -> String {
    format!("t:{}", sha256_b64url(state.as_bytes()))
}

fn mac(cfg: &Config, state: &str) -> String {
    b64url(&hmac_sha256(
        cfg.state_secret.expose().as_bytes(),
        format!("gatehouse-txn|{state}").as_bytes(),
    ))
}

/// Stores `txn` and returns the `Set-Cookie` value that binds it to this browser.
pub async fn start<K: Kv>(kv: &K, cfg: &Config, txn: &LoginTxn) -> AppResult<String> {
    let json = serde_json::to_string(txn).map_err(|e| AppError::Internal(e.to_string()))?;
    kv.put(&key(&txn.state), &json, TXN_TTL).await?;
    let jar = CookieJar {
        secure: cfg.secure_cookies,
    };
    Ok(jar.set(
        TXN,
        &format!("{}.{}", txn.state, mac(cfg, &txn.state)),
        TXN_TTL,
    ))
}

/// The query parameter of an invitation link (see [`start_invitation`]).
pub const INVITE_PARAM: &str = "gh_invite";

fn invite_key(token: &str) -> String {
    format!("ti:{}", sha256_b64url(token.as_bytes()))
}

/// Stores `txn` as an invitation and returns the callback URL that carries it
/// (`{PUBLIC_URL}/auth/callback/{provider}?gh_invite=…`).
///
/// An invitation is a sign-in that the admin API (`POST /admin/magic-links`) starts for
/// someone whose browser did not ask for it, so it cannot be bound to a browser: the emailed
/// link is its only bearer, like the provider's own magic-link token in the same link. It is
/// single use, lives [`TXN_TTL`], and sits under its own KV prefix, so that nothing but the
/// admin API (which needs `ADMIN_API_KEY`) can make one, and an ordinary transaction can
/// never be completed without its browser's cookie by renaming `gh_state` to `gh_invite`.
pub async fn start_invitation<K: Kv>(kv: &K, cfg: &Config, txn: &LoginTxn) -> AppResult<String> {
    let json = serde_json::to_string(txn).map_err(|e| AppError::Internal(e.to_string()))?;
    kv.put(&invite_key(&txn.state), &json, TXN_TTL).await?;
    Ok(invitation_url(cfg, txn))
}

/// The invitation a `gh_invite` token names, if it is still there, fresh and for `provider`,
/// without taking it: [`show_invitation`] and [`finish`] check it before anything is spent.
async fn peek_invitation<K: Kv>(
    kv: &K,
    token: &str,
    provider: &str,
    now: i64,
) -> AppResult<LoginTxn> {
    let json = kv.get(&invite_key(token)).await?.ok_or_else(|| {
        AppError::LoginTransaction("This sign-in link has expired or was already used.".into())
    })?;
    checked(parse_stored(&json)?, provider, now)
}

/// The invitation a `gh_invite` token names, for its confirmation page: like
/// [`peek_invitation`], and refused once spent (its KV entry is left to expire).
pub async fn show_invitation<P: Platform>(
    p: &P,
    token: &str,
    provider: &str,
) -> AppResult<LoginTxn> {
    let txn = peek_invitation(p.kv(), token, provider, p.now()).await?;
    let hash = sha256_b64url(token.as_bytes());
    if p.single_use()
        .is_spent(SpendKind::Invitation, &hash)
        .await?
    {
        return Err(AppError::LoginTransaction(
            "This sign-in link has expired or was already used.".into(),
        ));
    }
    Ok(txn)
}

/// The callback URL of an invitation (what [`start_invitation`] returns).
pub fn invitation_url(cfg: &Config, txn: &LoginTxn) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair(INVITE_PARAM, &txn.state)
        .finish();
    format!("{}?{query}", cfg.redirect_uri(&txn.provider))
}

/// A transaction that passed every check but is not spent yet: a kind that must check
/// more first (the `email` kind's link token or code) does so before [`Pending::spend`].
#[derive(Debug)]
pub struct Pending {
    kind: SpendKind,
    secret: String,
    pub txn: LoginTxn,
}

impl Pending {
    /// The hash of the transaction's secret: a key for what is counted against it.
    pub fn key_hash(&self) -> String {
        sha256_b64url(self.secret.as_bytes())
    }

    /// Spends it without completing it: the request is over (the `email` kind's last wrong
    /// code). A lost race is a refusal, and the request is over just the same.
    pub async fn end<P: Platform>(&self, p: &P) -> AppResult<()> {
        spend(p, self.kind, &self.secret, self.txn.clone())
            .await
            .map(|_| ())
    }

    /// Spends it: `Ok(txn)` for the one caller that does, a refusal for a replay or the
    /// loser of a race.
    pub async fn spend<P: Platform>(self, p: &P) -> AppResult<LoginTxn> {
        spend(p, self.kind, &self.secret, self.txn).await
    }
}

/// Takes the transaction named by `state` (single use), checking that this browser started
/// it and that it belongs to `provider`. A callback carrying `gh_invite` instead completes an
/// invitation (see [`start_invitation`]), which no browser holds a cookie for.
pub async fn finish<P: Platform>(
    p: &P,
    cfg: &Config,
    req: &Request,
    state: Option<&str>,
    provider: &str,
) -> AppResult<LoginTxn> {
    open(p, cfg, req, state, provider).await?.spend(p).await
}

/// Like [`finish`], without spending.
pub async fn open<P: Platform>(
    p: &P,
    cfg: &Config,
    req: &Request,
    state: Option<&str>,
    provider: &str,
) -> AppResult<Pending> {
    let now = p.now();
    let kv = p.kv();
    if let Some(token) = req.query(INVITE_PARAM) {
        // Checked before it is spent: a link sent to the wrong provider's callback does not
        // use the invitation up.
        let txn = peek_invitation(kv, &token, provider, now).await?;
        return Ok(Pending {
            kind: SpendKind::Invitation,
            secret: token,
            txn,
        });
    }
    let cookie_state = cookie_state(cfg, req)?;
    let state = state
        .ok_or_else(|| AppError::LoginTransaction("The provider returned no state.".into()))?;
    if !ct_eq(state.as_bytes(), cookie_state.as_bytes()) {
        return Err(AppError::LoginTransaction(
            "This sign-in was started in another browser or tab.".into(),
        ));
    }
    let json = kv.get(&key(state)).await?.ok_or_else(|| {
        AppError::LoginTransaction("This sign-in has expired or was already used.".into())
    })?;
    Ok(Pending {
        kind: SpendKind::LoginTxn,
        secret: state.to_string(),
        txn: checked(parse_stored(&json)?, provider, now)?,
    })
}

/// Whether this browser holds a valid cookie for the transaction `state` (for a page that
/// must say "wrong browser" rather than "expired").
pub fn holds(cfg: &Config, req: &Request, state: Option<&str>) -> bool {
    match (cookie_state(cfg, req), state) {
        (Ok(mine), Some(s)) => ct_eq(mine.as_bytes(), s.as_bytes()),
        _ => false,
    }
}

/// The state of this browser's transaction cookie, once its MAC is checked.
pub fn cookie_state(cfg: &Config, req: &Request) -> AppResult<String> {
    let jar = CookieJar {
        secure: cfg.secure_cookies,
    };
    let cookie = jar.get(req, TXN).ok_or_else(|| {
        AppError::LoginTransaction("No sign-in was started in this browser.".into())
    })?;
    let (cookie_state, cookie_mac) = cookie
        .split_once('.')
        .ok_or_else(|| AppError::LoginTransaction("The sign-in cookie is malformed.".into()))?;
    if b64url_decode(cookie_mac).is_err()
        || !ct_eq(cookie_mac.as_bytes(), mac(cfg, cookie_state).as_bytes())
    {
        return Err(AppError::LoginTransaction(
            "The sign-in cookie is invalid.".into(),
        ));
    }
    Ok(cookie_state.to_string())
}

/// Spends `secret` (a state or an invitation token, by its hash) for `txn`, which has passed
/// every other check: `Ok(txn)` for the one caller that spends it, a refusal for a replay or
/// the loser of a race.
async fn spend<P: Platform>(
    p: &P,
    kind: SpendKind,
    secret: &str,
    txn: LoginTxn,
) -> AppResult<LoginTxn> {
    let until = txn.created_at + TXN_TTL as i64 + SPENT_MARGIN;
    let spent = p
        .single_use()
        .spend(kind, &sha256_b64url(secret.as_bytes()), until)
        .await?;
    if !spent {
        return Err(AppError::LoginTransaction(
            "This sign-in was already used.".into(),
        ));
    }
    Ok(txn)
}

/// A stored transaction. One that does not parse (written by an older version of Gatehouse
/// just before an upgrade) is refused like an expired one: the person starts again.
fn parse_stored(json: &str) -> AppResult<LoginTxn> {
    let read = || -> Result<LoginTxn, String> {
        let v: serde_json::Value =
            serde_json::from_slice(json.as_bytes()).map_err(|e| e.to_string())?;
        LoginTxn::read(&v)
    };
    read().map_err(|e| {
        AppError::LoginTransaction(format!(
            "This sign-in has expired ({e}); please start again."
        ))
    })
}

/// A taken transaction is still fresh and belongs to `provider`.
fn checked(txn: LoginTxn, provider: &str, now: i64) -> AppResult<LoginTxn> {
    if now - txn.created_at > TXN_TTL as i64 {
        return Err(AppError::LoginTransaction(
            "This sign-in has expired.".into(),
        ));
    }
    if txn.provider != provider {
        return Err(AppError::LoginTransaction(
            "This sign-in belongs to another provider.".into(),
        ));
    }
    Ok(txn)
}

/// The `Set-Cookie` value that removes the transaction cookie.
pub fn clear_cookie(cfg: &Config) -> String {
    CookieJar {
        secure: cfg.secure_cookies,
    }
    .clear(TXN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;
    use crate::testing::{block_on, test_config, TestPlatform};

    fn platform(now: i64) -> TestPlatform {
        let p = TestPlatform::new(|_| unreachable!("no outbound calls"));
        p.clock.set(now);
        p
    }

    fn callback_req(cookie: Option<&str>) -> Request {
        let r = Request::new(Method::Get, "http://127.0.0.1:8787/auth/callback/dev");
        match cookie {
            Some(c) => r.with_header("cookie", c.split(';').next().unwrap()),
            None => r,
        }
    }

    #[test]
    fn every_purpose_survives_the_store_and_an_unreadable_one_is_refused_not_a_500() {
        let (p, cfg) = (platform(200), test_config());
        for purpose in [
            Purpose::SignIn,
            Purpose::Link {
                user_id: "u1".into(),
            },
            Purpose::Invitation {
                invitee: "ivy@example.test".into(),
            },
            Purpose::SignUp {
                invitation: "h".into(),
            },
        ] {
            let t = LoginTxn::new("dev", Default::default(), purpose.clone(), 100);
            let cookie = block_on(start(p.kv(), &cfg, &t)).unwrap();
            let req = callback_req(Some(&cookie));
            let back = block_on(finish(&p, &cfg, &req, Some(&t.state), "dev")).unwrap();
            assert_eq!(back.purpose, purpose);
        }
        // A transaction stored in an older shape (`link_user` instead of `purpose`).
        let old = LoginTxn::new("dev", Default::default(), Purpose::SignIn, 100);
        let cookie = block_on(start(p.kv(), &cfg, &old)).unwrap();
        let legacy = format!(
            r#"{{"provider":"dev","state":"{}","nonce":"n","pkce_verifier":"v","return_to":"/","created_at":100,"link_user":"u1"}}"#,
            old.state
        );
        block_on(p.kv().put(&key(&old.state), &legacy, TXN_TTL)).unwrap();
        let req = callback_req(Some(&cookie));
        assert!(matches!(
            block_on(finish(&p, &cfg, &req, Some(&old.state), "dev")),
            Err(AppError::LoginTransaction(_))
        ));
    }

    #[test]
    fn round_trip_is_single_use() {
        let (p, cfg) = (platform(200), test_config());
        let t = LoginTxn::new("dev", Default::default(), Purpose::SignIn, 100);
        let cookie = block_on(start(p.kv(), &cfg, &t)).unwrap();
        let req = callback_req(Some(&cookie));
        assert_eq!(
            block_on(finish(&p, &cfg, &req, Some(&t.state), "dev")).unwrap(),
            t
        );
        let again = block_on(finish(&p, &cfg, &req, Some(&t.state), "dev"));
        assert!(
            matches!(again, Err(AppError::LoginTransaction(_))),
            "replay refused"
        );
        // The spent row outlives the transaction's own expiry, and names only a hash.
        let spent = p.users.spent.borrow();
        let (key, until) = spent.iter().next().expect("one spent row");
        assert_eq!(spent.len(), 1);
        assert!(!key.contains(&t.state), "the state is stored hashed");
        assert!(*until > t.created_at + TXN_TTL as i64);
    }

    #[test]
    fn other_browser_missing_cookie_bad_state_expired_are_refused_and_spend_nothing() {
        let cfg = test_config();
        let p = platform(200);
        let mine = LoginTxn::new("dev", Default::default(), Purpose::SignIn, 100);
        let theirs = LoginTxn::new("dev", Default::default(), Purpose::SignIn, 100);
        let my_cookie = block_on(start(p.kv(), &cfg, &mine)).unwrap();
        block_on(start(p.kv(), &cfg, &theirs)).unwrap();
        let cases = [
            (callback_req(None), Some(mine.state.clone()), 200),
            (
                callback_req(Some(&my_cookie)),
                Some(theirs.state.clone()),
                200,
            ),
            (callback_req(Some(&my_cookie)), Some("forged".into()), 200),
            (callback_req(Some(&my_cookie)), None, 200),
            (
                callback_req(Some(&format!("gh_txn={}.AAAA", mine.state))),
                Some(mine.state.clone()),
                200,
            ),
            (
                callback_req(Some(&my_cookie)),
                Some(mine.state.clone()),
                100 + TXN_TTL as i64 + 1,
            ),
        ];
        for (i, (req, state, now)) in cases.into_iter().enumerate() {
            p.clock.set(now);
            let r = block_on(finish(&p, &cfg, &req, state.as_deref(), "dev"));
            assert!(
                matches!(r, Err(AppError::LoginTransaction(_))),
                "case {i}: {r:?}"
            );
        }
        assert!(p.users.spent.borrow().is_empty(), "refusals spend nothing");
    }

    #[test]
    fn invitations_need_no_cookie_but_are_single_use_and_separate_from_transactions() {
        let (p, cfg) = (platform(200), test_config());
        let t = LoginTxn::new(
            "mail",
            crate::return_to::validate(&cfg, Some("/welcome")).unwrap(),
            Purpose::SignIn,
            100,
        );
        let url = block_on(start_invitation(p.kv(), &cfg, &t)).unwrap();
        assert_eq!(
            url,
            format!(
                "http://127.0.0.1:8787/auth/callback/mail?gh_invite={}",
                t.state
            )
        );
        let req = Request::new(Method::Get, &url);
        assert_eq!(
            block_on(show_invitation(&p, &t.state, "mail")).unwrap(),
            t,
            "shown before it is spent"
        );
        assert_eq!(block_on(finish(&p, &cfg, &req, None, "mail")).unwrap(), t);
        assert!(
            block_on(show_invitation(&p, &t.state, "mail")).is_err(),
            "not shown once spent"
        );
        let again = block_on(finish(&p, &cfg, &req, None, "mail"));
        assert!(
            matches!(again, Err(AppError::LoginTransaction(_))),
            "single use"
        );

        // An ordinary transaction cannot be completed without its cookie by calling its
        // state an invitation.
        let normal = LoginTxn::new("mail", Default::default(), Purpose::SignIn, 100);
        block_on(start(p.kv(), &cfg, &normal)).unwrap();
        let forged = Request::new(
            Method::Get,
            &format!(
                "http://127.0.0.1:8787/auth/callback/mail?gh_invite={}",
                normal.state
            ),
        );
        let r = block_on(finish(&p, &cfg, &forged, None, "mail"));
        assert!(matches!(r, Err(AppError::LoginTransaction(_))));

        // Expired, or for another provider: refused, and not spent.
        for (provider, now) in [("mail", 100 + TXN_TTL as i64 + 1), ("other", 200)] {
            let t = LoginTxn::new("mail", Default::default(), Purpose::SignIn, 100);
            let url = block_on(start_invitation(p.kv(), &cfg, &t)).unwrap();
            p.clock.set(now);
            let r = block_on(finish(
                &p,
                &cfg,
                &Request::new(Method::Get, &url),
                None,
                provider,
            ));
            assert!(
                matches!(r, Err(AppError::LoginTransaction(_))),
                "{provider}"
            );
        }
        assert_eq!(p.users.spent.borrow().len(), 1, "only the used invitation");
    }

    #[test]
    fn wrong_provider_is_refused() {
        let (p, cfg) = (platform(100), test_config());
        let t = LoginTxn::new("dev", Default::default(), Purpose::SignIn, 100);
        let cookie = block_on(start(p.kv(), &cfg, &t)).unwrap();
        let r = block_on(finish(
            &p,
            &cfg,
            &callback_req(Some(&cookie)),
            Some(&t.state),
            "other",
        ));
        assert!(matches!(r, Err(AppError::LoginTransaction(_))));
    }
}
