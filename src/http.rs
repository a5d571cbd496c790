//! Framework-neutral HTTP types. The Worker layer converts `worker::Request` into a
//! [`Request`] and a [`Response`] back into `worker::Response`, so that every handler runs
//! natively in unit tests. Also owns the small request helpers every handler needs: content
//! negotiation, query and form parsing, and the body size cap.

use crate::error::{AppError, AppResult};
use serde::de::DeserializeOwned;
use url::Url;

/// Content-Security-Policy of every HTML page ([`Response::html`]): no scripts at all, forms
/// only to ourselves.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Largest request body Gatehouse reads (its own routes take small JSON or forms).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The request headers Gatehouse's own routes read: the Worker layer converts only these
/// (proxy mode, which must see every name to strip the ones it does not forward, reads all).
/// Native tests fail when a handler asks [`Request::header`] for a name missing here.
pub const READ_HEADERS: &[&str] = &[
    "accept",
    "authorization",
    "cf-connecting-ip",
    "cf-connecting-ipv6",
    "content-length",
    "content-type",
    "cookie",
    "origin",
    "sec-fetch-site",
    "user-agent",
];

/// HTTP method, as far as Gatehouse distinguishes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    Other,
}

impl Method {
    /// The method as the runtime gives it: fetch upper-cases DELETE, GET, HEAD, OPTIONS, POST
    /// and PUT whatever their case, not PATCH (so that one is compared without case here).
    pub fn parse(s: &str) -> Method {
        match s {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            _ if s.eq_ignore_ascii_case("PATCH") => Method::Patch,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            _ => Method::Other,
        }
    }

    /// Methods that change state and so need the Origin check.
    pub fn is_unsafe(self) -> bool {
        !matches!(self, Method::Get | Method::Head | Method::Options)
    }
}

/// What kind of error body the client wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wants {
    Html,
    Json,
}

/// An incoming request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub url: Url,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn new(method: Method, url: &str) -> Request {
        Request {
            method,
            url: Url::parse(url).expect("test URL"),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Request {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }

    /// First value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        debug_assert!(
            READ_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name)),
            "`{name}` is read but not in READ_HEADERS: the Worker would never pass it"
        );
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.url.path()
    }

    /// First value of a query parameter.
    pub fn query(&self, name: &str) -> Option<String> {
        self.url
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// Browsers get HTML error pages; everything else JSON.
    pub fn wants(&self) -> Wants {
        let accept = self.header("accept").unwrap_or("");
        if accept.contains("text/html") {
            Wants::Html
        } else {
            Wants::Json
        }
    }

    pub fn user_agent(&self) -> &str {
        self.header("user-agent").unwrap_or("")
    }

    /// The client's address as the edge reports it. Under Cloudflare's Pseudo IPv4
    /// ("overwrite headers"), an IPv6 client arrives as a class E address (240.0.0.0/4,
    /// never a real client's) standing in for it, with its real address in
    /// `cf-connecting-ipv6`: that one is the client's, so that its /64 is its network. The
    /// IPv6 header is read only then: elsewhere a client could send it itself.
    /// No `cf-connecting-ip` (a caller that is not a browser on the internet: a service
    /// binding) is `""`, one network of its own (docs/security.md, rule "Rate limits").
    pub fn client_ip(&self) -> &str {
        let ip = self.header("cf-connecting-ip").unwrap_or("");
        // 240. to 255.: the edge sends well-formed addresses, so three digits and a dot do.
        match ip.as_bytes() {
            [b'2', b'4' | b'5', b'0'..=b'9', b'.', ..] => {
                self.header("cf-connecting-ipv6").unwrap_or(ip)
            }
            _ => ip,
        }
    }

    /// The client's network, for rate limits: an IPv4 address as it is, an IPv6 address as
    /// its /64 (one subscriber's usual allocation, so that rotating through it gains nothing).
    pub fn client_network(&self) -> String {
        let ip = self.client_ip();
        // Through the `url` crate's IPv6 parser, already in the bundle for URLs, rather than
        // std's, which would be a second one.
        let Ok(url::Host::Ipv6(v6)) = url::Host::parse(&format!("[{ip}]")) else {
            return ip.to_string();
        };
        match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        }
    }

    pub fn is_form(&self) -> bool {
        self.header("content-type")
            .map(|c| c.starts_with("application/x-www-form-urlencoded"))
            .unwrap_or(false)
    }

    /// Reads the body as JSON or as a form, into `T` (unknown fields are the type's choice).
    pub fn parse_body<T: DeserializeOwned>(&self) -> AppResult<T> {
        if self.body.len() > MAX_BODY_BYTES {
            return Err(AppError::PayloadTooLarge);
        }
        if self.is_form() {
            // Inserted one by one (a repeated name keeps its last value, as `collect` did):
            // `collect` into the map would link a sort of its own.
            let mut pairs = serde_json::Map::new();
            for (k, v) in url::form_urlencoded::parse(&self.body) {
                pairs.insert(k.into_owned(), serde_json::Value::String(v.into_owned()));
            }
            // Through JSON text rather than `from_value`: one parser instance per `T` (and
            // serde_json's one text parser) instead of a second, `Value`-reading one.
            let json = crate::fields::json_text(&serde_json::Value::Object(pairs));
            serde_json::from_slice(json.as_bytes())
                .map_err(|e| AppError::BadRequest(format!("Invalid form: {e}.")))
        } else {
            serde_json::from_slice(&self.body)
                .map_err(|e| AppError::BadRequest(format!("Invalid JSON body: {e}.")))
        }
    }

    /// Whether the caller is a form post from a browser (so it wants a redirect, not 204).
    pub fn is_browser_form(&self) -> bool {
        self.is_form() || self.wants() == Wants::Html
    }
}

