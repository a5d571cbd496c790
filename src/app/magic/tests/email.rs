//! The `email` kind end to end through [`crate::app::handle`] on the testing platform: the
//! message recorded by the fake mailer is read back for its code and link, as a person would.

use crate::app::handle;
use crate::config::Config;
use crate::http::{Method, Request, Response};
use crate::providers::email::{MAX_CODE_TRIES, OTHER_BROWSER};
use crate::testing::{block_on, test_env, TestPlatform};
use crate::txn::TXN_TTL;
use serde_json::{json, Value};

const PUBLIC_URL: &str = "http://127.0.0.1:8787";
const FORM: &str = "application/x-www-form-urlencoded";

struct H {
    cfg: Config,
    p: TestPlatform,
}

fn set_cookie(r: &Response, name: &str) -> Option<String> {
    r.headers_named("set-cookie")
        .find(|c| c.starts_with(&format!("{name}=")) && !c.contains("Max-Age=0"))
        .map(|c| c.split(';').next().unwrap().to_string())
}

fn text(r: &Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// What one message carries: its code and its link.
struct Sent {
    code: String,
    link: String,
}

impl H {
    fn new() -> H {
        let mut env = test_env();
        env.insert(
            "PROVIDERS".into(),
            json!({
                "dev": {"kind": "oidc", "issuer": "http://127.0.0.1:9000", "client_id": "gatehouse"},
                "mail": {"kind": "email", "from": "login@gatehouse.test"},
            })
            .to_string(),
        );
        H {
            cfg: Config::from_env(&env).expect("valid config"),
            p: TestPlatform::new(|_| unreachable!("the email kind calls nothing")),
        }
    }

    fn run(&self, req: Request) -> Response {
        block_on(handle(Ok(&self.cfg), &self.p, req))
    }

    fn post(
        &self,
        path: &str,
        body: String,
        json: bool,
        cookie: Option<&str>,
        ip: &str,
    ) -> Response {
        let mut req = Request::new(Method::Post, &format!("{PUBLIC_URL}{path}"))
            .with_header("origin", PUBLIC_URL)
            .with_header("cf-connecting-ip", ip)
            .with_body(body);
        req = if json {
            req.with_header("content-type", "application/json")
        } else {
            req.with_header("content-type", FORM)
                .with_header("accept", "text/html")
        };
        if let Some(c) = cookie {
            req = req.with_header("cookie", c);
        }
        self.run(req)
    }

    /// Asks for a sign-in as a browser form from `ip`.
    fn ask_from(&self, email: &str, ip: &str) -> Response {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("email", email)
            .finish();
        self.post("/auth/magic-link", body, false, None, ip)
    }

    /// Asks for a sign-in; returns this browser's transaction cookie and what was sent.
    fn ask(&self, email: &str) -> (String, Sent) {
        let r = self.ask_from(email, "192.0.2.1");
        assert_eq!(r.status, 200, "{}", text(&r));
        (set_cookie(&r, "gh_txn").expect("txn cookie"), self.sent())
    }

    fn sent(&self) -> Sent {
        let m = self.p.mailer.last().expect("a message was sent");
        let code = m
            .text
            .lines()
            .map(str::trim)
            .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
            .expect("a code line")
            .to_string();
        let link = m
            .text
            .lines()
            .find(|l| l.starts_with(PUBLIC_URL))
            .expect("a link line")
            .to_string();
        Sent { code, link }
    }

    fn code(&self, code: &str, cookie: &str) -> Response {
        let body = format!("code={code}");
        self.post(
            "/auth/magic-link/verify",
            body,
            false,
            Some(cookie),
            "192.0.2.1",
        )
    }

    fn open(&self, link: &str, cookie: Option<&str>) -> Response {
        let mut req = Request::new(Method::Get, link).with_header("accept", "text/html");
        if let Some(c) = cookie {
            req = req.with_header("cookie", c);
        }
        self.run(req)
    }

    fn sessions(&self) -> usize {
        let keys = self.p.kv.keys();
        keys.iter().filter(|k| k.starts_with("s:")).count()
    }

    fn spent(&self) -> usize {
        self.p.users.spent.borrow().len()
    }
}

fn assert_signed_in(h: &H, r: &Response, address: &str) {
    assert_eq!(r.status, 302, "{}", text(r));
    assert!(set_cookie(r, "gh_session").is_some(), "a session cookie");
    let ids = h.p.users.all_identities();
    assert_eq!(ids.len(), 1);
    assert_eq!(
        (ids[0].issuer.as_str(), ids[0].sub.as_str()),
        ("email", address)
    );
    let users = h.p.users.all_users();
    assert_eq!(users[0].email.as_deref(), Some(address));
    assert!(users[0].email_verified, "the address is verified");
}

#[test]
fn one_message_with_a_code_and_a_link_then_the_code_page() {
    let h = H::new();
    let r = h.ask_from("Ada@Example.com", "192.0.2.1");
    assert_eq!(r.status, 200);
    assert!(text(&r).contains("action=\"/auth/magic-link/verify\""));
    assert!(text(&r).contains("autocomplete=\"one-time-code\""));
    let sent = h.p.mailer.sent.borrow().clone();
    assert_eq!(sent.len(), 1, "one message");
    let (binding, m) = &sent[0];
    assert_eq!(binding, "EMAIL", "the default binding");
    assert_eq!(m.from, "login@gatehouse.test");
    assert_eq!(m.to, "Ada@Example.com");
    assert_eq!(m.subject, "Your sign-in code for 127.0.0.1");
    let s = h.sent();
    assert!(s
        .link
        .starts_with(&format!("{PUBLIC_URL}/auth/callback/mail?gh_state=")));
    assert!(m.html.contains(&s.code) && m.html.contains(&crate::pages::esc(&s.link)));
    assert!(
        !m.subject.contains(&s.code),
        "the code stays out of the subject"
    );
    // No images, no remote content, nothing but the one link.
    assert!(!m.html.contains("<img") && !m.html.contains("src="));
    assert_eq!(m.html.matches("href=").count(), 1);
    // The transaction keeps neither the code nor the link token, only their keyed hashes.
    let token = s.link.rsplit("token=").next().unwrap();
    for v in h.p.kv.values() {
        assert!(!v.contains(&s.code) && !v.contains(token), "{v}");
    }
}

#[test]
fn the_link_signs_in_the_browser_that_asked() {
    let h = H::new();
    let (cookie, s) = h.ask("ada@example.com");
    let r = h.open(&s.link, Some(&cookie));
    assert_signed_in(&h, &r, "ada@example.com");
    assert_eq!(r.header("location"), Some("/"));
    // Single use: the same link again, and the code after it, are refused.
    assert_eq!(h.open(&s.link, Some(&cookie)).status, 400);
    assert_eq!(h.code(&s.code, &cookie).status, 400);
    assert_eq!(h.sessions(), 1);
}

#[test]
fn the_code_signs_in_the_browser_that_asked_as_a_form_or_json() {
    let h = H::new();
    let (cookie, s) = h.ask("Ada@Example.com");
    let r = h.code(&format!("{} {}", &s.code[..3], &s.code[3..]), &cookie);
    assert_signed_in(&h, &r, "ada@example.com");
    // Replayed: refused, no second session.
    let again = h.code(&s.code, &cookie);
    assert_eq!(again.status, 400, "{}", text(&again));
    assert!(set_cookie(&again, "gh_session").is_none());
    assert_eq!(h.sessions(), 1);

    let (cookie, s) = h.ask("ada@example.com");
    let wrong = if s.code == "000000" {
        "111111"
    } else {
        "000000"
    };
    let api = |code: &str| {
        let body = json!({ "code": code }).to_string();
        h.post(
            "/auth/magic-link/verify",
            body,
            true,
            Some(&cookie),
            "192.0.2.1",
        )
    };
    let r = api(wrong);
    assert_eq!(r.status, 400);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["error"], "invalid_code");
    assert!(
        v["message"].as_str().unwrap().contains("4 tries left"),
        "{v}"
    );
    let r = api(&s.code);
    assert_eq!(r.status, 302, "{}", text(&r));
    assert!(set_cookie(&r, "gh_session").is_some());
    assert_eq!(h.p.users.user_count(), 1, "the same user again");
}

