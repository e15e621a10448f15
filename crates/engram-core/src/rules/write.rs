//! What a write does, inside one transaction: a memory with a key replaces the
//! live one under that key (`updated`); a memory that says what a live one of
//! its namespace already says is folded into it (`merged`, see `merge.rs`);
//! anything else is inserted (`created`). A memory with text and no vector
//! of the caller's is queued for embedding; its duplicates by meaning are
//! found when the vector arrives (`embedding.rs`). Patches, deletes, TTL
//! refreshes and the expiry sweep are here too.

use std::collections::HashMap;

use super::liveness::{expiry, live};
use super::merge::{self, DUPLICATE_COSINE};
use crate::audit::{self, Change, ChangeKind};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{Memory, MemoryPatch, Namespace, NewMemory, WriteStatus};
use crate::store::{Hit, IndexMark, Reads, Stored, Tx};
use crate::time::Millis;
use crate::vector::dot;

/// A memory ready for the transaction: its fingerprint taken and, when it
/// brings a vector, its nearest memories looked up beforehand (off the
/// writer, where the graph search costs nothing to other writes).
#[derive(Debug, Clone)]
pub struct Prepared {
    pub memory: NewMemory,
    pub text_hash: Option<i64>,
    pub near: Vec<Hit>,
}

/// The stored record of a new memory at `now` (its `seq` is assigned on insert).
fn new_record(tenant: &str, m: &NewMemory, text_hash: Option<i64>, now: Millis) -> Stored {
    Stored {
        seq: 0,
        tenant: tenant.to_owned(),
        memory: Memory {
            id: uuid::Uuid::now_v7().to_string(),
            namespace: m.namespace.clone(),
            key: m.key.clone(),
            tier: m.tier,
            text: m.text.clone(),
            data: m.data.clone(),
            tags: m.tags.clone(),
            metadata: m.metadata.clone(),
            salience: m.salience,
            pinned: m.pinned,
            version: 1,
            created_at: now,
            updated_at: now,
            expires_at: expiry(m.pinned, m.ttl_ms, now),
            source: m.source.clone(),
            index: m.index.clone(),
            ttl_ms: m.ttl_ms,
        },
        text_hash,
        salience_at: now,
        cite_count: 0,
    }
}

/// Takes a new memory's fingerprint (run before the transaction).
pub fn prepare(m: NewMemory) -> Prepared {
    Prepared { text_hash: merge::fingerprint_of(&m.text, &m.source, &m.metadata), memory: m, near: Vec::new() }
}

/// Stores `vector` for `s` or, for a text without one, queues it for embedding.
fn place_vector(tx: &mut dyn Tx, s: &Stored, vector: Option<&[f32]>) -> Result<()> {
    match vector {
        Some(v) if !s.memory.text.is_empty() => tx.put_vector(s.seq, v),
        _ if !s.memory.text.is_empty() => tx.queue_embedding(s.seq, s.memory.version),
        _ => Ok(()),
    }
}

