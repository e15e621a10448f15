//! The admin HTTP API for keys: an admin key creates, lists and revokes its
//! own tenant's keys — never another tenant's — and a revoked key stops
//! working at once.

use serde_json::json;

use crate::support::{Client, Opts, TestServer};

#[test]
fn an_admin_key_manages_its_own_tenants_keys_only() {
    let srv = TestServer::start_with(Opts {
        auth_required: true,
        keys: vec![("t1", "read,write,admin"), ("t2", "read,write,admin"), ("t1", "read,write")],
        ..Default::default()
    });
    let (admin1, admin2, writer1) = (srv.client_with_key(0), srv.client_with_key(1), srv.client_with_key(2));

    let r = admin1.post("/v1/admin/keys", &json!({"name": "reader for the nightly job", "scopes": ["read"]}));
    assert_eq!(r.status, 201, "{}", r.text);
    let made = r.json();
    let (id, secret) = (made["key"]["id"].as_str().unwrap().to_owned(), made["secret"].as_str().unwrap().to_owned());
    assert_eq!((made["key"]["tenant"].as_str(), made["key"]["scopes"].as_str()), (Some("t1"), Some("read")));
    let reader = Client { addr: srv.addr, key: Some(secret.clone()) };
    assert_eq!(reader.get("/v1/memories?namespace=a").status, 200);
    let w = reader.post("/v1/memories", &json!({"memories": [{"namespace": ["a"], "text": "x"}]}));
    assert_eq!((w.status, w.code()), (403, "forbidden".to_string()), "read scope only");

    // Listing shows the tenant's keys, never a secret or a hash.
    let listed = admin1.get("/v1/admin/keys");
    assert_eq!(listed.status, 200);
    let keys = listed.json()["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert!(keys.iter().all(|k| k["tenant"] == "t1"));
    assert!(!listed.text.contains(&secret) && !listed.text.contains("hash"), "{}", listed.text);

    // Another tenant's admin neither sees nor revokes t1's keys.
    assert!(admin2.get("/v1/admin/keys").json()["keys"].as_array().unwrap().iter().all(|k| k["tenant"] == "t2"));
    let r = admin2.delete(&format!("/v1/admin/keys/{id}"), None);
    assert_eq!((r.status, r.code()), (404, "not_found".to_string()));
    assert_eq!(reader.get("/v1/memories?namespace=a").status, 200, "still valid");

    // Without the admin scope: 403 on every admin route.
    assert_eq!(writer1.get("/v1/admin/keys").status, 403);
    assert_eq!(writer1.post("/v1/admin/keys", &json!({"name": "x", "scopes": ["read"]})).status, 403);
    assert_eq!(writer1.delete(&format!("/v1/admin/keys/{id}"), None).status, 403);

    // Bad input names what is wrong.
    for bad in [
        json!({"name": "x", "scopes": []}),
        json!({"name": "x", "scopes": ["root"]}),
        json!({"name": "", "scopes": ["read"]}),
        json!({"name": "a\u{0}b", "scopes": ["read"]}),
        json!({"name": "x".repeat(129), "scopes": ["read"]}),
        json!({"name": "x", "scopes": ["read"], "tenant": "t2"}),
    ] {
        let r = admin1.post("/v1/admin/keys", &bad);
        assert_eq!((r.status, r.code()), (400, "invalid_input".to_string()), "{bad}: {}", r.text);
    }

    // Revoked: refused at once, and a second revoke is a 404.
    assert_eq!(admin1.delete(&format!("/v1/admin/keys/{id}"), None).status, 204);
    let r = reader.get("/v1/memories?namespace=a");
    assert_eq!((r.status, r.code()), (401, "unauthenticated".to_string()));
    assert_eq!(admin1.delete(&format!("/v1/admin/keys/{id}"), None).status, 404);
    let after = admin1.get("/v1/admin/keys").json();
    let revoked = after["keys"].as_array().unwrap().iter().find(|k| k["id"] == id.as_str()).unwrap().clone();
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
}

#[test]
fn the_first_key_can_be_made_over_http_in_dev_mode() {
    let srv = TestServer::start();
    let dev = srv.client();
    let r = dev.post("/v1/admin/keys", &json!({"name": "first", "scopes": ["read", "write", "admin"]}));
    assert_eq!(r.status, 201, "{}", r.text);
    let secret = r.json()["secret"].as_str().unwrap().to_owned();
    // Once a key exists, keys are required.
    assert_eq!(dev.get("/v1/memories?namespace=a").status, 401);
    let keyed = Client { addr: srv.addr, key: Some(secret) };
    assert_eq!(keyed.get("/v1/memories?namespace=a").status, 200);
    // Revoking the only key does not bring dev mode back.
    let id = keyed.get("/v1/admin/keys").json()["keys"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(keyed.delete(&format!("/v1/admin/keys/{id}"), None).status, 204);
    assert_eq!(dev.get("/v1/memories?namespace=a").status, 401, "keys stay required");
    assert_eq!(dev.post("/v1/admin/keys", &json!({"name": "again", "scopes": ["admin"]})).status, 401);
}

#[test]
fn metrics_need_an_admin_key_once_keys_exist() {
    let srv = TestServer::start_with(Opts {
        auth_required: true,
        keys: vec![("t1", "read,write"), ("t1", "admin")],
        ..Default::default()
    });
    let anonymous = srv.client().get("/metrics");
    assert_eq!((anonymous.status, anonymous.code()), (401, "unauthenticated".to_string()));
    assert_eq!(
        srv.client_with_key(0).get("/metrics").status,
        403,
        "a tenant's agents do not read the server's metrics"
    );
    let m = srv.client_with_key(1).get("/metrics");
    assert_eq!(m.status, 200);
    assert!(m.text.contains("engram_http_requests_total"), "{}", m.text);
}
