//! [`Reads`] and [`Tx`] on one PostgreSQL transaction. The contract is
//! synchronous (the rules run on a blocking thread); each method runs its
//! async statement to completion on the runtime's handle.

use deadpool_postgres::Transaction;
use tokio::runtime::Handle;

use super::{changes, jobs, keys, memories, scans, sessions, vectors};
use crate::error::Result;
use crate::model::session::Turn;
use crate::model::{Namespace, Tier};
use crate::store::{JobRow, KeyRow, PendingText, Reads, SessionRow, StoreEvent, Stored, TenantModel, Tx};
use crate::time::Millis;

/// A transaction seen through the storage contract.
pub struct PgConn<'a, 'c> {
    tx: &'a Transaction<'c>,
    rt: &'a Handle,
    journal: Vec<crate::audit::Journaled>,
}

impl<'a, 'c> PgConn<'a, 'c> {
    pub fn new(tx: &'a Transaction<'c>, rt: &'a Handle) -> Self {
        PgConn { tx, rt, journal: Vec::new() }
    }
}

impl Reads for PgConn<'_, '_> {
    fn memory_by_id(&mut self, tenant: &str, id: &str) -> Result<Option<Stored>> {
        self.rt.block_on(memories::by_id(self.tx, tenant, id))
    }
    fn memory_by_key(&mut self, tenant: &str, namespace: &Namespace, key: &str) -> Result<Option<Stored>> {
        self.rt.block_on(memories::by_key(self.tx, tenant, namespace, key))
    }
    fn memory_by_seq(&mut self, seq: i64) -> Result<Option<Stored>> {
        self.rt.block_on(memories::by_seq(self.tx, seq))
    }
    fn memories_by_text_hash(&mut self, tenant: &str, namespace: &Namespace, hash: i64) -> Result<Vec<Stored>> {
        self.rt.block_on(memories::by_text_hash(self.tx, tenant, namespace, hash))
    }
    fn merged_into(&mut self, tenant: &str, id: &str) -> Result<Option<String>> {
        self.rt.block_on(memories::merged_into(self.tx, tenant, id))
    }
    fn most_salient(&mut self, tier: Tier, min: f64, limit: usize) -> Result<Vec<Stored>> {
        self.rt.block_on(memories::most_salient(self.tx, tier, min, limit))
    }
    fn salience_due(&mut self, before: Millis, limit: usize) -> Result<Vec<Stored>> {
        self.rt.block_on(memories::salience_due(self.tx, before, limit))
    }
    fn expired_memories(&mut self, at: Millis, limit: usize) -> Result<Vec<i64>> {
        self.rt.block_on(memories::expired(self.tx, at, limit))
    }
    fn session(&mut self, tenant: &str, id: &str) -> Result<Option<SessionRow>> {
        self.rt.block_on(sessions::get(self.tx, tenant, id))
    }
    fn turns(&mut self, tenant: &str, session: &str, from: i64, to: i64) -> Result<Vec<Turn>> {
        self.rt.block_on(sessions::turns(self.tx, tenant, session, from, to))
    }
    fn expired_sessions(&mut self, at: Millis, limit: usize) -> Result<Vec<(String, String)>> {
        self.rt.block_on(sessions::expired(self.tx, at, limit))
    }
    fn job(&mut self, id: i64) -> Result<Option<JobRow>> {
        self.rt.block_on(jobs::get(self.tx, id))
    }
    fn due_jobs(&mut self, kind: &str, at: Millis, limit: usize) -> Result<Vec<JobRow>> {
        self.rt.block_on(jobs::due(self.tx, kind, at, limit))
    }
    fn key_by_hash(&mut self, hash: &[u8; 32]) -> Result<Option<KeyRow>> {
        self.rt.block_on(keys::by_hash(self.tx, hash))
    }
    fn keys(&mut self, tenant: Option<&str>) -> Result<Vec<KeyRow>> {
        self.rt.block_on(keys::list(self.tx, tenant))
    }
    fn any_key(&mut self) -> Result<bool> {
        self.rt.block_on(keys::any(self.tx))
    }
    fn change_rows(
        &mut self,
        tenant: Option<&str>,
        after: Option<&(String, String, i64)>,
        limit: usize,
    ) -> Result<Vec<crate::audit::ChangeRow>> {
        self.rt.block_on(changes::page(self.tx, tenant, after, limit))
    }
    fn change_heads(&mut self, tenant: Option<&str>) -> Result<Vec<crate::audit::ChainHead>> {
        self.rt.block_on(changes::heads(self.tx, tenant))
    }
    fn changes_since(
        &mut self,
        tenant: &str,
        after: (i64, i64),
        limit: usize,
    ) -> Result<Vec<((i64, i64), crate::audit::ChangeRow)>> {
        self.rt.block_on(changes::since(self.tx, tenant, after, limit))
    }
    fn changes_tail(&mut self) -> Result<(i64, i64)> {
        self.rt.block_on(changes::tail(self.tx))
    }
    fn queue_depths(&mut self) -> Result<(u64, u64)> {
        let q = "SELECT (SELECT count(*) FROM embed_queue), (SELECT count(*) FROM jobs)";
        let rows = self.rt.block_on(super::sql::query(self.tx, q, &[]))?;
        let r = rows.first().ok_or_else(|| crate::error::Error::internal("no row from a count"))?;
        let (a, b): (i64, i64) = (super::sql::col(r, 0)?, super::sql::col(r, 1)?);
        Ok((a as u64, b as u64))
    }
    fn tenant_model(&mut self, tenant: &str) -> Result<Option<TenantModel>> {
        self.rt.block_on(vectors::tenant_model(self.tx, tenant))
    }
    fn tenants(&mut self) -> Result<Vec<String>> {
        self.rt.block_on(vectors::tenants(self.tx))
    }
    fn pending_embeddings(&mut self, at: Millis, limit: usize, exclude: &[String]) -> Result<Vec<PendingText>> {
        self.rt.block_on(vectors::pending_batch(self.tx, at, limit, exclude))
    }
    fn pending_count(&mut self, tenant: &str, prefix: &Namespace) -> Result<u64> {
        self.rt.block_on(vectors::pending_count(self.tx, tenant, prefix))
    }
    fn vector(&mut self, seq: i64) -> Result<Option<Vec<f32>>> {
        self.rt.block_on(vectors::vector(self.tx, seq))
    }
    fn vectors_since(&mut self, tenant: &str, namespace: &Namespace, mark: i64) -> Result<Vec<(i64, Vec<f32>)>> {
        self.rt.block_on(vectors::vectors_since(self.tx, tenant, namespace, mark))
    }
    fn memories_after(&mut self, tenant: Option<&str>, after: i64, limit: usize) -> Result<Vec<Stored>> {
        self.rt.block_on(scans::memories_after(self.tx, tenant, after, limit))
    }
    fn vectors_of(&mut self, seqs: &[i64]) -> Result<Vec<(i64, Vec<f32>)>> {
        self.rt.block_on(scans::vectors_of(self.tx, seqs))
    }
    fn sessions_after(
        &mut self,
        tenant: Option<&str>,
        after: Option<(String, String)>,
        limit: usize,
    ) -> Result<Vec<SessionRow>> {
        self.rt.block_on(scans::sessions_after(self.tx, tenant, after, limit))
    }
    fn jobs_after(&mut self, tenant: Option<&str>, after: i64, limit: usize) -> Result<Vec<JobRow>> {
        self.rt.block_on(scans::jobs_after(self.tx, tenant, after, limit))
    }
    fn merges(&mut self, tenant: Option<&str>) -> Result<Vec<(String, String, String, Millis)>> {
        self.rt.block_on(scans::merges(self.tx, tenant))
    }
    fn tenant_models(&mut self, tenant: Option<&str>) -> Result<Vec<(String, TenantModel, Millis)>> {
        self.rt.block_on(scans::tenant_models(self.tx, tenant))
    }
}

