//! The `memories` and `memory_merges` collections: point lookups, whole
//! writes, the jobs' cross-tenant scans, listings. No rule lives here.

use mongodb::bson::{doc, Bson, Document};

use super::ctx::{req_str, Ctx, MEMORIES, MERGES};
use super::docs::{memory_doc, stored};
use super::query;
use std::collections::HashSet;

use crate::error::Result;
use crate::model::{Namespace, Tier};
use crate::store::{Page, Scope, Stored};
use crate::time::Millis;

fn all(docs: Vec<Document>) -> Result<Vec<Stored>> {
    docs.iter().map(stored).collect()
}

pub async fn by_id(c: &mut Ctx<'_>, tenant: &str, id: &str) -> Result<Option<Stored>> {
    c.find_one(MEMORIES, doc! { "tenant_id": tenant, "id": id }, None).await?.as_ref().map(stored).transpose()
}

pub async fn by_key(c: &mut Ctx<'_>, tenant: &str, ns: &Namespace, key: &str) -> Result<Option<Stored>> {
    let f = doc! { "tenant_id": tenant, "namespace": ns.joined(), "key": key };
    c.find_one(MEMORIES, f, None).await?.as_ref().map(stored).transpose()
}

pub async fn by_seq(c: &mut Ctx<'_>, seq: i64) -> Result<Option<Stored>> {
    c.find_one(MEMORIES, doc! { "_id": seq }, None).await?.as_ref().map(stored).transpose()
}

pub async fn by_text_hash(c: &mut Ctx<'_>, tenant: &str, ns: &Namespace, hash: i64) -> Result<Vec<Stored>> {
    let f = doc! { "tenant_id": tenant, "namespace": ns.joined(), "text_hash": hash };
    all(c.find(MEMORIES, f, Some(doc! { "_id": 1 }), 0).await?)
}

pub async fn most_salient(c: &mut Ctx<'_>, tier: Tier, min: f64, limit: usize) -> Result<Vec<Stored>> {
    let f = doc! { "tier": tier.as_str(), "salience": { "$gte": min } };
    all(c.find(MEMORIES, f, Some(doc! { "salience": -1 }), limit as i64).await?)
}

pub async fn salience_due(c: &mut Ctx<'_>, before: Millis, limit: usize) -> Result<Vec<Stored>> {
    let f = doc! { "pinned": false, "salience_at": { "$lte": before } };
    all(c.find(MEMORIES, f, Some(doc! { "salience_at": 1 }), limit as i64).await?)
}

pub async fn expired(c: &mut Ctx<'_>, at: Millis, limit: usize) -> Result<Vec<i64>> {
    let f = doc! { "expires_at": { "$lte": at } };
    let docs = c.find(MEMORIES, f, None, limit as i64).await?;
    docs.iter().map(|d| super::ctx::req_int(d, "_id")).collect()
}

pub async fn insert(c: &mut Ctx<'_>, s: &Stored) -> Result<()> {
    c.insert(MEMORIES, memory_doc(s)?).await
}

/// Replaces the memory at `s.seq` (its tenant, id and namespace never change).
pub async fn update(c: &mut Ctx<'_>, s: &Stored) -> Result<()> {
    let f = doc! { "_id": s.seq, "tenant_id": &s.tenant };
    c.coll(MEMORIES).replace_one(f, memory_doc(s)?).session(&mut *c.session).await?;
    Ok(())
}

pub async fn delete(c: &mut Ctx<'_>, seq: i64) -> Result<()> {
    c.delete(MEMORIES, doc! { "_id": seq }).await?;
    Ok(())
}

pub async fn set_salience(c: &mut Ctx<'_>, seq: i64, salience: f64, at: Millis, cites: i64) -> Result<()> {
    let u = doc! { "$set": { "salience": salience, "salience_at": at }, "$inc": { "cite_count": cites } };
    c.update(MEMORIES, doc! { "_id": seq }, u).await?;
    Ok(())
}

