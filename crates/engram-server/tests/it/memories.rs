//! The memories API end to end over HTTP.

use engram_core::clock::ManualClock;
use serde_json::json;

use crate::support::{Opts, TestServer};

#[test]
fn create_get_patch_delete_round_trip() {
    let srv = TestServer::start();
    let c = srv.client();
    let r = c.post(
        "/v1/memories",
        &json!({"memories": [{"namespace": ["users", "alice"], "text": "Alice prefers green tea", "key": "drink",
            "tags": ["prefs"], "metadata": {"topic": "drinks"}, "data": {"drink": "tea"}, "tier": "semantic"}]}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let m = &r.json()["results"][0];
    assert_eq!(m["status"], "created");
    let id = m["memory"]["id"].as_str().unwrap().to_owned();
    assert_eq!(m["memory"]["version"], 1);
    assert_eq!(m["memory"]["tier"], "semantic");

    let got = c.get(&format!("/v1/memories/{id}"));
    assert_eq!(got.status, 200);
    assert_eq!(got.header("etag"), Some("\"1\""));
    assert_eq!(got.json()["text"], "Alice prefers green tea");
    assert_eq!(got.json()["data"]["drink"], "tea");

    // Same key in the same namespace: an update, not a second row.
    let again = c.post(
        "/v1/memories",
        &json!({"memories": [{"namespace": ["users", "alice"], "key": "drink", "text": "Alice prefers oolong"}]}),
    );
    assert_eq!(again.json()["results"][0]["status"], "updated");
    assert_eq!(again.json()["results"][0]["memory"]["id"], id.as_str());
    assert_eq!(again.json()["results"][0]["memory"]["version"], 2);

    // If-Match with a stale version is refused with 412; the current one works.
    let stale = crate::support::request(
        srv.addr,
        "PATCH",
        &format!("/v1/memories/{id}"),
        &[("If-Match", "\"1\"")],
        Some(r#"{"text":"stale write"}"#),
    );
    assert_eq!(stale.status, 412, "{}", stale.text);
    assert_eq!(stale.code(), "version_mismatch");
    let fresh = crate::support::request(
        srv.addr,
        "PATCH",
        &format!("/v1/memories/{id}"),
        &[("If-Match", "\"2\"")],
        Some(r#"{"text":"Alice prefers jasmine tea","salience":0.9,"data":null}"#),
    );
    assert_eq!(fresh.status, 200, "{}", fresh.text);
    assert_eq!(fresh.json()["version"], 3);
    assert_eq!(fresh.json()["salience"], 0.9);
    assert!(fresh.json().get("data").is_none(), "data: null clears it");
    assert_eq!(fresh.header("etag"), Some("\"3\""));

    // The keyword index follows the new text.
    let s = c.post("/v1/memories/search", &json!({"query": "jasmine", "mode": "keyword"}));
    assert_eq!(s.json()["results"].as_array().unwrap().len(), 1);
    let s = c.post("/v1/memories/search", &json!({"query": "oolong", "mode": "keyword"}));
    assert_eq!(s.json()["results"].as_array().unwrap().len(), 0);

    assert_eq!(c.delete(&format!("/v1/memories/{id}"), None).status, 204);
    assert_eq!(c.get(&format!("/v1/memories/{id}")).status, 404);
    assert_eq!(c.delete(&format!("/v1/memories/{id}"), None).status, 404);
}

#[test]
fn batch_is_one_transaction() {
    let srv = TestServer::start();
    let c = srv.client();
    // The second item is invalid: nothing of the batch may be stored.
    let r = c.post(
        "/v1/memories",
        &json!({"memories": [{"namespace": ["a"], "text": "first"}, {"namespace": ["a"], "text": ""}]}),
    );
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("memories[1].text"), "{}", r.text);
    assert_eq!(c.get("/v1/memories?namespace=a").json()["memories"].as_array().unwrap().len(), 0);

    let batch: Vec<_> =
        (0..1000).map(|i| json!({"namespace": ["bulk"], "text": format!("memory number {i}")})).collect();
    assert_eq!(c.remember(json!(batch)).len(), 1000);
    let too_many: Vec<_> = (0..1001).map(|i| json!({"namespace": ["bulk"], "text": format!("m {i}")})).collect();
    let r = c.post("/v1/memories", &json!({ "memories": too_many }));
    assert_eq!(r.status, 400);
    assert!(r.text.contains("1 to 1000"), "{}", r.text);
}

#[test]
fn cursor_pagination_is_stable_under_inserts() {
    let srv = TestServer::start();
    let c = srv.client();
    let batch: Vec<_> = (0..25).map(|i| json!({"namespace": ["p", "q"], "text": format!("item {i}")})).collect();
    let ids = c.remember(json!(batch));
    c.remember(json!([{"namespace": ["other"], "text": "elsewhere"}]));
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = c.get(&format!("/v1/memories?namespace=p&limit=10&cursor={cursor}")).json();
        for m in page["memories"].as_array().unwrap() {
            seen.push(m["id"].as_str().unwrap().to_owned());
        }
        // A write during paging must not shift or repeat what is still to come.
        if seen.len() == 10 {
            c.remember(json!([{"namespace": ["p", "q"], "text": "late arrival"}]));
        }
        match page["next_cursor"].as_str() {
            Some(n) => cursor = n.to_owned(),
            None => break,
        }
    }
    assert_eq!(&seen[..25], &ids[..], "pages return every memory once, in creation order");
    assert_eq!(seen.len(), 26, "the late arrival comes last");
    let r = c.get("/v1/memories?cursor=not-a-cursor");
    assert_eq!(r.status, 400);
}

#[test]
fn expired_memories_are_never_returned_and_get_swept() {
    let clock = ManualClock::starting_now();
    let srv = TestServer::start_with(Opts { clock: Some(clock.clone()), ..Default::default() });
    let c = srv.client();
    let ids = c.remember(json!([
        {"namespace": ["t"], "text": "short lived fact", "ttl_seconds": 30},
        {"namespace": ["t"], "text": "pinned fact survives", "ttl_seconds": 30, "pinned": true},
        {"namespace": ["t"], "text": "long lived fact", "ttl_seconds": 3600}
    ]));
    assert_eq!(c.get(&format!("/v1/memories/{}", ids[0])).status, 200);
    clock.advance(30_000);
    assert_eq!(c.get(&format!("/v1/memories/{}", ids[0])).status, 404);
    assert_eq!(c.get(&format!("/v1/memories/{}", ids[1])).status, 200);
    let s = c.post("/v1/memories/search", &json!({"query": "fact"})).json();
    let texts: Vec<_> =
        s["results"].as_array().unwrap().iter().map(|r| r["memory"]["text"].as_str().unwrap().to_owned()).collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(!texts.iter().any(|t| t.contains("short")));
    let listed = c.get("/v1/memories?namespace=t").json();
    assert_eq!(listed["memories"].as_array().unwrap().len(), 2);
    // The sweep (the job's step, run here) deletes the row itself: checked in
    // the database, not through the API.
    let count = || srv.count_memories();
    assert_eq!(count(), 3);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    assert_eq!(runtime.block_on(srv.service.sweep_expired(100)).unwrap(), 1);
    assert_eq!(count(), 2);
}

#[test]
fn keyword_search_treats_any_text_literally() {
    let srv = TestServer::start();
    let c = srv.client();
    c.remember(json!([
        {"namespace": ["s"], "text": "The meeting is NEAR the station (platform 2)"},
        {"namespace": ["s"], "text": "Café au lait in 東京 costs ¥500"},
        {"namespace": ["s"], "text": "key:value pairs and a-b-c dashes"}
    ]));
    let hostile = [
        "\"",
        "\"\"",
        "(",
        ")",
        "*",
        "NEAR(",
        "NEAR(a b, 3)",
        "a AND",
        "OR",
        "NOT",
        "-",
        "^",
        ":",
        "key:value",
        "\u{0}",
        "'; DROP TABLE memories; --",
        "col:term",
        "{a b}",
        "a*b*",
        "東京",
        "café",
        "😀",
        "   ",
        "",
        "\\",
        "%",
        "_",
        "[",
        "]",
        "a + b",
        "AND OR NOT NEAR",
    ];
    for q in hostile {
        let r = c.post("/v1/memories/search", &json!({"query": q, "mode": "keyword"}));
        assert_eq!(r.status, 200, "query {q:?}: {}", r.text);
    }
    let hits = |q: &str| {
        c.post("/v1/memories/search", &json!({"query": q, "mode": "keyword"})).json()["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["memory"]["text"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert!(hits("NEAR(")[0].contains("NEAR the station"));
    assert!(hits("東京")[0].contains("東京"));
    assert!(hits("cafe")[0].contains("Café"), "diacritics fold");
    assert!(hits("key:value")[0].contains("key:value"));
    assert!(hits("station platform")[0].contains("station"));
    assert_eq!(hits("zebra").len(), 0);
    // Search never leaves its namespace prefix.
    let r = c.post("/v1/memories/search", &json!({"query": "station", "namespace_prefix": ["other"]}));
    assert_eq!(r.json()["results"].as_array().unwrap().len(), 0);
}

#[test]
fn search_filters_compile_to_correct_sql() {
    let srv = TestServer::start();
    let c = srv.client();
    c.remember(json!([
        {"namespace": ["f"], "text": "one", "tags": ["red", "big"], "metadata": {"n": 1, "kind": "a", "flag": true}, "salience": 0.2},
        {"namespace": ["f"], "text": "two", "tags": ["red"], "metadata": {"n": 2, "kind": "b", "flag": false}, "salience": 0.9, "tier": "semantic"},
        {"namespace": ["f"], "text": "three", "tags": [], "metadata": {"n": 3, "list": ["x", "y"]}, "key": "k3"}
    ]));
    let texts = |filter: serde_json::Value| {
        let r = c.post("/v1/memories/search", &json!({"filter": filter, "limit": 100}));
        assert_eq!(r.status, 200, "{filter}: {}", r.text);
        let mut v: Vec<String> = r.json()["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["memory"]["text"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v.join(",")
    };
    let cases = [
        (json!({"metadata.n": 2}), "two"),
        (json!({"metadata.n": {"$gte": 2}}), "three,two"),
        (json!({"metadata.n": {"$gt": 1, "$lt": 3}}), "two"),
        (json!({"metadata.kind": {"$ne": "a"}}), "three,two"),
        (json!({"metadata.kind": {"$in": ["a", "b"]}}), "one,two"),
        (json!({"metadata.kind": {"$nin": ["a"]}}), "three,two"),
        (json!({"metadata.kind": {"$exists": false}}), "three"),
        (json!({"metadata.kind": null}), "three"),
        (json!({"metadata.flag": true}), "one"),
        (json!({"metadata.flag": false}), "two"),
        (json!({"metadata.list": "y"}), "three"),
        (json!({"metadata.list": {"$all": ["x", "y"]}}), "three"),
        (json!({"metadata.n": "2"}), ""),
        (json!({"tags": "red"}), "one,two"),
        (json!({"tags": {"$all": ["red", "big"]}}), "one"),
        (json!({"tags": {"$exists": false}}), "three"),
        (json!({"tier": "semantic"}), "two"),
        (json!({"tier": {"$ne": "semantic"}}), "one,three"),
        (json!({"key": {"$exists": true}}), "three"),
        (json!({"key": {"$ne": "k3"}}), "one,two"),
        (json!({"salience": {"$gt": 0.5}}), "two"),
        (json!({"$or": [{"metadata.n": 1}, {"metadata.n": 3}]}), "one,three"),
        (json!({"$not": {"tags": "red"}}), "three"),
        (json!({"$and": [{"tags": "red"}, {"$not": {"metadata.kind": "b"}}]}), "one"),
        (json!({"created_at": {"$gt": "2000-01-01T00:00:00Z"}}), "one,three,two"),
        (json!({"updated_at": {"$lt": "2000-01-01"}}), ""),
    ];
    for (filter, want) in cases {
        assert_eq!(texts(filter.clone()), want, "filter {filter}");
    }
    let r = c.post("/v1/memories/search", &json!({"filter": {"metadata.n": {"$regex": "1"}}}));
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "invalid_filter");
    assert!(r.text.contains("$regex"));
}

#[test]
fn cite_raises_salience_after_the_flush() {
    let srv = TestServer::start();
    let c = srv.client();
    let id = c.remember(json!([{"namespace": ["u"], "text": "Ana likes figs"}]))[0].clone();
    let r = c.post(&format!("/v1/memories/{id}/cite"), &json!({}));
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.json(), json!({"id": id, "pending": 1}));
    assert_eq!(c.post("/v1/memories/0190a0a0-0000-7000-8000-000000000000/cite", &json!({})).status, 404);
    assert_eq!(c.post("/v1/memories/nope/cite", &json!({})).status, 404);
    // The salience job's step (every second in a server) writes them.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(srv.service.flush_citations()).unwrap();
    let s = c.get(&format!("/v1/memories/{id}")).json()["salience"].as_f64().unwrap();
    assert!((s - 0.6).abs() < 1e-4, "0.5 raised a fifth of the way to 1 (less a moment's decay): {s}");
}

#[test]
fn routes_without_a_body_keep_the_connection_usable() {
    let srv = TestServer::start();
    let c = srv.client();
    let id = c.remember(json!([{"namespace": ["u"], "text": "Ana likes figs"}]))[0].clone();
    c.post("/v1/sessions/s/turns", &json!({"turns": [{"role": "user", "content": "hello"}]}));
    // A body the handler has no use for, arriving just after the headers (as
    // from a client that writes them separately), then a second request on
    // the same connection: both must be answered. hyper closes a keep-alive
    // connection whose request body the handler left unread.
    for first in [format!("POST /v1/memories/{id}/cite"), "POST /v1/sessions/s/distill".to_owned()] {
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect(srv.addr).unwrap();
        conn.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        write!(conn, "{first} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n")
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let _ = conn.write_all(b"{}GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut answer = String::new();
        let _ = conn.read_to_string(&mut answer);
        assert!(answer.contains("\"status\":\"ok\""), "{first}: the second request went unanswered: {answer}");
    }
    // A real body is refused, not ignored.
    let r = c.post(&format!("/v1/memories/{id}/cite"), &json!({"times": 5}));
    assert_eq!((r.status, r.code()), (400, "invalid_input".to_string()), "{}", r.text);
}

#[test]
fn citations_are_written_at_shutdown() {
    let mut srv = TestServer::start();
    let c = srv.client();
    let id = c.remember(json!([{"namespace": ["u"], "text": "Ana likes figs"}]))[0].clone();
    assert_eq!(c.post(&format!("/v1/memories/{id}/cite"), &json!({})).status, 202);
    // Stopped at once, before the salience job's next tick (every second).
    srv.stop();
    let salience = srv.salience_of(&id);
    assert!((salience - 0.6).abs() < 1e-4, "the citation was lost at shutdown: salience {salience}");
}
