//! Memories: create, read, patch with versions, delete; keyed writes; stable
//! cursor pagination over whole namespace segments; tenant isolation.

use engram_core::model::{Tier, WriteStatus};
use engram_core::service::inputs::{CreateMemories, ListInput, PatchInput, SearchInput};
use engram_core::{ErrorCode, MemoryService, TenantCtx};
use serde_json::json;

use crate::harness::{from_json, tenant, Harness, MINUTE};

async fn write(svc: &MemoryService, ctx: &TenantCtx, memories: serde_json::Value) -> Vec<(WriteStatus, String)> {
    let req: CreateMemories = from_json(json!({ "memories": memories }));
    svc.create_memories(ctx, req).await.unwrap().into_iter().map(|(s, m)| (s, m.id)).collect()
}

fn code<T: std::fmt::Debug>(r: engram_core::Result<T>) -> ErrorCode {
    r.expect_err("an error").code()
}

pub async fn crud_and_versions(h: Harness) {
    let svc = h.service();
    let ctx = TenantCtx::dev();
    let out = write(
        &svc,
        &ctx,
        json!([{"namespace": ["u", "ana"], "text": "Ana likes figs", "tags": ["food"],
        "metadata": {"source": "chat"}, "data": {"n": 1}}]),
    )
    .await;
    assert_eq!(out[0].0, WriteStatus::Created);
    let id = out[0].1.clone();
    let m = svc.get_memory(&ctx, &id).await.unwrap();
    assert_eq!((m.version, m.tier, m.text.as_str()), (1, Tier::Episodic, "Ana likes figs"));
    assert_eq!((m.created_at, m.updated_at, m.expires_at), (h.now(), h.now(), None));
    assert_eq!(m.namespace.segments(), ["u", "ana"]);

    h.advance(MINUTE);
    let patch: PatchInput = from_json(json!({"tier": "semantic", "data": null, "salience": 0.9}));
    let p = svc.update_memory(&ctx, &id, patch, Some(1)).await.unwrap();
    assert_eq!((p.version, p.tier, p.data.is_none(), p.salience), (2, Tier::Semantic, true, 0.9));
    assert_eq!((p.created_at, p.updated_at), (m.created_at, h.now()));
    assert_eq!(p.tags, ["food"], "fields not in the patch stay");
    // A stale If-Match is refused and changes nothing.
    let stale: PatchInput = from_json(json!({"text": "Ana hates figs"}));
    assert_eq!(code(svc.update_memory(&ctx, &id, stale, Some(1)).await), ErrorCode::VersionMismatch);
    assert_eq!(svc.get_memory(&ctx, &id).await.unwrap().text, "Ana likes figs");
    let empty: PatchInput = from_json(json!({}));
    assert_eq!(code(svc.update_memory(&ctx, &id, empty, None).await), ErrorCode::InvalidInput);

    svc.delete_memory(&ctx, &id).await.unwrap();
    assert_eq!(code(svc.get_memory(&ctx, &id).await), ErrorCode::NotFound);
    assert_eq!(code(svc.delete_memory(&ctx, &id).await), ErrorCode::NotFound);
    let patch: PatchInput = from_json(json!({"tags": []}));
    assert_eq!(code(svc.update_memory(&ctx, &id, patch, None).await), ErrorCode::NotFound);
    for bad in ["", "nope", "0190a0a0-0000-7000-8000-000000000000"] {
        assert_eq!(code(svc.get_memory(&ctx, bad).await), ErrorCode::NotFound, "{bad:?}");
    }
    // A batch is one transaction: one bad memory refuses them all.
    let req: CreateMemories =
        from_json(json!({"memories": [{"namespace": ["u"], "text": "ok"}, {"namespace": ["u"], "text": " "}]}));
    assert_eq!(code(svc.create_memories(&ctx, req).await), ErrorCode::InvalidInput);
    assert!(svc.search(&ctx, SearchInput::default()).await.unwrap().results.is_empty());
}

