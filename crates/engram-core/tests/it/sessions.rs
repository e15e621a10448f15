//! Sessions and distillation against the real SQLite store: expiry with the
//! clock passed in, jobs that survive a reopen and run exactly once, the
//! fallback when a distiller fails, order under concurrent appends.

use std::sync::Arc;

use engram_core::distill::{DistillError, DistillRequest, Distillation, Distiller};
use engram_core::model::session::NewTurn;
use engram_core::model::Source;
use engram_core::service::inputs::AddTurns;
use engram_core::service::{AuthMode, Lifecycle, ServiceOptions};
use engram_core::store::{AppendTurns, SqliteOptions, SqliteStore, Store, Synchronous};
use engram_core::{MemoryService, TenantCtx};
use serde_json::json;

fn open(dir: &std::path::Path) -> Store {
    Store::Sqlite(
        SqliteStore::open(SqliteOptions {
            path: dir.join("engram.db"),
            readers: 2,
            synchronous: Synchronous::Normal,
            exclusive: true,
            vectors: None,
        })
        .unwrap(),
    )
}

fn turn(content: &str) -> NewTurn {
    NewTurn { role: "user".into(), content: content.into(), at: None, metadata: Default::default() }
}

fn append(session: &str, turns: Vec<NewTurn>, now: i64) -> AppendTurns {
    AppendTurns {
        tenant: "default".into(),
        session_id: session.into(),
        namespace: None,
        turns,
        now,
        ttl_ms: 60_000,
        window: 4,
        distill_every: 3,
    }
}

const FACTS: [&str; 4] = [
    "I moved to Lisbon in March to work at the aquarium.",
    "My brother Tomas teaches physics at the University of Porto.",
    "We adopted a greyhound called Pixel last week.",
    "Next summer I am running the Berlin marathon with Ana.",
];

/// A service on `store` whose distiller always fails (so the fallback runs).
struct Failing;
impl Distiller for Failing {
    fn name(&self) -> &str {
        "failing"
    }
    fn distill(&self, _: &DistillRequest) -> Result<Distillation, DistillError> {
        Err(DistillError("provider down".into()))
    }
}

fn service_on(store: Store, distiller: Option<Arc<dyn Distiller>>) -> MemoryService {
    let mut opts = ServiceOptions::default();
    if let Some(d) = distiller {
        opts.distiller = d;
    }
    MemoryService::with_options(store, AuthMode::DevUntilKeysExist, opts)
}

#[tokio::test]
async fn queued_distillation_survives_a_reopen_and_runs_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // Through the store directly: the job is queued and nothing runs it.
    let a = store.append_turns(append("s1", FACTS.iter().map(|f| turn(f)).collect(), 1_000)).await.unwrap();
    assert_eq!((a.turn_count, a.pending_turns), (4, 1));
    let job_id = a.queued_job.expect("three turns make a job");
    store.close().await;
    drop(store);

    let svc = service_on(open(dir.path()), None);
    let due = svc.store().due_distill_jobs(i64::MAX, 16).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].id, job_id);
    assert_eq!(due[0].turns.iter().map(|t| t.index).collect::<Vec<_>>(), vec![1, 2, 3]);
    let twin = due[0].clone();
    let ids = svc.run_distill_job(due[0].clone()).await.unwrap();
    assert_eq!(ids.len(), 3, "three turns of facts make three memories");
    // Run again (a second worker, a retry after a crash): nothing more is written.
    assert!(svc.run_distill_job(twin).await.unwrap().is_empty());
    assert!(svc.store().due_distill_jobs(i64::MAX, 16).await.unwrap().is_empty());
    let ctx = TenantCtx::dev();
    let page = svc.list_memories(&ctx, serde_json::from_value(json!({"namespace": "sessions/s1"})).unwrap()).await.unwrap();
    assert_eq!(page.memories.len(), 3);
    let m = &page.memories[0];
    assert_eq!(m.source, Source::Session { session_id: "s1".into(), turns: [1, 1] });
    assert_eq!(m.metadata["session_id"], "s1");
    assert_eq!(m.metadata["entities"], json!(["Lisbon"]));
    assert_eq!(m.tags, vec!["distilled"]);
    let session = svc.get_session(&ctx, "s1").await;
    assert!(session.is_err(), "the session's clock is the test's: at now it has long expired");
}