pub async fn set_expiry(c: &mut Ctx<'_>, seq: i64, expires_at: Option<Millis>) -> Result<()> {
    let u = match expires_at {
        Some(e) => doc! { "$set": { "expires_at": e } },
        None => doc! { "$unset": { "expires_at": "" } },
    };
    c.update(MEMORIES, doc! { "_id": seq }, u).await?;
    Ok(())
}

pub async fn merged_into(c: &mut Ctx<'_>, tenant: &str, id: &str) -> Result<Option<String>> {
    let d = c.find_one(MERGES, doc! { "tenant_id": tenant, "id": id }, None).await?;
    d.map(|d| Ok(req_str(&d, "survivor_id")?.to_owned())).transpose()
}

pub async fn record_merge(c: &mut Ctx<'_>, tenant: &str, id: &str, survivor: &str, at: Millis) -> Result<()> {
    c.update_many(
        MERGES,
        doc! { "tenant_id": tenant, "survivor_id": id },
        doc! { "$set": { "survivor_id": survivor } },
    )
    .await?;
    c.upsert(
        MERGES,
        doc! { "tenant_id": tenant, "id": id },
        doc! { "$set": { "survivor_id": survivor, "merged_at": at } },
    )
    .await
}

pub async fn forget_merges_into(c: &mut Ctx<'_>, tenant: &str, survivor: &str) -> Result<()> {
    c.delete(MERGES, doc! { "tenant_id": tenant, "survivor_id": survivor }).await?;
    Ok(())
}

pub async fn list(c: &mut Ctx<'_>, scope: &Scope, page: &Page) -> Result<Vec<Stored>> {
    let mut f = query::scope(scope);
    match page {
        Page::ById { after, limit } => {
            if let Some(after) = after {
                f = doc! { "$and": [f, { "id": { "$gt": after } }] };
            }
            all(c.find(MEMORIES, f, Some(doc! { "tenant_id": 1, "id": 1 }), *limit as i64).await?)
        }
        Page::Newest { offset, limit } => {
            let coll = c.coll(MEMORIES);
            let mut find = coll.find(f).sort(doc! { "updated_at": -1, "id": -1 }).skip(*offset as u64);
            if *limit > 0 {
                find = find.limit(*limit as i64);
            }
            let mut cursor = find.session(&mut *c.session).await?;
            let mut out = Vec::new();
            while let Some(d) = cursor.next(&mut *c.session).await {
                out.push(stored(&d?)?);
            }
            Ok(out)
        }
    }
}

pub async fn namespaces(c: &mut Ctx<'_>, scope: &Scope) -> Result<Vec<Namespace>> {
    let values = c.coll(MEMORIES).distinct("namespace", query::scope(scope)).session(&mut *c.session).await?;
    let mut out: Vec<String> =
        values.into_iter().filter_map(|b| if let Bson::String(s) = b { Some(s) } else { None }).collect();
    // Byte order (the stored form's order on every backend).
    out.sort();
    Ok(out.iter().map(|s| Namespace::from_stored(s)).collect())
}

/// The `seq`s of the scope's memories, if there are at most `cap`.
pub async fn scope_seqs(c: &mut Ctx<'_>, scope: &Scope, cap: usize) -> Result<Option<HashSet<u64>>> {
    // The tenant first, as in `among`: the test server's planner scans the
    // collection for a query with a top-level `$and`.
    let pipeline = vec![
        doc! { "$match": { "tenant_id": &scope.tenant } },
        doc! { "$match": query::scope(scope) },
        doc! { "$project": { "_id": 1 } },
        doc! { "$limit": cap as i64 + 1 },
    ];
    let docs = c.aggregate(MEMORIES, pipeline).await?;
    let out = docs.iter().map(|d| Ok(super::ctx::req_int(d, "_id")? as u64)).collect::<Result<HashSet<u64>>>()?;
    Ok((out.len() <= cap).then_some(out))
}

