//! [`Reads`] and [`Tx`] on one MongoDB session: a snapshot read, or a write
//! transaction holding its stripes (`stripes.rs`). The contract is
//! synchronous (the rules run on a blocking thread); each method runs its
//! statements to completion on the runtime's handle.

use mongodb::bson::{doc, Document};
use mongodb::{ClientSession, Database};
use tokio::runtime::Handle;

use super::ctx::{req_int, req_str, Ctx, EMBED_QUEUE, EVENTS, JOBS, MEMORIES, MERGES};
use super::{changes, memories, rows, stripes, vectors};
use crate::error::{Error, Result};
use crate::model::session::Turn;
use crate::model::{Namespace, Tier};
use crate::store::{JobRow, KeyRow, PendingText, Reads, SessionRow, StoreEvent, Stored, TenantModel, Tx};
use crate::time::Millis;

/// What a write transaction holds besides its session.
pub struct Held {
    /// The stripes it holds and the counter it took in each.
    pub stripes: Vec<(usize, i64)>,
    /// Its ticket: its journal rows are positioned `(ticket, i)`.
    pub ticket: i64,
    /// Row numbers for new memories.
    pub seqs: std::sync::Arc<super::Numbers>,
}

/// A session seen through the storage contract.
pub struct MongoConn<'a> {
    db: &'a Database,
    session: &'a mut ClientSession,
    rt: &'a Handle,
    held: Option<Held>,
    journal: Vec<crate::audit::Journaled>,
    next_ix: i64,
    /// Whether the write changed what the in-process indexes hold.
    pub touched: bool,
}

impl<'a> MongoConn<'a> {
    pub fn reader(db: &'a Database, session: &'a mut ClientSession, rt: &'a Handle) -> Self {
        MongoConn { db, session, rt, held: None, journal: Vec::new(), next_ix: 0, touched: false }
    }

    pub fn writer(db: &'a Database, session: &'a mut ClientSession, rt: &'a Handle, held: Held) -> Self {
        MongoConn { db, session, rt, held: Some(held), journal: Vec::new(), next_ix: 0, touched: false }
    }

    fn held(&self) -> Result<&Held> {
        self.held.as_ref().ok_or_else(|| Error::internal("a write through a read-only session"))
    }

    /// The change number this transaction took in the stripe of a place.
    fn change_of(held: &Held, tenant: &str, namespace: &str) -> Result<i64> {
        let s = stripes::stripe(tenant, namespace);
        held.stripes.iter().find(|(h, _)| *h == s).map(|(_, n)| *n).ok_or_else(|| {
            Error::internal(format!("a write to {tenant}/{namespace} outside the places its write scope named"))
        })
    }
}

/// Runs `$body` with `$c` the session's [`Ctx`], to completion.
macro_rules! on {
    ($self:ident, |$c:ident| $body:expr) => {{
        let mut ctx = Ctx { db: $self.db, session: &mut *$self.session };
        let $c = &mut ctx;
        $self.rt.block_on(async move { $body })
    }};
}

