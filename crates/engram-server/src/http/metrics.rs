//! `GET /metrics`: the Prometheus text format (0.0.4), encoded by
//! `prometheus-client`. Requests by route (count and latency histogram,
//! recorded by the middleware), store and embedder latencies, the auth and
//! intent caches' hits, queue depths, breaker states and each background
//! job's heartbeat. Open in loopback dev mode; once keys exist, only to a key
//! with the `admin` scope (a Prometheus scrape sends it as `Authorization:
//! Bearer <key>`).

use std::sync::atomic::AtomicU64;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use engram_core::metrics::{histograms, Histograms};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::error::ApiError;
use super::extract::Ctx;
use super::AppState;

/// A request's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    method: &'static str,
    route: String,
    status: String,
}

/// Requests by method, route and status: how many, and how long they took.
pub struct RequestMetrics {
    count: Family<RouteLabels, Counter>,
    seconds: Histograms<RouteLabels>,
}

impl Default for RequestMetrics {
    fn default() -> Self {
        RequestMetrics { count: Family::default(), seconds: histograms() }
    }
}

impl RequestMetrics {
    pub fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        // Any string is a method to HTTP: only the standard ones get a label.
        let method = match method {
            "GET" => "GET",
            "POST" => "POST",
            "PUT" => "PUT",
            "PATCH" => "PATCH",
            "DELETE" => "DELETE",
            "HEAD" => "HEAD",
            "OPTIONS" => "OPTIONS",
            _ => "OTHER",
        };
        let labels = RouteLabels { method, route: route.to_owned(), status: status.to_string() };
        self.count.get_or_create(&labels).inc();
        self.seconds.get_or_create(&labels).observe(seconds);
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Named {
    name: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabel {
    job: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    cache: &'static str,
    result: &'static str,
}

fn gauge(v: i64) -> Gauge {
    let g = Gauge::default();
    g.set(v);
    g
}

pub async fn metrics(State(st): State<AppState>, Ctx(ctx): Ctx) -> Response {
    if let Err(e) = ctx.require(engram_core::auth::Scope::Admin) {
        return ApiError(e).into_response();
    }
    // Server-wide figures: not for an admin limited to some namespaces.
    if ctx.namespaces.is_some() {
        return ApiError(engram_core::Error::forbidden("/metrics needs an admin key not limited to namespaces"))
            .into_response();
    }
    let mut r = Registry::default();
    r.register("engram_http_requests", "Requests answered, by method, route and status", st.requests.count.clone());
    r.register(
        "engram_http_request_duration_seconds",
        "Time to answer, by method, route and status",
        st.requests.seconds.clone(),
    );
    let (timings, store_breaker_open) = st.service.store_health();
    r.register("engram_store_duration_seconds", "Store calls by kind (read, point, write)", timings.0.clone());
    let m = st.service.metrics();
    r.register("engram_embed_duration_seconds", "One call of the embedder (a batch of texts)", m.embed.clone());
    r.register("engram_embedded_texts", "Texts embedded", m.embedded_texts.clone());

    let caches: Family<CacheLabels, Counter> = Family::default();
    let (hits, misses, entries) = st.service.intent_cache_stats();
    for (cache, result, v) in [
        ("auth", "hit", m.auth_cache_hits.get()),
        ("auth", "miss", m.auth_cache_misses.get()),
        ("recall_intent", "hit", hits),
        ("recall_intent", "miss", misses),
    ] {
        caches.get_or_create(&CacheLabels { cache, result }).inc_by(v);
    }
    r.register("engram_cache_lookups", "Cache lookups by cache and result (hit ratio = hit / all)", caches);
    r.register("engram_recall_intent_cache_entries", "Queries in the intent cache", gauge(entries as i64));

    let breakers: Family<Named, Gauge> = Family::default();
    let embedder_open = st.service.embedder().is_some_and(|e| e.unavailable().is_some());
    breakers.get_or_create(&Named { name: "store" }).set(i64::from(store_breaker_open));
    breakers.get_or_create(&Named { name: "embedder" }).set(i64::from(embedder_open));
    r.register("engram_breaker_open", "1 while a circuit breaker refuses calls", breakers);

    let queues: Family<Named, Gauge> = Family::default();
    if let Ok((embed, jobs)) = st.service.queue_depths().await {
        queues.get_or_create(&Named { name: "embedding" }).set(embed as i64);
        queues.get_or_create(&Named { name: "jobs" }).set(jobs as i64);
    }
    queues.get_or_create(&Named { name: "citations" }).set(st.service.pending_citations() as i64);
    r.register("engram_queue_depth", "Work waiting: memories to embed, queued jobs, citations to write", queues);

    let last_ok: Family<JobLabel, Gauge<f64, AtomicU64>> = Family::default();
    let failures: Family<JobLabel, Gauge> = Family::default();
    let items: Family<JobLabel, Counter> = Family::default();
    for b in st.heartbeats.iter() {
        let job = JobLabel { job: b.name };
        last_ok.get_or_create(&job).set(b.last_ok_ms() as f64 / 1000.0);
        failures.get_or_create(&job).set(b.failures());
        items.get_or_create(&job).inc_by(b.items());
    }
    r.register(
        "engram_job_last_success_timestamp_seconds",
        "When each background job last succeeded (0 = never)",
        last_ok,
    );
    r.register("engram_job_consecutive_failures", "Failures of each background job since its last success", failures);
    r.register("engram_job_items", "Work items each job completed on this node", items);
    r.register(
        "engram_citations_pending",
        "Memories with citations not yet written",
        gauge(st.service.pending_citations() as i64),
    );

    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, &r) {
        return ApiError(engram_core::Error::internal(format!("metrics do not encode: {e}"))).into_response();
    }
    ([(CONTENT_TYPE, prometheus_client::encoding::prometheus_text::CONTENT_TYPE)], out).into_response()
}

/// Documents `/metrics`: Prometheus text, for an admin key not limited to
/// namespaces.
pub fn docs(t: aide::transform::TransformOperation<'_>) -> aide::transform::TransformOperation<'_> {
    t.tag("operations")
        .summary("Prometheus metrics (admin scope)")
        .response_with::<200, String, _>(|r| r.description("Prometheus text exposition format."))
}
