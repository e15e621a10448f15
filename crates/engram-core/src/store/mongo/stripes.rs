//! Write locks across nodes, as documents.
//!
//! MongoDB has no lock a transaction can wait on; what it has is the write
//! conflict: once a transaction has written a document, any other that
//! writes it before the first commits fails at once. So every place —
//! `(tenant, namespace)` — hashes to one of [`STRIPES`] stripe documents, and
//! a write transaction's first statements write the stripes of its places
//! (all of them for `WriteScope::All`), in order, each `$inc`-ing the
//! stripe's counter. A conflict there happens before the write's own work
//! has run, so the transaction is aborted and started again after a short
//! backoff; once it holds its stripes, no other write to those places runs
//! until it commits. Writes to places on different stripes run at once (as
//! PostgreSQL's place locks allow), and a rule's check-then-write inside one
//! namespace is never interleaved with another writer's.
//!
//! The counter a transaction took is its `change` number in each stripe:
//! within a place, later writes take higher numbers (vectors carry it, and
//! index marks compare with it). Its last statements write each stripe's
//! `done` to that number: the change stream delivers a transaction's
//! changes in order, so when a node's feed sees `done`, it has seen all the
//! transaction's writes (`feed.rs`).

use mongodb::bson::{doc, Document};

use super::ctx::{int, Ctx, STRIPES};
use crate::error::{Error, Result};
use crate::store::{Place, WriteScope};

/// How many stripes places are spread over.
pub const STRIPES_N: usize = 16;

/// The stripe of a place (the first bytes of SHA-256 of tenant and namespace).
pub fn stripe(tenant: &str, namespace: &str) -> usize {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(tenant.as_bytes());
    h.update([0x1f]);
    h.update(namespace.as_bytes());
    let d = h.finalize();
    (u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]) % STRIPES_N as u64) as usize
}

/// The stripes a write of `scope` holds, in order.
pub fn of(scope: &WriteScope) -> Vec<usize> {
    match scope {
        WriteScope::All => (0..STRIPES_N).collect(),
        WriteScope::Places(places) => {
            let mut v: Vec<usize> = places.iter().map(|(t, ns): &Place| stripe(t, &ns.joined())).collect();
            v.sort_unstable();
            v.dedup();
            v
        }
    }
}

fn id(s: usize) -> String {
    format!("stripe:{s}")
}

/// The stripe documents, created if missing (at open: a transaction that
/// had to insert one would conflict with another inserting it).
pub async fn ensure(db: &mongodb::Database) -> Result<()> {
    let c = db.collection::<Document>(STRIPES);
    for s in 0..STRIPES_N {
        let created = c
            .update_one(doc! { "_id": id(s) }, doc! { "$setOnInsert": { "n": 0i64, "done": 0i64 } })
            .upsert(true)
            .await;
        super::schema::not_duplicate(created)?;
    }
    Ok(())
}

/// Writes the stripes inside the session's transaction; returns each one's
/// new counter. A write conflict is returned as is (the caller retries).
pub async fn take(c: &mut Ctx<'_>, stripes: &[usize]) -> std::result::Result<Vec<(usize, i64)>, mongodb::error::Error> {
    let mut out = Vec::with_capacity(stripes.len());
    for &s in stripes {
        let d = c
            .coll(STRIPES)
            .find_one_and_update(doc! { "_id": id(s) }, doc! { "$inc": { "n": 1i64 } })
            .return_document(mongodb::options::ReturnDocument::After)
            .session(&mut *c.session)
            .await?;
        let n = d.and_then(|d| int(d.get("n"))).unwrap_or(0);
        out.push((s, n));
    }
    Ok(out)
}

/// The transaction's last statements: each held stripe's `done`.
pub async fn finish(c: &mut Ctx<'_>, held: &[(usize, i64)]) -> Result<()> {
    for &(s, n) in held {
        c.update(STRIPES, doc! { "_id": id(s) }, doc! { "$set": { "done": n } }).await?;
    }
    Ok(())
}

/// Every stripe's counter now (a rebuilt index starts from them).
pub async fn counters(db: &mongodb::Database) -> Result<Vec<i64>> {
    let mut out = vec![0; STRIPES_N];
    let mut cursor = db.collection::<Document>(STRIPES).find(doc! {}).await?;
    while cursor.advance().await? {
        let d: Document = cursor.deserialize_current()?;
        let Some(s) =
            d.get_str("_id").ok().and_then(|i| i.strip_prefix("stripe:")).and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        if s < STRIPES_N {
            out[s] = int(d.get("n")).ok_or_else(|| Error::internal("a stripe without a counter"))?;
        }
    }
    Ok(out)
}
