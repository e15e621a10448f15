//! Which query words are worth a keyword search: in a large index, words that
//! occur in more than [`COMMON_SHARE`] of all memories are dropped (the rarest
//! word of the query is always kept).
//!
//! FTS5 scores every document that matches any query word, at about 1–2 µs
//! each, and has no top-k pruning; one common word makes a search over 100 000
//! memories cost tens of milliseconds while adding almost nothing to BM25 (its
//! IDF is near zero). Dropping such words is the "common terms" rule of other
//! engines — stopwords learned from the corpus. Document frequencies come from
//! FTS5 itself (so stemming matches) and are cached for [`TTL`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection};

use crate::error::Result;

/// Below this many indexed memories every word is searched.
pub const PRUNE_FROM_DOCS: u64 = 10_000;
/// Words in a larger share of the indexed memories are dropped.
pub const COMMON_SHARE: f64 = 0.05;
/// How long a counted frequency is trusted.
const TTL: Duration = Duration::from_secs(60);
/// Cached words at most (the cache starts over beyond it).
const MAX_CACHED: usize = 100_000;

#[derive(Default)]
struct Cache {
    docs: Option<(u64, Instant)>,
    df: HashMap<String, (u64, Instant)>,
}

/// The cache of document frequencies; share it behind an `Arc`.
#[derive(Default)]
pub struct TermStats {
    cache: Mutex<Cache>,
}

impl TermStats {
    /// The `terms` worth searching, in their order.
    pub fn prune(&self, c: &Connection, terms: Vec<String>) -> Result<Vec<String>> {
        if terms.len() < 2 {
            return Ok(terms);
        }
        let docs = self.cached(c, None)?;
        if docs < PRUNE_FROM_DOCS {
            return Ok(terms);
        }
        let limit = (docs as f64 * COMMON_SHARE) as u64;
        let df: Vec<u64> = terms.iter().map(|t| self.cached(c, Some(t))).collect::<Result<_>>()?;
        let rarest = df.iter().enumerate().min_by_key(|(_, d)| **d).map_or(0, |(i, _)| i);
        Ok(terms.into_iter().zip(df).enumerate().filter(|(i, (_, d))| *d <= limit || *i == rarest).map(|(_, (t, _))| t).collect())
    }

    /// The document frequency of `term`, or the number of indexed memories.
    fn cached(&self, c: &Connection, term: Option<&str>) -> Result<u64> {
        let now = Instant::now();
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            let hit = match term {
                None => cache.docs,
                Some(t) => cache.df.get(t).copied(),
            };
            if let Some((n, _)) = hit.filter(|(_, at)| now.duration_since(*at) < TTL) {
                return Ok(n);
            }
        }
        let n: i64 = match term {
            None => c.prepare_cached("SELECT count(*) FROM memories_fts_docsize")?.query_row([], |r| r.get(0))?,
            Some(t) => c
                .prepare_cached("SELECT count(*) FROM memories_fts WHERE memories_fts MATCH ?")?
                .query_row(params![format!("\"{}\"", t.replace('"', "\"\""))], |r| r.get(0))?,
        };
        let n = n.max(0) as u64;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        match term {
            None => cache.docs = Some((n, now)),
            Some(t) => {
                if cache.df.len() >= MAX_CACHED {
                    cache.df.clear();
                }
                cache.df.insert(t.to_owned(), (n, now));
            }
        }
        Ok(n)
    }
}
