//! Errors and limits: the envelope, request ids, body and field limits.

use serde_json::json;

use crate::support::{raw, request, Opts, TestServer};

#[test]
fn every_error_uses_the_envelope_and_echoes_the_request_id() {
    let srv = TestServer::start();
    let r = request(
        srv.addr,
        "GET",
        "/v1/memories/00000000-0000-7000-8000-000000000000",
        &[("x-request-id", "trace-123")],
        None,
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.header("x-request-id"), Some("trace-123"));
    assert_eq!(r.json()["error"]["request_id"], "trace-123");
    assert_eq!(r.code(), "not_found");

    let r = request(srv.addr, "GET", "/no/such/route", &[], None);
    assert_eq!(r.status, 404);
    assert!(r.header("x-request-id").is_some_and(|v| !v.is_empty()));
    assert_eq!(r.json()["error"]["request_id"], r.header("x-request-id").unwrap());

    let r = request(srv.addr, "PUT", "/healthz", &[], None);
    assert_eq!((r.status, r.code()), (405, "method_not_allowed".to_string()));

    for bad in ["{", "[]", "null", "{\"memories\": 5}", "{\"memories\": [], \"extra\": 1}", "\u{0}\u{1}"] {
        let r = request(srv.addr, "POST", "/v1/memories", &[], Some(bad));
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
        assert_eq!(r.code(), "invalid_input", "{bad}");
    }
    let r = request(
        srv.addr,
        "POST",
        "/v1/memories",
        &[],
        Some(r#"{"memories":[{"namespace":["a"],"text":"x","colour":"red"}]}"#),
    );
    assert!(r.text.contains("colour"), "unknown fields are named: {}", r.text);
}

#[test]
fn oversized_bodies_are_rejected_early_from_content_length() {
    let srv = TestServer::start_with(Opts { max_body_bytes: Some(4096), ..Default::default() });
    // Declares 1 GiB and sends nothing: the answer must come without reading a body.
    let head = format!("POST /v1/memories HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", 1u64 << 30);
    let r = raw(srv.addr, head.as_bytes());
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.code(), "payload_too_large");

    // A chunked body with no Content-Length that grows past the limit is cut off too.
    let big = "x".repeat(8000);
    let chunked = format!(
        "POST /v1/memories HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    let r = raw(srv.addr, chunked.as_bytes());
    assert_eq!(r.status, 413, "{}", r.text);

    // The same for MCP, which reads its own bodies.
    let chunked = chunked.replace("POST /v1/memories", "POST /mcp").replace("Host: x", "Host: 127.0.0.1").replace(
        "Content-Type: application/json\r\n",
        "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n",
    );
    let r = raw(srv.addr, chunked.as_bytes());
    assert_eq!((r.status, r.code()), (413, "payload_too_large".to_string()), "{}", r.text);
}

/// Found by schemathesis: what a route refuses, it refuses in the envelope,
/// with the headers that belong to the refusal.
#[test]
fn refusals_found_by_generated_requests() {
    let srv = TestServer::start();
    // serde reads a struct from an array too; every body must be an object.
    for (path, body) in
        [("/v1/memories/search", "[null, null]"), ("/v1/recall", "[\"q\"]"), ("/store/items/search", " []")]
    {
        let r = request(srv.addr, "POST", path, &[], Some(body));
        assert_eq!((r.status, r.code()), (400, "invalid_input".to_string()), "{path} {body}: {}", r.text);
    }
    // A query with nothing to search still has its other fields checked.
    let nine = serde_json::json!({"query": "", "namespace_prefix": vec!["a"; 9]}).to_string();
    let r = request(srv.addr, "POST", "/v1/recall", &[], Some(&nine));
    assert_eq!((r.status, r.code()), (400, "invalid_input".to_string()), "{}", r.text);
    // MCP's refusals: in the envelope, a 405 with its Allow header.
    let r = request(srv.addr, "TRACE", "/mcp", &[], None);
    assert_eq!((r.status, r.code()), (405, "method_not_allowed".to_string()), "{}", r.text);
    assert_eq!(r.header("allow"), Some("POST"));
    let r = request(srv.addr, "POST", "/mcp", &[], Some("{}"));
    assert_eq!((r.status, r.code()), (406, "not_acceptable".to_string()), "{}", r.text);
    let r = request(srv.addr, "POST", "/mcp", &[("accept", "application/json, text/event-stream")], Some("[1]"));
    assert_eq!((r.status, r.code()), (400, "invalid_input".to_string()), "{}", r.text);
    // A path id that is not UTF-8 once decoded; a path under /mcp.
    let r = request(srv.addr, "GET", "/v1/memories/%FF", &[], None);
    assert_eq!((r.status, r.code()), (400, "invalid_input".to_string()), "{}", r.text);
    let r = request(srv.addr, "POST", "/mcp/tools", &[], Some("{}"));
    assert_eq!((r.status, r.code()), (404, "not_found".to_string()), "{}", r.text);
    // MCP takes bodies up to the server's limit (10 MiB), not rmcp's own 4 MiB.
    let pad = "x".repeat(5 << 20);
    let big = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {"pad": pad}}});
    let accept = ("accept", "application/json, text/event-stream");
    let r = request(srv.addr, "POST", "/mcp", &[accept], Some(&big.to_string()));
    assert_eq!(r.status, 200, "{:.300}", r.text);
    // A malformed x-agent-id is refused on /mcp for every message, as elsewhere.
    let init = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let r = request(srv.addr, "POST", "/mcp", &[accept, ("x-agent-id", "\"kIP")], Some(init));
    assert_eq!((r.status, r.code()), (400, "invalid_input".to_string()), "{}", r.text);
    let r = request(srv.addr, "POST", "/mcp", &[accept, ("x-agent-id", "agent-1")], Some(init));
    assert_eq!(r.status, 202, "{}", r.text);
    // Our own 405s carry Allow too.
    let r = request(srv.addr, "DELETE", "/v1/recall", &[], None);
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")), "{}", r.text);
}