impl Tx for PgConn<'_, '_> {
    fn insert_memory(&mut self, m: &Stored) -> Result<i64> {
        self.rt.block_on(memories::insert(self.tx, m))
    }
    fn update_memory(&mut self, m: &Stored) -> Result<()> {
        self.rt.block_on(memories::update(self.tx, m))
    }
    fn delete_memory(&mut self, seq: i64) -> Result<()> {
        self.rt.block_on(memories::delete(self.tx, seq))
    }
    fn set_salience(&mut self, seq: i64, salience: f64, at: Millis, cites: i64) -> Result<()> {
        self.rt.block_on(memories::set_salience(self.tx, seq, salience, at, cites))
    }
    fn set_expiry(&mut self, seq: i64, expires_at: Option<Millis>) -> Result<()> {
        self.rt.block_on(memories::set_expiry(self.tx, seq, expires_at))
    }
    fn record_merge(&mut self, tenant: &str, id: &str, survivor: &str, at: Millis) -> Result<()> {
        self.rt.block_on(memories::record_merge(self.tx, tenant, id, survivor, at))
    }
    fn forget_merges_into(&mut self, tenant: &str, survivor: &str) -> Result<()> {
        self.rt.block_on(memories::forget_merges_into(self.tx, tenant, survivor))
    }
    fn put_vector(&mut self, seq: i64, vector: &[f32]) -> Result<()> {
        self.rt.block_on(vectors::put_vector(self.tx, seq, vector))
    }
    fn drop_vector(&mut self, seq: i64) -> Result<()> {
        self.rt.block_on(vectors::drop_vector(self.tx, seq))
    }
    fn queue_embedding(&mut self, seq: i64, gen: i64) -> Result<()> {
        self.rt.block_on(vectors::queue(self.tx, seq, gen))
    }
    fn unqueue_embedding(&mut self, seq: i64, gen: i64) -> Result<bool> {
        self.rt.block_on(vectors::unqueue(self.tx, seq, gen))
    }
    fn lease_embeddings(&mut self, seqs: &[i64], until: Millis) -> Result<()> {
        self.rt.block_on(vectors::lease(self.tx, seqs, until))
    }
    fn requeue_tenant(&mut self, tenant: &str) -> Result<usize> {
        self.rt.block_on(vectors::requeue_tenant(self.tx, tenant))
    }
    fn put_session(&mut self, s: &SessionRow) -> Result<()> {
        self.rt.block_on(sessions::put(self.tx, s))
    }
    fn delete_session(&mut self, tenant: &str, id: &str) -> Result<()> {
        self.rt.block_on(sessions::delete(self.tx, tenant, id))
    }
    fn insert_turns(&mut self, tenant: &str, session: &str, turns: &[Turn]) -> Result<()> {
        self.rt.block_on(sessions::insert_turns(self.tx, tenant, session, turns))
    }
    fn delete_turns_through(&mut self, tenant: &str, session: &str, through: i64) -> Result<()> {
        self.rt.block_on(sessions::delete_turns_through(self.tx, tenant, session, through))
    }
    fn insert_job(&mut self, job: &JobRow) -> Result<i64> {
        self.rt.block_on(jobs::insert(self.tx, job))
    }
    fn delete_job(&mut self, id: i64) -> Result<bool> {
        self.rt.block_on(jobs::delete(self.tx, id))
    }
    fn delete_jobs_of(&mut self, tenant: &str, kind: &str, subject: &str) -> Result<usize> {
        self.rt.block_on(jobs::delete_of(self.tx, tenant, kind, subject))
    }
    fn retry_job(&mut self, id: i64, error: &str, run_after: Millis) -> Result<()> {
        self.rt.block_on(jobs::retry(self.tx, id, error, run_after))
    }
    fn lease_job(&mut self, id: i64, until: Millis) -> Result<()> {
        self.rt.block_on(jobs::lease(self.tx, id, until))
    }
    fn insert_key(&mut self, key: &KeyRow) -> Result<()> {
        self.rt.block_on(keys::insert(self.tx, key))
    }
    fn revoke_key(&mut self, tenant: Option<&str>, id: &str, at: Millis) -> Result<bool> {
        self.rt.block_on(keys::revoke(self.tx, tenant, id, at))
    }
    fn record_tenant_model(&mut self, tenant: &str, model: &TenantModel, at: Millis) -> Result<TenantModel> {
        self.rt.block_on(vectors::record_tenant_model(self.tx, tenant, model, at))
    }
    fn forget_tenant_model(&mut self, tenant: &str) -> Result<()> {
        self.rt.block_on(vectors::forget_tenant_model(self.tx, tenant))
    }
    fn announce(&mut self, event: StoreEvent) -> Result<()> {
        self.rt.block_on(super::events::notify(self.tx, &event))
    }
    fn journal(&mut self) -> &mut Vec<crate::audit::Journaled> {
        &mut self.journal
    }
    fn change_head(&mut self, tenant: &str, namespace: &str) -> Result<Option<crate::audit::Head>> {
        self.rt.block_on(changes::head(self.tx, tenant, namespace))
    }
    fn append_change(&mut self, row: &crate::audit::ChangeRow) -> Result<()> {
        self.rt.block_on(changes::append(self.tx, row))
    }
}
