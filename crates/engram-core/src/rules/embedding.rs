//! Vectors computed by the embedding queue: stored only for the text they
//! were computed from and — the memory's meaning now known — checked against
//! its namespace in the same transaction, so a near-duplicate written without
//! waiting (or distilled, or patched) is folded like one caught at write time,
//! and a memory no longer waiting for its vector is already settled.

use super::liveness::live;
use super::merge::{self, DUPLICATE_COSINE};
use crate::error::Result;
use crate::model::Namespace;
use crate::store::{Hit, IndexMark, PendingText, Tx};
use crate::time::Millis;
use crate::vector::dot;

/// How long queued embeddings taken by a worker are its alone; a worker that
/// dies leaves them to the next after this.
pub const EMBED_LEASE_MS: Millis = 60_000;

/// Takes the oldest queued embeddings no worker holds, skipping `exclude`d
/// tenants, and leases them to the caller for [`EMBED_LEASE_MS`].
pub fn claim(tx: &mut dyn Tx, now: Millis, limit: usize, exclude: &[String]) -> Result<Vec<PendingText>> {
    let pending = tx.pending_embeddings(now, limit, exclude)?;
    let seqs: Vec<i64> = pending.iter().map(|p| p.seq).collect();
    tx.lease_embeddings(&seqs, now + EMBED_LEASE_MS)?;
    Ok(pending)
}

/// A computed embedding: the memory, the version it was queued at, the
/// vector, and the memories near it found beforehand (in the index, and
/// among the other vectors of the batch).
#[derive(Debug, Clone)]
pub struct Computed {
    pub seq: i64,
    pub gen: i64,
    pub tenant: String,
    pub namespace: Namespace,
    pub vector: Vec<f32>,
    pub near: Vec<Hit>,
}

/// Adds to each computed vector the others of the batch in the same tenant
/// and namespace that are at least [`DUPLICATE_COSINE`] similar.
pub fn near_each_other(done: &mut [Computed]) {
    for i in 0..done.len() {
        for j in 0..done.len() {
            if i == j || done[i].tenant != done[j].tenant || done[i].namespace != done[j].namespace {
                continue;
            }
            let cos = dot(&done[i].vector, &done[j].vector);
            if cos >= DUPLICATE_COSINE {
                let seq = done[j].seq;
                done[i].near.push((seq, f64::from(cos)));
            }
        }
    }
}

/// Stores the vectors whose memories are still queued at the version they
/// were computed for (a newer text has its own entry), then folds each with
/// its near-duplicates — those found beforehand, and those stored by others
/// since `mark` (where the index stood before the lookups). Returns how
/// many vectors were stored.
pub fn store(tx: &mut dyn Tx, mut done: Vec<Computed>, mark: &IndexMark, now: Millis) -> Result<usize> {
    let recent = merge::Recent::load(tx, mark, done.iter().map(|c| (c.tenant.as_str(), &c.namespace)))?;
    for c in &mut done {
        let hits: Vec<Hit> = recent.hits(&c.tenant, &c.namespace, &c.vector).collect();
        c.near.extend(hits);
    }
    let mut stored = Vec::with_capacity(done.len());
    for c in done {
        if !tx.unqueue_embedding(c.seq, c.gen)? {
            continue;
        }
        tx.put_vector(c.seq, &c.vector)?;
        stored.push(c);
    }
    let n = stored.len();
    for c in stored {
        if c.near.iter().all(|h| h.0 == c.seq || h.1 < f64::from(DUPLICATE_COSINE)) {
            continue;
        }
        if let Some(s) = live(tx.memory_by_seq(c.seq)?, now) {
            merge::settle(tx, s, Some(&c.vector), &c.near, now)?;
        }
    }
    Ok(n)
}
