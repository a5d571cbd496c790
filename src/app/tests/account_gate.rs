//! The account gate ([`super::auth::require_account_owner`]), the "sessions valid after"
//! time at renewal, and the refusal of duplicated auth cookies, driven through
//! [`crate::app::handle`] over the in-memory platform: an access token alone changes
//! nothing, nor does a request from another site, and each refusal writes nothing.

use crate::access::{self, AccessClaims};
use crate::app::handle;
use crate::config::Config;
use crate::http::{Method, Request, Response};
use crate::ids::{SessionId, UserId};
use crate::platform::{FetchError, Kv};
use crate::sessions::{SessionRecord, Sessions};
use crate::testing::{block_on, profile, test_env, TestPlatform};
use crate::users::{LinkOutcome, UserStore};

const BASE: &str = "http://127.0.0.1:8787";

struct H {
    cfg: Config,
    p: TestPlatform,
}

/// A signed-in browser: its raw session cookie, the session id and a current access token.
struct Browser {
    user: UserId,
    raw: String,
    sid: SessionId,
    access: String,
}

impl Browser {
    fn cookies(&self) -> String {
        format!("gh_session={}; gh_access={}", self.raw, self.access)
    }
}

const ADMIN_KEY: &str = "admin-key-0123456789abcdef-xyz";

fn h() -> H {
    let mut env = test_env();
    env.insert("ADMIN_API_KEY".into(), ADMIN_KEY.into());
    H {
        cfg: Config::from_env(&env).unwrap(),
        // No provider is ever reached: every request here is refused before that.
        p: TestPlatform::new(|_| Err(FetchError::Network("offline".into()))),
    }
}

impl H {
    fn sessions(&self) -> Sessions<'_, crate::testing::MemoryKv> {
        Sessions {
            kv: &self.p.kv,
            cfg: &self.cfg,
        }
    }

    /// A user with two identities, signed in once.
    fn signed_in(&self, sub: &str) -> Browser {
        let now = self.p.clock.get();
        let user = block_on(crate::linking::sign_in(
            &self.p.users,
            &profile("https://idp", sub, None),
            now,
        ))
        .unwrap();
        let second = profile("https://other-idp", sub, None);
        assert_eq!(
            block_on(self.p.users.link_identity(&user.id, &second, now)).unwrap(),
            LinkOutcome::Linked
        );
        self.browser_of(&user.id)
    }

    fn browser_of(&self, user: &UserId) -> Browser {
        let now = self.p.clock.get();
        let rec = SessionRecord {
            user_id: user.clone(),
            issuer: "https://idp".into(),
            provider: "dev".into(),
            created_at: now,
            last_seen_at: now,
            expires_at: now,
            user_agent: "ua".into(),
            ip: "198.51.100.1".into(),
            vendor_logout: None,
        };
        let (raw, sid) = block_on(self.sessions().create(rec, now)).unwrap();
        let claims = AccessClaims::new(&self.cfg, user, &sid, None, None, now);
        let access = block_on(access::issue(&self.cfg, &self.p, &claims)).unwrap();
        Browser {
            user: user.clone(),
            raw: raw.expose().to_string(),
            sid,
            access,
        }
    }

    fn send(&self, method: Method, path: &str, headers: &[(&str, &str)]) -> Response {
        let mut req = Request::new(method, &format!("{BASE}{path}"));
        for (k, v) in headers {
            req = req.with_header(k, v);
        }
        block_on(handle(Ok(&self.cfg), &self.p, req))
    }

    fn live(&self, sid: &SessionId) -> bool {
        block_on(self.sessions().get(sid, self.p.clock.get()))
            .unwrap()
            .is_some()
    }

    fn identity_count(&self, user: &UserId) -> usize {
        block_on(self.p.users.identities_of(user)).unwrap().len()
    }

    fn kv_keys(&self) -> Vec<String> {
        let mut k = self.p.kv.keys();
        k.sort();
        k
    }
}

