//! SQL for salience: citations written in batches, and decay brought up to
//! date at most once a day per memory (see docs/decisions.md, Salience).

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Result;
use crate::model::memory::CITE_BOOST;
use crate::time::Millis;

/// Salience after `elapsed_ms` of decay (half-life `half_life_ms`).
pub fn decayed(salience: f64, elapsed_ms: i64, half_life_ms: i64) -> f64 {
    salience * 0.5f64.powf(elapsed_ms.max(0) as f64 / half_life_ms.max(1) as f64)
}

/// Applies citations `(tenant, id, times)`: each brings the salience a share
/// [`CITE_BOOST`] of the way to 1, after the decay due
/// so far (none for pinned memories). Returns how many memories were found.
pub fn apply_citations(c: &Connection, cites: &[(String, String, u32)], half_life_ms: i64, now: Millis) -> Result<usize> {
    let mut read = c.prepare_cached(
        "SELECT seq, salience, COALESCE(salience_at, updated_at), pinned FROM memories \
         WHERE tenant_id = ? AND id = ? AND (expires_at IS NULL OR expires_at > ?)",
    )?;
    let mut write =
        c.prepare_cached("UPDATE memories SET salience = ?, salience_at = ?, cite_count = cite_count + ? WHERE seq = ?")?;
    let mut found = 0;
    for (tenant, id, times) in cites {
        let row = read
            .query_row(params![tenant, id, now], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, f64>(1)?, r.get::<_, i64>(2)?, r.get::<_, bool>(3)?))
            })
            .optional()?;
        let Some((seq, salience, at, pinned)) = row else { continue };
        let base = if pinned { salience } else { decayed(salience, now - at, half_life_ms) };
        let kept = (1.0 - CITE_BOOST).powi((*times).min(1000) as i32);
        write.execute(params![(1.0 - (1.0 - base) * kept).clamp(0.0, 1.0), now, times, seq])?;
        found += 1;
    }
    Ok(found)
}

/// Brings up to `batch` unpinned memories whose salience was last updated a
/// day or more ago down by the decay since then; returns how many.
pub fn decay_salience(c: &Connection, half_life_ms: i64, now: Millis, batch: usize) -> Result<usize> {
    const DAY_MS: i64 = 86_400_000;
    let due: Vec<(i64, f64, i64)> = c
        .prepare_cached(
            "SELECT seq, salience, salience_at FROM memories WHERE pinned = 0 AND salience_at <= ? \
             ORDER BY salience_at LIMIT ?",
        )?
        .query_map(params![now - DAY_MS, batch as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut write = c.prepare_cached("UPDATE memories SET salience = ?, salience_at = ? WHERE seq = ?")?;
    for (seq, salience, at) in &due {
        write.execute(params![decayed(*salience, now - at, half_life_ms), now, seq])?;
    }
    Ok(due.len())
}
