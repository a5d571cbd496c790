//! The few HTML pages Gatehouse serves: the login page, the error page, the signed-in home
//! page. Plain, readable, accessible (labels, headings, focus styles), no scripts, and every
//! interpolated string escaped.

pub use crate::http::CSP;

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

/// The error page of [`crate::respond`] (403: the access policy or an Origin check refused,
/// which the heading says).
pub fn error_page(status: u16, message: &str) -> String {
    let heading = if status == 403 {
        "Access denied"
    } else {
        "Something went wrong"
    };
    layout(
        "Sign-in problem",
        &format!("<h1>{heading}</h1><p role=\"alert\">{}</p><p class=\"muted\">Error {status}. <a href=\"/auth/login\">Back to sign-in</a></p>", esc(message)),
    )
}

/// A provider on the login page: a button, or (magic links) an email form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginOption {
    pub name: String,
    pub display: String,
    pub email_form: bool,
    /// A passkey provider: the "Sign in with a passkey" button (script, see [`passkey_script`]).
    pub passkey: bool,
}

/// The Content-Security-Policy of a page that runs the passkey script: [`CSP`], plus that one
/// script (by its nonce; nothing inline) and `fetch` to Gatehouse itself.
pub fn csp_with_script(nonce: &str) -> String {
    format!("{CSP}; script-src 'nonce-{nonce}'; connect-src 'self'")
}

/// The `<script>` element of the passkey script, carrying this response's nonce.
pub fn passkey_script(nonce: &str) -> String {
    format!(
        "<script src=\"/auth/passkeys.js\" nonce=\"{}\" defer></script>",
        esc(nonce)
    )
}

/// The login page's passkey section: the button and the field the browser's passkey
/// autofill attaches to.
fn passkey_login_section(nonce: &str) -> String {
    format!(
        "<section aria-label=\"Sign in with a passkey\"><button type=\"button\" id=\"pk-signin\">Sign in with a passkey</button>\
<label for=\"pk-user\" class=\"muted\">or pick one of your passkeys here</label>\
<input id=\"pk-user\" name=\"username\" autocomplete=\"username webauthn\">\
<p id=\"pk-status\" role=\"status\" class=\"muted\"></p><noscript><p>Passkeys need JavaScript.</p></noscript></section>{}",
        passkey_script(nonce)
    )
}

/// The account page's passkey section: the list (filled by the script), and adding one.
fn passkey_account_section(nonce: &str) -> String {
    format!(
        "<section aria-labelledby=\"pk-h\"><h2 id=\"pk-h\">Passkeys</h2><ul id=\"pk-list\"></ul>\
<label for=\"pk-name\">Name of a new passkey</label><input id=\"pk-name\" maxlength=\"64\" placeholder=\"Laptop\">\
<button type=\"button\" id=\"pk-add\">Add a passkey</button><p id=\"pk-status\" role=\"status\" class=\"muted\"></p>\
<noscript><p>Passkeys need JavaScript.</p></noscript></section>{}",
        passkey_script(nonce)
    )
}

/// The email form of a magic-link provider (posts to `/auth/magic-link`).
pub fn magic_link_form(name: &str, display: &str, return_to: &str) -> String {
    let id = format!("email-{}", esc(name));
    let keep = if return_to != crate::return_to::DEFAULT {
        format!(
            "<input type=\"hidden\" name=\"return_to\" value=\"{}\">",
            esc(return_to)
        )
    } else {
        String::new()
    };
    format!(
        "<form method=\"post\" action=\"/auth/magic-link\">\
<input type=\"hidden\" name=\"provider\" value=\"{}\">{keep}\
<label for=\"{id}\">Email address</label>\
<input id=\"{id}\" name=\"email\" type=\"email\" autocomplete=\"email\" inputmode=\"email\" maxlength=\"254\" required aria-describedby=\"{id}-help\">\
<button type=\"submit\">Email me a sign-in link</button>\
<p id=\"{id}-help\" class=\"muted\">We email you a link from {}. Open it in this browser to sign in.</p></form>",
        esc(name),
        esc(display)
    )
}

