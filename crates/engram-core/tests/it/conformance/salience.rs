//! Salience on the harness's clock: citations counted and written in a batch,
//! decay by half-life (pinned memories exempt), and promotion of salient
//! episodic memories, folding the ones that duplicate a memory.

use engram_core::model::Tier;
use engram_core::service::inputs::CreateMemories;
use engram_core::TenantCtx;
use serde_json::json;

use crate::harness::{from_json, nudged, Harness, Rng, DAY, DIMS};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

pub async fn citations_raise_salience_and_time_lowers_it(h: Harness) {
    let svc = h.service();
    let ctx = TenantCtx::dev();
    let req: CreateMemories = from_json(json!({"memories": [
        {"namespace": ["s"], "text": "Ana likes figs"},
        {"namespace": ["s"], "text": "Ana's passport number is in the drawer", "pinned": true},
        {"namespace": ["s"], "text": "Ana once visited Oslo"}
    ]}));
    let ids: Vec<String> = svc.create_memories(&ctx, req).await.unwrap().into_iter().map(|(_, m)| m.id).collect();
    for n in 1..=3 {
        assert_eq!(svc.cite(&ctx, &ids[0]).await.unwrap().pending, n);
    }
    assert!(close(svc.get_memory(&ctx, &ids[0]).await.unwrap().salience, 0.5), "not written before the flush");
    assert_eq!(svc.flush_citations().await.unwrap(), 1);
    assert_eq!(svc.flush_citations().await.unwrap(), 0, "nothing left to write");
    let m = svc.get_memory(&ctx, &ids[0]).await.unwrap();
    assert!(close(m.salience, 1.0 - 0.5 * 0.8f64.powi(3)), "{}", m.salience);
    assert_eq!(m.version, 1, "a citation is not an edit");
    assert_eq!(svc.cite(&ctx, "0190a0a0-0000-7000-8000-000000000000").await.unwrap_err().code().as_str(), "not_found");
    assert_eq!(svc.flush_citations().await.unwrap(), 0);

    // Not a day old: nothing decays yet.
    h.advance(DAY - 1);
    assert_eq!(svc.decay_salience().await.unwrap(), 0);
    // 90 days on (one half-life): the unpinned halve, the pinned stay.
    h.advance(90 * DAY - (DAY - 1));
    assert_eq!(svc.decay_salience().await.unwrap(), 2);
    assert_eq!(svc.decay_salience().await.unwrap(), 0, "at most once a day");
    let cited = svc.get_memory(&ctx, &ids[0]).await.unwrap().salience;
    assert!(close(cited, (1.0 - 0.5 * 0.8f64.powi(3)) / 2.0), "{cited}");
    assert!(close(svc.get_memory(&ctx, &ids[1]).await.unwrap().salience, 0.5), "pinned memories never decay");
    assert!(close(svc.get_memory(&ctx, &ids[2]).await.unwrap().salience, 0.25));
    // A citation applies the decay due since the last update first.
    h.advance(90 * DAY);
    svc.cite(&ctx, &ids[2]).await.unwrap();
    assert_eq!(svc.flush_citations().await.unwrap(), 1);
    let s = svc.get_memory(&ctx, &ids[2]).await.unwrap().salience;
    assert!(close(s, 1.0 - (1.0 - 0.125) * 0.8), "{s}");
}

pub async fn promotion_moves_salient_memories_and_folds_duplicates(h: Harness) {
    let svc = h.vector_service();
    let ctx = TenantCtx::dev();
    let mut rng = Rng(11);
    let (tea, chess, run) = (rng.unit(DIMS), rng.unit(DIMS), rng.unit(DIMS));
    let m = |ns: &str, text: &str, tier: &str, salience: f64, v: &[f32]| {
        json!({"namespace": [ns], "text": text, "tier": tier, "salience": salience, "embedding": v,
               "tags": [text.split(' ').next().unwrap().to_lowercase()]})
    };
    // Written with vectors far enough apart to be kept apart at write time.
    let req: CreateMemories = from_json(json!({"memories": [
        m("n", "Alice likes green tea", "semantic", 0.6, &tea),
        m("n", "Bob plays chess on Sundays", "episodic", 0.85, &chess),
        m("n", "Carol runs every morning", "episodic", 0.5, &run),
        m("other", "Alice enjoys a cup of green tea", "episodic", 0.95, &tea),
    ]}));
    let written: Vec<String> = svc.create_memories(&ctx, req).await.unwrap().into_iter().map(|(_, m)| m.id).collect();
    // A salient episodic restatement of the tea fact, in other words, whose
    // vector the queue has not brought yet.
    h.advance(1);
    let req: CreateMemories = from_json(
        json!({"memories": [{"namespace": ["n"], "text": "Alice enjoys a cup of green tea", "salience": 0.9, "tags": ["cup"]}]}),
    );
    let late = svc.create_memories(&ctx, req).await.unwrap()[0].1.id.clone();
    assert_eq!(svc.pending_embeddings(10, vec![]).await.unwrap().len(), 1);

    let done = svc.promote().await.unwrap();
    assert_eq!(
        (done.promoted, done.merged),
        (3, 0),
        "chess, the other namespace's tea, and the late tea (no vector yet)"
    );
    let get = |id: &str| {
        let (svc, id) = (svc.clone(), id.to_owned());
        async move { svc.get_memory(&TenantCtx::dev(), &id).await.unwrap() }
    };
    assert_eq!(get(&written[1]).await.tier, Tier::Semantic);
    assert_eq!(get(&written[1]).await.version, 2);
    assert_eq!(get(&written[2]).await.tier, Tier::Episodic, "below the threshold");
    assert_eq!(get(&written[3]).await.tier, Tier::Semantic, "a duplicate only counts in its own namespace");
    assert_eq!(get(&late).await.id, late, "without its vector it is not known to duplicate anything");
    // Once the vector arrives, the two semantic tea memories are one.
    let pending = svc.pending_embeddings(10, vec![]).await.unwrap();
    assert_eq!(svc.store_embeddings(vec![(pending[0].clone(), nudged(&tea, 0.05))]).await.unwrap(), 1);
    let kept = get(&late).await;
    assert_eq!(kept.id, written[0], "folded into the older");
    assert!(close(kept.salience, 0.9), "it takes the higher salience");
    assert_eq!(kept.tags, ["alice", "cup"]);
    assert_eq!(svc.promote().await.unwrap(), Default::default(), "nothing left to promote");
    // The index follows the tiers: a semantic-only search finds chess.
    let q: engram_core::service::inputs::SearchInput =
        from_json(json!({"mode": "vector", "query_embedding": chess, "tiers": ["semantic"], "limit": 1}));
    assert_eq!(svc.search(&ctx, q).await.unwrap().results[0].memory.text, "Bob plays chess on Sundays");
}
