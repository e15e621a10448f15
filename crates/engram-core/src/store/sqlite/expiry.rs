//! The earliest `expires_at` among all memories, kept current by the writer
//! group by group, so a search can tell that none of the in-process indexes'
//! hits can have expired (the usual case: no memory has expired and waits for
//! the sweep) without asking SQLite about each hit.
//!
//! The writer lowers the value to the new earliest *before* a group commits
//! and sets it exactly after, so whoever sees a group's rows (in SQLite, or in
//! an index caught up from them) sees a value no later than the true one. The
//! indexes' catch-ups lower it too, from what they read, before applying it:
//! rows another process wrote (`engram import` beside a server) reach the
//! indexes that way, not through this process's writer.

use std::sync::atomic::{AtomicI64, Ordering};

use rusqlite::Connection;

use crate::error::Result;
use crate::rules::liveness;
use crate::time::Millis;

/// The earliest expiry any memory has (`i64::MAX`: none expires).
#[derive(Debug)]
pub struct EarliestExpiry(AtomicI64);

impl EarliestExpiry {
    /// Reads the value from the database on `c`.
    pub fn load(c: &Connection) -> Result<Self> {
        Ok(EarliestExpiry(AtomicI64::new(earliest(c)?)))
    }

    /// Whether every memory is live at `now` by the liveness rule.
    pub fn none_expired(&self, now: Millis) -> bool {
        liveness::live_until(Some(self.0.load(Ordering::Acquire)), now)
    }

    /// Before a group commits, or an index applies what it read: never later
    /// than both the old and the new state.
    pub(super) fn lower_to(&self, c: &Connection) -> Result<()> {
        self.0.fetch_min(earliest(c)?, Ordering::AcqRel);
        Ok(())
    }

    /// Not known: every search checks expiry in SQL until the next `set_from`.
    pub(super) fn unknown(&self) {
        self.0.store(i64::MIN, Ordering::Release);
    }

    /// After a group committed or rolled back: the state as it now is.
    pub(super) fn set_from(&self, c: &Connection) -> Result<()> {
        self.0.store(earliest(c)?, Ordering::Release);
        Ok(())
    }
}

/// `MIN(expires_at)` through the partial index `memories_by_expiry`.
fn earliest(c: &Connection) -> Result<i64> {
    let min: Option<i64> = c
        .prepare_cached("SELECT MIN(expires_at) FROM memories WHERE expires_at IS NOT NULL")?
        .query_row([], |r| r.get(0))?;
    Ok(min.unwrap_or(i64::MAX))
}
