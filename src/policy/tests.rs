use super::routes::{encode, normalize, BadPath};
use super::*;
use serde_json::json;

fn policy(v: Value) -> Policy {
    Policy::parse(&v, &["google", "dev"]).unwrap()
}

fn problem(v: Value) -> String {
    Policy::parse(&v, &["google", "dev"]).unwrap_err()
}

fn verified(a: &str) -> Email<'_> {
    Email {
        address: Some(a),
        verified: true,
    }
}

fn unverified(a: &str) -> Email<'_> {
    Email {
        address: Some(a),
        verified: false,
    }
}

const NONE: Email<'static> = Email {
    address: None,
    verified: false,
};

#[test]
fn unset_policy_is_open() {
    let p = Policy::default();
    for arrival in [Arrival::New, Arrival::Returning, Arrival::Invited] {
        assert!(p.admit("dev", NONE, arrival).is_ok());
    }
    assert_eq!(p.need(Method::Get, "/anything"), Need::SignedIn(&[]));
    assert_eq!(p.login_hint(), None);
}

#[test]
fn domain_rule_needs_a_verified_address_at_the_domain() {
    let p = policy(
        json!({"allowed_email_domains": ["Example.com"], "allowed_emails": ["contractor@gmail.com"]}),
    );
    assert!(p
        .admit("dev", verified("a@example.com"), Arrival::New)
        .is_ok());
    assert!(p
        .admit("dev", verified("A@EXAMPLE.COM"), Arrival::Returning)
        .is_ok());
    assert!(p
        .admit("dev", verified("contractor@gmail.com"), Arrival::New)
        .is_ok());
    let why = p
        .admit("dev", unverified("a@example.com"), Arrival::New)
        .unwrap_err();
    assert!(why.contains("did not verify"), "{why}");
    assert!(p.admit("dev", NONE, Arrival::Returning).is_err());
    let why = p
        .admit("dev", verified("a@example.com.evil.io"), Arrival::New)
        .unwrap_err();
    assert!(
        why.contains("sign in with your example.com account"),
        "{why}"
    );
    assert!(
        p.admit("dev", verified("a@sub.example.com"), Arrival::New)
            .is_err(),
        "exact domain"
    );
    assert!(p
        .admit("dev", verified("other@gmail.com"), Arrival::New)
        .is_err());
    assert_eq!(
        p.login_hint().as_deref(),
        Some("Sign in with your example.com account.")
    );
}

#[test]
fn require_verified_email() {
    let p = policy(json!({"require_verified_email": true}));
    assert!(p.admit("dev", verified("a@x.org"), Arrival::New).is_ok());
    assert!(p.admit("dev", unverified("a@x.org"), Arrival::New).is_err());
    assert!(p.admit("dev", NONE, Arrival::Returning).is_err());
}

#[test]
fn sign_up_modes_refuse_only_new_identities_without_an_invitation() {
    for (mode, words) in [
        ("invite", "invitation"),
        ("closed", "does not accept new accounts"),
    ] {
        let p = policy(json!({ "sign_up": mode }));
        let why = p.admit("dev", NONE, Arrival::New).unwrap_err();
        assert!(why.contains(words), "{why}");
        assert!(p.admit("dev", NONE, Arrival::Returning).is_ok());
        assert!(p.admit("dev", NONE, Arrival::Invited).is_ok());
        assert!(p.login_hint().unwrap().contains("New accounts"));
    }
}

#[test]
fn provider_overrides_replace_only_the_keys_they_set() {
    let p = policy(json!({
        "sign_up": "closed",
        "allowed_email_domains": ["example.com"],
        "providers": {"google": {"allowed_email_domains": ["corp.example"]}}
    }));
    assert!(p
        .admit("google", verified("a@corp.example"), Arrival::Returning)
        .is_ok());
    assert!(p
        .admit("google", verified("a@example.com"), Arrival::Returning)
        .is_err());
    assert!(p
        .admit("dev", verified("a@example.com"), Arrival::Returning)
        .is_ok());
    assert!(
        p.admit("google", verified("a@corp.example"), Arrival::New)
            .is_err(),
        "sign_up inherited"
    );
}

