//! The PostgreSQL backend: pgvector for vectors, PostgreSQL full-text search
//! for keywords, and nothing in memory that another node could contradict —
//! so any number of stateless engram nodes can share one database.
//!
//! Reads run in a `REPEATABLE READ READ ONLY` transaction (one snapshot).
//! Writes run in transactions that first take cluster-wide advisory locks:
//! a write that names the namespaces it touches (`WriteScope::Places`: API
//! writes, LangGraph puts, stored embeddings) holds only those namespaces'
//! locks, so writes to different namespaces run at once on every node; any
//! other write holds the one write lock and runs alone. Either way, a rule's
//! check and the write it decides are never interleaved with another
//! writer's (keyed upserts and merges stay inside one namespace; session
//! appends run alone). A node's concurrent writes share such transactions
//! (group commit in a few lanes, `group.rs`). Connections
//! come from a bounded pool (`deadpool-postgres`) with an acquire timeout;
//! every statement has a time limit (`statement_timeout`).

mod changes;
mod conn;
mod errors;
mod events;
mod filter_sql;
mod group;
mod jobs;
mod keys;
mod keyword;
mod leader;
mod memories;
mod scans;
mod schema;
mod scope_sql;
mod search_sql;
mod sessions;
mod sql;
mod vectors;

use std::collections::HashMap;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio::runtime::Handle;
use tokio_postgres::{IsolationLevel, NoTls};

use super::{Expansion, Hit, Page, Reads, Scope, Stored, Tx};
use crate::clock::SharedClock;
use crate::error::{Error, Result};
use crate::model::Namespace;
use crate::time::Millis;
use conn::PgConn;
pub use leader::PgLeadership;

/// The advisory lock every write transaction takes first, exclusively or
/// shared (`engram` in ASCII, then 2; see `group.rs`).
pub const WRITE_LOCK: i64 = 0x0065_6e67_7261_6d02;

/// The advisory lock a write to `place` holds besides [`WRITE_LOCK`], as
/// `pg_advisory_xact_lock(class, key)` takes it: `(class, key)`. For
/// operators reading `pg_locks` (`classid`, `objid`), and tests.
pub fn place_lock(place: &super::Place) -> (i32, i32) {
    (group::PLACE_LOCK_CLASS, group::place_key(place))
}

/// Failed connection attempts in a row that open the breaker.
const BREAKER_THRESHOLD: u32 = 3;
/// How long an open breaker refuses before letting one trial through.
const BREAKER_COOL_DOWN: Duration = Duration::from_millis(500);

/// Tuning for the PostgreSQL backend.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// A `postgres://` URL (user, password, host, port, database, options).
    pub url: String,
    /// Most connections this node opens.
    pub pool_size: usize,
    /// How long a request waits for a connection (or to open one) before
    /// failing with `unavailable`.
    pub acquire_timeout: Duration,
    /// How long one statement may run before failing with `timeout`.
    pub statement_timeout: Duration,
    /// The dimension of the vectors this server embeds (its HNSW index is
    /// created at open); `None` without an embedder.
    pub dims: Option<usize>,
    /// The service's clock (migrations record when they ran).
    pub clock: SharedClock,
}

impl PostgresOptions {
    /// A store at `url`: 16 connections, 2 s to get one, 30 s per statement,
    /// no vector index, the system clock.
    pub fn new(url: impl Into<String>) -> Self {
        PostgresOptions {
            url: url.into(),
            pool_size: 16,
            acquire_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(30),
            dims: None,
            clock: crate::clock::system(),
        }
    }
}

/// Whether `url` is a PostgreSQL URL the driver understands (`postgres://`
/// or `postgresql://`); the error says what is wrong without repeating it
/// (it may hold a password).
pub fn check_url(url: &str) -> std::result::Result<(), String> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err("a PostgreSQL URL starts with postgres:// or postgresql://".into());
    }
    let cfg: tokio_postgres::Config = url.parse().map_err(|e| format!("not a valid PostgreSQL URL ({e})"))?;
    if cfg.get_hosts().is_empty() {
        return Err("the URL names no host, e.g. postgres://user:password@db.example:5432/engram".into());
    }
    Ok(())
}

/// Creates the empty database `name` (`[a-z0-9_]`, at most 63 bytes) on the
/// server `admin_url` names, whose user may create databases; returns the
/// new database's URL (the admin URL with its database replaced). For test
/// harnesses and tools that set up a throwaway database.
pub async fn create_database(admin_url: &str, name: &str) -> Result<String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        return Err(Error::invalid(format!("database name {name:?}: use 1-63 characters of a-z 0-9 _")));
    }
    check_url(admin_url).map_err(|e| Error::invalid(format!("admin URL: {e}")))?;
    let (client, conn) = tokio_postgres::connect(admin_url, NoTls).await?;
    let driver = tokio::spawn(conn);
    // The name was checked above: an identifier cannot be a bound parameter.
    let created = client.batch_execute(&format!("CREATE DATABASE {name}")).await;
    drop(client);
    let _ = driver.await;
    created?;
    let at =
        admin_url.rfind('/').filter(|&i| i > admin_url.find("://").map_or(0, |s| s + 2)).unwrap_or(admin_url.len());
    let (base, query) = match admin_url[at..].find('?') {
        Some(q) => (&admin_url[..at], &admin_url[at + q..]),
        None => (&admin_url[..at], ""),
    };
    Ok(format!("{base}/{name}{query}"))
}

