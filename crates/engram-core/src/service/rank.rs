//! The ranking formula, apart from all I/O so it can be read and tested alone.
//!
//! Every candidate `i` (a keyword or vector hit, or — with context on — a
//! memory written next to one) gets
//!
//! ```text
//! relevance(i) = keyword: bm25(i) / best      vector: cos(i)
//!                hybrid:  w_vector · cos(i) + w_keyword · bm25(i) / best
//! context(i)   = context_weight · max relevance(j) over its neighbours j
//! score(i)     = relevance(i) + context(i)
//!              + w_recency · 0.5^(age / half_life) + w_salience · salience
//! ```
//!
//! `best` is the highest BM25 among the keyword hits, so both parts of a hybrid
//! score lie in 0–1; a missing part counts 0. Neighbours are the memories
//! written just before and after in the same namespace: a conversation's turns
//! are context for each other (a question and its answer rarely share words or
//! meaning). `docs/decisions.md` says how the weights were chosen.

use std::collections::HashMap;

use serde::Serialize;

use crate::store::RankFacts;
use crate::time::Millis;

/// How the parts of a score are weighed.
#[derive(Debug, Clone, Copy)]
pub struct RankWeights {
    pub vector: f64,
    pub keyword: f64,
    /// Default share of the best neighbour's relevance (a request may override it).
    pub context: f64,
    pub recency: f64,
    pub salience: f64,
    /// Age at which the recency boost halves, in milliseconds.
    pub half_life_ms: f64,
}

impl Default for RankWeights {
    fn default() -> Self {
        RankWeights {
            vector: 0.6,
            keyword: 0.4,
            context: 0.5,
            recency: 0.02,
            salience: 0.02,
            half_life_ms: 30.0 * 86_400_000.0,
        }
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

/// What the indexes said of one candidate.
#[derive(Debug, Clone, Copy, Default)]
pub struct Signals {
    /// BM25 (absent: no query word matched).
    pub keyword: Option<f64>,
    /// Cosine similarity to the query (absent: no vector yet).
    pub vector: Option<f64>,
}

/// The parts of a score.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Explain {
    /// Cosine similarity to the query (absent: no vector yet).
    pub vector: Option<f64>,
    /// BM25 relevance (absent: no query word matched).
    pub keyword: Option<f64>,
    /// BM25 divided by the best BM25 among the keyword hits.
    pub keyword_normalised: f64,
    /// The mode's relevance before boosts.
    pub relevance: f64,
    /// The share of the best neighbour's relevance added.
    pub context: f64,
    /// The recency boost added.
    pub recency: f64,
    /// The salience boost added.
    pub salience: f64,
}

/// One ranked candidate.
#[derive(Debug, Clone)]
pub struct Ranked {
    pub seq: i64,
    pub score: f64,
    pub explain: Explain,
}

/// The inputs of [`rank`] besides the candidates.
#[derive(Debug, Clone, Copy)]
pub struct RankParams {
    pub mode: Mode,
    pub weights: RankWeights,
    pub context_weight: f64,
    /// The highest BM25 among the keyword hits (0 when none).
    pub best_keyword: f64,
    pub now: Millis,
}

impl RankParams {
    /// BM25 divided by the best among the keyword hits (0 when absent).
    fn normalise(&self, keyword: Option<f64>) -> f64 {
        match keyword {
            Some(k) if self.best_keyword > 0.0 => k / self.best_keyword,
            _ => 0.0,
        }
    }

    /// A candidate's relevance in this mode, before context and boosts.
    pub fn relevance(&self, s: &Signals) -> f64 {
        let w = self.weights;
        match self.mode {
            Mode::Keyword => self.normalise(s.keyword),
            Mode::Vector => s.vector.unwrap_or(0.0),
            Mode::Hybrid => w.vector * s.vector.unwrap_or(0.0) + w.keyword * self.normalise(s.keyword),
        }
    }
}

/// The `n` most relevant of the candidates, most relevant first (ties by
/// `seq`): the ones whose neighbours are looked up. A neighbour lends context
/// in proportion to its own relevance, so only the leaders' neighbours, and
/// the leaders themselves, can gain enough of it to matter to a page.
pub fn leaders(p: &RankParams, signals: &HashMap<i64, Signals>, n: usize) -> Vec<i64> {
    let mut all: Vec<(f64, i64)> = signals.iter().map(|(&seq, s)| (p.relevance(s), seq)).collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    all.into_iter().take(n).map(|(_, seq)| seq).collect()
}

/// Scores every candidate that has [`RankFacts`] (the others are out of scope)
/// and returns them best first, ties by `seq`.
pub fn rank(
    p: &RankParams,
    signals: &HashMap<i64, Signals>,
    facts: &HashMap<i64, RankFacts>,
    adjacent: &[(i64, i64)],
) -> Vec<Ranked> {
    let w = p.weights;
    let mut best_neighbour: HashMap<i64, f64> = HashMap::new();
    for &(a, b) in adjacent {
        let (Some(sa), Some(sb)) = (signals.get(&a), signals.get(&b)) else {
            continue;
        };
        if !(facts.contains_key(&a) && facts.contains_key(&b)) {
            continue;
        }
        for (me, other) in [(a, p.relevance(sb)), (b, p.relevance(sa))] {
            let e = best_neighbour.entry(me).or_insert(0.0);
            *e = e.max(other);
        }
    }
    let mut out: Vec<Ranked> = signals
        .iter()
        .filter_map(|(&seq, s)| {
            let f = facts.get(&seq)?;
            let relevance = p.relevance(s);
            let context = p.context_weight * best_neighbour.get(&seq).copied().unwrap_or(0.0);
            let recency = w.recency * recency_factor(f.updated_at, p.now, w.half_life_ms);
            let salience = w.salience * f.salience;
            let explain = Explain {
                vector: s.vector,
                keyword: s.keyword,
                keyword_normalised: p.normalise(s.keyword),
                relevance,
                context,
                recency,
                salience,
            };
            Some(Ranked { seq, score: relevance + context + recency + salience, explain })
        })
        .collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.seq.cmp(&b.seq)));
    out
}

