//! Which query words a keyword search runs, for every backend: in a large
//! index, words that occur in more than [`COMMON_SHARE`] of all memories are
//! dropped (the rarest word of the query is always kept). Scoring every
//! memory that holds a common word costs more than anything else in a search
//! and adds almost nothing to BM25 (the word's IDF is near zero): this is the
//! "common terms" rule of other engines — stopwords learned from the corpus.
//!
//! Document frequencies are counted by the backend (so stemming matches its
//! index). PostgreSQL keeps them in a [`TermStats`] cache for
//! [`STATS_TTL_MS`]; SQLite's in-process index ([`crate::keyword`]) knows
//! them exactly at any moment.

use quick_cache::sync::Cache;

use crate::clock::SharedClock;
use crate::time::Millis;

/// Below this many indexed memories every word is searched.
pub const PRUNE_FROM_DOCS: u64 = 10_000;
/// Words in a larger share of the indexed memories are dropped.
pub const COMMON_SHARE: f64 = 0.05;
/// How long a counted frequency is trusted, in milliseconds.
pub const STATS_TTL_MS: Millis = 60_000;
/// Counts cached at most.
const MAX_CACHED: usize = 100_000;

/// The `terms` worth searching, in their order, given how many memories the
/// index holds (`docs`) and each term's document frequency (`df`, in order).
pub fn keep(terms: Vec<String>, docs: u64, df: &[u64]) -> Vec<String> {
    if terms.len() < 2 || docs < PRUNE_FROM_DOCS {
        return terms;
    }
    let limit = (docs as f64 * COMMON_SHARE) as u64;
    let rarest = df.iter().enumerate().min_by_key(|(_, d)| **d).map_or(0, |(i, _)| i);
    terms
        .into_iter()
        .zip(df)
        .enumerate()
        .filter(|(i, (_, d))| **d <= limit || *i == rarest)
        .map(|(_, (t, _))| t)
        .collect()
}

/// Counts by key (a term, or `""` for the number of indexed memories), each
/// trusted for [`STATS_TTL_MS`] of the store's clock.
pub struct TermStats {
    clock: SharedClock,
    counts: Cache<String, (u64, Millis)>,
}

impl TermStats {
    pub fn new(clock: SharedClock) -> Self {
        TermStats { clock, counts: Cache::new(MAX_CACHED) }
    }

    /// A count still trusted, if any.
    pub fn get(&self, key: &str) -> Option<u64> {
        let now = self.clock.now_ms();
        self.counts.get(key).filter(|(_, at)| now - at < STATS_TTL_MS).map(|(n, _)| n)
    }

    /// Records a count taken now.
    pub fn put(&self, key: &str, n: u64) {
        self.counts.insert(key.to_owned(), (n, self.clock.now_ms()));
    }

    /// The store's clock.
    pub fn now(&self) -> Millis {
        self.clock.now_ms()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn common_words_go_in_a_large_index_but_the_rarest_stays() {
        let q = words(&["weather", "umbrella", "zeppelin"]);
        assert_eq!(keep(q.clone(), 9_999, &[9_999, 1_000, 1]), q, "small index: every word");
        assert_eq!(keep(q.clone(), 10_000, &[10_000, 1_000, 1]), ["zeppelin"]);
        assert_eq!(keep(q.clone(), 10_000, &[10_000, 500, 1]), ["umbrella", "zeppelin"]);
        assert_eq!(keep(words(&["weather", "umbrella"]), 10_000, &[10_000, 1_000]), ["umbrella"]);
        assert_eq!(keep(words(&["weather"]), 10_000, &[10_000]), ["weather"], "one word is always searched");
    }
}
