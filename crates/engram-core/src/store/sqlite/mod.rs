//! The embedded SQLite backend: one file, WAL, a group-committing writer thread
//! and a pool of readers. See `schema.rs` for the tables.
//!
//! The same backend serves `memory://` ([`Location::Memory`]): the database
//! lives in this process's memory (SQLite's `memdb` VFS, shared by the
//! writer's and the readers' connections), nothing touches disk, and it is
//! gone when the store closes. Being the same code, it keeps the same contract;
//! what differs is durability (none), the journal (in memory, not WAL: readers
//! wait while a group commits) and the vector index (never saved).

mod changes;
mod conn;
mod errors;
mod expiry;
mod filter_sql;
mod jobs;
mod keys;
mod keyword;
mod lock;
mod memories;
mod readers;
mod scans;
mod schema;
mod scope_sql;
mod search_sql;
mod sessions;
mod sql;
mod vectors;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rusqlite::{Connection, OpenFlags};

use super::{Expansion, Hit, Page, Reads, Scope, Stored, Tx};
use crate::clock::SharedClock;
use crate::error::{Error, Result};
use crate::keyword::KeywordIndex;
use crate::model::Namespace;
use crate::time::Millis;
use crate::vector::VectorIndex;
use conn::Conn;

use super::scoped::FILTER_SET_CAP;
/// Changes read per step while an index catches up.
const SYNC_STEP: usize = 10_000;
/// Applied keyword changes are pruned once this many have gathered.
const KEYWORD_PRUNE_EVERY: i64 = 4096;

/// How hard a commit works to reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// fsync on every commit: an acknowledged write survives power loss.
    Full,
    /// fsync at checkpoints: survives a process crash (`kill -9`), and may lose
    /// the last commits on power loss.
    Normal,
}

/// Where the database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A file (WAL beside it, a `.lock` file for the single-server lock).
    File(PathBuf),
    /// This process's memory, under a name unique to the store (`memory://`):
    /// see the module docs.
    Memory(String),
}

impl Location {
    /// A fresh in-memory database, named so no other store shares it.
    pub fn memory() -> Self {
        Location::Memory(format!("engram-{}", uuid::Uuid::now_v7().simple()))
    }

    /// For logs and errors: the path, or `memory://`.
    pub fn describe(&self) -> String {
        match self {
            Location::File(p) => p.display().to_string(),
            Location::Memory(_) => "memory://".into(),
        }
    }
}

/// Tuning for the SQLite backend.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub location: Location,
    pub readers: usize,
    pub synchronous: Synchronous,
    /// Take the single-server lock (a server does; admin commands such as
    /// `engram keys` do not, so they work beside a running server).
    pub exclusive: bool,
    /// The vector index, when the server embeds (`None` for admin commands).
    pub vectors: Option<VectorOptions>,
    /// The clock of the store's own caches (the service's clock).
    pub clock: SharedClock,
    /// How long a statement waits for a lock another process holds before
    /// failing with `unavailable`.
    pub busy_timeout: std::time::Duration,
}

impl SqliteOptions {
    /// A store at `path` with 4 readers, full fsync, the single-server lock,
    /// no vector index and the system clock.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SqliteOptions::at(Location::File(path.into()))
    }

    /// A fresh in-memory store (`memory://`), otherwise as [`SqliteOptions::new`].
    pub fn in_memory() -> Self {
        SqliteOptions::at(Location::memory())
    }

    fn at(location: Location) -> Self {
        SqliteOptions {
            location,
            readers: 4,
            synchronous: Synchronous::Full,
            exclusive: true,
            vectors: None,
            clock: crate::clock::system(),
            busy_timeout: std::time::Duration::from_secs(5),
        }
    }
}

/// Where the vector index lives and what it holds.
#[derive(Debug, Clone)]
pub struct VectorOptions {
    pub dims: usize,
    /// The saved graph (a sidecar `<path>.json` holds its watermark);
    /// `None`: never saved (an in-memory store's index lives and dies with it).
    pub index_path: Option<PathBuf>,
}

struct Vectors {
    index: Arc<VectorIndex>,
    path: Option<PathBuf>,
    /// One catch-up at a time.
    sync: tokio::sync::Mutex<()>,
}

