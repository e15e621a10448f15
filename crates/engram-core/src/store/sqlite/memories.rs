//! SQL for memories: writes (run inside the writer's transaction) and point
//! reads and listings (run on a pooled reader); search's reads are in
//! `search_sql.rs`. Every statement is scoped by `tenant_id` and hides expired rows.

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::sql::SqlBuilder;
use super::vectors;
use crate::model::memory::{text_fingerprint, DUPLICATE_COSINE, MAX_METADATA_ENTRIES, MAX_TAGS};
use crate::vector::{dot, NsScope, Scope, VectorIndex};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{Memory, MemoryPatch, Namespace, NewMemory, Tier, WriteStatus};
use crate::store::{ListQuery, NamespaceQuery};
use crate::time::Millis;

pub(super) const COLUMNS: &str = "m.id, m.namespace, m.key, m.tier, m.text, m.data, m.tags, m.metadata, m.salience, \
     m.pinned, m.version, m.created_at, m.updated_at, m.expires_at, m.source, m.index_spec, m.ttl_ms";
/// [`COLUMNS`] unqualified, for `RETURNING` (which cannot name an alias).
const RETURNING: &str = "id, namespace, key, tier, text, data, tags, metadata, salience, \
     pinned, version, created_at, updated_at, expires_at, source, index_spec, ttl_ms";
const LIVE: &str = "(m.expires_at IS NULL OR m.expires_at > ?)";

fn json_col<T: serde::de::DeserializeOwned>(row: &Row<'_>, i: usize) -> rusqlite::Result<T> {
    let text: String = row.get(i)?;
    serde_json::from_str(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e)))
}

fn opt_json_col<T: serde::de::DeserializeOwned>(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<T>> {
    match row.get::<_, Option<String>>(i)? {
        None => Ok(None),
        Some(_) => json_col(row, i).map(Some),
    }
}

/// Maps a row selected with [`COLUMNS`] (starting at column 0).
pub(super) fn to_memory(row: &Row<'_>) -> rusqlite::Result<Memory> {
    let tier: String = row.get(3)?;
    Ok(Memory {
        id: row.get(0)?,
        namespace: Namespace::from_stored(&row.get::<_, String>(1)?),
        key: row.get(2)?,
        tier: if tier == "semantic" { Tier::Semantic } else { Tier::Episodic },
        text: row.get(4)?,
        data: opt_json_col(row, 5)?,
        tags: json_col(row, 6)?,
        metadata: json_col(row, 7)?,
        salience: row.get(8)?,
        pinned: row.get(9)?,
        version: row.get(10)?,
        created_at: row.get(11)?,
        updated_at: row.get(12)?,
        expires_at: row.get(13)?,
        source: json_col(row, 14)?,
        index: opt_json_col(row, 15)?,
        ttl_ms: row.get(16)?,
    })
}

fn expiry(pinned: bool, ttl_ms: Option<i64>, now: Millis) -> Option<Millis> {
    if pinned {
        None
    } else {
        ttl_ms.map(|t| now.saturating_add(t))
    }
}

pub(super) fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    Ok(serde_json::to_string(v)?)
}

/// A memory ready for the writer: its JSON columns already encoded, so the
/// single writer thread spends its time on SQL alone.
pub struct Encoded {
    memory: NewMemory,
    namespace: String,
    data: Option<String>,
    index: Option<String>,
    tags: String,
    metadata: String,
    source: String,
    /// Set for memories without a key (the ones deduplicated).
    text_hash: Option<i64>,
    /// Indexed memories at least [`DUPLICATE_COSINE`] similar, best first
    /// (see [`find_near_duplicates`]).
    near: Vec<u64>,
}

/// Looks up, in the vector index, the near-duplicates of every memory of the
/// batch that carries a vector and may be merged (no key), on every core. Run
/// before the batch goes to the writer: the single writer thread would
/// otherwise do one graph search per memory while every other write waits. The
/// index holds the same vectors then as at write time (a write's vectors enter
/// it only after its commit); those earlier in the same batch are compared by
/// the writer.
pub fn find_near_duplicates(tenant: &str, batch: &mut [Encoded], index: &VectorIndex) -> Result<()> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = batch.len().div_ceil(workers).max(1);
    std::thread::scope(|scope| -> Result<()> {
        let running: Vec<_> = batch
            .chunks_mut(chunk)
            .map(|part| {
                scope.spawn(move || -> Result<()> {
                    for e in part.iter_mut().filter(|e| e.text_hash.is_some()) {
                        let Some(v) = &e.memory.embedding else { continue };
                        let scope =
                            Scope { tenant, namespace: NsScope::Exact(&e.namespace), tier: None, unkeyed_only: true, allowed: None };
                        e.near = index.near(v, &scope, DUPLICATE_COSINE)?.into_iter().map(|h| h.0).collect();
                    }
                    Ok(())
                })
            })
            .collect();
        running.into_iter().try_for_each(|h| h.join().map_err(|_| Error::internal("duplicate search panicked"))?)
    })
}

