//! Recall without a model (keyword search for the long-term tiers): the
//! session's window as the working tier, intent routing, near-identical
//! results dropped, and the context packed within the token budget.

use engram_core::recall::{Intent, RecallTier};
use engram_core::service::inputs::{AddTurns, CreateMemories, RecallInput};
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
