//! The LangGraph store API (`/store/...`), wire-compatible with the store
//! client of the `langgraph-sdk` Python package: PUT and DELETE answer 204,
//! GET of a missing item answers 200 with `null`, namespaces in query strings
//! are joined by `.`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use engram_core::service::{PutItem, SearchItems};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiResult;
use super::extract::{Ctx, JsonBody, QueryArgs};
use super::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetItemQuery {
    namespace: Option<String>,
    key: String,
    refresh_ttl: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteItemBody {
    #[serde(default)]
    namespace: Vec<String>,
    key: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListNamespacesBody {
    prefix: Option<Vec<String>>,
    suffix: Option<Vec<String>>,
    max_depth: Option<i64>,
    limit: Option<i64>,
    offset: Option<i64>,
}

fn split_dotted(ns: Option<&str>) -> Vec<String> {
    match ns {
        Some(s) if !s.is_empty() => s.split('.').map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

pub async fn put_item(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    JsonBody(req): JsonBody<PutItem>,
) -> ApiResult<StatusCode> {
    st.service.put_item(&ctx, req).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn get_item(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    QueryArgs(q): QueryArgs<GetItemQuery>,
) -> ApiResult<Response> {
    let item = st.service.get_item(&ctx, split_dotted(q.namespace.as_deref()), &q.key, q.refresh_ttl).await?;
    Ok(Json(item).into_response())
}

pub async fn delete_item(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    JsonBody(req): JsonBody<DeleteItemBody>,
) -> ApiResult<StatusCode> {
    st.service.delete_item(&ctx, req.namespace, &req.key).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn search_items(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    JsonBody(req): JsonBody<SearchItems>,
) -> ApiResult<Response> {
    let items = st.service.search_items(&ctx, req).await?;
    Ok(Json(json!({ "items": items })).into_response())
}

pub async fn list_namespaces(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    JsonBody(req): JsonBody<ListNamespacesBody>,
) -> ApiResult<Response> {
    let namespaces =
        st.service.list_namespaces(&ctx, req.prefix, req.suffix, req.max_depth, req.limit, req.offset).await?;
    Ok(Json(json!({ "namespaces": namespaces })).into_response())
}
