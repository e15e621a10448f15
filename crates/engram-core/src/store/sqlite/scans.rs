//! Whole-table scans for export (`engram export`, `engram migrate`): every
//! row of a tenant, or of all, in a stable order, a page at a time.

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection};

use super::memories::{run_query, to_stored, COLUMNS};
use super::sql::SqlBuilder;
use super::vectors::from_blob;
use crate::error::Result;
use crate::model::Namespace;
use crate::store::{JobRow, SessionRow, Stored, TenantModel};
use crate::time::Millis;

/// Appends ` AND <column> = tenant` when a tenant is given.
fn push_tenant(b: &mut SqlBuilder, column: &str, tenant: Option<&str>) {
    if let Some(t) = tenant {
        b.sql(&format!(" AND {column} = ")).param(SqlValue::Text(t.to_owned()));
    }
}

pub fn memories_after(c: &Connection, tenant: Option<&str>, after: i64, limit: usize) -> Result<Vec<Stored>> {
    let mut b = SqlBuilder::default();
    b.sql(&format!("SELECT {COLUMNS} FROM memories m WHERE m.seq > ")).param(SqlValue::Integer(after));
    push_tenant(&mut b, "m.tenant_id", tenant);
    b.sql(" ORDER BY m.seq LIMIT ").param(SqlValue::Integer(limit as i64));
    run_query(c, &b, to_stored)
}

pub fn vectors_of(c: &Connection, seqs: &[i64]) -> Result<Vec<(i64, Vec<f32>)>> {
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    let mut b = SqlBuilder::default();
    b.sql("SELECT seq, vector FROM memory_vectors WHERE seq IN ").seq_list(seqs);
    let mut stmt = c.prepare_cached(&b.text)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(b.params.iter()), |r| {
        Ok((r.get(0)?, from_blob(&r.get::<_, Vec<u8>>(1)?)))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn sessions_after(
    c: &Connection,
    tenant: Option<&str>,
    after: Option<(String, String)>,
    limit: usize,
) -> Result<Vec<SessionRow>> {
    let (t, id) = after.unwrap_or_default();
    let mut b = SqlBuilder::default();
    b.sql(
        "SELECT tenant_id, id, namespace, turn_count, distilled_through, summary, created_at, updated_at, expires_at \
         FROM sessions WHERE (tenant_id > ",
    )
    .param(SqlValue::Text(t.clone()))
    .sql(" OR (tenant_id = ")
    .param(SqlValue::Text(t))
    .sql(" AND id > ")
    .param(SqlValue::Text(id))
    .sql("))");
    push_tenant(&mut b, "tenant_id", tenant);
    b.sql(" ORDER BY tenant_id, id LIMIT ").param(SqlValue::Integer(limit as i64));
    run_query(c, &b, |r| {
        Ok(SessionRow {
            tenant: r.get(0)?,
            id: r.get(1)?,
            namespace: Namespace::from_stored(&r.get::<_, String>(2)?),
            turn_count: r.get(3)?,
            distilled_through: r.get(4)?,
            summary: r.get(5)?,
            created_at: r.get(6)?,
            updated_at: r.get(7)?,
            expires_at: r.get(8)?,
        })
    })
}

pub fn jobs_after(c: &Connection, tenant: Option<&str>, after: i64, limit: usize) -> Result<Vec<JobRow>> {
    let mut b = SqlBuilder::default();
    b.sql(&format!("SELECT {} FROM jobs WHERE id > ", super::jobs::COLUMNS)).param(SqlValue::Integer(after));
    push_tenant(&mut b, "tenant_id", tenant);
    b.sql(" ORDER BY id LIMIT ").param(SqlValue::Integer(limit as i64));
    run_query(c, &b, super::jobs::to_job)
}

pub fn merges(c: &Connection, tenant: Option<&str>) -> Result<Vec<(String, String, String, Millis)>> {
    let mut st = c.prepare_cached(
        "SELECT tenant_id, id, survivor_id, merged_at FROM memory_merges \
         WHERE (?1 IS NULL OR tenant_id = ?1) ORDER BY tenant_id, id",
    )?;
    let rows = st.query_map(params![tenant], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn tenant_models(c: &Connection, tenant: Option<&str>) -> Result<Vec<(String, TenantModel, Millis)>> {
    let mut st = c.prepare_cached(
        "SELECT tenant_id, model, dims, recorded_at FROM tenant_models \
         WHERE (?1 IS NULL OR tenant_id = ?1) ORDER BY tenant_id",
    )?;
    let rows = st.query_map(params![tenant], |r| {
        Ok((r.get(0)?, TenantModel { model: r.get(1)?, dims: r.get::<_, i64>(2)? as usize }, r.get(3)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
