//! SQL for sessions (working memory) and their turns. When turns are pruned,
//! when a session ends and what is distilled are decided in `rules::sessions`.

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{Error, Result};
use crate::model::session::Turn;
use crate::model::Namespace;
use crate::store::SessionRow;
use crate::time::{LocalTime, Millis};

pub fn get(c: &Connection, tenant: &str, id: &str) -> Result<Option<SessionRow>> {
    Ok(c.prepare_cached(
        "SELECT namespace, turn_count, distilled_through, summary, created_at, updated_at, expires_at \
         FROM sessions WHERE tenant_id = ? AND id = ?",
    )?
    .query_row(params![tenant, id], |r| {
        Ok(SessionRow {
            tenant: tenant.to_owned(),
            id: id.to_owned(),
            namespace: Namespace::from_stored(&r.get::<_, String>(0)?),
            turn_count: r.get(1)?,
            distilled_through: r.get(2)?,
            summary: r.get(3)?,
            created_at: r.get(4)?,
            updated_at: r.get(5)?,
            expires_at: r.get(6)?,
        })
    })
    .optional()?)
}

pub fn put(c: &Connection, s: &SessionRow) -> Result<()> {
    c.prepare_cached(
        "INSERT OR REPLACE INTO sessions (tenant_id, id, namespace, turn_count, distilled_through, summary, \
         created_at, updated_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        s.tenant,
        s.id,
        s.namespace.joined(),
        s.turn_count,
        s.distilled_through,
        s.summary,
        s.created_at,
        s.updated_at,
        s.expires_at
    ])?;
    Ok(())
}

pub fn delete(c: &Connection, tenant: &str, id: &str) -> Result<()> {
    c.prepare_cached("DELETE FROM session_turns WHERE tenant_id = ? AND session_id = ?")?
        .execute(params![tenant, id])?;
    c.prepare_cached("DELETE FROM sessions WHERE tenant_id = ? AND id = ?")?.execute(params![tenant, id])?;
    Ok(())
}

fn to_turn(r: &rusqlite::Row<'_>) -> rusqlite::Result<Turn> {
    let meta: String = r.get(4)?;
    let metadata = serde_json::from_str(&meta)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(e)))?;
    let at = LocalTime { at: r.get(3)?, utc_offset: r.get(5)? };
    Ok(Turn { index: r.get(0)?, role: r.get(1)?, content: r.get(2)?, at, metadata })
}

pub fn turns(c: &Connection, tenant: &str, id: &str, from: i64, to: i64) -> Result<Vec<Turn>> {
    let mut st = c.prepare_cached(
        "SELECT idx, role, content, at, metadata, utc_offset FROM session_turns \
         WHERE tenant_id = ? AND session_id = ? AND idx BETWEEN ? AND ? ORDER BY idx",
    )?;
    let rows = st.query_map(params![tenant, id, from, to], to_turn)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub fn insert_turns(c: &Connection, tenant: &str, id: &str, turns: &[Turn]) -> Result<()> {
    let mut insert = c.prepare_cached(
        "INSERT INTO session_turns (tenant_id, session_id, idx, role, content, at, utc_offset, metadata) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )?;
    for t in turns {
        let meta =
            serde_json::to_string(&t.metadata).map_err(|e| Error::internal(format!("encoding turn metadata: {e}")))?;
        insert.execute(params![tenant, id, t.index, t.role, t.content, t.at.at, t.at.utc_offset, meta])?;
    }
    Ok(())
}

pub fn delete_turns_through(c: &Connection, tenant: &str, id: &str, through: i64) -> Result<()> {
    c.prepare_cached("DELETE FROM session_turns WHERE tenant_id = ? AND session_id = ? AND idx <= ?")?
        .execute(params![tenant, id, through])?;
    Ok(())
}

pub fn expired(c: &Connection, at: Millis, limit: usize) -> Result<Vec<(String, String)>> {
    let mut st = c.prepare_cached("SELECT tenant_id, id FROM sessions WHERE expires_at <= ? LIMIT ?")?;
    let rows = st.query_map(params![at, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
