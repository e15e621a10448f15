//! Keys limited to namespace prefixes, over HTTP: made through the admin
//! API, such a key reads, searches, recalls and writes only under its
//! prefixes on every endpoint; a limited admin makes and manages keys only
//! within its own.

use serde_json::{json, Value};

use crate::support::{Client, Opts, TestServer};

fn keyed(srv: &TestServer, secret: &str) -> Client {
    Client { addr: srv.addr, key: Some(secret.to_owned()) }
}

/// Makes a key through the admin API: `(id, secret)`.
fn make_key(admin: &Client, body: Value) -> (String, String) {
    let r = admin.post("/v1/admin/keys", &body);
    assert_eq!(r.status, 201, "{body}: {}", r.text);
    let made = r.json();
    (made["key"]["id"].as_str().unwrap().to_owned(), made["secret"].as_str().unwrap().to_owned())
}

fn namespaces_of(results: &Value, path: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| path.iter().fold(r, |v, p| &v[*p]))
        .map(|ns| ns.as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect::<Vec<_>>().join("/"))
        .collect();
    out.sort();
    out.dedup();
    out
}

#[test]
fn a_key_limited_to_namespaces_reaches_nothing_else_on_any_endpoint() {
    let srv = TestServer::start_with(Opts {
        auth_required: true,
        keys: vec![("t1", "read,write,admin")],
        ..Default::default()
    });
    let admin = srv.client_with_key(0);
    let body = json!({"name": "alice's agent", "scopes": ["read", "write"], "namespaces": ["users/alice", "shared"]});
    let (_, secret) = make_key(&admin, body);
    let listed = admin.get("/v1/admin/keys").json();
    let alice_key = listed["keys"].as_array().unwrap().iter().find(|k| k["name"] == "alice's agent").unwrap().clone();
    assert_eq!(alice_key["namespaces"], json!(["shared", "users/alice"]), "{alice_key}");
    let alice = keyed(&srv, &secret);

    let bob_id = admin.remember(json!([{"namespace": ["users", "bob"], "text": "Bob grows tomatoes"}]))[0].clone();
    admin.remember(json!([{"namespace": ["shared"], "text": "The garden grows tomatoes"}]));
    assert_eq!(
        admin
            .put("/store/items", &json!({"namespace": ["users", "bob"], "key": "k", "value": {"v": "tomatoes"}}))
            .status,
        204
    );
    let s = admin.post(
        "/v1/sessions/chat-bob/turns",
        &json!({"namespace": ["users", "bob"], "turns": [{"role": "user", "content": "I grow tomatoes"}]}),
    );
    assert_eq!(s.status, 200, "{}", s.text);

    // Writes inside work; outside are 403 and write nothing.
    let mine = alice.post(
        "/v1/memories",
        &json!({"memories": [{"namespace": ["users", "alice"], "text": "Alice grows tomatoes"}]}),
    );
    assert_eq!(mine.status, 201, "{}", mine.text);
    let forbidden = |r: crate::support::Resp, what: &str| {
        assert_eq!((r.status, r.code()), (403, "forbidden".to_string()), "{what}: {}", r.text);
    };
    forbidden(
        alice.post("/v1/memories", &json!({"memories": [{"namespace": ["users", "bob"], "text": "x"}]})),
        "create",
    );
    forbidden(
        alice.put("/store/items", &json!({"namespace": ["users", "bob"], "key": "k", "value": {"v": 1}})),
        "put item",
    );
    forbidden(alice.get("/store/items?namespace=users.bob&key=k"), "get item");
    forbidden(alice.delete("/store/items", Some(&json!({"namespace": ["users", "bob"], "key": "k"}))), "delete item");
    forbidden(alice.get("/v1/memories?namespace=users/bob"), "list");
    forbidden(
        alice.post("/v1/memories/search", &json!({"query": "tomatoes", "namespace_prefix": ["users", "bob"]})),
        "search",
    );

    // By id or session id, what lies outside does not exist.
    let not_found = |r: crate::support::Resp, what: &str| {
        assert_eq!((r.status, r.code()), (404, "not_found".to_string()), "{what}: {}", r.text);
    };
    not_found(alice.get(&format!("/v1/memories/{bob_id}")), "get");
    not_found(alice.patch(&format!("/v1/memories/{bob_id}"), &json!({"pinned": true})), "patch");
    not_found(alice.delete(&format!("/v1/memories/{bob_id}"), None), "delete");
    not_found(alice.post(&format!("/v1/memories/{bob_id}/cite"), &json!({})), "cite");
    not_found(alice.get("/v1/sessions/chat-bob"), "get session");
    let r = alice.post("/v1/sessions/chat-bob/turns", &json!({"turns": [{"role": "user", "content": "x"}]}));
    assert!(!r.text.contains("users/bob"), "the session's namespace is not told: {}", r.text);
    not_found(r, "turns");
    not_found(alice.post("/v1/sessions/chat-bob/distill", &json!({})), "distill");
    not_found(alice.delete("/v1/sessions/chat-bob", None), "delete session");

    // Searches, listings and recall see only the key's namespaces.
    let everything = alice.post("/v1/memories/search", &json!({"query": "tomatoes", "limit": 50})).json();
    assert_eq!(namespaces_of(&everything["results"], &["memory", "namespace"]), ["shared", "users/alice"]);
    let listed = alice.get("/v1/memories?limit=100").json();
    assert_eq!(namespaces_of(&listed["memories"], &["namespace"]), ["shared", "users/alice"]);
    let items = alice.post("/store/items/search", &json!({"query": "tomatoes"})).json();
    assert_eq!(items["items"], json!([]), "bob's item is not alice's: {items}");
    let spaces = alice.post("/store/namespaces", &json!({})).json();
    assert_eq!(spaces["namespaces"], json!([]), "{spaces}");
    let recalled = alice.post("/v1/recall", &json!({"query": "who grows tomatoes?", "session_id": "chat-bob"})).json();
    let texts: Vec<&str> =
        recalled["results"].as_array().unwrap().iter().map(|r| r["text"].as_str().unwrap()).collect();
    assert!(!texts.is_empty() && texts.iter().all(|t| !t.contains("Bob") && !t.contains("I grow")), "{texts:?}");

    // Nothing of bob's was changed.
    let bob = admin.get(&format!("/v1/memories/{bob_id}")).json();
    assert_eq!((bob["version"].as_i64(), bob["pinned"].as_bool()), (Some(1), Some(false)));
    assert_eq!(admin.get("/v1/sessions/chat-bob").json()["turn_count"], 1);
    assert_eq!(admin.get("/store/items?namespace=users.bob&key=k").status, 200);
}

