//! `/v1/sessions` routes (working memory): thin adapters to `MemoryService`.

use axum::extract::State;
use axum::response::NoContent;
use axum::Json;
use engram_core::model::session::Session;
use engram_core::service::inputs::AddTurns;
use engram_core::service::{Distilled, TurnsAdded};

use super::error::ApiResult;
use super::extract::{Ctx, JsonBody, NoBody, PathArgs, SessionPath};
use super::AppState;

pub async fn add_turns(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    PathArgs(SessionPath { id }): PathArgs<SessionPath>,
    JsonBody(req): JsonBody<AddTurns>,
) -> ApiResult<Json<TurnsAdded>> {
    Ok(Json(st.service.add_turns(&ctx, &id, req).await?))
}

pub async fn get(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    PathArgs(SessionPath { id }): PathArgs<SessionPath>,
) -> ApiResult<Json<Session>> {
    Ok(Json(st.service.get_session(&ctx, &id).await?))
}

pub async fn delete(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    PathArgs(SessionPath { id }): PathArgs<SessionPath>,
    _: NoBody,
) -> ApiResult<NoContent> {
    st.service.delete_session(&ctx, &id).await?;
    Ok(NoContent)
}

pub async fn distill(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    PathArgs(SessionPath { id }): PathArgs<SessionPath>,
    _: NoBody,
) -> ApiResult<Json<Distilled>> {
    Ok(Json(st.service.distill_session(&ctx, &id).await?))
}
