//! SQL for the change journal (`crate::audit`): rows appended to their
//! chain, chain heads, and pages of rows in chain order.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::audit::{Actor, ChainHead, ChangeRow, Head};
use crate::error::{Error, Result};

fn hash32(v: Vec<u8>, what: &str) -> rusqlite::Result<[u8; 32]> {
    v.try_into().map_err(|v: Vec<u8>| {
        rusqlite::Error::FromSqlConversionFailure(
            v.len(),
            rusqlite::types::Type::Blob,
            format!("{what} is {} bytes, not 32", v.len()).into(),
        )
    })
}

pub fn head(c: &Connection, tenant: &str, namespace: &str) -> Result<Option<Head>> {
    let row = c
        .prepare_cached("SELECT seq, hash FROM change_heads WHERE tenant_id = ? AND namespace = ?")?
        .query_row(params![tenant, namespace], |r| Ok((r.get(0)?, hash32(r.get(1)?, "a head's hash")?)))
        .optional()?;
    Ok(row)
}

pub fn append(c: &Connection, row: &ChangeRow) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO changes (tenant_id, namespace, seq, at, by_who, agent_id, request_id, changes, prev_hash, hash) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        row.tenant,
        row.namespace,
        row.seq,
        row.at,
        row.actor.by,
        row.actor.agent_id,
        row.actor.request_id,
        row.changes,
        &row.prev_hash[..],
        &row.hash[..]
    ])?;
    c.prepare_cached(
        "INSERT INTO change_heads (tenant_id, namespace, seq, hash) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (tenant_id, namespace) DO UPDATE SET seq = ?3, hash = ?4",
    )?
    .execute(params![row.tenant, row.namespace, row.seq, &row.hash[..]])?;
    Ok(())
}

fn to_row(r: &Row<'_>) -> rusqlite::Result<ChangeRow> {
    Ok(ChangeRow {
        tenant: r.get(0)?,
        namespace: r.get(1)?,
        seq: r.get(2)?,
        at: r.get(3)?,
        actor: Actor { by: r.get(4)?, agent_id: r.get(5)?, request_id: r.get(6)? },
        changes: r.get(7)?,
        prev_hash: hash32(r.get(8)?, "prev_hash")?,
        hash: hash32(r.get(9)?, "hash")?,
    })
}

/// Up to `limit` rows (of `tenant`, or all) after `after` = `(tenant,
/// namespace, seq)`, in chain order.
pub fn page(
    c: &Connection,
    tenant: Option<&str>,
    after: Option<&(String, String, i64)>,
    limit: usize,
) -> Result<Vec<ChangeRow>> {
    let (t, n, s) = match after {
        Some((t, n, s)) => (Some(t.as_str()), n.as_str(), *s),
        None => (None, "", 0),
    };
    let mut stmt = c.prepare_cached(
        "SELECT tenant_id, namespace, seq, at, by_who, agent_id, request_id, changes, prev_hash, hash FROM changes \
         WHERE (?1 IS NULL OR tenant_id = ?1) AND (?2 IS NULL OR (tenant_id, namespace, seq) > (?2, ?3, ?4)) \
         ORDER BY tenant_id, namespace, seq LIMIT ?5",
    )?;
    let rows = stmt.query_map(params![tenant, t, n, s, limit as i64], to_row)?.collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// Every chain's head (of `tenant`, or all), in chain order.
pub fn heads(c: &Connection, tenant: Option<&str>) -> Result<Vec<ChainHead>> {
    let mut stmt = c.prepare_cached(
        "SELECT tenant_id, namespace, seq, hash FROM change_heads WHERE (?1 IS NULL OR tenant_id = ?1) \
         ORDER BY tenant_id, namespace",
    )?;
    let rows = stmt
        .query_map(params![tenant], |r| {
            Ok(ChainHead { tenant: r.get(0)?, namespace: r.get(1)?, seq: r.get(2)?, hash: hash32(r.get(3)?, "hash")? })
        })?
        .collect::<rusqlite::Result<_>>()
        .map_err(|e| Error::internal(format!("change heads: {e}")))?;
    Ok(rows)
}

/// Up to `limit` of the tenant's rows after `after` in commit order (one
/// writer: id order), each with its position `(0, id)`.
pub fn since(c: &Connection, tenant: &str, after: (i64, i64), limit: usize) -> Result<Vec<((i64, i64), ChangeRow)>> {
    let mut stmt = c.prepare_cached(
        "SELECT tenant_id, namespace, seq, at, by_who, agent_id, request_id, changes, prev_hash, hash, id FROM changes \
         WHERE tenant_id = ? AND id > ? ORDER BY id LIMIT ?",
    )?;
    let rows = stmt
        .query_map(params![tenant, after.1, limit as i64], |r| Ok(((0, r.get::<_, i64>(10)?), to_row(r)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// The position of the newest row (of any tenant).
pub fn tail(c: &Connection) -> Result<(i64, i64)> {
    Ok((0, c.prepare_cached("SELECT COALESCE(MAX(id), 0) FROM changes")?.query_row([], |r| r.get(0))?))
}