#[test]
fn a_limited_admin_makes_and_manages_keys_only_within_its_namespaces() {
    let srv = TestServer::start_with(Opts {
        auth_required: true,
        keys: vec![("t1", "read,write,admin")],
        ..Default::default()
    });
    let root = srv.client_with_key(0);
    let (_, secret) = make_key(&root, json!({"name": "team", "scopes": ["admin"], "namespaces": ["teams/a"]}));
    let team = keyed(&srv, &secret);
    let (other_id, _) = make_key(&root, json!({"name": "other", "scopes": ["read"], "namespaces": ["teams/b"]}));

    // No key it makes grants more than it holds.
    for wider in [json!(["teams"]), json!(["teams/a", "teams/b"]), json!(["teams/b"])] {
        let r = team.post("/v1/admin/keys", &json!({"name": "x", "scopes": ["read"], "namespaces": wider}));
        assert_eq!((r.status, r.code()), (403, "forbidden".to_string()), "{wider}: {}", r.text);
    }
    let r = team.post("/v1/admin/keys", &json!({"name": "inherits", "scopes": ["read"]}));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["key"]["namespaces"], json!(["teams/a"]), "without namespaces, the maker's own");
    let (narrow_id, _) = make_key(&team, json!({"name": "narrow", "scopes": ["read"], "namespaces": ["teams/a/x"]}));

    // It sees and revokes only keys within its namespaces.
    let names: Vec<String> = team.get("/v1/admin/keys").json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["team", "inherits", "narrow"]);
    assert_eq!(team.delete(&format!("/v1/admin/keys/{other_id}"), None).status, 404);
    let root_id = root.get("/v1/admin/keys").json()["keys"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(team.delete(&format!("/v1/admin/keys/{root_id}"), None).status, 404, "not the unlimited key");
    assert_eq!(team.delete(&format!("/v1/admin/keys/{narrow_id}"), None).status, 204);
    assert_eq!(root.get("/v1/memories?limit=1").status, 200, "the root key still works");
    assert_eq!(team.get("/metrics").status, 403, "server-wide figures are not for a limited admin");
    assert_eq!(root.get("/metrics").status, 200);

    // Bad namespaces are 400s naming the field.
    for bad in [json!([]), json!([""]), json!(["a//b"]), json!(["../x"]), json!("teams/a")] {
        let r = root.post("/v1/admin/keys", &json!({"name": "x", "scopes": ["read"], "namespaces": bad}));
        assert_eq!((r.status, r.code()), (400, "invalid_input".to_string()), "{bad}: {}", r.text);
        assert!(r.text.contains("namespaces"), "{bad}: {}", r.text);
    }
}
