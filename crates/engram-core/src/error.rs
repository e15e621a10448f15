//! Errors of the domain, each with a stable machine-readable code.
//!
//! User errors (bad input, missing rows, version conflicts, a busy or full
//! store) carry a message that is safe to show to the caller, in the domain's
//! words (each backend maps its own errors to these; see
//! `store::sqlite::errors`). Internal errors (storage failures, bugs) carry a
//! detail that is logged by the transport and never sent. Transports map
//! [`ErrorCode`] to their own status codes in exactly one place.

use std::fmt;

/// Declares [`ErrorCode`], its string forms and [`ErrorCode::ALL`] from one
/// list, so a new code cannot be left out of any of them.
macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident => $code:literal,)+) => {
        /// Stable error codes; the string form is part of the public API.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)+
        }

        impl ErrorCode {
            /// Every code (the OpenAPI document lists them).
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            /// The snake_case code sent to clients.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)+
                }
            }
        }
    };
}

error_codes! {
    InvalidInput => "invalid_input",
    InvalidFilter => "invalid_filter",
    Unauthenticated => "unauthenticated",
    Forbidden => "forbidden",
    NotFound => "not_found",
    Conflict => "conflict",
    VersionMismatch => "version_mismatch",
    PayloadTooLarge => "payload_too_large",
    Unprocessable => "unprocessable",
    EmbeddingMismatch => "embedding_mismatch",
    MethodNotAllowed => "method_not_allowed",
    /// The client does not accept what the route answers with (MCP needs
    /// `Accept: application/json, text/event-stream`).
    NotAcceptable => "not_acceptable",
    /// The caller sent more requests than its rate allows; try again later.
    RateLimited => "rate_limited",
    Unavailable => "unavailable",
    StorageFull => "storage_full",
    Timeout => "timeout",
    Internal => "internal",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from the domain layer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The caller's input is wrong; `message` says what to change.
    #[error("{message}")]
    User { code: ErrorCode, message: String },
    /// Something failed inside; `detail` is for logs only.
    #[error("internal error: {detail}")]
    Internal { detail: String },
}

/// Result alias for the domain.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::User { code: ErrorCode::InvalidInput, message: message.into() }
    }
    pub fn invalid_filter(message: impl Into<String>) -> Self {
        Error::User { code: ErrorCode::InvalidFilter, message: message.into() }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Error::User { code: ErrorCode::NotFound, message: message.into() }
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Error::User { code: ErrorCode::Conflict, message: message.into() }
    }
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Error::User { code: ErrorCode::Unprocessable, message: message.into() }
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Error::User { code: ErrorCode::Forbidden, message: message.into() }
    }
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Error::User { code: ErrorCode::Unauthenticated, message: message.into() }
    }
    pub fn embedding_mismatch(message: impl Into<String>) -> Self {
        Error::User { code: ErrorCode::EmbeddingMismatch, message: message.into() }
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Error::User { code: ErrorCode::Unavailable, message: message.into() }
    }
    pub fn rate_limited(message: impl Into<String>) -> Self {
        Error::User { code: ErrorCode::RateLimited, message: message.into() }
    }
    pub fn storage_full(message: impl Into<String>) -> Self {
        Error::User { code: ErrorCode::StorageFull, message: message.into() }
    }
    pub fn timeout(message: impl Into<String>) -> Self {
        Error::User { code: ErrorCode::Timeout, message: message.into() }
    }
    pub fn internal(detail: impl Into<String>) -> Self {
        Error::Internal { detail: detail.into() }
    }

    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::User { code, .. } => *code,
            Error::Internal { .. } => ErrorCode::Internal,
        }
    }

    /// The message that may be shown to a caller (never internal details).
    pub fn public_message(&self) -> String {
        match self {
            Error::User { message, .. } => message.clone(),
            Error::Internal { .. } => "internal error; see the server log".to_string(),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::internal(format!("json: {e}"))
    }
}
