//! Proxy mode (README "Proxy mode"; on when `ORIGIN_URL` is set): every path that is not one of
//! Gatehouse's own goes to the origin. Unauthenticated browser GETs are sent to sign in,
//! other unauthenticated requests get 401. Authenticated ones are forwarded with
//! `X-Gatehouse-User`, `X-Gatehouse-Email` and `X-Gatehouse-Jwt`, after stripping any
//! `X-Gatehouse-*` header the client sent, hop-by-hop headers, and Gatehouse's own cookies.
//! This module decides; the Worker layer streams the bodies.

use super::auth::{authenticate, bearer};
use super::Ctx;
use crate::cookies::{parse_cookie_header, CookieJar};
use crate::error::{AppError, AppResult};
use crate::http::{Method, Request, Response, Wants};
use crate::platform::Platform;
use crate::policy::{routes, Need};

/// Headers that describe one hop, never forwarded (RFC 9110 §7.6.1), plus `host`.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// Whether `path` is served by Gatehouse itself rather than the origin.
pub fn is_own_path(path: &str) -> bool {
    // (The OpenID Provider's paths: `/oauth/*` and its `/.well-known` documents.)
    path == "/healthz"
        || path == "/auth"
        || path.starts_with("/auth/")
        || path == "/.well-known/jwks.json"
        || crate::app::oauth::is_own_path(path)
        || path == "/admin"
        || path.starts_with("/admin/")
}

/// What to do with a proxied request.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision<'r> {
    /// Send to `url` with the client's headers changed by `changes` (applied in order, the
    /// way the runtime's `Headers` object does: names are case-insensitive, a set replaces);
    /// add `set_cookies` to the origin's answer. Changes rather than a whole header list: the
    /// Worker layer edits a copy of the runtime's headers instead of converting every one.
    Forward {
        url: String,
        changes: Vec<HeaderChange<'r>>,
        set_cookies: Vec<String>,
    },
    /// Answer without the origin (redirect to sign-in, 401).
    Respond(Response),
}

/// One edit of the forwarded request's headers.
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderChange<'r> {
    /// Delete every value of this header (a lower-case name, the request's own).
    Remove(&'r str),
    /// Add this value. Only after a `Remove` of the name or for a name the client cannot
    /// have sent (every client `X-Gatehouse-*` header is removed first), so that it is the
    /// only value: a plain append, one call into the runtime instead of two.
    Append(String, String),
}

impl HeaderChange<'_> {
    /// `headers` (lower-case names) after `changes`, as the runtime's `Headers` applies them.
    pub fn apply_all(changes: &[HeaderChange], headers: &mut Vec<(String, String)>) {
        for change in changes {
            match change {
                HeaderChange::Remove(name) => headers.retain(|(k, _)| k != name),
                HeaderChange::Append(name, value) => headers.push((name.clone(), value.clone())),
            }
        }
    }
}

/// Whether a client header claims to be one of Gatehouse's identity headers. Case and `_`
/// against `-` do not matter: CGI-style origins (PHP, older WSGI and Rack servers) fold
/// `X_Gatehouse_Roles` into the same variable as `X-Gatehouse-Roles`.
pub fn is_gatehouse_header(name: &str) -> bool {
    const PREFIX: &[u8] = b"x-gatehouse-";
    let name = name.as_bytes();
    name.len() >= PREFIX.len()
        && (0..PREFIX.len()).all(|i| {
            let c = name[i].to_ascii_lowercase();
            c == PREFIX[i] || (c == b'_' && PREFIX[i] == b'-')
        })
}

/// The origin URL for this request: `ORIGIN_URL` joined with the checked path (already
/// encoded) and the query.
fn origin_url(origin: &url::Url, path: &str, req: &Request) -> String {
    let mut url = origin.clone();
    let base = origin.path().trim_end_matches('/');
    url.set_path(&format!("{base}{path}"));
    url.set_query(req.url.query());
    url.into()
}