#[test]
fn rule_roles_need_a_verified_email() {
    let p = policy(json!({"roles": [
        {"role": "staff", "email_domains": ["example.com"]},
        {"role": "boss", "emails": ["ceo@example.com"]}
    ]}));
    let own = vec!["editor".to_string(), "staff".to_string()];
    assert_eq!(
        p.roles_of(&own, verified("ceo@example.com")),
        ["editor", "staff", "boss"]
    );
    assert_eq!(p.roles_of(&[], verified("x@example.com")), ["staff"]);
    assert!(p.roles_of(&[], unverified("ceo@example.com")).is_empty());
    assert!(p.roles_of(&[], verified("x@other.org")).is_empty());
}

#[test]
fn bad_keys_are_named() {
    for (v, key) in [
        (json!({"sign_up": "maybe"}), "sign_up"),
        (json!({"sign_upp": "open"}), "\"sign_upp\""),
        (
            json!({"allowed_email_domains": "example.com"}),
            "allowed_email_domains",
        ),
        (
            json!({"allowed_email_domains": ["@example.com"]}),
            "allowed_email_domains",
        ),
        (json!({"allowed_emails": ["nobody"]}), "allowed_emails"),
        (
            json!({"require_verified_email": "yes"}),
            "require_verified_email",
        ),
        (json!({"providers": {"github": {}}}), "providers.github"),
        (
            json!({"providers": {"google": {"sign_up": "x"}}}),
            "providers.google.sign_up",
        ),
        (
            json!({"providers": {"google": {"routes": []}}}),
            "providers.google",
        ),
        (json!({"roles": [{"role": "Admin"}]}), "roles[0].role"),
        (
            json!({"roles": [{"email_domains": ["a.b"]}]}),
            "roles[0].role",
        ),
        (json!({"routes": [{"path": "admin/*"}]}), "routes[0].path"),
        (json!({"routes": [{"path": "/a/../b"}]}), "routes[0].path"),
        (json!({"routes": [{"path": "//a"}]}), "routes[0].path"),
        (json!({"routes": [{"path": "/a*"}]}), "routes[0].path"),
        (json!({"routes": [{"path": "/a/%2e%2e"}]}), "routes[0].path"),
        (
            json!({"routes": [{"path": "/a", "methods": ["FETCH"]}]}),
            "routes[0].methods",
        ),
        (
            json!({"routes": [{"path": "/a", "roles": ["x y"]}]}),
            "routes[0].roles",
        ),
        (
            json!({"routes": [{"path": "/a", "public": true, "roles": ["x"]}]}),
            "routes[0]",
        ),
        (json!({"routes": [{"methods": ["GET"]}]}), "routes[0].path"),
        (
            json!({"routes": [{"path": "/a", "verb": "GET"}]}),
            "routes[0]",
        ),
        (json!("open"), "POLICY"),
    ] {
        let why = problem(v.clone());
        assert!(why.contains(key), "{v}: {why}");
    }
}

#[test]
fn routes_first_match_wins_with_methods_roles_and_public() {
    let p = policy(json!({"routes": [
        {"path": "/admin/*", "roles": ["admin"]},
        {"path": "/public/*", "public": true},
        {"path": "/api/*", "methods": ["POST", "DELETE"], "roles": ["editor"]},
        {"path": "/status", "methods": ["GET"], "public": true},
        {"path": "/lower", "methods": ["get"], "public": true},
    ]}));
    assert_eq!(
        p.need(Method::Get, "/lower"),
        Need::Public,
        "a method in any case"
    );
    assert_eq!(p.need(Method::Post, "/lower"), Need::SignedIn(&[]));
    let admin = vec!["admin".to_string()];
    let editor = vec!["editor".to_string()];
    assert_eq!(p.need(Method::Get, "/admin"), Need::SignedIn(&admin));
    assert_eq!(p.need(Method::Get, "/admin/"), Need::SignedIn(&admin));
    assert_eq!(
        p.need(Method::Post, "/admin/users/1"),
        Need::SignedIn(&admin)
    );
    assert_eq!(p.need(Method::Get, "/administrator"), Need::SignedIn(&[]));
    assert_eq!(p.need(Method::Get, "/public/x.css"), Need::Public);
    assert_eq!(p.need(Method::Post, "/api/items"), Need::SignedIn(&editor));
    assert_eq!(p.need(Method::Get, "/api/items"), Need::SignedIn(&[]));
    assert_eq!(p.need(Method::Get, "/status"), Need::Public);
    assert_eq!(
        p.need(Method::Head, "/status"),
        Need::Public,
        "GET covers HEAD"
    );
    assert_eq!(p.need(Method::Post, "/status"), Need::SignedIn(&[]));
    assert_eq!(
        p.need(Method::Get, "/status/x"),
        Need::SignedIn(&[]),
        "exact"
    );
    let everything = policy(json!({"routes": [{"path": "/*", "public": true}]}));
    assert_eq!(everything.need(Method::Get, "/"), Need::Public);
    assert_eq!(everything.need(Method::Get, "/a/b"), Need::Public);
}

