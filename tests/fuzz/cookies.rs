//! The `Cookie` header and Gatehouse's `Set-Cookie` values.

use crate::gen;
use gatehouse::cookies::{parse_cookie_header, read_cookie, CookieJar, ACCESS, SESSION, TXN};
use gatehouse::http::{Method, Request};
use proptest::prelude::*;

/// A `Cookie` header: pairs of names and values from the characters that matter, joined
/// with `;` (and sometimes without spaces, quotes, or stray separators).
fn cookie_header() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        proptest::sample::select(
            &[
                "gh_session",
                "gh_access",
                "gh_txn",
                "__Host-gh_session",
                "psg_auth_token",
                " gh_session",
                "gh_session "
            ][..]
        )
        .prop_map(String::from),
        gen::text(),
    ];
    let value = prop_oneof![Just(String::new()), "[A-Za-z0-9_.~+/=-]{1,40}", gen::text()];
    prop_oneof![
        3 => proptest::collection::vec((name, value, proptest::sample::select(&["; ", ";", " ; ", ";;", "; \"", ","][..])), 0..6)
            .prop_map(|pairs| pairs.iter().map(|(n, v, sep)| format!("{n}={v}{sep}")).collect::<String>()),
        1 => any::<String>(),
    ]
}

proptest! {
    /// No panic; every pair read from a header has no `;` in its name or value, no `=` in its
    /// name, and names are trimmed; the value a cookie lookup returns is never empty.
    #[test]
    fn fuzz_cookie_header(header in cookie_header(), secure in any::<bool>()) {
        for (k, v) in parse_cookie_header(&header) {
            prop_assert!(!k.contains(';') && !v.contains(';'), "{:?}={:?}", k, v);
            prop_assert!(!k.contains('='));
            prop_assert_eq!(k, k.trim());
        }
        let req = Request::new(Method::Get, "https://gh.example/").with_header("cookie", &header);
        let jar = CookieJar { secure };
        for name in [SESSION, ACCESS, TXN] {
            if let Some(v) = jar.get(&req, name) {
                prop_assert!(!v.is_empty() && !v.contains(';'));
            }
        }
        if let Some(v) = read_cookie(&req, "psg_auth_token") {
            prop_assert!(!v.is_empty() && !v.contains(';'));
        }
    }

    /// A value Gatehouse sets (base64url tokens, JWTs, `state.mac`) is read back as it was,
    /// among other cookies in any order.
    #[test]
    fn fuzz_cookie_round_trip(
        value in "[A-Za-z0-9_.-]{1,200}",
        secure in any::<bool>(),
        others in proptest::collection::vec(("[a-z]{1,8}", "[A-Za-z0-9]{0,12}"), 0..4),
        at in any::<prop::sample::Index>(),
    ) {
        let jar = CookieJar { secure };
        let set = jar.set(SESSION, &value, 60);
        let pair = set.split(';').next().unwrap().to_string();
        let mut pairs: Vec<String> = others.iter().map(|(n, v)| format!("{n}={v}")).collect();
        pairs.insert(at.index(pairs.len() + 1), pair);
        let req = Request::new(Method::Get, "https://gh.example/").with_header("cookie", &pairs.join("; "));
        prop_assert_eq!(jar.get(&req, SESSION), Some(value));
        prop_assert_eq!(jar.get(&req, ACCESS), None);
    }
}
