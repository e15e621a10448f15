//! Tenant isolation and scopes: two tenants writing the same namespace and key
//! never see each other, on every endpoint; a read key cannot write; and a
//! hundred tenants racing on the same names over real sockets never meet.

use serde_json::json;

use crate::support::{Opts, TestServer};

#[test]
fn tenants_never_see_each_other() {
    let srv = TestServer::start_with(Opts {
        keys: vec![("acme", "read,write"), ("globex", "read,write")],
        ..Default::default()
    });
    let (a, b) = (srv.client_with_key(0), srv.client_with_key(1));

    let a_id = &a.remember(
        json!([{"namespace": ["shared", "ns"], "key": "k", "text": "acme secret plan", "metadata": {"owner": "acme"}}]),
    )[0];
    let b_id = &b.remember(json!([{"namespace": ["shared", "ns"], "key": "k", "text": "globex secret plan", "metadata": {"owner": "globex"}}]))[0];
    assert_ne!(a_id, b_id, "same namespace and key in two tenants are two memories");

    // get / patch / delete by id across tenants: 404, and nothing changes.
    assert_eq!(b.get(&format!("/v1/memories/{a_id}")).status, 404);
    assert_eq!(b.patch(&format!("/v1/memories/{a_id}"), &json!({"text": "hijacked"})).status, 404);
    assert_eq!(b.delete(&format!("/v1/memories/{a_id}"), None).status, 404);
    assert_eq!(a.get(&format!("/v1/memories/{a_id}")).json()["text"], "acme secret plan");

    // list, search (keyword and filter), LangGraph get/search/namespaces.
    for (me, other) in [(&a, "globex"), (&b, "acme")] {
        let listed = me.get("/v1/memories?namespace=shared").text;
        assert!(!listed.contains(other), "{listed}");
        let found = me.post("/v1/memories/search", &json!({"query": "secret plan"})).text;
        assert!(!found.contains(other), "{found}");
        let filtered = me.post("/v1/memories/search", &json!({"filter": {"metadata.owner": other}})).json();
        assert_eq!(filtered["results"].as_array().unwrap().len(), 0);
        let item = me.get("/store/items?namespace=shared.ns&key=k").json();
        assert!(!item["value"]["text"].as_str().unwrap().contains(other));
        let items = me.post("/store/items/search", &json!({"namespace_prefix": ["shared"]})).text;
        assert!(!items.contains(other), "{items}");
    }

    // LangGraph writes stay in their tenant too.
    assert_eq!(
        a.put("/store/items", &json!({"namespace": ["only", "acme"], "key": "x", "value": {"v": 1}})).status,
        204
    );
    let ns_b = b.post("/store/namespaces", &json!({})).json();
    assert!(!ns_b.to_string().contains("only"), "{ns_b}");
    assert_eq!(b.delete("/store/items", Some(&json!({"namespace": ["only", "acme"], "key": "x"}))).status, 204);
    assert_eq!(
        a.get("/store/items?namespace=only.acme&key=x").json()["value"]["v"],
        1,
        "b's delete must not touch a's item"
    );
}

