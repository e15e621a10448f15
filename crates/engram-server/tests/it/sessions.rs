//! Sessions (working memory) and distillation over HTTP.

use serde_json::{json, Value};

use crate::support::{Opts, TestServer};
use engram_server::config::MemorySection;

fn small_window() -> TestServer {
    let memory = MemorySection { wm_max_turns: 4, distill_every: 2, ..MemorySection::default() };
    TestServer::start_with(Opts { memory: Some(memory), ..Opts::default() })
}

fn turns(contents: &[(&str, &str)]) -> Value {
    let turns: Vec<Value> = contents.iter().map(|(role, content)| json!({"role": role, "content": content})).collect();
    json!({ "turns": turns })
}

#[test]
fn turns_window_distillation_and_summary() {
    let srv = small_window();
    let c = srv.client();
    let ns = json!(["users", "maya"]);

    let r = c.post(
        "/v1/sessions/chat-1/turns",
        &json!({"namespace": ns, "turns": [{"role": "user", "content": "Hi there!", "at": "2023-05-08T10:00:00Z"}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["turn_count"], 1);
    assert_eq!(r.json()["distilled"], json!([]));
    assert_eq!(r.json()["pending_turns"], 1);

    // The second turn completes a stretch of distill_every = 2: distilled now.
    let r = c.post(
        "/v1/sessions/chat-1/turns",
        &json!({"turns": [{"role": "user", "content": "I started a pottery class in Brooklyn yesterday.",
                           "at": "2023-05-08T10:01:00Z", "metadata": {"speaker": "Maya", "msg": "m2"}}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["turn_count"], 2);
    assert_eq!(r.json()["pending_turns"], 0);
    let ids = r.json()["distilled"].as_array().unwrap().clone();
    assert_eq!(ids.len(), 1, "the greeting is small talk, the class is a fact: {}", r.text);
    let m = c.get(&format!("/v1/memories/{}", ids[0].as_str().unwrap())).json();
    assert_eq!(m["text"], "Maya: I started a pottery class in Brooklyn yesterday (7 May 2023).");
    assert_eq!(m["tier"], "episodic");
    assert_eq!(m["namespace"], ns);
    assert_eq!(m["source"], json!({"kind": "session", "session_id": "chat-1", "turns": [2, 2]}));
    assert_eq!(m["metadata"]["speakers"], json!(["Maya"]));
    assert_eq!(m["metadata"]["date"], "2023-05-08");
    assert_eq!(m["metadata"]["msg"], "m2", "the turn's own metadata is kept");
    assert_eq!(m["metadata"]["entities"], json!(["Brooklyn"]));

    // Three more in one call: one more stretch of two; the window is the last four.
    let r = c.post(
        "/v1/sessions/chat-1/turns",
        &turns(&[
            ("assistant", "Nice! What are you making?"),
            ("user", "A set of blue mugs for my sister Ines."),
            ("assistant", "Lovely."),
        ]),
    );
    assert_eq!(r.json()["turn_count"], 5);
    assert_eq!(r.json()["pending_turns"], 1);
    assert_eq!(r.json()["distilled"].as_array().unwrap().len(), 1, "{}", r.text);

    let s = c.get("/v1/sessions/chat-1");
    assert_eq!(s.status, 200, "{}", s.text);
    let s = s.json();
    assert_eq!(s["turn_count"], 5);
    assert_eq!(s["namespace"], ns);
    let idx: Vec<i64> = s["turns"].as_array().unwrap().iter().map(|t| t["index"].as_i64().unwrap()).collect();
    assert_eq!(idx, vec![2, 3, 4, 5]);
    assert_eq!(s["turns"][0]["at"], "2023-05-08T10:01:00.000Z");
    let summary = s["summary"].as_str().unwrap();
    assert!(summary.contains("pottery class") && summary.contains("blue mugs"), "{summary}");

    // Distill now: the one pending turn ("Lovely.") is small talk — nothing stored.
    let d = c.post("/v1/sessions/chat-1/distill", &json!({}));
    assert_eq!(d.status, 200, "{}", d.text);
    assert_eq!(d.json()["distilled"], json!([]));
    assert_eq!(c.get("/v1/sessions/chat-1").json()["distilled_turns"], 5);

    // The distilled memories are searchable.
    let hits = c.search(json!({"query": "pottery Brooklyn", "namespace_prefix": ["users", "maya"]}));
    assert_eq!(hits["results"][0]["memory"]["id"], ids[0]);

    // A session keeps its namespace.
    let r = c.post(
        "/v1/sessions/chat-1/turns",
        &json!({"namespace": ["other"], "turns": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!((r.status, r.code()), (409, "conflict".to_string()), "{}", r.text);

    assert_eq!(c.delete("/v1/sessions/chat-1", None).status, 204);
    assert_eq!(c.get("/v1/sessions/chat-1").status, 404);
    assert_eq!(c.delete("/v1/sessions/chat-1", None).status, 404);
    // Distilled memories outlive the session.
    assert_eq!(c.get(&format!("/v1/memories/{}", ids[0].as_str().unwrap())).status, 200);
}

#[test]
fn default_namespace_and_bad_input() {
    let srv = TestServer::start();
    let c = srv.client();
    let r = c.post("/v1/sessions/s-1/turns", &turns(&[("user", "hello")]));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["namespace"], json!(["sessions", "s-1"]));

    let bad = |path: &str, body: Value| {
        let r = c.post(path, &body);
        assert_eq!((r.status, r.code()), (400, "invalid_input".to_string()), "{path} {body}: {}", r.text);
        r.json()["error"]["message"].as_str().unwrap().to_owned()
    };
    assert!(bad("/v1/sessions/s-1/turns", json!({"turns": []})).contains("turns must hold 1 to 1000"));
    assert!(bad("/v1/sessions/s-1/turns", json!({"turns": [{"role": "", "content": "x"}]})).contains("turns[0].role"));
    assert!(bad("/v1/sessions/s-1/turns", json!({"turns": [{"role": "user", "content": " "}]}))
        .contains("turns[0].content"));
    assert!(bad("/v1/sessions/s-1/turns", json!({"turns": [{"role": "user", "content": "x", "at": "yesterday"}]}))
        .contains("turns[0].at"));
    assert!(bad(
        "/v1/sessions/s-1/turns",
        json!({"turns": [{"role": "user", "content": "x", "metadata": {"a": {"b": 1}}}]})
    )
    .contains("turns[0].metadata"));
    assert!(bad("/v1/sessions/s-1/turns", json!({"turns": [{"role": "user", "content": "x", "colour": 1}]}))
        .contains("colour"));
    let long = "x".repeat(129);
    assert!(bad(&format!("/v1/sessions/{long}/turns"), turns(&[("user", "x")])).contains("session id"));
    assert!(bad("/v1/sessions/a%20b/turns", turns(&[("user", "x")])).contains("session id"));
    let many: Vec<(&str, &str)> = vec![("user", "x"); 1001];
    assert!(bad("/v1/sessions/s-1/turns", turns(&many)).contains("1001"));

    assert_eq!(c.get("/v1/sessions/nope").status, 404);
    assert_eq!(c.post("/v1/sessions/nope/distill", &json!({})).status, 404);
    // Nothing of the rejected calls was stored.
    assert_eq!(c.get("/v1/sessions/s-1").json()["turn_count"], 1);
}

#[test]
fn sessions_are_tenant_scoped() {
    let srv = TestServer::start_with(Opts {
        keys: vec![("acme", "read,write"), ("globex", "read,write")],
        ..Opts::default()
    });
    let (a, b) = (srv.client_with_key(0), srv.client_with_key(1));
    assert_eq!(a.post("/v1/sessions/shared/turns", &turns(&[("user", "acme's secret plan")])).status, 200);
    assert_eq!(b.get("/v1/sessions/shared").status, 404);
    assert_eq!(b.post("/v1/sessions/shared/distill", &json!({})).status, 404);
    assert_eq!(b.delete("/v1/sessions/shared", None).status, 404);
    // The same id in another tenant is another session.
    assert_eq!(b.post("/v1/sessions/shared/turns", &turns(&[("user", "globex")])).json()["turn_count"], 1);
    assert_eq!(a.get("/v1/sessions/shared").json()["turns"][0]["content"], "acme's secret plan");
}
