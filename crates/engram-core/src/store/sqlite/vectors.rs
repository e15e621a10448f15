//! SQL for embeddings: the embedding queue, stored vectors, the change log the
//! in-process index tails, and the per-tenant model record. A stored vector's
//! change is logged by [`put_vector`], a memory's placement change or removal
//! by the triggers in `schema.rs`; what is queued is decided by the rules.

use std::collections::HashSet;

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection, OptionalExtension};

use super::sql::SqlBuilder;
use crate::error::Result;
use crate::model::{Namespace, Tier};
use crate::store::{PendingText, TenantModel};
use crate::time::Millis;
use crate::vector::persist::Placement;
use crate::vector::{Change, Entry};

/// Encodes a vector as little-endian f32 bytes.
pub fn to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Decodes [`to_blob`]'s bytes.
pub fn from_blob(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// The oldest queued memories (FIFO) not leased at `at`, with their texts,
/// skipping `exclude`d tenants.
pub fn pending_batch(c: &Connection, at: Millis, max: usize, exclude: &[String]) -> Result<Vec<PendingText>> {
    let mut b = SqlBuilder::default();
    b.sql("SELECT q.seq, q.gen, q.tenant_id, q.namespace, m.text FROM embed_queue q JOIN memories m ON m.seq = q.seq")
        .sql(" WHERE q.leased_until <= ")
        .param(SqlValue::Integer(at));
    for (i, t) in exclude.iter().enumerate() {
        b.sql(if i == 0 { " AND q.tenant_id NOT IN (" } else { ", " }).param(SqlValue::Text(t.clone()));
    }
    if !exclude.is_empty() {
        b.sql(")");
    }
    b.sql(" ORDER BY q.seq LIMIT ").param(SqlValue::Integer(max as i64));
    let mut stmt = c.prepare_cached(&b.text)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(b.params.iter()), |r| {
        Ok(PendingText {
            seq: r.get(0)?,
            gen: r.get(1)?,
            tenant: r.get(2)?,
            namespace: Namespace::from_stored(&r.get::<_, String>(3)?),
            text: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A memory's stored vector.
pub fn vector(c: &Connection, seq: i64) -> Result<Option<Vec<f32>>> {
    let blob: Option<Vec<u8>> = c
        .prepare_cached("SELECT vector FROM memory_vectors WHERE seq = ?")?
        .query_row(params![seq], |r| r.get(0))
        .optional()?;
    Ok(blob.map(|b| from_blob(&b)))
}

/// The vectors of a namespace changed after `mark` (a `vector_changes` id).
pub fn vectors_since(c: &Connection, tenant: &str, ns: &Namespace, mark: i64) -> Result<Vec<(i64, Vec<f32>)>> {
    let mut stmt = c.prepare_cached(
        "SELECT v.seq, v.vector FROM memory_vectors v JOIN memories m ON m.seq = v.seq \
         WHERE v.seq IN (SELECT seq FROM vector_changes WHERE change > ?) AND m.tenant_id = ? AND m.namespace = ?",
    )?;
    let rows =
        stmt.query_map(params![mark, tenant, ns.joined()], |r| Ok((r.get(0)?, from_blob(&r.get::<_, Vec<u8>>(1)?))))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Drops a memory's vector and queued embedding.
pub fn drop_vector(c: &Connection, seq: i64) -> Result<()> {
    c.prepare_cached("DELETE FROM memory_vectors WHERE seq = ?")?.execute(params![seq])?;
    c.prepare_cached("DELETE FROM embed_queue WHERE seq = ?")?.execute(params![seq])?;
    Ok(())
}

/// The tenant and stored namespace of the memory at `seq`, if it exists.
fn placement(c: &Connection, seq: i64) -> Result<Option<(String, String)>> {
    Ok(c.prepare_cached("SELECT tenant_id, namespace FROM memories WHERE seq = ?")?
        .query_row(params![seq], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// Queues a memory for embedding at version `gen` (nothing when the memory
/// is gone). An upsert, not `INSERT OR REPLACE … SELECT`: either of those
/// makes SQLite keep a statement journal (schema step 13).
pub fn queue(c: &Connection, seq: i64, gen: i64) -> Result<()> {
    let Some((tenant, namespace)) = placement(c, seq)? else { return Ok(()) };
    c.prepare_cached(
        "INSERT INTO embed_queue (seq, tenant_id, namespace, gen, leased_until) VALUES (?, ?, ?, ?, 0) \
         ON CONFLICT (seq) DO UPDATE SET tenant_id = excluded.tenant_id, namespace = excluded.namespace, \
         gen = excluded.gen, leased_until = 0",
    )?
    .execute(params![seq, tenant, namespace, gen])?;
    Ok(())
}

/// Leases queued embeddings until `until`.
pub fn lease(c: &Connection, seqs: &[i64], until: Millis) -> Result<()> {
    let mut st = c.prepare_cached("UPDATE embed_queue SET leased_until = ? WHERE seq = ?")?;
    for seq in seqs {
        st.execute(params![until, seq])?;
    }
    Ok(())
}

/// Takes a memory off the queue if it is still queued at `gen`.
pub fn unqueue(c: &Connection, seq: i64, gen: i64) -> Result<bool> {
    Ok(c.prepare_cached("DELETE FROM embed_queue WHERE seq = ? AND gen = ?")?.execute(params![seq, gen])? == 1)
}

/// Stores (or replaces) a memory's vector and takes it off the queue (only
/// the latter when the memory is gone), and logs the change for the vector
/// index (schema step 13 says why this is not a trigger).
pub fn put_vector(c: &Connection, seq: i64, v: &[f32]) -> Result<()> {
    c.prepare_cached("DELETE FROM embed_queue WHERE seq = ?")?.execute(params![seq])?;
    let Some((tenant, _)) = placement(c, seq)? else { return Ok(()) };
    c.prepare_cached(
        "INSERT INTO memory_vectors (seq, tenant_id, vector) VALUES (?, ?, ?) \
         ON CONFLICT (seq) DO UPDATE SET vector = excluded.vector",
    )?
    .execute(params![seq, tenant, to_blob(v)])?;
    c.prepare_cached("INSERT INTO vector_changes (seq) VALUES (?)")?.execute(params![seq])?;
    Ok(())
}

/// Drops every vector of a tenant and queues all its memories again.
pub fn requeue_tenant(c: &Connection, tenant: &str) -> Result<usize> {
    c.prepare_cached("DELETE FROM memory_vectors WHERE tenant_id = ?")?.execute(params![tenant])?;
    Ok(c.prepare_cached(
        "INSERT OR REPLACE INTO embed_queue (seq, tenant_id, namespace, gen) \
         SELECT seq, tenant_id, namespace, version FROM memories WHERE tenant_id = ? AND text <> ''",
    )?
    .execute(params![tenant])?)
}

/// Every tenant that has memories or vectors.
pub fn tenants(c: &Connection) -> Result<Vec<String>> {
    let mut stmt = c.prepare_cached("SELECT DISTINCT tenant_id FROM memories ORDER BY tenant_id")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn tenant_model(c: &Connection, tenant: &str) -> Result<Option<TenantModel>> {
    Ok(c.prepare_cached("SELECT model, dims FROM tenant_models WHERE tenant_id = ?")?
        .query_row(params![tenant], |r| Ok(TenantModel { model: r.get(0)?, dims: r.get::<_, i64>(1)? as usize }))
        .optional()?)
}

/// Records the tenant's model unless one is recorded; returns the record.
pub fn record_tenant_model(c: &Connection, tenant: &str, model: &TenantModel, now: Millis) -> Result<TenantModel> {
    c.prepare_cached("INSERT OR IGNORE INTO tenant_models (tenant_id, model, dims, recorded_at) VALUES (?, ?, ?, ?)")?
        .execute(params![tenant, model.model, model.dims as i64, now])?;
    Ok(tenant_model(c, tenant)?.unwrap_or_else(|| model.clone()))
}

pub fn forget_tenant_model(c: &Connection, tenant: &str) -> Result<()> {
    c.prepare_cached("DELETE FROM tenant_models WHERE tenant_id = ?")?.execute(params![tenant])?;
    Ok(())
}

/// Changes after `after`, each resolved to the memory's current vector.
pub fn changes_since(c: &Connection, after: i64, limit: usize) -> Result<Vec<Change>> {
    let mut stmt = c.prepare_cached(
        "SELECT ch.change, ch.seq, v.vector, m.tenant_id, m.namespace, m.tier, m.key IS NOT NULL \
         FROM vector_changes ch LEFT JOIN memory_vectors v ON v.seq = ch.seq LEFT JOIN memories m ON m.seq = ch.seq \
         WHERE ch.change > ? ORDER BY ch.change LIMIT ?",
    )?;
    let rows = stmt.query_map(params![after, limit as i64], |r| {
        let blob: Option<Vec<u8>> = r.get(2)?;
        let tenant: Option<String> = r.get(3)?;
        let entry = match (blob, tenant) {
            (Some(b), Some(tenant)) => Some(Entry {
                tenant,
                namespace: r.get(4)?,
                tier: Tier::from_stored(&r.get::<_, String>(5)?),
                keyed: r.get(6)?,
                vector: from_blob(&b),
            }),
            _ => None,
        };
        Ok(Change { change: r.get(0)?, seq: r.get::<_, i64>(1)? as u64, entry })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The newest change id (0 when none).
pub fn last_change(c: &Connection) -> Result<i64> {
    Ok(c.prepare_cached("SELECT COALESCE(MAX(change), 0) FROM vector_changes")?.query_row([], |r| r.get(0))?)
}

/// Every stored vector as a change at `as_of` (a full rebuild).
pub fn all_vectors(c: &Connection, as_of: i64) -> Result<Vec<Change>> {
    let mut stmt = c.prepare(
        "SELECT v.seq, v.vector, m.tenant_id, m.namespace, m.tier, m.key IS NOT NULL \
         FROM memory_vectors v JOIN memories m ON m.seq = v.seq ORDER BY v.seq",
    )?;
    let rows = stmt.query_map([], |r| {
        let blob: Vec<u8> = r.get(1)?;
        Ok(Change {
            change: as_of,
            seq: r.get::<_, i64>(0)? as u64,
            entry: Some(Entry {
                tenant: r.get(2)?,
                namespace: r.get(3)?,
                tier: Tier::from_stored(&r.get::<_, String>(4)?),
                keyed: r.get(5)?,
                vector: from_blob(&blob),
            }),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Where every stored vector's memory lives now (to describe a loaded graph).
pub fn placements(c: &Connection) -> Result<Vec<Placement>> {
    let mut stmt = c.prepare(
        "SELECT v.seq, m.tenant_id, m.namespace, m.tier, m.key IS NOT NULL \
         FROM memory_vectors v JOIN memories m ON m.seq = v.seq",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Placement {
            seq: r.get::<_, i64>(0)? as u64,
            tenant: r.get(1)?,
            namespace: r.get(2)?,
            tier: Tier::from_stored(&r.get::<_, String>(3)?),
            keyed: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Forgets changes a saved index already includes.
pub fn prune_changes(c: &Connection, upto: i64) -> Result<usize> {
    Ok(c.prepare_cached("DELETE FROM vector_changes WHERE change <= ?")?.execute(params![upto])?)
}

/// Memories of the tenant under `prefix` still waiting for an embedding.
pub fn pending_count(c: &Connection, tenant: &str, prefix: &Namespace) -> Result<u64> {
    let mut b = SqlBuilder::default();
    b.sql("SELECT COUNT(*) FROM embed_queue q WHERE q.tenant_id = ").param(SqlValue::Text(tenant.to_owned()));
    super::scope_sql::push_namespace(&mut b, "q.namespace", prefix);
    let n: i64 = c.prepare_cached(&b.text)?.query_row(rusqlite::params_from_iter(b.params.iter()), |r| r.get(0))?;
    Ok(n as u64)
}

/// Collects a query's matching `seq`s, or `None` when more than `cap` match.
pub fn collect_seqs(c: &Connection, sql: &SqlBuilder, cap: usize) -> Result<Option<HashSet<u64>>> {
    let mut stmt = c.prepare_cached(&sql.text)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(sql.params.iter()))?;
    let mut out = HashSet::new();
    while let Some(r) = rows.next()? {
        out.insert(r.get::<_, i64>(0)? as u64);
        if out.len() > cap {
            return Ok(None);
        }
    }
    Ok(Some(out))
}
