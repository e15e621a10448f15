//! Tenant isolation and scopes: two tenants writing the same namespace and key
//! never see each other, on every endpoint; a read key cannot write.

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
