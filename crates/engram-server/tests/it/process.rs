//! Tests across a process boundary with the real `engram` binary: durability
//! under SIGKILL, the data-directory lock, graceful shutdown, the keys and
//! check-config commands, and the refusal to listen publicly without auth.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::support::{engram_bin, free_port, request, Proc};

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let p = Proc::serve(dir.path(), &[]);
    let c = p.client();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let c = c.clone();
            std::thread::spawn(move || {
                let mut ids = Vec::new();
                for i in 0..100 {
                    ids.extend(c.remember(json!([{"namespace": ["dur"], "text": format!("writer {w} fact {i}")}])));
                }
                ids
            })
        })
        .collect();
    let acked: Vec<String> = writers.into_iter().flat_map(|h| h.join().unwrap()).collect();
    assert_eq!(acked.len(), 400);
    let mut p = p;
    p.child.kill().unwrap(); // SIGKILL: no shutdown code runs.
    p.child.wait().unwrap();
    drop(p);

    let conn = rusqlite::Connection::open(dir.path().join("engram.db")).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    drop(conn);

    let p = Proc::serve(dir.path(), &[]);
    for id in &acked {
        assert_eq!(p.client().get(&format!("/v1/memories/{id}")).status, 200, "acknowledged write {id} lost");
    }
    let found = p.client().post("/v1/memories/search", &json!({"query": "fact", "limit": 1000})).json();
    assert_eq!(found["results"].as_array().unwrap().len(), 400, "the keyword index is intact too");
}

#[test]
fn a_second_server_on_the_same_data_dir_exits_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let first = Proc::serve(dir.path(), &[]);
    let out = Command::new(engram_bin())
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port()), "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("pid {}", first.child.id())), "message names the holder: {err}");
}

#[test]
fn sigterm_drains_and_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Proc::serve(dir.path(), &[]);
    let id = p.client().remember(json!([{"namespace": ["g"], "text": "written before shutdown"}]))[0].clone();
    let status = Command::new("kill").args(["-TERM", &p.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(s) = p.child.try_wait().unwrap() {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "engram did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(code.success(), "graceful exit: {code:?}");
    let wal = dir.path().join("engram.db-wal");
    let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal_len, 0, "the WAL was checkpointed into the database");
    let conn = rusqlite::Connection::open(dir.path().join("engram.db")).unwrap();
    let n: i64 = conn.query_row("SELECT count(*) FROM memories WHERE id = ?", [&id], |r| r.get(0)).unwrap();
    assert_eq!(n, 1);
}

/// `memory://`: a server that leaves nothing in its data directory, whose
/// data is gone once it exits, and that admin commands refuse to open.
#[test]
fn a_memory_store_touches_no_disk_and_is_gone_at_exit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let memory = [("ENGRAM_STORE_URL", "memory://")];
    let mut p = Proc::serve(&data, &memory);
    let ids = p.client().remember(json!([{"namespace": ["nb"], "text": "the kettle is in the left cupboard"}]));
    assert_eq!(p.client().get(&format!("/v1/memories/{}", ids[0])).status, 200);
    let found = p.client().post("/v1/memories/search", &json!({"query": "kettle"})).json();
    assert_eq!(found["results"][0]["memory"]["id"], json!(ids[0]), "{found}");
    let put = json!({"namespace": ["prefs"], "key": "k1", "value": {"tea": "green"}});
    assert_eq!(p.client().put("/store/items", &put).status, 204);
    let wait =
        request(p.addr, "POST", "/v1/sessions/s1/turns", &[], Some(r#"{"turns":[{"role":"user","content":"hi"}]}"#));
    assert_eq!(wait.status, 200, "{}", wait.text);

    let admin = engram(&["keys", "create", "--tenant", "acme", "--scopes", "read", "--store", "memory://"], &data);
    assert_eq!(admin.status.code(), Some(2), "a configuration error");
    let err = String::from_utf8_lossy(&admin.stderr);
    assert!(err.contains("memory://") && err.contains("inside the server process"), "{err}");

    p.child.kill().unwrap();
    p.child.wait().unwrap();
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(left.is_empty(), "memory:// wrote to disk: {left:?}");

    let p = Proc::serve(&data, &memory);
    assert_eq!(p.client().get(&format!("/v1/memories/{}", ids[0])).status, 404, "gone at exit");
}

fn engram(args: &[&str], data_dir: &std::path::Path) -> std::process::Output {
    Command::new(engram_bin()).args(args).arg("--data-dir").arg(data_dir).stdin(Stdio::null()).output().unwrap()
}

#[test]
fn keys_cli_creates_lists_and_revokes_beside_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let p = Proc::serve(dir.path(), &[]);
    assert_eq!(p.client().get("/v1/memories").status, 200, "dev mode before any key exists");

    let out = engram(&["keys", "create", "--tenant", "acme", "--scopes", "read,write", "--name", "ci"], dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let secret = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(secret.starts_with("egk_"));

    let list = engram(&["keys", "list"], dir.path());
    let listed = String::from_utf8(list.stdout).unwrap();
    assert!(listed.contains("\"tenant\":\"acme\"") && listed.contains("read,write"));
    assert!(!listed.contains(&secret), "secrets are never listed");
    let raw = std::fs::read(dir.path().join("engram.db")).unwrap();
    assert!(!raw.windows(secret.len()).any(|w| w == secret.as_bytes()), "only the hash is stored");

    // The running server accepts a key created beside it at once (how long
    // its caches trust "no keys" and a revoked grant is tested on a manual
    // clock in engram-core's conformance suite).
    let keyed = crate::support::Client { addr: p.addr, key: Some(secret.clone()) };
    assert_eq!(keyed.post("/v1/memories", &json!({"memories": [{"namespace": ["k"], "text": "hi"}]})).status, 201);

    let id = listed.split("\"id\":\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let out = engram(&["keys", "revoke", &id], dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list = String::from_utf8(engram(&["keys", "list"], dir.path()).stdout).unwrap();
    assert!(list.contains("\"revoked_at\":\"20"), "{list}");
    let again = engram(&["keys", "revoke", &id], dir.path());
    assert_eq!(again.status.code(), Some(1), "a revoked key cannot be revoked twice");
    let bad = engram(&["keys", "create", "--tenant", "acme", "--scopes", "root"], dir.path());
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn refuses_a_public_listener_without_keys() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(engram_bin())
        .args(["serve", "--listen", &format!("0.0.0.0:{}", free_port()), "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("without authentication"));
}

#[test]
fn a_public_listener_starts_when_bearer_tokens_are_configured() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = Command::new(engram_bin())
        .args(["serve", "--listen", &format!("0.0.0.0:{port}"), "--data-dir"])
        .arg(dir.path())
        .env("ENGRAM_EMBEDDER_PROVIDER", "none")
        .env("ENGRAM_AUTH_JWT_HS256_SECRET", "a secret of at least thirty-two bytes")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let p = Proc { child, addr: format!("127.0.0.1:{port}").parse().unwrap() };
    p.wait_healthy();
    let r = p.client().get("/v1/memories?namespace=a");
    assert_eq!((r.status, r.code()), (401, "unauthenticated".to_string()), "callers must bring a token");
}

#[test]
fn check_config_prints_the_effective_config_or_the_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(engram_bin())
        .args(["check-config", "--listen", "127.0.0.1:9999"])
        .env("ENGRAM_MEMORY_DISTILL_EVERY", "3")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("listen = \"127.0.0.1:9999\"") && text.contains("distill_every = 3"), "{text}");

    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[memory]\ndistill_every = 0\n[server]\nmax_body_bytes = 1\nbogus = 1\n").unwrap();
    let out = Command::new(engram_bin()).args(["check-config", "--config"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus"));
    let out = Command::new(engram_bin())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("ENGRAM_MEMORY_DISTILL_EVERY", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("memory.distill_every = 0") && err.contains("allowed 1 to 10"), "{err}");
}

#[test]
fn a_missing_or_corrupt_model_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    let serve = || {
        Command::new(engram_bin())
            .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port()), "--data-dir"])
            .arg(dir.path())
            .env("ENGRAM_EMBEDDER_PROVIDER", "local")
            .env("ENGRAM_EMBEDDER_MODEL_DIR", &model)
            .output()
            .unwrap()
    };
    let out = serve();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("config.json is missing") && err.contains("engram model fetch"), "{err}");
    std::fs::create_dir_all(&model).unwrap();
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::write(model.join(f), b"not a model").unwrap();
    }
    let out = serve();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot load the model"), "{err}");
}