/// Writes a batch (see the module docs); results in input order. `mark` is
/// where the index stood in the batch's namespaces before its `near`
/// lookups: vectors stored since (by concurrent writers) are compared here,
/// so two restatements written at once cannot both be kept.
pub fn put_batch(
    tx: &mut dyn Tx,
    tenant: &str,
    batch: Vec<Prepared>,
    mark: &IndexMark,
    now: Millis,
) -> Result<Vec<(WriteStatus, Memory)>> {
    let mut out = Vec::with_capacity(batch.len());
    // Vectors stored since the lookups (loaded before this batch writes any).
    let with_vectors = batch.iter().filter(|p| p.memory.embedding.is_some());
    let recent = merge::Recent::load(tx, mark, with_vectors.map(|p| (tenant, &p.memory.namespace)))?;
    // Vectors written earlier in this batch, by namespace: the index does
    // not hold them yet.
    let mut written: HashMap<Namespace, Vec<(i64, Vec<f32>)>> = HashMap::new();
    for mut p in batch {
        let mut near = std::mem::take(&mut p.near);
        if let Some(v) = &p.memory.embedding {
            let earlier = written.get(&p.memory.namespace).into_iter().flatten();
            near.extend(
                earlier.map(|(seq, w)| (*seq, f64::from(dot(v, w)))).filter(|h| h.1 >= f64::from(DUPLICATE_COSINE)),
            );
            near.extend(recent.hits(tenant, &p.memory.namespace, v));
        }
        let (status, s) = match &p.memory.key {
            Some(key) => {
                let existing = tx.memory_by_key(tenant, &p.memory.namespace, key)?;
                match existing {
                    Some(cur) if super::liveness::memory_live(&cur.memory, now) => {
                        (WriteStatus::Updated, replace(tx, cur, &p.memory, p.text_hash, now)?)
                    }
                    stale => {
                        if let Some(old) = stale {
                            remove(tx, &old, ChangeKind::Expired)?;
                        }
                        (WriteStatus::Created, insert(tx, tenant, &p.memory, p.text_hash, now)?)
                    }
                }
            }
            None => match duplicate_of(tx, tenant, &p, &near, now)? {
                Some(existing) => {
                    let incoming = new_record(tenant, &p.memory, p.text_hash, now);
                    let survivor = merge::folded(&existing, &incoming, now);
                    tx.update_memory(&survivor)?;
                    let change = Change {
                        into: Some(survivor.memory.id.clone()),
                        ..Change::new(ChangeKind::Merged, &incoming.memory.id)
                    };
                    let place = survivor.memory.namespace.joined();
                    audit::record(tx, tenant, &place, change);
                    audit::record(tx, tenant, &place, Change::memory(ChangeKind::Updated, &survivor.memory));
                    out.push((WriteStatus::Merged, survivor.memory));
                    continue;
                }
                None => (WriteStatus::Created, insert(tx, tenant, &p.memory, p.text_hash, now)?),
            },
        };
        let kind = if status == WriteStatus::Updated { ChangeKind::Updated } else { ChangeKind::Created };
        audit::record(tx, tenant, &s.memory.namespace.joined(), Change::memory(kind, &s.memory));
        if let Some(v) = &p.memory.embedding {
            written.entry(s.memory.namespace.clone()).or_default().push((s.seq, v.clone()));
        }
        // A keyed memory absorbs unkeyed ones that say the same.
        let s =
            if s.memory.key.is_some() { merge::settle(tx, s, p.memory.embedding.as_deref(), &near, now)? } else { s };
        out.push((status, s.memory));
    }
    Ok(out)
}

/// A live memory of the namespace the new one duplicates (same fingerprint,
/// or a vector at least [`DUPLICATE_COSINE`] similar), the oldest first.
fn duplicate_of(tx: &mut dyn Tx, tenant: &str, p: &Prepared, near: &[Hit], now: Millis) -> Result<Option<Stored>> {
    if let Some(h) = p.text_hash {
        let same = tx.memories_by_text_hash(tenant, &p.memory.namespace, h)?;
        if let Some(s) = same.into_iter().find(|s| super::liveness::memory_live(&s.memory, now)) {
            return Ok(Some(s));
        }
    }
    let Some(v) = p.memory.embedding.as_deref() else { return Ok(None) };
    let mut best: Vec<&Hit> = near.iter().filter(|h| h.1 >= f64::from(DUPLICATE_COSINE)).collect();
    best.sort_by(|a, b| b.1.total_cmp(&a.1));
    for h in best {
        if let Some(s) = live(tx.memory_by_seq(h.0)?, now) {
            if s.tenant == tenant && s.memory.namespace == p.memory.namespace && merge::still_near(tx, h.0, v)? {
                return Ok(Some(s));
            }
        }
    }
    Ok(None)
}

fn insert(tx: &mut dyn Tx, tenant: &str, m: &NewMemory, text_hash: Option<i64>, now: Millis) -> Result<Stored> {
    let mut s = new_record(tenant, m, text_hash, now);
    s.seq = tx.insert_memory(&s)?;
    place_vector(tx, &s, m.embedding.as_deref())?;
    Ok(s)
}

/// Replaces the live memory under a key with a new write.
fn replace(tx: &mut dyn Tx, cur: Stored, m: &NewMemory, text_hash: Option<i64>, now: Millis) -> Result<Stored> {
    let mut s = new_record(&cur.tenant, m, text_hash, now);
    s.seq = cur.seq;
    s.cite_count = cur.cite_count;
    s.memory.id = cur.memory.id;
    s.memory.created_at = cur.memory.created_at;
    s.memory.version = cur.memory.version + 1;
    s.memory.updated_at = now.max(cur.memory.updated_at);
    tx.update_memory(&s)?;
    if s.memory.text != cur.memory.text {
        tx.drop_vector(s.seq)?;
        place_vector(tx, &s, m.embedding.as_deref())?;
    } else if let Some(v) = &m.embedding {
        tx.put_vector(s.seq, v)?;
    }
    Ok(s)
}

