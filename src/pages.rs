//! The few HTML pages Gatehouse serves: the login page, the error page, the signed-in home
//! page. Plain, readable, accessible (labels, headings, focus styles), no scripts, and every
//! interpolated string escaped.

/// Content-Security-Policy of every page: no scripts at all, forms only to ourselves.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem;color:#1a1a1a}\
h1{font-size:1.5rem}ul{list-style:none;padding:0}li{margin:.5rem 0}\
a.btn,button{display:block;width:100%;box-sizing:border-box;padding:.7rem 1rem;border:1px solid #444;border-radius:6px;background:#fff;color:#1a1a1a;font:inherit;text-align:center;text-decoration:none;cursor:pointer}\
a.btn:hover,button:hover{background:#f2f2f2}a:focus,button:focus,input:focus{outline:3px solid #2563eb;outline-offset:2px}\
input{width:100%;box-sizing:border-box;padding:.6rem;font:inherit;margin:.25rem 0 .5rem}.muted{color:#555}";

/// Wraps `body` in the common page frame.
pub fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        esc(title)
    )
}

/// The error page of [`crate::error::AppError::into_response`].
pub fn error_page(status: u16, message: &str) -> String {
    layout(
        "Sign-in problem",
        &format!("<h1>Something went wrong</h1><p role=\"alert\">{}</p><p class=\"muted\">Error {status}. <a href=\"/auth/login\">Back to sign-in</a></p>", esc(message)),
    )
}

/// The login page: one button per provider.
pub fn login_page(providers: &[(String, String)], return_to: &str) -> String {
    let mut items = String::new();
    for (name, display) in providers {
        let mut href = url::form_urlencoded::Serializer::for_suffix(
            String::from("/auth/login?"),
            "/auth/login?".len(),
        );
        href.append_pair("provider", name);
        if return_to != crate::return_to::DEFAULT {
            href.append_pair("return_to", return_to);
        }
        items.push_str(&format!(
            "<li><a class=\"btn\" href=\"{}\">Continue with {}</a></li>",
            esc(&href.finish()),
            esc(display)
        ));
    }
    layout(
        "Sign in",
        &format!("<h1>Sign in</h1><nav aria-label=\"Sign-in providers\"><ul>{items}</ul></nav>"),
    )
}

/// The home page: who is signed in, and a sign-out button.
pub fn home_page(signed_in: Option<(&str, Option<&str>)>) -> String {
    match signed_in {
        Some((name, email)) => layout(
            "Signed in",
            &format!(
                "<h1>Signed in</h1><p>You are signed in as <strong id=\"who\">{}</strong>{}.</p>\
<form method=\"post\" action=\"/auth/logout\"><button type=\"submit\">Sign out</button></form>",
                esc(name),
                email.map(|e| format!(" (<span id=\"email\">{}</span>)", esc(e))).unwrap_or_default()
            ),
        ),
        None => layout("Gatehouse", "<h1>Gatehouse</h1><p>You are not signed in.</p><p><a class=\"btn\" href=\"/auth/login\">Sign in</a></p>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_interpolated() {
        let p = login_page(&[("x".into(), "<script>alert(1)</script>".into())], "/a\"b");
        assert!(!p.contains("<script>"));
        assert!(p.contains("&lt;script&gt;"));
        let e = error_page(400, "<b>");
        assert!(e.contains("&lt;b&gt;"));
    }
}
