//! SQL for embeddings: the embedding queue, stored vectors (pgvector) and the
//! per-tenant model record. What is queued is decided by the rules.

use deadpool_postgres::GenericClient;
use pgvector::Vector;

use super::scope_sql::push_namespace;
use super::sql::{col, execute, query, query_built, query_opt, SqlBuilder};
use crate::error::Result;
use crate::model::Namespace;
use crate::store::{IndexMark, PendingText, Place, TenantModel};
use crate::time::Millis;

/// The oldest queued memories (FIFO) not leased at `at`, with their texts,
/// skipping `exclude`d tenants.
pub async fn pending_batch<C: GenericClient>(
    c: &C,
    at: Millis,
    max: usize,
    exclude: &[String],
) -> Result<Vec<PendingText>> {
    let rows = query(
        c,
        "SELECT q.seq, q.gen, q.tenant_id, q.namespace, m.text FROM embed_queue q \
         JOIN memories m ON m.tenant_id = q.tenant_id AND m.seq = q.seq \
         WHERE q.leased_until <= $1 AND NOT (q.tenant_id = ANY($2)) ORDER BY q.seq LIMIT $3",
        &[&at, &exclude, &(max as i64)],
    )
    .await?;
    rows.iter()
        .map(|r| {
            Ok(PendingText {
                seq: col(r, 0)?,
                gen: col(r, 1)?,
                tenant: col(r, 2)?,
                namespace: Namespace::from_stored(col::<&str>(r, 3)?),
                text: col(r, 4)?,
            })
        })
        .collect()
}

/// A memory's stored vector.
pub async fn vector<C: GenericClient>(c: &C, seq: i64) -> Result<Option<Vec<f32>>> {
    let row = query_opt(c, "SELECT embedding FROM memory_vectors WHERE seq = $1", &[&seq]).await?;
    row.as_ref().map(|r| Ok(col::<Vector>(r, 0)?.to_vec())).transpose()
}

/// The vectors of a namespace stored after `mark` (a `change` number).
pub async fn vectors_since<C: GenericClient>(
    c: &C,
    tenant: &str,
    ns: &Namespace,
    mark: i64,
) -> Result<Vec<(i64, Vec<f32>)>> {
    let rows = query(
        c,
        "SELECT seq, embedding FROM memory_vectors WHERE change > $1 AND tenant_id = $2 AND namespace = $3",
        &[&mark, &tenant, &ns.joined()],
    )
    .await?;
    rows.iter().map(|r| Ok((col(r, 0)?, col::<Vector>(r, 1)?.to_vec()))).collect()
}

/// The newest `change` number (0 when no vector was ever stored).
pub async fn newest_change<C: GenericClient>(c: &C) -> Result<i64> {
    let rows = query(c, "SELECT COALESCE(MAX(change), 0) FROM memory_vectors", &[]).await?;
    rows.first().map_or(Ok(0), |r| col(r, 0))
}

/// The newest `change` number in each of `places` (0 where none).
pub async fn newest_changes<C: GenericClient>(c: &C, places: Vec<Place>) -> Result<IndexMark> {
    let tenants: Vec<&str> = places.iter().map(|p| p.0.as_str()).collect();
    let namespaces: Vec<String> = places.iter().map(|p| p.1.joined()).collect();
    let rows = query(
        c,
        "SELECT COALESCE((SELECT MAX(v.change) FROM memory_vectors v \
                          WHERE v.tenant_id = p.t AND v.namespace = p.n), 0) \
         FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS p(t, n, i) ORDER BY p.i",
        &[&tenants, &namespaces],
    )
    .await?;
    let mut mark = IndexMark::default();
    for (place, row) in places.into_iter().zip(&rows) {
        mark.places.insert(place, col(row, 0)?);
    }
    Ok(mark)
}

/// Drops a memory's vector and queued embedding.
pub async fn drop_vector<C: GenericClient>(c: &C, seq: i64) -> Result<()> {
    execute(c, "DELETE FROM memory_vectors WHERE seq = $1", &[&seq]).await?;
    execute(c, "DELETE FROM embed_queue WHERE seq = $1", &[&seq]).await?;
    Ok(())
}

/// Queues a memory for embedding at version `gen`.
pub async fn queue<C: GenericClient>(c: &C, seq: i64, gen: i64) -> Result<()> {
    execute(
        c,
        "INSERT INTO embed_queue (tenant_id, seq, namespace, gen) \
         SELECT tenant_id, seq, namespace, $1 FROM memories WHERE seq = $2 \
         ON CONFLICT (tenant_id, seq) DO UPDATE SET gen = excluded.gen, leased_until = 0",
        &[&gen, &seq],
    )
    .await?;
    Ok(())
}

