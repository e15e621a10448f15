//! Liveness (`/healthz`: the process answers) and readiness (`/readyz`: the
//! store answers and every background job has a fresh heartbeat).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::AppState;

pub async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

pub async fn readyz(State(st): State<AppState>) -> Response {
    let store_ok = st.service.ping().await;
    let now = st.service.now();
    let mut ready = store_ok.is_ok();
    let mut jobs = serde_json::Map::new();
    for beat in st.heartbeats.iter() {
        let last = beat.last_ok_ms();
        // A job is healthy once it has run and has not failed three times in a row.
        let ok = last > 0 && beat.failures() < 3;
        ready &= ok;
        jobs.insert(
            beat.name.to_owned(),
            json!({
                "ok": ok,
                "last_ok_ms_ago": (last > 0).then(|| now - last),
                "consecutive_failures": beat.failures(),
                // A singleton job another node runs now.
                "standby": beat.standby(),
            }),
        );
    }
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "store": match &store_ok { Ok(()) => json!({"ok": true}), Err(e) => json!({"ok": false, "error": e.public_message()}) },
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
