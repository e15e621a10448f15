//! The one mapping from domain errors to HTTP: status, stable code, and the
//! envelope `{"error":{"code","message","request_id"}}`.
//!
//! Handlers return [`ApiError`]; its response carries the error in an extension
//! and the request-id middleware renders the envelope, so every error — from a
//! handler, an extractor, a fallback or the timeout layer — looks the same.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use engram_core::{Error, ErrorCode};

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

/// HTTP status for each stable code (exhaustive: a new code must be mapped).
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidInput | ErrorCode::InvalidFilter => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::VersionMismatch => StatusCode::PRECONDITION_FAILED,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::Unprocessable | ErrorCode::EmbeddingMismatch => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
        ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The error a response carries until the middleware renders it.
#[derive(Debug, Clone)]
pub struct PendingError {
    pub code: ErrorCode,
    pub message: String,
    /// Internal detail for the log; never sent.
    pub detail: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.0.code();
        let pending = PendingError {
            code,
            message: self.0.public_message(),
            detail: matches!(self.0, Error::Internal { .. }).then(|| self.0.to_string()),
        };
        let mut resp = status_of(code).into_response();
        if matches!(code, ErrorCode::Unavailable | ErrorCode::RateLimited) {
            resp.headers_mut().insert("retry-after", HeaderValue::from_static("1"));
        }
        resp.extensions_mut().insert(pending);
        resp
    }
}

/// Renders the envelope for a pending error.
pub fn render(status: StatusCode, pending: &PendingError, request_id: &str) -> Response {
    let body = serde_json::json!({
        "error": { "code": pending.code.as_str(), "message": pending.message, "request_id": request_id }
    });
    (status, axum::Json(body)).into_response()
}

/// Handler result type.
pub type ApiResult<T> = Result<T, ApiError>;