#[test]
fn the_link_in_another_browser_says_to_type_the_code_and_spends_nothing() {
    let h = H::new();
    let (cookie, s) = h.ask("ada@example.com");
    let elsewhere = h.open(&s.link, None);
    assert_eq!(elsewhere.status, 400);
    assert!(
        text(&elsewhere).contains("Type the 6-digit code"),
        "{}",
        text(&elsewhere)
    );
    assert!(set_cookie(&elsewhere, "gh_session").is_none());
    // Another browser with a sign-in of its own: refused too, and its cookie is kept.
    let (their_cookie, _) = h.ask("eve@example.com");
    let r = h.open(&s.link, Some(&their_cookie));
    assert!(text(&r).contains(&crate::pages::esc(OTHER_BROWSER)));
    assert!(r.headers_named("set-cookie").next().is_none());
    assert_eq!((h.spent(), h.sessions()), (0, 0));
    assert!(
        h.p.users.events.borrow().is_empty(),
        "no row for a link without its browser"
    );
    // The person types the code where they asked.
    assert_signed_in(&h, &h.code(&s.code, &cookie), "ada@example.com");
}

#[test]
fn a_damaged_link_token_is_refused_before_anything_is_spent() {
    let h = H::new();
    let (cookie, s) = h.ask("ada@example.com");
    let base = s.link.split("&token=").next().unwrap().to_string();
    let forged = format!("{base}&token={}", "A".repeat(43));
    for link in [forged, base, format!("{}%20", s.link)] {
        let r = h.open(&link, Some(&cookie));
        assert_eq!(r.status, 400, "{link}");
        assert_eq!((h.spent(), h.sessions()), (0, 0));
    }
    assert!(h.p.users.events.borrow().is_empty());
    assert_signed_in(&h, &h.open(&s.link, Some(&cookie)), "ada@example.com");
}

