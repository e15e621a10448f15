//! The merge rule on every path a memory takes: a write with its vector, a
//! write whose vector arrives later through the queue, a distillation, a
//! LangGraph put, a patch of its text. Never two live copies; the folded id
//! keeps answering with the survivor.

use engram_core::model::{Tier, WriteStatus};
use engram_core::service::inputs::{AddTurns, CreateMemories, ListInput, PatchInput, SearchInput};
use engram_core::service::PutItem;
use engram_core::{MemoryService, TenantCtx};
use serde_json::{json, Value};

use crate::harness::{from_json, nudged, Harness, Rng, DIMS, MINUTE};

async fn write(svc: &MemoryService, memories: Value) -> Vec<(WriteStatus, engram_core::model::Memory)> {
    let req: CreateMemories = from_json(json!({ "memories": memories }));
    svc.create_memories(&TenantCtx::dev(), req).await.unwrap()
}

async fn listed(svc: &MemoryService, ns: &str) -> Vec<String> {
    let q = ListInput { namespace: Some(ns.into()), limit: Some(1000), ..ListInput::default() };
    svc.list_memories(&TenantCtx::dev(), q).await.unwrap().memories.into_iter().map(|m| m.text).collect()
}

/// Embeds what waits in the queue with `vector_of(text)`, as the embedding
/// job would with a model; returns how many vectors were stored.
async fn embed_queue(svc: &MemoryService, vector_of: impl Fn(&str) -> Vec<f32>) -> usize {
    let pending = svc.pending_embeddings(100, vec![]).await.unwrap();
    let done = pending.iter().map(|p| (p.clone(), vector_of(&p.text))).collect();
    svc.store_embeddings(done).await.unwrap()
}

pub async fn near_duplicates_merge_at_write_time(h: Harness) {
    let svc = h.vector_service();
    let mut rng = Rng(9);
    let v = rng.unit(DIMS);
    let first =
        write(&svc, json!([{"namespace": ["n"], "text": "Alice likes green tea.", "embedding": v, "tags": ["a"]}]))
            .await;
    h.advance(MINUTE);
    // The same normalised text: case, spacing and trailing punctuation differ.
    let out = write(
        &svc,
        json!([{"namespace": ["n"], "text": "  alice LIKES   green tea ", "tags": ["drinks"], "salience": 0.9}]),
    )
    .await;
    assert_eq!(out[0].0, WriteStatus::Merged);
    let m = &out[0].1;
    assert_eq!(
        (m.id.as_str(), m.text.as_str()),
        (first[0].1.id.as_str(), "Alice likes green tea."),
        "the older survives"
    );
    assert_eq!((m.tags.clone(), m.version, m.salience), (vec!["a".to_string(), "drinks".to_string()], 2, 0.9));
    // A different text whose vector is within cosine 0.95.
    let out =
        write(&svc, json!([{"namespace": ["n"], "text": "Alice enjoys green tea", "embedding": nudged(&v, 0.05)}]))
            .await;
    assert_eq!(out[0].0, WriteStatus::Merged);
    // Another namespace, or a distant vector, is a new memory.
    let out = write(&svc, json!([{"namespace": ["m"], "text": "Alice likes green tea", "embedding": v}])).await;
    assert_eq!(out[0].0, WriteStatus::Created);
    let out = write(&svc, json!([{"namespace": ["n"], "text": "Bob plays chess", "embedding": rng.unit(DIMS)}])).await;
    assert_eq!(out[0].0, WriteStatus::Created);
    // Duplicates inside one batch collapse too.
    let w = rng.unit(DIMS);
    let out = write(&svc, json!([{"namespace": ["n"], "text": "Carol runs", "embedding": w}, {"namespace": ["n"], "text": "Carol goes running", "embedding": w}])).await;
    assert_eq!((out[0].0, out[1].0), (WriteStatus::Created, WriteStatus::Merged));
    assert_eq!(out[0].1.id, out[1].1.id);
    assert_eq!(listed(&svc, "n").await.len(), 3);
}