/// The memory an id names: its own row, or the survivor it was merged into.
pub fn resolve(r: &mut dyn Reads, tenant: &str, id: &str) -> Result<Option<Stored>> {
    if let Some(s) = r.memory_by_id(tenant, id)? {
        return Ok(Some(s));
    }
    match r.merged_into(tenant, id)? {
        Some(survivor) => r.memory_by_id(tenant, &survivor),
        None => Ok(None),
    }
}

fn not_found(id: &str) -> Error {
    Error::not_found(format!("no memory with id {id}"))
}

/// Applies a patch to the live memory `id` names. `if_version` (from
/// `If-Match`) must equal its version. A text change re-embeds it and folds
/// it with a memory that already says the same; the result is what the
/// memory became.
pub fn patch(
    tx: &mut dyn Tx,
    tenant: &str,
    id: &str,
    p: &MemoryPatch,
    if_version: Option<i64>,
    now: Millis,
) -> Result<Memory> {
    let cur = live(resolve(tx, tenant, id)?, now).ok_or_else(|| not_found(id))?;
    if let Some(v) = if_version {
        if v != cur.memory.version {
            return Err(Error::User {
                code: ErrorCode::VersionMismatch,
                message: format!("If-Match version {v} does not match the current version {}", cur.memory.version),
            });
        }
    }
    let mut s = cur.clone();
    let m = &mut s.memory;
    if let Some(t) = &p.text {
        m.text = t.clone();
    }
    if let Some(t) = p.tier {
        m.tier = t;
    }
    if let Some(d) = &p.data {
        m.data = d.clone();
    }
    if let Some(t) = &p.tags {
        m.tags = t.clone();
    }
    if let Some(md) = &p.metadata {
        m.metadata = md.clone();
    }
    if let Some(sal) = p.salience {
        if sal != m.salience {
            s.salience_at = now;
        }
        s.memory.salience = sal;
    }
    let m = &mut s.memory;
    if let Some(pin) = p.pinned {
        m.pinned = pin;
    }
    if let Some(ttl) = p.ttl_ms {
        m.ttl_ms = ttl;
    }
    m.source.written_by(&p.writer);
    // The expiry restarts only when the TTL or pinning changes.
    if p.ttl_ms.is_some() || p.pinned.is_some() {
        m.expires_at = expiry(m.pinned, m.ttl_ms, now);
    }
    m.version += 1;
    m.updated_at = now.max(m.updated_at);
    let text_changed = s.memory.text != cur.memory.text;
    if text_changed {
        s.text_hash = merge::fingerprint(&s.memory);
    }
    tx.update_memory(&s)?;
    audit::record(tx, tenant, &s.memory.namespace.joined(), Change::memory(ChangeKind::Updated, &s.memory));
    if !text_changed {
        return Ok(s.memory);
    }
    tx.drop_vector(s.seq)?;
    place_vector(tx, &s, None)?;
    Ok(merge::settle(tx, s, None, &[], now)?.memory)
}

/// Deletes the live memory `id` names; false when there is none.
pub fn delete(tx: &mut dyn Tx, tenant: &str, id: &str, now: Millis) -> Result<bool> {
    let Some(s) = live(resolve(tx, tenant, id)?, now) else {
        return Ok(false);
    };
    remove(tx, &s, ChangeKind::Deleted)?;
    Ok(true)
}

/// Deletes a memory and the aliases that lead to it, journaled as `kind`
/// (deleted, expired, erased).
pub fn remove(tx: &mut dyn Tx, s: &Stored, kind: ChangeKind) -> Result<()> {
    tx.delete_memory(s.seq)?;
    tx.forget_merges_into(&s.tenant, &s.memory.id)?;
    audit::record(tx, &s.tenant, &s.memory.namespace.joined(), Change::memory(kind, &s.memory));
    Ok(())
}

/// Restarts the TTL of the live memories `ids` that have one (and are not pinned).
pub fn refresh_ttl(tx: &mut dyn Tx, tenant: &str, ids: &[String], now: Millis) -> Result<()> {
    for id in ids {
        let Some(s) = live(tx.memory_by_id(tenant, id)?, now) else {
            continue;
        };
        if s.memory.pinned || s.memory.ttl_ms.is_none() {
            continue;
        }
        tx.set_expiry(s.seq, expiry(false, s.memory.ttl_ms, now))?;
    }
    Ok(())
}

/// Deletes up to `batch` memories expired at `now`; returns how many.
pub fn sweep_expired(tx: &mut dyn Tx, now: Millis, batch: usize) -> Result<usize> {
    let seqs = tx.expired_memories(now, batch)?;
    for &seq in &seqs {
        if let Some(s) = tx.memory_by_seq(seq)? {
            remove(tx, &s, ChangeKind::Expired)?;
        }
    }
    Ok(seqs.len())
}