#[test]
fn field_limits_name_the_field() {
    let srv = TestServer::start();
    let c = srv.client();
    let long_text = "a".repeat(32 * 1024 + 1);
    let long_query = "q".repeat(10_001);
    let cases = [
        (json!({"memories": [{"namespace": ["a"], "text": long_text}]}), "memories[0].text"),
        (json!({"memories": [{"namespace": [], "text": "x"}]}), "memories[0].namespace"),
        (json!({"memories": [{"namespace": ["ok", "bad seg"], "text": "x"}]}), "memories[0].namespace[1]"),
        (json!({"memories": [{"namespace": ["a", ".."], "text": "x"}]}), "memories[0].namespace[1]"),
        (json!({"memories": [{"namespace": vec!["a"; 9], "text": "x"}]}), "memories[0].namespace"),
        (json!({"memories": [{"namespace": ["a"], "text": "x", "key": ""}]}), "memories[0].key"),
        (json!({"memories": [{"namespace": ["a"], "text": "x", "tier": "working"}]}), "memories[0].tier"),
        (json!({"memories": [{"namespace": ["a"], "text": "x", "salience": 2}]}), "memories[0].salience"),
        (json!({"memories": [{"namespace": ["a"], "text": "x", "ttl_seconds": -1}]}), "memories[0].ttl_seconds"),
        (
            json!({"memories": [{"namespace": ["a"], "text": "x", "metadata": {"nested": {"a": 1}}}]}),
            "memories[0].metadata",
        ),
        (json!({"memories": [{"namespace": ["a"], "text": 5}]}), "memories[0].text"),
    ];
    for (body, field) in cases {
        let r = c.post("/v1/memories", &body);
        assert_eq!(r.status, 400, "{field}: {}", r.text);
        assert!(r.json()["error"]["message"].as_str().unwrap().contains(field), "{field}: {}", r.text);
    }
    let r = c.post("/v1/memories/search", &json!({"query": long_query}));
    assert_eq!(r.status, 400);
    assert!(r.text.contains("query"));
    for (path, field) in
        [("/v1/memories?limit=1001", "limit"), ("/v1/memories?limit=0", "limit"), ("/v1/memories?limit=abc", "limit")]
    {
        let r = c.get(path);
        assert_eq!(r.status, 400, "{path}");
        assert!(r.text.contains(field), "{}", r.text);
    }
    let r = c.post("/v1/memories/search", &json!({"limit": 5000}));
    assert_eq!(r.status, 400);
    assert!(r.text.contains("limit"));
    let r = c.post("/v1/memories/search", &json!({"mode": "vector", "query": "x"}));
    assert_eq!(r.status, 422, "vector search without a model is a clear refusal");
    assert_eq!(c.get("/v1/memories/not-a-uuid").status, 404);
}

