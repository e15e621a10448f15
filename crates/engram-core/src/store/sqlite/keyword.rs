//! Keyword search planning: which query words to search, and how to find the
//! best matches in the caller's scope cheaply.
//!
//! **Words.** Common words of a large index are dropped by the shared rule
//! of `store::common_terms`; document frequencies come from FTS5 itself (so
//! stemming matches).
//!
//! **Scope.** Checking every match against the caller's scope (tenant,
//! namespace, expiry, filter) costs a row lookup per match, doubling the work.
//! So the best matches of the whole index are ranked first and only those are
//! checked: when at least `k` of them are in scope, they are exactly the scope's
//! best `k`. When not (a small scope in a big shared index), the search runs
//! again with the scope joined in, and the scope is remembered as narrow for a
//! while so its next searches go straight to the join.

use std::collections::HashMap;

use quick_cache::sync::Cache;
use rusqlite::{params, Connection};

use super::{fts, search_sql};
use crate::clock::SharedClock;
use crate::error::Result;
use crate::store::common_terms::{self, TermStats, PRUNE_FROM_DOCS, STATS_TTL_MS};
use crate::store::Scope;
use crate::time::Millis;

/// Narrow scopes remembered at most.
const MAX_CACHED: usize = 100_000;
/// Index-wide matches ranked per wanted result before the scope is checked.
const OVERSAMPLE: usize = 4;

/// The planner and its caches (bounded; entries carry when they were made,
/// by the store's clock); share it behind an `Arc`.
pub struct KeywordSearch {
    /// Document frequency by term; the empty term holds the number of documents.
    df: TermStats,
    /// Scopes found narrow, and when (trusted as long as a frequency).
    narrow: Cache<String, Millis>,
}

/// What makes a scope narrow: the search's restrictions, not its words.
fn scope_key(q: &Scope) -> String {
    let tiers: Vec<&str> = q.tiers.iter().map(|t| t.as_str()).collect();
    format!(
        "{}\0{}\0{}\0{}\0{}\0{}",
        q.tenant,
        q.namespace_prefix.joined(),
        q.within.iter().map(|p| p.joined()).collect::<Vec<_>>().join(","),
        tiers.join(","),
        q.keyed_only,
        q.filter.is_some()
    )
}

impl KeywordSearch {
    pub fn new(clock: SharedClock) -> Self {
        KeywordSearch { df: TermStats::new(clock), narrow: Cache::new(MAX_CACHED) }
    }

    /// The best `k` matches of any of `terms` in `q`'s scope: `(seq, bm25)`, best first.
    pub fn hits(&self, c: &Connection, q: &Scope, terms: &[String], k: usize) -> Result<Vec<(i64, f64)>> {
        let terms = self.prune(c, terms.to_vec())?;
        let Some(expr) = fts::expression(&terms) else {
            return Ok(Vec::new());
        };
        let key = scope_key(q);
        if !self.is_narrow(&key) {
            let n = (k * OVERSAMPLE).max(200);
            let top = search_sql::index_wide_hits(c, &expr, n)?;
            let seqs: Vec<i64> = top.iter().map(|h| h.0).collect();
            let live = search_sql::in_scope(c, q, &seqs)?;
            let kept: Vec<(i64, f64)> = top.iter().filter(|h| live.contains(&h.0)).take(k).copied().collect();
            if kept.len() >= k || top.len() < n {
                return Ok(kept);
            }
            self.mark_narrow(key);
        }
        search_sql::keyword_hits(c, q, &expr, k)
    }

    /// The BM25 of those `seqs` that match any of `terms` (searched as
    /// [`KeywordSearch::hits`] searches them).
    pub fn scores(&self, c: &Connection, terms: &[String], seqs: &[i64]) -> Result<HashMap<i64, f64>> {
        match fts::expression(&self.prune(c, terms.to_vec())?) {
            Some(expr) => super::vectors::bm25_of(c, &expr, seqs),
            None => Ok(HashMap::new()),
        }
    }

    fn is_narrow(&self, key: &str) -> bool {
        self.narrow.get(key).is_some_and(|at| self.df.now() - at < STATS_TTL_MS)
    }

    fn mark_narrow(&self, key: String) {
        self.narrow.insert(key, self.df.now());
    }

    /// The `terms` worth searching, in their order (`common_terms::keep`).
    fn prune(&self, c: &Connection, terms: Vec<String>) -> Result<Vec<String>> {
        if terms.len() < 2 {
            return Ok(terms);
        }
        let docs = self.cached(c, None)?;
        if docs < PRUNE_FROM_DOCS {
            return Ok(terms);
        }
        let df: Vec<u64> = terms.iter().map(|t| self.cached(c, Some(t))).collect::<Result<_>>()?;
        Ok(common_terms::keep(terms, docs, &df))
    }

    /// The document frequency of `term`, or the number of indexed memories.
    fn cached(&self, c: &Connection, term: Option<&str>) -> Result<u64> {
        let key = term.unwrap_or("");
        if let Some(n) = self.df.get(key) {
            return Ok(n);
        }
        let n: i64 = match term {
            None => c.prepare_cached("SELECT count(*) FROM memories_fts_docsize")?.query_row([], |r| r.get(0))?,
            Some(t) => c
                .prepare_cached("SELECT count(*) FROM memories_fts WHERE memories_fts MATCH ?")?
                .query_row(params![format!("\"{}\"", t.replace('"', "\"\""))], |r| r.get(0))?,
        };
        let n = n.max(0) as u64;
        self.df.put(key, n);
        Ok(n)
    }
}