/// The keyword index and its catch-up state.
#[derive(Default)]
struct Keywords {
    index: Arc<KeywordIndex>,
    /// Loaded from the rows (on first use, so admin commands never pay for it).
    built: std::sync::atomic::AtomicBool,
    /// A catch-up failed: the next search catches up first.
    behind: std::sync::atomic::AtomicBool,
    /// One catch-up at a time; holds the last change pruned.
    sync: tokio::sync::Mutex<i64>,
}

/// The SQLite store; cheap to share behind an `Arc`.
pub struct SqliteStore {
    /// Committed writes' events (one process: delivered in memory).
    events: tokio::sync::broadcast::Sender<super::StoreEvent>,
    writer: Arc<writer::Writer>,
    readers: Arc<readers::Readers>,
    vectors: Option<Vectors>,
    keywords: Keywords,
    /// Whether any memory can have expired (see `expiry`).
    expiry: Arc<expiry::EarliestExpiry>,
    clock: SharedClock,
    changed: super::ChangeSignals,
    timings: crate::metrics::StoreTimings,
    location: Location,
    busy_timeout: std::time::Duration,
    _lock: Option<lock::DbLock>,
}

/// Opens a connection with the pragmas every connection needs.
pub(crate) fn open_connection(
    location: &Location,
    read_only: bool,
    busy_timeout: std::time::Duration,
) -> Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let opened = match location {
        Location::File(path) => Connection::open_with_flags(path, flags),
        // A name starting with `/` is shared by every connection of the
        // process (https://sqlite.org/src/file/src/memdb.c); the database is
        // freed with its last connection.
        Location::Memory(name) => {
            Connection::open_with_flags(format!("file:/{name}?vfs=memdb"), flags | OpenFlags::SQLITE_OPEN_URI)
        }
    };
    let conn = opened.map_err(|e| Error::unavailable(format!("cannot open database {}: {e}", location.describe())))?;
    conn.busy_timeout(busy_timeout)?;
    // Page cache: 16 MB for the writer, 4 MB per reader (the OS caches the
    // file too; eight 16 MB readers added 100 MB of RSS at 100 000 memories).
    conn.execute_batch(if read_only {
        "PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -4000;"
    } else {
        // Deleted content is overwritten with zeros, so an erased text does
        // not linger in free pages (see `scrub`).
        "PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16000; \
         PRAGMA secure_delete = ON;"
    })?;
    // Plans never depend on bound values: otherwise a statement whose plan
    // looked at one (a partial index's condition, e.g. `text_hash = ?`) is
    // compiled again on every use, because the statement cache clears the
    // bindings when it takes a statement back (docs/decisions.md).
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl SqliteStore {
    /// Locks, opens and migrates the database at `opts.location`.
    pub fn open(opts: SqliteOptions) -> Result<Self> {
        let file = match &opts.location {
            Location::File(path) => Some(path.as_path()),
            Location::Memory(_) => None,
        };
        if let Some(dir) = file.and_then(Path::parent).filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::unavailable(format!("cannot create directory {}: {e}", dir.display())))?;
        }
        // An in-memory database is this process's alone: nothing to lock.
        let lock = match file {
            Some(path) if opts.exclusive => Some(lock::DbLock::acquire(path)?),
            _ => None,
        };
        let mut conn = open_connection(&opts.location, false, opts.busy_timeout)?;
        let journal = if file.is_some() { "WAL" } else { "MEMORY" };
        let mode: String = conn.query_row(&format!("PRAGMA journal_mode = {journal}"), [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case(journal) {
            return Err(Error::unavailable(format!("the database could not switch to {journal} mode (got {mode})")));
        }
        conn.execute_batch(match (file, opts.synchronous) {
            (None, _) => "PRAGMA synchronous = OFF",
            (Some(_), Synchronous::Full) => "PRAGMA synchronous = FULL",
            (Some(_), Synchronous::Normal) => "PRAGMA synchronous = NORMAL",
        })?;
        // A store opened without the lock (an admin command) upgrades the
        // schema only while no server holds the database: a running server of
        // an older engram would go on under rules it does not know (step 13
        // moved change logging from triggers into this backend's code).
        let upgrading = if let Some(path) = file.filter(|_| lock.is_none()) {
            if schema::is_current(&conn)? {
                None
            } else {
                Some(lock::DbLock::acquire(path).map_err(|e| {
                    Error::unavailable(format!(
                        "this engram must upgrade the database's schema, which it does not do under a running \
                     server: stop the server (a server of this version upgrades it as it starts), then run \
                     this command again ({e})"
                    ))
                })?)
            }
        } else {
            None
        };
        schema::migrate(&mut conn, opts.clock.now_ms())?;
        drop(upgrading);
        let vectors = match &opts.vectors {
            Some(v) => Some(Vectors {
                index: Arc::new(open_index(&conn, v)?),
                path: v.index_path.clone(),
                sync: tokio::sync::Mutex::new(()),
            }),
            None => None,
        };
        let readers = readers::Readers::open(opts.location.clone(), opts.readers.max(1), opts.busy_timeout)?;
        let expiry = Arc::new(expiry::EarliestExpiry::load(&conn)?);
        let writer = Arc::new(writer::Writer::start(conn, Arc::clone(&expiry))?);
        let (events, _) = tokio::sync::broadcast::channel(super::EVENT_BUFFER);
        Ok(SqliteStore {
            events,
            writer,
            readers,
            vectors,
            keywords: Keywords::default(),
            expiry,
            clock: opts.clock,
            changed: super::ChangeSignals::default(),
            timings: Default::default(),
            location: opts.location,
            busy_timeout: opts.busy_timeout,
            _lock: lock,
        })
    }

    /// After an erasure: copies the WAL into the database and truncates it,
    /// so no old copy of an erased page remains in the WAL file (deleted
    /// content is zeroed as it is deleted: `secure_delete`; the keyword
    /// index keeps no text on disk).
    pub async fn scrub(&self) -> Result<()> {
        if matches!(self.location, Location::Memory(_)) {
            // Freed pages are zeroed (`secure_delete`), and nothing is on disk.
            return Ok(());
        }
        let (location, timeout) = (self.location.clone(), self.busy_timeout);
        tokio::task::spawn_blocking(move || -> Result<()> {
            let c = open_connection(&location, false, timeout)?;
            let (busy, _, _): (i64, i64, i64) =
                c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            if busy != 0 {
                return Err(Error::unavailable("the WAL could not be checkpointed (readers held it); try again"));
            }
            Ok(())
        })
        .await
        .map_err(|e| Error::internal(format!("scrub panicked: {e}")))?
    }

    pub fn timings(&self) -> &crate::metrics::StoreTimings {
        &self.timings
    }

    /// Woken after every committed write of this process.
    pub fn changed(&self) -> &super::ChangeSignals {
        &self.changed
    }

    /// The service's clock (the change journal stamps writes with it).
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The vector index, if this store keeps one.
    pub fn vector_index(&self) -> Option<&Arc<VectorIndex>> {
        self.vectors.as_ref().map(|v| &v.index)
    }

    /// The events of this store's committed writes.
    pub fn events(&self) -> tokio::sync::broadcast::Receiver<super::StoreEvent> {
        self.events.subscribe()
    }

    /// The vector index's change watermark (0 without an index).
    pub async fn index_watermark(&self) -> Result<i64> {
        Ok(self.vector_index().map(|i| i.applied()).unwrap_or(0))
    }

    /// The watermark, for every place: writes run one at a time.
    pub async fn index_mark(&self, _places: Vec<super::Place>) -> Result<super::IndexMark> {
        Ok(super::IndexMark::global(self.index_watermark().await?))
    }

    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Reads) -> Result<T> + Send + 'static,
    {
        self.readers.read(move |c| snapshot(c, f)).await
    }

    pub async fn point<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Reads) -> Result<T> + Send + 'static,
    {
        if matches!(self.location, Location::Memory(_)) {
            // An in-memory database has no WAL: a reader waits while a group
            // commits, which must not happen on an async worker.
            return self.readers.read(move |c| snapshot(c, f)).await;
        }
        self.readers.read_point(move |c| snapshot(c, f)).await
    }

    /// Runs `f` in the writer's next group commit, then brings the in-process
    /// indexes up to date with what `f` changed.
    /// One writer: every write runs alone, whatever its scope.
    pub async fn write<T, F>(&self, _scope: super::WriteScope, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Tx) -> Result<T> + Send + 'static,
    {
        let (out, (touched, keyword_change), events) = self
            .writer
            .write(move |c| {
                let mut conn = Conn::new(c);
                let out = f(&mut conn)?;
                // The keyword change this write logged last, if any.
                let keyword_change = if conn.keywords_touched { Some(keyword::last_change(c)?) } else { None };
                Ok((out, (conn.vectors_touched, keyword_change), conn.events))
            })
            .await?;
        for e in events {
            // No receiver is not an error: nobody caches.
            let _ = self.events.send(e);
        }
        // The write is committed whatever happens here: a failed catch-up is
        // logged, and the next search (or write, or embedding-queue step)
        // retries. The first write loads the keyword index, so its log is
        // pruned whether or not anyone searches.
        let keywords_behind = keyword_change.is_some_and(|change| {
            !self.keywords.built.load(Ordering::Acquire) || self.keywords.index.applied() < change
        });
        if keywords_behind {
            if let Err(e) = self.sync_keywords().await {
                self.keywords.behind.store(true, Ordering::Release);
                tracing::error!(error = %e, "the keyword index could not catch up after a write");
            }
        }
        if touched {
            if let Err(e) = self.sync_vectors().await {
                tracing::error!(error = %e, "the vector index could not catch up after a write");
            }
        }
        Ok(out)
    }

    /// Brings the vector index up to date with `vector_changes`.
    pub async fn sync_vectors(&self) -> Result<()> {
        let Some(v) = &self.vectors else {
            return Ok(());
        };
        let _one = v.sync.lock().await;
        loop {
            let after = v.index.applied();
            let changes = self.catch_up_read(move |c| vectors::changes_since(c, after, SYNC_STEP)).await?;
            let done = changes.len() < SYNC_STEP;
            let index = Arc::clone(&v.index);
            tokio::task::spawn_blocking(move || index.apply(changes))
                .await
                .map_err(|e| Error::internal(format!("vector index update panicked: {e}")))??;
            if done {
                return Ok(());
            }
        }
    }

    /// Loads the keyword index from the rows if this store has not yet, and
    /// catches up if a catch-up after a write failed.
    async fn ensure_keywords(&self) -> Result<()> {
        if self.keywords.built.load(Ordering::Acquire) && !self.keywords.behind.load(Ordering::Acquire) {
            return Ok(());
        }
        self.sync_keywords().await
    }

    /// Brings the keyword index up to date with `keyword_changes` (loading
    /// it from the rows first if needed), and prunes what it has applied.
    pub async fn sync_keywords(&self) -> Result<()> {
        let mut pruned = self.keywords.sync.lock().await;
        let index = &self.keywords.index;
        if !self.keywords.built.load(Ordering::Acquire) {
            // From nothing (a failed load may have left part of one). The
            // watermark first: changes committed during the load are applied
            // again below, which is harmless.
            index.clear()?;
            let as_of = self.readers.read(keyword::last_change).await?;
            let mut after = 0i64;
            loop {
                let rows = self.catch_up_read(move |c| keyword::memories_after(c, after, SYNC_STEP, as_of)).await?;
                let Some(last) = rows.last() else { break };
                after = last.seq as i64;
                let done = rows.len() < SYNC_STEP;
                self.apply_keywords(rows).await?;
                if done {
                    break;
                }
            }
            self.keywords.built.store(true, Ordering::Release);
        }
        loop {
            let after = index.applied();
            let changes = self.catch_up_read(move |c| keyword::changes_since(c, after, SYNC_STEP)).await?;
            let done = changes.len() < SYNC_STEP;
            if !changes.is_empty() {
                self.apply_keywords(changes).await?;
            }
            if done {
                break;
            }
        }
        self.keywords.behind.store(false, Ordering::Release);
        let applied = index.applied();
        if applied - *pruned >= KEYWORD_PRUNE_EVERY {
            self.writer.write(move |c| keyword::prune(c, applied)).await?;
            *pruned = applied;
        }
        Ok(())
    }

    /// An index catch-up's read of what it will apply: the earliest expiry is
    /// first lowered from what the same connection sees (see `expiry`).
    async fn catch_up_read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let expiry = Arc::clone(&self.expiry);
        self.readers
            .read(move |c| {
                expiry.lower_to(c)?;
                f(c)
            })
            .await
    }

    /// Applies keyword changes off the async threads (analysing texts costs).
    async fn apply_keywords(&self, changes: Vec<crate::keyword::KeywordChange>) -> Result<()> {
        let index = Arc::clone(&self.keywords.index);
        tokio::task::spawn_blocking(move || index.apply(changes))
            .await
            .map_err(|e| Error::internal(format!("keyword index update panicked: {e}")))?
    }

    /// Brings every in-process index up to date with the tables.
    pub async fn sync_indexes(&self) -> Result<()> {
        self.sync_keywords().await?;
        self.sync_vectors().await
    }

    /// Saves the vector index and forgets the changes it includes (an index
    /// never saved forgets the changes it has applied: it is never reloaded).
    pub async fn save_vectors(&self) -> Result<()> {
        let Some(v) = &self.vectors else {
            return Ok(());
        };
        let _one = v.sync.lock().await;
        let upto = match v.path.clone() {
            Some(path) => {
                let index = Arc::clone(&v.index);
                tokio::task::spawn_blocking(move || index.save(&path))
                    .await
                    .map_err(|e| Error::internal(format!("saving the vector index panicked: {e}")))??
            }
            None => v.index.applied(),
        };
        self.writer.write(move |c| vectors::prune_changes(c, upto)).await?;
        Ok(())
    }

    pub async fn list(&self, scope: Scope, page: Page) -> Result<Vec<Stored>> {
        self.readers.read(move |c| memories::list(c, &scope, &page)).await
    }

    pub async fn namespaces(&self, scope: Scope) -> Result<Vec<Namespace>> {
        self.readers.read(move |c| memories::namespaces(c, &scope)).await
    }

    pub async fn keyword_hits(&self, scope: Scope, terms: Vec<String>, k: usize) -> Result<Vec<Hit>> {
        self.ensure_keywords().await?;
        let index = Arc::clone(&self.keywords.index);
        // Every match can be ranked: look as far as it takes.
        self.scoped_hits(scope, k, usize::MAX, move |s, want| index.search(s, &terms, want)).await
    }

    pub async fn keyword_scores(&self, terms: Vec<String>, seqs: Vec<i64>) -> Result<HashMap<i64, f64>> {
        self.ensure_keywords().await?;
        let seqs: Vec<u64> = seqs.into_iter().map(|s| s as u64).collect();
        let scores = self.keywords.index.scores(&terms, &seqs)?;
        Ok(scores.into_iter().map(|(s, v)| (s as i64, v)).collect())
    }

    /// Nearest memories by vector within the scope (expiry and filter
    /// included): `(seq, cosine)`, best first.
    pub async fn vector_hits(&self, q: Scope, vector: Vec<f32>, k: usize) -> Result<Vec<Hit>> {
        let Some(v) = &self.vectors else {
            return Err(Error::unprocessable("vector search needs an embedder; this server has none configured"));
        };
        let index = Arc::clone(&v.index);
        // A graph walk costs more the further it looks: at most 64 times `k`.
        self.scoped_hits(q, k, k.saturating_mul(64), move |s, want| {
            Ok(index.search(&vector, want, s)?.into_iter().map(|(seq, cos)| (seq, cos as f64)).collect())
        })
        .await
    }

    /// The best `k` in-scope hits of an in-process index's `search(scope,
    /// want)` (`store::scoped`); expiry is known in memory (`expiry`).
    async fn scoped_hits<F>(&self, q: Scope, k: usize, max_want: usize, search: F) -> Result<Vec<Hit>>
    where
        F: Fn(&crate::vector::Scope<'_>, usize) -> Result<Vec<(u64, f64)>> + Send + Sync + 'static,
    {
        let (live_at, readers) = (q.live_at, Arc::clone(&self.readers));
        let set = {
            let readers = Arc::clone(&readers);
            move |q: Scope| -> futures_util::future::BoxFuture<'static, Result<_>> {
                Box::pin(async move { readers.read(move |c| search_sql::scope_seqs(c, &q, FILTER_SET_CAP)).await })
            }
        };
        let admitted = move |q: Scope, seqs: Vec<i64>| -> futures_util::future::BoxFuture<'static, Result<_>> {
            let readers = Arc::clone(&readers);
            Box::pin(async move { readers.read(move |c| search_sql::in_scope(c, &q, &seqs)).await })
        };
        super::scoped::scoped_hits(q, k, max_want, search, set, admitted, || self.expiry.none_expired(live_at)).await
    }

    /// Near neighbours of each probe in its exact namespace, on every core
    /// (a batch of a thousand caller vectors is a thousand graph searches).
    pub async fn near(
        &self,
        tenant: &str,
        probes: Vec<(Namespace, Vec<f32>)>,
        min_cosine: f32,
    ) -> Result<Vec<Vec<Hit>>> {
        let Some(v) = &self.vectors else {
            return Ok(vec![Vec::new(); probes.len()]);
        };
        let (index, tenant) = (Arc::clone(&v.index), tenant.to_owned());
        tokio::task::spawn_blocking(move || super::scoped::near_all(&index, &tenant, &probes, min_cosine))
            .await
            .map_err(|e| Error::internal(format!("duplicate search panicked: {e}")))?
    }

    /// The cosine between `vector` and each of `seqs` that has a vector.
    pub async fn cosines(&self, seqs: Vec<i64>, vector: Vec<f32>) -> Result<HashMap<i64, f64>> {
        let Some(v) = &self.vectors else {
            return Ok(Default::default());
        };
        let index = Arc::clone(&v.index);
        tokio::task::spawn_blocking(move || super::scoped::cosines(&index, seqs, &vector))
            .await
            .map_err(|e| Error::internal(format!("vector lookup panicked: {e}")))?
    }

    pub async fn expand(&self, scope: Scope, seqs: Vec<i64>, max_gap: Option<Millis>) -> Result<Expansion> {
        self.readers.read(move |c| search_sql::expand(c, &scope, &seqs, max_gap)).await
    }

    pub async fn hydrate(&self, scope: Scope, seqs: Vec<i64>) -> Result<Vec<Stored>> {
        self.readers.read(move |c| search_sql::hydrate(c, &scope, &seqs)).await
    }

    pub async fn ping(&self) -> Result<()> {
        self.readers.read(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?)).await
    }

    pub async fn close(&self) {
        let w = Arc::clone(&self.writer);
        if let Err(e) = tokio::task::spawn_blocking(move || w.shutdown()).await {
            tracing::error!(error = %e, "store shutdown failed");
        }
    }
}