#[tokio::test]
async fn an_expired_session_ends_and_its_undistilled_turns_are_queued() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.append_turns(append("s2", vec![turn(FACTS[0]), turn(FACTS[1])], 1_000)).await.unwrap();
    assert!(store.get_session("default", "s2", 4, 30_000).await.unwrap().is_some());
    // Idle for the TTL: unreadable at once, ended by the sweep.
    assert!(store.get_session("default", "s2", 4, 61_000).await.unwrap().is_none());
    assert_eq!(store.sweep_sessions(61_000, 100).await.unwrap(), 1);
    assert_eq!(store.sweep_sessions(61_000, 100).await.unwrap(), 0);
    let due = store.due_distill_jobs(61_000, 16).await.unwrap();
    assert_eq!(due.len(), 1, "the two undistilled turns are not lost");
    assert_eq!(due[0].turns.len(), 2);
    // A new append under the same id starts a fresh session.
    let a = store.append_turns(append("s2", vec![turn("hello again")], 70_000)).await.unwrap();
    assert_eq!(a.turn_count, 1);
}

#[tokio::test]
async fn appending_to_an_expired_but_unswept_session_keeps_its_turns() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.append_turns(append("s3", vec![turn(FACTS[2])], 1_000)).await.unwrap();
    let a = store.append_turns(append("s3", vec![turn(FACTS[3])], 100_000)).await.unwrap();
    assert_eq!(a.turn_count, 1, "a new session began");
    let due = store.due_distill_jobs(100_000, 16).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].turns[0].content, FACTS[2]);
}

#[tokio::test]
async fn deleting_a_session_cancels_its_queued_distillation() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.append_turns(append("s4", FACTS.iter().map(|f| turn(f)).collect(), 1_000)).await.unwrap();
    assert!(store.delete_session("default", "s4", 2_000).await.unwrap());
    assert!(!store.delete_session("default", "s4", 2_000).await.unwrap());
    assert!(store.due_distill_jobs(i64::MAX, 16).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_failing_distiller_falls_back_to_the_extractive_one() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service_on(open(dir.path()), Some(Arc::new(Failing)));
    let ctx = TenantCtx::dev();
    // Five turns (distill_every's default): four facts and small talk.
    let mut turns = FACTS.iter().map(|f| json!({"role": "user", "content": f})).collect::<Vec<_>>();
    turns.push(json!({"role": "assistant", "content": "Haha, thanks so much!"}));
    let req: AddTurns = serde_json::from_value(json!({"turns": turns})).unwrap();
    let out = svc.add_turns(&ctx, "s5", req).await.unwrap();
    assert!(out.distilled.is_empty(), "a slow (non-inline) distiller leaves the job to the worker");
    let due = svc.store().due_distill_jobs(i64::MAX, 16).await.unwrap();
    let ids = svc.run_distill_job(due[0].clone()).await.unwrap();
    assert_eq!(ids.len(), 4, "the facts, not the small talk");
    let s = svc.get_session(&ctx, "s5").await.unwrap();
    assert!(s.summary.contains("Lisbon") || s.summary.contains("Tomas"), "{}", s.summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_keep_every_writers_order() {
    let dir = tempfile::tempdir().unwrap();
    let life = Lifecycle { wm_max_turns: 1000, distill_every: 1000, ..Lifecycle::default() };
    let opts = ServiceOptions { lifecycle: life, ..ServiceOptions::default() };
    let svc = MemoryService::with_options(open(dir.path()), AuthMode::DevUntilKeysExist, opts);
    let ctx = TenantCtx::dev();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (svc, ctx) = (svc.clone(), ctx.clone());
        tasks.push(tokio::spawn(async move {
            let mut counts = Vec::new();
            for i in 0..25 {
                let req: AddTurns =
                    serde_json::from_value(json!({"turns": [{"role": "user", "content": format!("w{w} t{i}")}]})).unwrap();
                counts.push(svc.add_turns(&ctx, "busy", req).await.unwrap().turn_count);
            }
            counts
        }));
    }
    let mut all_counts = Vec::new();
    for t in tasks {
        let counts = t.await.unwrap();
        assert!(counts.windows(2).all(|p| p[0] < p[1]), "a writer's own turns are numbered in its order");
        all_counts.extend(counts);
    }
    all_counts.sort();
    assert_eq!(all_counts, (1..=200).collect::<Vec<i64>>(), "every number once, no gaps");
    let s = svc.get_session(&ctx, "busy").await.unwrap();
    assert_eq!(s.turn_count, 200);
    assert_eq!(s.turns.iter().map(|t| t.index).collect::<Vec<_>>(), (1..=200).collect::<Vec<i64>>());
    for w in 0..8 {
        let mine: Vec<&str> = s.turns.iter().filter(|t| t.content.starts_with(&format!("w{w} "))).map(|t| t.content.as_str()).collect();
        let want: Vec<String> = (0..25).map(|i| format!("w{w} t{i}")).collect();
        assert_eq!(mine, want);
    }
}
