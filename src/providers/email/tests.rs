use super::*;
use crate::http::Method;
use crate::testing::{block_on, test_config, TestPlatform};
use crate::txn::{self, LoginTxn};
use serde_json::json;

#[test]
fn settings_need_a_sender_and_default_the_binding() {
    let c = EmailConfig::parse(&json!({"kind": "email", "from": "login@example.com"})).unwrap();
    assert_eq!(
        (c.binding.as_str(), c.display_name.as_str()),
        ("EMAIL", "Email")
    );
    let c = EmailConfig::parse(
        &json!({"kind": "email", "from": "a@b.io", "binding": "MAIL_2", "display_name": "Mail"}),
    )
    .unwrap();
    assert_eq!(
        (c.binding.as_str(), c.display_name.as_str()),
        ("MAIL_2", "Mail")
    );
    for bad in [
        json!({"kind": "email"}),
        json!({"kind": "email", "from": "not an address"}),
        json!({"kind": "email", "from": "a@b.io", "binding": ""}),
        json!({"kind": "email", "from": "a@b.io", "binding": "env.X"}),
        json!({"kind": "email", "from": "a@b.io", "bindng": "X"}),
    ] {
        assert!(EmailConfig::parse(&bad).is_err(), "{bad}");
    }
}

#[test]
fn two_email_providers_are_refused_one_identity_issuer() {
    let mut env = crate::testing::test_env();
    env.insert(
        "PROVIDERS".into(),
        json!({"a": {"kind": "email", "from": "a@b.io"}, "b": {"kind": "email", "from": "c@b.io"}})
            .to_string(),
    );
    assert!(crate::config::Config::from_env(&env).is_err());
}

#[test]
fn codes_are_six_digits_and_spread_over_all_digits() {
    let mut seen = [[0u32; 10]; 6];
    for _ in 0..2000 {
        let c = new_code();
        assert_eq!(c.len(), 6);
        for (i, b) in c.bytes().enumerate() {
            seen[i][(b - b'0') as usize] += 1;
        }
    }
    // 200 expected per digit and place; a stuck or biased generator falls far outside.
    for place in seen {
        assert!(place.iter().all(|n| (100..320).contains(n)), "{place:?}");
    }
}

#[test]
fn codes_parse_with_spaces_and_dashes_only() {
    assert_eq!(parse_code(" 123 456 ").unwrap(), "123456");
    assert_eq!(parse_code("123-456").unwrap(), "123456");
    for bad in ["", "12345", "1234567", "12a456", "１２３４５６", "123\n456"] {
        assert!(parse_code(bad).is_err(), "{bad:?}");
    }
}

fn pending_for(p: &TestPlatform, cfg: &Config, address: &str) -> (Secrets, String) {
    let mut t = LoginTxn::new("mail", "/".into(), crate::txn::Purpose::SignIn, p.now());
    let (c, s) = challenge(cfg, &t, address);
    t.email = Some(c.pack());
    let cookie = block_on(txn::start(p.kv(), cfg, &t)).unwrap();
    (s, cookie.split(';').next().unwrap().to_string())
}

fn open(p: &TestPlatform, cfg: &Config, cookie: &str) -> Pending {
    let req = Request::new(Method::Post, "http://127.0.0.1:8787/auth/magic-link/verify")
        .with_header("cookie", cookie);
    let state = txn::cookie_state(cfg, &req).unwrap();
    block_on(txn::open(p, cfg, &req, Some(&state), "mail")).unwrap()
}

#[test]
fn tries_are_counted_before_comparing_so_the_sixth_is_never_compared() {
    let (p, cfg) = (TestPlatform::new(|_| unreachable!()), test_config());
    let (s, cookie) = pending_for(&p, &cfg, "Ada@Example.com");
    let pending = open(&p, &cfg, &cookie);
    assert_eq!(
        challenge_of(pending.txn.email.as_deref()).unwrap().address,
        "ada@example.com"
    );
    let wrong = if s.code == "000000" {
        "111111"
    } else {
        "000000"
    };
    for left in (0..MAX_CODE_TRIES).rev() {
        let r = block_on(check_code(&p, &cfg, &pending, wrong)).unwrap();
        assert_eq!(r, CodeCheck::Wrong { left });
    }
    // Even the right code is not compared any more.
    let r = block_on(check_code(&p, &cfg, &pending, &s.code)).unwrap();
    assert_eq!(r, CodeCheck::Exhausted);
}

