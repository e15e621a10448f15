//! Storage: the contract a backend implements, and [`Store`], the closed enum
//! over the backends.
//!
//! A backend persists and looks up — rows, indexes, transactions — and decides
//! nothing. The rules (what a write does to a near-duplicate, when a session is
//! distilled, how salience decays, what "live" means) are in `crate::rules`,
//! written once against these traits:
//!
//! - [`Reads`]: point lookups, run on a consistent snapshot
//!   ([`Store::read`], [`Store::point`]) or inside a transaction;
//! - [`Tx`]: the writes, all inside one transaction ([`Store::write`]); the
//!   closure's effects commit together or not at all;
//! - the search methods of [`Store`] (keyword and vector candidates, their
//!   expansion and hydration), each restricted to a [`Scope`] *inside* the
//!   search. A scope must select exactly what [`Scope::admits`] admits — the
//!   reference semantics, checked differentially by the conformance suite.
//!
//! Every row belongs to a tenant, and every lookup is tenant-scoped except the
//! few cross-tenant ones the background jobs use (named so). Methods are
//! synchronous inside [`Reads`] and [`Tx`] (a backend runs them on a blocking
//! thread) and asynchronous on [`Store`].

pub mod common_terms;
pub mod mongo;
mod places;
pub mod postgres;
mod scoped;
pub mod sqlite;

use std::collections::HashMap;

use crate::audit::Actor;
use crate::auth::Scopes;
use crate::error::Result;
use crate::filter::Filter;
use crate::model::session::Turn;
use crate::model::{Memory, Namespace, Tier};
use crate::time::Millis;

pub use mongo::{check_url as check_mongo_url, MongoOptions, MongoStore};
pub use places::{IndexMark, Place, WriteScope};
pub use postgres::{check_url as check_postgres_url, PostgresOptions, PostgresStore};
pub use sqlite::{SqliteOptions, SqliteStore, Synchronous, VectorOptions};

/// A memory as stored: the record and what storage keeps beside it.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The backend's row number: stable for the row's life; index hits name it.
    pub seq: i64,
    pub tenant: String,
    pub memory: Memory,
    /// Fingerprint of the text for duplicate detection (`None`: no text).
    pub text_hash: Option<i64>,
    /// When the salience was last brought up to date (decay counts from here).
    pub salience_at: Millis,
    /// Times the memory was cited.
    pub cite_count: i64,
}

/// What a search, listing or hydration may return.
#[derive(Debug, Clone)]
pub struct Scope {
    pub tenant: String,
    /// Whole-segment prefix; empty means every namespace.
    pub namespace_prefix: Namespace,
    /// When not empty, only namespaces under one of these non-empty
    /// prefixes as well (a limited caller's grant: see `TenantCtx::confine`).
    pub within: Vec<Namespace>,
    /// Empty means every tier.
    pub tiers: Vec<Tier>,
    /// Only memories with a key (the LangGraph store's view).
    pub keyed_only: bool,
    pub filter: Option<Filter>,
    /// Only memories live at this instant (see `rules::liveness`).
    pub live_at: Millis,
}

impl Scope {
    /// Everything of `tenant` that is live at `now`.
    pub fn tenant(tenant: &str, now: Millis) -> Self {
        Scope {
            tenant: tenant.to_owned(),
            namespace_prefix: Namespace::default(),
            within: Vec::new(),
            tiers: Vec::new(),
            keyed_only: false,
            filter: None,
            live_at: now,
        }
    }

    /// The reference semantics of a scope: whether it admits `s`. Backends
    /// compile scopes to their own queries and must agree with this.
    pub fn admits(&self, s: &Stored) -> bool {
        let m = &s.memory;
        s.tenant == self.tenant
            && crate::rules::liveness::memory_live(m, self.live_at)
            && m.namespace.is_under(&self.namespace_prefix)
            && (self.within.is_empty() || self.within.iter().any(|p| m.namespace.is_under(p)))
            && (self.tiers.is_empty() || self.tiers.contains(&m.tier))
            && (!self.keyed_only || m.key.is_some())
            && self.filter.as_ref().is_none_or(|f| crate::filter::eval::matches(f, m))
    }
}

