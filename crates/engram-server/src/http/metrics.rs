//! `GET /metrics`: Prometheus text exposition. Request counts and latency by
//! route and status (recorded by the middleware), each background job's
//! heartbeat, and a few lifecycle gauges. Open in loopback dev mode; once
//! keys exist, only to a key with the `admin` scope (a Prometheus scrape
//! sends it as `Authorization: Bearer <key>`).

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Mutex;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::extract::Ctx;
use super::AppState;

/// `(method, route, status)` → (count, total seconds).
type Counters = HashMap<(String, String, u16), (u64, f64)>;

/// Request counters by method, route and status.
#[derive(Default)]
pub struct RequestMetrics {
    by_route: Mutex<Counters>,
}

impl RequestMetrics {
    pub fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        // Any string is a method to HTTP: only the standard ones get a label.
        let method = match method {
            "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS" => method,
            _ => "OTHER",
        };
        if let Ok(mut m) = self.by_route.lock() {
            let e = m.entry((method.to_owned(), route.to_owned(), status)).or_insert((0, 0.0));
            e.0 += 1;
            e.1 += seconds;
        }
    }
}

/// Escapes a label value (`\`, `"`, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

pub async fn metrics(State(st): State<AppState>, Ctx(ctx): Ctx) -> Response {
    if let Err(e) = ctx.require(engram_core::auth::Scope::Admin) {
        return ApiError(e).into_response();
    }
    let mut out = String::new();
    let _ = writeln!(out, "# HELP engram_http_requests_total Requests answered, by method, route and status.");
    let _ = writeln!(out, "# TYPE engram_http_requests_total counter");
    let mut sums = String::new();
    let _ = writeln!(
        sums,
        "# HELP engram_http_request_duration_seconds_sum Time spent answering, by method, route and status."
    );
    let _ = writeln!(sums, "# TYPE engram_http_request_duration_seconds_sum counter");
    if let Ok(m) = st.requests.by_route.lock() {
        let mut rows: Vec<_> = m.iter().collect();
        rows.sort_by(|a, b| a.0.cmp(b.0));
        for ((method, route, status), (count, secs)) in rows {
            let labels = format!("method=\"{}\",route=\"{}\",status=\"{status}\"", label(method), label(route));
            let _ = writeln!(out, "engram_http_requests_total{{{labels}}} {count}");
            let _ = writeln!(sums, "engram_http_request_duration_seconds_sum{{{labels}}} {secs:.6}");
        }
    }
    out.push_str(&sums);
    let _ = writeln!(
        out,
        "# HELP engram_job_last_success_timestamp_seconds When each background job last succeeded (0 = never)."
    );
    let _ = writeln!(out, "# TYPE engram_job_last_success_timestamp_seconds gauge");
    for b in st.heartbeats.iter() {
        let _ = writeln!(
            out,
            "engram_job_last_success_timestamp_seconds{{job=\"{}\"}} {:.3}",
            b.name,
            b.last_ok_ms() as f64 / 1000.0
        );
    }
    let _ =
        writeln!(out, "# HELP engram_job_consecutive_failures Failures of each background job since its last success.");
    let _ = writeln!(out, "# TYPE engram_job_consecutive_failures gauge");
    for b in st.heartbeats.iter() {
        let _ = writeln!(out, "engram_job_consecutive_failures{{job=\"{}\"}} {}", b.name, b.failures());
    }
    let _ = writeln!(out, "# HELP engram_job_items_total Work items each job completed on this node.");
    let _ = writeln!(out, "# TYPE engram_job_items_total counter");
    for b in st.heartbeats.iter() {
        let _ = writeln!(out, "engram_job_items_total{{job=\"{}\"}} {}", b.name, b.items());
    }
    let (hits, misses, entries) = st.service.intent_cache_stats();
    let _ = writeln!(out, "# HELP engram_recall_intent_cache_hits_total Recall intents answered from the cache.");
    let _ = writeln!(out, "# TYPE engram_recall_intent_cache_hits_total counter");
    let _ = writeln!(out, "engram_recall_intent_cache_hits_total {hits}");
    let _ = writeln!(out, "# HELP engram_recall_intent_cache_misses_total Recall intents classified anew.");
    let _ = writeln!(out, "# TYPE engram_recall_intent_cache_misses_total counter");
    let _ = writeln!(out, "engram_recall_intent_cache_misses_total {misses}");
    let _ = writeln!(out, "# HELP engram_recall_intent_cache_entries Queries in the intent cache.");
    let _ = writeln!(out, "# TYPE engram_recall_intent_cache_entries gauge");
    let _ = writeln!(out, "engram_recall_intent_cache_entries {entries}");
    let _ = writeln!(out, "# HELP engram_citations_pending Memories with citations not yet written.");
    let _ = writeln!(out, "# TYPE engram_citations_pending gauge");
    let _ = writeln!(out, "engram_citations_pending {}", st.service.pending_citations());
    ([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out).into_response()
}
