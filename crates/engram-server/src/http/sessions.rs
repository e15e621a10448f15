//! `/v1/sessions` routes (working memory): thin adapters to `MemoryService`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use engram_core::service::inputs::AddTurns;

use super::error::ApiResult;
use super::extract::{Ctx, JsonBody, NoBody};
use super::AppState;

pub async fn add_turns(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<AddTurns>,
) -> ApiResult<Response> {
    Ok(Json(st.service.add_turns(&ctx, &id, req).await?).into_response())
}

pub async fn get(State(st): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(Json(st.service.get_session(&ctx, &id).await?).into_response())
}

pub async fn delete(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    _: NoBody,
) -> ApiResult<StatusCode> {
    st.service.delete_session(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn distill(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    _: NoBody,
) -> ApiResult<Response> {
    Ok(Json(st.service.distill_session(&ctx, &id).await?).into_response())
}
