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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn words_common_to_a_large_index_are_not_searched() {
    let (svc, _dir) = crate::service();
    let ctx = TenantCtx::dev();
    // 10 000 memories (the size from which common words are dropped): all say
    // "weather", one in ten says "umbrella", one says "zeppelin".
    for start in (0..10_000).step_by(1000) {
        let memories = (start..start + 1000)
            .map(|i| {
                let extra = if i == 4321 { " zeppelin" } else if i % 10 == 0 { " umbrella" } else { "" };
                input("w", &format!("note {i} about the weather{extra}"), None)
            })
            .collect();
        svc.create_memories(&ctx, CreateMemories { memories, wait: None }).await.unwrap();
    }
    let search = |q: &str| {
        let svc = svc.clone();
        let input: SearchInput = serde_json::from_value(json!({"query": q, "mode": "keyword", "limit": 20, "context_weight": 0})).unwrap();
        async move { svc.search(&TenantCtx::dev(), input).await.unwrap().results.into_iter().map(|h| h.memory.text).collect::<Vec<_>>() }
    };
    // "weather" (in every memory) and "umbrella" (in 10 %) are dropped beside a rarer word...
    assert_eq!(search("weather umbrella zeppelin").await, ["note 4321 about the weather zeppelin"]);
    // ... but the rarest word of a query is always kept.
    let found = search("weather umbrella").await;
    assert_eq!(found.len(), 20);
    assert!(found.iter().all(|t| t.ends_with("umbrella")), "{found:?}");
    assert_eq!(search("weather").await.len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyword_search_finds_a_small_scope_inside_a_big_shared_index() {
    let (svc, _dir) = crate::service();
    let big = TenantCtx::dev();
    let small = TenantCtx { tenant: "small".into(), ..TenantCtx::dev() };
    let many = (0..300).map(|i| input("x", &format!("apple pie recipe {i}"), None)).collect();
    svc.create_memories(&big, CreateMemories { memories: many, wait: None }).await.unwrap();
    let few = vec![input("y", "apple tart", None), input("y", "apple crumble", None)];
    svc.create_memories(&big, CreateMemories { memories: few.clone(), wait: None }).await.unwrap();
    svc.create_memories(&small, CreateMemories { memories: few, wait: None }).await.unwrap();
    let search = |ctx: TenantCtx, body: serde_json::Value| {
        let svc = svc.clone();
        let input: SearchInput = serde_json::from_value(body).unwrap();
        async move {
            let mut texts: Vec<String> = svc.search(&ctx, input).await.unwrap().results.into_iter().map(|h| h.memory.text).collect();
            texts.sort();
            texts
        }
    };
    let want = ["apple crumble", "apple tart"];
    // The index's best 200 "apple" matches are all the big scope's; the small
    // scopes are found anyway, and again once they are known to be narrow.
    for _ in 0..2 {
        assert_eq!(search(small.clone(), json!({"query": "apple", "mode": "keyword", "context_weight": 0})).await, want);
        let y = json!({"query": "apple", "mode": "keyword", "namespace_prefix": ["y"], "context_weight": 0});
        assert_eq!(search(big.clone(), y).await, want);
    }
    let x = search(big.clone(), json!({"query": "apple", "mode": "keyword", "namespace_prefix": ["x"], "limit": 20})).await;
    assert_eq!(x.len(), 20);
    assert!(x.iter().all(|t| t.starts_with("apple pie")), "{x:?}");
}
