//! `/v1/admin/keys`: an admin key manages its own tenant's API keys over
//! HTTP (create, list, revoke), so a deployment of several nodes needs no
//! shell on any of them. Thin adapters to `MemoryService`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::error::ApiResult;
use super::extract::{Ctx, JsonBody, NoBody};
use super::AppState;

/// `POST /v1/admin/keys`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// What the key is for (shown in listings).
    pub name: String,
    /// Any of `read`, `write`, `admin`.
    pub scopes: Vec<String>,
    /// Namespace prefixes (`/`-joined) the key is limited to; absent: the
    /// caller's own limit, or none.
    #[serde(default)]
    pub namespaces: Option<Vec<String>>,
}

pub async fn create(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    JsonBody(req): JsonBody<CreateKey>,
) -> ApiResult<Response> {
    let (key, secret) = st.service.admin_create_key(&ctx, &req.name, &req.scopes, req.namespaces.as_deref()).await?;
    let body = serde_json::json!({ "key": key, "secret": secret });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub async fn list(State(st): State<AppState>, Ctx(ctx): Ctx) -> ApiResult<Response> {
    let keys = st.service.admin_list_keys(&ctx).await?;
    Ok(Json(serde_json::json!({ "keys": keys })).into_response())
}

pub async fn revoke(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    _: NoBody,
) -> ApiResult<StatusCode> {
    st.service.admin_revoke_key(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