pub async fn duplicates_found_when_the_vector_arrives_are_folded(h: Harness) {
    let svc = h.vector_service();
    let mut rng = Rng(21);
    let shellfish = rng.unit(DIMS);
    // Two restatements written without waiting: no vector yet, different words.
    let a = write(&svc, json!([{"namespace": ["p"], "text": "I am allergic to shellfish.", "tags": ["health"]}])).await;
    h.advance(MINUTE);
    let b = write(&svc, json!([{"namespace": ["p"], "text": "I'm allergic to shellfish!", "metadata": {"source": "chat"}, "salience": 0.7}])).await;
    write(&svc, json!([{"namespace": ["p"], "text": "I like sailing"}])).await;
    assert_eq!((a[0].0, b[0].0), (WriteStatus::Created, WriteStatus::Created));
    assert_eq!(listed(&svc, "p").await.len(), 3, "until their meaning is known they are two");
    let sailing = rng.unit(DIMS);
    let stored = embed_queue(&svc, |t| {
        if t.contains("sailing") {
            sailing.clone()
        } else if t.starts_with("I'm") {
            nudged(&shellfish, 0.1)
        } else {
            shellfish.clone()
        }
    })
    .await;
    assert_eq!(stored, 3);
    assert_eq!(listed(&svc, "p").await, ["I am allergic to shellfish.", "I like sailing"], "folded into the older");
    let survivor = svc.get_memory(&TenantCtx::dev(), &a[0].1.id).await.unwrap();
    assert_eq!(survivor.tags, ["health"]);
    assert_eq!((survivor.metadata["source"].as_str(), survivor.salience, survivor.version), (Some("chat"), 0.7, 2));
    // The folded id answers with the survivor.
    assert_eq!(svc.get_memory(&TenantCtx::dev(), &b[0].1.id).await.unwrap().id, a[0].1.id);
    assert_eq!(svc.pending_embeddings(100, vec![]).await.unwrap().len(), 0);
}

pub async fn a_distilled_restatement_merges_with_an_api_memory(h: Harness) {
    let svc = h.service();
    let ctx = TenantCtx::dev();
    let api = write(&svc, json!([{"namespace": ["sessions", "chat"], "text": "I am allergic to shellfish."}])).await;
    h.advance(MINUTE);
    // The distilled memory reads "Caroline: I am allergic to shellfish.": the
    // speaker's prefix does not defeat the rule.
    let turns: AddTurns = from_json(json!({"turns": [
        {"role": "user", "content": "I am allergic to shellfish.", "metadata": {"speaker": "Caroline"}},
        {"role": "user", "content": "My sister Maria lives in Porto and teaches chemistry.", "metadata": {"speaker": "Caroline"}},
        {"role": "assistant", "content": "Noted, I will remember that."},
        {"role": "user", "content": "We adopted a greyhound called Pixel last week.", "metadata": {"speaker": "Caroline"}},
        {"role": "assistant", "content": "Thanks!"},
    ]}));
    let out = svc.add_turns(&ctx, "chat", turns).await.unwrap();
    assert!(
        out.distilled.contains(&api[0].1.id),
        "the restatement was folded into the API memory: {:?}",
        out.distilled
    );
    let texts = listed(&svc, "sessions/chat").await;
    let shellfish: Vec<&String> = texts.iter().filter(|t| t.contains("shellfish")).collect();
    assert_eq!(shellfish, ["I am allergic to shellfish."], "one live copy: {texts:?}");
    let m = svc.get_memory(&ctx, &api[0].1.id).await.unwrap();
    assert!(
        m.tags.contains(&"distilled".to_string()) && m.metadata["session_id"] == "chat",
        "provenance united: {m:?}"
    );
}

pub async fn keyed_items_absorb_restatements_but_never_each_other(h: Harness) {
    let svc = h.service();
    let ctx = TenantCtx::dev();
    let note = write(&svc, json!([{"namespace": ["kb"], "text": "The office closes at six."}])).await;
    h.advance(MINUTE);
    let put = |key: &str| -> PutItem {
        from_json(json!({"namespace": ["kb"], "key": key, "value": {"text": "The office closes at six"}}))
    };
    svc.put_item(&ctx, put("hours")).await.unwrap();
    svc.put_item(&ctx, put("hours-copy")).await.unwrap();
    // The item survives (its key addresses it) and the unkeyed note folds into it;
    // two keys are two items.
    let texts = listed(&svc, "kb").await;
    assert_eq!(texts.len(), 2, "{texts:?}");
    let item = svc.get_item(&ctx, vec!["kb".into()], "hours", None).await.unwrap().unwrap();
    assert_eq!(item.value["text"], "The office closes at six");
    let resolved = svc.get_memory(&ctx, &note[0].1.id).await.unwrap();
    assert_eq!(resolved.key.as_deref(), Some("hours"));
    // A later unkeyed restatement folds into an item too.
    let out = write(&svc, json!([{"namespace": ["kb"], "text": "the office closes at six!"}])).await;
    assert_eq!(out[0].0, WriteStatus::Merged);
    assert!(out[0].1.key.is_some());
}