pub async fn keyed_writes_replace_in_place(h: Harness) {
    let svc = h.service();
    let ctx = TenantCtx::dev();
    let first = write(&svc, &ctx, json!([{"namespace": ["k"], "key": "pref", "text": "tea", "ttl_seconds": 60}])).await;
    h.advance(MINUTE / 2);
    let again = write(&svc, &ctx, json!([{"namespace": ["k"], "key": "pref", "text": "coffee"}])).await;
    assert_eq!(again[0], (WriteStatus::Updated, first[0].1.clone()));
    let m = svc.get_memory(&ctx, &first[0].1).await.unwrap();
    assert_eq!((m.text.as_str(), m.version, m.expires_at), ("coffee", 2, None));
    assert_eq!(m.created_at + MINUTE / 2, m.updated_at);
    // The same key in another namespace is another memory.
    let other = write(&svc, &ctx, json!([{"namespace": ["k2"], "key": "pref", "text": "coffee"}])).await;
    assert_eq!(other[0].0, WriteStatus::Created);
    // A key whose memory expired starts afresh.
    write(&svc, &ctx, json!([{"namespace": ["k"], "key": "short", "text": "soon gone", "ttl_seconds": 1}])).await;
    h.advance(2_000);
    let fresh = write(&svc, &ctx, json!([{"namespace": ["k"], "key": "short", "text": "back again"}])).await;
    assert_eq!(fresh[0].0, WriteStatus::Created);
    assert_eq!(svc.get_memory(&ctx, &fresh[0].1).await.unwrap().version, 1);
    // A key repeated in one batch is refused.
    let req: CreateMemories = from_json(
        json!({"memories": [{"namespace": ["k"], "key": "d", "text": "a"}, {"namespace": ["k"], "key": "d", "text": "b"}]}),
    );
    let e = svc.create_memories(&ctx, req).await.unwrap_err();
    assert!(e.public_message().contains("memories[1].key"), "{e}");
}

pub async fn pagination_is_stable_and_whole_segment(h: Harness) {
    let svc = h.service();
    let ctx = TenantCtx::dev();
    let mut ids = Vec::new();
    for i in 0..25 {
        let ns = if i % 5 == 0 { json!(["p", "a", "deep"]) } else { json!(["p", "a"]) };
        ids.extend(
            write(&svc, &ctx, json!([{"namespace": ns, "text": format!("note number {i}")}]))
                .await
                .into_iter()
                .map(|x| x.1),
        );
        h.advance(1);
    }
    write(&svc, &ctx, json!([{"namespace": ["p", "ab"], "text": "outside the prefix"}])).await;
    write(&svc, &ctx, json!([{"namespace": ["p", "a"], "text": "a semantic note", "tier": "semantic"}])).await;
    let page = |cursor: Option<String>, tier: Option<&str>| {
        let svc = svc.clone();
        let q = ListInput { namespace: Some("p/a".into()), tier: tier.map(str::to_owned), limit: Some(10), cursor };
        async move { svc.list_memories(&TenantCtx::dev(), q).await.unwrap() }
    };
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let p = page(cursor.clone(), Some("episodic")).await;
        seen.extend(p.memories.iter().map(|m| m.id.clone()));
        // A write during the walk never repeats or skips what was listed.
        write(&svc, &ctx, json!([{"namespace": ["elsewhere"], "text": format!("noise {}", seen.len())}])).await;
        match p.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, ids, "every memory once, in creation order; p/ab is not under p/a");
    assert_eq!(page(None, None).await.memories.len(), 10);
    assert_eq!(page(None, Some("semantic")).await.memories.len(), 1);
    let bad = ListInput { cursor: Some("not-a-cursor".into()), ..ListInput::default() };
    assert_eq!(code(svc.list_memories(&ctx, bad).await), ErrorCode::InvalidInput);
}

