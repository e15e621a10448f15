//! `POST /v1/recall`: what an agent should know now, in one call. The query's
//! intent (rules, cached) weights the tiers; the session's window is the
//! working tier, hybrid search over the namespace gives the episodic and
//! semantic ones; near-identical results are dropped and the best are packed
//! into `context` within the token budget.
//!
//! Nothing relevant is an answer: a query with nothing searchable (no word
//! besides stopwords, punctuation or emoji) finds nothing, and long-term
//! memories count only when the best of them is at least
//! `recall_relevance_floor` similar to the query (cosine; calibrated on LoCoMo
//! and off-topic questions, see docs/decisions.md) — or, for memories whose
//! vector is still queued, when they match the query's words. Otherwise
//! `context` is empty and `nothing_relevant` says so.

use serde::Serialize;

use super::inputs::{RecallInput, SearchInput};
use super::{check_query, MemoryService};
use crate::auth::{Scope, TenantCtx};
use crate::error::{Error, Result};
use crate::model::session::{validate_session_id, Session};
use crate::model::{Namespace, Tier};
use crate::recall::{drop_near_identical, pack, Intent, RecallItem, RecallTier};
use crate::text::{content_words, has_searchable_words};
use crate::time::format_rfc3339;

/// Most results of one recall.
pub const MAX_RECALL_LIMIT: i64 = 100;
/// Largest token budget.
pub const MAX_TOKEN_BUDGET: i64 = 100_000;

/// The answer to a recall.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RecallOutput {
    pub intent: Intent,
    pub results: Vec<RecallItem>,
    /// The results that fit the budget, one per line, best first.
    pub context: String,
    /// Tokens `context` takes (by the model's tokenizer, or estimated).
    pub context_tokens: usize,
    /// Whether the best result was cut short to fit the budget (its line
    /// ends with " …").
    pub context_cut: bool,
    /// True when nothing relevant was found: `results` and `context` are empty.
    pub nothing_relevant: bool,
    /// The highest cosine similarity between the query and a long-term
    /// memory searched (absent without a model, or when none was found).
    pub top_similarity: Option<f64>,
}

impl MemoryService {
    pub async fn recall(&self, ctx: &TenantCtx, req: RecallInput) -> Result<RecallOutput> {
        ctx.require(Scope::Read)?;
        check_query(&req.query, "query")?;
        let min_score = super::check_min_score(req.min_score)?;
        if let Some(f) = req.relevance_floor.filter(|f| !(0.0..=1.0).contains(f)) {
            return Err(Error::invalid(format!("relevance_floor must be between 0 and 1, got {f}")));
        }
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
        if let Some(id) = &req.session_id {
            validate_session_id(id)?;
        }
        // Checked here too: a query with nothing to search returns before the search would.
        if let Some(p) = &req.namespace_prefix {
            Namespace::prefix(p.clone(), "namespace_prefix")?;
        }
        if !has_searchable_words(&req.query) && req.query_embedding.is_none() {
            return Ok(RecallOutput::nothing(intent));
        }

        // Working memory: the session's window (an ended or unknown session has none).
        let session = match &req.session_id {
            Some(id) => self.session_window(&ctx.tenant, id).await?.filter(|s| ctx.may_touch(&s.namespace)),
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
                    explain: Some(true),
                    ..SearchInput::default()
                },
            )
            .await?;
        let top_similarity =
            found.results.iter().filter_map(|h| h.explain.as_ref().and_then(|e| e.vector)).reduce(f64::max);
        let floor = req.relevance_floor.unwrap_or(self.lifecycle().recall_relevance_floor);
        // Without a model there is no similarity to hold to the floor, nor for
        // a memory whose vector is still queued: matching words count then.
        let unembedded_match =
            found.results.iter().any(|h| h.explain.as_ref().is_some_and(|e| e.vector.is_none() && e.keyword.is_some()));
        let relevant = self.embedder().is_none() || unembedded_match || top_similarity.is_some_and(|t| t >= floor);
        for hit in found.results.into_iter().filter(|_| relevant) {
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

        items.retain(|i| i.score >= min_score);
        items.sort_by(|a, b| b.score.total_cmp(&a.score));
        let mut items = drop_near_identical(items);
        items.truncate(limit as usize);
        let count = |s: &str| self.count_tokens(s);
        let packed = pack(&items, budget as usize, &count);
        let context_tokens = if packed.context.is_empty() { 0 } else { count(&packed.context) };
        Ok(RecallOutput {
            intent,
            nothing_relevant: items.is_empty(),
            results: items,
            context: packed.context,
            context_tokens,
            context_cut: packed.cut,
            top_similarity,
        })
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

impl RecallOutput {
    /// The answer when nothing relevant was found.
    fn nothing(intent: Intent) -> Self {
        RecallOutput {
            intent,
            results: Vec::new(),
            context: String::new(),
            context_tokens: 0,
            context_cut: false,
            nothing_relevant: true,
            top_similarity: None,
        }
    }
}

/// The session's turns scored against the query: shared content words, and
/// recency (for a question about the conversation itself, mostly recency).
fn working_items(s: &Session, query: &str, intent: Intent, weight: f64) -> Vec<RecallItem> {
    let q = content_words(query);
    let n = s.turns.len().max(1) as f64;
    s.turns
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let recency = (i + 1) as f64 / n;
            let overlap = if q.is_empty() {
                0.0
            } else {
                content_words(&t.content).intersection(&q).count() as f64 / q.len() as f64
            };
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
