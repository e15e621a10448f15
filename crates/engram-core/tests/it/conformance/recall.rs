//! Recall without a model (keyword search for the long-term tiers): the
//! session's window as the working tier, intent routing, near-identical
//! results dropped, and the context packed within the token budget.

use engram_core::recall::{Intent, RecallTier};
use engram_core::service::inputs::{AddTurns, CreateMemories, RecallInput, SearchInput};
use engram_core::service::SearchItems;
use engram_core::TenantCtx;
use serde_json::json;

use crate::harness::{from_json, Harness};

pub async fn recall_routes_tiers_and_packs_the_context(h: Harness) {
    let svc = h.service();
    let ctx = TenantCtx::dev();
    let req: CreateMemories = from_json(json!({"memories": [
        {"namespace": ["sessions", "r"], "text": "Alice likes green tea with honey", "tier": "semantic"},
        {"namespace": ["sessions", "r"], "text": "Alice likes green tea with honey!", "tier": "episodic"},
        {"namespace": ["sessions", "r"], "text": "Alice drank green tea in Kyoto in April", "tier": "episodic"},
        {"namespace": ["elsewhere"], "text": "Alice likes green tea, says another app"},
    ]}));
    svc.create_memories(&ctx, req).await.unwrap();
    let turns: AddTurns =
        from_json(json!({"turns": [{"role": "user", "content": "Remind me to buy green tea tomorrow"}]}));
    svc.add_turns(&ctx, "r", turns).await.unwrap();
    let recall = |q: &str, budget: i64| -> RecallInput {
        from_json(json!({"query": q, "session_id": "r", "token_budget": budget}))
    };
    let out = svc.recall(&ctx, recall("What does Alice like to drink? green tea", 1000)).await.unwrap();
    assert_eq!(out.intent, Intent::Semantic);
    let tiers: Vec<RecallTier> = out.results.iter().map(|r| r.tier).collect();
    assert_eq!(tiers[0], RecallTier::Semantic, "{:?}", out.results);
    assert!(tiers.contains(&RecallTier::Working) && tiers.contains(&RecallTier::Episodic), "{tiers:?}");
    assert_eq!(out.results.iter().filter(|r| r.text.contains("honey")).count(), 1, "the restatement is merged away");
    assert!(out.results.iter().all(|r| !r.text.contains("another app")), "the session's namespace is the scope");
    assert!(
        out.context.starts_with("Relevant memory") && out.context.contains("- [semantic] Alice likes green tea"),
        "{}",
        out.context
    );
    assert!(out.context_tokens > 0 && out.context_tokens <= 1000);
    // An unknown session has no working tier; the scope is then everything.
    let other: RecallInput = from_json(json!({"query": "green tea", "session_id": "nobody"}));
    let out = svc.recall(&ctx, other).await.unwrap();
    assert!(out.results.iter().all(|r| r.tier != RecallTier::Working));
    assert!(out.results.iter().any(|r| r.text.contains("another app")));
}

