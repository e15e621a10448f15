//! Several stateless `engram serve` processes on one database — PostgreSQL
//! or MongoDB, as `ENGRAM_TEST_BACKEND` says (DESIGN §5): what one node
//! writes the others read at once; queued work is done once between them; a
//! singleton job moves when its node dies; a key change reaches every node at
//! once; concurrent appends keep their order. Not run on SQLite (one server
//! per data directory).

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{engram_bin, fresh_shared_database, model_dir, Proc};

/// A node on `url`, with fast sweeps and promotion and the given extra settings.
pub fn node(url: &str, dir: &std::path::Path, extra: &[(&str, &str)]) -> Proc {
    let mut env = vec![
        ("ENGRAM_STORE_URL", url),
        ("ENGRAM_MEMORY_SWEEP_INTERVAL_SECONDS", "1"),
        ("ENGRAM_MEMORY_PROMOTION_INTERVAL_SECONDS", "1"),
    ];
    env.extend_from_slice(extra);
    Proc::serve(dir, &env)
}

fn with_model(model: &str) -> [(&'static str, &str); 2] {
    [("ENGRAM_EMBEDDER_PROVIDER", "local"), ("ENGRAM_EMBEDDER_MODEL_DIR", model)]
}

/// Polls `check` until it holds (a state another process reaches), failing
/// after `limit`; returns how long it took.
pub fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if check() {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn texts(out: &Value) -> Vec<String> {
    out["results"].as_array().unwrap().iter().map(|r| r["memory"]["text"].as_str().unwrap().to_owned()).collect()
}

/// The sum over `nodes` of one job's completed items (from `/metrics`).
fn items(nodes: &[&Proc], job: &str) -> u64 {
    let needle = format!("engram_job_items_total{{job=\"{job}\"}} ");
    nodes
        .iter()
        .map(|n| {
            let m = n.client().get("/metrics").text;
            m.lines().find_map(|l| l.strip_prefix(&needle)).map_or(0, |v| v.trim().parse::<u64>().unwrap())
        })
        .sum()
}

fn standby(node: &Proc, job: &str) -> bool {
    node.client().get("/readyz").json()["jobs"][job]["standby"].as_bool().unwrap()
}

#[test]
fn a_write_on_one_node_is_read_on_the_other_at_once() {
    let (url, dir) = (fresh_shared_database(), tempfile::tempdir().unwrap());
    let model = model_dir().display().to_string();
    let (a, b) = (node(&url, dir.path(), &with_model(&model)), node(&url, dir.path(), &with_model(&model)));
    let id = a.client().remember(json!([{"namespace": ["shared"], "text": "Noor repairs violins in Lyon"}]))[0].clone();
    let on_b = b.client();
    assert_eq!(on_b.get(&format!("/v1/memories/{id}")).status, 200, "by id");
    let listed = on_b.get("/v1/memories?namespace=shared").json();
    assert_eq!(listed["memories"][0]["id"], id.as_str(), "in the list");
    let found = on_b.search(json!({"query": "violins", "mode": "keyword"}));
    assert_eq!(texts(&found), ["Noor repairs violins in Lyon"], "by keyword");
    let item = json!({"namespace": ["kb"], "key": "hours", "value": {"text": "open at nine"}});
    assert_eq!(a.client().put("/store/items", &item).status, 204);
    assert_eq!(on_b.get("/store/items?namespace=kb&key=hours").json()["value"]["text"], "open at nine");
    // By meaning once either node's queue has embedded it.
    on_b.wait_embedded(json!(["shared"]));
    let by_meaning = on_b.search(json!({"query": "a luthier fixing string instruments", "mode": "vector"}));
    assert_eq!(texts(&by_meaning)[0], "Noor repairs violins in Lyon");
}

#[test]
fn queued_work_is_done_once_across_nodes() {
    let (url, dir) = (fresh_shared_database(), tempfile::tempdir().unwrap());
    let model = model_dir().display().to_string();
    let (a, b) = (node(&url, dir.path(), &with_model(&model)), node(&url, dir.path(), &with_model(&model)));
    // 200 memories written through both nodes; each is embedded exactly once.
    for round in 0..10 {
        for (n, target) in [&a, &b].into_iter().enumerate() {
            let batch: Vec<Value> = (0..10)
                .map(|i| json!({"namespace": ["q"], "text": format!("fact {round}-{n}-{i}: item {} of the store", round * 20 + n * 10 + i)}))
                .collect();
            target.client().remember(Value::Array(batch));
        }
    }
    a.client().wait_embedded(json!(["q"]));
    eventually("both nodes counted their work", Duration::from_secs(10), || items(&[&a, &b], "embedding_queue") >= 200);
    assert_eq!(items(&[&a, &b], "embedding_queue"), 200, "every memory embedded once, by one node");
}

#[test]
fn a_singleton_job_moves_to_another_node_when_its_node_dies() {
    let (url, dir) = (fresh_shared_database(), tempfile::tempdir().unwrap());
    let mut a = node(&url, dir.path(), &[]);
    eventually("the first node leads", Duration::from_secs(10), || !standby(&a, "ttl_sweep"));
    let b = node(&url, dir.path(), &[]);
    for job in ["ttl_sweep", "session_cleanup", "promotion"] {
        eventually("the second node waits", Duration::from_secs(10), || standby(&b, job));
        assert!(!standby(&a, job), "{job} runs on one node");
    }
    a.child.kill().unwrap(); // SIGKILL: no goodbye, the database notices.
    a.child.wait().unwrap();
    for job in ["ttl_sweep", "session_cleanup", "promotion"] {
        eventually("the survivor takes over", Duration::from_secs(15), || !standby(&b, job));
    }
}

#[test]
fn a_revoked_key_stops_working_on_every_node_within_a_second() {
    let (url, dir) = (fresh_shared_database(), tempfile::tempdir().unwrap());
    let (a, b) = (node(&url, dir.path(), &[]), node(&url, dir.path(), &[]));
    let cli = |args: &[&str]| {
        let out = Command::new(engram_bin()).args(args).env("ENGRAM_STORE_URL", &url).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let secret = cli(&["keys", "create", "--tenant", "acme", "--scopes", "read,write"]);
    for n in [&a, &b] {
        let c = crate::support::Client { addr: n.addr, key: Some(secret.clone()) };
        assert_eq!(c.get("/v1/memories").status, 200, "the new key works everywhere");
        assert_eq!(n.client().get("/v1/memories").status, 401, "dev mode ended everywhere");
    }
    let listed: Value = serde_json::from_str(&cli(&["keys", "list", "--tenant", "acme"])).unwrap();
    let id = listed["id"].as_str().unwrap().to_owned();
    cli(&["keys", "revoke", &id]);
    for n in [&a, &b] {
        let c = crate::support::Client { addr: n.addr, key: Some(secret.clone()) };
        // The cache alone would keep it working for 5 s.
        let took = eventually("the revocation arrives", Duration::from_secs(2), || c.get("/v1/memories").status == 401);
        assert!(took < Duration::from_secs(1), "took {took:?}");
    }
}

#[test]
fn turns_appended_through_both_nodes_keep_a_gap_free_order() {
    let (url, dir) = (fresh_shared_database(), tempfile::tempdir().unwrap());
    let big = [("ENGRAM_MEMORY_WM_MAX_TURNS", "1000"), ("ENGRAM_MEMORY_DISTILL_EVERY", "1000")];
    let (a, b) = (node(&url, dir.path(), &big), node(&url, dir.path(), &big));
    let writers: Vec<_> = [(a.client(), "a"), (b.client(), "b")]
        .into_iter()
        .map(|(c, who)| {
            std::thread::spawn(move || {
                for i in 0..40 {
                    let turn = json!({"turns": [{"role": who, "content": format!("{who} says {i}")}]});
                    assert_eq!(c.post("/v1/sessions/shared/turns", &turn).status, 200);
                }
            })
        })
        .collect();
    writers.into_iter().for_each(|w| w.join().unwrap());
    let s = a.client().get("/v1/sessions/shared").json();
    let turns = s["turns"].as_array().unwrap();
    let idx: Vec<i64> = turns.iter().map(|t| t["index"].as_i64().unwrap()).collect();
    assert_eq!(idx, (1..=80).collect::<Vec<_>>(), "gap-free");
    for who in ["a", "b"] {
        let mine: Vec<String> =
            turns.iter().filter(|t| t["role"] == who).map(|t| t["content"].as_str().unwrap().to_owned()).collect();
        assert_eq!(mine, (0..40).map(|i| format!("{who} says {i}")).collect::<Vec<_>>(), "each writer's order");
    }
}

#[test]
fn a_change_written_through_one_node_reaches_a_subscriber_on_the_other() {
    use crate::events::{next_event, subscribe};
    let (url, dir) = (fresh_shared_database(), tempfile::tempdir().unwrap());
    let cli = |args: &[&str]| {
        let out = Command::new(engram_bin()).args(args).env("ENGRAM_STORE_URL", &url).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let acme = cli(&["keys", "create", "--tenant", "acme", "--scopes", "read,write"]);
    let other = cli(&["keys", "create", "--tenant", "other", "--scopes", "read,write"]);
    let (a, b) = (node(&url, dir.path(), &[]), node(&url, dir.path(), &[]));
    let mut on_b = subscribe(b.addr, &acme, "");
    let mut other_on_b = subscribe(b.addr, &other, "");
    let write = |key: &str, text: &str| {
        let c = crate::support::Client { addr: a.addr, key: Some(key.to_owned()) };
        c.remember(json!([{"namespace": ["shared"], "text": text}]))[0].clone()
    };
    let started = Instant::now();
    let id = write(&acme, "written through node A");
    let e = next_event(&mut on_b);
    assert_eq!((e["type"].as_str(), e["memory_id"].as_str()), (Some("created"), Some(id.as_str())), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    let theirs = write(&other, "the other tenant's");
    let e = next_event(&mut other_on_b);
    assert_eq!(e["memory_id"].as_str(), Some(theirs.as_str()), "acme's change never reaches another tenant: {e}");
}
