//! Search: gathers candidates from the keyword (BM25) and vector indexes, each
//! restricted to the caller's scope inside its own search, expands them with
//! their neighbours (context), fills in the missing signals, and ranks them
//! with the formula in [`super::rank`].

use std::collections::HashMap;

use serde::Serialize;

use super::inputs::SearchInput;
use super::rank::{self, Explain, Mode, RankParams, Signals};
use super::{check_limit, check_offset, check_query, MemoryService, Paging};
use crate::auth::{Scope, TenantCtx};
use crate::error::{Error, Result};
use crate::filter::{self, Dialect};
use crate::model::{Memory, Namespace, Tier};
use crate::store::{self, Page};
use crate::text::{has_searchable_words, query_terms};
use crate::time::Millis;

/// Neighbours created further apart than this are not context for each other.
pub const CONTEXT_GAP_MS: Millis = 3_600_000;

/// One search result.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SearchHit {
    pub memory: Memory,
    pub score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<Explain>,
}

/// The answer to a search.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SearchOutput {
    pub results: Vec<SearchHit>,
    /// The mode that ran: `hybrid` falls back to `keyword` without an embedder.
    pub mode: &'static str,
    /// Memories in the searched namespaces not yet findable by meaning.
    pub pending_embeddings: u64,
    /// The query had nothing to search (no word besides stopwords,
    /// punctuation or emoji), so nothing matched.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[cfg_attr(feature = "schema", schemars(default))]
    pub nothing_searchable: bool,
}

/// Candidates taken from each index for `want` results.
fn pool_size(want: usize) -> usize {
    (want * 3).clamp(50, 1000)
}

/// Candidates whose neighbours are looked up for `want` results (see
/// [`rank::leaders`]): looking up every candidate's took half of a hybrid
/// search's time at 100 000 memories, mostly for neighbours of candidates
/// that end far below the page.
fn context_leaders(want: usize) -> usize {
    (want * 2).max(20)
}

