//! Keys limited to namespace prefixes: such a caller reads, searches,
//! recalls, lists and writes only under its prefixes, on every path — by id,
//! by key, by prefix, by session — and whatever lies elsewhere is as if it
//! did not exist (404) or outside its reach (403), never returned.

use engram_core::auth::NamespaceGrant;
use engram_core::service::inputs::{AddTurns, CreateMemories, ListInput, PatchInput, RecallInput};
use engram_core::service::{PutItem, SearchItems};
use engram_core::{ErrorCode, MemoryService, TenantCtx};
use serde_json::{json, Value};

use crate::harness::{from_json, Harness, Rng, DIMS};

fn limited(prefixes: &str) -> TenantCtx {
    TenantCtx { namespaces: Some(NamespaceGrant::parse_list(prefixes).unwrap()), ..TenantCtx::dev() }
}

fn code<T: std::fmt::Debug>(r: engram_core::Result<T>) -> ErrorCode {
    r.expect_err("an error").code()
}

/// Writes one memory per namespace (as an unlimited caller); their ids by namespace.
async fn fill(svc: &MemoryService, with_vectors: Option<&[f32]>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for ns in ["users/alice", "users/alice/prefs", "users/alicia", "users/bob", "shared", "sharedx"] {
        let mut m = json!({"namespace": ns.split('/').collect::<Vec<_>>(), "text": format!("tea notes kept in {ns}")});
        if let Some(v) = with_vectors {
            m["embedding"] = json!(v);
        }
        let req: CreateMemories = from_json(json!({ "memories": [m] }));
        let id = svc.create_memories(&TenantCtx::dev(), req).await.unwrap().remove(0).1.id;
        out.push((ns.to_owned(), id));
    }
    out
}

async fn found(svc: &MemoryService, ctx: &TenantCtx, body: Value) -> Vec<String> {
    let mut ns: Vec<String> = svc
        .search(ctx, from_json(body))
        .await
        .unwrap()
        .results
        .into_iter()
        .map(|h| h.memory.namespace.joined())
        .collect();
    ns.sort();
    ns
}

