//! Posting lists with block-max metadata, BM25 as SQLite's FTS5 computes it,
//! and the block-max WAND top-k search over them (Ding & Suel, "Faster top-k
//! document retrieval using block-max indexes", SIGIR 2011).
//!
//! Block-max WAND finds the best `k` documents without scoring every match:
//! each list keeps, per block of [`BLOCK`] postings, the largest term
//! frequency and the shortest document in it, which bound the block's BM25
//! contribution. Whole blocks whose bound cannot beat the current `k`-th score
//! are skipped unread.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Postings per block.
pub const BLOCK: usize = 64;
/// BM25's term-frequency saturation (FTS5's and Lucene's default).
pub const K1: f64 = 1.2;
/// BM25's length normalisation (FTS5's and Lucene's default).
pub const B: f64 = 0.75;
/// A document number past every real one: an exhausted list.
const END: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Block {
    /// The last document number in the block.
    last: u32,
    max_tf: u32,
    min_len: u32,
}

/// The documents holding one term, in ascending document number.
#[derive(Debug, Default)]
pub struct Postings {
    docs: Vec<u32>,
    tfs: Vec<u32>,
    blocks: Vec<Block>,
    max_tf: u32,
    min_len: u32,
    /// Live documents holding the term (dead ones stay listed until the
    /// index compacts).
    pub df: u32,
}

impl Postings {
    /// Adds document `doc` (numbered after every listed one) of length `len`
    /// holding the term `tf` times.
    pub fn push(&mut self, doc: u32, tf: u32, len: u32) {
        debug_assert!(self.docs.last().is_none_or(|&d| d < doc) && doc != END);
        if self.docs.len().is_multiple_of(BLOCK) {
            self.blocks.push(Block { last: doc, max_tf: tf, min_len: len });
        } else if let Some(b) = self.blocks.last_mut() {
            b.last = doc;
            b.max_tf = b.max_tf.max(tf);
            b.min_len = b.min_len.min(len);
        }
        if self.docs.is_empty() {
            self.min_len = len;
        }
        self.max_tf = self.max_tf.max(tf);
        self.min_len = self.min_len.min(len);
        self.docs.push(doc);
        self.tfs.push(tf);
        self.df += 1;
    }

    /// Postings listed, dead documents included.
    #[cfg(test)]
    pub fn listed(&self) -> usize {
        self.docs.len()
    }

    /// How often document `doc` holds the term (0 when it does not).
    pub fn tf_of(&self, doc: u32) -> u32 {
        self.docs.binary_search(&doc).map_or(0, |i| self.tfs[i])
    }

    /// The list without the documents `renumber` maps to `None`, the others
    /// under their new numbers (which keep their order); `lens` by new number.
    pub fn compacted(&self, renumber: &[Option<u32>], lens: &[u32]) -> Postings {
        let mut out = Postings::default();
        for (d, tf) in self.docs.iter().zip(&self.tfs) {
            if let Some(n) = renumber[*d as usize] {
                out.push(n, *tf, lens[n as usize]);
            }
        }
        out
    }
}

/// Collection statistics BM25 needs.
#[derive(Debug, Clone, Copy)]
pub struct Bm25 {
    /// Live documents.
    pub docs: f64,
    /// Their mean length in tokens.
    pub avg_len: f64,
}

impl Bm25 {
    /// The inverse document frequency of a term in `df` documents, as FTS5's
    /// `bm25()` computes it: `ln((N - df + 0.5) / (df + 0.5))`, at least 1e-6.
    pub fn idf(&self, df: u32) -> f64 {
        let df = df as f64;
        let idf = ((self.docs - df + 0.5) / (df + 0.5)).ln();
        if idf > 0.0 {
            idf
        } else {
            1e-6
        }
    }

    /// The term-frequency part of BM25 for `tf` occurrences in a document of `len` tokens.
    pub fn tf_part(&self, tf: u32, len: u32) -> f64 {
        let tf = tf as f64;
        let norm = if self.avg_len > 0.0 { len as f64 / self.avg_len } else { 1.0 };
        tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * norm))
    }
}