/// The PostgreSQL store; cheap to share behind an `Arc`.
pub struct PostgresStore {
    /// The pool behind a breaker that opens after [`BREAKER_THRESHOLD`]
    /// failed connection attempts in a row and lets a trial through after
    /// [`BREAKER_COOL_DOWN`].
    conns: std::sync::Arc<group::Conns>,
    /// Every write of this node goes through it.
    writer: group::GroupWriter,
    /// How to open a connection of its own (events, singleton locks).
    cfg: std::sync::Arc<tokio_postgres::Config>,
    vectors: bool,
    keyword: keyword::KeywordSearch,
    /// Events heard from every node (see `events.rs`).
    events: tokio::sync::broadcast::Sender<super::StoreEvent>,
    listener: tokio::task::JoinHandle<()>,
    clock: SharedClock,
    changed: super::ChangeSignals,
    timings: crate::metrics::StoreTimings,
}

impl PostgresStore {
    /// Connects, migrates (once, whichever node comes first) and creates the
    /// vector index for `opts.dims`.
    pub async fn open(opts: PostgresOptions) -> Result<Self> {
        check_url(&opts.url).map_err(|e| Error::invalid(format!("store URL: {e}")))?;
        let mut cfg: tokio_postgres::Config =
            opts.url.parse().map_err(|e| Error::invalid(format!("store URL: not a valid PostgreSQL URL ({e})")))?;
        let mut options = cfg.get_options().map(|o| format!("{o} ")).unwrap_or_default();
        options.push_str(&format!(
            "-c statement_timeout={} -c hnsw.iterative_scan=relaxed_order",
            opts.statement_timeout.as_millis()
        ));
        // A server that vanishes without closing its connections (a network
        // partition) is noticed within seconds, not at the kernel's default.
        cfg.options(&options)
            .application_name("engram")
            .connect_timeout(opts.acquire_timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(5))
            .keepalives_interval(Duration::from_secs(1))
            .keepalives_retries(3)
            .tcp_user_timeout(opts.statement_timeout + Duration::from_secs(5));
        let manager =
            Manager::from_config(cfg.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(opts.pool_size.max(1))
            .wait_timeout(Some(opts.acquire_timeout))
            .create_timeout(Some(opts.acquire_timeout))
            .recycle_timeout(Some(opts.acquire_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| Error::internal(format!("building the connection pool: {e}")))?;
        let mut c = pool.get().await?;
        schema::migrate(&mut c, opts.clock.now_ms()).await?;
        if let Some(dims) = opts.dims {
            schema::ensure_vector_index(&mut c, dims).await?;
        }
        let (events, _) = tokio::sync::broadcast::channel(super::EVENT_BUFFER);
        let listener = tokio::spawn(events::listen(cfg.clone(), events.clone()));
        let breaker = crate::breaker::Breaker::new(BREAKER_THRESHOLD, BREAKER_COOL_DOWN, opts.clock.clone());
        let conns = std::sync::Arc::new(group::Conns { pool, breaker });
        Ok(PostgresStore {
            writer: group::GroupWriter::start(conns.clone()),
            conns,
            cfg: std::sync::Arc::new(cfg),
            vectors: opts.dims.is_some(),
            keyword: keyword::KeywordSearch::new(opts.clock.clone()),
            events,
            listener,
            clock: opts.clock,
            changed: Default::default(),
            timings: Default::default(),
        })
    }

    /// After an erasure: rewrites the tables that can hold text (and their
    /// indexes) with `VACUUM FULL`, so no dead copy of an erased row stays in
    /// their files — a plain VACUUM frees the space but leaves the bytes.
    /// It locks each table while it is rewritten (see docs/decisions.md).
    pub async fn scrub(&self) -> Result<()> {
        // A connection of its own, never returned to the pool: a rewrite of a
        // large table may outlast the statement timeout, which it lifts.
        let c = Object::take(self.client().await?);
        c.batch_execute("SET statement_timeout = 0").await?;
        c.batch_execute("VACUUM FULL memories, memory_vectors, sessions, session_turns, jobs").await?;
        Ok(())
    }

    pub fn timings(&self) -> &crate::metrics::StoreTimings {
        &self.timings
    }

    /// Whether the breaker in front of the database is open (calls fail fast).
    pub fn breaker_open(&self) -> bool {
        self.conns.breaker.is_open()
    }

    /// Woken after every committed write of this node (other nodes' writes
    /// are found by polling: see `service::events`).
    pub fn changed(&self) -> &super::ChangeSignals {
        &self.changed
    }

    /// The service's clock (the change journal stamps writes with it).
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// A pooled connection, unless the database is known to be unreachable.
    async fn client(&self) -> Result<Object> {
        self.conns.client().await
    }

    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Reads) -> Result<T> + Send + 'static,
    {
        let mut c = self.client().await?;
        let rt = Handle::current();
        blocking(move || {
            let tx = rt.block_on(
                c.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start(),
            )?;
            let out = f(&mut PgConn::new(&tx, &rt));
            let _ = rt.block_on(tx.commit());
            out
        })
        .await
    }

    pub async fn point<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Reads) -> Result<T> + Send + 'static,
    {
        self.read(f).await
    }