/// The `Cookie` header without Gatehouse's own cookies (None when nothing is left).
fn foreign_cookies(jar: &CookieJar, header: &str) -> Option<String> {
    let kept: Vec<String> = parse_cookie_header(header)
        .filter(|(name, _)| !jar.is_own(name))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

/// Decides what happens to `req` (whose body the Worker layer keeps unread). The policy's
/// routes are matched on the normalized path, which is also the path the origin receives;
/// a valid access token is enough to decide (its `roles` claim), with no storage read.
pub async fn decide<'r, P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &'r Request,
) -> AppResult<Decision<'r>> {
    let origin = ctx.cfg.origin_url.as_ref().ok_or(AppError::NotFound)?;
    super::auth::refuse_duplicate_cookies(ctx.cfg, req)?;
    let checked =
        routes::normalize(req.url.path()).map_err(|e| AppError::BadRequest(e.message().into()))?;
    if is_own_path(&checked) {
        // `//auth/me`, `/%61dmin/users`: Gatehouse's own paths are never proxied.
        return Err(AppError::NotFound);
    }
    let need = ctx.cfg.policy.need(req.method, &checked);
    let path = routes::encode(&checked);
    let url = origin_url(origin, &path, req);
    let caller = match (authenticate(ctx, req).await?, need) {
        (Some(c), Need::SignedIn(roles))
            if !roles.is_empty() && !roles.iter().any(|r| c.claims.roles.contains(r)) =>
        {
            let why = format!(
                "You are signed in, but this page needs the role {}.",
                roles.join(" or ")
            );
            let r = AppError::AccessDenied(why).into_response(req.wants());
            return Ok(Decision::Respond(super::auth::with_cookies(r, &c)));
        }
        (None, Need::SignedIn(_)) => {
            // A protected resource (RESOURCE_SERVER): apps' bearer tokens for it pass; a
            // person in a browser still signs in as in plain proxy mode.
            let browser_page = req.method == Method::Get && req.wants() == Wants::Html;
            if ctx.cfg.resource_server && !(browser_page && bearer(req).is_none()) {
                return Ok(match super::oauth::resource_check(ctx, req).await? {
                    Ok(identity) => {
                        let mut changes = origin_headers(ctx, req, true);
                        let identity = identity
                            .into_iter()
                            .map(|(k, v)| HeaderChange::Append(k, v));
                        changes.extend(identity);
                        Decision::Forward {
                            url,
                            changes,
                            set_cookies: vec![],
                        }
                    }
                    Err(refused) => Decision::Respond(refused),
                });
            }
            return Ok(Decision::Respond(unauthenticated(req, &path)));
        }
        (caller, _) => caller,
    };
    let used_bearer = bearer(req).is_some();
    // Cookies ride along on requests from sibling subdomains too (SameSite=Lax): a
    // cookie-authenticated request that changes state must come from an allowed origin.
    if caller.is_some() && req.method.is_unsafe() && !used_bearer {
        super::check_origin(ctx.cfg, req)?;
    }
    let mut changes = origin_headers(ctx, req, used_bearer);
    let Some(caller) = caller else {
        // A public route, nobody signed in: no identity headers at all.
        return Ok(Decision::Forward {
            url,
            changes,
            set_cookies: vec![],
        });
    };
    changes.push(HeaderChange::Append(
        "x-gatehouse-user".into(),
        caller.claims.sub.as_str().to_string(),
    ));
    if let Some(email) = &caller.claims.email {
        changes.push(HeaderChange::Append(
            "x-gatehouse-email".into(),
            email.clone(),
        ));
        // An email is only an identity if a provider verified it: say which.
        let verified = if caller.claims.email_verified {
            "true"
        } else {
            "false"
        };
        changes.push(HeaderChange::Append(
            "x-gatehouse-email-verified".into(),
            verified.into(),
        ));
    }
    let roles = caller.claims.roles.join(",");
    changes.push(HeaderChange::Append("x-gatehouse-roles".into(), roles));
    changes.push(HeaderChange::Append(
        "x-gatehouse-jwt".into(),
        caller.token.clone(),
    ));
    Ok(Decision::Forward {
        url,
        changes,
        set_cookies: caller.set_cookies,
    })
}

