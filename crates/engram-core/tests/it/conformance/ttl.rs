//! Time to live, on the harness's clock: an expired memory is never returned
//! by any read, whether or not the sweep has run; pinned memories never
//! expire; item reads restart an item's TTL; idle sessions end and their
//! undistilled turns are kept for distillation.

use engram_core::service::inputs::{AddTurns, CreateMemories, ListInput, SearchInput};
use engram_core::service::{PutItem, SearchItems};
use engram_core::{ErrorCode, TenantCtx};
use serde_json::json;

use crate::harness::{fading_and_lasting_embers, from_json, only_the_lasting_embers_are_found, Harness, MINUTE};

pub async fn expired_memories_are_never_returned_and_are_swept(h: Harness) {
    let svc = h.service();
    let ctx = TenantCtx::dev();
    let req: CreateMemories = from_json(json!({"memories": [
        {"namespace": ["t"], "text": "short lived fact", "ttl_seconds": 30},
        {"namespace": ["t"], "text": "pinned fact survives", "ttl_seconds": 30, "pinned": true},
        {"namespace": ["t"], "text": "long lived fact", "ttl_seconds": 3600},
        {"namespace": ["t"], "key": "k", "text": "short lived item fact", "ttl_seconds": 30},
    ]}));
    let ids: Vec<String> = svc.create_memories(&ctx, req).await.unwrap().into_iter().map(|(_, m)| m.id).collect();
    assert_eq!(svc.get_memory(&ctx, &ids[0]).await.unwrap().expires_at, Some(h.now() + 30_000));
    assert_eq!(svc.get_memory(&ctx, &ids[1]).await.unwrap().expires_at, None, "pinned memories never expire");
    h.advance(29_999);
    assert!(svc.get_memory(&ctx, &ids[0]).await.is_ok(), "live until the instant it expires");
    h.advance(1);
    let count = |body: serde_json::Value| {
        let svc = svc.clone();
        async move {
            let input: SearchInput = from_json(body);
            svc.search(&TenantCtx::dev(), input).await.unwrap().results.len()
        }
    };
    assert_eq!(svc.get_memory(&ctx, &ids[0]).await.unwrap_err().code(), ErrorCode::NotFound);
    assert_eq!(count(json!({"query": "fact", "mode": "keyword"})).await, 2);
    assert_eq!(count(json!({})).await, 2);
    assert_eq!(svc.list_memories(&ctx, ListInput::default()).await.unwrap().memories.len(), 2);
    assert!(svc.get_item(&ctx, vec!["t".into()], "k", Some(false)).await.unwrap().is_none());
    let items: SearchItems = from_json(json!({"query": "fact"}));
    assert!(svc.search_items(&ctx, items).await.unwrap().is_empty());
    // Nothing can be done to an expired memory.
    assert_eq!(svc.delete_memory(&ctx, &ids[0]).await.unwrap_err().code(), ErrorCode::NotFound);
    assert_eq!(svc.cite(&ctx, &ids[0]).await.unwrap_err().code(), ErrorCode::NotFound);
    // The sweep deletes what has expired, once.
    assert_eq!(svc.sweep_expired(100).await.unwrap(), 2);
    assert_eq!(svc.sweep_expired(100).await.unwrap(), 0);
    h.advance(3_600_000);
    assert_eq!(svc.sweep_expired(100).await.unwrap(), 1);
    assert_eq!(count(json!({})).await, 1, "only the pinned memory is left");
}

pub async fn expired_matches_do_not_crowd_out_live_ones(h: Harness) {
    let svc = h.service();
    let ctx = TenantCtx::dev();
    // Sixty memories that match both words expire; two that match one live on.
    svc.create_memories(&ctx, from_json(fading_and_lasting_embers())).await.unwrap();
    h.advance(2_000);
    only_the_lasting_embers_are_found(&svc, &ctx).await;
    // Once swept, nothing has expired and the index's hits are taken as they are.
    assert_eq!(svc.sweep_expired(100).await.unwrap(), 60);
    let input: SearchInput = from_json(json!({"query": "fading ember", "mode": "keyword", "limit": 5}));
    assert_eq!(svc.search(&ctx, input).await.unwrap().results.len(), 2);
}

pub async fn item_reads_refresh_the_ttl(h: Harness) {
    let svc = h.service();
    let ctx = TenantCtx::dev();
    let put = |key: &str| -> PutItem {
        from_json(json!({"namespace": ["ttl"], "key": key, "value": {"v": key}, "ttl": 1.0}))
    };
    svc.put_item(&ctx, put("kept")).await.unwrap();
    svc.put_item(&ctx, put("dropped")).await.unwrap();
    for _ in 0..5 {
        h.advance(40_000);
        assert!(
            svc.get_item(&ctx, vec!["ttl".into()], "kept", None).await.unwrap().is_some(),
            "reading refreshes the TTL"
        );
    }
    assert!(
        svc.get_item(&ctx, vec!["ttl".into()], "dropped", Some(false)).await.unwrap().is_none(),
        "unread, it expired"
    );
    // A search refreshes what it returns, unless told not to.
    let search =
        |refresh: bool| -> SearchItems { from_json(json!({"namespace_prefix": ["ttl"], "refresh_ttl": refresh})) };
    h.advance(40_000);
    assert_eq!(svc.search_items(&ctx, search(true)).await.unwrap().len(), 1);
    h.advance(40_000);
    assert_eq!(svc.search_items(&ctx, search(false)).await.unwrap().len(), 1);
    h.advance(40_000);
    assert!(svc.search_items(&ctx, search(false)).await.unwrap().is_empty(), "refreshed 80 s ago, its minute is up");
}

pub async fn sessions_end_when_idle_and_keep_their_turns(h: Harness) {
    let svc = h.service();
    let ctx = TenantCtx::dev();
    let turns = |t: &[&str]| -> AddTurns {
        from_json(json!({"turns": t.iter().map(|c| json!({"role": "user", "content": c})).collect::<Vec<_>>()}))
    };
    let a =
        svc.add_turns(&ctx, "s", turns(&["I moved to Lisbon in March.", "My brother teaches physics."])).await.unwrap();
    assert_eq!(a.expires_at, h.now() + 86_400_000, "a day's idle TTL by default");
    h.advance(86_400_000 - 1);
    assert_eq!(svc.get_session(&ctx, "s").await.unwrap().turn_count, 2);
    h.advance(1);
    assert_eq!(svc.get_session(&ctx, "s").await.unwrap_err().code(), ErrorCode::NotFound, "unreadable at once");
    assert_eq!(svc.sweep_sessions(100).await.unwrap(), 1);
    assert_eq!(svc.sweep_sessions(100).await.unwrap(), 0);
    let due = svc.due_distillations(16).await.unwrap();
    assert_eq!(due.len(), 1, "the undistilled turns are not lost");
    assert_eq!(due[0].turns.len(), 2);
    // Appending to an expired session that the sweep has not reached ends it
    // (queuing its turns) and starts a new one.
    svc.add_turns(&ctx, "t", turns(&["We adopted a greyhound called Pixel."])).await.unwrap();
    h.advance(86_400_000 + MINUTE);
    let again = svc.add_turns(&ctx, "t", turns(&["hello again"])).await.unwrap();
    assert_eq!(again.turn_count, 1, "a new session began");
    let due = svc.due_distillations(16).await.unwrap();
    assert_eq!(due.len(), 2);
    assert_eq!(due[1].turns[0].content, "We adopted a greyhound called Pixel.");
}
