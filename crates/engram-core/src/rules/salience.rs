//! Salience maths: citations raise it, time lowers it (docs/decisions.md,
//! Salience). Pinned memories never decay.

use super::liveness::live;
use super::write::resolve;
use crate::error::Result;
use crate::store::Tx;
use crate::time::Millis;

/// Share of the distance to 1 that one citation adds (0.5 → 0.6 → 0.68 → …).
pub const CITE_BOOST: f64 = 0.2;
/// Half-life of salience decay.
pub const HALF_LIFE_MS: i64 = 90 * 86_400_000;
/// Decay is brought up to date at most this often per memory.
pub const DECAY_EVERY_MS: i64 = 86_400_000;

/// Salience after `elapsed_ms` of decay.
pub fn decayed(salience: f64, elapsed_ms: i64) -> f64 {
    salience * 0.5f64.powf(elapsed_ms.max(0) as f64 / HALF_LIFE_MS as f64)
}

/// Salience after `times` citations, starting from `base`.
pub fn cited(base: f64, times: u32) -> f64 {
    let kept = (1.0 - CITE_BOOST).powi(times.min(1000) as i32);
    (1.0 - (1.0 - base) * kept).clamp(0.0, 1.0)
}

/// Applies counted citations `(tenant, id, times)`: each brings the salience
/// [`CITE_BOOST`] of the way to 1, after the decay due so far. An id merged
/// away cites its survivor. Returns how many memories were found.
pub fn apply_citations(tx: &mut dyn Tx, cites: &[(String, String, u32)], now: Millis) -> Result<usize> {
    let mut found = 0;
    for (tenant, id, times) in cites {
        let Some(s) = live(resolve(tx, tenant, id)?, now) else {
            continue;
        };
        let m = &s.memory;
        let base = if m.pinned { m.salience } else { decayed(m.salience, now - s.salience_at) };
        tx.set_salience(s.seq, cited(base, *times), now, i64::from(*times))?;
        found += 1;
    }
    Ok(found)
}

/// Brings up to `batch` unpinned memories not brought up to date for a day
/// down by the decay since; returns how many.
pub fn decay(tx: &mut dyn Tx, now: Millis, batch: usize) -> Result<usize> {
    let due = tx.salience_due(now - DECAY_EVERY_MS, batch)?;
    for s in &due {
        tx.set_salience(s.seq, decayed(s.memory.salience, now - s.salience_at), now, 0)?;
    }
    Ok(due.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn citations_and_decay() {
        assert!((cited(0.5, 1) - 0.6).abs() < 1e-12);
        assert!((cited(0.5, 2) - 0.68).abs() < 1e-12);
        assert_eq!(cited(1.0, 5), 1.0);
        assert!((decayed(0.8, HALF_LIFE_MS) - 0.4).abs() < 1e-12);
        assert_eq!(decayed(0.8, -5), 0.8);
    }
}
