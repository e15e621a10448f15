//! SQL for the `jobs` table: durable background work. What a job means and
//! when it runs again is decided by the rules that queue it.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::error::Result;
use crate::store::JobRow;
use crate::time::Millis;

pub(super) const COLUMNS: &str = "id, kind, tenant_id, subject, payload, attempts, run_after, created_at";

pub(super) fn to_job(r: &Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        tenant: r.get(2)?,
        subject: r.get(3)?,
        payload: r.get(4)?,
        attempts: r.get(5)?,
        run_after: r.get(6)?,
        created_at: r.get(7)?,
    })
}

pub fn get(c: &Connection, id: i64) -> Result<Option<JobRow>> {
    Ok(c.prepare_cached(&format!("SELECT {COLUMNS} FROM jobs WHERE id = ?"))?
        .query_row(params![id], to_job)
        .optional()?)
}

pub fn due(c: &Connection, kind: &str, at: Millis, limit: usize) -> Result<Vec<JobRow>> {
    let mut st =
        c.prepare_cached(&format!("SELECT {COLUMNS} FROM jobs WHERE kind = ? AND run_after <= ? ORDER BY id LIMIT ?"))?;
    let rows = st.query_map(params![kind, at, limit as i64], to_job)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn insert(c: &Connection, j: &JobRow) -> Result<i64> {
    c.prepare_cached(
        "INSERT INTO jobs (kind, tenant_id, subject, payload, attempts, run_after, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![j.kind, j.tenant, j.subject, j.payload, j.attempts, j.run_after, j.created_at])?;
    Ok(c.last_insert_rowid())
}

pub fn delete(c: &Connection, id: i64) -> Result<bool> {
    Ok(c.prepare_cached("DELETE FROM jobs WHERE id = ?")?.execute(params![id])? > 0)
}

pub fn delete_of(c: &Connection, tenant: &str, kind: &str, subject: &str) -> Result<usize> {
    Ok(c.prepare_cached("DELETE FROM jobs WHERE tenant_id = ? AND kind = ? AND subject = ?")?
        .execute(params![tenant, kind, subject])?)
}

pub fn lease(c: &Connection, id: i64, until: Millis) -> Result<()> {
    c.prepare_cached("UPDATE jobs SET run_after = ? WHERE id = ?")?.execute(params![until, id])?;
    Ok(())
}

pub fn retry(c: &Connection, id: i64, error: &str, run_after: Millis) -> Result<()> {
    c.prepare_cached("UPDATE jobs SET attempts = attempts + 1, last_error = ?, run_after = ? WHERE id = ?")?
        .execute(params![error.chars().take(500).collect::<String>(), run_after, id])?;
    Ok(())
}
