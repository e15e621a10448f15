//! The audit log: every change is journaled with who made it, the agent and
//! the request id, never with its text; `engram audit verify` passes an
//! intact journal and names each altered, reordered, removed or cut-off
//! entry; `engram audit export` writes it as JSON lines. Both backends.

use serde_json::{json, Value};

use crate::support::{request, Opts, Resp, TestServer};

fn call(srv: &TestServer, method: &str, path: &str, request_id: &str, body: Option<Value>) -> Resp {
    let auth = format!("Bearer {}", srv.keys[0]);
    let headers = [("authorization", auth.as_str()), ("x-request-id", request_id), ("x-agent-id", "planner")];
    let body = body.map(|b| b.to_string());
    request(srv.addr, method, path, &headers, body.as_deref())
}

fn export(srv: &TestServer) -> Vec<Value> {
    let out = srv.cli(&["audit", "export"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// `(succeeded, stdout, stderr)` of `engram audit verify`.
fn verify(srv: &TestServer) -> (bool, String, String) {
    let out = srv.cli(&["audit", "verify"]);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

fn sql(srv: &TestServer, statement: &str) -> Option<String> {
    srv.sql(statement)
}

#[test]
fn every_change_is_journaled_and_verify_finds_each_kind_of_tampering() {
    let srv = TestServer::start_with(Opts {
        auth_required: true,
        keys: vec![("t1", "read,write,admin")],
        ..Default::default()
    });
    let fig = json!({"memories": [{"namespace": ["notes"], "text": "Ana likes figs"}]});
    let r = call(&srv, "POST", "/v1/memories", "req-create", Some(fig.clone()));
    assert_eq!(r.status, 201, "{}", r.text);
    let ana = r.json()["results"][0]["memory"]["id"].as_str().unwrap().to_owned();
    let r = call(&srv, "POST", "/v1/memories", "req-again", Some(fig));
    assert_eq!(r.json()["results"][0]["status"], "merged", "{}", r.text);
    assert_eq!(
        call(&srv, "PATCH", &format!("/v1/memories/{ana}"), "req-patch", Some(json!({"tags": ["x"]}))).status,
        200
    );
    let tea = json!({"memories": [{"namespace": ["notes"], "text": "Bo likes tea"}]});
    let bo = call(&srv, "POST", "/v1/memories", "req-bo", Some(tea)).json()["results"][0]["memory"]["id"].clone();
    assert_eq!(call(&srv, "DELETE", &format!("/v1/memories/{}", bo.as_str().unwrap()), "req-del", None).status, 204);
    let item = json!({"namespace": ["docs"], "key": "k", "value": {"v": "secret plans"}});
    assert_eq!(call(&srv, "PUT", "/store/items", "req-put", Some(item)).status, 204);
    assert_eq!(
        call(&srv, "DELETE", "/store/items", "req-unput", Some(json!({"namespace": ["docs"], "key": "k"}))).status,
        204
    );
    let made = call(&srv, "POST", "/v1/admin/keys", "req-key", Some(json!({"name": "ci", "scopes": ["read"]})));
    let key_id = made.json()["key"]["id"].as_str().unwrap().to_owned();
    assert_eq!(call(&srv, "DELETE", &format!("/v1/admin/keys/{key_id}"), "req-revoke", None).status, 204);
    let turns = json!({"namespace": ["chats"], "turns": [{"role": "user", "content": "hello"}]});
    assert_eq!(call(&srv, "POST", "/v1/sessions/s1/turns", "req-turns", Some(turns)).status, 200);
    assert_eq!(call(&srv, "DELETE", "/v1/sessions/s1", "req-end", None).status, 204);

    // Every change is there, with who, which agent and which request.
    let rows = export(&srv);
    let mut seen = Vec::new();
    // (The test's own admin key was made at the command line.)
    for row in rows.iter().filter(|r| r["by"] != "cli") {
        for change in row["changes"].as_array().unwrap() {
            seen.push((
                row["request_id"].as_str().unwrap_or("").to_owned(),
                change["kind"].as_str().unwrap().to_owned(),
            ));
        }
        assert_eq!(row["tenant"], "t1");
        assert_eq!(row["agent_id"], "planner", "{row}");
        assert!(row["by"].as_str().unwrap().starts_with("key:"), "{row}");
    }
    for want in [
        ("req-create", "created"),
        ("req-again", "merged"),
        ("req-patch", "updated"),
        ("req-del", "deleted"),
        ("req-put", "created"),
        ("req-unput", "deleted"),
        ("req-key", "key_created"),
        ("req-revoke", "key_revoked"),
        ("req-end", "session_deleted"),
    ] {
        assert!(seen.contains(&(want.0.to_owned(), want.1.to_owned())), "{want:?} in {seen:?}");
    }
    let text = serde_json::to_string(&rows).unwrap();
    assert!(!text.contains("figs") && !text.contains("secret plans") && !text.contains("hello"), "no content: {text}");

    let (ok, heads, err) = verify(&srv);
    assert!(ok, "{err}");
    assert!(err.contains("intact"), "{err}");
    assert_eq!(heads.lines().count(), 4, "chains notes, docs, chats and the tenant's: {heads}");

    // Altered: one entry's content changed.
    let chain = "tenant_id = 't1' AND namespace = 'notes'";
    let original = sql(&srv, &format!("SELECT changes FROM changes WHERE {chain} AND seq = 1")).unwrap();
    let forged = original.replace("created", "deleted").replace('\'', "''");
    sql(&srv, &format!("UPDATE changes SET changes = '{forged}' WHERE {chain} AND seq = 1"));
    let (ok, _, err) = verify(&srv);
    assert!(!ok && err.contains("entry 1: its content does not match its hash"), "{err}");
    sql(&srv, &format!("UPDATE changes SET changes = '{}' WHERE {chain} AND seq = 1", original.replace('\'', "''")));
    assert!(verify(&srv).0, "restored");

    // Reordered: entries 2 and 3 swapped.
    let swap = |a: i64, b: i64| {
        sql(&srv, &format!("UPDATE changes SET seq = -1 WHERE {chain} AND seq = {a}"));
        sql(&srv, &format!("UPDATE changes SET seq = {a} WHERE {chain} AND seq = {b}"));
        sql(&srv, &format!("UPDATE changes SET seq = {b} WHERE {chain} AND seq = -1"));
    };
    swap(2, 3);
    let (ok, _, err) = verify(&srv);
    assert!(!ok && err.contains("entry 2") && err.contains("does not follow"), "{err}");
    swap(2, 3);
    assert!(verify(&srv).0, "restored");

    // Removed: an entry in the middle of a chain; cut: the last of another.
    sql(&srv, &format!("DELETE FROM changes WHERE {chain} AND seq = 2"));
    let docs = "tenant_id = 't1' AND namespace = 'docs'";
    let last = sql(&srv, &format!("SELECT MAX(seq) FROM changes WHERE {docs}")).unwrap();
    sql(&srv, &format!("DELETE FROM changes WHERE {docs} AND seq = {last}"));
    let (ok, _, err) = verify(&srv);
    assert!(!ok, "{err}");
    assert!(err.contains("\"notes\", entry 3: expected entry 2 here"), "{err}");
    assert!(err.contains("\"docs\"") && err.contains("cut off the end"), "{err}");
}
