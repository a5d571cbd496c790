//! The one place where an [`AppError`] becomes what the client sees: a plain HTML page for
//! browsers (Accept: text/html) or `{"error","message"}` JSON for API clients, with the status
//! of the error, `Cache-Control: no-store`, and `WWW-Authenticate` on a 401. It sits above the
//! error model, the HTTP types and the pages, so that none of those three imports another.

use crate::error::AppError;
use crate::http::{Response, Wants};

impl AppError {
    /// The response the client sees: HTML for browsers, JSON otherwise.
    pub fn into_response(self, wants: Wants) -> Response {
        let status = self.status();
        let message = self.public_message();
        if let AppError::OAuth(e) = &self {
            if wants == Wants::Json || e.status == 401 {
                return oauth_response(e);
            }
        }
        let mut resp = match wants {
            // A wrong emailed code: the code page again, to try once more.
            Wants::Html if matches!(self, AppError::WrongCode { .. }) => {
                Response::html(status, crate::pages::code_page(Some(&message)))
            }
            Wants::Html => Response::html(status, crate::pages::error_page(status, &message)),
            Wants::Json => Response::json(
                status,
                &serde_json::json!({ "error": self.code(), "message": message }),
            ),
        };
        if let AppError::Unauthorized(_) = self {
            resp.set_header("www-authenticate", "Bearer");
        }
        resp.set_header("cache-control", "no-store");
        resp
    }
}

/// RFC 6749 section 5.2: `{"error", "error_description"}`, never cached, with the
/// endpoint's challenge.
fn oauth_response(e: &crate::error::OAuthError) -> Response {
    let mut r = Response::json(
        e.status,
        &serde_json::json!({"error": e.code, "error_description": e.description}),
    );
    if let Some(c) = &e.challenge {
        r.set_header("www-authenticate", c);
    }
    r.set_header("cache-control", "no-store");
    r.set_header("pragma", "no-cache");
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_body_has_error_and_message() {
        let r = AppError::BadRequest("bad".into()).into_response(Wants::Json);
        assert_eq!(r.status, 400);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["error"], "bad_request");
        assert_eq!(v["message"], "bad");
    }

    #[test]
    fn config_error_names_setting_but_not_problem_detail() {
        let e = AppError::Config {
            setting: "PUBLIC_URL".into(),
            problem: "secret-ish detail".into(),
        };
        let r = e.clone().into_response(Wants::Html);
        assert_eq!(r.status, 500);
        let body = String::from_utf8(r.body).unwrap();
        assert!(body.contains("PUBLIC_URL"));
        assert!(!body.contains("secret-ish"));
        assert!(e.log_line().unwrap().contains("PUBLIC_URL"));
    }

    #[test]
    fn provider_error_does_not_echo_provider_body() {
        let e = AppError::Provider {
            provider: "acme".into(),
            reason: "{\"raw\":\"body\"}".into(),
        };
        let r = e.into_response(Wants::Json);
        assert!(!String::from_utf8(r.body).unwrap().contains("raw"));
    }
}
