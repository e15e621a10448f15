//! Liveness (`/healthz`: the process answers) and readiness (`/readyz`: the
//! store answers — its breaker is closed —, the embedder can embed, and
//! every background job has succeeded within a few of its intervals; the
//! body says which part is wrong).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use schemars::JsonSchema;
use serde::Serialize;

use super::AppState;

/// The answer to `/healthz`.
#[derive(Serialize, JsonSchema)]
pub struct Alive {
    /// Always `ok`.
    pub status: &'static str,
}

pub async fn healthz() -> Json<Alive> {
    Json(Alive { status: "ok" })
}

/// The answer to `/readyz` (200 when `status` is `ready`, else 503).
#[derive(Serialize, JsonSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    pub store: Part,
    pub embedder: EmbedderPart,
    /// Each background job by name.
    pub jobs: BTreeMap<String, JobPart>,
}

/// Whether the store answers.
#[derive(Serialize, JsonSchema)]
pub struct Part {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Whether the embedder can embed.
#[derive(Serialize, JsonSchema)]
pub struct EmbedderPart {
    pub ok: bool,
    /// False when no embedder is configured (keyword search only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configured: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One background job's heartbeat.
#[derive(Serialize, JsonSchema)]
pub struct JobPart {
    pub ok: bool,
    /// Milliseconds since it last succeeded (absent: never yet).
    pub last_ok_ms_ago: Option<i64>,
    pub consecutive_failures: i64,
    /// It has not succeeded within a few of its intervals (it hangs).
    pub stale: bool,
    /// Its interval, in milliseconds.
    pub every_ms: i64,
    /// A singleton job another node runs now.
    pub standby: bool,
}

/// How long a store ping answers for `/readyz`, in milliseconds: a flood of
/// readiness probes (outside the in-flight limit) costs one ping a second.
const PING_REUSE_MS: i64 = 1_000;

/// The store's answer to a ping, reused for [`PING_REUSE_MS`]; one ping at a time.
async fn store_ping(st: &AppState) -> Result<(), engram_core::Error> {
    let mut last = st.last_ping.lock().await;
    let now = st.service.now();
    if let Some((at, answer)) = &*last {
        if (0..PING_REUSE_MS).contains(&(now - at)) {
            return answer.clone();
        }
    }
    let answer = st.service.ping().await;
    *last = Some((now, answer.clone()));
    answer
}

pub async fn readyz(State(st): State<AppState>) -> Response {
    let store_ok = store_ping(&st).await;
    let now = st.service.now();
    let mut ready = store_ok.is_ok();
    let mut jobs = BTreeMap::new();
    for beat in st.heartbeats.iter() {
        let last = beat.last_ok_ms();
        // A job is healthy once it has run, has not failed three times in a
        // row, and has succeeded within a few of its intervals (else it hangs).
        let stale = beat.stale(now);
        let ok = last > 0 && beat.failures() < 3 && !stale;
        ready &= ok;
        let part = JobPart {
            ok,
            last_ok_ms_ago: (last > 0).then(|| now - last),
            consecutive_failures: beat.failures(),
            stale,
            every_ms: beat.every_ms(),
            standby: beat.standby(),
        };
        jobs.insert(beat.name.to_owned(), part);
    }
    let embedder = match st.service.embedder() {
        None => EmbedderPart { ok: true, configured: Some(false), model: None, error: None },
        Some(e) => {
            let error = e.unavailable();
            ready &= error.is_none();
            EmbedderPart { ok: error.is_none(), configured: None, model: Some(e.model().to_owned()), error }
        }
    };
    let store = Part { ok: store_ok.is_ok(), error: store_ok.err().map(|e| e.public_message()) };
    let body = Readiness { status: if ready { "ready" } else { "not_ready" }, store, embedder, jobs };
    if ready {
        Json(body).into_response()
    } else {
        let mut r = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
        r.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static("1"));
        r
    }
}

/// Documents `/readyz`: the same body at 200 (ready) and 503 (not).
pub fn docs(t: aide::transform::TransformOperation<'_>) -> aide::transform::TransformOperation<'_> {
    t.tag("operations")
        .summary("Readiness: store, embedder and background jobs")
        .response_with::<200, Json<Readiness>, _>(|r| r.description("Ready."))
        .response_with::<503, Json<Readiness>, _>(|r| r.description("Not ready; the body says which part is wrong."))
}
