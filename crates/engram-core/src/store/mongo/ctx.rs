//! What every statement of the MongoDB backend runs with: the database and
//! the session of the read snapshot or write transaction it belongs to, and
//! the few shapes of call the backend makes (find all, find one, count).

use futures_util::StreamExt;
use mongodb::bson::{Bson, Document};
use mongodb::{ClientSession, Collection, Database};

use crate::error::Result;

/// Collection names.
pub const MEMORIES: &str = "memories";
pub const MERGES: &str = "memory_merges";
pub const VECTORS: &str = "memory_vectors";
pub const EMBED_QUEUE: &str = "embed_queue";
pub const TENANT_MODELS: &str = "tenant_models";
pub const KEYS: &str = "api_keys";
pub const SESSIONS: &str = "sessions";
pub const TURNS: &str = "session_turns";
pub const JOBS: &str = "jobs";
pub const CHANGES: &str = "changes";
pub const CHANGE_HEADS: &str = "change_heads";
/// Row numbers (`seq`, job ids): `{_id: name, n}`.
pub const COUNTERS: &str = "counters";
/// The write locks (`stripes.rs`).
pub const STRIPES: &str = "stripes";
/// Write transactions' positions in the change journal (`tickets.rs`).
pub const TICKETS: &str = "tickets";
/// Announced events (`StoreEvent`), for every node's change stream.
pub const EVENTS: &str = "events";
/// Singleton jobs' leases (`leader.rs`).
pub const LEASES: &str = "leases";
pub const META: &str = "engram_meta";

/// A database and the session a statement runs in.
pub struct Ctx<'a> {
    pub db: &'a Database,
    pub session: &'a mut ClientSession,
}

impl Ctx<'_> {
    pub fn coll(&self, name: &str) -> Collection<Document> {
        self.db.collection(name)
    }

    /// Every document matching `filter`, sorted by `sort`, at most `limit`
    /// (0: no limit).
    pub async fn find(
        &mut self,
        coll: &str,
        filter: Document,
        sort: Option<Document>,
        limit: i64,
    ) -> Result<Vec<Document>> {
        let c = self.coll(coll);
        let mut f = c.find(filter);
        if let Some(s) = sort {
            f = f.sort(s);
        }
        if limit > 0 {
            f = f.limit(limit);
        }
        let mut cursor = f.session(&mut *self.session).await?;
        let mut out = Vec::new();
        let mut stream = cursor.stream(&mut *self.session);
        while let Some(d) = stream.next().await {
            out.push(d?);
        }
        Ok(out)
    }

    /// Every document `pipeline` yields over `coll`, in the session.
    pub async fn aggregate(&mut self, coll: &str, pipeline: Vec<Document>) -> Result<Vec<Document>> {
        let mut cursor = self.coll(coll).aggregate(pipeline).session(&mut *self.session).await?;
        let mut out = Vec::new();
        while let Some(d) = cursor.next(&mut *self.session).await {
            out.push(d?);
        }
        Ok(out)
    }

    pub async fn find_one(&mut self, coll: &str, filter: Document, sort: Option<Document>) -> Result<Option<Document>> {
        let c = self.coll(coll);
        let mut f = c.find_one(filter);
        if let Some(s) = sort {
            f = f.sort(s);
        }
        Ok(f.session(&mut *self.session).await?)
    }

    pub async fn count(&mut self, coll: &str, filter: Document) -> Result<u64> {
        Ok(self.coll(coll).count_documents(filter).session(&mut *self.session).await?)
    }

    pub async fn insert(&mut self, coll: &str, d: Document) -> Result<()> {
        self.coll(coll).insert_one(d).session(&mut *self.session).await?;
        Ok(())
    }

    /// Updates one document; returns whether one matched.
    pub async fn update(&mut self, coll: &str, filter: Document, update: Document) -> Result<bool> {
        Ok(self.coll(coll).update_one(filter, update).session(&mut *self.session).await?.matched_count > 0)
    }

    /// Updates one document, inserting it when none matches.
    pub async fn upsert(&mut self, coll: &str, filter: Document, update: Document) -> Result<()> {
        self.coll(coll).update_one(filter, update).upsert(true).session(&mut *self.session).await?;
        Ok(())
    }

    pub async fn update_many(&mut self, coll: &str, filter: Document, update: Document) -> Result<u64> {
        Ok(self.coll(coll).update_many(filter, update).session(&mut *self.session).await?.modified_count)
    }

    pub async fn delete(&mut self, coll: &str, filter: Document) -> Result<u64> {
        Ok(self.coll(coll).delete_many(filter).session(&mut *self.session).await?.deleted_count)
    }

    /// Takes `n` numbers from the counter `name` (outside any transaction:
    /// numbers are never handed out twice, and gaps are harmless); returns
    /// the first.
    pub async fn take_numbers(db: &Database, name: &str, n: i64) -> Result<i64> {
        let d = db
            .collection::<Document>(COUNTERS)
            .find_one_and_update(mongodb::bson::doc! { "_id": name }, mongodb::bson::doc! { "$inc": { "n": n } })
            .upsert(true)
            .return_document(mongodb::options::ReturnDocument::After)
            .await?
            .ok_or_else(|| crate::error::Error::internal(format!("the counter {name} vanished")))?;
        Ok(int(d.get("n")).unwrap_or(n) - n + 1)
    }
}

/// An integer field (Int64, Int32, or an integral Double).
pub fn int(b: Option<&Bson>) -> Option<i64> {
    match b? {
        Bson::Int64(v) => Some(*v),
        Bson::Int32(v) => Some(i64::from(*v)),
        Bson::Double(v) if v.fract() == 0.0 => Some(*v as i64),
        _ => None,
    }
}

/// A required integer field.
pub fn req_int(d: &Document, k: &str) -> Result<i64> {
    int(d.get(k)).ok_or_else(|| crate::error::Error::internal(format!("stored document: {k} is not an integer")))
}

/// A required string field.
pub fn req_str<'a>(d: &'a Document, k: &str) -> Result<&'a str> {
    d.get_str(k).map_err(|e| crate::error::Error::internal(format!("stored document: {k}: {e}")))
}

/// An optional string field.
pub fn opt_str<'a>(d: &'a Document, k: &str) -> Option<&'a str> {
    d.get(k).and_then(Bson::as_str)
}
