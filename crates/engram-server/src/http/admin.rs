//! `/v1/admin/keys`: an admin key manages its own tenant's API keys over
//! HTTP (create, list, revoke), so a deployment of several nodes needs no
//! shell on any of them. Thin adapters to `MemoryService`.

use axum::extract::State;
use axum::response::NoContent;
use axum::Json;
use engram_core::auth::KeyInfo;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::error::ApiResult;
use super::extract::{Ctx, IdPath, JsonBody, NoBody, PathArgs};
use super::openapi::Created;
use super::AppState;

/// `POST /v1/admin/keys`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// What the key is for (shown in listings).
    #[schemars(length(min = 1, max = 128))]
    pub name: String,
    /// Any of `read`, `write`, `admin`.
    #[schemars(with = "Vec<engram_core::schema::ScopeName>", length(min = 1, max = 3))]
    pub scopes: Vec<String>,
    /// Namespace prefixes (`/`-joined) the key is limited to; absent: the
    /// caller's own limit, or none.
    #[serde(default)]
    #[schemars(length(min = 1, max = 32))]
    pub namespaces: Option<Vec<String>>,
}

pub async fn create(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    JsonBody(req): JsonBody<CreateKey>,
) -> ApiResult<Created<NewKey>> {
    let (key, secret) = st.service.admin_create_key(&ctx, &req.name, &req.scopes, req.namespaces.as_deref()).await?;
    Ok(Created(NewKey { key, secret }))
}

/// A key just created, with its secret (shown this once).
#[derive(Serialize, JsonSchema)]
pub struct NewKey {
    pub key: KeyInfo,
    /// The secret to send as `Authorization: Bearer <secret>`; not stored.
    pub secret: String,
}

/// The tenant's keys (revoked ones too), never their secrets.
#[derive(Serialize, JsonSchema)]
pub struct KeyList {
    pub keys: Vec<KeyInfo>,
}

pub async fn list(State(st): State<AppState>, Ctx(ctx): Ctx) -> ApiResult<Json<KeyList>> {
    Ok(Json(KeyList { keys: st.service.admin_list_keys(&ctx).await? }))
}

pub async fn revoke(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    PathArgs(IdPath { id }): PathArgs<IdPath>,
    _: NoBody,
) -> ApiResult<NoContent> {
    st.service.admin_revoke_key(&ctx, &id).await?;
    Ok(NoContent)
}
