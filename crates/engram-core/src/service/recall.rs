//! `POST /v1/recall`: what an agent should know now, in one call. The query's
//! intent (rules, cached) weights the tiers; the session's window is the
//! working tier, hybrid search over the namespace gives the episodic and
//! semantic ones; near-identical results are dropped and the best are packed
//! into `context` within the token budget.

use serde::Serialize;

use super::inputs::{RecallInput, SearchInput};
use super::{check_query, MemoryService};
use crate::auth::{Scope, TenantCtx};
use crate::error::{Error, Result};
use crate::model::session::{validate_session_id, Session};
use crate::model::Tier;
use crate::recall::{drop_near_identical, pack, Intent, RecallItem, RecallTier};
use crate::text::{is_stopword, words};
use crate::time::format_rfc3339;

/// Most results of one recall.
pub const MAX_RECALL_LIMIT: i64 = 100;
/// Largest token budget.
pub const MAX_TOKEN_BUDGET: i64 = 100_000;

/// The answer to a recall.
#[derive(Debug, Serialize)]
pub struct RecallOutput {
    pub intent: Intent,
    pub results: Vec<RecallItem>,
    /// The results that fit the budget, one per line, best first.
    pub context: String,
    /// Tokens `context` takes (by the model's tokenizer, or estimated).
    pub context_tokens: usize,
}

impl MemoryService {
    pub async fn recall(&self, ctx: &TenantCtx, req: RecallInput) -> Result<RecallOutput> {
        ctx.require(Scope::Read)?;
        if req.query.trim().is_empty() {
            return Err(Error::invalid("query must not be empty"));
        }
        check_query(&req.query, "query")?;
        let limit = req.limit.unwrap_or(10);
        if !(1..=MAX_RECALL_LIMIT).contains(&limit) {
            return Err(Error::invalid(format!("limit must be between 1 and {MAX_RECALL_LIMIT}, got {limit}")));
        }
        let budget = req.token_budget.unwrap_or(1000);
        if !(1..=MAX_TOKEN_BUDGET).contains(&budget) {
            return Err(Error::invalid(format!("token_budget must be between 1 and {MAX_TOKEN_BUDGET}, got {budget}")));
        }
        let intent = self.inner.intents.route(&req.query);
        let weights = intent.weights();

        // Working memory: the session's window (an ended or unknown session has none).
        let session = match &req.session_id {
            Some(id) => {
                validate_session_id(id)?;
                self.session_window(&ctx.tenant, id).await?
            }
            None => None,
        };
        let mut items = match &session {
            Some(s) => working_items(s, &req.query, intent, weights.working),
            None => Vec::new(),
        };

        // Long-term memory: hybrid search in the namespace asked for, else the session's.
        let namespace_prefix =
            req.namespace_prefix.or_else(|| session.as_ref().map(|s| s.namespace.segments().to_vec()));
        let found = self
            .search(
                ctx,
                SearchInput {
                    query: Some(req.query.clone()),
                    namespace_prefix,
                    tiers: Some(vec!["episodic".into(), "semantic".into()]),
                    limit: Some((limit * 3).min(MAX_RECALL_LIMIT)),
                    query_embedding: req.query_embedding,
                    ..SearchInput::default()
                },
            )
            .await?;
        for hit in found.results {
            let m = hit.memory;
            let (tier, w) = match m.tier {
                Tier::Episodic => (RecallTier::Episodic, weights.episodic),
                Tier::Semantic => (RecallTier::Semantic, weights.semantic),
            };
            let date = (m.tier == Tier::Episodic).then(|| {
                m.metadata
                    .get("date")
                    .and_then(|d| d.as_str())
                    .map(str::to_owned)
                    .unwrap_or_else(|| format_rfc3339(m.created_at)[..10].to_owned())
            });
            items.push(RecallItem {
                tier,
                id: Some(m.id),
                turn: None,
                text: m.text,
                score: hit.score.unwrap_or(0.0) * w,
                date,
            });
        }

        items.sort_by(|a, b| b.score.total_cmp(&a.score));
        let mut items = drop_near_identical(items);
        items.truncate(limit as usize);
        let count = |s: &str| self.count_tokens(s);
        let (context, _) = pack(&items, budget as usize, &count);
        let context_tokens = if context.is_empty() { 0 } else { count(&context) };
        Ok(RecallOutput { intent, results: items, context, context_tokens })
    }

    /// `(hits, misses, entries)` of the recall intent cache.
    pub fn intent_cache_stats(&self) -> (u64, u64, usize) {
        self.inner.intents.stats()
    }

    /// Tokens `text` takes for the embedding model; without a tokenizer, an
    /// estimate (a token per 4 characters or per word, whichever is more).
    pub fn count_tokens(&self, text: &str) -> usize {
        if let Some(n) = self.embedder().and_then(|e| e.count_tokens(text)) {
            return n;
        }
        (text.chars().count().div_ceil(4)).max(text.split_whitespace().count())
    }
}

/// The session's turns scored against the query: shared content words, and
/// recency (for a question about the conversation itself, mostly recency).
fn working_items(s: &Session, query: &str, intent: Intent, weight: f64) -> Vec<RecallItem> {
    let content = |t: &str| -> std::collections::HashSet<String> {
        words(t).map(|(_, w)| w.to_lowercase()).filter(|w| !is_stopword(w)).collect()
    };
    let q = content(query);
    let n = s.turns.len().max(1) as f64;
    s.turns
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let recency = (i + 1) as f64 / n;
            let overlap =
                if q.is_empty() { 0.0 } else { content(&t.content).intersection(&q).count() as f64 / q.len() as f64 };
            let base = if intent == Intent::Working {
                0.4 * overlap + 0.6 * recency
            } else {
                0.7 * overlap + 0.3 * recency * overlap.min(0.5) * 2.0
            };
            RecallItem {
                tier: RecallTier::Working,
                id: None,
                turn: Some(t.index),
                text: format!("{}: {}", t.role, t.content),
                score: base * weight,
                date: None,
            }
        })
        // A turn that shares no word with a question about something else is noise.
        .filter(|item| item.score > 0.0)
        .collect()
}