#[test]
fn many_concurrent_tenants_stay_isolated() {
    let tenants: Vec<(&'static str, &'static str)> = vec![
        ("t0", "read,write"),
        ("t1", "read,write"),
        ("t2", "read,write"),
        ("t3", "read,write"),
        ("t4", "read,write"),
        ("t5", "read,write"),
    ];
    let srv = TestServer::start_with(Opts { keys: tenants.clone(), ..Default::default() });
    let handles: Vec<_> = (0..tenants.len())
        .map(|i| {
            let c = srv.client_with_key(i);
            std::thread::spawn(move || {
                for n in 0..30 {
                    c.remember(json!([{"namespace": ["common"], "key": format!("k{n}"), "text": format!("tenant {i} note {n}")}]));
                }
                c
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let c = h.join().unwrap();
        let page = c.get("/v1/memories?namespace=common&limit=1000").json();
        let mems = page["memories"].as_array().unwrap();
        assert_eq!(mems.len(), 30);
        assert!(mems.iter().all(|m| m["text"].as_str().unwrap().starts_with(&format!("tenant {i} "))));
    }
}

#[test]
fn keys_are_required_once_they_exist_and_scopes_are_enforced() {
    let srv =
        TestServer::start_with(Opts { keys: vec![("acme", "read"), ("acme", "read,write")], ..Default::default() });
    let reader = srv.client_with_key(0);
    let writer = srv.client_with_key(1);
    let anonymous = srv.client();
    let body = json!({"memories": [{"namespace": ["n"], "text": "hello"}]});

    let r = anonymous.post("/v1/memories", &body);
    assert_eq!(r.status, 401, "dev mode ends once a key exists");
    assert_eq!(r.code(), "unauthenticated");
    let bogus = crate::support::Client { addr: srv.addr, key: Some("egk_not_a_real_key".into()) };
    assert_eq!(bogus.get("/v1/memories").status, 401);

    let r = reader.post("/v1/memories", &body);
    assert_eq!(r.status, 403);
    assert_eq!(r.code(), "forbidden");
    assert_eq!(reader.put("/store/items", &json!({"namespace": ["n"], "key": "k", "value": {}})).status, 403);
    assert_eq!(reader.get("/v1/memories").status, 200);

    assert_eq!(writer.post("/v1/memories", &body).status, 201);
    // x-api-key (what langgraph-sdk sends) works like a bearer token.
    let r = crate::support::request(srv.addr, "GET", "/v1/memories?namespace=n", &[("x-api-key", &srv.keys[0])], None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["memories"].as_array().unwrap().len(), 1);
}

#[test]
fn required_auth_rejects_anonymous_callers_even_without_keys() {
    let srv = TestServer::start_with(Opts { auth_required: true, ..Default::default() });
    assert_eq!(srv.client().get("/v1/memories").status, 401);
    assert_eq!(srv.client().get("/healthz").status, 200, "probes need no key");
}

/// The first `tenantNNN` in `text` that is not `me`.
fn foreign<'a>(text: &'a str, me: &str) -> Option<&'a str> {
    text.match_indices("tenant")
        .map(|(i, _)| &text[i..(i + 9).min(text.len())])
        .find(|name| name.len() == 9 && name[6..].bytes().all(|b| b.is_ascii_digit()) && *name != me)
}

#[test]
fn a_hundred_tenants_racing_on_the_same_names_never_meet() {
    // Writers, readers, searchers, recallers and change subscribers of 100
    // tenants, all on the same namespace, item keys and session id.
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    const TENANTS: usize = 100;
    const ROUNDS: usize = 6;
    const PER_ROUND: usize = 6;
    let names: Vec<&'static str> =
        (0..TENANTS).map(|t| &*Box::leak(format!("tenant{t:03}").into_boxed_str())).collect();
    let srv = TestServer::start_with(Opts {
        auth_required: true,
        keys: names.iter().map(|n| (*n, "read,write")).collect(),
        ..Default::default()
    });
    let answered = AtomicUsize::new(0);
    let received = AtomicUsize::new(0);
    let leaks = Mutex::new(Vec::new());
    // Each tenant's subscriber to its items' changes, streamed while all race.
    let events = Mutex::new(vec![Vec::new(); TENANTS]);
    let started = std::time::Instant::now();
    std::thread::scope(|s| {
        for (t, me) in names.iter().enumerate() {
            let (srv, answered, received, leaks, events) = (&srv, &answered, &received, &leaks, &events);
            let mut sub = crate::events::subscribe(srv.addr, &srv.keys[t], "?namespace_prefix=shared");
            s.spawn(move || {
                for _ in 0..ROUNDS {
                    let e = crate::events::next_event(&mut sub);
                    received.fetch_add(1, Ordering::Relaxed);
                    events.lock().unwrap()[t].push(e);
                }
            });
            s.spawn(move || {
                let c = srv.client_with_key(t);
                for i in 0..ROUNDS {
                    // The same namespace, keys and session id in every tenant.
                    let item = json!({"namespace": ["shared"], "key": format!("k{i}"),
                                      "value": {"owner": me, "text": format!("{me} fact number {i}")}});
                    let turns = json!({"turns": [{"role": "user", "content": format!("{me} says hello {i}")}]});
                    let answers = [
                        c.put("/store/items", &item),
                        c.get(&format!("/store/items?namespace=shared&key=k{i}")),
                        c.get("/v1/memories?namespace=shared&limit=100"),
                        c.post("/v1/memories/search", &json!({"query": "fact number", "mode": "keyword", "limit": 50})),
                        c.post("/v1/sessions/s1/turns", &turns),
                        c.post("/v1/recall", &json!({"query": "fact number", "session_id": "s1"})),
                    ];
                    // The checks below have something to check: own data is there.
                    // (Recall is in the mix, but without a model it packs no
                    // long-term memories; its isolation is also a conformance body.)
                    for (what, r) in [("get", &answers[1]), ("list", &answers[2]), ("search", &answers[3])] {
                        assert!(r.text.contains(me), "{me}'s {what} finds its own writes: {}", r.text);
                    }
                    for r in answers {
                        assert!((200..300).contains(&r.status), "{me}: {} {}", r.status, r.text);
                        answered.fetch_add(1, Ordering::Relaxed);
                        if let Some(other) = foreign(&r.text, me) {
                            leaks.lock().unwrap().push(format!("{me} saw {other}: {}", r.text));
                        }
                    }
                }
            });
        }
    });
    assert_eq!(answered.load(Ordering::Relaxed), TENANTS * ROUNDS * PER_ROUND, "the load was generated");
    assert_eq!(received.load(Ordering::Relaxed), TENANTS * ROUNDS, "every subscriber heard every put");
    let took = started.elapsed();
    eprintln!(
        "race: {} requests and {} events for {TENANTS} tenants in {took:.2?} ({:.0} requests/s)",
        TENANTS * ROUNDS * PER_ROUND,
        TENANTS * ROUNDS,
        (TENANTS * ROUNDS * PER_ROUND) as f64 / took.as_secs_f64()
    );
    assert_eq!(leaks.lock().unwrap().as_slice(), &[] as &[String]);
    // No write lost or doubled: each tenant holds exactly its own items and
    // turns, and its subscriber heard of exactly its own items, once each.
    let events = events.into_inner().unwrap();
    for (t, me) in names.iter().enumerate() {
        let c = srv.client_with_key(t);
        let listed = c.get("/v1/memories?namespace=shared&limit=100").json();
        let mut keys: Vec<String> =
            listed["memories"].as_array().unwrap().iter().map(|m| m["key"].as_str().unwrap().to_owned()).collect();
        keys.sort();
        assert_eq!(keys, (0..ROUNDS).map(|i| format!("k{i}")).collect::<Vec<_>>(), "{me}");
        assert_eq!(c.get("/v1/sessions/s1").json()["turn_count"], ROUNDS, "{me}");
        let mut ids: Vec<&str> =
            listed["memories"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
        let mut heard: Vec<&str> = events[t].iter().map(|e| e["memory_id"].as_str().unwrap()).collect();
        let mut heard_keys: Vec<&str> = events[t].iter().map(|e| e["key"].as_str().unwrap()).collect();
        assert!(events[t].iter().all(|e| e["type"] == "created"), "{me}: {:?}", events[t]);
        ids.sort();
        heard.sort();
        heard_keys.sort();
        assert_eq!(heard, ids, "{me} heard of exactly its own items (no other tenant's, none twice)");
        assert_eq!(heard_keys, keys.iter().map(String::as_str).collect::<Vec<_>>(), "{me}");
    }
}

#[test]
fn every_write_records_who_made_it() {
    use crate::support::request;
    let srv = TestServer::start_with(Opts {
        auth_required: true,
        keys: vec![("t1", "read,write"), ("t1", "read,write")],
        ..Default::default()
    });
    let (ka, kb) = (srv.keys[0].clone(), srv.keys[1].clone());
    let (id_a, id_b) = (format!("key:{}", srv.key_ids[0]), format!("key:{}", srv.key_ids[1]));
    let send = |key: &str, agent: Option<&str>, method: &str, path: &str, body: serde_json::Value| {
        let auth = format!("Bearer {key}");
        let mut headers = vec![("authorization", auth.as_str())];
        if let Some(a) = agent {
            headers.push(("x-agent-id", a));
        }
        request(srv.addr, method, path, &headers, Some(&body.to_string()))
    };
    let r = send(
        &ka,
        Some("planner"),
        "POST",
        "/v1/memories",
        json!({"memories": [{"namespace": ["n"], "text": "the plan"}]}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let m = &r.json()["results"][0]["memory"];
    assert_eq!(m["source"], json!({"kind": "api", "by": id_a, "agent_id": "planner"}));
    let id = m["id"].as_str().unwrap().to_owned();
    // The latest write is recorded: another key patches it, naming no agent.
    let r = send(&kb, None, "PATCH", &format!("/v1/memories/{id}"), json!({"text": "the new plan"}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["source"], json!({"kind": "api", "by": id_b}));
    // LangGraph puts too.
    let r =
        send(&kb, Some("indexer"), "PUT", "/store/items", json!({"namespace": ["n"], "key": "k", "value": {"a": 1}}));
    assert!((200..300).contains(&r.status), "{}", r.text);
    let listed = srv.client_with_key(0).get("/v1/memories?namespace=n").json();
    let item = listed["memories"].as_array().unwrap().iter().find(|m| m["key"] == "k").unwrap().clone();
    assert_eq!(item["source"], json!({"kind": "store", "by": id_b, "agent_id": "indexer"}));
    // A malformed agent id is refused, and nothing is written.
    let r =
        send(&ka, Some("not an id!"), "POST", "/v1/memories", json!({"memories": [{"namespace": ["n"], "text": "x"}]}));
    assert_eq!((r.status, r.code()), (400, "invalid_input".to_string()), "{}", r.text);
    assert_eq!(srv.client_with_key(0).get("/v1/memories?namespace=n").json()["memories"].as_array().unwrap().len(), 2);
}
