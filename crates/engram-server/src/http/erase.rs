//! `POST /v1/erase`: a thin adapter to `MemoryService::erase`; answers 200
//! with the receipt.

use axum::extract::State;
use axum::Json;
use engram_core::service::{EraseInput, EraseReceipt};

use super::error::ApiResult;
use super::extract::{Ctx, JsonBody};
use super::AppState;

pub async fn erase(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    JsonBody(req): JsonBody<EraseInput>,
) -> ApiResult<Json<EraseReceipt>> {
    Ok(Json(st.service.erase(&ctx, req).await?))
}