    /// Runs `f`, which touches only `scope`, in the next group commit of its
    /// lane (a transaction holding the locks `scope` needs) and returns once
    /// it is committed.
    pub async fn write<T, F>(&self, scope: super::WriteScope, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Tx) -> Result<T> + Send + 'static,
    {
        self.writer.write(scope, f).await
    }

    /// Nothing to do: pgvector's index is updated by the writes themselves.
    pub async fn sync_vectors(&self) -> Result<()> {
        Ok(())
    }

    /// Nothing to do: the database holds the index.
    pub async fn save_vectors(&self) -> Result<()> {
        Ok(())
    }

    /// The newest vector's `change` number.
    pub async fn index_watermark(&self) -> Result<i64> {
        vectors::newest_change(&self.client().await?).await
    }

    /// The newest `change` number in each place (writes to different places
    /// commit in any order, so one number for all would not do).
    pub async fn index_mark(&self, places: Vec<super::Place>) -> Result<super::IndexMark> {
        if places.is_empty() {
            return Ok(super::IndexMark::default());
        }
        vectors::newest_changes(&self.client().await?, places).await
    }

    pub async fn list(&self, scope: Scope, page: Page) -> Result<Vec<Stored>> {
        memories::list(&self.client().await?, &scope, &page).await
    }

    pub async fn namespaces(&self, scope: Scope) -> Result<Vec<Namespace>> {
        memories::namespaces(&self.client().await?, &scope).await
    }

    pub async fn keyword_hits(&self, scope: Scope, terms: Vec<String>, k: usize) -> Result<Vec<Hit>> {
        self.keyword.hits(&self.client().await?, &scope, &terms, k).await
    }

    pub async fn keyword_scores(&self, terms: Vec<String>, seqs: Vec<i64>) -> Result<HashMap<i64, f64>> {
        self.keyword.scores(&self.client().await?, &terms, &seqs).await
    }

    pub async fn vector_hits(&self, scope: Scope, vector: Vec<f32>, k: usize) -> Result<Vec<Hit>> {
        if !self.vectors {
            return Err(Error::unprocessable("vector search needs an embedder; this server has none configured"));
        }
        search_sql::vector_hits(&self.client().await?, &scope, &vector, k).await
    }

    pub async fn near(
        &self,
        tenant: &str,
        probes: Vec<(Namespace, Vec<f32>)>,
        min_cosine: f32,
    ) -> Result<Vec<Vec<Hit>>> {
        if !self.vectors {
            return Ok(vec![Vec::new(); probes.len()]);
        }
        let c = self.client().await?;
        let mut out = Vec::with_capacity(probes.len());
        for (ns, v) in &probes {
            out.push(search_sql::near(&c, tenant, ns, v, min_cosine).await?);
        }
        Ok(out)
    }

    pub async fn cosines(&self, seqs: Vec<i64>, vector: Vec<f32>) -> Result<HashMap<i64, f64>> {
        search_sql::cosines(&self.client().await?, &seqs, &vector).await
    }

    pub async fn expand(&self, scope: Scope, seqs: Vec<i64>, max_gap: Option<Millis>) -> Result<Expansion> {
        search_sql::expand(&self.client().await?, &scope, &seqs, max_gap).await
    }

    pub async fn hydrate(&self, scope: Scope, seqs: Vec<i64>) -> Result<Vec<Stored>> {
        search_sql::hydrate(&self.client().await?, &scope, &seqs).await
    }

    pub async fn ping(&self) -> Result<()> {
        self.client().await?.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// The right to run the singleton job `job` (see `leader.rs`).
    pub fn leadership(&self, job: &str) -> leader::PgLeadership {
        leader::PgLeadership::new(self.cfg.as_ref().clone(), job)
    }

    /// Events of committed transactions, from every node.
    pub fn events(&self) -> tokio::sync::broadcast::Receiver<super::StoreEvent> {
        self.events.subscribe()
    }

    /// Closes the pool and stops listening: later calls fail with `unavailable`.
    pub async fn close(&self) {
        self.listener.abort();
        self.writer.close();
        self.conns.pool.close();
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// Runs `f` on a blocking thread (the storage contract is synchronous).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::internal(format!("a database task failed: {e}")))?
}
