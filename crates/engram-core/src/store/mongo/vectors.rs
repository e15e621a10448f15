//! Embeddings: the `embed_queue` and `memory_vectors` collections and the
//! per-tenant model record. A stored vector carries the `change` number its
//! write took in its place's stripe (`stripes.rs`), as PostgreSQL's carry a
//! sequence value: within a place, later writes take higher numbers.

use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{doc, Binary, Bson, Document};

use super::ctx::{int, req_int, req_str, Ctx, EMBED_QUEUE, MEMORIES, TENANT_MODELS, VECTORS};
use crate::error::{Error, Result};
use crate::model::Namespace;
use crate::store::{PendingText, TenantModel};
use crate::time::Millis;

/// A vector as BSON: its f32s, little-endian.
pub fn encode(v: &[f32]) -> Bson {
    let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes })
}

/// Reads [`encode`]'s bytes.
pub fn decode(d: &Document) -> Result<Vec<f32>> {
    match d.get("v") {
        Some(Bson::Binary(b)) if b.bytes.len() % 4 == 0 => {
            Ok(b.bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
        }
        _ => Err(Error::internal("stored vector: not a vector")),
    }
}

/// The oldest queued memories (by `seq`) not leased at `at`, with their
/// texts, skipping `exclude`d tenants.
pub async fn pending(c: &mut Ctx<'_>, at: Millis, max: usize, exclude: &[String]) -> Result<Vec<PendingText>> {
    let f = doc! { "leased_until": { "$lte": at }, "tenant_id": { "$nin": exclude } };
    let queued = c.find(EMBED_QUEUE, f, Some(doc! { "_id": 1 }), max as i64).await?;
    let seqs: Vec<i64> = queued.iter().map(|d| req_int(d, "_id")).collect::<Result<_>>()?;
    let texts = c.find(MEMORIES, doc! { "_id": { "$in": &seqs } }, None, 0).await?;
    let texts: std::collections::HashMap<i64, String> =
        texts.iter().map(|d| Ok((req_int(d, "_id")?, req_str(d, "text")?.to_owned()))).collect::<Result<_>>()?;
    let mut out = Vec::new();
    for q in &queued {
        let seq = req_int(q, "_id")?;
        if let Some(text) = texts.get(&seq) {
            out.push(PendingText {
                seq,
                gen: req_int(q, "gen")?,
                tenant: req_str(q, "tenant_id")?.to_owned(),
                namespace: Namespace::from_stored(req_str(q, "namespace")?),
                text: text.clone(),
            });
        }
    }
    Ok(out)
}

pub async fn pending_count(c: &mut Ctx<'_>, tenant: &str, prefix: &Namespace) -> Result<u64> {
    let mut f = doc! { "tenant_id": tenant };
    if let Some(under) = super::query::under(prefix) {
        f = doc! { "$and": [f, under] };
    }
    c.count(EMBED_QUEUE, f).await
}

pub async fn vector(c: &mut Ctx<'_>, seq: i64) -> Result<Option<Vec<f32>>> {
    c.find_one(VECTORS, doc! { "_id": seq }, None).await?.as_ref().map(decode).transpose()
}

pub async fn since(c: &mut Ctx<'_>, tenant: &str, ns: &Namespace, mark: i64) -> Result<Vec<(i64, Vec<f32>)>> {
    let f = doc! { "tenant_id": tenant, "namespace": ns.joined(), "change": { "$gt": mark } };
    let docs = c.find(VECTORS, f, None, 0).await?;
    docs.iter().map(|d| Ok((req_int(d, "_id")?, decode(d)?))).collect()
}

pub async fn of(c: &mut Ctx<'_>, seqs: &[i64]) -> Result<Vec<(i64, Vec<f32>)>> {
    let docs = c.find(VECTORS, doc! { "_id": { "$in": seqs } }, None, 0).await?;
    docs.iter().map(|d| Ok((req_int(d, "_id")?, decode(d)?))).collect()
}

/// Stores a memory's vector (a no-op if the memory is gone) with `change`
/// from `change_of(tenant, namespace)`, and takes it off the queue.
pub async fn put(
    c: &mut Ctx<'_>,
    seq: i64,
    v: &[f32],
    change_of: impl FnOnce(&str, &str) -> Result<i64>,
) -> Result<()> {
    c.delete(EMBED_QUEUE, doc! { "_id": seq }).await?;
    let Some(m) = c.find_one(MEMORIES, doc! { "_id": seq }, None).await? else {
        return Ok(());
    };
    let (tenant, ns) = (req_str(&m, "tenant_id")?, req_str(&m, "namespace")?);
    let change = change_of(tenant, ns)?;
    let d = doc! { "tenant_id": tenant, "namespace": ns, "dims": v.len() as i64, "v": encode(v), "change": change };
    c.coll(VECTORS).replace_one(doc! { "_id": seq }, d).upsert(true).session(&mut *c.session).await?;
    Ok(())
}

pub async fn drop(c: &mut Ctx<'_>, seq: i64) -> Result<()> {
    c.delete(VECTORS, doc! { "_id": seq }).await?;
    c.delete(EMBED_QUEUE, doc! { "_id": seq }).await?;
    Ok(())
}

/// Queues a memory at version `gen` (replacing a queued one and its lease).
pub async fn queue(c: &mut Ctx<'_>, seq: i64, gen: i64) -> Result<()> {
    let Some(m) = c.find_one(MEMORIES, doc! { "_id": seq }, None).await? else {
        return Ok(());
    };
    let d = doc! {
        "tenant_id": req_str(&m, "tenant_id")?, "namespace": req_str(&m, "namespace")?, "gen": gen, "leased_until": 0i64,
    };
    c.coll(EMBED_QUEUE).replace_one(doc! { "_id": seq }, d).upsert(true).session(&mut *c.session).await?;
    Ok(())
}

pub async fn unqueue(c: &mut Ctx<'_>, seq: i64, gen: i64) -> Result<bool> {
    Ok(c.delete(EMBED_QUEUE, doc! { "_id": seq, "gen": gen }).await? == 1)
}

pub async fn lease(c: &mut Ctx<'_>, seqs: &[i64], until: Millis) -> Result<()> {
    c.update_many(EMBED_QUEUE, doc! { "_id": { "$in": seqs } }, doc! { "$set": { "leased_until": until } }).await?;
    Ok(())
}

/// Drops every vector of a tenant and queues its memories with text (a
/// queued one keeps its lease).
pub async fn requeue_tenant(c: &mut Ctx<'_>, tenant: &str) -> Result<usize> {
    c.delete(VECTORS, doc! { "tenant_id": tenant }).await?;
    let f = doc! { "tenant_id": tenant, "text": { "$ne": "" } };
    let memories = c.find(MEMORIES, f, None, 0).await?;
    for m in &memories {
        let seq = req_int(m, "_id")?;
        let u = doc! {
            "$set": { "gen": req_int(m, "version")? },
            "$setOnInsert": { "tenant_id": tenant, "namespace": req_str(m, "namespace")?, "leased_until": 0i64 },
        };
        c.upsert(EMBED_QUEUE, doc! { "_id": seq }, u).await?;
    }
    Ok(memories.len())
}

pub async fn tenants(c: &mut Ctx<'_>) -> Result<Vec<String>> {
    // Not the empty tenant of the sentinel `schema::mark_multikey` writes.
    let values =
        c.coll(MEMORIES).distinct("tenant_id", doc! { "tenant_id": { "$ne": "" } }).session(&mut *c.session).await?;
    let mut out: Vec<String> = values.into_iter().filter_map(|b| b.as_str().map(str::to_owned)).collect();
    out.sort();
    Ok(out)
}

pub async fn tenant_model(c: &mut Ctx<'_>, tenant: &str) -> Result<Option<TenantModel>> {
    let d = c.find_one(TENANT_MODELS, doc! { "_id": tenant }, None).await?;
    d.map(|d| Ok(TenantModel { model: req_str(&d, "model")?.to_owned(), dims: req_int(&d, "dims")? as usize }))
        .transpose()
}

pub async fn record_tenant_model(
    c: &mut Ctx<'_>,
    tenant: &str,
    model: &TenantModel,
    at: Millis,
) -> Result<TenantModel> {
    if let Some(existing) = tenant_model(c, tenant).await? {
        return Ok(existing);
    }
    let d = doc! { "_id": tenant, "tenant_id": tenant, "model": &model.model, "dims": model.dims as i64, "recorded_at": at };
    c.insert(TENANT_MODELS, d).await?;
    Ok(model.clone())
}

pub async fn forget_tenant_model(c: &mut Ctx<'_>, tenant: &str) -> Result<()> {
    c.delete(TENANT_MODELS, doc! { "_id": tenant }).await?;
    Ok(())
}

/// Model records `(tenant, model, recorded_at)`, of one tenant or all.
pub async fn tenant_models(c: &mut Ctx<'_>, tenant: Option<&str>) -> Result<Vec<(String, TenantModel, Millis)>> {
    let f = tenant.map_or_else(Document::new, |t| doc! { "_id": t });
    let docs = c.find(TENANT_MODELS, f, Some(doc! { "_id": 1 }), 0).await?;
    docs.iter()
        .map(|d| {
            let m = TenantModel { model: req_str(d, "model")?.to_owned(), dims: req_int(d, "dims")? as usize };
            Ok((req_str(d, "_id")?.to_owned(), m, int(d.get("recorded_at")).unwrap_or(0)))
        })
        .collect()
}
