//! SQL for the change journal (`crate::audit`): rows appended to their
//! chain, chain heads, and pages of rows in chain order.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::sql::{col, execute, query, query_opt};
use crate::audit::{Actor, ChainHead, ChangeRow, Head};
use crate::error::{Error, Result};

fn hash32(r: &Row, i: usize) -> Result<[u8; 32]> {
    let v: &[u8] = col(r, i)?;
    v.try_into().map_err(|_| Error::internal(format!("a change hash is {} bytes, not 32", v.len())))
}

pub async fn head<C: GenericClient>(c: &C, tenant: &str, namespace: &str) -> Result<Option<Head>> {
    let sql = "SELECT seq, hash FROM change_heads WHERE tenant_id = $1 AND namespace = $2";
    match query_opt(c, sql, &[&tenant, &namespace]).await? {
        Some(r) => Ok(Some((col(&r, 0)?, hash32(&r, 1)?))),
        None => Ok(None),
    }
}

pub async fn append<C: GenericClient>(c: &C, row: &ChangeRow) -> Result<()> {
    execute(
        c,
        "INSERT INTO changes (tenant_id, namespace, seq, at, by_who, agent_id, request_id, changes, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &row.tenant,
            &row.namespace,
            &row.seq,
            &row.at,
            &row.actor.by,
            &row.actor.agent_id,
            &row.actor.request_id,
            &row.changes,
            &&row.prev_hash[..],
            &&row.hash[..],
        ],
    )
    .await?;
    execute(
        c,
        "INSERT INTO change_heads (tenant_id, namespace, seq, hash) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, namespace) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash",
        &[&row.tenant, &row.namespace, &row.seq, &&row.hash[..]],
    )
    .await?;
    Ok(())
}

fn to_row(r: &Row) -> Result<ChangeRow> {
    Ok(ChangeRow {
        tenant: col(r, 0)?,
        namespace: col(r, 1)?,
        seq: col(r, 2)?,
        at: col(r, 3)?,
        actor: Actor { by: col(r, 4)?, agent_id: col(r, 5)?, request_id: col(r, 6)? },
        changes: col(r, 7)?,
        prev_hash: hash32(r, 8)?,
        hash: hash32(r, 9)?,
    })
}

/// Up to `limit` rows (of `tenant`, or all) after `after` = `(tenant,
/// namespace, seq)`, in chain order.
pub async fn page<C: GenericClient>(
    c: &C,
    tenant: Option<&str>,
    after: Option<&(String, String, i64)>,
    limit: usize,
) -> Result<Vec<ChangeRow>> {
    let (t, n, s) = match after {
        Some((t, n, s)) => (Some(t.as_str()), n.as_str(), *s),
        None => (None, "", 0),
    };
    let sql = "SELECT tenant_id, namespace, seq, at, by_who, agent_id, request_id, changes, prev_hash, hash \
               FROM changes WHERE ($1::text IS NULL OR tenant_id = $1) \
               AND ($2::text IS NULL OR (tenant_id, namespace, seq) > ($2::text, $3::text, $4::bigint)) \
               ORDER BY tenant_id, namespace, seq LIMIT $5";
    query(c, sql, &[&tenant, &t, &n, &s, &(limit as i64)]).await?.iter().map(to_row).collect()
}

/// Every chain's head (of `tenant`, or all), in chain order.
pub async fn heads<C: GenericClient>(c: &C, tenant: Option<&str>) -> Result<Vec<ChainHead>> {
    let sql = "SELECT tenant_id, namespace, seq, hash FROM change_heads WHERE ($1::text IS NULL OR tenant_id = $1) \
               ORDER BY tenant_id, namespace";
    query(c, sql, &[&tenant])
        .await?
        .iter()
        .map(|r| Ok(ChainHead { tenant: col(r, 0)?, namespace: col(r, 1)?, seq: col(r, 2)?, hash: hash32(r, 3)? }))
        .collect()
}

/// Up to `limit` of the tenant's rows after `after` in `(txid, id)` order,
/// each with its position — only rows of transactions that ended before
/// every one still running began, so none can later appear behind them.
pub async fn since<C: GenericClient>(
    c: &C,
    tenant: &str,
    after: (i64, i64),
    limit: usize,
) -> Result<Vec<((i64, i64), ChangeRow)>> {
    let sql = "SELECT tenant_id, namespace, seq, at, by_who, agent_id, request_id, changes, prev_hash, hash, \
               txid::text::bigint, id FROM changes \
               WHERE tenant_id = $1 AND (txid, id) > ($2::bigint::text::xid8, $3) \
               AND txid < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY txid, id LIMIT $4";
    query(c, sql, &[&tenant, &after.0, &after.1, &(limit as i64)])
        .await?
        .iter()
        .map(|r| Ok(((col(r, 10)?, col(r, 11)?), to_row(r)?)))
        .collect()
}

/// The position every row still to come lies after.
pub async fn tail<C: GenericClient>(c: &C) -> Result<(i64, i64)> {
    let rows = query(c, "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint - 1", &[]).await?;
    let xmin: i64 = rows.first().map_or(Ok(0), |r| col(r, 0))?;
    Ok((xmin, i64::MAX))
}
