//! The error model: one [`AppError`] for everything a request can fail with — its status,
//! stable code, the sentence a person reads and the line an operator reads in the log. It
//! becomes what the client sees in one place, [`crate::respond`]. Messages are written for
//! people and never carry provider bodies, stack traces or secrets; the detail that helps an
//! operator goes to the log line instead. A leaf module: it imports nothing of the crate.

/// Why a request failed. Each variant maps to one status code and one stable error code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AppError {
    /// A setting of README "Configuration" is missing or malformed; names the setting.
    Config { setting: String, problem: String },
    /// The route does not exist.
    NotFound,
    /// The route exists but not for this method.
    MethodNotAllowed,
    /// The request is malformed (bad JSON, bad parameter, oversized input).
    BadRequest(String),
    /// No valid session or token.
    Unauthorized(String),
    /// The request is understood but refused (Origin check, deactivated user, …).
    Forbidden(String),
    /// The access policy refuses this person or this request (says why, in plain words).
    AccessDenied(String),
    /// A conflicting state (last identity, identity linked elsewhere, …).
    Conflict(String),
    /// The login transaction is missing, expired, replayed or belongs to another browser.
    LoginTransaction(String),
    /// The provider answered with an error or something that failed verification.
    Provider { provider: String, reason: String },
    /// The provider could not be reached or did not answer in time.
    ProviderUnavailable { provider: String, reason: String },
    /// A wrong emailed sign-in code; the sign-in stays open for `left` more tries.
    WrongCode { left: u32 },
    /// Too many attempts.
    RateLimited,
    /// The request body is too large.
    PayloadTooLarge,
    /// Storage (D1, KV) failed; the detail is logged, not shown.
    Storage(String),
    /// Anything else that is our fault; the detail is logged, not shown.
    Internal(String),
    /// A protocol error of the OpenID Provider, answered in the shape its RFC prescribes.
    OAuth(OAuthError),
}

impl AppError {
    /// HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            AppError::Config { .. } | AppError::Storage(_) | AppError::Internal(_) => 500,
            AppError::NotFound => 404,
            AppError::MethodNotAllowed => 405,
            AppError::BadRequest(_) | AppError::LoginTransaction(_) => 400,
            AppError::WrongCode { .. } => 400,
            AppError::Unauthorized(_) => 401,
            AppError::Forbidden(_) | AppError::AccessDenied(_) => 403,
            AppError::Conflict(_) => 409,
            AppError::Provider { .. } => 400,
            AppError::ProviderUnavailable { .. } => 502,
            AppError::RateLimited => 429,
            AppError::PayloadTooLarge => 413,
            AppError::OAuth(e) => e.status,
        }
    }

    /// Stable machine-readable code for the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Config { .. } => "configuration_error",
            AppError::NotFound => "not_found",
            AppError::MethodNotAllowed => "method_not_allowed",
            AppError::BadRequest(_) => "bad_request",
            AppError::Unauthorized(_) => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::AccessDenied(_) => "access_denied",
            AppError::Conflict(_) => "conflict",
            AppError::LoginTransaction(_) => "invalid_login_transaction",
            AppError::WrongCode { .. } => "invalid_code",
            AppError::Provider { .. } => "provider_error",
            AppError::ProviderUnavailable { .. } => "provider_unavailable",
            AppError::RateLimited => "rate_limited",
            AppError::PayloadTooLarge => "payload_too_large",
            AppError::Storage(_) | AppError::Internal(_) => "internal_error",
            AppError::OAuth(e) => e.code,
        }
    }

    /// The sentence shown to the client.
    pub fn public_message(&self) -> String {
        match self {
            AppError::Config { setting, .. } => {
                format!("Gatehouse is misconfigured: the setting {setting} is missing or invalid.")
            }
            AppError::NotFound => "There is nothing here.".into(),
            AppError::MethodNotAllowed => "This method is not allowed here.".into(),
            AppError::BadRequest(m)
            | AppError::Unauthorized(m)
            | AppError::Forbidden(m)
            | AppError::AccessDenied(m)
            | AppError::Conflict(m) => m.clone(),
            AppError::OAuth(e) => e.description.clone(),
            AppError::LoginTransaction(m) => format!("{m} Please start the sign-in again."),
            AppError::Provider { provider, .. } => {
                format!("Sign-in with {provider} failed. Please try again.")
            }
            AppError::ProviderUnavailable { provider, .. } => {
                format!("{provider} did not answer. Please try again later.")
            }
            AppError::WrongCode { left } => format!(
                "That code is not right. {left} {} left.",
                if *left == 1 { "try" } else { "tries" }
            ),
            AppError::RateLimited => "Too many attempts. Please wait and try again.".into(),
            AppError::PayloadTooLarge => "The request is too large.".into(),
            AppError::Storage(_) | AppError::Internal(_) => {
                "Something went wrong on our side. Please try again.".into()
            }
        }
    }

    /// The one line written to the log for this error (operators see the detail here).
    pub fn log_line(&self) -> Option<String> {
        match self {
            AppError::Config { setting, problem } => Some(format!(
                "gatehouse: configuration error: {setting}: {problem}"
            )),
            AppError::Provider { provider, reason } => {
                Some(format!("gatehouse: provider {provider} rejected: {reason}"))
            }
            AppError::ProviderUnavailable { provider, reason } => Some(format!(
                "gatehouse: provider {provider} unavailable: {reason}"
            )),
            AppError::LoginTransaction(m) => Some(format!("gatehouse: login transaction: {m}")),
            AppError::Storage(m) => Some(format!("gatehouse: storage error: {m}")),
            AppError::Internal(m) => Some(format!("gatehouse: internal error: {m}")),
            _ => None,
        }
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code(), self.public_message())
    }
}

impl std::error::Error for AppError {}

/// A storage failure (the detail is for the log). Raised by the storage traits of
/// [`crate::platform`] and [`crate::users`]; a request that meets one answers 500.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        AppError::Storage(e.0)
    }
}

/// Shorthand for results of request handling.
pub type AppResult<T> = Result<T, AppError>;

/// Protocol errors of the OpenID Provider (RFC 6749 section 5.2, OpenID Connect Core 3.1.2.6,
/// RFC 7009/7662/6750), carried to the client by [`AppError::OAuth`].
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

impl From<OAuthError> for AppError {
    fn from(e: OAuthError) -> Self {
        AppError::OAuth(e)
    }
}
