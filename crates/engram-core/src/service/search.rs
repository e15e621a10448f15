//! Search: keyword (BM25), vector (cosine) and hybrid ranking, with recency
//! and salience boosts and a per-result explanation.
//!
//! Hybrid takes the top candidates of both indexes (each restricted to the
//! caller's scope inside its own search), fills in the other score for every
//! candidate, and fuses them as a weighted sum: the cosine as it is, BM25
//! divided by the best BM25 among the candidates (so both lie in 0–1). Then
//!
//! `score = relevance + recency_weight · 0.5^(age / half_life) + salience_weight · salience`
//!
//! The weights are [`RankWeights`]; `docs/decisions.md` says how they were chosen.

use std::collections::HashMap;

use serde::Serialize;

use super::inputs::SearchInput;
use super::{check_limit, check_offset, check_query, MemoryService};
use crate::auth::{Scope, TenantCtx};
use crate::error::{Error, Result};
use crate::filter::{self, Dialect};
use crate::model::{Memory, Namespace, Tier};
use crate::store::{Scored, SearchQuery};
use crate::time::{now_ms, Millis};

/// How the parts of a hybrid score are weighed.
#[derive(Debug, Clone, Copy)]
pub struct RankWeights {
    pub vector: f64,
    pub keyword: f64,
    pub recency: f64,
    pub salience: f64,
    /// Age at which the recency boost halves, in milliseconds.
    pub half_life_ms: f64,
}

impl Default for RankWeights {
    fn default() -> Self {
        RankWeights { vector: 0.6, keyword: 0.4, recency: 0.02, salience: 0.02, half_life_ms: 30.0 * 86_400_000.0 }
    }
}

/// Which indexes a search consults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Hybrid,
    Vector,
    Keyword,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Hybrid => "hybrid",
            Mode::Vector => "vector",
            Mode::Keyword => "keyword",
        }
    }
}

/// One search result.
#[derive(Debug, Serialize)]
pub struct SearchHit {
    pub memory: Memory,
    pub score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<Explain>,
}

/// The parts of a score.
#[derive(Debug, Clone, Serialize)]
pub struct Explain {
    /// Cosine similarity to the query (absent: no vector yet).
    pub vector: Option<f64>,
    /// BM25 relevance (absent: no query word matched).
    pub keyword: Option<f64>,
    /// BM25 divided by the best BM25 among the candidates.
    pub keyword_normalised: f64,
    /// The fused relevance before boosts.
    pub relevance: f64,
    /// The recency boost added.
    pub recency: f64,
    /// The salience boost added.
    pub salience: f64,
}

/// The answer to a search.
#[derive(Debug, Serialize)]
pub struct SearchOutput {
    pub results: Vec<SearchHit>,
    /// The mode that ran: `hybrid` falls back to `keyword` without an embedder.
    pub mode: &'static str,
    /// Memories in the searched namespaces not yet findable by meaning.
    pub pending_embeddings: u64,
}

/// Candidates taken from each index for `want` results.
fn pool_size(want: usize) -> usize {
    (want * 3).clamp(50, 1000)
}