const UNLINK: &str = "/auth/identities?issuer=https%3A%2F%2Fother-idp&sub=";
const LINK: &str = "/auth/login?provider=dev&link=1";

#[test]
fn an_access_token_alone_changes_nothing() {
    let h = h();
    let victim = h.signed_in("vic");
    let device = h.browser_of(&victim.user);
    let bearer = format!("Bearer {}", victim.access);
    let keys = h.kv_keys();
    // Even with our own Origin: a token is not the browser's session.
    for origin in [None, Some(BASE)] {
        let mut headers = vec![("authorization", bearer.as_str())];
        headers.extend(origin.map(|o| ("origin", o)));
        let revoke = h.send(
            Method::Delete,
            &format!("/auth/sessions/{}", device.sid.as_str()),
            &headers,
        );
        assert_eq!(revoke.status, 401, "revoke with {origin:?}");
        let unlink = h.send(Method::Delete, &format!("{UNLINK}vic"), &headers);
        assert_eq!(unlink.status, 401, "unlink with {origin:?}");
        let link = h.send(Method::Get, LINK, &headers);
        assert_eq!(link.status, 401, "link with {origin:?}");
        assert!(link.headers_named("set-cookie").next().is_none());
    }
    assert!(h.live(&device.sid), "the device is still signed in");
    assert_eq!(h.identity_count(&victim.user), 2, "nothing unlinked");
    assert_eq!(h.kv_keys(), keys, "no login transaction, nothing written");
    assert!(h.p.http.calls.borrow().is_empty(), "no provider reached");
    // The same token still reads: reading is what it is for.
    let me = h.send(Method::Get, "/auth/me", &[("authorization", &bearer)]);
    assert_eq!(me.status, 200);
}

#[test]
fn the_session_cookie_changes_the_account_only_from_our_own_pages() {
    let h = h();
    let owner = h.signed_in("own");
    let device = h.browser_of(&owner.user);
    let cookies = owner.cookies();
    let revoke = format!("/auth/sessions/{}", device.sid.as_str());
    for (what, extra) in [
        ("another origin", ("origin", "https://evil.example")),
        (
            "an allowed-looking origin",
            ("origin", "http://127.0.0.1:8788"),
        ),
        ("cross-site", ("sec-fetch-site", "cross-site")),
        ("same-site", ("sec-fetch-site", "same-site")),
        ("no Origin or Fetch Metadata", ("x-nothing", "1")),
    ] {
        let headers = [("cookie", cookies.as_str()), extra];
        assert_eq!(
            h.send(Method::Delete, &revoke, &headers).status,
            403,
            "{what}"
        );
        let unlink = h.send(Method::Delete, &format!("{UNLINK}own"), &headers);
        assert_eq!(unlink.status, 403, "{what}");
        assert_eq!(h.send(Method::Get, LINK, &headers).status, 403, "{what}");
    }
    assert!(h.live(&device.sid));
    assert_eq!(h.identity_count(&owner.user), 2);

    let own = [("cookie", cookies.as_str()), ("origin", BASE)];
    assert_eq!(h.send(Method::Delete, &revoke, &own).status, 204);
    assert!(!h.live(&device.sid));
    let unlink = h.send(Method::Delete, &format!("{UNLINK}own"), &own);
    assert_eq!(unlink.status, 204);
    assert_eq!(h.identity_count(&owner.user), 1);
}

