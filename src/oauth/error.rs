//! Protocol errors of the OpenID Provider (RFC 6749 section 5.2, OpenID Connect Core 3.1.2.6,
//! RFC 7009/7662/6750): a code from the registry, a description, and the status and
//! challenge the endpoint answers with. [`crate::error::AppError::OAuth`] carries one to the
//! client.

/// One protocol error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The registered error code (`invalid_grant`, `invalid_client`, …).
    pub code: &'static str,
    /// A sentence for the developer of the client.
    pub description: String,
    /// The HTTP status of a direct answer (the token endpoint; redirects ignore it).
    pub status: u16,
    /// A `WWW-Authenticate` value to send (Basic for `invalid_client`, Bearer at userinfo).
    pub challenge: Option<String>,
}

impl OAuthError {
    fn new(code: &'static str, status: u16, description: impl Into<String>) -> OAuthError {
        OAuthError {
            code,
            description: description.into(),
            status,
            challenge: None,
        }
    }

    pub fn invalid_request(d: impl Into<String>) -> OAuthError {
        Self::new("invalid_request", 400, d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> OAuthError {
        Self::new("invalid_grant", 400, d)
    }
    pub fn invalid_scope(d: impl Into<String>) -> OAuthError {
        Self::new("invalid_scope", 400, d)
    }
    pub fn invalid_target(d: impl Into<String>) -> OAuthError {
        Self::new("invalid_target", 400, d)
    }
    pub fn unauthorized_client(d: impl Into<String>) -> OAuthError {
        Self::new("unauthorized_client", 400, d)
    }
    pub fn unsupported_grant_type(d: impl Into<String>) -> OAuthError {
        Self::new("unsupported_grant_type", 400, d)
    }
    pub fn unsupported_response_type(d: impl Into<String>) -> OAuthError {
        Self::new("unsupported_response_type", 400, d)
    }
    pub fn access_denied(d: impl Into<String>) -> OAuthError {
        Self::new("access_denied", 403, d)
    }
    pub fn login_required() -> OAuthError {
        Self::new("login_required", 400, "The person is not signed in.")
    }
    pub fn consent_required() -> OAuthError {
        Self::new(
            "consent_required",
            400,
            "The person has not agreed to this app yet.",
        )
    }
    /// `invalid_client`, 401; with a Basic challenge when the client tried Basic.
    pub fn invalid_client(basic: bool) -> OAuthError {
        let mut e = Self::new("invalid_client", 401, "Client authentication failed.");
        if basic {
            e.challenge = Some("Basic realm=\"gatehouse\", charset=\"UTF-8\"".into());
        }
        e
    }
    /// `invalid_token` at a resource (RFC 6750 section 3.1).
    pub fn invalid_token(d: impl Into<String>) -> OAuthError {
        let mut e = Self::new("invalid_token", 401, d);
        e.challenge = Some("Bearer error=\"invalid_token\"".into());
        e
    }
    pub fn server_error(d: impl Into<String>) -> OAuthError {
        Self::new("server_error", 500, d)
    }
}

impl From<OAuthError> for crate::error::AppError {
    fn from(e: OAuthError) -> Self {
        crate::error::AppError::OAuth(e)
    }
}
