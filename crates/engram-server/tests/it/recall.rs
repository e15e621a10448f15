//! `POST /v1/recall` with the real model: intent routing across tiers, the
//! working tier from a session, dropping near-identical results, packing
//! within the token budget.

use serde_json::{json, Value};

use crate::support::{Opts, TestServer};

fn setup() -> TestServer {
    let srv = TestServer::start_with(Opts { embedder: true, ..Opts::default() });
    let c = srv.client();
    let r = c.post(
        "/v1/memories",
        &json!({"wait": "indexed", "memories": [
            {"namespace": ["users", "alice"], "tier": "semantic", "text": "Alice likes green tea and hates coffee."},
            {"namespace": ["users", "alice"], "tier": "semantic", "text": "Alice works as a nurse in Leeds."},
            {"namespace": ["users", "alice"], "text": "Alice went hiking in the Lake District on 3 June 2024.",
             "metadata": {"date": "2024-06-03"}},
            {"namespace": ["users", "alice"], "text": "Alice adopted a cat called Miso in March."},
            {"namespace": ["users", "bob"], "tier": "semantic", "text": "Bob likes green tea too."}
        ]}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let t = c.post(
        "/v1/sessions/chat/turns",
        &json!({"namespace": ["users", "alice"], "turns": [
            {"role": "user", "content": "I am planning a trip to Japan in October."},
            {"role": "assistant", "content": "Exciting! Tokyo or Kyoto?"},
            {"role": "user", "content": "Kyoto, to see the temples and drink matcha."}
        ]}),
    );
    assert_eq!(t.status, 200, "{}", t.text);
    srv
}

fn tiers(r: &Value) -> Vec<String> {
    r["results"].as_array().unwrap().iter().map(|x| x["tier"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn intents_route_across_tiers_and_the_context_fits_the_budget() {
    let srv = setup();
    let c = srv.client();

    let r = c.post("/v1/recall", &json!({"query": "What did I just say?", "session_id": "chat"}));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = r.json();
    assert_eq!(r["intent"], "working");
    assert_eq!(r["results"][0]["tier"], "working");
    assert_eq!(r["results"][0]["turn"], 3, "the latest turn first");
    assert_eq!(r["results"][0]["text"], "user: Kyoto, to see the temples and drink matcha.");
    assert!(r["results"][0].get("id").is_none());

    let r = c.post("/v1/recall", &json!({"query": "What does Alice like to drink?", "session_id": "chat"})).json();
    assert_eq!(r["intent"], "semantic");
    assert_eq!(r["results"][0]["tier"], "semantic", "{r}");
    assert_eq!(r["results"][0]["text"], "Alice likes green tea and hates coffee.");
    let texts: Vec<&str> = r["results"].as_array().unwrap().iter().map(|x| x["text"].as_str().unwrap()).collect();
    assert!(!texts.iter().any(|t| t.contains("Bob")), "the session's namespace scopes long-term memory: {texts:?}");
    for x in r["results"].as_array().unwrap() {
        assert!(x["score"].as_f64().unwrap() > 0.0);
    }
    let context = r["context"].as_str().unwrap();
    assert!(
        context.starts_with("Relevant memory, most relevant first:\n- [semantic] Alice likes green tea"),
        "{context}"
    );
    assert!(r["context_tokens"].as_u64().unwrap() <= 1000);

    let r = c
        .post("/v1/recall", &json!({"query": "When did Alice go hiking?", "namespace_prefix": ["users", "alice"]}))
        .json();
    assert_eq!(r["intent"], "episodic");
    assert_eq!(r["results"][0]["text"], "Alice went hiking in the Lake District on 3 June 2024.");
    assert!(r["context"].as_str().unwrap().contains("- [episodic, 2024-06-03] Alice went hiking"), "{}", r["context"]);
    assert!(!tiers(&r).contains(&"working".to_string()), "no session, no working tier");

    // A tight budget keeps only what fits, measured by the model's tokenizer.
    let r = c
        .post("/v1/recall", &json!({"query": "Alice", "namespace_prefix": ["users", "alice"], "token_budget": 30}))
        .json();
    let tokens = r["context_tokens"].as_u64().unwrap();
    assert!(tokens > 0 && tokens <= 30, "{tokens}: {}", r["context"]);
    let lines = r["context"].as_str().unwrap().lines().count();
    assert!(lines >= 2 && lines < r["results"].as_array().unwrap().len() + 1, "{}", r["context"]);
    // Asking again hits the intent cache and answers the same.
    let again = c
        .post("/v1/recall", &json!({"query": "Alice", "namespace_prefix": ["users", "alice"], "token_budget": 30}))
        .json();
    assert_eq!(again["context"], r["context"]);
}

#[test]
fn near_identical_results_are_dropped() {
    let srv = setup();
    let c = srv.client();
    // The same fact said in the session and stored as a semantic memory.
    c.post(
        "/v1/sessions/chat/turns",
        &json!({"turns": [{"role": "user", "content": "Alice likes green tea and hates coffee"}]}),
    );
    let r = c.post("/v1/recall", &json!({"query": "Does Alice like green tea?", "session_id": "chat"})).json();
    let tea: Vec<&Value> = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["text"].as_str().unwrap().contains("green tea and hates"))
        .collect();
    assert_eq!(tea.len(), 1, "{r}");
}

#[test]
fn bad_recall_input_is_rejected() {
    let srv = TestServer::start();
    let c = srv.client();
    for (body, needle) in [
        (json!({"query": "x", "limit": 0}), "limit"),
        (json!({"query": "x", "limit": 101}), "limit"),
        (json!({"query": "x", "token_budget": 0}), "token_budget"),
        (json!({"query": "x", "session_id": "a b"}), "session id"),
        (json!({"query": "x", "namespace_prefix": ["a/b"]}), "namespace"),
        (json!({"query": "x", "tiers": ["working"]}), "tiers"),
        (json!({"query": "x".repeat(10_001)}), "10000"),
    ] {
        let r = c.post("/v1/recall", &body);
        assert_eq!((r.status, r.code()), (400, "invalid_input".to_string()), "{body}: {}", r.text);
        assert!(r.text.contains(needle), "{needle}: {}", r.text);
    }
    // A query with nothing to search is an answer: nothing relevant.
    for q in ["", "?!", "the of it"] {
        let r = c.post("/v1/recall", &json!({ "query": q }));
        assert_eq!(r.status, 200, "{q:?}: {}", r.text);
        assert_eq!((r.json()["nothing_relevant"].clone(), r.json()["context"].clone()), (json!(true), json!("")));
    }
    // Without a model recall still works (keyword search); an unknown session has no working tier.
    c.remember(json!([{"namespace": ["n"], "text": "The wifi password is on the fridge"}]));
    let r = c.post("/v1/recall", &json!({"query": "wifi password", "session_id": "gone"}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["results"][0]["text"], "The wifi password is on the fridge");
    assert!(r.json()["context_tokens"].as_u64().unwrap() > 0);
}

#[test]
fn recall_takes_the_callers_query_vector() {
    let srv = setup();
    let c = srv.client();
    let axis = |i: usize| (0..384).map(|j| if j == i { 1.0 } else { 0.0 }).collect::<Vec<f64>>();
    let r = c.post(
        "/v1/memories",
        &json!({"memories": [
            {"namespace": ["byo"], "text": "The boiler code is 4471", "embedding": axis(0)},
            {"namespace": ["byo"], "text": "The gate code is 9012", "embedding": axis(1)}
        ]}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    // Words that match neither; the vector picks the gate.
    let r = c.post("/v1/recall", &json!({"query": "zzz", "namespace_prefix": ["byo"], "query_embedding": axis(1)}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["results"][0]["text"], "The gate code is 9012", "{}", r.text);
    let bad = c.post("/v1/recall", &json!({"query": "zzz", "query_embedding": [1.0, 0.0]}));
    assert_eq!((bad.status, bad.code()), (422, "embedding_mismatch".to_string()), "{}", bad.text);
}
