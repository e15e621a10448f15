//! Sessions and their turns, jobs, and API keys: plain collections, each
//! keyed by its tenant first. What they mean is decided by the rules.

use mongodb::bson::{doc, spec::BinarySubtype, Binary, Bson, Document};

use super::ctx::{int, opt_str, req_int, req_str, Ctx, JOBS, KEYS, SESSIONS, TURNS};
use crate::auth::{NamespaceGrant, Scopes};
use crate::error::{Error, Result};
use crate::model::session::Turn;
use crate::model::Namespace;
use crate::store::{JobRow, KeyRow, SessionRow};
use crate::time::{LocalTime, Millis};

fn session_row(d: &Document) -> Result<SessionRow> {
    Ok(SessionRow {
        tenant: req_str(d, "tenant_id")?.to_owned(),
        id: req_str(d, "id")?.to_owned(),
        namespace: Namespace::from_stored(req_str(d, "namespace")?),
        turn_count: req_int(d, "turn_count")?,
        distilled_through: req_int(d, "distilled_through")?,
        summary: req_str(d, "summary")?.to_owned(),
        created_at: req_int(d, "created_at")?,
        updated_at: req_int(d, "updated_at")?,
        expires_at: req_int(d, "expires_at")?,
    })
}

pub async fn session(c: &mut Ctx<'_>, tenant: &str, id: &str) -> Result<Option<SessionRow>> {
    c.find_one(SESSIONS, doc! { "tenant_id": tenant, "id": id }, None).await?.as_ref().map(session_row).transpose()
}

pub async fn put_session(c: &mut Ctx<'_>, s: &SessionRow) -> Result<()> {
    let d = doc! {
        "tenant_id": &s.tenant, "id": &s.id, "namespace": s.namespace.joined(), "turn_count": s.turn_count,
        "distilled_through": s.distilled_through, "summary": &s.summary, "created_at": s.created_at,
        "updated_at": s.updated_at, "expires_at": s.expires_at,
    };
    c.coll(SESSIONS)
        .replace_one(doc! { "tenant_id": &s.tenant, "id": &s.id }, d)
        .upsert(true)
        .session(&mut *c.session)
        .await?;
    Ok(())
}

pub async fn delete_session(c: &mut Ctx<'_>, tenant: &str, id: &str) -> Result<()> {
    c.delete(TURNS, doc! { "tenant_id": tenant, "session_id": id }).await?;
    c.delete(SESSIONS, doc! { "tenant_id": tenant, "id": id }).await?;
    Ok(())
}

pub async fn turns(c: &mut Ctx<'_>, tenant: &str, id: &str, from: i64, to: i64) -> Result<Vec<Turn>> {
    let f = doc! { "tenant_id": tenant, "session_id": id, "idx": { "$gte": from, "$lte": to } };
    let docs = c.find(TURNS, f, Some(doc! { "tenant_id": 1, "session_id": 1, "idx": 1 }), 0).await?;
    docs.iter()
        .map(|d| {
            Ok(Turn {
                index: req_int(d, "idx")?,
                role: req_str(d, "role")?.to_owned(),
                content: req_str(d, "content")?.to_owned(),
                at: LocalTime { at: req_int(d, "at")?, utc_offset: req_int(d, "utc_offset")? as _ },
                metadata: serde_json::from_str(req_str(d, "metadata")?)?,
            })
        })
        .collect()
}

pub async fn insert_turns(c: &mut Ctx<'_>, tenant: &str, id: &str, turns: &[Turn]) -> Result<()> {
    for t in turns {
        let d = doc! {
            "tenant_id": tenant, "session_id": id, "idx": t.index, "role": &t.role, "content": &t.content,
            "at": t.at.at, "utc_offset": i64::from(t.at.utc_offset), "metadata": serde_json::to_string(&t.metadata)?,
        };
        c.insert(TURNS, d).await?;
    }
    Ok(())
}

pub async fn delete_turns_through(c: &mut Ctx<'_>, tenant: &str, id: &str, through: i64) -> Result<()> {
    c.delete(TURNS, doc! { "tenant_id": tenant, "session_id": id, "idx": { "$lte": through } }).await?;
    Ok(())
}

pub async fn expired_sessions(c: &mut Ctx<'_>, at: Millis, limit: usize) -> Result<Vec<(String, String)>> {
    let docs = c.find(SESSIONS, doc! { "expires_at": { "$lte": at } }, None, limit as i64).await?;
    docs.iter().map(|d| Ok((req_str(d, "tenant_id")?.to_owned(), req_str(d, "id")?.to_owned()))).collect()
}

pub async fn sessions_after(
    c: &mut Ctx<'_>,
    tenant: Option<&str>,
    after: Option<(String, String)>,
    limit: usize,
) -> Result<Vec<SessionRow>> {
    let (t, i) = after.unwrap_or_default();
    let mut f = doc! { "$or": [ { "tenant_id": { "$gt": &t } }, { "tenant_id": &t, "id": { "$gt": &i } } ] };
    if let Some(tenant) = tenant {
        f = doc! { "$and": [f, { "tenant_id": tenant }] };
    }
    let docs = c.find(SESSIONS, f, Some(doc! { "tenant_id": 1, "id": 1 }), limit as i64).await?;
    docs.iter().map(session_row).collect()
}

fn job_row(d: &Document) -> Result<JobRow> {
    Ok(JobRow {
        id: req_int(d, "_id")?,
        kind: req_str(d, "kind")?.to_owned(),
        tenant: req_str(d, "tenant_id")?.to_owned(),
        subject: req_str(d, "subject")?.to_owned(),
        payload: req_str(d, "payload")?.to_owned(),
        attempts: req_int(d, "attempts")?,
        run_after: req_int(d, "run_after")?,
        created_at: req_int(d, "created_at")?,
    })
}