impl Reads for MongoConn<'_> {
    fn memory_by_id(&mut self, tenant: &str, id: &str) -> Result<Option<Stored>> {
        on!(self, |c| memories::by_id(c, tenant, id).await)
    }
    fn memory_by_key(&mut self, tenant: &str, namespace: &Namespace, key: &str) -> Result<Option<Stored>> {
        on!(self, |c| memories::by_key(c, tenant, namespace, key).await)
    }
    fn memory_by_seq(&mut self, seq: i64) -> Result<Option<Stored>> {
        on!(self, |c| memories::by_seq(c, seq).await)
    }
    fn memories_by_text_hash(&mut self, tenant: &str, namespace: &Namespace, hash: i64) -> Result<Vec<Stored>> {
        on!(self, |c| memories::by_text_hash(c, tenant, namespace, hash).await)
    }
    fn merged_into(&mut self, tenant: &str, id: &str) -> Result<Option<String>> {
        on!(self, |c| memories::merged_into(c, tenant, id).await)
    }
    fn most_salient(&mut self, tier: Tier, min: f64, limit: usize) -> Result<Vec<Stored>> {
        on!(self, |c| memories::most_salient(c, tier, min, limit).await)
    }
    fn salience_due(&mut self, before: Millis, limit: usize) -> Result<Vec<Stored>> {
        on!(self, |c| memories::salience_due(c, before, limit).await)
    }
    fn expired_memories(&mut self, at: Millis, limit: usize) -> Result<Vec<i64>> {
        on!(self, |c| memories::expired(c, at, limit).await)
    }
    fn session(&mut self, tenant: &str, id: &str) -> Result<Option<SessionRow>> {
        on!(self, |c| rows::session(c, tenant, id).await)
    }
    fn turns(&mut self, tenant: &str, session: &str, from: i64, to: i64) -> Result<Vec<Turn>> {
        on!(self, |c| rows::turns(c, tenant, session, from, to).await)
    }
    fn expired_sessions(&mut self, at: Millis, limit: usize) -> Result<Vec<(String, String)>> {
        on!(self, |c| rows::expired_sessions(c, at, limit).await)
    }
    fn job(&mut self, id: i64) -> Result<Option<JobRow>> {
        on!(self, |c| rows::job(c, id).await)
    }
    fn due_jobs(&mut self, kind: &str, at: Millis, limit: usize) -> Result<Vec<JobRow>> {
        on!(self, |c| rows::due_jobs(c, kind, at, limit).await)
    }
    fn key_by_hash(&mut self, hash: &[u8; 32]) -> Result<Option<KeyRow>> {
        on!(self, |c| rows::key_by_hash(c, hash).await)
    }
    fn keys(&mut self, tenant: Option<&str>) -> Result<Vec<KeyRow>> {
        on!(self, |c| rows::keys(c, tenant).await)
    }
    fn any_key(&mut self) -> Result<bool> {
        on!(self, |c| rows::any_key(c).await)
    }
    fn tenant_model(&mut self, tenant: &str) -> Result<Option<TenantModel>> {
        on!(self, |c| vectors::tenant_model(c, tenant).await)
    }
    fn change_rows(
        &mut self,
        tenant: Option<&str>,
        after: Option<&(String, String, i64)>,
        limit: usize,
    ) -> Result<Vec<crate::audit::ChangeRow>> {
        on!(self, |c| changes::page(c, tenant, after, limit).await)
    }
    fn change_heads(&mut self, tenant: Option<&str>) -> Result<Vec<crate::audit::ChainHead>> {
        on!(self, |c| changes::heads(c, tenant).await)
    }
    fn changes_since(
        &mut self,
        tenant: &str,
        after: (i64, i64),
        limit: usize,
    ) -> Result<Vec<((i64, i64), crate::audit::ChangeRow)>> {
        on!(self, |c| {
            let xmin = super::tickets::xmin(c).await?;
            changes::since(c, tenant, after, xmin, limit).await
        })
    }
    fn changes_tail(&mut self) -> Result<(i64, i64)> {
        on!(self, |c| Ok((super::tickets::xmin(c).await? - 1, i64::MAX)))
    }
    fn queue_depths(&mut self) -> Result<(u64, u64)> {
        on!(self, |c| Ok((c.count(EMBED_QUEUE, doc! {}).await?, c.count(JOBS, doc! {}).await?)))
    }
    fn tenants(&mut self) -> Result<Vec<String>> {
        on!(self, |c| vectors::tenants(c).await)
    }
    fn pending_embeddings(&mut self, at: Millis, limit: usize, exclude: &[String]) -> Result<Vec<PendingText>> {
        on!(self, |c| vectors::pending(c, at, limit, exclude).await)
    }
    fn pending_count(&mut self, tenant: &str, prefix: &Namespace) -> Result<u64> {
        on!(self, |c| vectors::pending_count(c, tenant, prefix).await)
    }
    fn vector(&mut self, seq: i64) -> Result<Option<Vec<f32>>> {
        on!(self, |c| vectors::vector(c, seq).await)
    }
    fn vectors_since(&mut self, tenant: &str, namespace: &Namespace, mark: i64) -> Result<Vec<(i64, Vec<f32>)>> {
        on!(self, |c| vectors::since(c, tenant, namespace, mark).await)
    }
    fn memories_after(&mut self, tenant: Option<&str>, after: i64, limit: usize) -> Result<Vec<Stored>> {
        on!(self, |c| {
            let mut f = doc! { "_id": { "$gt": after } };
            if let Some(t) = tenant {
                f.insert("tenant_id", t);
            }
            let docs = c.find(MEMORIES, f, Some(doc! { "_id": 1 }), limit as i64).await?;
            docs.iter().map(super::docs::stored).collect()
        })
    }
    fn vectors_of(&mut self, seqs: &[i64]) -> Result<Vec<(i64, Vec<f32>)>> {
        on!(self, |c| vectors::of(c, seqs).await)
    }
    fn sessions_after(
        &mut self,
        tenant: Option<&str>,
        after: Option<(String, String)>,
        limit: usize,
    ) -> Result<Vec<SessionRow>> {
        on!(self, |c| rows::sessions_after(c, tenant, after, limit).await)
    }
    fn jobs_after(&mut self, tenant: Option<&str>, after: i64, limit: usize) -> Result<Vec<JobRow>> {
        on!(self, |c| rows::jobs_after(c, tenant, after, limit).await)
    }
    fn merges(&mut self, tenant: Option<&str>) -> Result<Vec<(String, String, String, Millis)>> {
        on!(self, |c| {
            let f = tenant.map_or_else(Document::new, |t| doc! { "tenant_id": t });
            let docs = c.find(MERGES, f, Some(doc! { "tenant_id": 1, "id": 1 }), 0).await?;
            docs.iter()
                .map(|d| {
                    Ok((
                        req_str(d, "tenant_id")?.to_owned(),
                        req_str(d, "id")?.to_owned(),
                        req_str(d, "survivor_id")?.to_owned(),
                        req_int(d, "merged_at")?,
                    ))
                })
                .collect()
        })
    }
    fn tenant_models(&mut self, tenant: Option<&str>) -> Result<Vec<(String, TenantModel, Millis)>> {
        on!(self, |c| vectors::tenant_models(c, tenant).await)
    }
}

