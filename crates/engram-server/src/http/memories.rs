//! `/v1/memories` routes: thin adapters from HTTP to `MemoryService`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::NoContent;
use axum::Json;
use engram_core::model::{Memory, WriteStatus};
use engram_core::service::inputs::{CreateMemories, ListInput, PatchInput, SearchInput};
use engram_core::service::{Cited, ListPage, SearchOutput};
use engram_core::Error;
use schemars::JsonSchema;
use serde::Serialize;

use super::error::ApiResult;
use super::extract::{Ctx, IdPath, JsonBody, NoBody, PathArgs, QueryArgs};
use super::openapi::{Accepted, Created, Versioned};
use super::AppState;

/// The answer to `POST /v1/memories`: one result per memory, in order.
#[derive(Serialize, JsonSchema)]
pub struct WriteResults {
    pub results: Vec<WriteResult>,
}

/// What a write did to one memory, and the memory as stored.
#[derive(Serialize, JsonSchema)]
pub struct WriteResult {
    pub status: WriteStatus,
    pub memory: Memory,
}

/// Documents `If-Match` on `PATCH /v1/memories/{id}`.
pub fn if_match_docs(t: aide::transform::TransformOperation<'_>) -> aide::transform::TransformOperation<'_> {
    let what = "Only if the memory is at this version: \"3\" (the ETag), 3, W/\"3\", or * for any.";
    super::openapi::with_header(t, "if-match", what)
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
) -> ApiResult<Created<WriteResults>> {
    let results = st.service.create_memories(&ctx, req).await?;
    let results = results.into_iter().map(|(status, memory)| WriteResult { status, memory }).collect();
    Ok(Created(WriteResults { results }))
}

pub async fn get(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    PathArgs(IdPath { id }): PathArgs<IdPath>,
) -> ApiResult<Versioned<Memory>> {
    let m = st.service.get_memory(&ctx, &id).await?;
    Ok(Versioned(m.version, m))
}

pub async fn patch(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    PathArgs(IdPath { id }): PathArgs<IdPath>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<PatchInput>,
) -> ApiResult<Versioned<Memory>> {
    let version = if_match(&headers)?;
    let m = st.service.update_memory(&ctx, &id, req, version).await?;
    Ok(Versioned(m.version, m))
}

pub async fn delete(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    PathArgs(IdPath { id }): PathArgs<IdPath>,
    _: NoBody,
) -> ApiResult<NoContent> {
    st.service.delete_memory(&ctx, &id).await?;
    Ok(NoContent)
}

pub async fn list(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    QueryArgs(q): QueryArgs<ListInput>,
) -> ApiResult<Json<ListPage>> {
    Ok(Json(st.service.list_memories(&ctx, q).await?))
}

pub async fn search(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    JsonBody(req): JsonBody<SearchInput>,
) -> ApiResult<Json<SearchOutput>> {
    Ok(Json(st.service.search(&ctx, req).await?))
}

pub async fn cite(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    PathArgs(IdPath { id }): PathArgs<IdPath>,
    _: NoBody,
) -> ApiResult<Accepted<Cited>> {
    Ok(Accepted(st.service.cite(&ctx, &id).await?))
}