/// Runs `f` in one read transaction, so every lookup sees the same snapshot.
fn snapshot<T>(c: &Connection, f: impl FnOnce(&mut dyn Reads) -> Result<T>) -> Result<T> {
    c.prepare_cached("BEGIN DEFERRED")?.execute([])?;
    let out = f(&mut Conn::new(c));
    let _ = c.prepare_cached("COMMIT").and_then(|mut s| s.execute([]));
    out
}

/// Loads the saved index (or rebuilds it from `memory_vectors`), then replays
/// the changes since it was saved.
fn open_index(conn: &Connection, v: &VectorOptions) -> Result<VectorIndex> {
    let started = std::time::Instant::now();
    let saved = match &v.index_path {
        Some(path) => VectorIndex::load(path, v.dims)?,
        None => None,
    };
    let (index, how) = match saved {
        Some(index) => {
            index.restore(vectors::placements(conn)?)?;
            (index, "loaded")
        }
        None => {
            let index = VectorIndex::new(v.dims)?;
            let as_of = vectors::last_change(conn)?;
            index.apply(vectors::all_vectors(conn, as_of)?)?;
            (index, "rebuilt")
        }
    };
    loop {
        let changes = vectors::changes_since(conn, index.applied(), SYNC_STEP)?;
        let done = changes.len() < SYNC_STEP;
        index.apply(changes)?;
        if done {
            break;
        }
    }
    tracing::info!(vectors = index.len(), how, ms = started.elapsed().as_millis() as u64, "vector index ready");
    Ok(index)
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.writer.shutdown();
    }
}