/// Encodes a batch (run on the caller's thread, not the writer's).
pub fn encode(batch: Vec<NewMemory>) -> Result<Vec<Encoded>> {
    batch
        .into_iter()
        .map(|m| {
            Ok(Encoded {
                namespace: m.namespace.joined(),
                data: m.data.as_ref().map(to_json).transpose()?,
                index: m.index.as_ref().map(to_json).transpose()?,
                tags: to_json(&m.tags)?,
                metadata: to_json(&m.metadata)?,
                source: to_json(&m.source)?,
                text_hash: (m.key.is_none() && !m.text.is_empty()).then(|| text_fingerprint(&m.text)),
                near: Vec::new(),
                memory: m,
            })
        })
        .collect()
}

/// What the writer reports for each memory; [`Written::into_memory`] builds the
/// full record off the writer thread.
pub enum Written {
    Stored {
        status: WriteStatus,
        id: String,
        created_at: Millis,
        version: i64,
        updated_at: Millis,
        expires_at: Option<Millis>,
        memory: NewMemory,
    },
    /// A near-duplicate existed and was refreshed instead.
    Merged(Memory),
}

impl Written {
    pub fn into_memory(self) -> (WriteStatus, Memory) {
        let (status, id, created_at, version, updated_at, expires_at, m) = match self {
            Written::Merged(m) => return (WriteStatus::Merged, m),
            Written::Stored { status, id, created_at, version, updated_at, expires_at, memory } => {
                (status, id, created_at, version, updated_at, expires_at, memory)
            }
        };
        let memory = Memory {
            id,
            namespace: m.namespace,
            key: m.key,
            tier: m.tier,
            text: m.text,
            data: m.data,
            tags: m.tags,
            metadata: m.metadata,
            salience: m.salience,
            pinned: m.pinned,
            version,
            created_at,
            updated_at,
            expires_at,
            source: m.source,
            index: m.index,
            ttl_ms: m.ttl_ms,
        };
        (status, memory)
    }
}

const UPDATE_SQL: &str = "UPDATE memories SET tier = ?, text = ?, data = ?, index_spec = ?, tags = ?, metadata = ?, \
     salience = ?, pinned = ?, version = version + 1, updated_at = ?, expires_at = ?, ttl_ms = ?, source = ?, text_hash = ?, \
     salience_at = updated_at WHERE tenant_id = ? AND id = ? RETURNING created_at, version, seq";
const INSERT_SQL: &str = "INSERT INTO memories (tenant_id, id, namespace, ns_depth, key, tier, text, data, index_spec, \
     tags, metadata, salience, pinned, version, created_at, updated_at, expires_at, ttl_ms, source, text_hash, \
     salience_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?)";

/// Finds a live memory without a key in the same namespace that `e`
/// duplicates: same normalised text, or (when `e` carries a vector) cosine
/// at least [`DUPLICATE_COSINE`] with one in the index or earlier in this batch.
fn find_duplicate(
    c: &Connection,
    tenant: &str,
    e: &Encoded,
    now: Millis,
    batch_vectors: &[(i64, String, Vec<f32>)],
) -> Result<Option<i64>> {
    let Some(hash) = e.text_hash else { return Ok(None) };
    let same_text: Option<i64> = c
        .prepare_cached(
            "SELECT seq FROM memories WHERE tenant_id = ? AND namespace = ? AND text_hash = ? AND key IS NULL \
             AND (expires_at IS NULL OR expires_at > ?) ORDER BY seq LIMIT 1",
        )?
        .query_row(params![tenant, e.namespace, hash, now], |r| r.get(0))
        .optional()?;
    if same_text.is_some() {
        return Ok(same_text);
    }
    let Some(v) = &e.memory.embedding else { return Ok(None) };
    let earlier = batch_vectors
        .iter()
        .filter(|(_, ns, _)| *ns == e.namespace)
        .map(|(seq, _, w)| (*seq, dot(v, w)))
        .filter(|(_, cos)| *cos >= DUPLICATE_COSINE)
        .max_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((seq, _)) = earlier {
        return Ok(Some(seq));
    }
    for &seq in &e.near {
        let live = c
            .prepare_cached("SELECT 1 FROM memories WHERE seq = ? AND tenant_id = ? AND (expires_at IS NULL OR expires_at > ?)")?
            .exists(params![seq as i64, tenant, now])?;
        if live {
            return Ok(Some(seq as i64));
        }
    }
    Ok(None)
}

