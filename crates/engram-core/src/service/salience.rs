//! Salience: citations raise it, time lowers it.
//!
//! `cite` only counts the citation in memory; the salience job writes the
//! counts in one transaction every second, and once more at shutdown, so an
//! agent citing memories at a high rate costs one write a second, not one a
//! citation. A citation still in memory is lost only if the process dies
//! without shutting down — at most the last second's, by design: salience is
//! a ranking hint, not data.

use serde::Serialize;

use super::MemoryService;
use crate::audit::Actor;
use crate::auth::{Scope, TenantCtx};
use crate::error::{Error, Result};
use crate::rules::merge::DUPLICATE_COSINE;
use crate::rules::promotion::{self, Promotion};
use crate::rules::salience as rules;

/// Most distinct memories held between flushes; beyond it `cite` flushes
/// itself (bounds memory under a flood of citations).
const MAX_PENDING: usize = 100_000;
/// Memories decayed per transaction.
pub const DECAY_BATCH: usize = 1000;
/// Episodic memories promoted per pass.
pub const PROMOTION_BATCH: usize = 500;

/// The answer to a citation.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Cited {
    pub id: String,
    /// Citations of this memory waiting to be written (including this one).
    pub pending: u32,
}

impl MemoryService {
    /// Records that the agent used memory `id`; its salience rises at the next flush.
    pub async fn cite(&self, ctx: &TenantCtx, id: &str) -> Result<Cited> {
        ctx.require(Scope::Write)?;
        // 404 for an unknown id, and nothing is counted for it.
        let memory = self.get_memory(ctx, id).await?;
        let (pending, full) = {
            let mut cites = self.inner.cites.lock().map_err(|_| Error::internal("citation lock poisoned"))?;
            let n = cites.entry((ctx.tenant.clone(), memory.id.clone())).or_insert(0);
            *n = n.saturating_add(1);
            let pending = *n;
            (pending, cites.len() >= MAX_PENDING)
        };
        if full {
            self.flush_citations().await?;
        }
        Ok(Cited { id: memory.id, pending })
    }

    /// Memories with citations not yet written.
    pub fn pending_citations(&self) -> usize {
        self.inner.cites.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Writes the citations counted so far; returns how many memories changed.
    pub async fn flush_citations(&self) -> Result<usize> {
        let taken: Vec<(String, String, u32)> = {
            let mut cites = self.inner.cites.lock().map_err(|_| Error::internal("citation lock poisoned"))?;
            cites.drain().map(|((tenant, id), n)| (tenant, id, n)).collect()
        };
        if taken.is_empty() {
            return Ok(0);
        }
        let (cites, now) = (taken.clone(), self.now());
        match self.store().write(&Actor::job("salience"), move |tx| rules::apply_citations(tx, &cites, now)).await {
            Ok(n) => Ok(n),
            Err(e) => {
                // Put them back for the next attempt.
                if let Ok(mut cites) = self.inner.cites.lock() {
                    for (tenant, id, n) in taken {
                        let e = cites.entry((tenant, id)).or_insert(0);
                        *e = e.saturating_add(n);
                    }
                }
                Err(e)
            }
        }
    }

    /// Decays the salience of up to [`DECAY_BATCH`] memories not brought up
    /// to date for a day; returns how many.
    pub async fn decay_salience(&self) -> Result<usize> {
        let now = self.now();
        self.store().write(&Actor::job("salience"), move |tx| rules::decay(tx, now, DECAY_BATCH)).await
    }

    /// Promotes up to [`PROMOTION_BATCH`] episodic memories whose salience
    /// reached the threshold (folding those that duplicate a memory of their
    /// namespace).
    pub async fn promote(&self) -> Result<Promotion> {
        let (threshold, now) = (self.lifecycle().promotion_threshold, self.now());
        let cands = self.store().read(move |r| promotion::candidates(r, threshold, now, PROMOTION_BATCH)).await?;
        if cands.is_empty() {
            return Ok(Promotion::default());
        }
        let mut with_hits = Vec::with_capacity(cands.len());
        for c in cands {
            let hits = match &c.vector {
                Some(v) => {
                    let probe = vec![(c.memory.memory.namespace.clone(), v.clone())];
                    self.store().near(&c.memory.tenant, probe, DUPLICATE_COSINE).await?.pop().unwrap_or_default()
                }
                None => Vec::new(),
            };
            with_hits.push((c, hits));
        }
        self.store().write(&Actor::job("promotion"), move |tx| promotion::promote(tx, with_hits, threshold, now)).await
    }
}