/// The client's headers as the origin gets them: no `X-Gatehouse-*` the client sent, no
/// hop-by-hop headers, none of Gatehouse's cookies, and no `Authorization` when it carried
/// our token (the origin gets that as `X-Gatehouse-Jwt`).
fn origin_headers<'r, P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &'r Request,
    used_bearer: bool,
) -> Vec<HeaderChange<'r>> {
    let jar = ctx.jar();
    let mut changes = Vec::with_capacity(8);
    for (name, value) in &req.headers {
        // Names come lower-cased (the runtime's and `Request::with_header`'s convention).
        let drop = is_gatehouse_header(name)
            || HOP_BY_HOP.contains(&name.as_str())
            || (name == "authorization" && used_bearer);
        if drop {
            changes.push(HeaderChange::Remove(name));
        } else if name == "cookie" {
            let rest = foreign_cookies(&jar, value);
            if rest.as_deref() != Some(value.as_str()) {
                changes.push(HeaderChange::Remove(name));
                changes.extend(rest.map(|rest| HeaderChange::Append(name.clone(), rest)));
            }
        }
    }
    changes
}

/// Browsers asking for a page go to sign-in and come back; everything else gets 401.
fn unauthenticated(req: &Request, path: &str) -> Response {
    if req.method == Method::Get && req.wants() == Wants::Html {
        let mut back = path.to_string();
        if let Some(q) = req.url.query() {
            back.push('?');
            back.push_str(q);
        }
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("return_to", &back)
            .finish();
        let target = format!("/auth/login?{query}");
        return Response::redirect(&target);
    }
    AppError::Unauthorized("Sign in first.".into()).into_response(Wants::Json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{block_on, test_env, TestPlatform};

    fn ctx_cfg() -> crate::config::Config {
        let mut env = test_env();
        env.insert("ORIGIN_URL".into(), "http://127.0.0.1:7000/base".into());
        crate::config::Config::from_env(&env).unwrap()
    }

    fn signed_in_token(cfg: &crate::config::Config, p: &TestPlatform) -> String {
        let claims = crate::access::AccessClaims::new(
            cfg,
            &"usr_1".into(),
            &"sid1".into(),
            Some("a@b.c".into()),
            None,
            p.now(),
        );
        block_on(crate::access::issue(cfg, p, &claims)).unwrap()
    }

    #[test]
    fn own_paths_are_not_proxied() {
        for p in [
            "/healthz",
            "/auth/login",
            "/auth/me",
            "/.well-known/jwks.json",
            "/admin/users",
        ] {
            assert!(is_own_path(p), "{p}");
        }
        for p in [
            "/",
            "/app",
            "/authority",
            "/administrator",
            "/healthzx",
            "/.well-known/security.txt",
        ] {
            assert!(!is_own_path(p), "{p}");
        }
    }

    #[test]
    fn gatehouse_headers_are_recognised_whatever_the_case_and_separator() {
        for name in [
            "x-gatehouse-user",
            "X-Gatehouse-Roles",
            "X_Gatehouse_Roles",
            "x-GATEHOUSE_user",
            "X_GATEHOUSE_JWT",
            "x_gatehouse-email",
        ] {
            assert!(is_gatehouse_header(name), "{name}");
        }
        for name in [
            "x-gatehouse",
            "x-gatehousex-user",
            "gatehouse-user",
            "x-gate-house-u",
            "",
        ] {
            assert!(!is_gatehouse_header(name), "{name}");
        }
    }

    #[test]
    fn unauthenticated_browser_get_goes_to_login_and_api_gets_401() {
        let cfg = ctx_cfg();
        let p = TestPlatform::new(|_| unreachable!());
        let ctx = Ctx { cfg: &cfg, p: &p };
        let page = Request::new(Method::Get, "http://127.0.0.1:8787/app/x?y=1")
            .with_header("accept", "text/html");
        let Decision::Respond(r) = block_on(decide(&ctx, &page)).unwrap() else {
            panic!()
        };
        assert_eq!(r.status, 302);
        assert_eq!(
            r.header("location"),
            Some("/auth/login?return_to=%2Fapp%2Fx%3Fy%3D1")
        );
        let api = Request::new(Method::Post, "http://127.0.0.1:8787/api");
        let Decision::Respond(r) = block_on(decide(&ctx, &api)).unwrap() else {
            panic!()
        };
        assert_eq!(r.status, 401);
    }

    #[test]
    fn forwards_identity_and_strips_spoofed_headers_and_own_cookies() {
        let cfg = ctx_cfg();
        let p = TestPlatform::new(|_| unreachable!());
        let ctx = Ctx { cfg: &cfg, p: &p };
        let token = signed_in_token(&cfg, &p);
        let req = Request::new(Method::Post, "http://127.0.0.1:8787/api/items?q=1")
            .with_header(
                "cookie",
                &format!("gh_access={token}; theirs=1; gh_session=abc"),
            )
            .with_header("origin", "http://127.0.0.1:8787")
            .with_header("X-Gatehouse-User", "usr_admin")
            .with_header("x-gatehouse-email", "ceo@corp")
            .with_header("X_Gatehouse_Roles", "admin")
            .with_header("connection", "keep-alive")
            .with_header("content-type", "application/json");
        let Decision::Forward { url, changes, .. } = block_on(decide(&ctx, &req)).unwrap() else {
            panic!()
        };
        let mut headers = req.headers.clone();
        HeaderChange::apply_all(&changes, &mut headers);
        assert_eq!(url, "http://127.0.0.1:7000/base/api/items?q=1");
        let get = |n: &str| {
            headers
                .iter()
                .filter(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("x-gatehouse-user"), ["usr_1"]);
        assert_eq!(get("x-gatehouse-email"), ["a@b.c"]);
        assert_eq!(get("x-gatehouse-jwt"), [token.as_str()]);
        assert_eq!(get("cookie"), ["theirs=1"]);
        assert!(get("connection").is_empty());
        assert!(get("x_gatehouse_roles").is_empty());
        assert_eq!(get("content-type"), ["application/json"]);
    }

    #[test]
    fn a_bearer_token_and_own_cookies_are_not_forwarded() {
        let cfg = ctx_cfg();
        let p = TestPlatform::new(|_| unreachable!());
        let ctx = Ctx { cfg: &cfg, p: &p };
        let token = signed_in_token(&cfg, &p);
        let req = Request::new(Method::Get, "http://127.0.0.1:8787/api")
            .with_header("authorization", &format!("Bearer {token}"))
            .with_header("cookie", "gh_session=abc")
            .with_header("accept", "application/json");
        let Decision::Forward { changes, .. } = block_on(decide(&ctx, &req)).unwrap() else {
            panic!()
        };
        let mut headers = req.headers.clone();
        HeaderChange::apply_all(&changes, &mut headers);
        let names: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "accept",
                "x-gatehouse-user",
                "x-gatehouse-email",
                "x-gatehouse-email-verified",
                "x-gatehouse-roles",
                "x-gatehouse-jwt"
            ]
        );
    }

    #[test]
    fn cookie_authenticated_writes_from_another_origin_are_refused() {
        let cfg = ctx_cfg();
        let p = TestPlatform::new(|_| unreachable!());
        let ctx = Ctx { cfg: &cfg, p: &p };
        let token = signed_in_token(&cfg, &p);
        let cookie = format!("gh_access={token}");
        let cross = Request::new(Method::Post, "http://127.0.0.1:8787/api/items")
            .with_header("cookie", &cookie)
            .with_header("origin", "https://evil.example.com");
        assert!(matches!(
            block_on(decide(&ctx, &cross)),
            Err(AppError::Forbidden(_))
        ));
        let no_origin = Request::new(Method::Delete, "http://127.0.0.1:8787/api/items/1")
            .with_header("cookie", &cookie);
        assert!(matches!(
            block_on(decide(&ctx, &no_origin)),
            Err(AppError::Forbidden(_))
        ));
        // Reads need no Origin; bearer-token calls carry no ambient credential.
        let read = Request::new(Method::Get, "http://127.0.0.1:8787/api/items")
            .with_header("cookie", &cookie);
        assert!(matches!(
            block_on(decide(&ctx, &read)),
            Ok(Decision::Forward { .. })
        ));
        let api = Request::new(Method::Post, "http://127.0.0.1:8787/api/items")
            .with_header("authorization", &format!("Bearer {token}"));
        assert!(matches!(
            block_on(decide(&ctx, &api)),
            Ok(Decision::Forward { .. })
        ));
    }

    fn policy_cfg() -> crate::config::Config {
        let mut env = test_env();
        env.insert("ORIGIN_URL".into(), "http://127.0.0.1:7000".into());
        env.insert(
            "POLICY".into(),
            serde_json::json!({"routes": [
                {"path": "/private/*", "roles": ["admin"]},
                {"path": "/public/*", "public": true}
            ]})
            .to_string(),
        );
        crate::config::Config::from_env(&env).unwrap()
    }

    fn token_with_roles(cfg: &crate::config::Config, p: &TestPlatform, roles: &[&str]) -> String {
        let mut claims = crate::access::AccessClaims::new(
            cfg,
            &"usr_1".into(),
            &"sid1".into(),
            None,
            None,
            p.now(),
        );
        claims.roles = roles.iter().map(|r| r.to_string()).collect();
        block_on(crate::access::issue(cfg, p, &claims)).unwrap()
    }

    #[test]
    fn a_valid_token_is_enough_to_decide_a_route_with_no_storage_read() {
        let cfg = policy_cfg();
        let p = TestPlatform::new(|_| unreachable!());
        let ctx = Ctx { cfg: &cfg, p: &p };
        let admin = token_with_roles(&cfg, &p, &["admin", "staff"]);
        let plain = token_with_roles(&cfg, &p, &[]);
        let get = |path: &str, token: &str| {
            Request::new(Method::Get, &format!("http://127.0.0.1:8787{path}"))
                .with_header("authorization", &format!("Bearer {token}"))
        };
        p.faults.reset();
        let req = get("/public/../private/x", &admin);
        let Decision::Forward { url, changes, .. } = block_on(decide(&ctx, &req)).unwrap() else {
            panic!()
        };
        let mut headers = req.headers.clone();
        HeaderChange::apply_all(&changes, &mut headers);
        assert_eq!(url, "http://127.0.0.1:7000/private/x");
        assert!(headers.contains(&("x-gatehouse-roles".into(), "admin,staff".into())));
        let Decision::Respond(r) = block_on(decide(&ctx, &get("/%70rivate/x", &plain))).unwrap()
        else {
            panic!()
        };
        assert_eq!(r.status, 403);
        assert!(String::from_utf8_lossy(&r.body).contains("access_denied"));
        let storage: Vec<_> = p
            .faults
            .trace()
            .into_iter()
            .filter(|op| op.starts_with("kv.") || op.starts_with("d1."))
            .collect();
        assert!(storage.is_empty(), "{storage:?}");
    }

    #[test]
    fn unnormalizable_and_own_paths_are_not_proxied() {
        let cfg = policy_cfg();
        let p = TestPlatform::new(|_| unreachable!());
        let ctx = Ctx { cfg: &cfg, p: &p };
        let anon = |path: &str| Request::new(Method::Get, &format!("http://127.0.0.1:8787{path}"));
        for path in [
            "/private%2Fx",
            "/public%5C..%5Cprivate",
            "/public/..;/private",
            "/a%00",
        ] {
            assert!(
                matches!(
                    block_on(decide(&ctx, &anon(path))),
                    Err(AppError::BadRequest(_))
                ),
                "{path}"
            );
        }
        for path in ["//auth/me", "/%61dmin/users", "/x/../admin"] {
            assert_eq!(
                block_on(decide(&ctx, &anon(path))),
                Err(AppError::NotFound),
                "{path}"
            );
        }
        // A public route goes through without a sign-in, and without identity headers.
        let spoofed = anon("/public//a").with_header("x-gatehouse-user", "usr_admin");
        let Decision::Forward { url, changes, .. } = block_on(decide(&ctx, &spoofed)).unwrap()
        else {
            panic!()
        };
        let mut headers = spoofed.headers.clone();
        HeaderChange::apply_all(&changes, &mut headers);
        assert_eq!(url, "http://127.0.0.1:7000/public/a");
        assert!(headers.iter().all(|(k, _)| !k.starts_with("x-gatehouse")));
    }
}
