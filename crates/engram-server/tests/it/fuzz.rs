//! Generated request bodies, over real sockets, to every operation of the
//! server's own OpenAPI document that takes a JSON body: objects built from
//! the operation's field names (and strangers) with hostile values, and
//! bodies that are not objects at all. No answer may be a 5xx, every refusal
//! is the error envelope with a documented code, and the server still serves
//! afterwards.
//!
//! `make test` runs [`CASES`] cases with a fixed seed. `make fuzz` sets
//! `ENGRAM_FUZZ_SECONDS` and this runs that long, batch after batch with
//! fresh seeds (each printed; `ENGRAM_FUZZ_SEED` replays one). A body that once failed goes into
//! `tests/fixtures/body-regressions.jsonl` with the status it must get; those
//! are replayed first, every run.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::{json, Map, Value};

use crate::support::{request, Client, Opts, TestServer};

/// Cases of a plain test run.
const CASES: u32 = 300;

/// One operation that may take a body.
#[derive(Debug, Clone)]
struct Op {
    method: String,
    path: String,
    /// Its body's fields (none for a route that takes no body).
    fields: Vec<String>,
    /// Every field name in the document (bodies nest other schemas).
    names: Vec<String>,
}

/// The operations that take a body, or could be sent one, from the document.
fn operations(doc: &Value) -> Vec<Op> {
    let mut names: Vec<String> = doc["components"]["schemas"]
        .as_object()
        .expect("components")
        .values()
        .filter_map(|s| s["properties"].as_object())
        .flat_map(|p| p.keys().cloned())
        .collect();
    names.extend(["metadata.x", "$and", "$in", "$where", "extra", "0", ""].iter().map(|s| s.to_string()));
    names.sort();
    names.dedup();
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if method == "get" {
                continue;
            }
            let schema = op.pointer("/requestBody/content/application~1json/schema");
            let schema = match schema.and_then(|s| s["$ref"].as_str()) {
                Some(r) => doc.pointer(r.trim_start_matches('#')),
                None => schema,
            };
            let mut fields: Vec<String> = schema
                .and_then(|s| s["properties"].as_object())
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            fields.sort();
            out.push(Op { method: method.to_uppercase(), path: path.clone(), fields, names: names.clone() });
        }
    }
    out.sort_by(|a, b| (&a.path, &a.method).cmp(&(&b.path, &b.method)));
    out
}

fn scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop::sample::select(vec![0i64, 1, -1, 8, 9, 100, 1000, 1001, 100_000, i64::MAX, i64::MIN])
            .prop_map(|i| json!(i)),
        prop::sample::select(vec![0.5f64, -0.0, 1.5, 1e308, -1e308, 1e-308, 0.95]).prop_map(|f| json!(f)),
        prop::sample::select(vec![
            "",
            " ",
            "a",
            "episodic",
            "semantic",
            "hybrid",
            "vector",
            "keyword",
            "indexed",
            "read",
            "write",
            "admin",
            "\u{0}",
            ".",
            "..",
            "a/b",
            "a.b",
            "$where",
            "$regex",
            "metadata.x",
            "'; DROP TABLE memories; --",
            "2026-01-02T03:04:05Z",
            "2026-01-02T03:04:05+14:00",
            "2026-13-45",
            "9999-12-31T23:59:60Z",
            "日本語のテキスト",
            "ภาษาไทย",
            "\u{202e}abc",
            "\u{feff}",
            "👩‍👩‍👧",
            "\\",
            "\"",
            "%00",
            "users",
            "s1",
            // MCP's JSON-RPC: a version rmcp reads, its methods and tools.
            "2.0",
            "initialize",
            "tools/list",
            "tools/call",
            "notifications/initialized",
            "remember",
            "recall",
        ])
        .prop_map(|s| json!(s)),
        ".{0,24}".prop_map(Value::String),
        (1usize..5).prop_map(|k| json!("x".repeat(k * 10_000))),
    ]
    .boxed()
}

