//! Erasure with a receipt: `POST /v1/erase` removes everything under a
//! namespace prefix, or a session and what was distilled from it — and the
//! erased text is then found nowhere in the store's files. Both backends.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::support::{Client, Opts, TestServer};
use engram_server::config::MemorySection;

const GONE: &str = "zanzibarquokka";
const SESSION_WORD: &str = "mangosteenwhisper";

fn server() -> TestServer {
    let memory = MemorySection { wm_max_turns: 4, distill_every: 2, ..MemorySection::default() };
    TestServer::start_with(Opts {
        auth_required: true,
        keys: vec![("t1", "read,write,admin"), ("t2", "read,write"), ("t1", "read")],
        memory: Some(memory),
        ..Default::default()
    })
}

fn texts(c: &Client, query: &str) -> Vec<String> {
    let out = c.search(json!({"query": query, "mode": "keyword", "limit": 100}));
    out["results"].as_array().unwrap().iter().map(|h| h["memory"]["text"].as_str().unwrap().to_owned()).collect()
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes())) {
                out.push(p);
            }
        }
    }
    out
}

/// The directories holding the store's tables and indexes; `None` on
/// MongoDB, whose files are the server's own: it reuses and compacts them on
/// its own schedule, which engram cannot force (docs/mongodb.md). The API
/// checks of erasure run on every backend.
fn store_files(srv: &TestServer) -> Option<Vec<PathBuf>> {
    if srv.mongo_url.is_some() {
        eprintln!("skipped on MongoDB: the check of the store's files (the server's own; see docs/mongodb.md)");
        return None;
    }
    Some(match &srv.postgres_url {
        None => vec![srv.dir.path().to_path_buf()],
        Some(_) => {
            srv.sql("CHECKPOINT");
            let data = PathBuf::from(srv.sql("SHOW data_directory").unwrap());
            let db = srv.sql("SELECT oid FROM pg_database WHERE datname = current_database()").unwrap();
            vec![data.join("base").join(db)]
        }
    })
}

/// The store's files holding `needle` (`None`: see [`store_files`]).
fn holding(srv: &TestServer, needle: &str) -> Option<Vec<PathBuf>> {
    store_files(srv).map(|dirs| dirs.iter().flat_map(|d| files_holding(d, needle)).collect())
}

