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
mod memories;
mod metrics;
mod middleware;
mod recall;
mod sessions;
mod store_api;

use std::sync::Arc;
use std::time::Duration;

use admission::KeyLimiter;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
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

/// Checks the caller of `/mcp` as every other route does, before rmcp reads
/// the body: a missing or bad key is a 401 in the usual envelope, a key over
/// its rate a 429.
async fn mcp_auth(
    axum::extract::State(st): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match st.admit(req.headers()).await {
        Ok(_) => next.run(req).await,
        Err(refused) => refused,
    }
}

/// Builds the router with every route and the middleware stack.
pub fn router(state: AppState) -> Router {
    // Health and metrics stay outside the in-flight limit.
    let ops = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics));
    // One limit for all routes: axum applies a layer to each route apart.
    let shed = tower::ServiceBuilder::new()
        .layer(HandleErrorLayer::new(admission::shed))
        .load_shed()
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(state.max_in_flight));
    let api = Router::new()
        .route("/v1/memories", post(memories::create).get(memories::list))
        .route("/v1/memories/search", post(memories::search))
        .route("/v1/memories/{id}", get(memories::get).patch(memories::patch).delete(memories::delete))
        .route("/v1/memories/{id}/cite", post(memories::cite))
        .route("/v1/recall", post(recall::recall))
        .route("/v1/erase", post(erase::erase))
        .route("/v1/events", get(events::events))
        .route("/v1/sessions/{id}", get(sessions::get).delete(sessions::delete))
        .route("/v1/sessions/{id}/turns", post(sessions::add_turns))
        .route("/v1/sessions/{id}/distill", post(sessions::distill))
        .route("/store/items", get(store_api::get_item).put(store_api::put_item).delete(store_api::delete_item))
        .route("/store/items/search", post(store_api::search_items))
        .route("/v1/admin/keys", post(admin::create).get(admin::list))
        .route("/v1/admin/keys/{id}", axum::routing::delete(admin::revoke))
        .route("/store/namespaces", post(store_api::list_namespaces))
        .merge(
            Router::new()
                .nest_service("/mcp", crate::mcp::http_service(state.service.clone(), state.loopback))
                .layer(axum::middleware::from_fn_with_state(state.clone(), mcp_auth)),
        )
        .layer(shed);
    ops.merge(api)
        .fallback(middleware::not_found)
        .method_not_allowed_fallback(middleware::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::around))
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}