pub async fn patching_text_into_a_duplicate_folds_it(h: Harness) {
    let svc = h.service();
    let ctx = TenantCtx::dev();
    let a = write(&svc, json!([{"namespace": ["n"], "text": "Dana works at the bakery", "tier": "semantic"}])).await;
    h.advance(MINUTE);
    let b = write(&svc, json!([{"namespace": ["n"], "text": "Dana bakes bread", "tags": ["work"]}])).await;
    let patch: PatchInput = from_json(json!({"text": "Dana works at the bakery."}));
    let out = svc.update_memory(&ctx, &b[0].1.id, patch, Some(1)).await.unwrap();
    assert_eq!(out.id, a[0].1.id, "the patched memory said what an older one says: it was folded into it");
    assert_eq!((out.tier, out.tags.clone()), (Tier::Semantic, vec!["work".to_string()]));
    assert_eq!(listed(&svc, "n").await, ["Dana works at the bakery"]);
    let pending = svc.pending_embeddings(100, vec![]).await.unwrap();
    assert_eq!(pending.len(), 1, "only the survivor waits for a vector: {pending:?}");
}

pub async fn merged_ids_lead_to_the_survivor(h: Harness) {
    let svc = h.service();
    let ctx = TenantCtx::dev();
    let a = write(&svc, json!([{"namespace": ["n"], "text": "Erin speaks Welsh"}])).await[0].1.id.clone();
    let b = write(&svc, json!([{"namespace": ["n"], "text": "Erin speaks Dutch"}])).await[0].1.id.clone();
    let c = write(&svc, json!([{"namespace": ["n"], "text": "Erin speaks Greek"}])).await[0].1.id.clone();
    // b is patched into a restatement of a; then c of a too (a chain of folds).
    svc.update_memory(&ctx, &b, from_json(json!({"text": "erin speaks welsh"})), None).await.unwrap();
    svc.update_memory(&ctx, &c, from_json(json!({"text": "Erin speaks Welsh!"})), None).await.unwrap();
    for id in [&a, &b, &c] {
        assert_eq!(svc.get_memory(&ctx, id).await.unwrap().id, a, "{id} leads to the survivor");
    }
    // Citing, patching and deleting through an old id act on the survivor.
    assert_eq!(svc.cite(&ctx, &b).await.unwrap().id, a);
    let p = svc.update_memory(&ctx, &c, from_json(json!({"tags": ["lang"]})), None).await.unwrap();
    assert_eq!((p.id.as_str(), p.tags.clone()), (a.as_str(), vec!["lang".to_string()]));
    svc.delete_memory(&ctx, &b).await.unwrap();
    for id in [&a, &b, &c] {
        assert_eq!(svc.get_memory(&ctx, id).await.unwrap_err().code().as_str(), "not_found");
    }
    let all: SearchInput = from_json(json!({}));
    assert!(svc.search(&ctx, all).await.unwrap().results.is_empty());
}

pub async fn stale_embeddings_are_dropped_and_the_queue_survives_a_reopen(h: Harness) {
    let mut rng = Rng(5);
    let id;
    {
        let svc = h.vector_service();
        let out = write(&svc, json!([{"namespace": ["n"], "text": "first text"}, {"namespace": ["n"], "key": "k", "text": "another text"}])).await;
        id = out[0].1.id.clone();
        let pending = svc.pending_embeddings(10, vec![]).await.unwrap();
        assert_eq!(pending.len(), 2);
        let search: SearchInput = from_json(json!({"query": "first", "mode": "keyword"}));
        assert_eq!(svc.search(&TenantCtx::dev(), search).await.unwrap().pending_embeddings, 2);
        // The text changes while its old version is being embedded.
        svc.update_memory(&TenantCtx::dev(), &id, from_json(json!({"text": "second text"})), None).await.unwrap();
        let stale = pending.iter().map(|p| (p.clone(), rng.unit(DIMS))).collect();
        assert_eq!(svc.store_embeddings(stale).await.unwrap(), 1, "the old text's embedding is dropped");
        svc.close().await;
    }
    let svc = h.vector_service();
    let pending = svc.pending_embeddings(10, vec![]).await.unwrap();
    assert_eq!(pending.len(), 1, "the queue survives a reopen");
    assert_eq!(pending[0].text, "second text");
    assert!(
        svc.pending_embeddings(10, vec!["default".into()]).await.unwrap().is_empty(),
        "excluded tenants are skipped"
    );
    let v = rng.unit(DIMS);
    assert_eq!(svc.store_embeddings(vec![(pending[0].clone(), v.clone())]).await.unwrap(), 1);
    let q: SearchInput = from_json(json!({"mode": "vector", "query_embedding": v, "limit": 1}));
    assert_eq!(svc.search(&TenantCtx::dev(), q).await.unwrap().results[0].memory.text, "second text");
}

