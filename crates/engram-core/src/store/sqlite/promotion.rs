//! Promotion: episodic memories whose salience reached the threshold move to
//! the semantic tier — or, when the namespace already holds a semantic
//! near-duplicate (same normalised text, or cosine ≥ 0.95), are merged into it
//! and removed, so promotion never duplicates knowledge.
//!
//! Candidates and their vectors are read on a reader; near-duplicates are
//! looked up in the vector index off the writer; the writer re-checks each
//! candidate (it may have changed meanwhile) and applies the move or merge.

use rusqlite::{params, Connection, OptionalExtension};

use super::memories::{self, COLUMNS};
use super::vectors::from_blob;
use crate::error::Result;
use crate::time::Millis;

/// An episodic memory due for promotion.
pub struct Candidate {
    pub seq: i64,
    pub tenant: String,
    pub namespace: String,
    pub text_hash: Option<i64>,
    pub vector: Option<Vec<f32>>,
    /// Semantic memories of its namespace at least 0.95 similar (from the index).
    pub near: Vec<u64>,
}

/// Up to `max` live episodic memories with salience ≥ `threshold`, most salient first.
pub fn candidates(c: &Connection, threshold: f64, now: Millis, max: usize) -> Result<Vec<Candidate>> {
    let mut st = c.prepare_cached(
        "SELECT m.seq, m.tenant_id, m.namespace, m.text_hash, v.vector FROM memories m \
         LEFT JOIN memory_vectors v ON v.seq = m.seq \
         WHERE m.tier = 'episodic' AND m.salience >= ? AND (m.expires_at IS NULL OR m.expires_at > ?) \
         ORDER BY m.salience DESC LIMIT ?",
    )?;
    let rows = st.query_map(params![threshold, now, max as i64], |r| {
        Ok(Candidate {
            seq: r.get(0)?,
            tenant: r.get(1)?,
            namespace: r.get(2)?,
            text_hash: r.get(3)?,
            vector: r.get::<_, Option<Vec<u8>>>(4)?.map(|b| from_blob(&b)),
            near: Vec::new(),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// What a promotion pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Promotion {
    /// Moved to the semantic tier.
    pub promoted: usize,
    /// Merged into a semantic near-duplicate (and removed).
    pub merged: usize,
}

/// Promotes or merges each candidate still due.
pub fn promote(c: &Connection, cands: &[Candidate], threshold: f64, now: Millis) -> Result<Promotion> {
    let mut out = Promotion::default();
    for cand in cands {
        let still_due = c
            .prepare_cached(
                "SELECT 1 FROM memories WHERE seq = ? AND tier = 'episodic' AND salience >= ? \
                 AND (expires_at IS NULL OR expires_at > ?)",
            )?
            .exists(params![cand.seq, threshold, now])?;
        if !still_due {
            continue;
        }
        match semantic_duplicate(c, cand, now)? {
            Some(keep) => {
                absorb(c, keep, cand.seq, now)?;
                out.merged += 1;
            }
            None => {
                c.prepare_cached(
                    "UPDATE memories SET tier = 'semantic', version = version + 1, updated_at = MAX(updated_at, ?) \
                     WHERE seq = ?",
                )?
                .execute(params![now, cand.seq])?;
                out.promoted += 1;
            }
        }
    }
    Ok(out)
}

/// A live semantic memory without a key in the candidate's namespace with the
/// same normalised text or a vector found near it.
fn semantic_duplicate(c: &Connection, cand: &Candidate, now: Millis) -> Result<Option<i64>> {
    if let Some(hash) = cand.text_hash {
        let same: Option<i64> = c
            .prepare_cached(
                "SELECT seq FROM memories WHERE tenant_id = ? AND namespace = ? AND text_hash = ? AND key IS NULL \
                 AND tier = 'semantic' AND (expires_at IS NULL OR expires_at > ?) ORDER BY seq LIMIT 1",
            )?
            .query_row(params![cand.tenant, cand.namespace, hash, now], |r| r.get(0))
            .optional()?;
        if same.is_some() {
            return Ok(same);
        }
    }
    for &seq in &cand.near {
        let live = c
            .prepare_cached(
                "SELECT 1 FROM memories WHERE seq = ? AND tenant_id = ? AND tier = 'semantic' AND key IS NULL \
                 AND (expires_at IS NULL OR expires_at > ?)",
            )?
            .exists(params![seq as i64, cand.tenant, now])?;
        if live {
            return Ok(Some(seq as i64));
        }
    }
    Ok(None)
}

/// Folds memory `drop` into `keep` and deletes it: tags and metadata merged
/// (the absorbed memory's values win: they are the newer), the higher
/// salience, pinned if either was, citations added up.
fn absorb(c: &Connection, keep: i64, drop: i64, now: Millis) -> Result<()> {
    let sql = format!("SELECT {COLUMNS}, m.cite_count FROM memories m WHERE m.seq = ?");
    let read = |seq: i64| -> Result<(crate::model::Memory, i64)> {
        Ok(c.prepare_cached(&sql)?.query_row(params![seq], |r| Ok((memories::to_memory(r)?, r.get(17)?)))?)
    };
    let (k, k_cites) = read(keep)?;
    let (d, d_cites) = read(drop)?;
    let (tags, metadata) = memories::merged_labels(&k, &d.tags, &d.metadata);
    let pinned = k.pinned || d.pinned;
    c.prepare_cached(
        "UPDATE memories SET tags = ?, metadata = ?, salience = ?, salience_at = ?, pinned = ?, cite_count = ?, \
         expires_at = CASE WHEN ? THEN NULL ELSE expires_at END, version = version + 1, updated_at = MAX(updated_at, ?) \
         WHERE seq = ?",
    )?
    .execute(params![
        memories::to_json(&tags)?,
        memories::to_json(&metadata)?,
        k.salience.max(d.salience),
        now,
        pinned,
        k_cites + d_cites,
        pinned,
        now,
        keep
    ])?;
    c.prepare_cached("DELETE FROM memories WHERE seq = ?")?.execute(params![drop])?;
    Ok(())
}