#[test]
fn the_path_is_normalized_before_matching() {
    for (raw, want) in [
        ("/", "/"),
        ("", "/"),
        ("/a/b", "/a/b"),
        ("//admin", "/admin"),
        ("/public//..//admin", "/admin"),
        ("/admin/./x/", "/admin/x/"),
        ("/public/../admin/x", "/admin/x"),
        ("/public/%2e%2e/admin", "/admin"),
        ("/public/.%2E/admin", "/admin"),
        ("/%61dmin", "/admin"),
        ("/%41dmin", "/Admin"),
        ("/a/..", "/"),
        ("/a/b/..", "/a/"),
        ("/../../etc", "/etc"),
        ("/caf%C3%A9", "/café"),
        ("/a%252Fb", "/a%2Fb"),
        ("/a%20b", "/a b"),
        ("/a;b", "/a;b"),
    ] {
        assert_eq!(normalize(raw).as_deref(), Ok(want), "{raw}");
    }
    for (raw, why) in [
        ("/admin%2Fusers", BadPath::EncodedSlash),
        ("/public%2F..%2Fadmin", BadPath::EncodedSlash),
        ("/public/..%2Fadmin", BadPath::EncodedSlash),
        ("/public%5C..%5Cadmin", BadPath::EncodedSlash),
        ("/a%2fb", BadPath::EncodedSlash),
        ("/a%00b", BadPath::BadEncoding),
        ("/a%0d%0aX: y", BadPath::BadEncoding),
        ("/a%", BadPath::BadEncoding),
        ("/a%zz", BadPath::BadEncoding),
        ("/a%c3", BadPath::BadEncoding),
        ("/public/..;/admin", BadPath::DotSegmentParameter),
        ("/public/.;x/admin", BadPath::DotSegmentParameter),
    ] {
        assert_eq!(normalize(raw), Err(why), "{raw}");
    }
}

#[test]
fn the_forwarded_path_decodes_once_to_the_checked_one() {
    for raw in [
        "/a b",
        "/café",
        "/a%2Fb",
        "/q?x#y",
        "/100%",
        "/a;b=c",
        "/~user/x.y-z_",
        "/",
    ] {
        let enc = encode(raw);
        assert!(enc.bytes().all(|b| b.is_ascii_graphic()), "{enc}");
        assert!(!enc.contains('?') && !enc.contains('#'), "{enc}");
        assert_eq!(normalize(&enc).as_deref(), Ok(raw), "{raw} → {enc}");
    }
    assert_eq!(encode("/a%2Fb"), "/a%252Fb");
    assert_eq!(encode("/café"), "/caf%C3%A9");
}

#[test]
fn roles_are_checked() {
    assert_eq!(
        role_list(&json!(["a", "b-c_1", "a"]), "roles").unwrap(),
        ["a", "b-c_1"]
    );
    for bad in [
        json!(["A"]),
        json!([""]),
        json!(["x".repeat(33)]),
        json!([1]),
        json!("a"),
    ] {
        assert!(role_list(&bad, "roles").is_err(), "{bad}");
    }
    let many: Vec<String> = (0..21).map(|i| format!("r{i}")).collect();
    assert!(role_list(&json!(many), "roles")
        .unwrap_err()
        .contains("at most 20"));
    assert!(valid_role(&"x".repeat(32)));
}