pub async fn job(c: &mut Ctx<'_>, id: i64) -> Result<Option<JobRow>> {
    c.find_one(JOBS, doc! { "_id": id }, None).await?.as_ref().map(job_row).transpose()
}

pub async fn due_jobs(c: &mut Ctx<'_>, kind: &str, at: Millis, limit: usize) -> Result<Vec<JobRow>> {
    let f = doc! { "kind": kind, "run_after": { "$lte": at } };
    c.find(JOBS, f, Some(doc! { "_id": 1 }), limit as i64).await?.iter().map(job_row).collect()
}

pub async fn jobs_after(c: &mut Ctx<'_>, tenant: Option<&str>, after: i64, limit: usize) -> Result<Vec<JobRow>> {
    let mut f = doc! { "_id": { "$gt": after } };
    if let Some(t) = tenant {
        f.insert("tenant_id", t);
    }
    c.find(JOBS, f, Some(doc! { "_id": 1 }), limit as i64).await?.iter().map(job_row).collect()
}

/// Inserts a job under the id `id` (taken from the `jobs` counter).
pub async fn insert_job(c: &mut Ctx<'_>, id: i64, j: &JobRow) -> Result<()> {
    let d = doc! {
        "_id": id, "kind": &j.kind, "tenant_id": &j.tenant, "subject": &j.subject, "payload": &j.payload,
        "attempts": j.attempts, "run_after": j.run_after, "created_at": j.created_at,
    };
    c.insert(JOBS, d).await
}

pub async fn delete_job(c: &mut Ctx<'_>, id: i64) -> Result<bool> {
    Ok(c.delete(JOBS, doc! { "_id": id }).await? > 0)
}

pub async fn delete_jobs_of(c: &mut Ctx<'_>, tenant: &str, kind: &str, subject: &str) -> Result<usize> {
    Ok(c.delete(JOBS, doc! { "tenant_id": tenant, "kind": kind, "subject": subject }).await? as usize)
}

pub async fn lease_job(c: &mut Ctx<'_>, id: i64, until: Millis) -> Result<()> {
    c.update(JOBS, doc! { "_id": id }, doc! { "$set": { "run_after": until } }).await?;
    Ok(())
}

pub async fn retry_job(c: &mut Ctx<'_>, id: i64, error: &str, run_after: Millis) -> Result<()> {
    let error: String = error.chars().take(500).collect();
    let u = doc! { "$inc": { "attempts": 1i64 }, "$set": { "last_error": error, "run_after": run_after } };
    c.update(JOBS, doc! { "_id": id }, u).await?;
    Ok(())
}

fn key_row(d: &Document) -> Result<KeyRow> {
    let id = req_str(d, "id")?.to_owned();
    let hash = match d.get("hash") {
        Some(Bson::Binary(b)) => b.bytes.as_slice().try_into().ok(),
        _ => None,
    }
    .ok_or_else(|| Error::internal(format!("key {id} has no 32-byte hash")))?;
    Ok(KeyRow {
        namespaces: opt_str(d, "namespaces")
            .map(NamespaceGrant::parse_list)
            .transpose()
            .map_err(|e| Error::internal(format!("key {id} has bad namespaces: {e}")))?,
        scopes: Scopes::parse_list(req_str(d, "scopes")?)
            .map_err(|e| Error::internal(format!("key {id} has bad scopes: {e}")))?,
        hash,
        tenant: req_str(d, "tenant_id")?.to_owned(),
        name: req_str(d, "name")?.to_owned(),
        created_at: req_int(d, "created_at")?,
        revoked_at: int(d.get("revoked_at")),
        id,
    })
}

pub async fn insert_key(c: &mut Ctx<'_>, k: &KeyRow) -> Result<()> {
    let mut d = doc! {
        "tenant_id": &k.tenant, "id": &k.id, "name": &k.name,
        "hash": Binary { subtype: BinarySubtype::Generic, bytes: k.hash.to_vec() },
        "scopes": k.scopes.to_list(), "created_at": k.created_at,
    };
    if let Some(r) = k.revoked_at {
        d.insert("revoked_at", r);
    }
    if let Some(n) = &k.namespaces {
        d.insert("namespaces", n.to_list());
    }
    c.insert(KEYS, d).await
}

pub async fn keys(c: &mut Ctx<'_>, tenant: Option<&str>) -> Result<Vec<KeyRow>> {
    let f = tenant.map_or_else(Document::new, |t| doc! { "tenant_id": t });
    let docs = c.find(KEYS, f, Some(doc! { "tenant_id": 1, "created_at": 1, "id": 1 }), 0).await?;
    docs.iter().map(key_row).collect()
}

pub async fn revoke_key(c: &mut Ctx<'_>, tenant: Option<&str>, id: &str, at: Millis) -> Result<bool> {
    let mut f = doc! { "id": id, "revoked_at": { "$exists": false } };
    if let Some(t) = tenant {
        f.insert("tenant_id", t);
    }
    c.update(KEYS, f, doc! { "$set": { "revoked_at": at } }).await
}

pub async fn key_by_hash(c: &mut Ctx<'_>, hash: &[u8; 32]) -> Result<Option<KeyRow>> {
    let h = Binary { subtype: BinarySubtype::Generic, bytes: hash.to_vec() };
    let f = doc! { "hash": h, "revoked_at": { "$exists": false } };
    c.find_one(KEYS, f, None).await?.as_ref().map(key_row).transpose()
}

pub async fn any_key(c: &mut Ctx<'_>) -> Result<bool> {
    Ok(c.find_one(KEYS, doc! {}, None).await?.is_some())
}
