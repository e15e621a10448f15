//! The LangGraph store routes over HTTP (the `langgraph-sdk` client itself is
//! driven in tests/compat; these check the wire details it relies on).

use engram_core::clock::ManualClock;
use serde_json::json;

use crate::support::{Opts, TestServer};

#[test]
fn put_get_search_delete_items() {
    let srv = TestServer::start();
    let c = srv.client();
    let r = c.put("/store/items", &json!({"namespace": ["docs", "u1"], "key": "a", "value": {"title": "Green tea notes", "author": "Ann", "n": 3}}));
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(r.text, "");
    c.put("/store/items", &json!({"namespace": ["docs", "u2"], "key": "b", "value": {"title": "Coffee notes", "author": "Bo", "n": 5}, "index": ["author"]}));
    c.put("/store/items", &json!({"namespace": ["docs", "u2"], "key": "c", "value": {"title": "Hidden tea", "author": "Cy"}, "index": false}));

    let item = c.get("/store/items?namespace=docs.u1&key=a").json();
    assert_eq!(item["namespace"], json!(["docs", "u1"]));
    assert_eq!(item["key"], "a");
    assert_eq!(item["value"]["title"], "Green tea notes");
    assert!(item["created_at"].as_str().unwrap().ends_with('Z'));
    let missing = c.get("/store/items?namespace=docs.u1&key=zzz");
    assert_eq!(missing.status, 200);
    assert_eq!(missing.text, "null");

    let found =
        c.post("/store/items/search", &json!({"namespace_prefix": ["docs"], "filter": {"n": {"$gt": 4}}})).json();
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    assert_eq!(found["items"][0]["key"], "b");
    // `index` decides what is searchable: "tea" is in c's value but c is not indexed;
    // b is indexed on author only.
    let q = c.post("/store/items/search", &json!({"namespace_prefix": ["docs"], "query": "tea"})).json();
    let keys: Vec<_> = q["items"].as_array().unwrap().iter().map(|i| i["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["a"]);
    assert!(q["items"][0]["score"].as_f64().is_some());
    let q = c.post("/store/items/search", &json!({"namespace_prefix": ["docs"], "query": "coffee"})).json();
    assert_eq!(q["items"].as_array().unwrap().len(), 0);
    let q = c.post("/store/items/search", &json!({"namespace_prefix": ["docs"], "query": "Bo"})).json();
    assert_eq!(q["items"][0]["key"], "b");

    let page = c.post("/store/items/search", &json!({"namespace_prefix": ["docs"], "limit": 2, "offset": 2})).json();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);

    let ns = c.post("/store/namespaces", &json!({"prefix": ["docs"], "max_depth": 2})).json();
    assert_eq!(ns["namespaces"], json!([["docs", "u1"], ["docs", "u2"]]));
    let ns = c.post("/store/namespaces", &json!({"max_depth": 1})).json();
    assert_eq!(ns["namespaces"], json!([["docs"]]));
    let ns = c.post("/store/namespaces", &json!({"suffix": ["u2"]})).json();
    assert_eq!(ns["namespaces"], json!([["docs", "u2"]]));

    assert_eq!(c.delete("/store/items", Some(&json!({"namespace": ["docs", "u1"], "key": "a"}))).status, 204);
    assert_eq!(c.get("/store/items?namespace=docs.u1&key=a").text, "null");

    let bad = c.put("/store/items", &json!({"namespace": ["docs"], "key": "k", "value": {}, "index": "title"}));
    assert_eq!(bad.status, 400);
    assert!(bad.text.contains("index"));
    let bad = c.post("/store/items/search", &json!({"filter": {"$where": "x"}}));
    assert_eq!(bad.code(), "invalid_filter");
}

#[test]
fn item_ttl_expires_and_reads_refresh_it() {
    let clock = ManualClock::starting_now();
    let srv = TestServer::start_with(Opts { clock: Some(clock.clone()), ..Default::default() });
    let c = srv.client();
    // 0.02 minutes = 1.2 s: reads every 0.3 s keep one alive, the other expires.
    c.put("/store/items", &json!({"namespace": ["ttl"], "key": "kept", "value": {"v": 1}, "ttl": 0.02}));
    c.put("/store/items", &json!({"namespace": ["ttl"], "key": "dropped", "value": {"v": 2}, "ttl": 0.02}));
    for _ in 0..5 {
        clock.advance(300);
        assert_eq!(c.get("/store/items?namespace=ttl&key=kept").json()["value"]["v"], 1, "reading refreshes the TTL");
    }
    assert_eq!(c.get("/store/items?namespace=ttl&key=dropped&refresh_ttl=false").text, "null", "unread item expired");
    clock.advance(1_199);
    assert_eq!(c.get("/store/items?namespace=ttl&key=kept&refresh_ttl=false").json()["value"]["v"], 1);
    clock.advance(1);
    assert_eq!(c.get("/store/items?namespace=ttl&key=kept&refresh_ttl=false").text, "null");
}

#[test]
fn reindexing_an_item_moves_it_in_and_out_of_keyword_search() {
    let srv = TestServer::start();
    let c = srv.client();
    let put = |index: serde_json::Value| {
        let mut body = json!({"namespace": ["re"], "key": "k", "value": {"note": "walrus sightings"}});
        if !index.is_null() {
            body["index"] = index;
        }
        assert_eq!(c.put("/store/items", &body).status, 204);
    };
    let hits = || c.post("/store/items/search", &json!({"query": "walrus"})).json()["items"].as_array().unwrap().len();
    put(json!(false));
    assert_eq!(hits(), 0);
    put(serde_json::Value::Null);
    assert_eq!(hits(), 1);
    put(json!(false));
    assert_eq!(hits(), 0);
    put(json!(["note"]));
    assert_eq!(hits(), 1);
    c.delete("/store/items", Some(&json!({"namespace": ["re"], "key": "k"})));
    assert_eq!(hits(), 0);
}
