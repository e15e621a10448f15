//! The LangGraph store API (`/store/...`), wire-compatible with the store
//! client of the `langgraph-sdk` Python package: PUT and DELETE answer 204,
//! GET of a missing item answers 200 with `null`, namespaces in query strings
//! are joined by `.`.

use axum::extract::State;
use axum::response::NoContent;
use axum::Json;
use engram_core::model::Namespace;
use engram_core::service::{ItemView, PutItem, SearchItems};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::error::ApiResult;
use super::extract::{Ctx, JsonBody, QueryArgs};
use super::AppState;

/// `GET /store/items` query parameters.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetItemQuery {
    /// The namespace's segments joined by `.` (LangGraph's form).
    namespace: Option<String>,
    #[schemars(length(min = 1, max = 512))]
    key: String,
    /// Whether reading restarts the item's TTL (default true).
    refresh_ttl: Option<bool>,
}

/// `DELETE /store/items`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteItemBody {
    #[serde(default)]
    namespace: Vec<String>,
    #[schemars(length(min = 1, max = 512))]
    key: String,
}

/// `POST /store/namespaces`.
#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListNamespacesBody {
    #[schemars(with = "Option<engram_core::schema::PrefixIn>")]
    prefix: Option<Vec<String>>,
    #[schemars(with = "Option<engram_core::schema::PrefixIn>")]
    suffix: Option<Vec<String>>,
    /// 1 to 8: namespaces are cut to this many segments.
    #[schemars(range(min = 1, max = 8))]
    max_depth: Option<i64>,
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<i64>,
    #[schemars(range(min = 0, max = 100000))]
    offset: Option<i64>,
}

/// The answer to `POST /store/items/search`.
#[derive(Serialize, JsonSchema)]
pub struct ItemsFound {
    pub items: Vec<ItemView>,
}

/// The answer to `POST /store/namespaces`.
#[derive(Serialize, JsonSchema)]
pub struct NamespaceList {
    pub namespaces: Vec<Namespace>,
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
) -> ApiResult<NoContent> {
    st.service.put_item(&ctx, req).await?;
    Ok(NoContent)
}

pub async fn get_item(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    QueryArgs(q): QueryArgs<GetItemQuery>,
) -> ApiResult<Json<Option<ItemView>>> {
    Ok(Json(st.service.get_item(&ctx, split_dotted(q.namespace.as_deref()), &q.key, q.refresh_ttl).await?))
}

pub async fn delete_item(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    JsonBody(req): JsonBody<DeleteItemBody>,
) -> ApiResult<NoContent> {
    st.service.delete_item(&ctx, req.namespace, &req.key).await?;
    Ok(NoContent)
}

pub async fn search_items(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    JsonBody(req): JsonBody<SearchItems>,
) -> ApiResult<Json<ItemsFound>> {
    Ok(Json(ItemsFound { items: st.service.search_items(&ctx, req).await? }))
}

pub async fn list_namespaces(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    JsonBody(req): JsonBody<ListNamespacesBody>,
) -> ApiResult<Json<NamespaceList>> {
    let namespaces =
        st.service.list_namespaces(&ctx, req.prefix, req.suffix, req.max_depth, req.limit, req.offset).await?;
    Ok(Json(NamespaceList { namespaces }))
}
