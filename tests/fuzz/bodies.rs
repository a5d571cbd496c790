//! Form and JSON bodies, query strings and the input checks of the admin and self-service
//! routes.

use crate::gen;
use gatehouse::error::AppError;
use gatehouse::http::{Method, Request, MAX_BODY_BYTES};
use gatehouse::providers::{query_token, MAX_QUERY_TOKEN_LEN};
use gatehouse::validate;
use proptest::prelude::*;
use serde_json::Value;

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct MagicLinkBody {
    email: String,
    #[serde(default)]
    return_to: Option<String>,
}

/// Form bodies: `k=v&…` with percent-escapes (valid or broken), or any bytes.
fn form() -> impl Strategy<Value = Vec<u8>> {
    let part = prop_oneof![
        proptest::sample::select(
            &[
                "email",
                "return_to",
                "token",
                "%",
                "%zz",
                "%e2%82",
                "+",
                "=",
                "&",
                "a%40b.c",
                "%00"
            ][..]
        )
        .prop_map(String::from),
        "[ -~]{0,12}",
    ];
    prop_oneof![
        3 => proptest::collection::vec((part.clone(), part), 0..6)
            .prop_map(|kv| kv.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&").into_bytes()),
        1 => gen::body_bytes(),
    ]
}

fn content_type() -> impl Strategy<Value = Option<&'static str>> {
    proptest::option::of(proptest::sample::select(
        &[
            "application/json",
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencoded; charset=utf-8",
            "text/plain",
            "multipart/form-data",
        ][..],
    ))
}

proptest! {
    /// A body of any bytes as JSON or as a form: parsed, or refused as a bad request (or too
    /// large) — nothing else.
    #[test]
    fn fuzz_request_bodies(body in prop_oneof![form(), gen::body_bytes()], ct in content_type(), huge in proptest::bool::weighted(0.02)) {
        let mut req = Request::new(Method::Post, "https://gh.example/auth/magic-link").with_body(body);
        if huge {
            req.body.resize(MAX_BODY_BYTES + 1, b' ');
        }
        if let Some(ct) = ct {
            req = req.with_header("content-type", ct);
        }
        match req.parse_body::<MagicLinkBody>() {
            Ok(_) => prop_assert!(!huge),
            Err(AppError::BadRequest(_)) => {}
            Err(AppError::PayloadTooLarge) => prop_assert!(huge),
            Err(e) => prop_assert!(false, "{:?}", e),
        }
        let _ = req.parse_body::<Value>();
    }

    /// Admin bodies of any shape: accepted ones hold only valid fields (an email that passes
    /// the check again, metadata an object within 8 KB).
    #[test]
    fn fuzz_admin_bodies(body in prop_oneof![
        gen::object().prop_map(|m| Value::Object(m).to_string().into_bytes()),
        gen::body_bytes(),
        // Metadata around the 8 KB limit, beside other fields.
        (8_170usize..8_210, gen::object()).prop_map(|(n, mut m)| {
            m.insert("metadata".into(), serde_json::json!({"k": "x".repeat(n)}));
            Value::Object(m).to_string().into_bytes()
        }),
    ]) {
        if let Ok(u) = validate::new_user(&body) {
            if let Some(e) = &u.email {
                prop_assert_eq!(validate::email(e), Ok(e.clone()));
            }
            if let Some(p) = &u.phone {
                prop_assert_eq!(validate::phone(p), Ok(p.clone()));
            }
            if let Some(n) = &u.name {
                prop_assert_eq!(validate::name(n), Ok(n.clone()));
            }
            if let Some(m) = &u.metadata {
                prop_assert!(m.is_object() && m.to_string().len() <= validate::MAX_METADATA_BYTES);
            }
        }
        if let Ok(p) = validate::user_patch(&body) {
            if let Some(Some(e)) = &p.email {
                prop_assert_eq!(validate::email(e), Ok(e.clone()));
            }
        }
        let _ = validate::json_object(&body);
    }

    /// Single fields: every check accepts only what it accepts again unchanged.
    #[test]
    fn fuzz_fields(s in prop_oneof![
        gen::text(),
        // Nearly an address or a phone number, with the odd stray character.
        r"[ \t]{0,2}[a-zA-Z0-9.+_\-]{0,10}@[a-z0-9\-.]{0,10}\.[a-z]{1,4}[ \t]{0,2}",
        r"[ +(]{0,2}[0-9 ().\-]{4,20}[ x]{0,1}",
    ]) {
        if let Ok(e) = validate::email(&s) {
            prop_assert_eq!(validate::email(&e), Ok(e.clone()));
            prop_assert!(!e.chars().any(|c| c.is_whitespace() || c.is_control()));
        }
        if let Ok(p) = validate::phone(&s) {
            prop_assert_eq!(validate::phone(&p), Ok(p.clone()));
            prop_assert!(p.starts_with('+') && p[1..].bytes().all(|b| b.is_ascii_digit()));
        }
        if let Ok(n) = validate::name(&s) {
            prop_assert_eq!(validate::name(&n), Ok(n.clone()));
        }
        if let Ok(l) = validate::page_limit(Some(&s)) {
            prop_assert!((1..=validate::MAX_PAGE).contains(&l));
        }
        let _ = validate::decode_cursor(&s);
        let _ = validate::decode_event_cursor(&s);
        let _ = validate::required_param("x", Some(s.clone()));
        let _ = Method::parse(&s);
        let _ = Request::new(Method::Get, "https://gh.example/").with_header("cf-connecting-ip", &s).client_network();
    }

    /// Cursors made by the API are read back as made.
    #[test]
    fn fuzz_cursor_round_trip(t in any::<i64>(), key in "[^\\x00]{1,40}") {
        let c = validate::encode_cursor(t, &key);
        prop_assert_eq!(validate::decode_cursor(&c), Ok((t, key.clone())));
    }

    /// Query strings of any shape: a parameter read from one is never a panic, and a token
    /// taken from `?token=` is made of token characters only.
    #[test]
    fn fuzz_query_strings(q in prop_oneof![
        "[ -~]{0,80}",
        proptest::collection::vec(proptest::sample::select(&["token=", "gh_state=", "state=", "code=", "%", "%zz", "%0d%0a", "&", "=", "?", "+", "a", "%2B", "#"][..]), 0..12).prop_map(|p| p.concat()),
    ]) {
        let mut url = url::Url::parse("https://gh.example/auth/callback/x").unwrap();
        url.set_query(Some(&q));
        let req = Request { method: Method::Get, url, headers: vec![], body: vec![] };
        for name in ["token", "state", "gh_state", "code", "return_to"] {
            let _ = req.query(name);
        }
        let fixed = gatehouse::providers::normalize_callback(&req);
        let _ = gatehouse::providers::callback_state(&fixed);
        match query_token(&fixed, MAX_QUERY_TOKEN_LEN) {
            Ok(t) => prop_assert!(!t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || "-._~+/=".contains(c))),
            Err(e) => prop_assert!(matches!(e, AppError::BadRequest(_)), "{:?}", e),
        }
    }
}
