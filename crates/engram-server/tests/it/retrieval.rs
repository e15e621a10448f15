//! Retrieval by meaning over HTTP with the real local model: the embedding
//! queue, vector / keyword / hybrid modes with explanations, `wait: "indexed"`,
//! near-duplicate merging, caller-supplied vectors (on writes and as the query)
//! and the per-tenant model record, stemming and stopwords, neighbour context,
//! and the LangGraph store's semantic `query`.

use serde_json::{json, Value};

use crate::support::{Opts, TestServer};

fn with_model() -> TestServer {
    TestServer::start_with(Opts { embedder: true, ..Default::default() })
}

fn texts(out: &Value) -> Vec<String> {
    out["results"].as_array().unwrap().iter().map(|r| r["memory"]["text"].as_str().unwrap().to_owned()).collect()
}

const FACTS: &[&str] = &[
    "I adopted a golden retriever puppy named Max last spring",
    "The quarterly budget review moved to Friday afternoon",
    "My sister moved to Lisbon and works as an architect",
    "I have been learning to play the cello for two years",
    "We are repainting the kitchen a pale shade of green",
];

#[test]
fn queued_embeddings_make_memories_findable_by_meaning() {
    let s = with_model();
    let c = s.client();
    let memories: Vec<Value> = FACTS.iter().map(|t| json!({"namespace": ["u", "alice"], "text": t})).collect();
    c.remember(json!(memories));
    c.wait_embedded(json!(["u"]));
    // No word of the query appears in any memory: only meaning can find it.
    let q = "pet dog";
    let vector = c.search(json!({"query": q, "mode": "vector", "limit": 3}));
    assert_eq!(vector["mode"], "vector");
    assert_eq!(texts(&vector)[0], FACTS[0]);
    let keyword = c.search(json!({"query": q, "mode": "keyword"}));
    assert!(texts(&keyword).is_empty(), "{keyword}");
    let hybrid = c.search(json!({"query": q, "explain": true, "limit": 5}));
    assert_eq!(hybrid["mode"], "hybrid");
    assert_eq!(texts(&hybrid)[0], FACTS[0]);
    let top = &hybrid["results"][0];
    let e = &top["explain"];
    for part in ["vector", "keyword_normalised", "relevance", "recency", "salience"] {
        assert!(e[part].is_number(), "explain.{part} missing: {e}");
    }
    let sum: f64 = ["relevance", "context", "recency", "salience"].iter().map(|p| e[p].as_f64().unwrap()).sum();
    assert!((sum - top["score"].as_f64().unwrap()).abs() < 1e-9, "score = relevance + context + boosts: {top}");
    let scores: Vec<f64> = hybrid["results"].as_array().unwrap().iter().map(|r| r["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "best first: {scores:?}");
    // Words and meaning together: the keyword part lifts the exact match.
    let hybrid = c.search(json!({"query": "cello", "explain": true}));
    assert_eq!(texts(&hybrid)[0], FACTS[3]);
    assert!(hybrid["results"][0]["explain"]["keyword"].as_f64().unwrap() > 0.0);
    // Scope: another namespace prefix sees nothing; tiers and filters apply.
    assert!(texts(&c.search(json!({"query": q, "mode": "vector", "namespace_prefix": ["u", "bob"]}))).is_empty());
    assert!(texts(&c.search(json!({"query": q, "mode": "vector", "tiers": ["semantic"]}))).is_empty());
    let filtered = c.search(json!({"query": q, "mode": "vector", "filter": {"tier": "episodic"}, "limit": 2}));
    assert_eq!(texts(&filtered).len(), 2);
}

#[test]
fn search_reports_memories_still_waiting_for_their_embedding() {
    let s = with_model();
    let c = s.client();
    let many: Vec<Value> = (0..300)
        .map(|i| json!({"namespace": ["bulk"], "text": format!("note number {i} about topic {}", i % 17)}))
        .collect();
    c.remember(json!(many));
    let first = c.search(json!({"query": "topic", "namespace_prefix": ["bulk"], "mode": "keyword"}));
    assert!(
        first["pending_embeddings"].as_u64().unwrap() > 0,
        "300 texts cannot all be embedded already: {}",
        first["pending_embeddings"]
    );
    assert_eq!(texts(&first).len(), 10, "keyword search works before the embeddings exist");
    c.wait_embedded(json!(["bulk"]));
    assert_eq!(c.search(json!({"query": "topic", "namespace_prefix": ["other"]}))["pending_embeddings"], 0);
}

#[test]
fn wait_indexed_writes_are_searchable_at_once_and_near_duplicates_merge() {
    let s = with_model();
    let c = s.client();
    let r = c.post(
        "/v1/memories",
        &json!({"wait": "indexed", "memories": [{"namespace": ["n"], "text": "Alice likes green tea"}]}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json()["results"][0]["memory"]["id"].clone();
    let out = c.search(json!({"query": "what beverage does Alice enjoy", "mode": "vector"}));
    assert_eq!(out["results"][0]["memory"]["id"], id, "no waiting needed after wait=indexed");
    assert_eq!(out["pending_embeddings"], 0);
    // Same normalised text.
    let r = c.post(
        "/v1/memories",
        &json!({"memories": [{"namespace": ["n"], "text": "alice likes GREEN tea.", "tags": ["drinks"]}]}),
    );
    assert_eq!(r.json()["results"][0]["status"], "merged", "{}", r.text);
    assert_eq!(r.json()["results"][0]["memory"]["id"], id);
    // A near-identical wording (cosine ≥ 0.95 under the model).
    let r = c.post(
        "/v1/memories",
        &json!({"wait": "indexed", "memories": [{"namespace": ["n"], "text": "Alice likes green-tea"}]}),
    );
    assert_eq!(r.json()["results"][0]["status"], "merged", "{}", r.text);
    let merged = &r.json()["results"][0]["memory"];
    assert_eq!(merged["id"], id);
    assert_eq!(merged["tags"], json!(["drinks"]));
    // A different fact is a new memory; so is the same text in another namespace.
    let r = c.post(
        "/v1/memories",
        &json!({"wait": "indexed", "memories": [
        {"namespace": ["n"], "text": "Alice dislikes coffee"},
        {"namespace": ["m"], "text": "Alice likes green tea"}]}),
    );
    let statuses: Vec<Value> = r.json()["results"].as_array().unwrap().iter().map(|x| x["status"].clone()).collect();
    assert_eq!(statuses, [json!("created"), json!("created")]);
    let listed = c.get("/v1/memories?namespace=n").json();
    assert_eq!(listed["memories"].as_array().unwrap().len(), 2);
    let r = c.post("/v1/memories", &json!({"wait": "soon", "memories": [{"namespace": ["n"], "text": "x"}]}));
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_input"));
}

#[test]
fn caller_vectors_are_checked_against_the_tenants_model() {
    let clock = engram_core::clock::ManualClock::starting_now();
    let s = TestServer::start_with(Opts { embedder: true, clock: Some(clock.clone()), ..Default::default() });
    let c = s.client();
    let r =
        c.post("/v1/memories", &json!({"memories": [{"namespace": ["v"], "text": "t", "embedding": [0.1, 0.2, 0.3]}]}));
    assert_eq!((r.status, r.code().as_str()), (422, "embedding_mismatch"), "{}", r.text);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("384"), "{}", r.text);
    let zero = vec![0.0f32; 384];
    let r = c.post("/v1/memories", &json!({"memories": [{"namespace": ["v"], "text": "t", "embedding": zero}]}));
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_input"), "{}", r.text);
    // A caller vector is stored as given (normalised) and found at once.
    let mut mine = vec![0.0f32; 384];
    mine[7] = 3.0;
    let r = c
        .post("/v1/memories", &json!({"memories": [{"namespace": ["v"], "text": "my own vector", "embedding": mine}]}));
    assert_eq!(r.status, 201, "{}", r.text);
    let out = c.search(json!({"query": "anything", "namespace_prefix": ["v"], "mode": "vector"}));
    assert_eq!(texts(&out), ["my own vector"]);
    assert_eq!(out["pending_embeddings"], 0, "a caller vector is not queued");
    // The tenant's vectors were recorded as all-MiniLM-L6-v2; pretend they came
    // from another model: searching by meaning is refused with the fix named.
    assert_eq!(s.rewrite_tenant_models("text-embedding-3-small"), "text-embedding-3-small");
    // A change nobody announced is noticed once the checked record is no
    // longer trusted (as long as an auth grant).
    clock.advance(engram_core::service::MODEL_CHECK_TTL_MS);
    let r = c.post("/v1/memories/search", &json!({"query": "anything", "mode": "vector"}));
    assert_eq!((r.status, r.code().as_str()), (422, "embedding_mismatch"), "{}", r.text);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("engram reembed"), "{}", r.text);
    let r = c.post("/v1/memories/search", &json!({"query": "anything", "mode": "keyword"}));
    assert_eq!(r.status, 200, "keyword search does not need vectors");
}

#[test]
fn a_caller_query_vector_searches_by_meaning_without_the_model() {
    let s = with_model();
    let c = s.client();
    let axis = |i: usize, x: f32| {
        let mut v = vec![0.0f32; 384];
        v[i] = x;
        v
    };
    let memories: Vec<Value> = (0..4)
        .map(|i| json!({"namespace": ["byo"], "text": format!("vector {i}"), "embedding": axis(i, 1.0)}))
        .collect();
    c.remember(json!(memories));
    let mut q = axis(2, 1.0);
    q[3] = 0.5;
    // No query text: a vector-only search, nearest first, the vector scaled to unit length.
    let out = c.search(
        json!({"query_embedding": q, "namespace_prefix": ["byo"], "limit": 2, "explain": true, "context_weight": 0}),
    );
    assert_eq!(out["mode"], "vector");
    assert_eq!(texts(&out), ["vector 2", "vector 3"]);
    let cos = out["results"][0]["explain"]["vector"].as_f64().unwrap();
    assert!((cos - 1.0 / 1.25f64.sqrt()).abs() < 1e-6, "{out}");
    // With words, hybrid: the words are matched, the vector is not recomputed.
    let out =
        c.search(json!({"query": "vector", "query_embedding": axis(1, 2.0), "namespace_prefix": ["byo"], "limit": 1}));
    assert_eq!((out["mode"].as_str(), texts(&out)), (Some("hybrid"), vec!["vector 1".to_string()]));
    let r = c.post("/v1/memories/search", &json!({"query_embedding": [1.0, 0.0]}));
    assert_eq!((r.status, r.code().as_str()), (422, "embedding_mismatch"), "{}", r.text);
    let r = c.post("/v1/memories/search", &json!({"query_embedding": axis(0, 0.0)}));
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_input"), "{}", r.text);
    let r = c.post("/v1/memories/search", &json!({"query": "x", "context_weight": 1.5}));
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_input"), "{}", r.text);
    // A server without a model cannot compare vectors at all.
    let plain = TestServer::start();
    let r = plain.client().post("/v1/memories/search", &json!({"query_embedding": axis(0, 1.0)}));
    assert_eq!((r.status, r.code().as_str()), (422, "unprocessable"), "{}", r.text);
}

#[test]
fn keyword_search_stems_and_skips_stopwords() {
    let s = TestServer::start();
    let c = s.client();
    c.remember(json!([
        {"namespace": ["k"], "text": "Alice painted a sunrise over the lake"},
        {"namespace": ["k"], "text": "what is it that they were doing there"},
        {"namespace": ["k"], "text": "Bob plays chess on Sundays"},
    ]));
    let ask = |q: &str| texts(&c.search(json!({"query": q, "mode": "keyword", "context_weight": 0})));
    assert_eq!(ask("paintings"), ["Alice painted a sunrise over the lake"], "porter stemming");
    assert_eq!(
        ask("What is the sunrise they were painting?"),
        ["Alice painted a sunrise over the lake"],
        "stopwords dropped"
    );
    assert!(ask("what is it").is_empty(), "a query of stopwords alone has nothing to search");
    let out = c.search(json!({"query": "what is it", "mode": "keyword"}));
    assert_eq!(out["nothing_searchable"], true, "{out}");
}

#[test]
fn neighbours_lend_context_within_scope_and_context_weight_turns_it_off() {
    let s = TestServer::start();
    let c = s.client();
    c.remember(json!([
        {"namespace": ["chat", "1"], "text": "Caroline: where did you go on vacation last month?", "metadata": {"speaker": "Caroline"}},
        {"namespace": ["chat", "1"], "text": "Melanie: two weeks in Lisbon with the kids", "metadata": {"speaker": "Melanie"}},
        {"namespace": ["chat", "2"], "text": "Melanie: the bakery opens at seven", "metadata": {"speaker": "Melanie"}},
    ]));
    // Only the question holds the word; the answer written after it comes with it.
    let out = c.search(json!({"query": "vacation", "mode": "keyword", "explain": true}));
    assert_eq!(
        texts(&out),
        ["Caroline: where did you go on vacation last month?", "Melanie: two weeks in Lisbon with the kids"]
    );
    let answer = &out["results"][1]["explain"];
    assert_eq!((answer["relevance"].as_f64(), answer["context"].as_f64()), (Some(0.0), Some(0.5)), "{out}");
    // Off on request; and a neighbour outside the search's scope lends nothing.
    let off = c.search(json!({"query": "vacation", "mode": "keyword", "context_weight": 0}));
    assert_eq!(texts(&off), ["Caroline: where did you go on vacation last month?"]);
    let scoped = c.search(json!({"query": "vacation", "mode": "keyword", "filter": {"metadata.speaker": "Caroline"}}));
    assert_eq!(texts(&scoped), ["Caroline: where did you go on vacation last month?"]);
    // Another namespace's memory is never a neighbour.
    let other = c.search(json!({"query": "Lisbon", "mode": "keyword", "namespace_prefix": ["chat"]}));
    assert!(!texts(&other).contains(&"Melanie: the bakery opens at seven".to_string()), "{other}");
}

#[test]
fn langgraph_store_query_is_semantic_and_honours_index_fields() {
    let s = with_model();
    let c = s.client();
    let put = |key: &str, value: Value, index: Value| {
        let r = c.put("/store/items", &json!({"namespace": ["docs"], "key": key, "value": value, "index": index}));
        assert_eq!(r.status, 204, "{}", r.text);
    };
    put("pet", json!({"note": "Max the golden retriever needs a walk", "owner": "zzz"}), json!(["note"]));
    put("money", json!({"note": "Budget review on Friday", "owner": "dog"}), json!(["note"]));
    put("hidden", json!({"note": "dog dog dog"}), json!(false));
    // put_item waits for the vector: the search right after finds by meaning.
    let r = c.post("/store/items/search", &json!({"namespace_prefix": ["docs"], "query": "puppy", "limit": 3}));
    assert_eq!(r.status, 200, "{}", r.text);
    let items = r.json()["items"].clone();
    assert_eq!(items[0]["key"], "pet", "{items}");
    assert!(items[0]["score"].is_number());
    // `owner` is not indexed: "dog" in it does not make "money" match by words,
    // and index=false items are never found by a query.
    let r = c.post("/store/items/search", &json!({"namespace_prefix": ["docs"], "query": "dog"}));
    let keys: Vec<Value> = r.json()["items"].as_array().unwrap().iter().map(|i| i["key"].clone()).collect();
    assert_eq!(keys[0], "pet", "{keys:?}");
    assert!(!keys.contains(&json!("hidden")), "{keys:?}");
}

#[test]
fn nothing_stays_unembedded_across_restarts_and_reembed() {
    use crate::support::{engram_bin, model_dir, Proc};
    let dir = tempfile::tempdir().unwrap();
    let model = model_dir();
    let local = [("ENGRAM_EMBEDDER_PROVIDER", "local"), ("ENGRAM_EMBEDDER_MODEL_DIR", model.to_str().unwrap())];
    // Written while the server has no embedder: durable, keyword-searchable, queued.
    {
        let p = Proc::serve(dir.path(), &[]);
        p.client().remember(json!(FACTS.iter().map(|t| json!({"namespace": ["r"], "text": t})).collect::<Vec<_>>()));
    }
    // The next server with a model embeds the backlog.
    {
        let p = Proc::serve(dir.path(), &local);
        let c = p.client();
        c.wait_embedded(json!([]));
        let out = c.search(json!({"query": "which dog do I own", "mode": "vector", "limit": 1}));
        assert_eq!(texts(&out), [FACTS[0]]);
    }
    // `engram reembed` drops the vectors and queues everything again.
    let out = std::process::Command::new(engram_bin())
        .args(["reembed", "--data-dir"])
        .arg(dir.path())
        .env("ENGRAM_EMBEDDER_PROVIDER", "none")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("5 memories queued"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = Proc::serve(dir.path(), &local);
    let c = p.client();
    c.wait_embedded(json!([]));
    let out = c.search(json!({"query": "who plays a string instrument", "mode": "vector", "limit": 1}));
    assert_eq!(texts(&out), [FACTS[3]]);
}

#[test]
fn restatements_merge_once_their_meaning_is_known_whatever_path_they_took() {
    let srv = with_model();
    let c = srv.client();
    let ns = json!(["users", "carol"]);
    // An API write, then the same fact said in a session in that namespace:
    // the distilled "user: I am allergic to shellfish." folds into the write.
    let api = c.remember(json!([{"namespace": ns, "text": "I am allergic to shellfish."}]))[0].clone();
    let turns: Vec<Value> = [
        "I am allergic to shellfish.",
        "My sister Maria lives in Porto and teaches chemistry.",
        "We adopted a greyhound called Pixel last week.",
        "I run the Berlin marathon every September.",
        "Thanks, that's all for today!",
    ]
    .iter()
    .map(|t| json!({"role": "user", "content": t}))
    .collect();
    let r = c.post("/v1/sessions/chat/turns", &json!({"namespace": ns, "turns": turns}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json()["distilled"].as_array().unwrap().contains(&json!(api)), "{}", r.text);
    // Two restatements written without waiting: merged when the queue embeds them.
    let later = c.remember(json!([{"namespace": ns, "text": "My favourite colour is blue."}]))[0].clone();
    let again =
        c.remember(json!([{"namespace": ns, "text": "My favorite colour is blue.", "tags": ["colours"]}]))[0].clone();
    assert_ne!(later, again, "different words: two memories until their vectors are known");
    c.wait_embedded(json!(["users"]));
    let page = c.get("/v1/memories?namespace=users/carol").json();
    let texts: Vec<&str> = page["memories"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts.iter().filter(|t| t.contains("shellfish")).count(), 1, "{texts:?}");
    assert_eq!(texts.iter().filter(|t| t.contains("blue")).count(), 1, "{texts:?}");
    // The folded id answers with the survivor.
    let m = c.get(&format!("/v1/memories/{again}")).json();
    assert_eq!((m["id"].as_str(), m["tags"].clone()), (Some(later.as_str()), json!(["colours"])));
}
