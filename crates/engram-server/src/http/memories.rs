//! `/v1/memories` routes: thin adapters from HTTP to `MemoryService`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use engram_core::service::inputs::{CreateMemories, ListInput, PatchInput, SearchInput};
use engram_core::Error;
use serde_json::json;

use super::error::ApiResult;
use super::extract::{Ctx, JsonBody, NoBody, QueryArgs};
use super::AppState;

fn with_etag(version: i64, body: impl IntoResponse) -> Response {
    let mut resp = body.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{version}\"")) {
        resp.headers_mut().insert(axum::http::header::ETAG, v);
    }
    resp
}

/// Reads `If-Match: "3"` (or `3`, `W/"3"`); `*` means any version.
fn if_match(headers: &HeaderMap) -> Result<Option<i64>, Error> {
    let Some(raw) = headers.get(axum::http::header::IF_MATCH) else {
        return Ok(None);
    };
    let s = raw.to_str().map_err(|_| Error::invalid("If-Match must be a version number such as \"3\""))?.trim();
    if s == "*" {
        return Ok(None);
    }
    let s = s.strip_prefix("W/").unwrap_or(s).trim_matches('"');
    s.parse::<i64>()
        .map(Some)
        .map_err(|_| Error::invalid(format!("If-Match must be a version number such as \"3\", got {s:?}")))
}

pub async fn create(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    JsonBody(req): JsonBody<CreateMemories>,
) -> ApiResult<Response> {
    let results = st.service.create_memories(&ctx, req).await?;
    let body: Vec<_> =
        results.into_iter().map(|(status, memory)| json!({"status": status, "memory": memory})).collect();
    Ok((StatusCode::CREATED, Json(json!({ "results": body }))).into_response())
}

pub async fn get(State(st): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> ApiResult<Response> {
    let m = st.service.get_memory(&ctx, &id).await?;
    Ok(with_etag(m.version, Json(m)))
}

pub async fn patch(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<PatchInput>,
) -> ApiResult<Response> {
    let version = if_match(&headers)?;
    let m = st.service.update_memory(&ctx, &id, req, version).await?;
    Ok(with_etag(m.version, Json(m)))
}

pub async fn delete(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    _: NoBody,
) -> ApiResult<StatusCode> {
    st.service.delete_memory(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    QueryArgs(q): QueryArgs<ListInput>,
) -> ApiResult<Response> {
    Ok(Json(st.service.list_memories(&ctx, q).await?).into_response())
}

pub async fn search(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    JsonBody(req): JsonBody<SearchInput>,
) -> ApiResult<Response> {
    Ok(Json(st.service.search(&ctx, req).await?).into_response())
}

pub async fn cite(State(st): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>, _: NoBody) -> ApiResult<Response> {
    Ok((StatusCode::ACCEPTED, Json(st.service.cite(&ctx, &id).await?)).into_response())
}