#[test]
fn five_wrong_codes_end_the_request_link_included() {
    let h = H::new();
    let (cookie, s) = h.ask("ada@example.com");
    let wrong = if s.code == "000000" {
        "111111"
    } else {
        "000000"
    };
    for left in (1..MAX_CODE_TRIES).rev() {
        let r = h.code(wrong, &cookie);
        assert_eq!(r.status, 400);
        assert!(text(&r).contains(&format!("{left} tr")), "{}", text(&r));
        assert!(
            r.headers_named("set-cookie").next().is_none(),
            "the sign-in stays open: its cookie is kept"
        );
        assert_eq!(h.spent(), 0, "still open");
    }
    let last = h.code(wrong, &cookie);
    assert!(
        text(&last).contains("Too many wrong codes"),
        "{}",
        text(&last)
    );
    assert_eq!(h.spent(), 1, "the request is spent: dead");
    // The right code and the link no longer work.
    assert_eq!(h.code(&s.code, &cookie).status, 400);
    assert_eq!(h.open(&s.link, Some(&cookie)).status, 400);
    assert_eq!((h.sessions(), h.p.users.user_count()), (0, 0));
}

#[test]
fn the_right_code_still_works_on_the_last_try() {
    let h = H::new();
    let (cookie, s) = h.ask("ada@example.com");
    let wrong = if s.code == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 1..MAX_CODE_TRIES {
        assert_eq!(h.code(wrong, &cookie).status, 400);
    }
    assert_signed_in(&h, &h.code(&s.code, &cookie), "ada@example.com");
}

#[test]
fn malformed_codes_are_refused_without_using_a_try() {
    let h = H::new();
    let (cookie, s) = h.ask("ada@example.com");
    for bad in ["", "12345", "1234567", "abcdef", "12345%C2%B2"] {
        let r = h.code(bad, &cookie);
        assert_eq!(r.status, 400, "{bad}");
    }
    assert!(h
        .p
        .users
        .counters
        .borrow()
        .keys()
        .all(|k| !k.starts_with("code:")));
    assert_signed_in(&h, &h.code(&s.code, &cookie), "ada@example.com");
}

#[test]
fn code_and_link_expire_after_ten_minutes() {
    let h = H::new();
    let (cookie, s) = h.ask("ada@example.com");
    let start = h.p.clock.get();
    h.p.clock.set(start + TXN_TTL as i64 + 1);
    let r = h.code(&s.code, &cookie);
    assert_eq!(r.status, 400);
    assert!(text(&r).contains("expired"), "{}", text(&r));
    assert_eq!(h.open(&s.link, Some(&cookie)).status, 400);
    assert_eq!((h.spent(), h.sessions()), (0, 0));
    // Just inside the ten minutes, it works.
    let (cookie, s) = h.ask("ada@example.com");
    h.p.clock.set(h.p.clock.get() + TXN_TTL as i64);
    assert_signed_in(&h, &h.code(&s.code, &cookie), "ada@example.com");
}