/// 1 for a memory updated now, ½ one half-life ago, and so on.
fn recency_factor(updated_at: Millis, now: Millis, half_life_ms: f64) -> f64 {
    let age = (now - updated_at).max(0) as f64;
    0.5f64.powf(age / half_life_ms.max(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_000_000_000;

    fn params(mode: Mode, context_weight: f64, best_keyword: f64) -> RankParams {
        let weights = RankWeights { recency: 0.0, salience: 0.0, ..RankWeights::default() };
        RankParams { mode, weights, context_weight, best_keyword, now: NOW }
    }

    fn facts(seqs: &[i64]) -> HashMap<i64, RankFacts> {
        seqs.iter().map(|&s| (s, RankFacts { updated_at: NOW, salience: 0.5 })).collect()
    }

    fn sig(keyword: Option<f64>, vector: Option<f64>) -> Signals {
        Signals { keyword, vector }
    }

    #[test]
    fn hybrid_weighs_cosine_and_normalised_bm25() {
        let signals =
            HashMap::from([(1, sig(Some(4.0), Some(0.5))), (2, sig(None, Some(0.9))), (3, sig(Some(2.0), None))]);
        let out = rank(&params(Mode::Hybrid, 0.0, 4.0), &signals, &facts(&[1, 2, 3]), &[]);
        let scores: Vec<(i64, f64)> = out.iter().map(|r| (r.seq, r.score)).collect();
        // 1: 0.6·0.5 + 0.4·1 = 0.70; 2: 0.6·0.9 = 0.54; 3: 0.4·0.5 = 0.20
        assert_eq!(scores.iter().map(|s| s.0).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert!(
            (scores[0].1 - 0.70).abs() < 1e-9 && (scores[1].1 - 0.54).abs() < 1e-9 && (scores[2].1 - 0.20).abs() < 1e-9
        );
    }

    #[test]
    fn a_neighbour_lends_a_share_of_its_relevance() {
        // 2 is a strong hit; 3 was written right after it and matches nothing.
        let signals =
            HashMap::from([(1, sig(None, Some(0.30))), (2, sig(None, Some(0.80))), (3, sig(None, Some(0.10)))]);
        let adjacent = [(2, 3)];
        let off = rank(&params(Mode::Vector, 0.0, 0.0), &signals, &facts(&[1, 2, 3]), &adjacent);
        assert_eq!(off.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![2, 1, 3]);
        let on = rank(&params(Mode::Vector, 0.5, 0.0), &signals, &facts(&[1, 2, 3]), &adjacent);
        assert_eq!(on.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![2, 3, 1]);
        let three = on.iter().find(|r| r.seq == 3).unwrap();
        assert!((three.explain.context - 0.40).abs() < 1e-9, "{:?}", three.explain);
        // The lending goes both ways: 2 gets half of 3's relevance.
        assert!((on[0].explain.context - 0.05).abs() < 1e-9);
    }

    #[test]
    fn leaders_are_the_most_relevant_in_the_mode_ties_by_seq() {
        // Hybrid: 1 = 0.6·0.5 + 0.4·1 = 0.70, 2 = 0.54, 3 = 0.20, 4 = 0.54.
        let signals = HashMap::from([
            (1, sig(Some(4.0), Some(0.5))),
            (2, sig(None, Some(0.9))),
            (3, sig(Some(2.0), None)),
            (4, sig(None, Some(0.9))),
        ]);
        assert_eq!(leaders(&params(Mode::Hybrid, 0.5, 4.0), &signals, 3), vec![1, 2, 4]);
        // Keyword mode ranks by BM25 alone: 1, then 3; 2 and 4 have none.
        assert_eq!(leaders(&params(Mode::Keyword, 0.5, 4.0), &signals, 2), vec![1, 3]);
        assert_eq!(leaders(&params(Mode::Vector, 0.5, 4.0), &signals, 10).len(), 4);
    }

    #[test]
    fn out_of_scope_candidates_are_dropped_and_lend_nothing() {
        let signals = HashMap::from([(1, sig(None, Some(0.2))), (2, sig(None, Some(0.9)))]);
        let out = rank(&params(Mode::Vector, 0.5, 0.0), &signals, &facts(&[1]), &[(1, 2)]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].explain.context, 0.0);
    }

    #[test]
    fn keyword_mode_ignores_vectors_and_recency_prefers_fresh_memories() {
        let signals = HashMap::from([(1, sig(Some(1.0), Some(0.99))), (2, sig(Some(2.0), None))]);
        let out = rank(&params(Mode::Keyword, 0.0, 2.0), &signals, &facts(&[1, 2]), &[]);
        assert_eq!(out[0].seq, 2);
        assert_eq!(out[1].explain.relevance, 0.5);
        let mut p = params(Mode::Keyword, 0.0, 2.0);
        p.weights.recency = 0.1;
        let mut f = facts(&[1, 2]);
        f.insert(1, RankFacts { updated_at: NOW - 30 * 86_400_000, salience: 0.5 });
        let out = rank(&p, &HashMap::from([(1, sig(Some(1.0), None)), (2, sig(Some(1.0), None))]), &f, &[]);
        assert_eq!(out[0].seq, 2);
        assert!((out[1].explain.recency - 0.05).abs() < 1e-9);
    }
}
