//! Promotion: episodic memories whose salience reached the threshold move to
//! the semantic tier; one that says what a memory of its namespace already
//! says is folded with it instead (`merge.rs`), and the result is semantic —
//! promotion never duplicates knowledge.

use super::liveness::live;
use super::merge;
use crate::audit::{self, Change, ChangeKind};
use crate::error::Result;
use crate::model::Tier;
use crate::store::{Hit, Reads, Stored, Tx};
use crate::time::Millis;

/// A memory due for promotion, with its vector (to look up its duplicates).
#[derive(Debug, Clone)]
pub struct Candidate {
    pub memory: Stored,
    pub vector: Option<Vec<f32>>,
}

/// What a promotion pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Promotion {
    /// Moved to the semantic tier.
    pub promoted: usize,
    /// Folded with a near-duplicate.
    pub merged: usize,
}

/// Up to `max` live episodic memories with salience ≥ `threshold`, most salient first.
pub fn candidates(r: &mut dyn Reads, threshold: f64, now: Millis, max: usize) -> Result<Vec<Candidate>> {
    let due = r.most_salient(Tier::Episodic, threshold, max)?;
    let mut out = Vec::with_capacity(due.len());
    for s in due.into_iter().filter_map(|s| live(Some(s), now)) {
        let vector = r.vector(s.seq)?;
        out.push(Candidate { memory: s, vector });
    }
    Ok(out)
}

/// Promotes each candidate still due (`hits` are its near neighbours, found
/// by its vector before the transaction).
pub fn promote(tx: &mut dyn Tx, cands: Vec<(Candidate, Vec<Hit>)>, threshold: f64, now: Millis) -> Result<Promotion> {
    let mut out = Promotion::default();
    for (Candidate { memory: cand, vector }, hits) in cands {
        let Some(cur) = live(tx.memory_by_seq(cand.seq)?, now) else {
            continue;
        };
        if cur.memory.tier != Tier::Episodic || cur.memory.salience < threshold {
            continue;
        }
        let version = cur.memory.version;
        let mut settled = merge::settle(tx, cur, vector.as_deref(), &hits, now)?;
        let merged = settled.seq != cand.seq || settled.memory.version != version;
        if settled.memory.tier == Tier::Episodic {
            settled.memory.tier = Tier::Semantic;
            settled.memory.version += 1;
            settled.memory.updated_at = now.max(settled.memory.updated_at);
            tx.update_memory(&settled)?;
            let place = settled.memory.namespace.joined();
            audit::record(tx, &settled.tenant, &place, Change::memory(ChangeKind::Updated, &settled.memory));
        }
        if merged {
            out.merged += 1;
        } else {
            out.promoted += 1;
        }
    }
    Ok(out)
}
