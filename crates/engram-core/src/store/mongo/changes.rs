//! The change journal (`crate::audit`) in MongoDB: rows appended to their
//! chain, chain heads, pages in chain order, and the event feed's pages in
//! commit order.
//!
//! Commit order comes from tickets (`tickets.rs`), as PostgreSQL's comes
//! from transaction ids: a write transaction registers a ticket before it
//! starts, its rows are positioned `(ticket, i)`, and a page returns only
//! rows of tickets below every ticket still in flight, so no row can later
//! appear behind one already read.

use mongodb::bson::{doc, spec::BinarySubtype, Binary, Bson, Document};

use super::ctx::{opt_str, req_int, req_str, Ctx, CHANGES, CHANGE_HEADS};
use crate::audit::{Actor, ChainHead, ChangeRow, Head};
use crate::error::{Error, Result};

fn bin(h: &[u8; 32]) -> Binary {
    Binary { subtype: BinarySubtype::Generic, bytes: h.to_vec() }
}

fn hash32(d: &Document, k: &str) -> Result<[u8; 32]> {
    match d.get(k) {
        Some(Bson::Binary(b)) => b.bytes.as_slice().try_into().ok(),
        _ => None,
    }
    .ok_or_else(|| Error::internal(format!("a change's {k} is not 32 bytes")))
}

pub async fn head(c: &mut Ctx<'_>, tenant: &str, namespace: &str) -> Result<Option<Head>> {
    let d = c.find_one(CHANGE_HEADS, doc! { "tenant_id": tenant, "namespace": namespace }, None).await?;
    d.map(|d| Ok((req_int(&d, "seq")?, hash32(&d, "hash")?))).transpose()
}

/// Appends `row` at position `pos` and makes it its chain's head.
pub async fn append(c: &mut Ctx<'_>, row: &ChangeRow, pos: (i64, i64)) -> Result<()> {
    let mut d = doc! {
        "tenant_id": &row.tenant, "namespace": &row.namespace, "seq": row.seq, "tx": pos.0, "ix": pos.1,
        "at": row.at, "changes": &row.changes, "prev_hash": bin(&row.prev_hash), "hash": bin(&row.hash),
    };
    for (k, v) in [("by_who", &row.actor.by), ("agent_id", &row.actor.agent_id), ("request_id", &row.actor.request_id)]
    {
        if let Some(v) = v {
            d.insert(k, v);
        }
    }
    c.insert(CHANGES, d).await?;
    c.upsert(
        CHANGE_HEADS,
        doc! { "tenant_id": &row.tenant, "namespace": &row.namespace },
        doc! { "$set": { "seq": row.seq, "hash": bin(&row.hash) } },
    )
    .await
}

fn to_row(d: &Document) -> Result<ChangeRow> {
    Ok(ChangeRow {
        tenant: req_str(d, "tenant_id")?.to_owned(),
        namespace: req_str(d, "namespace")?.to_owned(),
        seq: req_int(d, "seq")?,
        at: req_int(d, "at")?,
        actor: Actor {
            by: opt_str(d, "by_who").map(str::to_owned),
            agent_id: opt_str(d, "agent_id").map(str::to_owned),
            request_id: opt_str(d, "request_id").map(str::to_owned),
        },
        changes: req_str(d, "changes")?.to_owned(),
        prev_hash: hash32(d, "prev_hash")?,
        hash: hash32(d, "hash")?,
    })
}

/// Up to `limit` rows (of `tenant`, or all) after `(tenant, namespace,
/// seq)`, in chain order.
pub async fn page(
    c: &mut Ctx<'_>,
    tenant: Option<&str>,
    after: Option<&(String, String, i64)>,
    limit: usize,
) -> Result<Vec<ChangeRow>> {
    let mut and: Vec<Bson> = Vec::new();
    if let Some(t) = tenant {
        and.push(doc! { "tenant_id": t }.into());
    }
    if let Some((t, n, s)) = after {
        and.push(
            doc! { "$or": [
                { "tenant_id": { "$gt": t } },
                { "tenant_id": t, "namespace": { "$gt": n } },
                { "tenant_id": t, "namespace": n, "seq": { "$gt": s } },
            ] }
            .into(),
        );
    }
    let f = if and.is_empty() {
        doc! {}
    } else {
        doc! { "$and": and }
    };
    let sort = doc! { "tenant_id": 1, "namespace": 1, "seq": 1 };
    c.find(CHANGES, f, Some(sort), limit as i64).await?.iter().map(to_row).collect()
}

pub async fn heads(c: &mut Ctx<'_>, tenant: Option<&str>) -> Result<Vec<ChainHead>> {
    let f = tenant.map_or_else(Document::new, |t| doc! { "tenant_id": t });
    let docs = c.find(CHANGE_HEADS, f, Some(doc! { "tenant_id": 1, "namespace": 1 }), 0).await?;
    docs.iter()
        .map(|d| {
            Ok(ChainHead {
                tenant: req_str(d, "tenant_id")?.to_owned(),
                namespace: req_str(d, "namespace")?.to_owned(),
                seq: req_int(d, "seq")?,
                hash: hash32(d, "hash")?,
            })
        })
        .collect()
}

/// Up to `limit` of the tenant's rows after `after` in `(tx, ix)` order,
/// each with its position, of tickets below `xmin` only.
pub async fn since(
    c: &mut Ctx<'_>,
    tenant: &str,
    after: (i64, i64),
    xmin: i64,
    limit: usize,
) -> Result<Vec<((i64, i64), ChangeRow)>> {
    let f = doc! {
        "tenant_id": tenant,
        "tx": { "$lt": xmin },
        "$or": [ { "tx": { "$gt": after.0 } }, { "tx": after.0, "ix": { "$gt": after.1 } } ],
    };
    let docs = c.find(CHANGES, f, Some(doc! { "tenant_id": 1, "tx": 1, "ix": 1 }), limit as i64).await?;
    docs.iter().map(|d| Ok(((req_int(d, "tx")?, req_int(d, "ix")?), to_row(d)?))).collect()
}