/// Refreshes the memory at `seq` with a duplicate's contribution: tags and
/// metadata are merged (the newer value wins), salience and pinning take the
/// higher, the TTL restarts.
/// `cur`'s tags and metadata with `tags` and `metadata` added (the added
/// values win), within the limits of one memory.
pub(super) fn merged_labels(
    cur: &Memory,
    tags: &[String],
    metadata: &serde_json::Map<String, serde_json::Value>,
) -> (Vec<String>, serde_json::Map<String, serde_json::Value>) {
    let mut all_tags = cur.tags.clone();
    for t in tags {
        if !all_tags.contains(t) && all_tags.len() < MAX_TAGS {
            all_tags.push(t.clone());
        }
    }
    let mut all_meta = cur.metadata.clone();
    for (k, v) in metadata {
        if all_meta.contains_key(k) || all_meta.len() < MAX_METADATA_ENTRIES {
            all_meta.insert(k.clone(), v.clone());
        }
    }
    (all_tags, all_meta)
}

fn merge_into(c: &Connection, seq: i64, m: &NewMemory, now: Millis) -> Result<Memory> {
    let sql = format!("SELECT {COLUMNS} FROM memories m WHERE m.seq = ?");
    let cur = c.prepare_cached(&sql)?.query_row(params![seq], to_memory)?;
    let (tags, metadata) = merged_labels(&cur, &m.tags, &m.metadata);
    let pinned = cur.pinned || m.pinned;
    let expires_at = expiry(pinned, cur.ttl_ms, now);
    let sql = format!(
        "UPDATE memories SET tags = ?, metadata = ?, salience = ?, pinned = ?, version = version + 1, updated_at = ?, \
         expires_at = ?, salience_at = updated_at WHERE seq = ? RETURNING {RETURNING}"
    );
    Ok(c.prepare_cached(&sql)?.query_row(
        params![
            to_json(&tags)?,
            to_json(&metadata)?,
            cur.salience.max(m.salience),
            pinned,
            now.max(cur.updated_at),
            expires_at,
            seq
        ],
        to_memory,
    )?)
}

