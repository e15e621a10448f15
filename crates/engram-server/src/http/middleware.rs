//! The layer every request passes through: request id, early body-size check,
//! timeout, error-envelope rendering and the access log.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use engram_core::{Error, ErrorCode};

use super::error::{render, ApiError, PendingError};
use super::extract::TenantSlot;
use super::AppState;

const REQUEST_ID: &str = "x-request-id";

/// The client's `x-request-id` if it is sane, else a fresh one: a per-process
/// random prefix and a counter (unique, and no syscall per request).
fn request_id(req: &Request) -> String {
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    if let Some(theirs) = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
    {
        return theirs.to_owned();
    }
    let prefix = PREFIX.get_or_init(|| uuid::Uuid::now_v7().simple().to_string()[20..].to_owned());
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}{n:08x}")
}

/// Wraps every request.
pub async fn around(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(&req);
    let method = req.method().clone();
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".to_owned());
    let slot = TenantSlot::default();
    req.extensions_mut().insert(slot.clone());
    req.extensions_mut().insert(super::extract::RequestId(id.clone()));

    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut resp = match declared {
        Some(n) if n > state.max_body_bytes as u64 => ApiError(Error::User {
            code: ErrorCode::PayloadTooLarge,
            message: format!("the request body is {n} bytes; the limit is {} bytes", state.max_body_bytes),
        })
        .into_response(),
        _ => match tokio::time::timeout(state.request_timeout, next.run(req)).await {
            Ok(r) => r,
            Err(_) => ApiError(Error::User {
                code: ErrorCode::Timeout,
                message: format!("the request took longer than {:?}", state.request_timeout),
            })
            .into_response(),
        },
    };

    if let Some(pending) = resp.extensions_mut().remove::<PendingError>() {
        if let Some(detail) = &pending.detail {
            tracing::error!(request_id = %id, route = %route, error = %detail, "internal error");
        }
        let status = resp.status();
        // The headers that belong to the error (not to its old body).
        let kept: Vec<_> = [axum::http::header::RETRY_AFTER, axum::http::header::ALLOW]
            .into_iter()
            .filter_map(|name| resp.headers().get(&name).cloned().map(|v| (name, v)))
            .collect();
        resp = render(status, &pending, &id);
        resp.headers_mut().extend(kept);
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    let status = resp.status().as_u16();
    state.requests.record(method.as_str(), &route, status, started.elapsed().as_secs_f64());
    if state.access_log {
        let latency_us = started.elapsed().as_micros() as u64;
        let tenant = slot.0.get().map(String::as_str).unwrap_or("-");
        tracing::info!(target: "engram::access", request_id = %id, tenant, method = %method, route = %route, status, latency_us, "request");
    }
    resp
}

/// 404 for unknown routes, in the envelope.
pub async fn not_found() -> ApiError {
    ApiError(Error::not_found("no such route; the API is listed in the README"))
}

/// 405 for a known route with the wrong method, in the envelope.
pub async fn method_not_allowed() -> ApiError {
    ApiError(Error::User {
        code: ErrorCode::MethodNotAllowed,
        message: "this route does not take that method; the API is listed in the README".into(),
    })
}