/// A value: scalars, and arrays and objects (keyed by `names`) a few deep.
fn value(names: Vec<String>) -> BoxedStrategy<Value> {
    scalar()
        .prop_recursive(4, 24, 6, move |inner| {
            let names = names.clone();
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(prop::sample::select(names), inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
        .boxed()
}

/// A body for `op`: mostly objects of its own fields, sometimes anything.
fn body(op: &Op) -> BoxedStrategy<String> {
    let fields = if op.fields.is_empty() { op.names.clone() } else { op.fields.clone() };
    let object = prop::collection::btree_map(prop::sample::select(fields), value(op.names.clone()), 0..6)
        .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>()).to_string());
    prop_oneof![
        8 => object,
        1 => value(op.names.clone()).prop_map(|v| v.to_string()),
        1 => prop::sample::select(vec!["", "{", "{}}", "[", "nul", "{\"a\":1,}", "\u{0}", "{\"text\":\"\\ud800\"}"])
            .prop_map(str::to_owned),
    ]
    .boxed()
}

/// A path with its `{id}` filled.
fn path(op: &Op) -> BoxedStrategy<String> {
    let template = op.path.clone();
    prop::sample::select(vec!["s1", "0", "x", "00000000-0000-7000-8000-000000000000", "a..b", "%2e%2e", "users@x:1"])
        .prop_map(move |id| template.replace("{id}", id))
        .boxed()
}

/// Sends one body and checks the answer.
fn check(c: &Client, method: &str, path: &str, body: &str) -> Result<u16, String> {
    let auth = format!("Bearer {}", c.key.as_deref().unwrap_or(""));
    let mut headers = vec![("authorization", auth.as_str())];
    if path == "/mcp" {
        headers.push(("accept", "application/json, text/event-stream"));
    }
    let r = request(c.addr, method, path, &headers, Some(body));
    if r.status >= 500 || r.status == 0 {
        return Err(format!("{method} {path} {body:.300} -> {} {}", r.status, r.text));
    }
    if r.status >= 400 {
        let v: Value =
            serde_json::from_str(&r.text).map_err(|e| format!("{method} {path}: not JSON ({e}): {}", r.text))?;
        // MCP's own envelope: a JSON-RPC error (a message rmcp cannot take).
        if path == "/mcp" && r.status == 400 && v["jsonrpc"] == "2.0" && v["error"]["message"].is_string() {
            return Ok(r.status);
        }
        let code = v["error"]["code"].as_str().unwrap_or_default();
        let known = engram_core::ErrorCode::ALL.iter().any(|c| c.as_str() == code);
        if !known || v["error"]["message"].as_str().is_none_or(str::is_empty) {
            return Err(format!("{method} {path} {body:.300}: not the envelope: {}", r.text));
        }
    }
    Ok(r.status)
}

/// Bodies that once broke a route, with the status each must get.
fn replay_regressions(c: &Client) {
    let file = include_str!("../fixtures/body-regressions.jsonl");
    let mut n = 0;
    for line in file.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
        let case: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        let body = match &case["body"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let (method, path) = (case["method"].as_str().unwrap(), case["path"].as_str().unwrap());
        let status = check(c, method, path, &body).unwrap_or_else(|e| panic!("regression {line}: {e}"));
        assert_eq!(Some(status as u64), case["status"].as_u64(), "regression {line}");
        n += 1;
    }
    assert!(n >= 3, "the regressions file was read ({n} cases)");
}

#[test]
fn generated_bodies_never_break_a_route() {
    let srv =
        TestServer::start_with(Opts { keys: vec![("fuzz", "read,write,admin")], embedder: true, ..Default::default() });
    let c = Client { addr: srv.addr, key: Some(srv.keys[0].clone()) };
    replay_regressions(&c);
    let doc = c.get("/openapi.json").json();
    let ops = operations(&doc);
    assert!(ops.len() >= 15, "every operation but reads: {ops:?}");
    let budget = std::env::var("ENGRAM_FUZZ_SECONDS").ok().map(|s| Duration::from_secs(s.parse().expect("seconds")));
    let started = Instant::now();
    let sent = std::sync::atomic::AtomicU64::new(0);
    let mut seed = 1u64;
    loop {
        // A fixed seed for `make test`; fresh ones (printed) for `make fuzz`.
        if let Ok(s) = std::env::var("ENGRAM_FUZZ_SEED") {
            seed = s.parse().expect("ENGRAM_FUZZ_SEED is a number");
        } else if budget.is_some() {
            seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
            eprintln!("fuzz batch seed {seed}");
        }
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
        // A `make fuzz` batch is 2 000 cases (and so is its replay).
        let replay = std::env::var_os("ENGRAM_FUZZ_SEED").is_some();
        let cases = if budget.is_some() || replay { 2_000 } else { CASES };
        let mut runner =
            TestRunner::new_with_rng(Config { cases, failure_persistence: None, ..Config::default() }, rng);
        let strategy = prop::sample::select(ops.clone()).prop_flat_map(|op| (Just(op.clone()), path(&op), body(&op)));
        let result = runner.run(&strategy, |(op, path, body)| {
            sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            check(&c, &op.method, &path, &body).map(|_| ()).map_err(TestCaseError::fail)
        });
        if let Err(e) = result {
            panic!("seed {seed}: {e}\nadd the minimal input to tests/fixtures/body-regressions.jsonl");
        }
        match budget {
            Some(b) if started.elapsed() < b => continue,
            _ => break,
        }
    }
    let sent = sent.into_inner();
    assert!(sent >= CASES as u64, "the cases were sent ({sent})");
    let ready = c.get("/readyz");
    assert_eq!(ready.status, 200, "still serving: {}", ready.text);
    eprintln!("{sent} generated bodies in {:.0?}", started.elapsed());
}