/// The order and page of a listing.
#[derive(Debug, Clone)]
pub enum Page {
    /// By id (creation order), after `after` (exclusive): stable cursors.
    ById { after: Option<String>, limit: usize },
    /// Most recently updated first, skipping `offset`.
    Newest { offset: usize, limit: usize },
}

/// A search candidate: the memory's `seq` and a score, higher is better
/// (BM25, or cosine similarity).
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
    /// Every candidate and neighbour found in scope, by `seq`.
    pub facts: HashMap<i64, RankFacts>,
    /// `(candidate, neighbour)` pairs.
    pub adjacent: Vec<(i64, i64)>,
}

/// A memory waiting for its embedding.
#[derive(Debug, Clone)]
pub struct PendingText {
    pub seq: i64,
    /// The memory's version when queued: an embedding of an older text is
    /// never stored for a newer one.
    pub gen: i64,
    pub tenant: String,
    pub namespace: Namespace,
    pub text: String,
}

/// The embedding model a tenant's vectors were made with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantModel {
    pub model: String,
    pub dims: usize,
}

/// A session's row (its turns are kept apart).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    pub tenant: String,
    pub id: String,
    pub namespace: Namespace,
    pub turn_count: i64,
    /// Turns `1..=distilled_through` are distilled or queued for it.
    pub distilled_through: i64,
    pub summary: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub expires_at: Millis,
}

/// A durable unit of background work.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub id: i64,
    /// What runs it (e.g. `distill`).
    pub kind: String,
    pub tenant: String,
    /// What it is about (e.g. a session id), for deleting a subject's work.
    pub subject: String,
    /// The job's input, encoded by its kind's rules.
    pub payload: String,
    /// Failed attempts so far.
    pub attempts: i64,
    pub run_after: Millis,
    pub created_at: Millis,
}

/// An API key as stored (only the SHA-256 of the secret).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRow {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub hash: [u8; 32],
    pub scopes: Scopes,
    pub created_at: Millis,
    pub revoked_at: Option<Millis>,
    /// The namespaces the key is limited to (`None`: all).
    pub namespaces: Option<crate::auth::NamespaceGrant>,
}

/// Events a slow listener may fall behind by before it must resync.
pub(crate) const EVENT_BUFFER: usize = 256;

/// A change other nodes' caches must hear of, announced inside the
/// transaction that makes it ([`Tx::announce`]) and delivered to every
/// node's [`Store::events`] once it commits (PostgreSQL: `NOTIFY`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreEvent {
    /// An API key was created or revoked.
    KeysChanged,
    /// A tenant's embedding-model record changed (`engram reembed`).
    TenantModelChanged { tenant: String },
    /// Events may have been missed (a lost connection, a slow listener):
    /// every cache of stored state should be dropped.
    Resync,
}

impl StoreEvent {
    /// The event as a `NOTIFY` payload.
    pub fn encode(&self) -> String {
        match self {
            StoreEvent::KeysChanged => "keys".into(),
            StoreEvent::TenantModelChanged { tenant } => format!("model:{tenant}"),
            StoreEvent::Resync => "resync".into(),
        }
    }

    /// Reads [`StoreEvent::encode`]'s payload (anything else is a resync).
    pub fn decode(payload: &str) -> Self {
        match payload {
            "keys" => StoreEvent::KeysChanged,
            p => match p.strip_prefix("model:") {
                Some(tenant) => StoreEvent::TenantModelChanged { tenant: tenant.to_owned() },
                None => StoreEvent::Resync,
            },
        }
    }
}