/// An outgoing response.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        let mut r = Response::new(status);
        r.set_header("content-type", "application/json");
        r.body = serde_json::to_vec(value).unwrap_or_default();
        r
    }

    pub fn html(status: u16, page: String) -> Response {
        let mut r = Response::new(status);
        r.set_header("content-type", "text/html; charset=utf-8");
        r.set_header("content-security-policy", CSP);
        r.set_header("x-frame-options", "DENY");
        r.body = page.into_bytes();
        r
    }

    /// A 302 to `location` (built by hand so cookies can ride along; see docs/toolchain.md).
    pub fn redirect(location: &str) -> Response {
        let mut r = Response::new(302);
        r.set_header("location", location);
        r.set_header("cache-control", "no-store");
        r
    }

    /// Replaces a header.
    pub fn set_header(&mut self, name: &str, value: &str) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
    }

    /// Adds a header, keeping others of the same name (Set-Cookie).
    pub fn append_header(&mut self, name: &str, value: &str) {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_networks_group_an_ipv6_slash_64() {
        let net = |ip: &str| {
            Request::new(Method::Get, "https://gh.example/")
                .with_header("cf-connecting-ip", ip)
                .client_network()
        };
        assert_eq!(net("198.51.100.7"), "198.51.100.7");
        assert_eq!(net("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(
            net("2001:db8:1:2:ffff:ffff:ffff:ffff"),
            net("2001:0db8:0001:0002::9")
        );
        assert_ne!(net("2001:db8:1:3::1"), net("2001:db8:1:2::1"));
        assert_eq!(net("::ffff:198.51.100.7"), "198.51.100.7");
        assert_eq!(net("not an ip"), "not an ip");
    }

    #[test]
    fn a_pseudo_ipv4_client_is_its_real_ipv6_slash_64() {
        let net = |ip: &str, v6: Option<&str>| {
            let r = Request::new(Method::Get, "https://gh.example/")
                .with_header("cf-connecting-ip", ip);
            match v6 {
                Some(v6) => r.with_header("cf-connecting-ipv6", v6),
                None => r,
            }
            .client_network()
        };
        // One /64 behind many pseudo IPv4 addresses is one network.
        assert_eq!(
            net("240.1.2.3", Some("2001:db8:1:2::1")),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            net("255.9.8.7", Some("2001:db8:1:2:ffff::9")),
            "2001:db8:1:2::/64"
        );
        assert_eq!(net("240.1.2.3", None), "240.1.2.3");
        // A real IPv4 client cannot pick its network by sending the IPv6 header itself.
        assert_eq!(net("198.51.100.7", Some("2001:db8::1")), "198.51.100.7");
        assert_eq!(
            net("239.255.255.255", Some("2001:db8::1")),
            "239.255.255.255"
        );
        // Without `cf-connecting-ip`, one network of its own, whatever else is sent.
        let bare = Request::new(Method::Get, "https://gh.example/")
            .with_header("cf-connecting-ipv6", "2001:db8::1");
        assert_eq!(bare.client_network(), "");
    }

    #[derive(serde::Deserialize)]
    struct Email {
        email: String,
    }

    #[test]
    fn parses_form_and_json() {
        let f = Request::new(Method::Post, "http://x/a")
            .with_header("content-type", "application/x-www-form-urlencoded")
            .with_body("email=a%40b.c");
        assert_eq!(f.parse_body::<Email>().unwrap().email, "a@b.c");
        let j = Request::new(Method::Post, "http://x/a").with_body(r#"{"email":"x@y.z"}"#);
        assert_eq!(j.parse_body::<Email>().unwrap().email, "x@y.z");
    }

    #[test]
    fn oversized_body_is_refused() {
        let j = Request::new(Method::Post, "http://x/a").with_body(vec![b' '; MAX_BODY_BYTES + 1]);
        assert_eq!(
            j.parse_body::<Email>().err(),
            Some(AppError::PayloadTooLarge)
        );
    }

    #[test]
    fn negotiation() {
        let r = Request::new(Method::Get, "http://x/").with_header("Accept", "text/html,*/*");
        assert_eq!(r.wants(), Wants::Html);
        assert_eq!(Request::new(Method::Get, "http://x/").wants(), Wants::Json);
    }
}