pub async fn a_limited_caller_reaches_only_its_namespaces(h: Harness) {
    let svc = h.service();
    let ids = fill(&svc, None).await;
    let alice = limited("users/alice,shared");
    let mine = ["shared", "users/alice", "users/alice/prefs"];

    // Search and listing: everything it may see, and only that, whatever the prefix asked.
    assert_eq!(found(&svc, &alice, json!({"query": "tea notes", "mode": "keyword", "limit": 50})).await, mine);
    let users = json!({"query": "tea", "mode": "keyword", "namespace_prefix": ["users"]});
    assert_eq!(found(&svc, &alice, users).await, ["users/alice", "users/alice/prefs"]);
    let bob = json!({"query": "tea", "namespace_prefix": ["users", "bob"]});
    assert_eq!(code(svc.search(&alice, from_json(bob)).await), ErrorCode::Forbidden);
    let listing = |ns: &str| ListInput { namespace: Some(ns.into()), ..ListInput::default() };
    let listed: Vec<String> =
        svc.list_memories(&alice, listing("")).await.unwrap().memories.iter().map(|m| m.namespace.joined()).collect();
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(listed.iter().all(|n| mine.contains(&n.as_str())), "{listed:?}");
    assert_eq!(code(svc.list_memories(&alice, listing("users/alicia")).await), ErrorCode::Forbidden);

    // By id: what lies elsewhere does not exist for it.
    for (ns, id) in &ids {
        let inside = mine.contains(&ns.as_str());
        assert_eq!(svc.get_memory(&alice, id).await.is_ok(), inside, "{ns}");
        if !inside {
            assert_eq!(code(svc.get_memory(&alice, id).await), ErrorCode::NotFound, "{ns}");
            assert_eq!(code(svc.cite(&alice, id).await), ErrorCode::NotFound, "{ns}");
            let patch: PatchInput = from_json(json!({"text": "overwritten"}));
            assert_eq!(code(svc.update_memory(&alice, id, patch, None).await), ErrorCode::NotFound, "{ns}");
            assert_eq!(code(svc.delete_memory(&alice, id).await), ErrorCode::NotFound, "{ns}");
            let m = svc.get_memory(&TenantCtx::dev(), id).await.unwrap();
            assert_eq!((m.version, m.text.contains("tea")), (1, true), "{ns}: untouched");
        }
    }
    let (_, shared) = ids.iter().find(|(ns, _)| ns == "shared").unwrap();
    let patch: PatchInput = from_json(json!({"tags": ["mine"]}));
    assert_eq!(svc.update_memory(&alice, shared, patch, None).await.unwrap().version, 2);

    // Writes: only inside; one memory outside refuses the whole batch.
    let batch: CreateMemories = from_json(json!({"memories": [
        {"namespace": ["users", "alice"], "text": "ok"},
        {"namespace": ["users", "bob"], "text": "not mine"},
    ]}));
    let err = svc.create_memories(&alice, batch).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Forbidden);
    assert!(err.public_message().contains("memories[1].namespace"), "{err}");
    let everything = json!({"query": "not mine", "mode": "keyword"});
    assert!(found(&svc, &TenantCtx::dev(), everything).await.is_empty(), "nothing of the batch was written");

    // Items: put, get, delete by namespace; search and namespaces by prefix.
    let put = |ns: &[&str], key: &str| -> PutItem {
        from_json(json!({"namespace": ns, "key": key, "value": {"note": "tea with lemon"}}))
    };
    svc.put_item(&TenantCtx::dev(), put(&["users", "bob"], "k")).await.unwrap();
    svc.put_item(&alice, put(&["users", "alice"], "k")).await.unwrap();
    assert_eq!(code(svc.put_item(&alice, put(&["users", "bob"], "k")).await), ErrorCode::Forbidden);
    let bob_ns = vec!["users".to_string(), "bob".to_string()];
    assert_eq!(code(svc.get_item(&alice, bob_ns.clone(), "k", None).await), ErrorCode::Forbidden);
    assert_eq!(code(svc.delete_item(&alice, bob_ns.clone(), "k").await), ErrorCode::Forbidden);
    assert!(svc.get_item(&TenantCtx::dev(), bob_ns, "k", None).await.unwrap().is_some(), "bob's item stays");
    let items = svc.search_items(&alice, SearchItems { query: Some("lemon".into()), ..SearchItems::default() });
    let items: Vec<String> = items.await.unwrap().iter().map(|i| i.namespace.joined()).collect();
    assert_eq!(items, ["users/alice"]);
    let spaces = svc.list_namespaces(&alice, None, None, None, None, None).await.unwrap();
    assert_eq!(spaces.iter().map(|n| n.joined()).collect::<Vec<_>>(), ["users/alice"]);

    // Sessions: created only inside; one elsewhere cannot be read, added to,
    // distilled or deleted.
    let turns = |ns: Option<&str>| -> AddTurns {
        let mut body = json!({"turns": [{"role": "user", "content": "I drink green tea"}]});
        if let Some(ns) = ns {
            body["namespace"] = json!(ns.split('/').collect::<Vec<_>>());
        }
        from_json(body)
    };
    assert_eq!(code(svc.add_turns(&alice, "s-default", turns(None)).await), ErrorCode::Forbidden, "sessions/<id>");
    svc.add_turns(&alice, "s-alice", turns(Some("users/alice"))).await.unwrap();
    svc.add_turns(&TenantCtx::dev(), "s-bob", turns(Some("users/bob"))).await.unwrap();
    assert_eq!(code(svc.add_turns(&alice, "s-bob", turns(None)).await), ErrorCode::NotFound, "not there for alice");
    assert_eq!(code(svc.get_session(&alice, "s-bob").await), ErrorCode::NotFound);
    assert_eq!(code(svc.distill_session(&alice, "s-bob").await), ErrorCode::NotFound);
    assert_eq!(code(svc.delete_session(&alice, "s-bob").await), ErrorCode::NotFound);
    let bob_session = svc.get_session(&TenantCtx::dev(), "s-bob").await.unwrap();
    assert_eq!(bob_session.turn_count, 1, "bob's session untouched");
    assert_eq!(svc.get_session(&alice, "s-alice").await.unwrap().turn_count, 1);

    // Recall: another's session lends no working memory, and long-term
    // memory comes from its namespaces only.
    let recall: RecallInput = from_json(json!({"query": "what tea do I drink", "session_id": "s-bob"}));
    let out = svc.recall(&alice, recall).await.unwrap();
    assert!(out.results.iter().all(|r| !r.text.contains("green tea")), "{:?}", out.results);
    let recall: RecallInput = from_json(json!({"query": "tea notes", "relevance_floor": 0.0}));
    let out = svc.recall(&alice, recall).await.unwrap();
    assert!(!out.results.is_empty());
    for r in &out.results {
        assert!(!r.text.contains("alicia") && !r.text.contains("bob") && !r.text.contains("sharedx"), "{r:?}");
    }
}

pub async fn vector_search_of_a_limited_caller_stays_in_its_namespaces(h: Harness) {
    let svc = h.vector_service();
    let v = Rng(7).unit(DIMS);
    fill(&svc, Some(&v)).await;
    let alice = limited("users/alice,shared");
    for mode in ["vector", "hybrid"] {
        let body = json!({"query": "tea", "query_embedding": v, "mode": mode, "limit": 50});
        assert_eq!(found(&svc, &alice, body).await, ["shared", "users/alice", "users/alice/prefs"], "{mode}");
        let narrow = json!({"query_embedding": v, "mode": mode, "namespace_prefix": ["users"], "limit": 50});
        assert_eq!(found(&svc, &alice, narrow).await, ["users/alice", "users/alice/prefs"], "{mode}");
    }
}
