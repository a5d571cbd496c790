//! Generators shared by the fuzz targets: JSON values whose object keys are mostly the field
//! names Gatehouse's parsers look for (so that structure is reached, not only refused at the
//! first byte), strings with the characters that break parsers, and raw bytes.

use proptest::prelude::*;
use serde_json::{Map, Value};

/// Field names some parser of Gatehouse reads.
pub const FIELDS: &[&str] = &[
    "iss",
    "aud",
    "sub",
    "exp",
    "nbf",
    "iat",
    "nonce",
    "azp",
    "email",
    "email_verified",
    "name",
    "alg",
    "kid",
    "typ",
    "crit",
    "jwk",
    "jku",
    "x5u",
    "x5c",
    "kty",
    "crv",
    "x",
    "y",
    "n",
    "e",
    "d",
    "use",
    "keys",
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "jwks_uri",
    "userinfo_endpoint",
    "id_token",
    "access_token",
    "token_type",
    "error",
    "status",
    "data",
    "url",
    "user_id",
    "user",
    "emails",
    "email_id",
    "method_id",
    "session_token",
    "status_code",
    "error_type",
    "error_message",
    "Uid",
    "Email",
    "Type",
    "Value",
    "FullName",
    "FirstName",
    "LastName",
    "ErrorCode",
    "Message",
    "Description",
    "IsPosted",
    "EmailVerified",
    "ImageUrl",
    "given_name",
    "family_name",
    "picture",
    "id",
    "login",
    "avatar_url",
    "metadata",
    "phone",
    "return_to",
    "provider",
    "kind",
    "client_id",
    "preset",
    "scopes",
    "client_auth",
    "display_name",
    "app_name",
    "api_key",
    "hub_url",
    "api_url",
    "project_id",
    "domain",
    "app_id",
    "cookie",
    "sid",
    "verified",
    "primary",
    "message",
    "session_minutes",
    "sub_field",
    "email_field",
    "name_field",
    "picture_field",
    "first_name",
    "last_name",
];

/// Short strings that mean something to some parser.
pub const WORDS: &[&str] = &[
    "",
    " ",
    "EdDSA",
    "Ed25519",
    "ES256",
    "RS256",
    "HS256",
    "none",
    "OKP",
    "EC",
    "RSA",
    "P-256",
    "at+jwt",
    "JWT",
    "application/at+jwt",
    "success",
    "error",
    "Primary",
    "oidc",
    "oauth2",
    "stytch",
    "passage",
    "xwms",
    "loginradius",
    "github",
    "http://127.0.0.1:9000",
    "http://127.0.0.1:8787",
    "https://app.example.com",
    "gatehouse",
    "user-42",
    "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
    "AQAB",
    "sig",
    "Bearer",
    "null",
    "0",
    "-1",
    "1e400",
    "\u{0}",
    "\n",
    "\"",
    "\\",
    "%",
    "%00",
    "😀",
    "ﬀ",
    "İ",
    "\u{202e}",
];

/// Strings: a known word, printable ASCII, any characters, or control characters.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(WORDS).prop_map(String::from),
        3 => "[ -~]{0,24}",
        2 => any::<String>(),
        1 => "[\\x00-\\x1f\\x7f;=,\"\\\\%]{0,8}",
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => proptest::sample::select(FIELDS).prop_map(String::from),
        1 => text(),
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        (1_600_000_000i64..1_800_000_000).prop_map(Value::from),
        (-3i64..300).prop_map(Value::from),
    ]
}

/// Any JSON value, up to four levels deep.
pub fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((key(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A JSON object.
pub fn object() -> impl Strategy<Value = Map<String, Value>> {
    proptest::collection::vec((key(), json()), 0..10).prop_map(|kv| kv.into_iter().collect())
}

/// Bytes: valid JSON, its text cut or spliced, or anything.
pub fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => json().prop_map(|v| v.to_string().into_bytes()),
        2 => (json(), any::<prop::sample::Index>(), proptest::collection::vec(any::<u8>(), 0..4))
            .prop_map(|(v, at, junk)| {
                let mut b = v.to_string().into_bytes();
                let i = at.index(b.len() + 1);
                b.splice(i..i, junk);
                b.truncate(i + 2 + at.index(b.len().max(1)));
                b
            }),
        2 => proptest::collection::vec(any::<u8>(), 0..64),
    ]
}