#[test]
fn a_database_from_a_newer_engram_is_refused_naming_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    assert!(engram(&["keys", "list"], dir.path()).status.success(), "creates the database");
    let db = rusqlite::Connection::open(dir.path().join("engram.db")).unwrap();
    let newest: i64 = db.query_row("SELECT MAX(version) FROM schema_migrations", [], |r| r.get(0)).unwrap();
    db.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)", [newest + 5]).unwrap();
    drop(db);
    for args in [&["keys", "list"][..], &["serve", "--listen", "127.0.0.1:0"][..]] {
        let out = engram(args, dir.path());
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        let (theirs, ours) = (format!("version {}", newest + 5), format!("version {newest}"));
        assert!(err.contains(&theirs) && err.contains(&ours) && err.contains("upgrade engram"), "{args:?}: {err}");
        assert!(!err.contains("see the server log"), "{err}");
    }
}

#[test]
fn logs_never_carry_keys_or_tokens() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let out = engram(&["keys", "create", "--tenant", "acme", "--scopes", "read,write"], dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let secret = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let unknown = format!("egk_{}", "ab".repeat(32));
    let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJl";
    // The most verbose logs the server writes, with the access log on.
    let mut p = Proc::serve(
        dir.path(),
        &[("ENGRAM_SERVER_ACCESS_LOG", "true"), ("ENGRAM_LOG", "debug"), ("ENGRAM_API_KEY", &secret)],
    );
    let bearer = format!("Bearer {secret}");
    let sent: [(&str, &str); 4] =
        [("authorization", &bearer), ("x-api-key", &secret), ("authorization", &unknown), ("authorization", token)];
    for (header, value) in sent {
        request(p.addr, "GET", "/v1/memories?namespace=a", &[(header, value)], None);
        request(p.addr, "POST", "/v1/memories", &[(header, value)], Some("{not json"));
        request(p.addr, "POST", "/mcp", &[(header, value)], Some("{}"));
    }
    let _ = p.child.kill();
    let _ = p.child.wait();
    let mut logs = String::new();
    p.child.stderr.take().unwrap().read_to_string(&mut logs).unwrap();
    let access = logs.lines().filter(|l| l.contains("engram::access")).count();
    assert!(access >= 12, "the access log was written ({access} lines):\n{logs}");
    for needle in [&secret[4..], &unknown[4..], token, "Bearer"] {
        assert!(!logs.contains(needle), "the logs carry {needle:?}:\n{logs}");
    }
}