pub async fn a_deleted_memorys_queued_work_never_lands_on_a_newer_one(h: Harness) {
    let svc = h.vector_service();
    let mut rng = Rng(31);
    let x = write(&svc, json!([{"namespace": ["n"], "text": "the newest memory, soon deleted"}])).await[0].1.id.clone();
    let stale = svc.pending_embeddings(10, vec![]).await.unwrap();
    svc.delete_memory(&TenantCtx::dev(), &x).await.unwrap();
    // Another tenant's write comes next: it must not take the deleted row's number.
    let other = crate::harness::tenant("other");
    let req: CreateMemories = from_json(json!({"memories": [{"namespace": ["n"], "text": "another tenant's memory"}]}));
    svc.create_memories(&other, req).await.unwrap();
    let late = stale.iter().map(|p| (p.clone(), rng.unit(DIMS))).collect();
    assert_eq!(svc.store_embeddings(late).await.unwrap(), 0, "the deleted memory's vector lands nowhere");
    let pending = svc.pending_embeddings(10, vec![]).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!((pending[0].tenant.as_str(), pending[0].text.as_str()), ("other", "another tenant's memory"));
}

pub async fn near_duplicates_are_checked_again_inside_the_transaction(h: Harness) {
    use engram_core::model::{Namespace, NewMemory, Source};
    use engram_core::rules::write::{prepare, put_batch};
    use engram_core::store::IndexMark;
    let store = h.store();
    let place = ("t".to_owned(), Namespace::from_stored("n"));
    let mut rng = Rng(41);
    let v = rng.unit(DIMS);
    let new = |text: &str, v: &[f32]| NewMemory {
        namespace: Namespace::from_stored("n"),
        key: None,
        tier: Tier::Episodic,
        text: text.into(),
        data: None,
        tags: vec![],
        metadata: Default::default(),
        salience: 0.5,
        pinned: false,
        ttl_ms: None,
        source: Source::api(&Default::default()),
        index: None,
        embedding: Some(v.to_vec()),
    };
    let (now, actor) = (h.now(), engram_core::audit::Actor::default());
    let put = |m: NewMemory, near: Vec<(i64, f64)>, mark: IndexMark| {
        let mut p = prepare(m);
        p.near = near;
        store.write(&actor, move |tx| put_batch(tx, "t", vec![p], &mark, now))
    };
    // Y is written; a write found Y near by its vector, but before its
    // transaction Y's vector went (its text changed): W is not folded into Y.
    let mark = store.index_mark(vec![place.clone()]).await.unwrap();
    let y = put(new("Yusuf collects stamps", &v), vec![], mark).await.unwrap();
    let y_seq = store
        .read({
            let id = y[0].1.id.clone();
            move |r| Ok(r.memory_by_id("t", &id)?.unwrap().seq)
        })
        .await
        .unwrap();
    store.write(&actor, move |tx| tx.drop_vector(y_seq)).await.unwrap();
    let mark = store.index_mark(vec![place.clone()]).await.unwrap();
    let w = put(new("Yusuf is a philatelist", &nudged(&v, 0.05)), vec![(y_seq, 0.99)], mark).await.unwrap();
    assert_eq!(w[0].0, WriteStatus::Created, "a stale hit is not a duplicate");
    // A restatement written at once by another writer: its lookup ran before
    // Y2 was stored (the mark), so it saw nothing; the transaction sees Y2.
    let u = rng.unit(DIMS);
    let mark = store.index_mark(vec![place.clone()]).await.unwrap();
    put(new("Zara bakes sourdough", &u), vec![], mark.clone()).await.unwrap();
    let z = put(new("Zara makes sourdough bread", &nudged(&u, 0.05)), vec![], mark).await.unwrap();
    assert_eq!(z[0].0, WriteStatus::Merged, "two restatements written at once are one");
}

pub async fn expired_neighbours_do_not_crowd_out_live_ones(h: Harness) {
    let svc = h.vector_service();
    let mut rng = Rng(51);
    let q = rng.unit(DIMS);
    // Sixty memories nearest the query expire; two farther ones live on.
    let near: Vec<Value> = (0..60)
        .map(|i| json!({"namespace": ["n"], "text": format!("fading note {i}"), "ttl_seconds": 1, "embedding": nudged(&nudged(&q, 0.2), 0.01 * i as f32)}))
        .collect();
    write(&svc, Value::Array(near)).await;
    let far = [rng.unit(DIMS), rng.unit(DIMS)];
    write(&svc, json!([{"namespace": ["n"], "text": "lasting note one", "embedding": far[0]}, {"namespace": ["n"], "text": "lasting note two", "embedding": far[1]}])).await;
    h.advance(2_000);
    let input: SearchInput =
        from_json(json!({"mode": "vector", "query_embedding": q, "limit": 2, "context_weight": 0}));
    let found: Vec<String> =
        svc.search(&TenantCtx::dev(), input).await.unwrap().results.into_iter().map(|r| r.memory.text).collect();
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.iter().all(|t| t.starts_with("lasting")), "{found:?}");
}