impl MemoryService {
    /// Searches memories (`POST /v1/memories/search`).
    pub async fn search(&self, ctx: &TenantCtx, q: SearchInput) -> Result<SearchOutput> {
        ctx.require(Scope::Read)?;
        let mode =
            match q.mode.as_deref().unwrap_or("hybrid") {
                "hybrid" if self.embedder().is_some() => Mode::Hybrid,
                "hybrid" | "keyword" => Mode::Keyword,
                "vector" if self.embedder().is_some() => Mode::Vector,
                "vector" => return Err(Error::unprocessable(
                    "mode \"vector\" needs an embedding model, and this server has none configured; use \"keyword\"",
                )),
                other => {
                    return Err(Error::invalid(format!(
                        "mode must be \"hybrid\", \"vector\" or \"keyword\", got {other:?}"
                    )))
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
        let mut scope = store::Scope::tenant(&ctx.tenant, self.now());
        scope.filter = q.filter.as_ref().map(|f| filter::parse(f, Dialect::Memories)).transpose()?;
        scope.namespace_prefix = Namespace::prefix(q.namespace_prefix.unwrap_or_default(), "namespace_prefix")?;
        scope.tiers = tiers;
        ctx.confine(&mut scope)?;
        let page = Paging { limit: check_limit(q.limit, 10, "limit")?, offset: check_offset(q.offset, "offset")? };
        let min_score = super::check_min_score(q.min_score)?;
        if q.min_score.is_some() && q.query.is_none() && q.query_embedding.is_none() {
            return Err(Error::invalid("min_score needs a query: a listing without one has no scores"));
        }
        let pending = if self.embedder().is_some() {
            let tenant = ctx.tenant.clone();
            let prefixes =
                if scope.within.is_empty() { vec![scope.namespace_prefix.clone()] } else { scope.within.clone() };
            self.store()
                .read(move |r| prefixes.iter().map(|p| r.pending_count(&tenant, p)).sum::<Result<u64>>())
                .await?
        } else {
            0
        };
        let context_weight = match q.context_weight {
            None => self.inner.weights.context,
            Some(w) if (0.0..=1.0).contains(&w) => w,
            Some(w) => return Err(Error::invalid(format!("context_weight must be between 0 and 1, got {w}"))),
        };
        let explain = q.explain.unwrap_or(false);
        // Ignored only when keyword search was asked for by name.
        let given = match q.query_embedding {
            Some(v) if q.mode.as_deref() != Some("keyword") => Some(self.query_vector(v)?),
            _ => None,
        };
        // A query with nothing to search finds nothing (a vector still searches).
        let text = match q.query {
            Some(t) if has_searchable_words(&t) => Some(t),
            Some(_) if given.is_none() => {
                return Ok(SearchOutput {
                    results: Vec::new(),
                    mode: mode.as_str(),
                    pending_embeddings: pending,
                    nothing_searchable: true,
                })
            }
            _ => None,
        };
        // A vector without words can only be searched by meaning.
        let mode = if mode == Mode::Hybrid && text.is_none() && given.is_some() { Mode::Vector } else { mode };
        let results = self
            .rank(scope, text.as_deref(), page, mode, given, context_weight)
            .await?
            .into_iter()
            .filter(|(_, score, _)| score.is_none_or(|s| s >= min_score))
            .map(|(memory, score, parts)| SearchHit { memory, score, explain: if explain { parts } else { None } })
            .collect();
        Ok(SearchOutput { results, mode: mode.as_str(), pending_embeddings: pending, nothing_searchable: false })
    }

    /// The mode a LangGraph store search runs in: by meaning when it can.
    pub(crate) fn item_mode(&self) -> Mode {
        if self.embedder().is_some() {
            Mode::Hybrid
        } else {
            Mode::Keyword
        }
    }

    /// Runs a search in `scope` for `text` and returns `(memory, score,
    /// explanation)` best first. `given` is the caller's query vector, used
    /// instead of embedding the text; `context_weight` is the share of a
    /// neighbour's relevance lent.
    pub(crate) async fn rank(
        &self,
        scope: store::Scope,
        text: Option<&str>,
        page: Paging,
        mode: Mode,
        given: Option<Vec<f32>>,
        context_weight: f64,
    ) -> Result<Vec<(Memory, Option<f64>, Option<Explain>)>> {
        if text.is_none() && given.is_none() {
            // No query: a filtered listing, newest first.
            let rows = self.store().list(scope, Page::Newest { offset: page.offset, limit: page.limit }).await?;
            return Ok(rows.into_iter().map(|s| (s.memory, None, None)).collect());
        }
        let pool = pool_size(page.limit + page.offset);
        let query_vector = match (mode, given) {
            (Mode::Keyword, _) => None,
            (_, given) => {
                self.ensure_tenant_model(&scope.tenant).await?;
                match given {
                    Some(v) => Some(v),
                    None => self.embed_texts(vec![text.unwrap_or_default().to_owned()], false).await?.pop(),
                }
            }
        };
        let terms = text.map(query_terms).unwrap_or_default();
        let store = self.store();
        let (keyword_hits, vector_hits) = tokio::try_join!(
            async {
                match mode {
                    Mode::Vector => Ok(Vec::new()),
                    _ if terms.is_empty() => Ok(Vec::new()),
                    _ => store.keyword_hits(scope.clone(), terms.clone(), pool).await,
                }
            },
            async {
                match &query_vector {
                    Some(v) => store.vector_hits(scope.clone(), v.clone(), pool).await,
                    None => Ok(Vec::new()),
                }
            },
        )?;
        let mut signals: HashMap<i64, Signals> = HashMap::new();
        for (seq, bm25) in keyword_hits {
            signals.entry(seq).or_default().keyword = Some(bm25);
        }
        for (seq, cos) in vector_hits {
            signals.entry(seq).or_default().vector = Some(cos);
        }
        let best_keyword = signals.values().filter_map(|s| s.keyword).fold(0.0f64, f64::max);
        let params = RankParams { mode, weights: self.inner.weights, context_weight, best_keyword, now: scope.live_at };
        // Every hit's relevance is known before choosing whose neighbours to
        // look up; the neighbours' signals are filled in after.
        let hits: Vec<i64> = signals.keys().copied().collect();
        self.fill_missing_signals(&mut signals, &hits, mode, &terms, query_vector.clone()).await?;
        let expansion = if context_weight > 0.0 {
            let leading = rank::leaders(&params, &signals, context_leaders(page.limit + page.offset));
            let rest: Vec<i64> = signals.keys().copied().filter(|s| !leading.contains(s)).collect();
            let (mut near, others) = tokio::try_join!(
                store.expand(scope.clone(), leading, Some(CONTEXT_GAP_MS)),
                store.expand(scope.clone(), rest, None),
            )?;
            near.facts.extend(others.facts);
            near
        } else {
            store.expand(scope.clone(), signals.keys().copied().collect(), None).await?
        };
        let mut neighbours = Vec::new();
        for &(_, n) in &expansion.adjacent {
            if let std::collections::hash_map::Entry::Vacant(e) = signals.entry(n) {
                e.insert(Signals::default());
                neighbours.push(n);
            }
        }
        self.fill_missing_signals(&mut signals, &neighbours, mode, &terms, query_vector).await?;
        let ranked = rank::rank(&params, &signals, &expansion.facts, &expansion.adjacent);
        let page: Vec<rank::Ranked> = ranked.into_iter().skip(page.offset).take(page.limit).collect();
        let mut rows: HashMap<i64, Memory> = store
            .hydrate(scope, page.iter().map(|r| r.seq).collect())
            .await?
            .into_iter()
            .map(|s| (s.seq, s.memory))
            .collect();
        Ok(page.into_iter().filter_map(|r| rows.remove(&r.seq).map(|m| (m, Some(r.score), Some(r.explain)))).collect())
    }

    /// Gives the candidates `seqs` the signals their mode uses: the cosine of
    /// those found only by words (or as neighbours), the BM25 of those found
    /// only by meaning.
    async fn fill_missing_signals(
        &self,
        signals: &mut HashMap<i64, Signals>,
        seqs: &[i64],
        mode: Mode,
        terms: &[String],
        query_vector: Option<Vec<f32>>,
    ) -> Result<()> {
        if let Some(v) = query_vector {
            let missing: Vec<i64> =
                seqs.iter().copied().filter(|k| signals.get(k).is_some_and(|s| s.vector.is_none())).collect();
            if !missing.is_empty() {
                for (seq, cos) in self.store().cosines(missing, v).await? {
                    if let Some(s) = signals.get_mut(&seq) {
                        s.vector = Some(cos);
                    }
                }
            }
        }
        if !terms.is_empty() && mode != Mode::Vector {
            let missing: Vec<i64> =
                seqs.iter().copied().filter(|k| signals.get(k).is_some_and(|s| s.keyword.is_none())).collect();
            if !missing.is_empty() {
                for (seq, bm25) in self.store().keyword_scores(terms.to_vec(), missing).await? {
                    if let Some(s) = signals.get_mut(&seq) {
                        s.keyword = Some(bm25);
                    }
                }
            }
        }
        Ok(())
    }
}
