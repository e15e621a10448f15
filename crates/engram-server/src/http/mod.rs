//! The HTTP transport: routes, shared state and the middleware stack. Handlers
//! only translate between HTTP and `MemoryService`.

mod admin;
pub mod admission;
mod erase;
mod error;
mod events;
mod extract;

pub use extract::{presented_key, with_request};
mod health;
mod mcp;
mod memories;
mod metrics;
mod middleware;
mod openapi;
mod recall;
mod sessions;
mod store_api;

use std::sync::Arc;
use std::time::Duration;

use admission::KeyLimiter;
use aide::axum::routing::{delete_with, get_with, post_with};
use aide::axum::ApiRouter;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use engram_core::jobs::Heartbeat;
use engram_core::MemoryService;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub service: MemoryService,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub access_log: bool,
    pub heartbeats: Arc<Vec<Arc<Heartbeat>>>,
    pub requests: Arc<metrics::RequestMetrics>,
    /// The listener is loopback-only (MCP then checks the Host header).
    pub loopback: bool,
    /// Requests served at once (see `admission`).
    pub max_in_flight: usize,
    /// Each API key's token bucket; `None`: keys are not rate-limited.
    pub key_limiter: Option<Arc<KeyLimiter>>,
    /// The last store ping `/readyz` made, and when (see `health.rs`).
    pub last_ping: Arc<tokio::sync::Mutex<Option<LastPing>>>,
}

/// When the store was last pinged (service clock, ms) and what it answered.
pub type LastPing = (i64, Result<(), engram_core::Error>);

impl AppState {
    /// Authenticates the caller of a request and admits it under its key's
    /// rate; the refusal is the response to send.
    pub async fn admit(&self, headers: &axum::http::HeaderMap) -> Result<engram_core::TenantCtx, Response> {
        let ctx =
            self.service.authenticate(presented_key(headers)).await.map_err(|e| error::ApiError(e).into_response())?;
        if let Some(limiter) = &self.key_limiter {
            limiter.admit(&ctx).map_err(admission::throttled)?;
        }
        Ok(ctx)
    }
}

/// Builds the router with every route and the middleware stack, and the
/// OpenAPI document from the same calls (see `openapi`).
pub fn router(state: AppState) -> Router {
    use openapi::errors;
    // Errors particular to routes (beside those of their extractors).
    const ID: &[u16] = &[404];
    const WRITE: &[u16] = &[422, 507];
    const WRITE_ID: &[u16] = &[404, 507];
    // Health, metrics and the documents stay outside the in-flight limit.
    let ops = ApiRouter::new()
        .api_route("/healthz", get_with(health::healthz, |o| o.tag("operations").summary("Liveness")))
        .api_route("/readyz", get_with(health::readyz, health::docs))
        .api_route("/metrics", get_with(metrics::metrics, metrics::docs))
        .api_route("/openapi.json", get_with(openapi::document, |o| o.tag("operations").summary("This document")))
        .api_route("/docs", get_with(openapi::docs, |o| o.tag("operations").summary("The API reference page")));
    // One limit for all routes: axum applies a layer to each route apart.
    let shed = tower::ServiceBuilder::new()
        .layer(HandleErrorLayer::new(admission::shed))
        .load_shed()
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(state.max_in_flight));
    let api = ApiRouter::new()
        .api_route("/v1/memories", post_with(memories::create, errors(WRITE)).get_with(memories::list, |o| o))
        .api_route("/v1/memories/search", post_with(memories::search, errors(&[422])))
        .api_route(
            "/v1/memories/{id}",
            get_with(memories::get, errors(ID))
                .patch_with(memories::patch, |o| memories::if_match_docs(errors(&[404, 412, 422, 507])(o)))
                .delete_with(memories::delete, errors(WRITE_ID)),
        )
        .api_route("/v1/memories/{id}/cite", post_with(memories::cite, errors(&[404, 507])))
        .api_route("/v1/recall", post_with(recall::recall, errors(&[422])))
        .api_route("/v1/erase", post_with(erase::erase, errors(WRITE_ID)))
        .api_route("/v1/events", get_with(events::events, events::docs))
        .api_route(
            "/v1/sessions/{id}",
            get_with(sessions::get, errors(ID)).delete_with(sessions::delete, errors(&[404, 507])),
        )
        .api_route("/v1/sessions/{id}/turns", post_with(sessions::add_turns, errors(&[409, 422, 507])))
        .api_route("/v1/sessions/{id}/distill", post_with(sessions::distill, errors(&[404, 422, 507])))
        .api_route(
            "/store/items",
            get_with(store_api::get_item, |o| o)
                .put_with(store_api::put_item, errors(WRITE))
                .delete_with(store_api::delete_item, errors(&[507])),
        )
        .api_route("/store/items/search", post_with(store_api::search_items, errors(&[422])))
        .api_route("/store/namespaces", post_with(store_api::list_namespaces, |o| o))
        .api_route("/v1/admin/keys", post_with(admin::create, errors(&[507])).get_with(admin::list, |o| o))
        .api_route("/v1/admin/keys/{id}", delete_with(admin::revoke, errors(&[404, 507])))
        .merge(
            ApiRouter::new()
                .route_service(
                    "/mcp",
                    crate::mcp::http_service(state.service.clone(), state.loopback, state.max_body_bytes),
                )
                .layer(axum::middleware::from_fn_with_state(state.clone(), mcp::gate))
                .api_route_docs("/mcp", mcp::docs()),
        )
        .layer(shed);
    let mut api_doc = aide::openapi::OpenApi::default();
    let router = ops.merge(api).finish_api_with(&mut api_doc, openapi::describe);
    let document = openapi::Document::new(&api_doc);
    router
        .fallback(middleware::not_found)
        .method_not_allowed_fallback(middleware::method_not_allowed)
        .layer(Extension(document))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::around))
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}