pub async fn tenants_are_isolated(h: Harness) {
    let svc = h.service();
    let (a, b) = (tenant("acme"), tenant("globex"));
    let id = write(&svc, &a, json!([{"namespace": ["shared"], "text": "acme's secret plan", "key": "plan"}])).await[0]
        .1
        .clone();
    write(&svc, &b, json!([{"namespace": ["shared"], "text": "globex's own plan"}])).await;
    assert_eq!(code(svc.get_memory(&b, &id).await), ErrorCode::NotFound);
    let patch: PatchInput = from_json(json!({"text": "stolen"}));
    assert_eq!(code(svc.update_memory(&b, &id, patch, None).await), ErrorCode::NotFound);
    assert_eq!(code(svc.delete_memory(&b, &id).await), ErrorCode::NotFound);
    assert_eq!(code(svc.cite(&b, &id).await), ErrorCode::NotFound);
    let q: SearchInput = from_json(json!({"query": "plan secret", "mode": "keyword"}));
    let found = svc.search(&b, q.clone()).await.unwrap();
    assert_eq!(found.results.len(), 1);
    assert_eq!(found.results[0].memory.text, "globex's own plan");
    assert_eq!(svc.search(&a, q).await.unwrap().results[0].memory.text, "acme's secret plan");
    let listed = svc.list_memories(&b, ListInput::default()).await.unwrap();
    assert_eq!(listed.memories.len(), 1);
    assert!(svc.get_item(&b, vec!["shared".into()], "plan", Some(false)).await.unwrap().is_none());
    // The same key in each tenant is each tenant's own.
    write(&svc, &b, json!([{"namespace": ["shared"], "text": "globex plan B", "key": "plan"}])).await;
    assert_eq!(svc.get_memory(&a, &id).await.unwrap().text, "acme's secret plan");
    let turns: engram_core::service::inputs::AddTurns =
        from_json(json!({"turns": [{"role": "user", "content": "hi there"}]}));
    svc.add_turns(&a, "s1", turns).await.unwrap();
    assert_eq!(code(svc.get_session(&b, "s1").await), ErrorCode::NotFound);
    assert_eq!(code(svc.delete_session(&b, "s1").await), ErrorCode::NotFound);
    assert!(svc.get_session(&a, "s1").await.is_ok());
}

pub async fn concurrent_writes_are_all_kept(h: Harness) {
    let svc = h.service();
    let mut tasks = Vec::new();
    for w in 0..16 {
        let svc = svc.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..50 {
                ids.push(
                    write(
                        &svc,
                        &TenantCtx::dev(),
                        json!([{"namespace": ["c"], "text": format!("writer {w} note {i}")}]),
                    )
                    .await[0]
                        .1
                        .clone(),
                );
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
    let q = ListInput { namespace: Some("c".into()), limit: Some(1000), ..ListInput::default() };
    assert_eq!(svc.list_memories(&TenantCtx::dev(), q).await.unwrap().memories.len(), 800);
}

pub async fn concurrent_writers_of_one_key_serialise(h: Harness) {
    let svc = h.service();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let svc = svc.clone();
        tasks.push(tokio::spawn(async move {
            write(&svc, &TenantCtx::dev(), json!([{"namespace": ["k"], "key": "same", "text": format!("value {i}")}]))
                .await[0]
                .0
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == WriteStatus::Created).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == WriteStatus::Updated).count(), 19);
    let q: SearchInput = from_json(json!({"query": "value", "mode": "keyword"}));
    let hits = svc.search(&TenantCtx::dev(), q).await.unwrap().results;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].memory.version, 20, "one memory, written twenty times");
    let _ = h;
}

/// A key change takes effect at once on the node that made it (other nodes
/// hear of it through the store's events; see the multi-node tests), and a
/// lookup is cached for at most five seconds of the clock.
pub async fn key_changes_take_effect_at_once(h: Harness) {
    use engram_core::auth::Scopes;
    let svc = h.service();
    assert_eq!(svc.authenticate(None).await.unwrap().tenant, "default", "dev mode while no key exists");
    let (info, secret) = svc.create_key("acme", "ci", Scopes::parse_list("read,write").unwrap(), None).await.unwrap();
    assert_eq!(svc.authenticate(None).await.unwrap_err().code(), ErrorCode::Unauthenticated, "dev mode ends at once");
    assert_eq!(svc.authenticate(Some(&secret)).await.unwrap().tenant, "acme");
    h.advance(4_000);
    assert!(svc.authenticate(Some(&secret)).await.is_ok(), "cached");
    assert!(svc.revoke_key(&info.id).await.unwrap());
    assert!(!svc.revoke_key(&info.id).await.unwrap());
    assert_eq!(svc.authenticate(Some(&secret)).await.unwrap_err().code(), ErrorCode::Unauthenticated, "at once");
    assert_eq!(svc.authenticate(Some("egk_not-a-key")).await.unwrap_err().code(), ErrorCode::Unauthenticated);
    let keys = svc.list_keys(Some("acme")).await.unwrap();
    assert_eq!((keys.len(), keys[0].revoked_at), (1, Some(h.now())));
}

