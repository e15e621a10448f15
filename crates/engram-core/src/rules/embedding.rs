//! Vectors computed by the embedding queue: stored only for the text they
//! were computed from, then — the memory's meaning now known — checked
//! against its namespace, so a near-duplicate written without waiting (or
//! distilled, or patched) is folded like one caught at write time.

use super::liveness::live;
use super::merge;
use crate::error::Result;
use crate::model::Namespace;
use crate::store::{Hit, Tx};
use crate::time::Millis;

/// A computed embedding: the memory, the version it was queued at, the vector.
#[derive(Debug, Clone)]
pub struct Computed {
    pub seq: i64,
    pub gen: i64,
    pub vector: Vec<f32>,
}

/// A memory whose vector was just stored: where to look for its duplicates.
#[derive(Debug, Clone)]
pub struct Embedded {
    pub seq: i64,
    pub tenant: String,
    pub namespace: Namespace,
    pub vector: Vec<f32>,
}

/// Stores the vectors whose memories are still queued at the version they
/// were computed for (a newer text has its own entry); returns those stored.
pub fn store(tx: &mut dyn Tx, done: Vec<Computed>) -> Result<Vec<Embedded>> {
    let mut out = Vec::with_capacity(done.len());
    for c in done {
        if !tx.unqueue_embedding(c.seq, c.gen)? {
            continue;
        }
        let Some(s) = tx.memory_by_seq(c.seq)? else {
            continue;
        };
        tx.put_vector(c.seq, &c.vector)?;
        out.push(Embedded { seq: c.seq, tenant: s.tenant, namespace: s.memory.namespace, vector: c.vector });
    }
    Ok(out)
}

/// Folds each embedded memory with its near-duplicates (`hits`, from the
/// vector index once it holds the new vectors); returns how many folds.
pub fn settle(tx: &mut dyn Tx, found: Vec<(i64, Vec<Hit>)>, now: Millis) -> Result<usize> {
    let mut folds = 0;
    for (seq, hits) in found {
        if hits.iter().all(|h| h.0 == seq || h.1 < f64::from(merge::DUPLICATE_COSINE)) {
            continue;
        }
        let Some(s) = live(tx.memory_by_seq(seq)?, now) else {
            continue;
        };
        let before = s.memory.version;
        let after = merge::settle(tx, s, &hits, now)?;
        if after.seq != seq || after.memory.version != before {
            folds += 1;
        }
    }
    Ok(folds)
}