#[test]
fn erasing_a_prefix_removes_everything_under_it_with_a_receipt_and_no_trace() {
    let srv = server();
    let (admin, other_tenant, reader) = (srv.client_with_key(0), srv.client_with_key(1), srv.client_with_key(2));
    admin.remember(json!([
        {"namespace": ["users", "alice"], "text": format!("Alice's {GONE} recipe uses saffron")},
        {"namespace": ["users", "alice", "prefs"], "text": format!("Alice dislikes {GONE} soup"), "ttl_seconds": 3600},
        {"namespace": ["users", "bob"], "text": "Bob keeps the quokka recipe"},
    ]));
    let item = json!({"namespace": ["users", "alice"], "key": "diet", "value": {"note": format!("{GONE} free")}});
    assert_eq!(admin.put("/store/items", &item).status, 204);
    for (i, text) in [format!("I cook {GONE} stew on Sundays."), "It takes four hours.".to_owned()].iter().enumerate() {
        let turn = json!({"namespace": ["users", "alice"], "turns": [{"role": "user", "content": text}]});
        let r = admin.post("/v1/sessions/chat-a/turns", &turn);
        assert_eq!(r.status, 200, "turn {i}: {}", r.text);
    }
    other_tenant.remember(json!([{"namespace": ["users", "alice"], "text": "another tenant's alice stays"}]));
    if let Some(files) = holding(&srv, GONE) {
        assert!(!files.is_empty(), "the text is in the files before");
    }

    // Who may erase: not a read-only key, not a limited key outside its namespaces; one target.
    let r = reader.post("/v1/erase", &json!({"namespace_prefix": ["users", "alice"]}));
    assert_eq!((r.status, r.code()), (403, "forbidden".to_string()), "{}", r.text);
    for bad in
        [json!({}), json!({"namespace_prefix": ["users"], "session_id": "chat-a"}), json!({"namespace_prefix": []})]
    {
        let r = admin.post("/v1/erase", &bad);
        assert_eq!((r.status, r.code()), (400, "invalid_input".to_string()), "{bad}: {}", r.text);
    }
    let made = admin.post("/v1/admin/keys", &json!({"name": "bob", "scopes": ["write"], "namespaces": ["users/bob"]}));
    let bob = Client { addr: srv.addr, key: Some(made.json()["secret"].as_str().unwrap().to_owned()) };
    let r = bob.post("/v1/erase", &json!({"namespace_prefix": ["users"]}));
    assert_eq!((r.status, r.code()), (403, "forbidden".to_string()), "{}", r.text);
    let r = bob.post("/v1/erase", &json!({"session_id": "chat-a"}));
    assert_eq!((r.status, r.code()), (404, "not_found".to_string()), "alice's session is not bob's: {}", r.text);

    let r = crate::support::request(
        srv.addr,
        "POST",
        "/v1/erase",
        &[("authorization", &format!("Bearer {}", srv.keys[0])), ("x-request-id", "erase-alice-1")],
        Some(&json!({"namespace_prefix": ["users", "alice"]}).to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let receipt: Value = r.json();
    assert_eq!(receipt["tenant"], "t1");
    assert_eq!(receipt["request_id"], "erase-alice-1");
    assert_eq!(receipt["target"], json!({"namespace_prefix": ["users", "alice"]}));
    let erased = &receipt["erased"];
    assert!(erased["memories"].as_u64().unwrap() >= 3, "two written and at least one distilled: {receipt}");
    assert_eq!((erased["items"].as_u64(), erased["sessions"].as_u64()), (Some(1), Some(1)), "{receipt}");
    assert!(erased["turns"].as_u64().unwrap() >= 1, "{receipt}");
    let (seq, hash) = (receipt["audit"]["seq"].as_i64().unwrap(), receipt["audit"]["hash"].as_str().unwrap());
    assert_eq!(hash.len(), 64);
    assert_eq!(receipt["scrubbed"], true, "{receipt}");

    // Gone from every read; what was not under the prefix stays.
    assert!(texts(&admin, GONE).is_empty());
    assert_eq!(texts(&admin, "quokka recipe"), ["Bob keeps the quokka recipe"]);
    assert_eq!(admin.get("/store/items?namespace=users.alice&key=diet").text, "null");
    assert_eq!(admin.get("/v1/sessions/chat-a").status, 404);
    assert_eq!(texts(&other_tenant, "alice stays"), ["another tenant's alice stays"]);

    // Recorded in the audit log, which still verifies.
    let verify = srv.cli(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
    let export = String::from_utf8(srv.cli(&["audit", "export", "--tenant", "t1"]).stdout).unwrap();
    let entry: Value = export
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["namespace"] == "" && r["seq"] == seq)
        .expect("the receipt's entry");
    assert_eq!((entry["hash"].as_str(), entry["request_id"].as_str()), (Some(hash), Some("erase-alice-1")));
    assert_eq!(entry["changes"][0]["detail"]["erased"], *erased);
    assert!(!export.contains(GONE), "the journal holds no text");

    // And nowhere in the files.
    if let Some(files) = holding(&srv, GONE) {
        assert_eq!(files, Vec::<PathBuf>::new(), "the erased text lingers");
    }
}

#[test]
fn erasing_a_session_takes_what_was_distilled_from_it() {
    let srv = server();
    let admin = srv.client_with_key(0);
    for text in [format!("My {SESSION_WORD} garden needs rain."), "The roses bloom in May.".to_owned()] {
        let turn = json!({"namespace": ["chats"], "turns": [{"role": "user", "content": text}]});
        assert_eq!(admin.post("/v1/sessions/s-1/turns", &turn).status, 200);
    }
    admin.remember(json!([{"namespace": ["chats"], "text": "Typed by hand: the garden has a pond"}]));
    assert!(!texts(&admin, SESSION_WORD).is_empty(), "distilled into memories");

    let r = admin.post("/v1/erase", &json!({"session_id": "s-1"}));
    assert_eq!(r.status, 200, "{}", r.text);
    let erased = &r.json()["erased"];
    assert_eq!(erased["sessions"], 1, "{erased}");
    assert!(erased["memories"].as_u64().unwrap() >= 1, "{erased}");
    assert_eq!(admin.get("/v1/sessions/s-1").status, 404);
    assert!(texts(&admin, SESSION_WORD).is_empty());
    assert_eq!(texts(&admin, "pond"), ["Typed by hand: the garden has a pond"], "not from the session: kept");
    if let Some(files) = holding(&srv, SESSION_WORD) {
        assert_eq!(files, Vec::<PathBuf>::new(), "the erased text lingers");
    }
}