#[test]
fn a_code_needs_the_cookie_of_an_email_sign_in() {
    let h = H::new();
    let (_, s) = h.ask("ada@example.com");
    let no_cookie = h.post(
        "/auth/magic-link/verify",
        format!("code={}", s.code),
        false,
        None,
        "192.0.2.1",
    );
    assert_eq!(no_cookie.status, 400);
    // The transaction cookie of another provider's sign-in: not a code's.
    let t = crate::txn::LoginTxn::new(
        "dev",
        Default::default(),
        crate::txn::Purpose::SignIn,
        h.p.clock.get(),
    );
    let oidc = block_on(crate::txn::start(&h.p.kv, &h.cfg, &t)).unwrap();
    let r = h.code(&s.code, oidc.split(';').next().unwrap());
    assert_eq!(r.status, 400);
    assert!(
        text(&r).contains("belongs to another provider"),
        "{}",
        text(&r)
    );
    assert_eq!((h.spent(), h.p.users.user_count()), (0, 0));
}

#[test]
fn every_address_gets_the_same_answer() {
    let h = H::new();
    let (cookie, s) = h.ask("known@example.com");
    assert_signed_in(&h, &h.code(&s.code, &cookie), "known@example.com");
    let known = h.ask_from("known@example.com", "192.0.2.9");
    let unknown = h.ask_from("nobody@example.com", "192.0.2.9");
    assert_eq!(
        (known.status, known.body.clone()),
        (unknown.status, unknown.body.clone())
    );
    assert_eq!(h.p.mailer.sent.borrow().len(), 3, "both are sent a message");
    let body = |e: &str| json!({ "email": e }).to_string();
    let a = h.post(
        "/auth/magic-link",
        body("known@example.com"),
        true,
        None,
        "192.0.2.9",
    );
    let b = h.post(
        "/auth/magic-link",
        body("nobody@example.com"),
        true,
        None,
        "192.0.2.9",
    );
    assert_eq!((a.status, &a.body), (b.status, &b.body));
    assert_eq!(a.status, 202);
}

#[test]
fn sends_are_limited_per_address_and_per_network() {
    let h = H::new();
    for i in 0..5 {
        let ip = format!("192.0.2.{}", 10 + i);
        assert_eq!(h.ask_from("ada@example.com", &ip).status, 200);
    }
    // Any case of the same address counts as it.
    assert_eq!(h.ask_from("ADA@example.com", "192.0.2.99").status, 429);
    assert_eq!(h.p.mailer.sent.borrow().len(), 5);

    for i in 0..15 {
        assert_eq!(
            h.ask_from(&format!("u{i}@example.com"), "198.51.100.1")
                .status,
            200
        );
    }
    let before = h.p.mailer.sent.borrow().len();
    for i in 15..20 {
        assert_eq!(
            h.ask_from(&format!("u{i}@example.com"), "198.51.100.1")
                .status,
            200
        );
    }
    let over = h.ask_from("u99@example.com", "198.51.100.1");
    assert_eq!(over.status, 429);
    assert!(set_cookie(&over, "gh_txn").is_none());
    assert_eq!(
        h.p.mailer.sent.borrow().len(),
        before + 5,
        "nothing sent past the limit"
    );
}

#[test]
fn a_refused_message_is_a_502_and_starts_nothing() {
    let h = H::new();
    h.p.mailer.refuse.set(true);
    let r = h.ask_from("ada@example.com", "192.0.2.1");
    assert_eq!(r.status, 502);
    assert!(set_cookie(&r, "gh_txn").is_none());
    assert!(
        h.p.kv.keys().iter().all(|k| !k.starts_with("t:")),
        "no transaction"
    );
}

#[test]
fn the_address_is_escaped_in_the_html_part() {
    let h = H::new();
    h.ask("o'brien&co@example.com");
    let m = h.p.mailer.last().unwrap();
    assert!(
        m.html.contains("o&#39;brien&amp;co@example.com"),
        "{}",
        m.html
    );
    assert!(!m.html.contains("o'brien&co"));
    assert!(
        m.text.contains("o'brien&co@example.com"),
        "plain text stays plain"
    );
}
