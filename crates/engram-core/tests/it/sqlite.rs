//! What belongs to the SQLite backend alone: the saved vector index and the
//! replay of changes made after it was saved, across a restart; what another
//! process writes beside a running server.

use engram_core::service::inputs::{CreateMemories, SearchInput};
use engram_core::{MemoryService, TenantCtx};
use serde_json::json;

use crate::harness::{
    fading_and_lasting_embers, from_json, only_the_lasting_embers_are_found, tenant, Backend, Harness, Rng, DIMS,
};

async fn nearest(svc: &MemoryService, ctx: &TenantCtx, v: &[f32], k: i64) -> Vec<String> {
    let q: SearchInput = from_json(json!({"mode": "vector", "query_embedding": v, "limit": k, "context_weight": 0}));
    svc.search(ctx, q).await.unwrap().results.into_iter().map(|h| h.memory.text).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vectors_survive_a_restart_from_the_saved_index_plus_replay() {
    let h = Harness::new(Backend::Sqlite);
    let ctx = TenantCtx::dev();
    let mut rng = Rng(3);
    let (va, vb, vc) = (rng.unit(DIMS), rng.unit(DIMS), rng.unit(DIMS));
    {
        let svc = h.vector_service();
        let req: CreateMemories = from_json(json!({"memories": [
            {"namespace": ["n"], "text": "alpha", "embedding": va}, {"namespace": ["n"], "text": "beta", "embedding": vb}]}));
        let out = svc.create_memories(&ctx, req).await.unwrap();
        assert_eq!(nearest(&svc, &ctx, &va, 1).await, ["alpha"]);
        svc.save_indexes().await.unwrap();
        // After the save: delete beta and add gamma, then stop without saving.
        svc.delete_memory(&ctx, &out[1].1.id).await.unwrap();
        let req: CreateMemories =
            from_json(json!({"memories": [{"namespace": ["n"], "text": "gamma", "embedding": vc}]}));
        svc.create_memories(&ctx, req).await.unwrap();
        svc.close().await;
    }
    assert!(h.dir.path().join("engram.vectors").is_file() && h.dir.path().join("engram.vectors.json").is_file());
    let svc = h.vector_service();
    assert_eq!(nearest(&svc, &ctx, &vc, 1).await, ["gamma"], "replayed insert");
    let all = nearest(&svc, &ctx, &vb, 10).await;
    assert!(!all.contains(&"beta".to_string()) && all.len() == 2, "replayed delete: {all:?}");
    assert!(nearest(&svc, &tenant("other"), &va, 10).await.is_empty(), "tenant scoped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_whose_caller_stops_waiting_keeps_its_connection() {
    use engram_core::store::{SqliteOptions, SqliteStore, Store};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let mut opts = SqliteOptions::new(dir.path().join("engram.db"));
    opts.readers = 1;
    let store = Arc::new(Store::Sqlite(SqliteStore::open(opts).unwrap()));
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let slow = tokio::spawn({
        let s = Arc::clone(&store);
        async move {
            s.read(move |r| {
                started_tx.send(()).unwrap();
                let _ = release_rx.recv();
                r.any_key()
            })
            .await
        }
    });
    tokio::task::spawn_blocking(move || started_rx.recv()).await.unwrap().unwrap();
    // The caller goes away (a client disconnects, a timeout fires) while the
    // query still runs on its connection, the only one.
    slow.abort();
    let _ = slow.await;
    let next = tokio::spawn({
        let s = Arc::clone(&store);
        async move { s.read(|r| r.any_key()).await }
    });
    release_tx.send(()).unwrap();
    assert!(next.await.unwrap().is_ok(), "the next read waits for the connection, then gets it");
    for _ in 0..5 {
        assert!(store.read(|r| r.any_key()).await.is_ok());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_rows_written_beside_the_server_never_crowd_out_live_ones() {
    use engram_core::service::{AuthMode, ServiceOptions};
    let h = Harness::new(Backend::Sqlite);
    let ctx = TenantCtx::dev();
    // The server opens first: nothing in the store expires yet.
    let server = h.service();
    // An admin command beside it (`engram import`) writes sixty memories
    // that match best and expire, and two that last.
    let admin = MemoryService::with_options(
        h.admin_store(),
        AuthMode::DevUntilKeysExist,
        ServiceOptions { clock: h.clock.clone(), ..ServiceOptions::default() },
    );
    admin.create_memories(&ctx, from_json(fading_and_lasting_embers())).await.unwrap();
    admin.close().await;
    h.advance(2_000);
    // The server's keyword index loads those rows on its first search, and
    // learns from them that memories have expired.
    only_the_lasting_embers_are_found(&server, &ctx).await;
}

/// An admin command of a newer engram does not upgrade the schema under a
/// running server, which would go on under rules it does not know.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_command_does_not_upgrade_the_schema_under_a_running_server() {
    use engram_core::store::{SqliteOptions, SqliteStore};
    let h = Harness::new(Backend::Sqlite);
    let server = h.service();
    let path = h.dir.path().join("engram.db");
    // The server's schema lacks the newest step, as an older engram's would.
    let raw = rusqlite::Connection::open(&path).unwrap();
    let newest: i64 = raw.query_row("SELECT MAX(version) FROM schema_migrations", [], |r| r.get(0)).unwrap();
    raw.execute("DELETE FROM schema_migrations WHERE version = ?", [newest]).unwrap();
    let mut opts = SqliteOptions::new(&path);
    opts.exclusive = false;
    opts.clock = h.clock.clone();
    let err = SqliteStore::open(opts).err().expect("refused beside the server");
    assert_eq!(err.code(), engram_core::error::ErrorCode::Unavailable);
    assert!(err.to_string().contains("stop the server"), "{err}");
    let applied: i64 = raw.query_row("SELECT MAX(version) FROM schema_migrations", [], |r| r.get(0)).unwrap();
    assert_eq!(applied, newest - 1, "nothing was applied");
    server.close().await;
}