/// One query term's list, its weight and a cursor into it.
struct Cursor<'a> {
    list: &'a Postings,
    idf: f64,
    /// Upper bound of the term's contribution to any document.
    bound: f64,
    pos: usize,
    block: usize,
}

impl Cursor<'_> {
    fn doc(&self) -> u32 {
        self.list.docs.get(self.pos).copied().unwrap_or(END)
    }

    fn next(&mut self) {
        self.pos += 1;
        if self.pos >= (self.block + 1) * BLOCK {
            self.block += 1;
        }
    }

    /// Moves to the first posting at or after `target`.
    fn advance_to(&mut self, target: u32) {
        let blocks = &self.list.blocks;
        while self.block < blocks.len() && blocks[self.block].last < target {
            self.block += 1;
        }
        if self.block == blocks.len() {
            self.pos = self.list.docs.len();
            return;
        }
        let start = self.pos.max(self.block * BLOCK);
        let end = ((self.block + 1) * BLOCK).min(self.list.docs.len());
        self.pos = start + self.list.docs[start..end].partition_point(|&d| d < target);
    }

    /// The bound of the block that would hold `doc`, and the block's last
    /// document (without moving).
    fn block_bound(&self, doc: u32, bm: &Bm25) -> (f64, u32) {
        let blocks = &self.list.blocks;
        let mut b = self.block;
        while b < blocks.len() && blocks[b].last < doc {
            b += 1;
        }
        match blocks.get(b) {
            Some(x) => (self.idf * bm.tf_part(x.max_tf, x.min_len), x.last),
            None => (0.0, END),
        }
    }
}

/// A scored document in the result heap (the worst on top).
#[derive(PartialEq)]
struct Scored(f64, u32);

impl Eq for Scored {}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scored {
    /// Worse first: lower score, then later document.
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.total_cmp(&self.0).then(self.1.cmp(&other.1))
    }
}

