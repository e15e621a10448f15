//! Storage: the [`Store`] enum over the backends, and the backend-neutral
//! query and result types its methods take and return.
//!
//! `Store` is a closed enum so every backend is visible in one `match`. Today it
//! has the embedded SQLite backend; PostgreSQL + pgvector joins it as a variant.
//! Every method takes the tenant explicitly and every query is scoped by it.

pub mod sqlite;

use std::collections::HashMap;

use crate::auth::Scopes;
use crate::error::Result;
use crate::filter::Filter;
use crate::distill::DistillTurn;
use crate::model::session::{NewTurn, Session};
use crate::model::{Memory, MemoryPatch, Namespace, NewMemory, Tier, WriteStatus};
use crate::time::Millis;

pub use sqlite::{Promotion, SqliteOptions, SqliteStore, Synchronous, VectorOptions};

/// A memory waiting for its embedding.
#[derive(Debug, Clone)]
pub struct PendingText {
    pub seq: i64,
    /// The memory's version when queued (see `embed_queue.gen`).
    pub gen: i64,
    pub tenant: String,
    pub text: String,
}

/// The embedding model a tenant's vectors were made with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantModel {
    pub model: String,
    pub dims: usize,
}

/// A keyword (or filter-only) search.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    pub tenant: String,
    /// Words to match; `None` lists by filter alone, newest first.
    pub text: Option<String>,
    pub namespace_prefix: Namespace,
    /// Empty means every tier.
    pub tiers: Vec<Tier>,
    pub filter: Option<Filter>,
    /// Only memories with a key (the LangGraph store's view).
    pub items_only: bool,
    pub limit: usize,
    pub offset: usize,
    pub now: Millis,
}

/// A page of a namespace listing.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub tenant: String,
    pub namespace_prefix: Namespace,
    pub tier: Option<Tier>,
    /// Resume after this id (exclusive).
    pub after_id: Option<String>,
    pub limit: usize,
    pub now: Millis,
}

/// LangGraph's `list_namespaces`.
#[derive(Debug, Clone)]
pub struct NamespaceQuery {
    pub tenant: String,
    pub prefix: Namespace,
    pub suffix: Vec<String>,
    pub max_depth: Option<usize>,
    pub limit: usize,
    pub offset: usize,
    pub now: Millis,
}

/// A search candidate: the backend's row number for a memory (it joins keyword
/// and vector hits) and a score, higher is better (BM25 or cosine).
pub type Hit = (i64, f64);

/// The inputs of a memory's recency and salience boosts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankFacts {
    pub updated_at: Millis,
    pub salience: f64,
}

/// Candidates expanded for ranking (see [`Store::expand`]).
#[derive(Debug, Clone, Default)]
pub struct Expansion {
    /// Every candidate and neighbour found, by `seq`.
    pub facts: HashMap<i64, RankFacts>,
    /// `(candidate, neighbour)` pairs.
    pub adjacent: Vec<(i64, i64)>,
}

/// Turns to append to a session (see [`Store::append_turns`]).
#[derive(Debug, Clone)]
pub struct AppendTurns {
    pub tenant: String,
    pub session_id: String,
    /// Where the session's memories go; fixed by the first append (default
    /// `sessions/<id>`), and a different one later is a conflict.
    pub namespace: Option<Namespace>,
    pub turns: Vec<NewTurn>,
    pub now: Millis,
    /// Idle time to live, restarted by every append.
    pub ttl_ms: i64,
    /// Turns kept as working memory (`wm_max_turns`).
    pub window: usize,
    /// Turns per distillation (`distill_every`).
    pub distill_every: usize,
}

/// What an append did.
#[derive(Debug, Clone)]
pub struct Appended {
    pub namespace: Namespace,
    pub turn_count: i64,
    /// Turns not yet handed to distillation.
    pub pending_turns: i64,
    pub expires_at: Millis,
    /// The distillation this append queued, if it completed a stretch.
    pub queued_job: Option<i64>,
}

