//! What belongs to the PostgreSQL backend alone: writes to different
//! namespaces run at once (each holds its namespace's advisory lock and the
//! write lock shared), while writes to one namespace, and writes that may
//! touch anything, wait their turn — on one node or several.

use std::time::Duration;

use engram_core::model::{Namespace, WriteStatus};
use engram_core::service::inputs::{AddTurns, CreateMemories, ListInput};
use engram_core::store::postgres::{place_lock, WRITE_LOCK};
use engram_core::{MemoryService, TenantCtx};
use serde_json::json;
use tokio_postgres::NoTls;

use crate::harness::{from_json, nudged, Backend, Harness, Rng, DIMS};

/// Far longer than any write here takes: only a write held up for good
/// (the failure looked for) reaches it.
const GUARD: Duration = Duration::from_secs(60);

async fn write(svc: &MemoryService, ns: &str, text: &str, v: Option<&[f32]>) -> WriteStatus {
    let mut m = json!({"namespace": [ns], "text": text});
    if let Some(v) = v {
        m["embedding"] = json!(v);
    }
    let req: CreateMemories = from_json(json!({ "memories": [m] }));
    svc.create_memories(&TenantCtx::dev(), req).await.expect("write").remove(0).0
}

async fn count(svc: &MemoryService, ns: &str) -> usize {
    let q = ListInput { namespace: Some(ns.into()), limit: Some(1000), ..ListInput::default() };
    svc.list_memories(&TenantCtx::dev(), q).await.expect("list").memories.len()
}

/// Waits until this database has `n` advisory lock requests waiting (which
/// lock each waits for depends on who asked first: a shared request queues
/// behind a waiting exclusive one).
async fn until_waiting(c: &tokio_postgres::Client, n: i64) {
    let deadline = tokio::time::Instant::now() + GUARD;
    loop {
        let row = c
            .query_one(
                "SELECT count(*) FROM pg_locks \
                 WHERE locktype = 'advisory' AND NOT granted \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                &[],
            )
            .await
            .expect("pg_locks");
        if row.get::<_, i64>(0) == n {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "the writes never queued for their locks");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_to_other_namespaces_go_on_while_one_is_held() {
    let h = Harness::new(Backend::Postgres);
    let svc = h.service();
    write(&svc, "warm", "the schema and pool are ready", None).await;
    // Another node's transaction holds namespace "busy" (as a write there would).
    let (c, conn) = tokio_postgres::connect(h.postgres_url.as_deref().expect("url"), NoTls).await.expect("connect");
    tokio::spawn(conn);
    let (class, key) = place_lock(&("default".to_owned(), Namespace::from_stored("busy")));
    c.batch_execute("BEGIN").await.expect("begin");
    c.execute("SELECT pg_advisory_xact_lock_shared($1), pg_advisory_xact_lock($2, $3)", &[&WRITE_LOCK, &class, &key])
        .await
        .expect("lock");

    let free = tokio::time::timeout(GUARD, write(&svc, "free", "written beside the held namespace", None)).await;
    assert_eq!(free.expect("a write to another namespace is not held up"), WriteStatus::Created);

    // A write to the held namespace waits for it; a session append (which
    // may touch anything) waits for every namespace's writes — here sent
    // through a second node, so that it queues for the lock, not in a lane.
    let busy = tokio::spawn({
        let svc = svc.clone();
        async move { write(&svc, "busy", "written once the namespace is free", None).await }
    });
    let whole = tokio::spawn({
        let svc = h.service();
        async move {
            let turns: AddTurns = from_json(json!({"turns": [{"role": "user", "content": "hello"}]}));
            svc.add_turns(&TenantCtx::dev(), "s1", turns).await
        }
    });
    until_waiting(&c, 2).await;
    assert!(!busy.is_finished() && !whole.is_finished(), "both wait for the held locks");

    c.batch_execute("COMMIT").await.expect("commit");
    assert_eq!(tokio::time::timeout(GUARD, busy).await.expect("released").expect("task"), WriteStatus::Created);
    let appended = tokio::time::timeout(GUARD, whole).await.expect("released").expect("task").expect("append");
    assert_eq!(appended.turn_count, 1);
    assert_eq!((count(&svc, "free").await, count(&svc, "busy").await), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restatements_written_at_once_on_two_nodes_are_one() {
    restatements_on_two_nodes_are_one(Harness::new(Backend::Postgres)).await
}

/// Two nodes write restatements of one fact into one namespace at the same
/// moment, round after round, while both also write elsewhere (so vectors
/// are committed in other namespaces between a lookup and its transaction):
/// each namespace ends with one memory. (Run on MongoDB too: `mongo.rs`.)
pub async fn restatements_on_two_nodes_are_one(h: Harness) {
    let (a, b) = (h.vector_service(), h.vector_service());
    let mut rng = Rng(77);
    const ROUNDS: usize = 24;
    let facts: Vec<Vec<f32>> = (0..ROUNDS).map(|_| rng.unit(DIMS)).collect();
    let noise: Vec<Vec<f32>> = (0..4 * ROUNDS).map(|_| rng.unit(DIMS)).collect();
    let mut tasks = Vec::new();
    for (node, svc) in [(0, a.clone()), (1, b.clone())] {
        let (facts, on) = (facts.clone(), svc.clone());
        tasks.push(tokio::spawn(async move {
            let svc = on;
            for (r, v) in facts.iter().enumerate() {
                let v = if node == 0 { v.clone() } else { nudged(v, 0.05) };
                write(&svc, &format!("fact{r}"), &format!("fact {r} as node {node} put it"), Some(&v)).await;
            }
        }));
        let noise = noise.clone();
        tasks.push(tokio::spawn(async move {
            for (i, v) in noise.iter().enumerate() {
                write(&svc, &format!("noise{node}"), &format!("unrelated note {i} from node {node}"), Some(v)).await;
            }
        }));
    }
    for t in tasks {
        tokio::time::timeout(GUARD, t).await.expect("the writes finish").expect("task");
    }
    for r in 0..ROUNDS {
        assert_eq!(count(&a, &format!("fact{r}")).await, 1, "round {r}: two live copies of one fact");
    }
    assert_eq!(count(&b, "noise0").await + count(&b, "noise1").await, 8 * ROUNDS);
}
