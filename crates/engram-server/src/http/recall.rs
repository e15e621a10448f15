//! `POST /v1/recall`: a thin adapter to `MemoryService::recall`.

use axum::extract::State;
use axum::Json;
use engram_core::service::inputs::RecallInput;
use engram_core::service::RecallOutput;

use super::error::ApiResult;
use super::extract::{Ctx, JsonBody};
use super::AppState;

pub async fn recall(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    JsonBody(req): JsonBody<RecallInput>,
) -> ApiResult<Json<RecallOutput>> {
    Ok(Json(st.service.recall(&ctx, req).await?))
}