/// The login page: one button per redirect provider, an email form per magic-link provider;
/// `notice` says who may sign in (the access policy) or that an invitation is being
/// accepted, whose secret (`invitation`) each provider's link then carries.
/// `script_nonce`: the nonce of this response's CSP, for the passkey section.
pub fn login_page(
    providers: &[LoginOption],
    return_to: &str,
    notice: Option<&str>,
    invitation: Option<&str>,
    script_nonce: &str,
) -> String {
    let mut items = String::new();
    let mut forms = String::new();
    let mut passkey = String::new();
    for p in providers {
        if p.passkey {
            passkey = passkey_login_section(script_nonce);
            continue;
        }
        if p.email_form {
            forms.push_str(&magic_link_form(&p.name, &p.display, return_to));
            continue;
        }
        let mut href =
            url::form_urlencoded::Serializer::for_suffix(String::from("/auth/login?"), 12);
        href.append_pair("provider", &p.name);
        if return_to != crate::return_to::DEFAULT {
            href.append_pair("return_to", return_to);
        }
        if let Some(i) = invitation {
            href.append_pair("invitation", i);
        }
        items.push_str(&format!(
            "<li><a class=\"btn\" href=\"{}\">Continue with {}</a></li>",
            esc(&href.finish()),
            esc(&p.display)
        ));
    }
    let mut body = String::from("<h1>Sign in</h1>");
    if let Some(n) = notice {
        body.push_str(&format!("<p id=\"notice\" role=\"status\">{}</p>", esc(n)));
    }
    if !items.is_empty() {
        body.push_str(&format!(
            "<nav aria-label=\"Sign-in providers\"><ul>{items}</ul></nav>"
        ));
    }
    if !forms.is_empty() {
        if !items.is_empty() {
            body.push_str("<p class=\"muted\">or</p>");
        }
        body.push_str(&format!(
            "<section aria-label=\"Sign in with email\">{forms}</section>"
        ));
    }
    body.push_str(&passkey);
    layout("Sign in", &body)
}

/// The page of `/auth/login?provider=` for a magic-link provider: just its email form.
pub fn magic_link_page(name: &str, display: &str, return_to: &str) -> String {
    layout(
        "Sign in",
        &format!(
            "<h1>Sign in with {}</h1>{}",
            esc(display),
            magic_link_form(name, display, return_to)
        ),
    )
}

/// The sign-in message of the `email` kind: its subject, plain-text and HTML parts, saying the
/// same; every interpolated value escaped in the HTML; no images, no remote content, no
/// tracking — one link.
pub fn sign_in_mail(host: &str, to: &str, code: &str, link: &str) -> [String; 3] {
    let text = format!(
        "Your code to sign in to {host} as {to}:\n\n    {code}\n\n\
Type it on the page where you asked for it, or open this link in that same browser:\n\
{link}\n\nThe code and the link work once, for 10 minutes. If you did not ask to sign in, \
ignore this message: nobody can sign in without it.\n"
    );
    let (h, t, l) = (esc(host), esc(to), esc(link));
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Sign in to {h}</title></head><body style=\"font-family:sans-serif;color:#1a1a1a\">\
<p>Your code to sign in to <b>{h}</b> as <b>{t}</b>:</p>\
<p style=\"font-size:28px;letter-spacing:6px;font-weight:bold\">{code}</p>\
<p>Type it on the page where you asked for it, or open this link in that same browser:</p>\
<p><a href=\"{l}\">Sign in to {h}</a></p>\
<p style=\"color:#555\">The code and the link work once, for 10 minutes. If you did not ask \
to sign in, ignore this message: nobody can sign in without it.</p></body></html>"
    );
    [format!("Your sign-in code for {host}"), text, html]
}