/// Those of `seqs` the scope admits.
pub async fn in_scope(c: &mut Ctx<'_>, scope: &Scope, seqs: &[i64]) -> Result<HashSet<i64>> {
    among(c, scope, seqs, Some(doc! { "_id": 1 })).await?.iter().map(|d| super::ctx::req_int(d, "_id")).collect()
}

/// Those of `seqs` the scope admits, loaded.
pub async fn hydrate(c: &mut Ctx<'_>, scope: &Scope, seqs: &[i64]) -> Result<Vec<Stored>> {
    all(among(c, scope, seqs, None).await?)
}

/// What ranking needs of those of `seqs` in the scope and, with `max_gap`,
/// of the memories written just before and after each in its namespace (by
/// id: creation order), created at most `max_gap` apart and in the scope. The
/// candidates' scope is checked too: an index hit may be stale.
pub async fn expand(
    c: &mut Ctx<'_>,
    scope: &Scope,
    seqs: &[i64],
    max_gap: Option<Millis>,
) -> Result<crate::store::Expansion> {
    use crate::store::RankFacts;
    let mut out = crate::store::Expansion::default();
    if seqs.is_empty() {
        return Ok(out);
    }
    let facts = |d: &Document| -> Result<(i64, Millis, RankFacts)> {
        let s = stored(d)?;
        Ok((s.seq, s.memory.created_at, RankFacts { updated_at: s.memory.updated_at, salience: s.memory.salience }))
    };
    let candidates = among(c, scope, seqs, None).await?;
    let Some(gap) = max_gap else {
        for d in &candidates {
            let (seq, _, f) = facts(d)?;
            out.facts.insert(seq, f);
        }
        return Ok(out);
    };
    // The neighbours on either side, by id within the namespace.
    let mut adjacent: Vec<(i64, Millis, i64)> = Vec::new();
    for d in &candidates {
        let (seq, at, f) = facts(d)?;
        out.facts.insert(seq, f);
        let (tenant, ns, id) = (req_str(d, "tenant_id")?, req_str(d, "namespace")?, req_str(d, "id")?);
        for (op, order) in [("$lt", -1), ("$gt", 1)] {
            let f = doc! { "tenant_id": tenant, "namespace": ns, "id": { op: id } };
            let sort = doc! { "tenant_id": 1, "namespace": 1, "id": order };
            if let Some(n) = c.find_one(MEMORIES, f, Some(sort)).await? {
                adjacent.push((seq, at, super::ctx::req_int(&n, "_id")?));
            }
        }
    }
    let mut wanted: Vec<i64> = adjacent.iter().map(|a| a.2).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut created = std::collections::HashMap::new();
    for d in among(c, scope, &wanted, None).await? {
        let (seq, at, f) = facts(&d)?;
        created.insert(seq, at);
        out.facts.insert(seq, f);
    }
    for (seq, at, n) in adjacent {
        if created.get(&n).is_some_and(|t: &Millis| (t - at).abs() <= gap) {
            out.adjacent.push((seq, n));
        }
    }
    Ok(out)
}

/// Those of `seqs` the scope admits, as documents (or their `projection`).
/// A pipeline that looks them up by `_id` first, then applies the scope: the
/// same plan as a find of both on mongod, and the only one the test server
/// finds (its planner scans the collection for any query with a top-level
/// `$and`; docs/mongodb.md).
async fn among(c: &mut Ctx<'_>, scope: &Scope, seqs: &[i64], projection: Option<Document>) -> Result<Vec<Document>> {
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipeline = vec![doc! { "$match": { "_id": { "$in": seqs } } }, doc! { "$match": query::scope(scope) }];
    pipeline.extend(projection.map(|p| doc! { "$project": p }));
    c.aggregate(MEMORIES, pipeline).await
}
