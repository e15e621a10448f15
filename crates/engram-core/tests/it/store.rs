//! The store under concurrency: group commit, isolation of a failing write.

use engram_core::service::inputs::{CreateMemories, MemoryInput, SearchInput};
use engram_core::TenantCtx;
use serde_json::json;

fn input(ns: &str, text: &str, key: Option<&str>) -> MemoryInput {
    serde_json::from_value(json!({"namespace": [ns], "text": text, "key": key})).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_are_group_committed_and_all_kept() {
    let (svc, _dir) = crate::service();
    let ctx = TenantCtx::dev();
    let mut tasks = Vec::new();
    for w in 0..16 {
        let (svc, ctx) = (svc.clone(), ctx.clone());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..50 {
                let out = svc
                    .create_memories(&ctx, CreateMemories { memories: vec![input("c", &format!("w{w} n{i}"), None)], wait: None })
                    .await
                    .unwrap();
                ids.push(out[0].1.id.clone());
            }
            ids
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 800);
    let page = svc.list_memories(&ctx, serde_json::from_value(json!({"namespace": "c", "limit": 1000})).unwrap()).await.unwrap();
    assert_eq!(page.memories.len(), 800);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_of_one_key_serialise_into_one_memory() {
    let (svc, _dir) = crate::service();
    let ctx = TenantCtx::dev();
    // Duplicate keys inside one batch are refused before they reach the writer;
    // concurrent writers of the same key serialise into created + updated.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (svc, ctx) = (svc.clone(), ctx.clone());
        tasks.push(tokio::spawn(async move {
            svc.create_memories(&ctx, CreateMemories { memories: vec![input("k", &format!("value {i}"), Some("same"))], wait: None }).await
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(format!("{:?}", t.await.unwrap().unwrap()[0].0));
    }
    assert_eq!(statuses.iter().filter(|s| *s == "Created").count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| *s == "Updated").count(), 19);
    let bad = svc
        .create_memories(&ctx, CreateMemories { memories: vec![input("k", "a", Some("dup")), input("k", "b", Some("dup"))], wait: None })
        .await
        .unwrap_err();
    assert!(bad.public_message().contains("memories[1].key"));
    let hits = svc.search(&ctx, SearchInput { query: Some("value".into()), ..Default::default() }).await.unwrap();
    assert_eq!(hits.results.len(), 1);
    assert_eq!(hits.results[0].memory.version, 20);
}
