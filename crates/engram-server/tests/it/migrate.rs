//! `engram migrate`, `export` and `import` with the real binary and the real
//! model: SQLite → PostgreSQL → SQLite, each copy checked by the command
//! itself (counts and checksum) and by a server on it answering searches as
//! the original did; quiet when not on a terminal; refused when the target
//! holds something else.

use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

use crate::nodes::node;
use crate::support::{engram_bin, fresh_shared_database, model_dir, Proc};

fn run(args: &[&str]) -> Output {
    Command::new(engram_bin()).args(args).env("ENGRAM_EMBEDDER_PROVIDER", "none").stdin(Stdio::null()).output().unwrap()
}

fn ok(out: &Output) -> (Value, String) {
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains('\u{1b}') && !stderr.contains("records ("), "no progress off a terminal: {stderr:?}");
    (serde_json::from_str(stdout.trim()).unwrap_or(Value::Null), stderr)
}

/// What a caller sees: ids by meaning, by words, and a session.
fn answers(p: &Proc) -> Value {
    let c = p.client();
    let by = |mode: &str, q: &str| {
        let out = c.search(json!({"query": q, "mode": mode, "limit": 5, "context_weight": 0}));
        out["results"].as_array().unwrap().iter().map(|r| r["memory"]["id"].clone()).collect::<Vec<_>>()
    };
    let session = c.get("/v1/sessions/trip").json();
    json!({
        "vector": by("vector", "what does Alice like to drink"),
        "keyword": by("keyword", "chess tournament")[..1],
        "item": c.get("/store/items?namespace=kb&key=plan").json()["value"],
        "turns": session["turns"],
    })
}

fn serve_sqlite(dir: &std::path::Path) -> Proc {
    let model = model_dir();
    Proc::serve(dir, &[("ENGRAM_EMBEDDER_PROVIDER", "local"), ("ENGRAM_EMBEDDER_MODEL_DIR", model.to_str().unwrap())])
}

#[test]
fn migrate_copies_sqlite_to_a_shared_store_and_back_with_the_same_answers() {
    let (dir, back, files) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let original = serve_sqlite(dir.path());
    let c = original.client();
    c.remember(json!([
        {"namespace": ["u", "alice"], "text": "Alice drinks green tea every morning"},
        {"namespace": ["u", "alice"], "text": "Alice won the regional chess tournament in May"},
        {"namespace": ["u", "bob"], "text": "Bob prefers strong black coffee", "metadata": {"source": "chat"}},
        {"namespace": ["u", "bob"], "text": "Bob is learning the cello"},
    ]));
    assert_eq!(
        c.put("/store/items", &json!({"namespace": ["kb"], "key": "plan", "value": {"goal": "ship"}})).status,
        204
    );
    let turns = json!({"turns": [{"role": "user", "content": "We fly to Lisbon on Friday", "at": "2026-03-01T09:00:00-03:00"}]});
    assert_eq!(c.post("/v1/sessions/trip/turns", &turns).status, 200);
    c.wait_embedded(json!([]));
    let before = answers(&original);
    drop(original); // a copy is exact when nothing writes meanwhile

    let sqlite = format!("sqlite://{}", dir.path().join("engram.db").display());
    let pg = fresh_shared_database();
    let (report, stderr) = ok(&run(&["migrate", "--from", &sqlite, "--to", &pg]));
    assert_eq!(report["imported"]["memory"], 5, "{report}");
    assert!(stderr.contains("match"), "{stderr}");

    let model = model_dir();
    let on_pg = node(
        &pg,
        files.path(),
        &[("ENGRAM_EMBEDDER_PROVIDER", "local"), ("ENGRAM_EMBEDDER_MODEL_DIR", model.to_str().unwrap())],
    );
    assert_eq!(answers(&on_pg), before, "the shared store answers as SQLite did");
    drop(on_pg);

    // Back to a new SQLite file, through export and import this time.
    let file = files.path().join("export.jsonl");
    ok(&run(&["export", "--store", &pg, "--out", file.to_str().unwrap()]));
    let target = format!("sqlite://{}", back.path().join("engram.db").display());
    let (report, _) = ok(&run(&["import", "--all-tenants", "--store", &target, "--in", file.to_str().unwrap()]));
    assert_eq!(report["imported"]["memory"], 5, "{report}");
    let (again, _) = ok(&run(&["import", "--all-tenants", "--store", &target, "--in", file.to_str().unwrap()]));
    assert_eq!(again["skipped"]["memory"], 5, "importing twice changes nothing: {again}");
    let restored = serve_sqlite(back.path());
    assert_eq!(answers(&restored), before, "the round trip answers as the original did");
    restored.client().remember(json!([{"namespace": ["extra"], "text": "only in this copy"}]));
    drop(restored);

    // A target holding other data: the check catches it and says so.
    let out = run(&["migrate", "--from", &pg, "--to", &target]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the copy differs") && err.contains("6 memory"), "{err}");
    let same = run(&["migrate", "--from", &pg, "--to", &pg]);
    assert_eq!(same.status.code(), Some(2), "{}", String::from_utf8_lossy(&same.stderr));
}