#[test]
fn the_right_code_and_link_match_and_nothing_else_does() {
    let (p, cfg) = (TestPlatform::new(|_| unreachable!()), test_config());
    let (s, cookie) = pending_for(&p, &cfg, "ada@example.com");
    let (other, _) = pending_for(&p, &cfg, "ada@example.com");
    let pending = open(&p, &cfg, &cookie);
    assert_eq!(
        block_on(check_code(&p, &cfg, &pending, &s.code)).unwrap(),
        CodeCheck::Right
    );
    let link = |token: &str| {
        Request::new(
            Method::Get,
            &format!("http://127.0.0.1:8787/auth/callback/mail?token={token}"),
        )
    };
    assert!(check_link(&cfg, &pending.txn, &link(&s.link_token)).is_ok());
    // Another request's token, a changed one, none: refused as the transaction's failure
    // (nothing spent, nothing recorded).
    for bad in [other.link_token.as_str(), &s.link_token[1..], ""] {
        let r = check_link(&cfg, &pending.txn, &link(bad));
        assert!(matches!(r, Err(AppError::LoginTransaction(_))), "{bad}");
    }
    // Hashes are keyed with STATE_SECRET: another deployment's key gives another hash.
    let c = challenge_of(pending.txn.email.as_deref()).unwrap();
    assert_ne!(c.code, crate::crypto::sha256_b64url(s.code.as_bytes()));
    let mut env = crate::testing::test_env();
    env.insert(
        "STATE_SECRET".into(),
        "another-secret-of-32-characters!!".into(),
    );
    let other_cfg = crate::config::Config::from_env(&env).unwrap();
    assert_ne!(
        keyed(&other_cfg, &pending.txn.state, "code", &s.code),
        c.code
    );
}

#[test]
fn the_profile_is_the_lower_cased_verified_address() {
    let cfg = test_config();
    let mut t = LoginTxn::new("mail", "/".into(), crate::txn::Purpose::SignIn, 0);
    let (c, _) = challenge(&cfg, &t, "Ada.L@Example.COM");
    t.email = Some(c.pack());
    let p = profile("mail", &t.flow(&cfg)).unwrap();
    assert_eq!(
        (p.issuer.as_str(), p.sub.as_str()),
        ("email", "ada.l@example.com")
    );
    assert_eq!(p.email.as_deref(), Some("ada.l@example.com"));
    assert_eq!(p.email_verified, Some(true));
    // A transaction of another kind has no address to sign in.
    let plain = LoginTxn::new("mail", "/".into(), crate::txn::Purpose::SignIn, 0);
    assert!(profile("mail", &plain.flow(&cfg)).is_err());
}

#[test]
fn the_message_escapes_everything_in_html_and_carries_code_and_link() {
    let cfg = test_config();
    let c = EmailConfig::parse(&json!({"kind": "email", "from": "login@example.com"})).unwrap();
    let s = Secrets {
        code: "012345".into(),
        link_token: "tok".into(),
    };
    let link = "http://127.0.0.1:8787/auth/callback/mail?gh_state=a&token=tok\"><script>";
    let m = message(&cfg, &c, "a&b'c@example.com", &s, link);
    assert_eq!(m.from, "login@example.com");
    assert!(m.text.contains("012345") && m.text.contains(link));
    assert!(m.html.contains("012345"));
    assert!(m.html.contains("a&amp;b&#39;c@example.com"));
    assert!(m
        .html
        .contains("gh_state=a&amp;token=tok&quot;&gt;&lt;script&gt;"));
    assert!(!m.html.contains("<script>"));
}

#[test]
fn a_missing_binding_is_a_configuration_error_and_a_refusal_a_502() {
    let p = TestPlatform::new(|_| unreachable!());
    let c = EmailConfig::parse(&json!({"kind": "email", "from": "login@example.com"})).unwrap();
    let m = message(
        &test_config(),
        &c,
        "a@b.io",
        &Secrets {
            code: "1".into(),
            link_token: "t".into(),
        },
        "l",
    );
    p.mailer.refuse.set(true);
    let e = block_on(send(&p, &c, &m)).unwrap_err();
    assert_eq!(e.status(), 502);
    assert!(!e.log_line().unwrap_or_default().contains(&m.text));
    p.mailer.unbound.set(true);
    let e = block_on(send(&p, &c, &m)).unwrap_err();
    assert_eq!(e.status(), 500);
    assert!(
        e.public_message().contains("EMAIL (send_email binding)"),
        "{e:?}"
    );
    assert!(p.mailer.sent.borrow().is_empty());
}
