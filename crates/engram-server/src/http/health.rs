//! Liveness (`/healthz`: the process answers) and readiness (`/readyz`: the
//! store answers — its breaker is closed —, the embedder can embed, and
//! every background job has succeeded within a few of its intervals; the
//! body says which part is wrong).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::AppState;

pub async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
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
    let mut jobs = serde_json::Map::new();
    for beat in st.heartbeats.iter() {
        let last = beat.last_ok_ms();
        // A job is healthy once it has run, has not failed three times in a
        // row, and has succeeded within a few of its intervals (else it hangs).
        let stale = beat.stale(now);
        let ok = last > 0 && beat.failures() < 3 && !stale;
        ready &= ok;
        jobs.insert(
            beat.name.to_owned(),
            json!({
                "ok": ok,
                "last_ok_ms_ago": (last > 0).then(|| now - last),
                "consecutive_failures": beat.failures(),
                "stale": stale,
                "every_ms": beat.every_ms(),
                // A singleton job another node runs now.
                "standby": beat.standby(),
            }),
        );
    }
    let embedder = match st.service.embedder() {
        None => json!({"ok": true, "configured": false}),
        Some(e) => match e.unavailable() {
            None => json!({"ok": true, "model": e.model()}),
            Some(why) => {
                ready = false;
                json!({"ok": false, "model": e.model(), "error": why})
            }
        },
    };
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "store": match &store_ok { Ok(()) => json!({"ok": true}), Err(e) => json!({"ok": false, "error": e.public_message()}) },
        "embedder": embedder,
        "jobs": jobs,
    });
    if ready {
        Json(body).into_response()
    } else {
        let mut r = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
        r.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static("1"));
        r
    }
}