/// The answer to an `email` provider's form (the same whether or not the address is known),
/// and again after a wrong code: where to type the emailed code.
pub fn code_page(error: Option<&str>) -> String {
    let alert = error
        .map(|e| format!("<p role=\"alert\"><strong>{}</strong></p>", esc(e)))
        .unwrap_or_default();
    layout(
        "Check your email",
        &format!(
            "<h1>Check your email</h1>\
<p>If the address can receive email, a 6-digit code and a sign-in link are on their way. \
Type the code here, or open the link in this browser. Each works once, for 10 minutes.</p>{alert}\
<form method=\"post\" action=\"/auth/magic-link/verify\">\
<label for=\"code\">Sign-in code</label>\
<input id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" \
maxlength=\"9\" required autofocus>\
<button type=\"submit\">Sign in</button></form>\
<p class=\"muted\"><a href=\"/auth/login\">Start again</a></p>"
        ),
    )
}

/// The answer to an email form: the same whether or not the address is known.
pub fn check_email_page() -> String {
    layout(
        "Check your email",
        "<h1>Check your email</h1><p role=\"status\">If the address you entered can receive email, \
a sign-in link is on its way to it. Open the link in this browser within 10 minutes.</p>\
<p class=\"muted\"><a href=\"/auth/login\">Back to sign-in</a></p>",
    )
}

/// The confirmation page of an emailed invitation: whose account it opens, and the button
/// that posts back to `action` (the invitation's own callback URL) to sign in.
pub fn invitation_page(display: &str, invitee: Option<&str>, action: &str) -> String {
    let who = invitee
        .map(|e| format!(" as <strong id=\"invitee\">{}</strong>", esc(e)))
        .unwrap_or_default();
    layout(
        "Sign in",
        &format!(
            "<h1>Sign in with {}</h1><p>This link signs you in{who}. Continue only if you asked \
for it or were invited, and if this is your address.</p>\
<form method=\"post\" action=\"{}\"><button type=\"submit\">Continue</button></form>\
<p class=\"muted\">The link works once, within 10 minutes.</p>",
            esc(display),
            esc(action)
        ),
    )
}

/// The home page: who is signed in, a sign-out button and, with `passkeys_nonce` (a passkey
/// provider is configured), the person's passkeys.
pub fn home_page(signed_in: Option<(&str, Option<&str>)>, passkeys_nonce: Option<&str>) -> String {
    match signed_in {
        Some((name, email)) => layout(
            "Signed in",
            &format!(
                "<h1>Signed in</h1><p>You are signed in as <strong id=\"who\">{}</strong>{}.</p>\
<form method=\"post\" action=\"/auth/logout\"><button type=\"submit\">Sign out</button></form>{}",
                esc(name),
                email.map(|e| format!(" (<span id=\"email\">{}</span>)", esc(e))).unwrap_or_default(),
                passkeys_nonce.map(passkey_account_section).unwrap_or_default()
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
        let opt = |email_form| LoginOption {
            name: "x".into(),
            display: "<script>alert(1)</script>".into(),
            email_form,
            passkey: false,
        };
        let p = login_page(&[opt(false), opt(true)], "/a\"b", None, None, "n");
        assert!(!p.contains("<script>"));
        assert!(p.contains("&lt;script&gt;"));
        assert!(p.contains("value=\"/a&quot;b\""));
        let e = error_page(400, "<b>");
        assert!(e.contains("&lt;b&gt;"));
    }

    #[test]
    fn email_form_is_labelled_and_posts_to_magic_link() {
        let f = magic_link_form("mail", "Email", "/");
        assert!(f.contains("action=\"/auth/magic-link\""));
        assert!(f.contains("<label for=\"email-mail\">"));
        assert!(f.contains("id=\"email-mail\" name=\"email\" type=\"email\""));
        assert!(f.contains("required"));
        assert!(
            !f.contains("return_to"),
            "the default return_to is not carried"
        );
        assert!(magic_link_form("mail", "Email", "/x").contains("name=\"return_to\" value=\"/x\""));
        let page = login_page(
            &[LoginOption {
                name: "mail".into(),
                display: "Email".into(),
                email_form: true,
                passkey: false,
            }],
            "/",
            None,
            None,
            "n",
        );
        assert!(page.contains("/auth/magic-link") && !page.contains("provider=mail"));
    }
}
