//! Extractors that turn a request into domain inputs with our error envelope:
//! the caller's [`TenantCtx`] (`Authorization: Bearer` or `x-api-key`; the
//! agent it acts as from `x-agent-id`), JSON
//! bodies (size-limited, strict, errors naming the field path) and query strings.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use engram_core::{Error, ErrorCode, TenantCtx};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::AppState;

/// The authenticated caller.
pub struct Ctx(pub TenantCtx);

/// Filled by the auth extractor so the access log can name the tenant.
#[derive(Clone, Default)]
pub struct TenantSlot(pub std::sync::Arc<std::sync::OnceLock<String>>);

/// The API key a request presents: `Authorization: Bearer <key>` (or a bare
/// key) or `x-api-key`.
pub fn presented_key(headers: &axum::http::HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        return Some(match v.get(..7) {
            Some(p) if p.eq_ignore_ascii_case("bearer ") => v[7..].trim(),
            _ => v,
        });
    }
    headers.get("x-api-key").and_then(|v| v.to_str().ok())
}

/// The caller acting as the agent its `x-agent-id` header names, if any
/// (a malformed one is `invalid_input`), in the request of its id.
pub fn with_request(mut ctx: TenantCtx, parts: &Parts) -> Result<TenantCtx, Error> {
    ctx.request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone());
    match parts.headers.get("x-agent-id") {
        None => Ok(ctx),
        Some(v) => ctx.with_agent(v.to_str().map_err(|_| Error::invalid("x-agent-id must be ASCII"))?),
    }
}

/// The request's id (`x-request-id`), set by the middleware for the journal.
#[derive(Clone)]
pub struct RequestId(pub String);

impl FromRequestParts<AppState> for Ctx {
    type Rejection = axum::response::Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let ctx = state.admit(&parts.headers).await?;
        let ctx = with_request(ctx, parts).map_err(|e| axum::response::IntoResponse::into_response(ApiError(e)))?;
        if let Some(slot) = parts.extensions.get::<TenantSlot>() {
            let _ = slot.0.set(ctx.tenant.clone());
        }
        Ok(Ctx(ctx))
    }
}

/// Parses JSON with `serde_path_to_error` so messages name the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    if bytes.is_empty() {
        return Err(Error::invalid("the request body is empty; send a JSON object"));
    }
    // Every body is an object: serde would also read a struct from an array.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Error::invalid("the request body must be a JSON object ({...})"));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." {
            Error::invalid(format!("invalid JSON body: {inner}"))
        } else {
            Error::invalid(format!("invalid JSON body at {path}: {inner}"))
        }
    })
}

/// Whether reading a body failed because it exceeded the limit (told by the
/// error's type: `http_body_util::LengthLimitError` is its source).
fn is_too_large(e: &axum::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// Reads a whole body of at most `limit` bytes (413 beyond it).
async fn read_body(req: Request<Body>, limit: usize) -> Result<axum::body::Bytes, Error> {
    axum::body::to_bytes(req.into_body(), limit).await.map_err(|e| {
        if is_too_large(&e) {
            Error::User {
                code: ErrorCode::PayloadTooLarge,
                message: format!("the request body exceeds the limit of {limit} bytes"),
            }
        } else {
            Error::invalid(format!("could not read the request body: {e}"))
        }
    })
}

/// The `{id}` of a memory's or key's route.
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct IdPath {
    /// The memory's or key's id.
    pub id: String,
}

/// The `{id}` of a session's route.
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct SessionPath {
    /// The session's id.
    #[schemars(with = "engram_core::schema::SessionId")]
    pub id: String,
}

/// A strict JSON body.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request<Body>, state: &AppState) -> Result<Self, Self::Rejection> {
        let limit = state.max_body_bytes;
        let bytes = read_body(req, limit).await?;
        Ok(JsonBody(parse_json(&bytes)?))
    }
}

/// A strict query string (`?a=1&b=2`).
pub struct QueryArgs<T>(pub T);

impl<T: DeserializeOwned> FromRequestParts<AppState> for QueryArgs<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
        serde_path_to_error::deserialize(de).map(QueryArgs).map_err(|e| {
            let path = e.path().to_string();
            ApiError(Error::invalid(format!("invalid query parameter {path}: {}", e.into_inner())))
        })
    }
}

/// A route's path parameters (`{id}`), refused in the envelope (axum's own
/// rejection is plain text), e.g. an id that is not UTF-8 once decoded.
pub struct PathArgs<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for PathArgs<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(t)) => Ok(PathArgs(t)),
            Err(e) => Err(ApiError(Error::invalid(format!("invalid path: {}", e.body_text())))),
        }
    }
}

/// The body of a route that takes none: read to the end (so the connection
/// can carry the next request — hyper closes a keep-alive connection whose
/// request body was left unread) and accepted only if empty or `{}`.
pub struct NoBody;

impl FromRequest<AppState> for NoBody {
    type Rejection = ApiError;

    async fn from_request(req: Request<Body>, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, state.max_body_bytes).await?;
        let text = std::str::from_utf8(&bytes).unwrap_or("?").trim();
        let empty_object =
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text).is_ok_and(|m| m.is_empty());
        if text.is_empty() || empty_object {
            Ok(NoBody)
        } else {
            Err(ApiError(Error::invalid("this route takes no request body (send none, or {})")))
        }
    }
}
