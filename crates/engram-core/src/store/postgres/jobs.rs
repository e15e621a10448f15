//! SQL for the `jobs` table: durable background work. What a job means and
//! when it runs again is decided by the rules that queue it.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::sql::{col, execute, query, query_opt};
use crate::error::{Error, Result};
use crate::store::JobRow;
use crate::time::Millis;

pub(super) const COLUMNS: &str = "id, kind, tenant_id, subject, payload, attempts, run_after, created_at";

pub(super) fn to_job(r: &Row) -> Result<JobRow> {
    Ok(JobRow {
        id: col(r, 0)?,
        kind: col(r, 1)?,
        tenant: col(r, 2)?,
        subject: col(r, 3)?,
        payload: col(r, 4)?,
        attempts: col(r, 5)?,
        run_after: col(r, 6)?,
        created_at: col(r, 7)?,
    })
}

pub async fn get<C: GenericClient>(c: &C, id: i64) -> Result<Option<JobRow>> {
    query_opt(c, &format!("SELECT {COLUMNS} FROM jobs WHERE id = $1"), &[&id]).await?.as_ref().map(to_job).transpose()
}

pub async fn due<C: GenericClient>(c: &C, kind: &str, at: Millis, limit: usize) -> Result<Vec<JobRow>> {
    let sql = format!("SELECT {COLUMNS} FROM jobs WHERE kind = $1 AND run_after <= $2 ORDER BY id LIMIT $3");
    query(c, &sql, &[&kind, &at, &(limit as i64)]).await?.iter().map(to_job).collect()
}

pub async fn insert<C: GenericClient>(c: &C, j: &JobRow) -> Result<i64> {
    let rows = query(
        c,
        "INSERT INTO jobs (kind, tenant_id, subject, payload, attempts, run_after, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        &[&j.kind, &j.tenant, &j.subject, &j.payload, &j.attempts, &j.run_after, &j.created_at],
    )
    .await?;
    rows.first().map_or_else(|| Err(Error::internal("INSERT returned no job id")), |r| col(r, 0))
}

pub async fn delete<C: GenericClient>(c: &C, id: i64) -> Result<bool> {
    Ok(execute(c, "DELETE FROM jobs WHERE id = $1", &[&id]).await? > 0)
}

pub async fn delete_of<C: GenericClient>(c: &C, tenant: &str, kind: &str, subject: &str) -> Result<usize> {
    let n =
        execute(c, "DELETE FROM jobs WHERE tenant_id = $1 AND kind = $2 AND subject = $3", &[&tenant, &kind, &subject])
            .await?;
    Ok(n as usize)
}

pub async fn lease<C: GenericClient>(c: &C, id: i64, until: Millis) -> Result<()> {
    execute(c, "UPDATE jobs SET run_after = $1 WHERE id = $2", &[&until, &id]).await?;
    Ok(())
}

pub async fn retry<C: GenericClient>(c: &C, id: i64, error: &str, run_after: Millis) -> Result<()> {
    let error: String = error.chars().take(500).collect();
    execute(
        c,
        "UPDATE jobs SET attempts = attempts + 1, last_error = $1, run_after = $2 WHERE id = $3",
        &[&error, &run_after, &id],
    )
    .await?;
    Ok(())
}
