//! The database going away under load and coming back: requests fail fast
//! with 503 and `Retry-After` (nothing waits past the request timeout), the
//! process stays up, `/readyz` says the store is down, service resumes within
//! 5 s of the database's return, and every acknowledged write is kept.
//! The test runs its own PostgreSQL (`scripts/postgres.sh` with a private
//! `PG_DIR`): stopping the shared test server would fail other tests.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::nodes::{eventually, node};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/postgres.sh");

/// A PostgreSQL server of this test's own.
struct Cluster {
    dir: PathBuf,
}

impl Cluster {
    fn start() -> Self {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let c = Cluster { dir: PathBuf::from(format!("/tmp/engram-pg-fault-{}-{nanos}", std::process::id())) };
        c.run(&["start"]);
        c
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new(SCRIPT).args(args).env("PG_DIR", &self.dir).output().expect("run scripts/postgres.sh");
        assert!(out.status.success(), "postgres.sh {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(SCRIPT).arg("stop").env("PG_DIR", &self.dir).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One write's outcome: its text, status, whether it said when to retry,
/// how long it took, and the phase it was sent in (0 before, 1 during the
/// outage, 2 after).
struct Outcome {
    text: String,
    status: u16,
    retry_after: bool,
    took: Duration,
    phase: u8,
}

#[test]
fn acknowledged_writes_survive_the_database_going_away_and_coming_back() {
    let cluster = Cluster::start();
    let url = cluster.run(&["createdb", "faults"]);
    let dir = tempfile::tempdir().unwrap();
    let n = node(&url, dir.path(), &[("ENGRAM_SERVER_REQUEST_TIMEOUT_SECONDS", "5")]);
    let (phase, stop) = (Arc::new(AtomicU8::new(0)), Arc::new(AtomicBool::new(false)));
    let outcomes = Arc::new(Mutex::new(Vec::<Outcome>::new()));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (c, phase, stop, outcomes) = (n.client(), phase.clone(), stop.clone(), outcomes.clone());
            std::thread::spawn(move || {
                for i in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let text = format!("writer {w} note {i}");
                    let p = phase.load(Ordering::SeqCst);
                    let start = Instant::now();
                    let r = c.post("/v1/memories", &json!({"memories": [{"namespace": ["f"], "text": text}]}));
                    let o = Outcome {
                        text,
                        status: r.status,
                        retry_after: r.header("retry-after").is_some(),
                        took: start.elapsed(),
                        phase: p,
                    };
                    outcomes.lock().unwrap().push(o);
                    if r.status != 201 {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            })
        })
        .collect();
    let acked = |p: u8| outcomes.lock().unwrap().iter().filter(|o| o.phase == p && o.status == 201).count();
    eventually("writes before the outage", Duration::from_secs(30), || acked(0) >= 100);

    cluster.run(&["pause"]);
    phase.store(1, Ordering::SeqCst);
    let refused = || outcomes.lock().unwrap().iter().filter(|o| o.phase == 1 && o.status == 503).count();
    eventually("writes refused during the outage", Duration::from_secs(10), || refused() >= 20);
    let ready = n.client().get("/readyz");
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert_eq!(ready.json()["store"]["ok"], false, "{}", ready.text);
    assert_eq!(n.client().get("/healthz").status, 200, "the process stays up");

    cluster.run(&["resume"]);
    phase.store(2, Ordering::SeqCst);
    let back = eventually("service resumes", Duration::from_secs(5), || acked(2) >= 1);
    eventually("writes after the outage", Duration::from_secs(30), || acked(2) >= 100);
    stop.store(true, Ordering::SeqCst);
    writers.into_iter().for_each(|w| w.join().unwrap());

    let all = outcomes.lock().unwrap();
    for o in all.iter() {
        assert!(o.status == 201 || o.status == 503, "{} answered {}", o.text, o.status);
        assert!(o.status == 201 || o.retry_after, "a 503 says when to retry");
        assert!(o.took < Duration::from_secs(5), "{} waited {:?}, past the request timeout", o.text, o.took);
    }
    // Every acknowledged write is there, whatever happened around it.
    let mut stored = HashSet::new();
    let mut cursor = String::new();
    loop {
        let page = n.client().get(&format!("/v1/memories?namespace=f&limit=500&cursor={cursor}")).json();
        stored.extend(page["memories"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    let acknowledged: Vec<&Outcome> = all.iter().filter(|o| o.status == 201).collect();
    let lost: Vec<&str> = acknowledged.iter().filter(|o| !stored.contains(&o.text)).map(|o| o.text.as_str()).collect();
    assert!(lost.is_empty(), "{} of {} acknowledged writes lost: {lost:?}", lost.len(), acknowledged.len());
    let in_phase = |p: u8| acknowledged.iter().filter(|o| o.phase == p).count();
    eprintln!(
        "acknowledged {} (before {}, during {}, after {}), refused {}; resumed {back:?} after the database returned",
        acknowledged.len(),
        in_phase(0),
        in_phase(1),
        in_phase(2),
        all.len() - acknowledged.len()
    );
}
