//! The in-process keyword index: BM25 over every memory's `search_text`, for
//! backends whose own full-text search scores every match (SQLite's FTS5 reads
//! each matching row's length from a table to score it: at 100 000 memories
//! that was most of a search's time). Top-k is found by block-max WAND
//! ([`postings`]), restricted to the caller's tenant, namespace, tier and
//! allowed set *inside* the walk.
//!
//! The index is a cache of the store's rows, fed by changes
//! ([`KeywordChange`]: a memory's current indexed state, or its removal); the
//! backend decides when (SQLite: a change log tailed after every write).
//! Scores are BM25 with FTS5's formula and defaults, so they keep the scale
//! ranking was calibrated on; which query words are searched follows
//! [`crate::store::common_terms`], with exact document frequencies.
//!
//! Memory: per memory its facts (24 bytes) and term ids; per distinct term
//! of a memory one posting (8 bytes). Removed memories stay listed until a
//! quarter of the postings are dead; then the lists are rebuilt, without the
//! terms no memory holds any more.
//!
//! Statistics (N, document frequencies, mean length) are over the whole
//! index, every tenant's memories together, as FTS5's were.

mod analyze;
mod postings;

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use analyze::{document, query as query_index_terms, Analyzed};
use postings::{top_k, Bm25, Postings};

use crate::error::{Error, Result};
use crate::model::Tier;
use crate::store::common_terms;
use crate::vector::{Interner, Scope};

/// A memory as the keyword index holds it.
#[derive(Debug, Clone)]
pub struct KeywordDoc {
    pub tenant: String,
    /// Joined with `/`.
    pub namespace: String,
    pub tier: Tier,
    pub keyed: bool,
    pub search_text: String,
}

/// One change to apply: memory `seq` now looks like `doc`, or (`None`) is no
/// longer indexed. `change` is the backend's watermark after it.
#[derive(Debug, Clone)]
pub struct KeywordChange {
    pub change: i64,
    pub seq: u64,
    pub doc: Option<KeywordDoc>,
}

#[derive(Debug, Clone, Copy)]
struct Doc {
    seq: u64,
    len: u32,
    tenant: u32,
    ns: u32,
    tier: Tier,
    keyed: bool,
    alive: bool,
}

#[derive(Default)]
struct State {
    dict: HashMap<Box<str>, u32>,
    lists: Vec<Postings>,
    docs: Vec<Doc>,
    /// Each document's term ids (empty once dead).
    forward: Vec<Box<[u32]>>,
    by_seq: HashMap<u64, u32>,
    tenants: Interner,
    namespaces: Interner,
    live: u64,
    live_len: u64,
    listed: usize,
    dead_listed: usize,
    applied: i64,
}

/// The index; share it behind an `Arc`.
#[derive(Default)]
pub struct KeywordIndex {
    state: RwLock<State>,
}

/// Rebuild the lists once this share of postings belongs to removed memories.
const DEAD_SHARE: usize = 4;
/// ... and at least this many are dead.
const DEAD_MIN: usize = 4096;

impl State {
    fn bm25(&self) -> Bm25 {
        let avg_len = if self.live == 0 { 0.0 } else { self.live_len as f64 / self.live as f64 };
        Bm25 { docs: self.live as f64, avg_len }
    }

    fn remove(&mut self, seq: u64) {
        let Some(d) = self.by_seq.remove(&seq) else {
            return;
        };
        let doc = &mut self.docs[d as usize];
        doc.alive = false;
        self.live -= 1;
        self.live_len -= doc.len as u64;
        let terms = std::mem::take(&mut self.forward[d as usize]);
        for t in terms.iter() {
            self.lists[*t as usize].df -= 1;
        }
        self.dead_listed += terms.len();
    }