pub async fn nothing_searchable_or_relevant_is_an_answer(h: Harness) {
    let svc = h.vector_service();
    let ctx = TenantCtx::dev();
    let mut rng = crate::harness::Rng(17);
    let (tea, off_topic) = (rng.unit(crate::harness::DIMS), rng.unit(crate::harness::DIMS));
    let req: CreateMemories = from_json(json!({"memories": [
        {"namespace": ["n"], "text": "Alice likes green tea", "embedding": tea},
        {"namespace": ["n"], "key": "k", "text": "the office is on the third floor", "embedding": crate::harness::nudged(&tea, 3.0)},
    ]}));
    svc.create_memories(&ctx, req).await.unwrap();
    // Queries with nothing to search: one behaviour everywhere.
    for q in ["", "   ", "?!", "…", "🙂🙂", "the of and", "Who is it?"] {
        for mode in ["keyword", "hybrid", "vector"] {
            let input: SearchInput = from_json(json!({"query": q, "mode": mode}));
            let out = svc.search(&ctx, input).await.unwrap();
            assert!(out.results.is_empty() && out.nothing_searchable, "{mode} {q:?}");
        }
        let items: SearchItems = from_json(json!({"query": q}));
        assert!(svc.search_items(&ctx, items).await.unwrap().is_empty(), "items {q:?}");
        let r = svc.recall(&ctx, from_json(json!({"query": q}))).await.unwrap();
        assert!(r.nothing_relevant && r.results.is_empty() && r.context.is_empty(), "recall {q:?}");
    }
    // Without a query it is a listing; a caller's vector alone still searches.
    let input: SearchInput = from_json(json!({}));
    assert_eq!(svc.search(&ctx, input).await.unwrap().results.len(), 2);
    let input: SearchInput = from_json(json!({"query": "", "query_embedding": tea, "mode": "vector"}));
    assert_eq!(svc.search(&ctx, input).await.unwrap().results[0].memory.text, "Alice likes green tea");
    // min_score drops what scores below it; it needs a query.
    let input: SearchInput =
        from_json(json!({"query": "tea", "query_embedding": tea, "min_score": 0.9, "context_weight": 0}));
    assert_eq!(svc.search(&ctx, input).await.unwrap().results.len(), 1);
    let input: SearchInput = from_json(json!({"min_score": 0.5}));
    assert_eq!(svc.search(&ctx, input).await.unwrap_err().code().as_str(), "invalid_input");
    // Recall holds long-term memories to the relevance floor: an off-topic
    // question (its vector far from every memory) packs nothing.
    let r = svc
        .recall(&ctx, from_json(json!({"query": "quantum chromodynamics", "query_embedding": off_topic})))
        .await
        .unwrap();
    assert!(r.nothing_relevant && r.context.is_empty(), "{r:?}");
    assert!(r.top_similarity.unwrap() < 0.3, "{r:?}");
    let r = svc.recall(&ctx, from_json(json!({"query": "green tea", "query_embedding": tea}))).await.unwrap();
    assert!(!r.nothing_relevant && r.context.contains("Alice likes green tea"), "{r:?}");
    assert!(r.top_similarity.unwrap() > 0.99);
    let r = svc
        .recall(&ctx, from_json(json!({"query": "green tea", "query_embedding": tea, "min_score": 10.0})))
        .await
        .unwrap();
    assert!(r.nothing_relevant, "min_score drops every result: {r:?}");
}

pub async fn a_tight_budget_still_carries_the_best_memory(h: Harness) {
    let svc = h.service();
    let ctx = TenantCtx::dev();
    let long = "Caroline moved to Lisbon in March to work at the aquarium, where she looks after the octopus tank \
                and gives talks to school groups every Thursday afternoon";
    let req: CreateMemories = from_json(json!({"memories": [{"namespace": ["n"], "text": long, "tier": "semantic"}]}));
    svc.create_memories(&ctx, req).await.unwrap();
    for budget in [20, 8, 3, 1] {
        let r = svc
            .recall(&ctx, from_json(json!({"query": "Where does Caroline work?", "token_budget": budget})))
            .await
            .unwrap();
        assert!(!r.nothing_relevant && !r.context.is_empty(), "budget {budget}: {r:?}");
        assert!(r.context_tokens <= budget as usize, "budget {budget}: {} tokens", r.context_tokens);
        assert!(r.context_cut, "budget {budget}");
        assert!(!r.context.starts_with("Relevant memory"), "the header goes first: {}", r.context);
    }
    let r =
        svc.recall(&ctx, from_json(json!({"query": "Where does Caroline work?", "token_budget": 20}))).await.unwrap();
    assert!(r.context.starts_with("- [semantic] Caroline moved") && r.context.ends_with(" …"), "{}", r.context);
    let r = svc.recall(&ctx, from_json(json!({"query": "Where does Caroline work?"}))).await.unwrap();
    assert!(
        !r.context_cut && r.context.starts_with("Relevant memory") && r.context.ends_with("afternoon"),
        "{}",
        r.context
    );
}
