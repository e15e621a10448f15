//! `POST /v1/recall`: a thin adapter to `MemoryService::recall`.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use engram_core::service::inputs::RecallInput;

use super::error::ApiResult;
use super::extract::{Ctx, JsonBody};
use super::AppState;

pub async fn recall(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    JsonBody(req): JsonBody<RecallInput>,
) -> ApiResult<Response> {
    Ok(Json(st.service.recall(&ctx, req).await?).into_response())
}
