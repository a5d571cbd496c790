use super::*;
use crate::http::Method;
use crate::testing::{block_on, test_config, TestPlatform};
use crate::txn::LoginTxn;
use serde_json::json;

#[test]
fn settings_need_a_sender_and_default_the_binding() {
    let c = EmailConfig::parse(
        "mail",
        &json!({"kind": "email", "from": "login@example.com"}),
    )
    .unwrap();
    assert_eq!(
        (c.binding.as_str(), c.display_name.as_str()),
        ("EMAIL", "Email")
    );
    let c = EmailConfig::parse(
        "mail",
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
        assert!(EmailConfig::parse("mail", &bad).is_err(), "{bad}");
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

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

/// A challenge for `address` in a transaction of state `state`: (what is kept, what is sent).
fn sent(state: &str, address: &str) -> (String, Secrets) {
    let (c, s) = challenge(KEY, state, address);
    (c.pack(), s)
}

fn link(token: &str) -> Request {
    Request::new(
        Method::Get,
        &format!("http://127.0.0.1:8787/auth/callback/mail?token={token}"),
    )
}

#[test]
fn tries_are_counted_before_comparing_so_the_sixth_is_never_compared() {
    let p = TestPlatform::new(|_| unreachable!());
    let (packed, s) = sent("st", "Ada@Example.com");
    assert_eq!(
        challenge_of(Some(&packed)).unwrap().address,
        "ada@example.com"
    );
    let wrong = if s.code == "000000" {
        "111111"
    } else {
        "000000"
    };
    let try_code = |code: &str| {
        block_on(check_code(
            &p.users,
            KEY,
            "st",
            Some(&packed),
            ("code:st", 9),
            code,
        ))
        .unwrap()
    };
    for left in (0..MAX_CODE_TRIES).rev() {
        assert_eq!(try_code(wrong), CodeCheck::Wrong { left });
    }
    // Even the right code is not compared any more.
    assert_eq!(try_code(&s.code), CodeCheck::Exhausted);
    assert_eq!(
        p.users.counters.borrow()["code:st"],
        (MAX_CODE_TRIES + 1, 9)
    );
}

#[test]
fn the_right_code_and_link_match_and_nothing_else_does() {
    let p = TestPlatform::new(|_| unreachable!());
    let (packed, s) = sent("st", "ada@example.com");
    let (_, other) = sent("st2", "ada@example.com");
    let right = block_on(check_code(
        &p.users,
        KEY,
        "st",
        Some(&packed),
        ("k", 9),
        &s.code,
    ));
    assert_eq!(right.unwrap(), CodeCheck::Right);
    // The same code in another transaction's state does not match: codes are bound to it.
    let elsewhere = block_on(check_code(
        &p.users,
        KEY,
        "st2",
        Some(&packed),
        ("k2", 9),
        &s.code,
    ));
    assert!(matches!(elsewhere.unwrap(), CodeCheck::Wrong { .. }));
    assert!(check_link(KEY, "st", Some(&packed), &link(&s.link_token)).is_ok());
    // Another request's token, a changed one, none, another key, no challenge: refused as
    // the transaction's failure (nothing spent, nothing recorded).
    for bad in [other.link_token.as_str(), &s.link_token[1..], ""] {
        let r = check_link(KEY, "st", Some(&packed), &link(bad));
        assert!(matches!(r, Err(AppError::LoginTransaction(_))), "{bad}");
    }
    let r = check_link(
        b"another key of 32 characters....",
        "st",
        Some(&packed),
        &link(&s.link_token),
    );
    assert!(matches!(r, Err(AppError::LoginTransaction(_))));
    let r = check_link(KEY, "st", None, &link(&s.link_token));
    assert!(matches!(r, Err(AppError::LoginTransaction(_))));
    // Stored hashes are keyed: not the plain SHA-256 of the code.
    let c = challenge_of(Some(&packed)).unwrap();
    assert_ne!(c.code, crate::crypto::sha256_b64url(s.code.as_bytes()));
    assert!(!packed.contains(&s.code) && !packed.contains(&s.link_token));
}

#[test]
fn the_profile_is_the_lower_cased_verified_address() {
    let cfg = test_config();
    let mut t = LoginTxn::new("mail", Default::default(), crate::txn::Purpose::SignIn, 0);
    t.email = Some(sent(&t.state, "Ada.L@Example.COM").0);
    let c = EmailConfig::parse(
        "mail",
        &json!({"kind": "email", "from": "login@example.com"}),
    )
    .unwrap();
    let p = profile(&c, &t.flow(&cfg)).unwrap();
    assert_eq!(
        (p.issuer.as_str(), p.sub.as_str()),
        ("email", "ada.l@example.com")
    );
    assert_eq!(p.email.as_deref(), Some("ada.l@example.com"));
    assert_eq!(p.email_verified, Some(true));
    // A transaction of another kind has no address to sign in.
    let plain = LoginTxn::new("mail", Default::default(), crate::txn::Purpose::SignIn, 0);
    assert!(profile(&c, &plain.flow(&cfg)).is_err());
}

#[test]
fn the_message_escapes_everything_in_html_and_carries_code_and_link() {
    let link = "http://127.0.0.1:8787/auth/callback/mail?gh_state=a&token=tok\"><script>";
    let [subject, text, html] =
        crate::pages::sign_in_mail("127.0.0.1", "a&b'c@example.com", "012345", link);
    assert_eq!(subject, "Your sign-in code for 127.0.0.1");
    assert!(text.contains("012345") && text.contains(link));
    assert!(html.contains("012345"));
    assert!(html.contains("a&amp;b&#39;c@example.com"));
    assert!(html.contains("gh_state=a&amp;token=tok&quot;&gt;&lt;script&gt;"));
    assert!(!html.contains("<script>"));
}

#[test]
fn a_missing_binding_is_a_configuration_error_and_a_refusal_a_502() {
    let p = TestPlatform::new(|_| unreachable!());
    let c = EmailConfig::parse(
        "mail",
        &json!({"kind": "email", "from": "login@example.com"}),
    )
    .unwrap();
    let m = Mail {
        from: c.from.clone(),
        to: "a@b.io".into(),
        subject: "s".into(),
        text: "the text".into(),
        html: "<p>the html</p>".into(),
    };
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