#[test]
fn health_and_readiness() {
    let srv = TestServer::start();
    let c = srv.client();
    assert_eq!(c.get("/healthz").json()["status"], "ok");
    // The sweeper runs at startup, so readiness follows within moments.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let r = c.get("/readyz");
        if r.status == 200 {
            assert_eq!(r.json()["store"]["ok"], true);
            for job in ["ttl_sweep", "session_cleanup", "distillation", "salience", "promotion"] {
                assert_eq!(r.json()["jobs"][job]["ok"], true, "{job}: {}", r.text);
            }
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never ready: {}", r.text);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The same heartbeats, and what was answered, in the Prometheus text.
    let m = c.get("/metrics");
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    for job in ["ttl_sweep", "session_cleanup", "distillation", "salience", "promotion"] {
        let line = m
            .text
            .lines()
            .find(|l| l.starts_with(&format!("engram_job_last_success_timestamp_seconds{{job=\"{job}\"}}")))
            .unwrap();
        let secs: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(secs > 1.7e9, "{line}");
        assert!(m.text.contains(&format!("engram_job_consecutive_failures{{job=\"{job}\"}} 0")), "{}", m.text);
    }
    assert!(
        m.text.contains("engram_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1"),
        "{}",
        m.text
    );
    for needle in [
        "engram_http_request_duration_seconds_bucket{method=\"GET\",route=\"/healthz\",status=\"200\",le=\"",
        "engram_http_request_duration_seconds_count{method=\"GET\",route=\"/healthz\",status=\"200\"} 1",
        "engram_store_duration_seconds_count{op=\"",
        "engram_cache_lookups_total{cache=\"recall_intent\",result=\"hit\"} 0",
        "engram_cache_lookups_total{cache=\"auth\",result=\"miss\"}",
        "engram_breaker_open{name=\"store\"} 0",
        "engram_breaker_open{name=\"embedder\"} 0",
        "engram_queue_depth{name=\"embedding\"} ",
        "engram_queue_depth{name=\"jobs\"} ",
        "# TYPE engram_http_request_duration_seconds histogram",
    ] {
        assert!(m.text.contains(needle), "{needle} in {}", m.text);
    }
}

#[test]
fn a_database_locked_by_another_process_is_a_503_to_retry() {
    let srv = TestServer::start_with(Opts { busy_timeout_ms: Some(50), ..Default::default() });
    let c = srv.client();
    c.remember(json!([{"namespace": ["b"], "text": "written before the lock"}]));
    // Another process takes the write lock and holds it.
    let other = rusqlite::Connection::open(srv.db_path()).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let r = c.post("/v1/memories", &json!({"memories": [{"namespace": ["b"], "text": "written during the lock"}]}));
    assert_eq!((r.status, r.code()), (503, "unavailable".to_string()), "{}", r.text);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("busy"), "{}", r.text);
    // Reads go on meanwhile; writes again once the lock is gone.
    assert_eq!(c.get("/v1/memories?namespace=b").json()["memories"].as_array().unwrap().len(), 1);
    other.execute_batch("ROLLBACK").unwrap();
    c.remember(json!([{"namespace": ["b"], "text": "written after the lock"}]));
}

/// Polls `/readyz` until it answers `status` (a guard of 30 s); its body.
fn readyz_until(c: &crate::support::Client, status: u16) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = c.get("/readyz");
        if r.status == status {
            return r.json();
        }
        assert!(std::time::Instant::now() < deadline, "/readyz never answered {status}: {}", r.text);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_job_that_stops_beating_makes_the_server_not_ready() {
    let clock = engram_core::clock::ManualClock::new(1_767_225_600_000);
    let srv = TestServer::start_with(Opts { clock: Some(std::sync::Arc::clone(&clock)), ..Default::default() });
    let c = srv.client();
    readyz_until(&c, 200);
    // Ten minutes pass on the service's clock; the sweeps beat every 60 s
    // of real time, so they have not run since: as if they hung.
    clock.advance(600_000);
    let r = c.get("/readyz");
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.header("retry-after"), Some("1"));
    let body = r.json();
    assert_eq!(body["status"], "not_ready");
    for job in ["ttl_sweep", "session_cleanup", "promotion"] {
        assert_eq!(
            (body["jobs"][job]["ok"].as_bool(), body["jobs"][job]["stale"].as_bool()),
            (Some(false), Some(true)),
            "{job}: {body}"
        );
        assert_eq!(body["jobs"][job]["every_ms"], 60_000);
    }
    assert_eq!(body["store"]["ok"], true, "the store itself is fine");
}