#[test]
fn a_revoked_or_foreign_session_cookie_changes_nothing() {
    let h = h();
    let owner = h.signed_in("rev");
    let thief = h.browser_of(&owner.user);
    let ctx = crate::app::Ctx {
        cfg: &h.cfg,
        p: &h.p,
    };
    block_on(crate::app::ending::revoke(&ctx, &thief.sid, &owner.user)).unwrap();
    // The thief's access token is still unexpired, its session is not.
    let headers = [("cookie", thief.cookies()), ("origin", BASE.into())];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = h.send(Method::Delete, &format!("{UNLINK}rev"), &headers);
    assert_eq!(r.status, 401);
    assert_eq!(h.identity_count(&owner.user), 2);
    // A live session's cookie beside another session's access token: the session decides,
    // and the foreign token is not taken as the caller.
    let other = h.signed_in("oth");
    let mixed = format!("gh_session={}; gh_access={}", owner.raw, other.access);
    let r = h.send(
        Method::Delete,
        &format!("/auth/sessions/{}", other.sid.as_str()),
        &[("cookie", &mixed), ("origin", BASE)],
    );
    assert_eq!(r.status, 404, "not one of the cookie owner's sessions");
    assert!(h.live(&other.sid));
}

#[test]
fn revoke_all_stops_at_renewal_a_session_the_index_did_not_list() {
    let h = h();
    let b = h.signed_in("idx");
    // KV's listing lags: this session is missing from the user's index.
    block_on(
        h.p.kv
            .delete(&format!("u:{}:{}", b.user.as_str(), b.sid.as_str())),
    )
    .unwrap();
    h.p.clock.set(h.p.clock.get() + 10);
    let auth = format!("Bearer {ADMIN_KEY}");
    let path = format!("/admin/users/{}/sessions", b.user.as_str());
    let r = h.send(Method::Delete, &path, &[("authorization", &auth)]);
    assert_eq!(r.status, 204);
    assert!(h.live(&b.sid), "the KV record was not found by the listing");
    // Past the access token's lifetime, the cookie can no longer renew it.
    h.p.clock.set(h.p.clock.get() + h.cfg.access_ttl as i64);
    let me = h.send(Method::Get, "/auth/me", &[("cookie", &b.cookies())]);
    assert_eq!(me.status, 401);
    assert!(!h.live(&b.sid), "and the session is ended");
    // A session begun after the revocation renews as usual.
    h.p.clock.set(h.p.clock.get() + 1);
    let fresh = h.browser_of(&b.user);
    h.p.clock.set(h.p.clock.get() + h.cfg.access_ttl as i64);
    let me = h.send(Method::Get, "/auth/me", &[("cookie", &fresh.cookies())]);
    assert_eq!(me.status, 200);
}

#[test]
fn the_valid_after_time_is_inclusive_and_never_moves_back() {
    let h = h();
    let b = h.signed_in("inc");
    let created = h.p.clock.get();
    block_on(h.p.users.end_sessions_until(&b.user, created)).unwrap();
    block_on(h.p.users.end_sessions_until(&b.user, created - 100)).unwrap();
    let user = block_on(h.p.users.get_user(&b.user)).unwrap().unwrap();
    assert_eq!(user.sessions_valid_after, created);
    assert!(crate::app::auth::revoked_by_time(created, &user));
    assert!(!crate::app::auth::revoked_by_time(created + 1, &user));
}

#[test]
fn duplicated_auth_cookies_are_refused_and_change_nothing() {
    let h = h();
    let b = h.signed_in("dup");
    let device = h.browser_of(&b.user);
    let keys = h.kv_keys();
    for cookie in [
        format!("gh_session={}; gh_session=tossed", b.raw),
        format!("gh_session=tossed; {}", b.cookies()),
        format!("{}; gh_access=tossed", b.cookies()),
        format!("{}; gh_txn=a; gh_txn=b", b.cookies()),
    ] {
        let r = h.send(
            Method::Delete,
            &format!("/auth/sessions/{}", device.sid.as_str()),
            &[("cookie", &cookie), ("origin", BASE)],
        );
        assert_eq!(r.status, 400, "{cookie}");
        let me = h.send(Method::Get, "/auth/me", &[("cookie", &cookie)]);
        assert_eq!(me.status, 400, "{cookie}");
    }
    assert!(h.live(&device.sid));
    assert_eq!(h.kv_keys(), keys);
}
