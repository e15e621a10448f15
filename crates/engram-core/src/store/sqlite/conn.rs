//! [`Reads`] and [`Tx`] on one SQLite connection: each method is one or two
//! statements from the per-table modules. The writer runs a [`Tx`] inside its
//! group commit; readers run [`Reads`] on a pooled read-only connection.

use rusqlite::Connection;

use super::{changes, jobs, keys, memories, scans, sessions, vectors};
use crate::error::Result;
use crate::model::session::Turn;
use crate::model::{Namespace, Tier};
use crate::store::{JobRow, KeyRow, PendingText, Reads, SessionRow, StoreEvent, Stored, TenantModel, Tx};
use crate::time::Millis;

/// A connection seen through the storage contract.
pub struct Conn<'a> {
    c: &'a Connection,
    /// Whether a write may have changed what the vector index holds.
    pub(super) vectors_touched: bool,
    /// Whether a write may have changed what the keyword index holds.
    pub(super) keywords_touched: bool,
    /// Events to deliver once the write commits.
    pub(super) events: Vec<StoreEvent>,
    journal: Vec<crate::audit::Journaled>,
}

impl<'a> Conn<'a> {
    pub fn new(c: &'a Connection) -> Self {
        Conn { c, vectors_touched: false, keywords_touched: false, events: Vec::new(), journal: Vec::new() }
    }
}