/// Point lookups. Inside a [`Tx`] they see the transaction's own writes.
pub trait Reads {
    /// A memory by id, live or not.
    fn memory_by_id(&mut self, tenant: &str, id: &str) -> Result<Option<Stored>>;
    /// A memory by namespace and key, live or not.
    fn memory_by_key(&mut self, tenant: &str, namespace: &Namespace, key: &str) -> Result<Option<Stored>>;
    /// A memory by row number (any tenant: callers check it).
    fn memory_by_seq(&mut self, seq: i64) -> Result<Option<Stored>>;
    /// Memories of a namespace with this text fingerprint, live or not.
    fn memories_by_text_hash(&mut self, tenant: &str, namespace: &Namespace, hash: i64) -> Result<Vec<Stored>>;
    /// The memory `id` was merged into, if it was.
    fn merged_into(&mut self, tenant: &str, id: &str) -> Result<Option<String>>;
    /// Across tenants: memories of `tier` with salience ≥ `min`, most salient
    /// first (live or not).
    fn most_salient(&mut self, tier: Tier, min: f64, limit: usize) -> Result<Vec<Stored>>;
    /// Across tenants: unpinned memories whose salience was brought up to
    /// date at or before `before`, oldest first.
    fn salience_due(&mut self, before: Millis, limit: usize) -> Result<Vec<Stored>>;
    /// Across tenants: row numbers of memories whose `expires_at` ≤ `at`.
    fn expired_memories(&mut self, at: Millis, limit: usize) -> Result<Vec<i64>>;

    fn session(&mut self, tenant: &str, id: &str) -> Result<Option<SessionRow>>;
    /// Turns `from..=to` of a session, in order.
    fn turns(&mut self, tenant: &str, session: &str, from: i64, to: i64) -> Result<Vec<Turn>>;
    /// Across tenants: `(tenant, id)` of sessions whose `expires_at` ≤ `at`.
    fn expired_sessions(&mut self, at: Millis, limit: usize) -> Result<Vec<(String, String)>>;

    fn job(&mut self, id: i64) -> Result<Option<JobRow>>;
    /// Jobs of `kind` with `run_after` ≤ `at`, oldest first.
    fn due_jobs(&mut self, kind: &str, at: Millis, limit: usize) -> Result<Vec<JobRow>>;

    /// An unrevoked key by the hash of its secret.
    fn key_by_hash(&mut self, hash: &[u8; 32]) -> Result<Option<KeyRow>>;
    /// Keys (revoked ones too), of one tenant or all.
    fn keys(&mut self, tenant: Option<&str>) -> Result<Vec<KeyRow>>;
    /// Whether any key was ever created (revoked ones count: once keys are
    /// in use, revoking the last one must not reopen dev mode).
    fn any_key(&mut self) -> Result<bool>;

    fn tenant_model(&mut self, tenant: &str) -> Result<Option<TenantModel>>;

    /// Up to `limit` change-journal rows (of `tenant`, or all) after
    /// `(tenant, namespace, seq)`, in chain order.
    fn change_rows(
        &mut self,
        tenant: Option<&str>,
        after: Option<&(String, String, i64)>,
        limit: usize,
    ) -> Result<Vec<crate::audit::ChangeRow>>;
    /// Every change chain's recorded head (of `tenant`, or all), in chain order.
    fn change_heads(&mut self, tenant: Option<&str>) -> Result<Vec<crate::audit::ChainHead>>;
    /// Up to `limit` of the tenant's change rows after position `after`, in
    /// commit order, each with its position; never a row that could still
    /// be followed by one committed earlier in that order.
    fn changes_since(
        &mut self,
        tenant: &str,
        after: (i64, i64),
        limit: usize,
    ) -> Result<Vec<((i64, i64), crate::audit::ChangeRow)>>;
    /// The position after which every change still to come will lie.
    fn changes_tail(&mut self) -> Result<(i64, i64)>;
    /// Work waiting across tenants: `(memories queued for embedding, jobs)`.
    fn queue_depths(&mut self) -> Result<(u64, u64)>;
    /// Every tenant that has memories.
    fn tenants(&mut self) -> Result<Vec<String>>;

    /// Across tenants: the oldest queued embeddings not leased at `at`,
    /// skipping `exclude`d tenants.
    fn pending_embeddings(&mut self, at: Millis, limit: usize, exclude: &[String]) -> Result<Vec<PendingText>>;
    /// How many memories of the tenant under `prefix` wait for an embedding.
    fn pending_count(&mut self, tenant: &str, prefix: &Namespace) -> Result<u64>;
    /// A memory's stored vector.
    fn vector(&mut self, seq: i64) -> Result<Option<Vec<f32>>>;
    /// The vectors of a namespace stored after `mark` (a value of
    /// [`Store::index_watermark`] taken before a [`Store::near`] lookup): the
    /// ones that lookup may not have seen, as `(seq, vector)`.
    fn vectors_since(&mut self, tenant: &str, namespace: &Namespace, mark: i64) -> Result<Vec<(i64, Vec<f32>)>>;