/// The tenant's model record is checked once and then trusted for a few
/// seconds (search and writes need not read it each time); a record changed
/// by another process — another model's vectors — is noticed within that.
pub async fn model_changes_are_noticed_within_the_cache_lifetime(h: Harness) {
    use engram_core::embed::{EmbedError, Embedder};
    use engram_core::service::ServiceOptions;
    #[derive(Debug)]
    struct OtherModel;
    impl Embedder for OtherModel {
        fn model(&self) -> &str {
            "another-model-32"
        }
        fn dims(&self) -> usize {
            crate::harness::DIMS
        }
        fn embed(&self, _: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
            Err(EmbedError::Unavailable("not in this test".into()))
        }
    }
    let ctx = TenantCtx::dev();
    let svc = h.vector_service();
    let v = crate::harness::Rng(3).unit(crate::harness::DIMS);
    let search = |svc: MemoryService, v: Vec<f32>| async move {
        let input: SearchInput = from_json(json!({"query_embedding": v, "mode": "vector"}));
        svc.search(&TenantCtx::dev(), input).await.map(|o| o.results.len())
    };
    write(&svc, &ctx, json!([{"namespace": ["n"], "text": "a fact", "embedding": v}])).await;
    assert_eq!(search(svc.clone(), v.clone()).await.unwrap(), 1);
    // Another process re-embeds the tenant with another model.
    let opts = ServiceOptions {
        embedder: Some(std::sync::Arc::new(OtherModel)),
        clock: h.clock.clone(),
        ..Default::default()
    };
    let other = MemoryService::with_options(h.admin_store(), engram_core::service::AuthMode::DevUntilKeysExist, opts);
    other.reembed("default").await.unwrap();
    other.ensure_tenant_model("default").await.unwrap();
    h.advance(5_000);
    assert_eq!(
        code(search(svc.clone(), v.clone()).await),
        ErrorCode::EmbeddingMismatch,
        "noticed once trusted no longer"
    );
}

/// U+0000 cannot be stored by every backend (PostgreSQL's text cannot hold
/// it), so every backend refuses it the same way, and nothing is written.
pub async fn nul_characters_are_refused_everywhere(h: Harness) {
    let svc = h.service();
    let ctx = TenantCtx::dev();
    for bad in [
        json!({"namespace": ["n"], "text": "a\u{0}b"}),
        json!({"namespace": ["n"], "text": "ok", "metadata": {"k": ["x", "a\u{0}"]}}),
        json!({"namespace": ["n"], "text": "ok", "data": {"deep": {"list": ["\u{0}"]}}}),
        json!({"namespace": ["n"], "text": "ok", "data": {"\u{0}": 1}}),
        json!({"namespace": ["n"], "text": "ok", "tags": ["a\u{0}"]}),
        json!({"namespace": ["n"], "text": "ok", "key": "k\u{0}"}),
    ] {
        let req: CreateMemories = from_json(json!({ "memories": [bad.clone()] }));
        assert_eq!(code(svc.create_memories(&ctx, req).await), ErrorCode::InvalidInput, "{bad}");
    }
    let item: engram_core::service::PutItem =
        from_json(json!({"namespace": ["kb"], "key": "k", "value": {"a": "x\u{0}"}}));
    assert_eq!(code(svc.put_item(&ctx, item).await), ErrorCode::InvalidInput);
    let turns: engram_core::service::inputs::AddTurns =
        from_json(json!({"turns": [{"role": "user", "content": "hi\u{0}"}]}));
    assert_eq!(code(svc.add_turns(&ctx, "s1", turns).await), ErrorCode::InvalidInput);
    let id = write(&svc, &ctx, json!([{"namespace": ["n"], "text": "kept"}])).await[0].1.clone();
    let patch: PatchInput = from_json(json!({"metadata": {"k": "\u{0}"}}));
    assert_eq!(code(svc.update_memory(&ctx, &id, patch, None).await), ErrorCode::InvalidInput);
    let filter = SearchInput { filter: Some(json!({"metadata.k": "a\u{0}"})), ..Default::default() };
    assert_eq!(code(svc.search(&ctx, filter).await), ErrorCode::InvalidFilter);
    // An id or key holding it names nothing stored.
    assert_eq!(code(svc.get_memory(&ctx, "a\u{0}").await), ErrorCode::NotFound);
    assert_eq!(code(svc.delete_memory(&ctx, "a\u{0}").await), ErrorCode::NotFound);
    let listed = svc.list_memories(&ctx, ListInput::default()).await.unwrap();
    assert_eq!(listed.memories.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["kept"]);
}
