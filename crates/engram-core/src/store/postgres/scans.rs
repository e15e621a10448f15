//! Whole-table scans for export (`engram export`, `engram migrate`): every
//! row of a tenant, or of all, in a stable order, a page at a time.

use deadpool_postgres::GenericClient;
use pgvector::Vector;

use super::memories::{to_stored, COLUMNS};
use super::sql::{col, query};
use crate::error::Result;
use crate::model::Namespace;
use crate::store::{JobRow, SessionRow, Stored, TenantModel};
use crate::time::Millis;

pub async fn memories_after<C: GenericClient>(
    c: &C,
    tenant: Option<&str>,
    after: i64,
    limit: usize,
) -> Result<Vec<Stored>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM memories m WHERE m.seq > $1 AND ($2::text IS NULL OR m.tenant_id = $2) \
         ORDER BY m.seq LIMIT $3"
    );
    query(c, &sql, &[&after, &tenant, &(limit as i64)]).await?.iter().map(to_stored).collect()
}

pub async fn vectors_of<C: GenericClient>(c: &C, seqs: &[i64]) -> Result<Vec<(i64, Vec<f32>)>> {
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    let rows = query(c, "SELECT seq, embedding FROM memory_vectors WHERE seq = ANY($1)", &[&seqs]).await?;
    rows.iter().map(|r| Ok((col(r, 0)?, col::<Vector>(r, 1)?.to_vec()))).collect()
}

pub async fn sessions_after<C: GenericClient>(
    c: &C,
    tenant: Option<&str>,
    after: Option<(String, String)>,
    limit: usize,
) -> Result<Vec<SessionRow>> {
    let (t, id) = after.unwrap_or_default();
    let rows = query(
        c,
        "SELECT tenant_id, id, namespace, turn_count, distilled_through, summary, created_at, updated_at, expires_at \
         FROM sessions WHERE (tenant_id, id) > ($1, $2) AND ($3::text IS NULL OR tenant_id = $3) \
         ORDER BY tenant_id, id LIMIT $4",
        &[&t, &id, &tenant, &(limit as i64)],
    )
    .await?;
    rows.iter()
        .map(|r| {
            Ok(SessionRow {
                tenant: col(r, 0)?,
                id: col(r, 1)?,
                namespace: Namespace::from_stored(col::<&str>(r, 2)?),
                turn_count: col(r, 3)?,
                distilled_through: col(r, 4)?,
                summary: col(r, 5)?,
                created_at: col(r, 6)?,
                updated_at: col(r, 7)?,
                expires_at: col(r, 8)?,
            })
        })
        .collect()
}

pub async fn jobs_after<C: GenericClient>(
    c: &C,
    tenant: Option<&str>,
    after: i64,
    limit: usize,
) -> Result<Vec<JobRow>> {
    let sql = format!(
        "SELECT {} FROM jobs WHERE id > $1 AND ($2::text IS NULL OR tenant_id = $2) ORDER BY id LIMIT $3",
        super::jobs::COLUMNS
    );
    let rows = query(c, &sql, &[&after, &tenant, &(limit as i64)]).await?;
    rows.iter().map(super::jobs::to_job).collect()
}

pub async fn merges<C: GenericClient>(c: &C, tenant: Option<&str>) -> Result<Vec<(String, String, String, Millis)>> {
    let rows = query(
        c,
        "SELECT tenant_id, id, survivor_id, merged_at FROM memory_merges \
         WHERE ($1::text IS NULL OR tenant_id = $1) ORDER BY tenant_id, id",
        &[&tenant],
    )
    .await?;
    rows.iter().map(|r| Ok((col(r, 0)?, col(r, 1)?, col(r, 2)?, col(r, 3)?))).collect()
}

pub async fn tenant_models<C: GenericClient>(
    c: &C,
    tenant: Option<&str>,
) -> Result<Vec<(String, TenantModel, Millis)>> {
    let rows = query(
        c,
        "SELECT tenant_id, model, dims, recorded_at FROM tenant_models \
         WHERE ($1::text IS NULL OR tenant_id = $1) ORDER BY tenant_id",
        &[&tenant],
    )
    .await?;
    rows.iter()
        .map(|r| Ok((col(r, 0)?, TenantModel { model: col(r, 1)?, dims: col::<i32>(r, 2)? as usize }, col(r, 3)?)))
        .collect()
}