impl Reads for Conn<'_> {
    fn memory_by_id(&mut self, tenant: &str, id: &str) -> Result<Option<Stored>> {
        memories::by_id(self.c, tenant, id)
    }
    fn memory_by_key(&mut self, tenant: &str, namespace: &Namespace, key: &str) -> Result<Option<Stored>> {
        memories::by_key(self.c, tenant, namespace, key)
    }
    fn memory_by_seq(&mut self, seq: i64) -> Result<Option<Stored>> {
        memories::by_seq(self.c, seq)
    }
    fn memories_by_text_hash(&mut self, tenant: &str, namespace: &Namespace, hash: i64) -> Result<Vec<Stored>> {
        memories::by_text_hash(self.c, tenant, namespace, hash)
    }
    fn merged_into(&mut self, tenant: &str, id: &str) -> Result<Option<String>> {
        memories::merged_into(self.c, tenant, id)
    }
    fn most_salient(&mut self, tier: Tier, min: f64, limit: usize) -> Result<Vec<Stored>> {
        memories::most_salient(self.c, tier, min, limit)
    }
    fn salience_due(&mut self, before: Millis, limit: usize) -> Result<Vec<Stored>> {
        memories::salience_due(self.c, before, limit)
    }
    fn expired_memories(&mut self, at: Millis, limit: usize) -> Result<Vec<i64>> {
        memories::expired(self.c, at, limit)
    }
    fn session(&mut self, tenant: &str, id: &str) -> Result<Option<SessionRow>> {
        sessions::get(self.c, tenant, id)
    }
    fn turns(&mut self, tenant: &str, session: &str, from: i64, to: i64) -> Result<Vec<Turn>> {
        sessions::turns(self.c, tenant, session, from, to)
    }
    fn expired_sessions(&mut self, at: Millis, limit: usize) -> Result<Vec<(String, String)>> {
        sessions::expired(self.c, at, limit)
    }
    fn job(&mut self, id: i64) -> Result<Option<JobRow>> {
        jobs::get(self.c, id)
    }
    fn due_jobs(&mut self, kind: &str, at: Millis, limit: usize) -> Result<Vec<JobRow>> {
        jobs::due(self.c, kind, at, limit)
    }
    fn key_by_hash(&mut self, hash: &[u8; 32]) -> Result<Option<KeyRow>> {
        keys::by_hash(self.c, hash)
    }
    fn keys(&mut self, tenant: Option<&str>) -> Result<Vec<KeyRow>> {
        keys::list(self.c, tenant)
    }
    fn any_key(&mut self) -> Result<bool> {
        keys::any(self.c)
    }
    fn change_rows(
        &mut self,
        tenant: Option<&str>,
        after: Option<&(String, String, i64)>,
        limit: usize,
    ) -> Result<Vec<crate::audit::ChangeRow>> {
        changes::page(self.c, tenant, after, limit)
    }
    fn change_heads(&mut self, tenant: Option<&str>) -> Result<Vec<crate::audit::ChainHead>> {
        changes::heads(self.c, tenant)
    }
    fn changes_since(
        &mut self,
        tenant: &str,
        after: (i64, i64),
        limit: usize,
    ) -> Result<Vec<((i64, i64), crate::audit::ChangeRow)>> {
        changes::since(self.c, tenant, after, limit)
    }
    fn changes_tail(&mut self) -> Result<(i64, i64)> {
        changes::tail(self.c)
    }
    fn queue_depths(&mut self) -> Result<(u64, u64)> {
        let q = "SELECT (SELECT COUNT(*) FROM embed_queue), (SELECT COUNT(*) FROM jobs)";
        Ok(self.c.query_row(q, [], |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)))?)
    }
    fn tenant_model(&mut self, tenant: &str) -> Result<Option<TenantModel>> {
        vectors::tenant_model(self.c, tenant)
    }
    fn tenants(&mut self) -> Result<Vec<String>> {
        vectors::tenants(self.c)
    }
    fn pending_embeddings(&mut self, at: Millis, limit: usize, exclude: &[String]) -> Result<Vec<PendingText>> {
        vectors::pending_batch(self.c, at, limit, exclude)
    }
    fn pending_count(&mut self, tenant: &str, prefix: &Namespace) -> Result<u64> {
        vectors::pending_count(self.c, tenant, prefix)
    }
    fn vector(&mut self, seq: i64) -> Result<Option<Vec<f32>>> {
        vectors::vector(self.c, seq)
    }
    fn vectors_since(&mut self, tenant: &str, namespace: &Namespace, mark: i64) -> Result<Vec<(i64, Vec<f32>)>> {
        vectors::vectors_since(self.c, tenant, namespace, mark)
    }
    fn memories_after(&mut self, tenant: Option<&str>, after: i64, limit: usize) -> Result<Vec<Stored>> {
        scans::memories_after(self.c, tenant, after, limit)
    }
    fn vectors_of(&mut self, seqs: &[i64]) -> Result<Vec<(i64, Vec<f32>)>> {
        scans::vectors_of(self.c, seqs)
    }
    fn sessions_after(
        &mut self,
        tenant: Option<&str>,
        after: Option<(String, String)>,
        limit: usize,
    ) -> Result<Vec<SessionRow>> {
        scans::sessions_after(self.c, tenant, after, limit)
    }
    fn jobs_after(&mut self, tenant: Option<&str>, after: i64, limit: usize) -> Result<Vec<JobRow>> {
        scans::jobs_after(self.c, tenant, after, limit)
    }
    fn merges(&mut self, tenant: Option<&str>) -> Result<Vec<(String, String, String, Millis)>> {
        scans::merges(self.c, tenant)
    }
    fn tenant_models(&mut self, tenant: Option<&str>) -> Result<Vec<(String, TenantModel, Millis)>> {
        scans::tenant_models(self.c, tenant)
    }
}