    fn insert(&mut self, seq: u64, doc: &KeywordDoc, analyzed: Analyzed) {
        if analyzed.terms.is_empty() {
            return;
        }
        let d = self.docs.len() as u32;
        self.docs.push(Doc {
            seq,
            len: analyzed.len,
            tenant: self.tenants.intern(&doc.tenant),
            ns: self.namespaces.intern(&doc.namespace),
            tier: doc.tier,
            keyed: doc.keyed,
            alive: true,
        });
        let mut ids = Vec::with_capacity(analyzed.terms.len());
        for (term, tf) in analyzed.terms {
            let id = match self.dict.get(term.as_str()) {
                Some(id) => *id,
                None => {
                    let id = self.lists.len() as u32;
                    self.lists.push(Postings::default());
                    self.dict.insert(term.into_boxed_str(), id);
                    id
                }
            };
            self.lists[id as usize].push(d, tf, analyzed.len);
            ids.push(id);
        }
        self.listed += ids.len();
        self.forward.push(ids.into_boxed_slice());
        self.by_seq.insert(seq, d);
        self.live += 1;
        self.live_len += analyzed.len as u64;
    }

    /// Drops removed memories from the lists (renumbering the rest in
    /// order) and the terms no memory holds any more (so erased words leave
    /// memory, and unique words written and deleted do not pile up).
    fn compact(&mut self) {
        let mut renumber = vec![None; self.docs.len()];
        let mut docs = Vec::with_capacity(self.live as usize);
        let mut forward = Vec::with_capacity(self.live as usize);
        for (old, doc) in self.docs.iter().enumerate() {
            if doc.alive {
                renumber[old] = Some(docs.len() as u32);
                self.by_seq.insert(doc.seq, docs.len() as u32);
                docs.push(*doc);
                forward.push(std::mem::take(&mut self.forward[old]));
            }
        }
        let lens: Vec<u32> = docs.iter().map(|d| d.len).collect();
        let mut term_ids: Vec<Option<u32>> = vec![None; self.lists.len()];
        let mut lists = Vec::new();
        for (old, list) in self.lists.iter().enumerate() {
            if list.df > 0 {
                term_ids[old] = Some(lists.len() as u32);
                lists.push(list.compacted(&renumber, &lens));
            }
        }
        self.dict = std::mem::take(&mut self.dict)
            .into_iter()
            .filter_map(|(term, id)| term_ids[id as usize].map(|new| (term, new)))
            .collect();
        for terms in &mut forward {
            for t in terms.iter_mut() {
                // A live memory's terms all have live lists.
                *t = term_ids[*t as usize].unwrap_or(u32::MAX);
            }
        }
        self.lists = lists;
        self.docs = docs;
        self.forward = forward;
        self.listed -= self.dead_listed;
        self.dead_listed = 0;
    }

    fn admits(&self, d: u32, tenant: u32, scope: &Scope<'_>) -> bool {
        let doc = &self.docs[d as usize];
        doc.alive
            && doc.tenant == tenant
            && scope.admits_place(doc.tier, doc.keyed, || self.namespaces.name(doc.ns))
            && scope.allowed.is_none_or(|a| a.contains(&doc.seq))
    }

    /// The lists of the query's index terms worth searching, with their idf.
    fn searched<'a>(&'a self, words: &[String], bm: &Bm25) -> Vec<(&'a Postings, f64)> {
        // Words no memory holds are left out first: the common-terms rule
        // keeps the rarest word, which must be one that can match.
        let (terms, lists): (Vec<String>, Vec<&Postings>) = query_index_terms(words)
            .into_iter()
            .filter_map(|t| {
                let list = self.dict.get(t.as_str()).map(|id| &self.lists[*id as usize])?;
                (list.df > 0).then_some((t, list))
            })
            .unzip();
        let df: Vec<u64> = lists.iter().map(|l| l.df as u64).collect();
        let kept: HashSet<String> = common_terms::keep(terms.clone(), self.live, &df).into_iter().collect();
        terms.iter().zip(lists).filter(|(t, _)| kept.contains(*t)).map(|(_, l)| (l, bm.idf(l.df))).collect()
    }
}