impl Tx for MongoConn<'_> {
    fn insert_memory(&mut self, m: &Stored) -> Result<i64> {
        let numbers = std::sync::Arc::clone(&self.held()?.seqs);
        let seq = self.rt.block_on(numbers.next(self.db))?;
        let s = Stored { seq, ..m.clone() };
        self.touched = true;
        on!(self, |c| memories::insert(c, &s).await)?;
        Ok(seq)
    }
    fn update_memory(&mut self, m: &Stored) -> Result<()> {
        self.touched = true;
        on!(self, |c| memories::update(c, m).await)
    }
    fn delete_memory(&mut self, seq: i64) -> Result<()> {
        self.touched = true;
        on!(self, |c| {
            memories::delete(c, seq).await?;
            vectors::drop(c, seq).await
        })
    }
    fn set_salience(&mut self, seq: i64, salience: f64, at: Millis, cites: i64) -> Result<()> {
        on!(self, |c| memories::set_salience(c, seq, salience, at, cites).await)
    }
    fn set_expiry(&mut self, seq: i64, expires_at: Option<Millis>) -> Result<()> {
        on!(self, |c| memories::set_expiry(c, seq, expires_at).await)
    }
    fn record_merge(&mut self, tenant: &str, id: &str, survivor: &str, at: Millis) -> Result<()> {
        on!(self, |c| memories::record_merge(c, tenant, id, survivor, at).await)
    }
    fn forget_merges_into(&mut self, tenant: &str, survivor: &str) -> Result<()> {
        on!(self, |c| memories::forget_merges_into(c, tenant, survivor).await)
    }
    fn put_vector(&mut self, seq: i64, vector: &[f32]) -> Result<()> {
        self.touched = true;
        let held = self.held.take();
        let out = match &held {
            Some(h) => on!(self, |c| vectors::put(c, seq, vector, |t, ns| Self::change_of(h, t, ns)).await),
            None => Err(Error::internal("a write through a read-only session")),
        };
        self.held = held;
        out
    }
    fn drop_vector(&mut self, seq: i64) -> Result<()> {
        self.touched = true;
        on!(self, |c| vectors::drop(c, seq).await)
    }
    fn queue_embedding(&mut self, seq: i64, gen: i64) -> Result<()> {
        on!(self, |c| vectors::queue(c, seq, gen).await)
    }
    fn unqueue_embedding(&mut self, seq: i64, gen: i64) -> Result<bool> {
        on!(self, |c| vectors::unqueue(c, seq, gen).await)
    }
    fn lease_embeddings(&mut self, seqs: &[i64], until: Millis) -> Result<()> {
        on!(self, |c| vectors::lease(c, seqs, until).await)
    }
    fn requeue_tenant(&mut self, tenant: &str) -> Result<usize> {
        self.touched = true;
        on!(self, |c| vectors::requeue_tenant(c, tenant).await)
    }
    fn put_session(&mut self, s: &SessionRow) -> Result<()> {
        on!(self, |c| rows::put_session(c, s).await)
    }
    fn delete_session(&mut self, tenant: &str, id: &str) -> Result<()> {
        on!(self, |c| rows::delete_session(c, tenant, id).await)
    }
    fn insert_turns(&mut self, tenant: &str, session: &str, turns: &[Turn]) -> Result<()> {
        on!(self, |c| rows::insert_turns(c, tenant, session, turns).await)
    }
    fn delete_turns_through(&mut self, tenant: &str, session: &str, through: i64) -> Result<()> {
        on!(self, |c| rows::delete_turns_through(c, tenant, session, through).await)
    }
    fn insert_job(&mut self, job: &JobRow) -> Result<i64> {
        let id = self.rt.block_on(Ctx::take_numbers(self.db, JOBS, 1))?;
        on!(self, |c| rows::insert_job(c, id, job).await)?;
        Ok(id)
    }
    fn delete_job(&mut self, id: i64) -> Result<bool> {
        on!(self, |c| rows::delete_job(c, id).await)
    }
    fn delete_jobs_of(&mut self, tenant: &str, kind: &str, subject: &str) -> Result<usize> {
        on!(self, |c| rows::delete_jobs_of(c, tenant, kind, subject).await)
    }
    fn retry_job(&mut self, id: i64, error: &str, run_after: Millis) -> Result<()> {
        on!(self, |c| rows::retry_job(c, id, error, run_after).await)
    }
    fn lease_job(&mut self, id: i64, until: Millis) -> Result<()> {
        on!(self, |c| rows::lease_job(c, id, until).await)
    }
    fn insert_key(&mut self, key: &KeyRow) -> Result<()> {
        on!(self, |c| rows::insert_key(c, key).await)
    }
    fn revoke_key(&mut self, tenant: Option<&str>, id: &str, at: Millis) -> Result<bool> {
        on!(self, |c| rows::revoke_key(c, tenant, id, at).await)
    }
    fn record_tenant_model(&mut self, tenant: &str, model: &TenantModel, at: Millis) -> Result<TenantModel> {
        on!(self, |c| vectors::record_tenant_model(c, tenant, model, at).await)
    }
    fn forget_tenant_model(&mut self, tenant: &str) -> Result<()> {
        on!(self, |c| vectors::forget_tenant_model(c, tenant).await)
    }
    fn announce(&mut self, event: StoreEvent) -> Result<()> {
        // Delivered to every node by its change stream once this commits.
        let d = doc! { "payload": event.encode(), "at": mongodb::bson::DateTime::now() };
        on!(self, |c| c.insert(EVENTS, d).await)
    }
    fn journal(&mut self) -> &mut Vec<crate::audit::Journaled> {
        &mut self.journal
    }
    fn change_head(&mut self, tenant: &str, namespace: &str) -> Result<Option<crate::audit::Head>> {
        on!(self, |c| changes::head(c, tenant, namespace).await)
    }
    fn append_change(&mut self, row: &crate::audit::ChangeRow) -> Result<()> {
        let pos = (self.held()?.ticket, self.next_ix);
        self.next_ix += 1;
        on!(self, |c| changes::append(c, row, pos).await)
    }
}