/// The best `k` documents by BM25 over `terms` (each list with its `idf`)
/// that `admit` accepts: `(doc, score)`, best first, ties by document number.
/// `len` gives each document's length.
pub fn top_k(
    terms: &[(&Postings, f64)],
    bm: &Bm25,
    k: usize,
    len: impl Fn(u32) -> u32,
    mut admit: impl FnMut(u32) -> bool,
) -> Vec<(u32, f64)> {
    let mut cursors: Vec<Cursor> = terms
        .iter()
        .filter(|(l, _)| !l.docs.is_empty())
        .map(|(list, idf)| Cursor {
            list,
            idf: *idf,
            bound: idf * bm.tf_part(list.max_tf, list.min_len),
            pos: 0,
            block: 0,
        })
        .collect();
    let mut heap: BinaryHeap<Scored> = BinaryHeap::with_capacity(k.min(4096) + 1);
    if k == 0 {
        return Vec::new();
    }
    loop {
        let threshold = if heap.len() < k { 0.0 } else { heap.peek().map_or(0.0, |s| s.0) };
        cursors.sort_unstable_by_key(Cursor::doc);
        // The pivot: the first list at which the bounds so far could beat the threshold.
        let mut acc = 0.0;
        let Some(mut p) = cursors.iter().take_while(|c| c.doc() != END).position(|c| {
            acc += c.bound;
            acc > threshold
        }) else {
            break;
        };
        let d = cursors[p].doc();
        while p + 1 < cursors.len() && cursors[p + 1].doc() == d {
            p += 1;
        }
        let (mut block_sum, mut boundary) = (0.0, END);
        for c in &cursors[..=p] {
            let (bound, last) = c.block_bound(d, bm);
            block_sum += bound;
            boundary = boundary.min(last.saturating_add(1));
        }
        if block_sum > threshold {
            if cursors[0].doc() == d {
                if admit(d) {
                    let dl = len(d);
                    let score: f64 = cursors[..=p].iter().map(|c| c.idf * bm.tf_part(c.list.tfs[c.pos], dl)).sum();
                    if heap.len() < k {
                        heap.push(Scored(score, d));
                    } else if score > threshold {
                        heap.pop();
                        heap.push(Scored(score, d));
                    }
                }
                cursors[..=p].iter_mut().for_each(Cursor::next);
            } else {
                cursors[..p].iter_mut().filter(|c| c.doc() < d).for_each(|c| c.advance_to(d));
            }
        } else {
            // No document before `target` can beat the threshold: skip to it.
            let target = cursors.get(p + 1).map_or(boundary, |c| c.doc().min(boundary));
            cursors[..=p].iter_mut().for_each(|c| c.advance_to(target));
        }
    }
    let mut out: Vec<(u32, f64)> = heap.into_iter().map(|s| (s.1, s.0)).collect();
    out.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny deterministic generator (xorshift), so the test needs no crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Scores every document: the reference block-max WAND must agree with.
    fn exhaustive(
        terms: &[(&Postings, f64)],
        bm: &Bm25,
        k: usize,
        lens: &[u32],
        admit: impl Fn(u32) -> bool,
    ) -> Vec<(u32, f64)> {
        let mut all: Vec<(u32, f64)> = (0..lens.len() as u32)
            .filter(|d| admit(*d))
            .filter_map(|d| {
                let s: f64 = terms.iter().map(|(l, idf)| idf * bm.tf_part(l.tf_of(d), lens[d as usize])).sum();
                (terms.iter().any(|(l, _)| l.tf_of(d) > 0)).then_some((d, s))
            })
            .collect();
        all.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(k);
        all
    }

    #[test]
    fn block_max_wand_finds_exactly_the_exhaustive_top_k() {
        let mut rng = Rng(0x9e3779b97f4a7c15);
        for round in 0..60 {
            let n = 50 + rng.below(3000) as u32;
            let lens: Vec<u32> = (0..n).map(|_| 1 + rng.below(40) as u32).collect();
            let nterms = 1 + rng.below(5) as usize;
            let lists: Vec<Postings> = (0..nterms)
                .map(|_| {
                    let density = 1 + rng.below(60);
                    let mut p = Postings::default();
                    for d in 0..n {
                        if rng.below(100) < density {
                            p.push(d, 1 + rng.below(4) as u32, lens[d as usize]);
                        }
                    }
                    p
                })
                .collect();
            let bm = Bm25 { docs: n as f64, avg_len: lens.iter().map(|&l| l as f64).sum::<f64>() / n as f64 };
            let terms: Vec<(&Postings, f64)> = lists.iter().map(|l| (l, bm.idf(l.df))).collect();
            let k = 1 + rng.below(30) as usize;
            let modulus = 1 + rng.below(4) as u32;
            let admit = |d: u32| d.is_multiple_of(modulus);
            let got = top_k(&terms, &bm, k, |d| lens[d as usize], admit);
            let want = exhaustive(&terms, &bm, k, &lens, admit);
            assert_eq!(got.len(), want.len(), "round {round}");
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g.0, w.0, "round {round}: {got:?} vs {want:?}");
                assert!((g.1 - w.1).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn idf_matches_fts5_and_is_never_zero() {
        let bm = Bm25 { docs: 100.0, avg_len: 10.0 };
        assert!((bm.idf(1) - (99.5f64 / 1.5).ln()).abs() < 1e-12);
        assert_eq!(bm.idf(90), 1e-6);
        // tf part: saturates with tf, falls with length.
        assert!(bm.tf_part(2, 10) > bm.tf_part(1, 10));
        assert!(bm.tf_part(1, 5) > bm.tf_part(1, 20));
        assert!((bm.tf_part(1, 10) - 1.0).abs() < 1e-12, "tf 1 at the mean length is 1");
    }

    #[test]
    fn compaction_keeps_order_and_drops_the_dead() {
        let mut p = Postings::default();
        for d in 0..200 {
            p.push(d, 1 + d % 3, 10);
        }
        let renumber: Vec<Option<u32>> = (0..200).map(|d| (d % 2 == 0).then_some(d / 2)).collect();
        let c = p.compacted(&renumber, &[10; 100]);
        assert_eq!(c.listed(), 100);
        assert_eq!(c.tf_of(5), p.tf_of(10));
        assert_eq!(c.tf_of(100), 0);
    }
}