/// Leases queued embeddings until `until`.
pub async fn lease<C: GenericClient>(c: &C, seqs: &[i64], until: Millis) -> Result<()> {
    execute(c, "UPDATE embed_queue SET leased_until = $1 WHERE seq = ANY($2)", &[&until, &seqs]).await?;
    Ok(())
}

/// Takes a memory off the queue if it is still queued at `gen`.
pub async fn unqueue<C: GenericClient>(c: &C, seq: i64, gen: i64) -> Result<bool> {
    Ok(execute(c, "DELETE FROM embed_queue WHERE seq = $1 AND gen = $2", &[&seq, &gen]).await? == 1)
}

/// Stores (or replaces) a memory's vector and takes it off the queue.
pub async fn put_vector<C: GenericClient>(c: &C, seq: i64, v: &[f32]) -> Result<()> {
    execute(c, "DELETE FROM embed_queue WHERE seq = $1", &[&seq]).await?;
    execute(
        c,
        "INSERT INTO memory_vectors (tenant_id, seq, namespace, dims, embedding) \
         SELECT tenant_id, seq, namespace, $1, $2 FROM memories WHERE seq = $3 \
         ON CONFLICT (tenant_id, seq) DO UPDATE SET dims = excluded.dims, embedding = excluded.embedding, \
         change = nextval('vector_changes')",
        &[&(v.len() as i32), &Vector::from(v.to_vec()), &seq],
    )
    .await?;
    Ok(())
}

/// Drops every vector of a tenant and queues all its memories again.
pub async fn requeue_tenant<C: GenericClient>(c: &C, tenant: &str) -> Result<usize> {
    execute(c, "DELETE FROM memory_vectors WHERE tenant_id = $1", &[&tenant]).await?;
    let n = execute(
        c,
        "INSERT INTO embed_queue (tenant_id, seq, namespace, gen) \
         SELECT tenant_id, seq, namespace, version FROM memories WHERE tenant_id = $1 AND text <> '' \
         ON CONFLICT (tenant_id, seq) DO UPDATE SET gen = excluded.gen",
        &[&tenant],
    )
    .await?;
    Ok(n as usize)
}

/// Every tenant that has memories.
pub async fn tenants<C: GenericClient>(c: &C) -> Result<Vec<String>> {
    let rows = query(c, "SELECT DISTINCT tenant_id FROM memories ORDER BY tenant_id", &[]).await?;
    rows.iter().map(|r| col(r, 0)).collect()
}

pub async fn tenant_model<C: GenericClient>(c: &C, tenant: &str) -> Result<Option<TenantModel>> {
    let row = query_opt(c, "SELECT model, dims FROM tenant_models WHERE tenant_id = $1", &[&tenant]).await?;
    row.as_ref().map(|r| Ok(TenantModel { model: col(r, 0)?, dims: col::<i32>(r, 1)? as usize })).transpose()
}

/// Records the tenant's model unless one is recorded; returns the record.
pub async fn record_tenant_model<C: GenericClient>(
    c: &C,
    tenant: &str,
    model: &TenantModel,
    now: Millis,
) -> Result<TenantModel> {
    execute(
        c,
        "INSERT INTO tenant_models (tenant_id, model, dims, recorded_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id) DO NOTHING",
        &[&tenant, &model.model, &(model.dims as i32), &now],
    )
    .await?;
    Ok(tenant_model(c, tenant).await?.unwrap_or_else(|| model.clone()))
}

pub async fn forget_tenant_model<C: GenericClient>(c: &C, tenant: &str) -> Result<()> {
    execute(c, "DELETE FROM tenant_models WHERE tenant_id = $1", &[&tenant]).await?;
    Ok(())
}

/// Memories of the tenant under `prefix` still waiting for an embedding.
pub async fn pending_count<C: GenericClient>(c: &C, tenant: &str, prefix: &Namespace) -> Result<u64> {
    let mut b = SqlBuilder::default();
    b.sql("SELECT COUNT(*) FROM embed_queue q WHERE q.tenant_id = ").param(tenant.to_owned());
    push_namespace(&mut b, "q.namespace", prefix);
    let rows = query_built(c, &b).await?;
    Ok(rows.first().map_or(Ok(0), |r| col::<i64>(r, 0))? as u64)
}