impl Tx for Conn<'_> {
    fn insert_memory(&mut self, m: &Stored) -> Result<i64> {
        self.keywords_touched = true;
        memories::insert(self.c, m)
    }
    fn update_memory(&mut self, m: &Stored) -> Result<()> {
        // A tier or key change moves the vector in the index's catalogue.
        self.vectors_touched = true;
        self.keywords_touched = true;
        memories::update(self.c, m)
    }
    fn delete_memory(&mut self, seq: i64) -> Result<()> {
        self.vectors_touched = true;
        self.keywords_touched = true;
        memories::delete(self.c, seq)
    }
    fn set_salience(&mut self, seq: i64, salience: f64, at: Millis, cites: i64) -> Result<()> {
        memories::set_salience(self.c, seq, salience, at, cites)
    }
    fn set_expiry(&mut self, seq: i64, expires_at: Option<Millis>) -> Result<()> {
        memories::set_expiry(self.c, seq, expires_at)
    }
    fn record_merge(&mut self, tenant: &str, id: &str, survivor: &str, at: Millis) -> Result<()> {
        memories::record_merge(self.c, tenant, id, survivor, at)
    }
    fn forget_merges_into(&mut self, tenant: &str, survivor: &str) -> Result<()> {
        memories::forget_merges_into(self.c, tenant, survivor)
    }
    fn put_vector(&mut self, seq: i64, vector: &[f32]) -> Result<()> {
        self.vectors_touched = true;
        vectors::put_vector(self.c, seq, vector)
    }
    fn drop_vector(&mut self, seq: i64) -> Result<()> {
        self.vectors_touched = true;
        vectors::drop_vector(self.c, seq)
    }
    fn queue_embedding(&mut self, seq: i64, gen: i64) -> Result<()> {
        vectors::queue(self.c, seq, gen)
    }
    fn unqueue_embedding(&mut self, seq: i64, gen: i64) -> Result<bool> {
        vectors::unqueue(self.c, seq, gen)
    }
    fn lease_embeddings(&mut self, seqs: &[i64], until: Millis) -> Result<()> {
        vectors::lease(self.c, seqs, until)
    }
    fn requeue_tenant(&mut self, tenant: &str) -> Result<usize> {
        self.vectors_touched = true;
        vectors::requeue_tenant(self.c, tenant)
    }
    fn put_session(&mut self, s: &SessionRow) -> Result<()> {
        sessions::put(self.c, s)
    }
    fn delete_session(&mut self, tenant: &str, id: &str) -> Result<()> {
        sessions::delete(self.c, tenant, id)
    }
    fn insert_turns(&mut self, tenant: &str, session: &str, turns: &[Turn]) -> Result<()> {
        sessions::insert_turns(self.c, tenant, session, turns)
    }
    fn delete_turns_through(&mut self, tenant: &str, session: &str, through: i64) -> Result<()> {
        sessions::delete_turns_through(self.c, tenant, session, through)
    }
    fn insert_job(&mut self, job: &JobRow) -> Result<i64> {
        jobs::insert(self.c, job)
    }
    fn delete_job(&mut self, id: i64) -> Result<bool> {
        jobs::delete(self.c, id)
    }
    fn delete_jobs_of(&mut self, tenant: &str, kind: &str, subject: &str) -> Result<usize> {
        jobs::delete_of(self.c, tenant, kind, subject)
    }
    fn retry_job(&mut self, id: i64, error: &str, run_after: Millis) -> Result<()> {
        jobs::retry(self.c, id, error, run_after)
    }
    fn lease_job(&mut self, id: i64, until: Millis) -> Result<()> {
        jobs::lease(self.c, id, until)
    }
    fn insert_key(&mut self, key: &KeyRow) -> Result<()> {
        keys::insert(self.c, key)
    }
    fn revoke_key(&mut self, tenant: Option<&str>, id: &str, at: Millis) -> Result<bool> {
        keys::revoke(self.c, tenant, id, at)
    }
    fn record_tenant_model(&mut self, tenant: &str, model: &TenantModel, at: Millis) -> Result<TenantModel> {
        vectors::record_tenant_model(self.c, tenant, model, at)
    }
    fn forget_tenant_model(&mut self, tenant: &str) -> Result<()> {
        vectors::forget_tenant_model(self.c, tenant)
    }
    fn announce(&mut self, event: StoreEvent) -> Result<()> {
        self.events.push(event);
        Ok(())
    }
    fn journal(&mut self) -> &mut Vec<crate::audit::Journaled> {
        &mut self.journal
    }
    fn change_head(&mut self, tenant: &str, namespace: &str) -> Result<Option<crate::audit::Head>> {
        changes::head(self.c, tenant, namespace)
    }
    fn append_change(&mut self, row: &crate::audit::ChangeRow) -> Result<()> {
        changes::append(self.c, row)
    }
}