impl KeywordIndex {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, State>> {
        self.state.read().map_err(|_| Error::internal("keyword index lock poisoned"))
    }

    /// The backend's watermark of the last change applied.
    pub fn applied(&self) -> i64 {
        self.read().map(|s| s.applied).unwrap_or(0)
    }

    /// Memories indexed.
    pub fn len(&self) -> usize {
        self.read().map(|s| s.live as usize).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets everything (before a full load).
    pub fn clear(&self) -> Result<()> {
        *self.state.write().map_err(|_| Error::internal("keyword index lock poisoned"))? = State::default();
        Ok(())
    }

    /// Applies `changes` in order (texts are analysed before the index is locked).
    pub fn apply(&self, changes: Vec<KeywordChange>) -> Result<()> {
        let analyzed: Vec<(KeywordChange, Option<Analyzed>)> = changes
            .into_iter()
            .map(|c| {
                let a = c.doc.as_ref().map(|d| document(&d.search_text));
                (c, a)
            })
            .collect();
        let mut s = self.state.write().map_err(|_| Error::internal("keyword index lock poisoned"))?;
        for (change, analyzed) in analyzed {
            s.remove(change.seq);
            if let (Some(doc), Some(a)) = (&change.doc, analyzed) {
                s.insert(change.seq, doc, a);
            }
            s.applied = s.applied.max(change.change);
        }
        if s.dead_listed >= DEAD_MIN && s.dead_listed * DEAD_SHARE >= s.listed {
            s.compact();
        }
        Ok(())
    }

    /// The best `k` memories in `scope` for the query words `words` (as
    /// [`crate::text::query_terms`] makes them): `(seq, bm25)`, best first.
    pub fn search(&self, scope: &Scope<'_>, words: &[String], k: usize) -> Result<Vec<(u64, f64)>> {
        let s = self.read()?;
        let Some(tenant) = s.tenants.id(scope.tenant) else {
            return Ok(Vec::new());
        };
        let bm = s.bm25();
        let lists = s.searched(words, &bm);
        let top = top_k(&lists, &bm, k, |d| s.docs[d as usize].len, |d| s.admits(d, tenant, scope));
        Ok(top.into_iter().map(|(d, score)| (s.docs[d as usize].seq, score)).collect())
    }

    /// The BM25 of those `seqs` holding any searched word of `words`
    /// (scored as [`KeywordIndex::search`] scores them).
    pub fn scores(&self, words: &[String], seqs: &[u64]) -> Result<HashMap<u64, f64>> {
        let s = self.read()?;
        let bm = s.bm25();
        let lists = s.searched(words, &bm);
        let mut out = HashMap::new();
        for seq in seqs {
            let Some(&d) = s.by_seq.get(seq) else {
                continue;
            };
            let len = s.docs[d as usize].len;
            let mut any = false;
            let score: f64 = lists
                .iter()
                .map(|(l, idf)| {
                    let tf = l.tf_of(d);
                    any |= tf > 0;
                    if tf > 0 {
                        idf * bm.tf_part(tf, len)
                    } else {
                        0.0
                    }
                })
                .sum();
            if any {
                out.insert(*seq, score);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::{index_text, query_terms};
    use crate::vector::NsScope;

    fn doc(tenant: &str, ns: &str, text: &str) -> Option<KeywordDoc> {
        Some(KeywordDoc {
            tenant: tenant.into(),
            namespace: ns.into(),
            tier: Tier::Episodic,
            keyed: false,
            search_text: index_text(text),
        })
    }

    fn scope(tenant: &str) -> Scope<'_> {
        Scope { tenant, namespace: NsScope::Any, tier: None, unkeyed_only: false, allowed: None }
    }

    fn seqs(hits: &[(u64, f64)]) -> Vec<u64> {
        hits.iter().map(|h| h.0).collect()
    }

    #[test]
    fn ranks_by_bm25_within_the_tenant_and_namespace() {
        let ix = KeywordIndex::new();
        ix.apply(vec![
            KeywordChange { change: 1, seq: 1, doc: doc("a", "x", "green tea in the morning") },
            KeywordChange { change: 2, seq: 2, doc: doc("a", "x/y", "tea, tea and more tea") },
            KeywordChange { change: 3, seq: 3, doc: doc("b", "x", "tea for tenant b") },
            KeywordChange { change: 4, seq: 4, doc: doc("a", "z", "coffee only") },
        ])
        .unwrap();
        assert_eq!(ix.applied(), 4);
        let q = query_terms("tea?");
        assert_eq!(seqs(&ix.search(&scope("a"), &q, 10).unwrap()), [2, 1], "more occurrences rank first");
        let mut only_x = scope("a");
        only_x.namespace = NsScope::Exact("x");
        assert_eq!(seqs(&ix.search(&only_x, &q, 10).unwrap()), [1]);
        only_x.namespace = NsScope::Prefix("x");
        assert_eq!(seqs(&ix.search(&only_x, &q, 10).unwrap()), [2, 1]);
        assert_eq!(seqs(&ix.search(&scope("b"), &q, 10).unwrap()), [3]);
        assert!(ix.search(&scope("nobody"), &q, 10).unwrap().is_empty());
        let allowed: HashSet<u64> = [1].into();
        let mut narrowed = scope("a");
        narrowed.allowed = Some(&allowed);
        assert_eq!(seqs(&ix.search(&narrowed, &q, 10).unwrap()), [1]);
        let scores = ix.scores(&q, &[1, 2, 4, 99]).unwrap();
        assert_eq!(scores.len(), 2, "only memories holding a word are scored");
        assert!(scores[&2] > scores[&1]);
    }

    #[test]
    fn changes_replace_and_remove_and_compaction_keeps_results() {
        let ix = KeywordIndex::new();
        let n = 20_000u64;
        ix.apply(
            (1..=n)
                .map(|i| KeywordChange {
                    change: i as i64,
                    seq: i,
                    doc: doc("t", "n", &format!("word{} common u{i}", i % 100)),
                })
                .collect(),
        )
        .unwrap();
        assert_eq!(ix.len(), n as usize);
        let q = query_terms("word7");
        let before = ix.search(&scope("t"), &q, 1000).unwrap();
        assert_eq!(before.len(), 200);
        // Replace one text, remove most memories: the lists compact.
        let mut changes = vec![KeywordChange { change: n as i64 + 1, seq: 7, doc: doc("t", "n", "something else") }];
        changes.extend((1..=n).filter(|i| i % 100 != 7 && i % 2 == 0).map(|i| KeywordChange {
            change: (n + 1 + i) as i64,
            seq: i,
            doc: None,
        }));
        ix.apply(changes).unwrap();
        let after = ix.search(&scope("t"), &q, 1000).unwrap();
        assert_eq!(after.len(), 199, "memory 7 no longer holds the word");
        assert!(!seqs(&after).contains(&7));
        assert_eq!(seqs(&ix.search(&scope("t"), &query_terms("something"), 10).unwrap()), [7]);
        assert_eq!(ix.len(), (n / 2) as usize);
        let terms = ix.read().unwrap().dict.len();
        // 100 words, "common", u1..u20000 of which the odd half stays, and memory 7's new words.
        assert!(terms <= 100 + 1 + 10_000 + 2, "the dictionary lost the words no memory holds: {terms}");
    }

    #[test]
    fn a_word_nobody_wrote_does_not_hide_the_others() {
        let ix = KeywordIndex::new();
        // Past the size where common words are dropped; "tea" is in most memories.
        ix.apply(
            (1..=12_000u64)
                .map(|i| KeywordChange { change: i as i64, seq: i, doc: doc("t", "n", &format!("tea number{i}")) })
                .collect(),
        )
        .unwrap();
        let hits = ix.search(&scope("t"), &query_terms("tea xyzzyplugh"), 5).unwrap();
        assert_eq!(hits.len(), 5, "the misspelt word is left out, the common one searched: {hits:?}");
    }
}
