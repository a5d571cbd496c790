//! `return_to`: whatever is accepted stays on Gatehouse's own origin or an allowed one, as a
//! browser would resolve it.

use crate::gen;
use gatehouse::config::Config;
use gatehouse::return_to::validate;
use gatehouse::testing::test_config;
use proptest::prelude::*;
use url::Url;

const ALLOWED: &str = "https://app.example.com";

fn cfg() -> Config {
    let mut c = test_config();
    c.allowed_return_origins = vec![ALLOWED.into()];
    c
}

/// Pieces of open-redirect tricks, glued together.
const PIECES: &[&str] = &[
    "/",
    "//",
    "///",
    "\\",
    "/\\",
    "%2F",
    "%2f",
    "%5C",
    "%252F",
    "%25",
    "http:",
    "https:",
    "HTTPS:",
    "//evil.com",
    "evil.com",
    "@evil.com",
    ".",
    "..",
    "%2e",
    "%2E%2E",
    "@",
    "#",
    "?",
    "\t",
    "\n",
    "\r",
    " ",
    "%09",
    "%0a",
    "%00",
    "javascript:",
    "data:",
    "JaVaScRiPt:",
    "app.example.com",
    "127.0.0.1:8787",
    "127.0.0.1",
    ":",
    ":8787",
    "\u{3000}",
    "／",
    "\u{ff0e}",
    "%E3%80%80",
    "x",
    "dash",
    "a=b&c",
    "user:pw@",
    "[::1]",
    "0x7f.1",
    "https://app.example.com",
    "http://127.0.0.1:8787",
    "https://app.example.com.evil.com",
];

fn return_to() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::collection::vec(proptest::sample::select(PIECES), 1..8).prop_map(|p| p.concat()),
        1 => gen::text(),
        1 => any::<String>(),
    ]
}

proptest! {
    /// Accepted: a path that a browser resolves on our origin, or an absolute URL on an
    /// allowed origin, without user info, control characters or backslashes; and accepted
    /// again as it is.
    #[test]
    fn fuzz_return_to(raw in return_to()) {
        let c = cfg();
        let base = Url::parse(&c.public_url).unwrap();
        if let Ok(out) = validate(&c, Some(&raw)).map(|r| r.into_string()) {
            prop_assert!(!out.chars().any(|ch| ch.is_control() || ch == '\\'), "{:?} -> {:?}", raw, out);
            let resolved = base.join(&out).unwrap();
            let origin = resolved.origin().ascii_serialization();
            prop_assert!(origin == c.public_origin || origin == ALLOWED, "{:?} -> {:?} -> {}", raw, out, origin);
            prop_assert!(resolved.username().is_empty() && resolved.password().is_none());
            if out.starts_with('/') {
                prop_assert!(!out.starts_with("//"), "{:?} -> {:?}", raw, out);
            } else {
                prop_assert!(out.starts_with("https://") || out.starts_with("http://"));
            }
            prop_assert_eq!(validate(&c, Some(&out)).map(|r| r.into_string()), Ok(out.clone()), "not stable: {:?}", raw);
        }
    }
}