    /// Scans for export, in a stable order, `limit` at a time; `tenant`
    /// `None` means every tenant. Memories by `seq` after `after`.
    fn memories_after(&mut self, tenant: Option<&str>, after: i64, limit: usize) -> Result<Vec<Stored>>;
    /// The stored vectors of those of `seqs` that have one.
    fn vectors_of(&mut self, seqs: &[i64]) -> Result<Vec<(i64, Vec<f32>)>>;
    /// Sessions by `(tenant, id)` after `after`.
    fn sessions_after(
        &mut self,
        tenant: Option<&str>,
        after: Option<(String, String)>,
        limit: usize,
    ) -> Result<Vec<SessionRow>>;
    /// Jobs by id after `after`.
    fn jobs_after(&mut self, tenant: Option<&str>, after: i64, limit: usize) -> Result<Vec<JobRow>>;
    /// Merge records `(tenant, id, survivor, merged_at)`.
    fn merges(&mut self, tenant: Option<&str>) -> Result<Vec<(String, String, String, Millis)>>;
    /// Model records `(tenant, model, recorded_at)`.
    fn tenant_models(&mut self, tenant: Option<&str>) -> Result<Vec<(String, TenantModel, Millis)>>;
}

/// Writes, inside one transaction.
pub trait Tx: Reads {
    /// Inserts a memory (its `seq` is ignored); returns the new row number.
    fn insert_memory(&mut self, m: &Stored) -> Result<i64>;
    /// Replaces every column of the memory at `m.seq`.
    fn update_memory(&mut self, m: &Stored) -> Result<()>;
    /// Deletes a memory with its vector and queued embedding.
    fn delete_memory(&mut self, seq: i64) -> Result<()>;
    /// Sets a memory's salience (and when it was computed), adding `cites`
    /// citations; the version does not change.
    fn set_salience(&mut self, seq: i64, salience: f64, at: Millis, cites: i64) -> Result<()>;
    /// Sets when a memory expires (`None`: never); the version does not change.
    fn set_expiry(&mut self, seq: i64, expires_at: Option<Millis>) -> Result<()>;
    /// Records that `id` was merged into `survivor`, and points earlier
    /// merges into `id` at `survivor`.
    fn record_merge(&mut self, tenant: &str, id: &str, survivor: &str, at: Millis) -> Result<()>;
    /// Forgets the merges into `survivor` (it is gone).
    fn forget_merges_into(&mut self, tenant: &str, survivor: &str) -> Result<()>;

    /// Stores (or replaces) a memory's vector and takes it off the queue.
    fn put_vector(&mut self, seq: i64, vector: &[f32]) -> Result<()>;
    /// Drops a memory's vector and queued embedding.
    fn drop_vector(&mut self, seq: i64) -> Result<()>;
    /// Queues a memory for embedding at version `gen` (replacing a queued
    /// one, and its lease: the new version is for anyone to take).
    fn queue_embedding(&mut self, seq: i64, gen: i64) -> Result<()>;
    /// Takes a memory off the queue if it is still queued at `gen`.
    fn unqueue_embedding(&mut self, seq: i64, gen: i64) -> Result<bool>;
    /// Leases queued embeddings to their taker until `until`.
    fn lease_embeddings(&mut self, seqs: &[i64], until: Millis) -> Result<()>;
    /// Drops every vector of a tenant and queues all its memories with text.
    fn requeue_tenant(&mut self, tenant: &str) -> Result<usize>;

    /// Inserts or replaces a session's row.
    fn put_session(&mut self, s: &SessionRow) -> Result<()>;
    /// Deletes a session's row and turns.
    fn delete_session(&mut self, tenant: &str, id: &str) -> Result<()>;
    fn insert_turns(&mut self, tenant: &str, session: &str, turns: &[Turn]) -> Result<()>;
    /// Deletes a session's turns `1..=through`.
    fn delete_turns_through(&mut self, tenant: &str, session: &str, through: i64) -> Result<()>;