/// Writes a batch: keyed memories that exist (and are live) are replaced in
/// place (`updated`); memories without a key that duplicate a live one are
/// merged into it (`merged`); everything else is inserted (`created`).
/// Caller-supplied vectors are stored with their memory; the others are queued
/// for embedding by the schema's triggers.
pub fn put_batch(c: &Connection, tenant: &str, batch: Vec<Encoded>, now: Millis) -> Result<Vec<Written>> {
    let mut out = Vec::with_capacity(batch.len());
    let mut batch_vectors: Vec<(i64, String, Vec<f32>)> = Vec::new();
    for e in batch {
        if let Some(seq) = find_duplicate(c, tenant, &e, now, &batch_vectors)? {
            out.push(Written::Merged(merge_into(c, seq, &e.memory, now)?));
            continue;
        }
        let m = &e.memory;
        let existing: Option<(String, Option<Millis>)> = match &m.key {
            Some(key) => c
                .prepare_cached("SELECT id, expires_at FROM memories WHERE tenant_id = ? AND namespace = ? AND key = ?")?
                .query_row(params![tenant, e.namespace, key], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?,
            None => None,
        };
        let expires_at = expiry(m.pinned, m.ttl_ms, now);
        let live_id = match existing {
            Some((id, exp)) if exp.is_none_or(|x| x > now) => Some(id),
            Some((id, _)) => {
                c.prepare_cached("DELETE FROM memories WHERE tenant_id = ? AND id = ?")?.execute(params![tenant, id])?;
                None
            }
            None => None,
        };
        let (status, id, created_at, version, seq) = match live_id {
            Some(id) => {
                let (created_at, version, seq) = c.prepare_cached(UPDATE_SQL)?.query_row(
                    params![
                        m.tier.as_str(), m.text, e.data, e.index, e.tags, e.metadata, m.salience, m.pinned, now,
                        expires_at, m.ttl_ms, e.source, e.text_hash, tenant, id
                    ],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?;
                (WriteStatus::Updated, id, created_at, version, seq)
            }
            None => {
                let id = uuid::Uuid::now_v7().to_string();
                c.prepare_cached(INSERT_SQL)?.execute(params![
                    tenant, id, e.namespace, m.namespace.depth() as i64, m.key, m.tier.as_str(), m.text, e.data,
                    e.index, e.tags, e.metadata, m.salience, m.pinned, now, now, expires_at, m.ttl_ms, e.source,
                    e.text_hash, now
                ])?;
                (WriteStatus::Created, id, now, 1, c.last_insert_rowid())
            }
        };
        if let Some(v) = &m.embedding {
            if !m.text.is_empty() {
                vectors::put_vector(c, seq, v)?;
                batch_vectors.push((seq, e.namespace.clone(), v.clone()));
            }
        }
        out.push(Written::Stored { status, id, created_at, version, updated_at: now, expires_at, memory: e.memory });
    }
    Ok(out)
}

pub fn get(c: &Connection, tenant: &str, id: &str, now: Millis) -> Result<Option<Memory>> {
    let sql = format!("SELECT {COLUMNS} FROM memories m WHERE m.tenant_id = ? AND m.id = ? AND {LIVE}");
    Ok(c.prepare_cached(&sql)?.query_row(params![tenant, id, now], to_memory).optional()?)
}

pub fn get_by_key(c: &Connection, tenant: &str, ns: &str, key: &str, now: Millis) -> Result<Option<Memory>> {
    let sql =
        format!("SELECT {COLUMNS} FROM memories m WHERE m.tenant_id = ? AND m.namespace = ? AND m.key = ? AND {LIVE}");
    Ok(c.prepare_cached(&sql)?.query_row(params![tenant, ns, key, now], to_memory).optional()?)
}

pub fn update(c: &Connection, tenant: &str, id: &str, p: &MemoryPatch, if_version: Option<i64>, now: Millis) -> Result<Memory> {
    let Some(cur) = get(c, tenant, id, now)? else {
        return Err(Error::not_found(format!("no memory with id {id}")));
    };
    if let Some(v) = if_version {
        if v != cur.version {
            return Err(Error::User {
                code: ErrorCode::VersionMismatch,
                message: format!("If-Match version {v} does not match the current version {}", cur.version),
            });
        }
    }
    let pinned = p.pinned.unwrap_or(cur.pinned);
    let ttl_ms = p.ttl_ms.unwrap_or(cur.ttl_ms);
    // The expiry restarts only when the TTL or pinning changes.
    let expires_at = if p.ttl_ms.is_some() || p.pinned.is_some() { expiry(pinned, ttl_ms, now) } else { cur.expires_at };
    let data = match &p.data {
        Some(d) => d.as_ref().map(to_json).transpose()?,
        None => cur.data.as_ref().map(to_json).transpose()?,
    };
    // `salience_at` (where decay counts from) moves only when the salience
    // changes: ?6 is the new salience, ?8 the update time; on the right of SET,
    // `salience` is the old value. The unnumbered `?`s after them are 12 and 13.
    let sql = format!(
        "UPDATE memories SET tier = ?, text = ?, data = ?, tags = ?, metadata = ?, salience = ?, pinned = ?, \
         version = version + 1, updated_at = ?, expires_at = ?, ttl_ms = ?, text_hash = ?, \
         salience_at = CASE WHEN salience IS ?6 THEN salience_at ELSE ?8 END WHERE tenant_id = ? AND id = ? \
         RETURNING {RETURNING}"
    );
    let text = p.text.as_ref().unwrap_or(&cur.text);
    let text_hash = (cur.key.is_none() && !text.is_empty()).then(|| text_fingerprint(text));
    Ok(c.prepare_cached(&sql)?.query_row(
        params![
            p.tier.unwrap_or(cur.tier).as_str(),
            text,
            data,
            to_json(p.tags.as_ref().unwrap_or(&cur.tags))?,
            to_json(p.metadata.as_ref().unwrap_or(&cur.metadata))?,
            p.salience.unwrap_or(cur.salience),
            pinned,
            now.max(cur.updated_at),
            expires_at,
            ttl_ms,
            text_hash,
            tenant,
            id
        ],
        to_memory,
    )?)
}

pub fn delete(c: &Connection, tenant: &str, id: &str, now: Millis) -> Result<bool> {
    let n = c
        .prepare_cached("DELETE FROM memories WHERE tenant_id = ? AND id = ? AND (expires_at IS NULL OR expires_at > ?)")?
        .execute(params![tenant, id, now])?;
    Ok(n > 0)
}

pub fn delete_by_key(c: &Connection, tenant: &str, ns: &str, key: &str) -> Result<bool> {
    let n = c
        .prepare_cached("DELETE FROM memories WHERE tenant_id = ? AND namespace = ? AND key = ?")?
        .execute(params![tenant, ns, key])?;
    Ok(n > 0)
}

pub fn refresh_ttl(c: &Connection, tenant: &str, ids: &[String], now: Millis) -> Result<()> {
    let mut stmt = c.prepare_cached(
        "UPDATE memories SET expires_at = ? + ttl_ms WHERE tenant_id = ? AND id = ? AND ttl_ms IS NOT NULL \
         AND pinned = 0 AND (expires_at IS NULL OR expires_at > ?)",
    )?;
    for id in ids {
        stmt.execute(params![now, tenant, id, now])?;
    }
    Ok(())
}

/// Appends `AND <namespace under prefix>` when the prefix is not empty.
pub(super) fn push_namespace(b: &mut SqlBuilder, prefix: &Namespace) {
    if let Some((exact, lo, hi)) = prefix.prefix_bounds() {
        b.sql(" AND (m.namespace = ")
            .param(SqlValue::Text(exact))
            .sql(" OR (m.namespace >= ")
            .param(SqlValue::Text(lo))
            .sql(" AND m.namespace < ")
            .param(SqlValue::Text(hi))
            .sql("))");
    }
}

pub(super) fn run_query<T>(c: &Connection, b: &SqlBuilder, map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>) -> Result<Vec<T>> {
    let mut stmt = c.prepare_cached(&b.text)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(b.params.iter()), map)?;
    Ok(rows.collect::<rusqlite::Result<Vec<T>>>()?)
}

pub fn list(c: &Connection, q: &ListQuery) -> Result<Vec<Memory>> {
    let mut b = SqlBuilder::default();
    b.sql(&format!("SELECT {COLUMNS} FROM memories m WHERE m.tenant_id = "))
        .param(SqlValue::Text(q.tenant.clone()))
        .sql(" AND (m.expires_at IS NULL OR m.expires_at > ")
        .param(SqlValue::Integer(q.now))
        .sql(")");
    push_namespace(&mut b, &q.namespace_prefix);
    if let Some(t) = q.tier {
        b.sql(" AND m.tier = ").param(SqlValue::Text(t.as_str().into()));
    }
    if let Some(after) = &q.after_id {
        b.sql(" AND m.id > ").param(SqlValue::Text(after.clone()));
    }
    b.sql(" ORDER BY m.id LIMIT ").param(SqlValue::Integer(q.limit as i64));
    run_query(c, &b, to_memory)
}

pub fn list_namespaces(c: &Connection, q: &NamespaceQuery) -> Result<Vec<Namespace>> {
    let mut b = SqlBuilder::default();
    b.sql("SELECT DISTINCT m.namespace FROM memories m WHERE m.tenant_id = ")
        .param(SqlValue::Text(q.tenant.clone()))
        .sql(" AND m.key IS NOT NULL AND (m.expires_at IS NULL OR m.expires_at > ")
        .param(SqlValue::Integer(q.now))
        .sql(")");
    push_namespace(&mut b, &q.prefix);
    b.sql(" ORDER BY m.namespace");
    let stored: Vec<String> = run_query(c, &b, |r| r.get(0))?;
    let mut out: Vec<Namespace> = Vec::new();
    for s in stored {
        let mut segs = Namespace::from_stored(&s).segments().to_vec();
        if !q.suffix.is_empty() && !segs.ends_with(&q.suffix) {
            continue;
        }
        if let Some(d) = q.max_depth {
            segs.truncate(d);
        }
        let ns = Namespace::from_stored(&segs.join("/"));
        if out.last() != Some(&ns) && !out.contains(&ns) {
            out.push(ns);
        }
    }
    out.sort();
    Ok(out.into_iter().skip(q.offset).take(q.limit).collect())
}

pub fn sweep_expired(c: &Connection, now: Millis, batch: usize) -> Result<usize> {
    Ok(c.prepare_cached(
        "DELETE FROM memories WHERE seq IN \
         (SELECT seq FROM memories WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT ?)",
    )?
    .execute(params![now, batch as i64])?)
}