/// A queued distillation: the turns to distill and where their memories go.
#[derive(Debug, Clone)]
pub struct DistillJob {
    pub id: i64,
    pub tenant: String,
    pub session_id: String,
    pub namespace: Namespace,
    pub turns: Vec<DistillTurn>,
    /// Failed attempts so far.
    pub attempts: i64,
}

/// An API key as listed (never the secret).
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyInfo {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub scopes: String,
    #[serde(serialize_with = "crate::time::serde_rfc3339::serialize")]
    pub created_at: Millis,
    #[serde(serialize_with = "crate::time::serde_rfc3339::serialize_opt")]
    pub revoked_at: Option<Millis>,
}

/// A key found by its hash: who it belongs to and what it may do.
#[derive(Debug, Clone)]
pub struct KeyGrant {
    pub id: String,
    pub tenant: String,
    pub scopes: Scopes,
}

/// The storage backend.
pub enum Store {
    Sqlite(SqliteStore),
}

macro_rules! delegate {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match $self {
            Store::Sqlite(s) => s.$method($($arg),*).await,
        }
    };
}

impl Store {
    /// Writes a batch in one transaction; keyed memories that exist are updated.
    pub async fn put_memories(&self, tenant: &str, batch: Vec<NewMemory>, now: Millis) -> Result<Vec<(WriteStatus, Memory)>> {
        delegate!(self.put_memories(tenant, batch, now))
    }
    pub async fn get_memory(&self, tenant: &str, id: &str, now: Millis) -> Result<Option<Memory>> {
        delegate!(self.get_memory(tenant, id, now))
    }
    pub async fn get_by_key(&self, tenant: &str, ns: &Namespace, key: &str, now: Millis) -> Result<Option<Memory>> {
        delegate!(self.get_by_key(tenant, ns, key, now))
    }
    /// Applies `patch`; fails with `version_mismatch` if `if_version` is stale.
    pub async fn update_memory(&self, tenant: &str, id: &str, patch: MemoryPatch, if_version: Option<i64>, now: Millis) -> Result<Memory> {
        delegate!(self.update_memory(tenant, id, patch, if_version, now))
    }
    pub async fn delete_memory(&self, tenant: &str, id: &str, now: Millis) -> Result<bool> {
        delegate!(self.delete_memory(tenant, id, now))
    }
    pub async fn delete_by_key(&self, tenant: &str, ns: &Namespace, key: &str) -> Result<bool> {
        delegate!(self.delete_by_key(tenant, ns, key))
    }
    /// Pushes `expires_at` forward for memories with a TTL.
    pub async fn refresh_ttl(&self, tenant: &str, ids: Vec<String>, now: Millis) -> Result<()> {
        delegate!(self.refresh_ttl(tenant, ids, now))
    }
    pub async fn list_memories(&self, q: ListQuery) -> Result<Vec<Memory>> {
        delegate!(self.list_memories(q))
    }
    /// A search without a query: the scope's matches, newest first.
    pub async fn filter_listing(&self, q: SearchQuery) -> Result<Vec<Memory>> {
        delegate!(self.filter_listing(q))
    }
    /// The best `k` keyword (BM25) matches of `q.text` in the query's scope.
    pub async fn keyword_hits(&self, q: SearchQuery, k: usize) -> Result<Vec<Hit>> {
        delegate!(self.keyword_hits(q, k))
    }
    /// The nearest `k` memories to `vector` in the query's scope (score = cosine).
    pub async fn vector_hits(&self, q: SearchQuery, vector: Vec<f32>, k: usize) -> Result<Vec<Hit>> {
        delegate!(self.vector_hits(q, vector, k))
    }
    /// What ranking needs of the candidates `seqs` (in the query's scope) and,
    /// with `max_gap`, of their neighbours: the memories written just before and
    /// after each in its namespace, created at most `max_gap` apart and in scope.
    pub async fn expand(&self, q: SearchQuery, seqs: Vec<i64>, max_gap: Option<Millis>) -> Result<Expansion> {
        delegate!(self.expand(q, seqs, max_gap))
    }
    /// Loads those of `seqs` that are live and in the query's scope.
    pub async fn hydrate(&self, q: SearchQuery, seqs: Vec<i64>) -> Result<Vec<(i64, Memory)>> {
        delegate!(self.hydrate(q, seqs))
    }
    pub async fn list_namespaces(&self, q: NamespaceQuery) -> Result<Vec<Namespace>> {
        delegate!(self.list_namespaces(q))
    }
    /// Appends turns to a session (created on first use) in one transaction,
    /// queuing a distillation when `distill_every` turns are waiting.
    pub async fn append_turns(&self, a: AppendTurns) -> Result<Appended> {
        delegate!(self.append_turns(a))
    }
    /// A live session with its last `window` turns.
    pub async fn get_session(&self, tenant: &str, id: &str, window: usize, now: Millis) -> Result<Option<Session>> {
        delegate!(self.get_session(tenant, id, window, now))
    }
    /// Deletes a session, its turns and queued distillations; false if none was live.
    pub async fn delete_session(&self, tenant: &str, id: &str, now: Millis) -> Result<bool> {
        delegate!(self.delete_session(tenant, id, now))
    }
    /// Queues the turns of a live session not yet distilled (404 if none);
    /// the job, or `None` when every turn was already handed over.
    pub async fn queue_distillation(&self, tenant: &str, id: &str, now: Millis) -> Result<Option<i64>> {
        delegate!(self.queue_distillation(tenant, id, now))
    }
    /// Ends up to `batch` expired sessions (queuing their undistilled turns).
    pub async fn sweep_sessions(&self, now: Millis, batch: usize) -> Result<usize> {
        delegate!(self.sweep_sessions(now, batch))
    }
    /// Due distillation jobs, oldest first.
    pub async fn due_distill_jobs(&self, now: Millis, max: usize) -> Result<Vec<DistillJob>> {
        delegate!(self.due_distill_jobs(now, max))
    }
    /// A distillation job by id; `None` once done.
    pub async fn distill_job(&self, id: i64) -> Result<Option<DistillJob>> {
        delegate!(self.distill_job(id))
    }
    /// A session's running summary ("" when it has none or has ended).
    pub async fn session_summary(&self, tenant: &str, id: &str) -> Result<String> {
        delegate!(self.session_summary(tenant, id))
    }
    /// Deletes the job and writes its memories and the session summary in one
    /// transaction; `None` (and nothing written) if the job was already done.
    pub async fn finish_distill(&self, job: DistillJob, summary: String, batch: Vec<NewMemory>, now: Millis) -> Result<Option<Vec<(WriteStatus, Memory)>>> {
        delegate!(self.finish_distill(job, summary, batch, now))
    }
    /// Records a failed attempt of a job, to run again after `run_after`.
    pub async fn retry_job(&self, id: i64, error: String, run_after: Millis) -> Result<()> {
        delegate!(self.retry_job(id, error, run_after))
    }
    /// Moves up to `max` episodic memories with salience ≥ `threshold` to the
    /// semantic tier, merging each into a semantic near-duplicate if one exists.
    pub async fn promote(&self, threshold: f64, now: Millis, max: usize) -> Result<Promotion> {
        delegate!(self.promote(threshold, now, max))
    }
    /// Applies batched citations `(tenant, id, times)`; returns how many memories were found.
    pub async fn apply_citations(&self, cites: Vec<(String, String, u32)>, now: Millis) -> Result<usize> {
        delegate!(self.apply_citations(cites, now))
    }
    /// Decays the salience of up to `batch` memories not updated for a day.
    pub async fn decay_salience(&self, now: Millis, batch: usize) -> Result<usize> {
        delegate!(self.decay_salience(now, batch))
    }
    /// Deletes up to `batch` expired memories; returns how many.
    pub async fn sweep_expired(&self, now: Millis, batch: usize) -> Result<usize> {
        delegate!(self.sweep_expired(now, batch))
    }
    pub async fn create_key(&self, tenant: &str, name: &str, scopes: Scopes) -> Result<(KeyInfo, String)> {
        delegate!(self.create_key(tenant, name, scopes))
    }
    pub async fn list_keys(&self, tenant: Option<&str>) -> Result<Vec<KeyInfo>> {
        delegate!(self.list_keys(tenant))
    }
    pub async fn revoke_key(&self, id: &str) -> Result<bool> {
        delegate!(self.revoke_key(id))
    }
    /// Finds an unrevoked key by the SHA-256 of its secret.
    pub async fn find_key(&self, hash: [u8; 32]) -> Result<Option<KeyGrant>> {
        delegate!(self.find_key(hash))
    }
    /// Whether any unrevoked key exists (auth is on when one does).
    pub async fn has_keys(&self) -> Result<bool> {
        delegate!(self.has_keys())
    }
    /// Cosines between `vector` and the given memories (those with a vector).
    pub async fn cosines(&self, seqs: Vec<i64>, vector: Vec<f32>) -> Result<HashMap<i64, f64>> {
        delegate!(self.cosines(seqs, vector))
    }
    /// BM25 scores of the given memories for `text` (those that match).
    pub async fn keyword_scores(&self, text: &str, seqs: Vec<i64>) -> Result<HashMap<i64, f64>> {
        delegate!(self.keyword_scores(text, seqs))
    }
    /// Memories under `prefix` still waiting for an embedding.
    pub async fn pending_embeddings(&self, tenant: &str, prefix: &Namespace) -> Result<u64> {
        delegate!(self.pending_embeddings(tenant, prefix))
    }
    /// The oldest memories waiting for an embedding, except those of `exclude`d tenants.
    pub async fn take_pending(&self, max: usize, exclude: Vec<String>) -> Result<Vec<PendingText>> {
        delegate!(self.take_pending(max, exclude))
    }
    /// Stores computed embeddings `(seq, gen, vector)`; stale ones are dropped.
    pub async fn store_embeddings(&self, done: Vec<(i64, i64, Vec<f32>)>) -> Result<usize> {
        delegate!(self.store_embeddings(done))
    }
    /// How many of `seqs` still wait for an embedding.
    pub async fn still_queued(&self, seqs: Vec<i64>) -> Result<usize> {
        delegate!(self.still_queued(seqs))
    }
    pub async fn tenant_model(&self, tenant: &str) -> Result<Option<TenantModel>> {
        delegate!(self.tenant_model(tenant))
    }
    /// Records the tenant's model unless one is; returns the record.
    pub async fn record_tenant_model(&self, tenant: &str, model: TenantModel, now: Millis) -> Result<TenantModel> {
        delegate!(self.record_tenant_model(tenant, model, now))
    }
    /// Drops a tenant's vectors and model record and queues its memories again.
    pub async fn requeue_tenant(&self, tenant: &str) -> Result<usize> {
        delegate!(self.requeue_tenant(tenant))
    }
    /// Every tenant with memories.
    pub async fn tenants(&self) -> Result<Vec<String>> {
        delegate!(self.tenants())
    }
    /// Brings derived indexes (the SQLite vector index) up to date with the tables.
    pub async fn sync_indexes(&self) -> Result<()> {
        delegate!(self.sync_vectors())
    }
    /// The last vector change the index holds (changes when the index does).
    pub fn vector_watermark(&self) -> i64 {
        match self {
            Store::Sqlite(s) => s.vector_index().map(|i| i.applied()).unwrap_or(0),
        }
    }
    /// Saves derived indexes (the SQLite vector index) so a restart is quick.
    pub async fn save_indexes(&self) -> Result<()> {
        delegate!(self.save_vectors())
    }
    /// A cheap query that proves the store answers.
    pub async fn ping(&self) -> Result<()> {
        delegate!(self.ping())
    }
    /// Finishes queued writes and checkpoints; later writes fail with `unavailable`.
    pub async fn close(&self) {
        delegate!(self.close())
    }
}