    /// Queues a job (its `id` is ignored); returns the new id.
    fn insert_job(&mut self, job: &JobRow) -> Result<i64>;
    /// Deletes a job; false if it was already gone.
    fn delete_job(&mut self, id: i64) -> Result<bool>;
    /// Deletes a subject's jobs of `kind`.
    fn delete_jobs_of(&mut self, tenant: &str, kind: &str, subject: &str) -> Result<usize>;
    /// Records a failed attempt; the job runs again after `run_after`.
    fn retry_job(&mut self, id: i64, error: &str, run_after: Millis) -> Result<()>;
    /// Leases a job to its taker: nobody else takes it before `until`
    /// (attempts are not counted).
    fn lease_job(&mut self, id: i64, until: Millis) -> Result<()>;

    fn insert_key(&mut self, key: &KeyRow) -> Result<()>;
    /// Revokes an unrevoked key (of `tenant`, when given); false if none.
    fn revoke_key(&mut self, tenant: Option<&str>, id: &str, at: Millis) -> Result<bool>;

    /// Records a tenant's model unless one is recorded; returns the record.
    fn record_tenant_model(&mut self, tenant: &str, model: &TenantModel, at: Millis) -> Result<TenantModel>;
    fn forget_tenant_model(&mut self, tenant: &str) -> Result<()>;

    /// Announces `event` to every node once this transaction commits (never
    /// if it rolls back).
    fn announce(&mut self, event: StoreEvent) -> Result<()>;

    /// The changes noted in this transaction and not yet appended (see
    /// `crate::audit`): kept by the backend, decided on by the domain.
    fn journal(&mut self) -> &mut Vec<crate::audit::Journaled>;
    /// A change chain's head: its last `seq` and hash; `None` when empty.
    fn change_head(&mut self, tenant: &str, namespace: &str) -> Result<Option<crate::audit::Head>>;
    /// Appends a row to its chain and makes it the chain's head.
    fn append_change(&mut self, row: &crate::audit::ChangeRow) -> Result<()>;
}

/// The right to run a singleton job (sweeps, decay, promotion): held by one
/// node at a time among those sharing a store, and taken over by another
/// when its holder dies.
pub enum Leadership {
    /// The only node (SQLite: one server per data directory).
    Sole,
    Postgres(Box<postgres::PgLeadership>),
    Mongo(Box<mongo::MongoLeadership>),
}

impl Leadership {
    /// Whether this node may run the job now (seeking the right if needed).
    pub async fn held(&mut self) -> bool {
        match self {
            Leadership::Sole => true,
            Leadership::Postgres(l) => l.held().await,
            Leadership::Mongo(l) => l.held().await,
        }
    }
}

/// One wake-up per tenant with listeners: a committed write wakes the
/// listeners of the tenants it changed, and no others.
#[derive(Default)]
pub struct ChangeSignals(std::sync::Mutex<HashMap<String, std::sync::Weak<tokio::sync::Notify>>>);

impl ChangeSignals {
    /// The signal of `tenant`'s changes (shared by its listeners; dropped
    /// with the last of them).
    pub fn watch(&self, tenant: &str) -> std::sync::Arc<tokio::sync::Notify> {
        let Ok(mut map) = self.0.lock() else {
            return std::sync::Arc::default();
        };
        if let Some(n) = map.get(tenant).and_then(std::sync::Weak::upgrade) {
            return n;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let n = std::sync::Arc::new(tokio::sync::Notify::new());
        map.insert(tenant.to_owned(), std::sync::Arc::downgrade(&n));
        n
    }

    /// Wakes the listeners of `tenants`.
    pub fn signal(&self, tenants: &[String]) {
        if tenants.is_empty() {
            return;
        }
        let Ok(map) = self.0.lock() else { return };
        for t in tenants {
            if let Some(n) = map.get(t).and_then(std::sync::Weak::upgrade) {
                n.notify_waiters();
            }
        }
    }
}

/// The storage backend.
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
    Mongo(MongoStore),
}

macro_rules! delegate {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match $self {
            Store::Sqlite(s) => s.$method($($arg),*).await,
            Store::Postgres(s) => s.$method($($arg),*).await,
            Store::Mongo(s) => s.$method($($arg),*).await,
        }
    };
}

