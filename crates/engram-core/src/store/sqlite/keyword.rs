//! SQL for the in-process keyword index ([`crate::keyword`]): loading every
//! memory when the index is first needed, and the change log it tails
//! (`keyword_changes`: inserts are logged by [`log_change`], updates and
//! deletes by the triggers of schema step 12), pruned once
//! applied — the index is loaded from the rows on first use after a store
//! opens, so applied changes are never needed again.

use rusqlite::{params, Connection, Row};

use crate::error::Result;
use crate::keyword::{KeywordChange, KeywordDoc};
use crate::model::Tier;

/// The memory's indexed state from `m.tenant_id, m.namespace, m.tier, key?,
/// m.search_text` at `at`; `None` when the row is gone or has no text.
fn doc_at(r: &Row<'_>, at: usize) -> rusqlite::Result<Option<KeywordDoc>> {
    let tenant: Option<String> = r.get(at)?;
    let text: Option<String> = r.get(at + 4)?;
    Ok(match (tenant, text) {
        (Some(tenant), Some(search_text)) if !search_text.is_empty() => Some(KeywordDoc {
            tenant,
            namespace: r.get(at + 1)?,
            tier: Tier::from_stored(&r.get::<_, String>(at + 2)?),
            keyed: r.get(at + 3)?,
            search_text,
        }),
        _ => None,
    })
}

/// Logs a change to the memory at `seq` (called for an inserted memory with
/// indexed text; schema step 13 says why this is not a trigger).
pub fn log_change(c: &Connection, seq: i64) -> Result<()> {
    c.prepare_cached("INSERT INTO keyword_changes (seq) VALUES (?)")?.execute(params![seq])?;
    Ok(())
}

/// The newest change id (0 when none).
pub fn last_change(c: &Connection) -> Result<i64> {
    Ok(c.prepare_cached("SELECT COALESCE(MAX(change), 0) FROM keyword_changes")?.query_row([], |r| r.get(0))?)
}

/// Up to `limit` memories with text after `seq`, in order, as changes at `as_of`.
pub fn memories_after(c: &Connection, seq: i64, limit: usize, as_of: i64) -> Result<Vec<KeywordChange>> {
    let mut stmt = c.prepare_cached(
        "SELECT m.seq, m.tenant_id, m.namespace, m.tier, m.key IS NOT NULL, m.search_text FROM memories m \
         WHERE m.seq > ? AND m.search_text <> '' ORDER BY m.seq LIMIT ?",
    )?;
    let rows = stmt.query_map(params![seq, limit as i64], |r| {
        Ok(KeywordChange { change: as_of, seq: r.get::<_, i64>(0)? as u64, doc: doc_at(r, 1)? })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Up to `limit` changes after `after`, each with its memory as it is now.
pub fn changes_since(c: &Connection, after: i64, limit: usize) -> Result<Vec<KeywordChange>> {
    let mut stmt = c.prepare_cached(
        "SELECT ch.change, ch.seq, m.tenant_id, m.namespace, m.tier, m.key IS NOT NULL, m.search_text \
         FROM keyword_changes ch LEFT JOIN memories m ON m.seq = ch.seq \
         WHERE ch.change > ? ORDER BY ch.change LIMIT ?",
    )?;
    let rows = stmt.query_map(params![after, limit as i64], |r| {
        Ok(KeywordChange { change: r.get(0)?, seq: r.get::<_, i64>(1)? as u64, doc: doc_at(r, 2)? })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Forgets the changes up to `upto` (applied).
pub fn prune(c: &Connection, upto: i64) -> Result<()> {
    c.prepare_cached("DELETE FROM keyword_changes WHERE change <= ?")?.execute(params![upto])?;
    Ok(())
}