impl MemoryService {
    /// Searches memories (`POST /v1/memories/search`).
    pub async fn search(&self, ctx: &TenantCtx, q: SearchInput) -> Result<SearchOutput> {
        ctx.require(Scope::Read)?;
        let mode = match q.mode.as_deref().unwrap_or("hybrid") {
            "hybrid" if self.embedder().is_some() => Mode::Hybrid,
            "hybrid" | "keyword" => Mode::Keyword,
            "vector" if self.embedder().is_some() => Mode::Vector,
            "vector" => {
                return Err(Error::unprocessable(
                    "mode \"vector\" needs an embedding model, and this server has none configured; use \"keyword\"",
                ))
            }
            other => {
                return Err(Error::invalid(format!("mode must be \"hybrid\", \"vector\" or \"keyword\", got {other:?}")))
            }
        };
        if let Some(text) = &q.query {
            check_query(text, "query")?;
        }
        let tiers = q
            .tiers
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, t)| Tier::parse(t, &format!("tiers[{i}]")))
            .collect::<Result<Vec<_>>>()?;
        let filter = q.filter.as_ref().map(|f| filter::parse(f, Dialect::Memories)).transpose()?;
        let query = SearchQuery {
            tenant: ctx.tenant.clone(),
            text: q.query.filter(|t| !t.trim().is_empty()),
            namespace_prefix: Namespace::prefix(q.namespace_prefix.unwrap_or_default(), "namespace_prefix")?,
            tiers,
            filter,
            items_only: false,
            limit: check_limit(q.limit, 10, "limit")?,
            offset: check_offset(q.offset, "offset")?,
            now: now_ms(),
        };
        let pending = if self.embedder().is_some() {
            self.store().pending_embeddings(&ctx.tenant, &query.namespace_prefix).await?
        } else {
            0
        };
        let explain = q.explain.unwrap_or(false);
        let given = match q.query_embedding {
            Some(v) if mode != Mode::Keyword => Some(self.query_vector(v)?),
            _ => None,
        };
        // A vector without words can only be searched by meaning.
        let mode = if mode == Mode::Hybrid && query.text.is_none() && given.is_some() { Mode::Vector } else { mode };
        let results = self
            .rank(query, mode, given)
            .await?
            .into_iter()
            .map(|(memory, score, parts)| SearchHit { memory, score, explain: if explain { parts } else { None } })
            .collect();
        Ok(SearchOutput { results, mode: mode.as_str(), pending_embeddings: pending })
    }

    /// The mode a LangGraph store search runs in: by meaning when it can.
    pub(crate) fn item_mode(&self) -> Mode {
        if self.embedder().is_some() {
            Mode::Hybrid
        } else {
            Mode::Keyword
        }
    }

    /// Runs a search and returns `(memory, score, explanation)` best first.
    /// `given` is the caller's query vector, used instead of embedding the text.
    pub(crate) async fn rank(
        &self,
        q: SearchQuery,
        mode: Mode,
        given: Option<Vec<f32>>,
    ) -> Result<Vec<(Memory, Option<f64>, Option<Explain>)>> {
        if q.text.is_none() && given.is_none() {
            // No query: a filtered listing, newest first.
            let hits = self.store().search(q).await?;
            return Ok(hits.into_iter().map(|h| (h.memory, None, None)).collect());
        }
        let text = q.text.clone().unwrap_or_default();
        let want = q.limit + q.offset;
        let pool = SearchQuery { limit: pool_size(want), offset: 0, ..q.clone() };
        let keyword_hits = if mode == Mode::Vector { Vec::new() } else { self.store().search(pool.clone()).await? };
        let (query_vector, vector_hits) = if mode == Mode::Keyword {
            (None, Vec::new())
        } else {
            self.ensure_tenant_model(&q.tenant).await?;
            let v = match given {
                Some(v) => v,
                None => self.embed_texts(vec![text.clone()]).await?.pop().unwrap_or_default(),
            };
            let hits = self.store().vector_search(pool.clone(), v.clone(), pool.limit).await?;
            (Some(v), hits)
        };
        let mut cands: HashMap<i64, Candidate> = HashMap::new();
        for h in keyword_hits {
            cands.insert(h.seq, Candidate { keyword: h.score, vector: None, memory: h.memory });
        }
        for h in vector_hits {
            let Scored { memory, seq, score } = h;
            cands.entry(seq).or_insert(Candidate { keyword: None, vector: None, memory }).vector = score;
        }
        if mode == Mode::Hybrid {
            self.fill_missing_scores(&mut cands, &text, query_vector.unwrap_or_default()).await?;
        }
        let best_keyword = cands.values().filter_map(|c| c.keyword).fold(0.0f64, f64::max);
        let w = self.inner.weights;
        let now = q.now;
        let mut ranked: Vec<(Memory, f64, Explain)> = cands
            .into_values()
            .map(|c| {
                let keyword_normalised = match c.keyword {
                    Some(k) if best_keyword > 0.0 => k / best_keyword,
                    _ => 0.0,
                };
                let relevance = match mode {
                    Mode::Keyword => keyword_normalised,
                    Mode::Vector => c.vector.unwrap_or(0.0),
                    Mode::Hybrid => w.vector * c.vector.unwrap_or(0.0) + w.keyword * keyword_normalised,
                };
                let recency = w.recency * recency_factor(c.memory.updated_at, now, w.half_life_ms);
                let salience = w.salience * c.memory.salience;
                let score = relevance + recency + salience;
                let explain = Explain { vector: c.vector, keyword: c.keyword, keyword_normalised, relevance, recency, salience };
                (c.memory, score, explain)
            })
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.id.cmp(&b.0.id)));
        Ok(ranked.into_iter().skip(q.offset).take(q.limit).map(|(m, s, e)| (m, Some(s), Some(e))).collect())
    }

    /// Gives every candidate both scores: the cosine of keyword-only hits and
    /// the BM25 of vector-only hits.
    async fn fill_missing_scores(&self, cands: &mut HashMap<i64, Candidate>, text: &str, v: Vec<f32>) -> Result<()> {
        let no_vector: Vec<i64> = cands.iter().filter(|(_, c)| c.vector.is_none()).map(|(s, _)| *s).collect();
        let no_keyword: Vec<i64> = cands.iter().filter(|(_, c)| c.keyword.is_none()).map(|(s, _)| *s).collect();
        for (seq, cos) in self.store().cosines(no_vector, v).await? {
            if let Some(c) = cands.get_mut(&seq) {
                c.vector = Some(cos);
            }
        }
        for (seq, k) in self.store().keyword_scores(text, no_keyword).await? {
            if let Some(c) = cands.get_mut(&seq) {
                c.keyword = Some(k);
            }
        }
        Ok(())
    }
}

struct Candidate {
    keyword: Option<f64>,
    vector: Option<f64>,
    memory: Memory,
}

/// 1 for a memory updated now, ½ one half-life ago, and so on.
fn recency_factor(updated_at: Millis, now: Millis, half_life_ms: f64) -> f64 {
    let age = (now - updated_at).max(0) as f64;
    0.5f64.powf(age / half_life_ms.max(1.0))
}