impl Store {
    /// Runs `f` on a consistent snapshot, on a blocking thread.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Reads) -> Result<T> + Send + 'static,
    {
        let started = std::time::Instant::now();
        let out = delegate!(self.read(f));
        self.timings().record("read", started.elapsed());
        out
    }

    /// Like [`Store::read`] for a lookup by primary key (microseconds): the
    /// backend may run it on the calling task.
    pub async fn point<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Reads) -> Result<T> + Send + 'static,
    {
        let started = std::time::Instant::now();
        let out = delegate!(self.point(f));
        self.timings().record("point", started.elapsed());
        out
    }

    /// Runs `f` in a transaction and commits it durably; an error rolls back
    /// everything `f` did. The changes `f` records are appended to the change
    /// journal as made by `actor`, in the same transaction
    /// (`crate::audit::flush`). Indexes reflect the writes when this returns.
    /// The write may touch anything, so it runs alone.
    pub async fn write<T, F>(&self, actor: &Actor, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Tx) -> Result<T> + Send + 'static,
    {
        self.write_in(actor, WriteScope::All, f).await
    }

    /// [`Store::write`] for a write that touches only the places of `scope`:
    /// the backend may run it beside writes to other places (see
    /// [`WriteScope`]).
    pub async fn write_in<T, F>(&self, actor: &Actor, scope: WriteScope, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Tx) -> Result<T> + Send + 'static,
    {
        let clock = match self {
            Store::Sqlite(s) => s.clock().clone(),
            Store::Postgres(s) => s.clock().clone(),
            Store::Mongo(s) => s.clock().clone(),
        };
        let actor = actor.clone();
        let touched = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let tenants = std::sync::Arc::clone(&touched);
        let f = move |tx: &mut dyn Tx| {
            tx.journal().clear();
            let out = f(tx)?;
            if let Ok(mut t) = tenants.lock() {
                t.extend(tx.journal().iter().map(|j| j.0.clone()));
            }
            crate::audit::flush(tx, &actor, clock.now_ms())?;
            Ok(out)
        };
        let started = std::time::Instant::now();
        let out = delegate!(self.write(scope, f));
        self.timings().record("write", started.elapsed());
        let out = out?;
        if let Ok(t) = touched.lock() {
            self.changed().signal(&t);
        }
        Ok(out)
    }

    /// How long store calls take (exported by the server's `/metrics`).
    pub fn timings(&self) -> &crate::metrics::StoreTimings {
        match self {
            Store::Sqlite(s) => s.timings(),
            Store::Postgres(s) => s.timings(),
            Store::Mongo(s) => s.timings(),
        }
    }

    /// Whether other processes may write to this store (several nodes on
    /// PostgreSQL or MongoDB).
    pub fn shared(&self) -> bool {
        matches!(self, Store::Postgres(_) | Store::Mongo(_))
    }

    /// Whether change-event listeners must poll for other nodes' changes
    /// (PostgreSQL); otherwise [`Store::changed`] wakes them for every
    /// node's (SQLite has one node; MongoDB's change stream hears them all).
    pub fn polls_for_changes(&self) -> bool {
        matches!(self, Store::Postgres(_))
    }

    /// Whether the store is refusing calls (its breaker is open).
    pub fn breaker_open(&self) -> bool {
        match self {
            Store::Sqlite(_) | Store::Mongo(_) => false,
            Store::Postgres(s) => s.breaker_open(),
        }
    }

    /// Signals of the tenants whose changes this process commits (change
    /// events wait on them).
    pub fn changed(&self) -> &ChangeSignals {
        match self {
            Store::Sqlite(s) => s.changed(),
            Store::Postgres(s) => s.changed(),
            Store::Mongo(s) => s.changed(),
        }
    }

    /// Makes erased data unrecoverable from the store's files, as far as the
    /// backend can (run after an erasure).
    pub async fn scrub(&self) -> Result<()> {
        delegate!(self.scrub())
    }

    /// A page of the scope's memories.
    pub async fn list(&self, scope: Scope, page: Page) -> Result<Vec<Stored>> {
        delegate!(self.list(scope, page))
    }

    /// The distinct namespaces of the scope's memories, sorted.
    pub async fn namespaces(&self, scope: Scope) -> Result<Vec<Namespace>> {
        delegate!(self.namespaces(scope))
    }

    /// The best `k` keyword (BM25) matches in the scope of any of `terms`
    /// (words as [`crate::text::query_terms`] makes them).
    pub async fn keyword_hits(&self, scope: Scope, terms: Vec<String>, k: usize) -> Result<Vec<Hit>> {
        delegate!(self.keyword_hits(scope, terms, k))
    }

    /// The nearest `k` memories to `vector` in the scope (score = cosine).
    pub async fn vector_hits(&self, scope: Scope, vector: Vec<f32>, k: usize) -> Result<Vec<Hit>> {
        delegate!(self.vector_hits(scope, vector, k))
    }

    /// For each probe `(namespace, vector)`: the tenant's memories in exactly
    /// that namespace with cosine ≥ `min_cosine`, best first, live or not (at
    /// most a few). Empty when the backend holds no vectors.
    pub async fn near(
        &self,
        tenant: &str,
        probes: Vec<(Namespace, Vec<f32>)>,
        min_cosine: f32,
    ) -> Result<Vec<Vec<Hit>>> {
        delegate!(self.near(tenant, probes, min_cosine))
    }

    /// BM25 scores of those `seqs` that match any of `terms`.
    pub async fn keyword_scores(&self, terms: Vec<String>, seqs: Vec<i64>) -> Result<HashMap<i64, f64>> {
        delegate!(self.keyword_scores(terms, seqs))
    }

    /// Cosines between `vector` and those `seqs` that have a vector.
    pub async fn cosines(&self, seqs: Vec<i64>, vector: Vec<f32>) -> Result<HashMap<i64, f64>> {
        delegate!(self.cosines(seqs, vector))
    }

    /// What ranking needs of the candidates `seqs` in the scope and, with
    /// `max_gap`, of their neighbours: the memories created just before and
    /// after each in its namespace, at most `max_gap` apart and in scope.
    pub async fn expand(&self, scope: Scope, seqs: Vec<i64>, max_gap: Option<Millis>) -> Result<Expansion> {
        delegate!(self.expand(scope, seqs, max_gap))
    }

    /// Those of `seqs` in the scope, loaded.
    pub async fn hydrate(&self, scope: Scope, seqs: Vec<i64>) -> Result<Vec<Stored>> {
        delegate!(self.hydrate(scope, seqs))
    }

    /// Brings derived indexes (SQLite's in-process keyword and vector
    /// indexes) up to date with the tables.
    pub async fn sync_indexes(&self) -> Result<()> {
        match self {
            Store::Sqlite(s) => s.sync_indexes().await,
            Store::Postgres(s) => s.sync_vectors().await,
            Store::Mongo(s) => s.sync_indexes().await,
        }
    }

    /// Saves derived indexes so a restart is quick.
    pub async fn save_indexes(&self) -> Result<()> {
        delegate!(self.save_vectors())
    }

    /// A number that grows with every vector stored (0 without vectors).
    pub async fn index_watermark(&self) -> Result<i64> {
        delegate!(self.index_watermark())
    }

    /// Where the vector index stands in each of `places`, taken before a
    /// near-duplicate lookup there: vectors stored in a place after the
    /// lookup are [`Reads::vectors_since`] its mark (see [`IndexMark`]).
    pub async fn index_mark(&self, places: Vec<Place>) -> Result<IndexMark> {
        delegate!(self.index_mark(places))
    }

    /// The right to run the singleton job `job` (one node at a time among
    /// those sharing the store; see [`Leadership`]).
    pub fn leadership(&self, job: &str) -> Leadership {
        match self {
            // One server per data directory (the directory's lock).
            Store::Sqlite(_) => Leadership::Sole,
            Store::Postgres(s) => Leadership::Postgres(Box::new(s.leadership(job))),
            Store::Mongo(s) => Leadership::Mongo(Box::new(s.leadership(job))),
        }
    }

    /// The events of committed transactions, from every node sharing the
    /// store (see [`StoreEvent`]).
    pub fn events(&self) -> tokio::sync::broadcast::Receiver<StoreEvent> {
        match self {
            Store::Sqlite(s) => s.events(),
            Store::Postgres(s) => s.events(),
            Store::Mongo(s) => s.events(),
        }
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
