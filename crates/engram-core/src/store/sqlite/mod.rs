//! The embedded SQLite backend: one file, WAL, a group-committing writer thread
//! and a pool of readers. See `schema.rs` for the tables.

mod filter_sql;
mod fts;
mod keys;
mod keyword;
mod promotion;
mod lock;
mod memories;
mod readers;
mod salience;
pub use promotion::Promotion;
mod schema;
mod search_sql;
mod sessions;
mod sql;
mod vectors;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, OpenFlags};

use super::{AppendTurns, Appended, DistillJob, Expansion, KeyGrant, KeyInfo, ListQuery, NamespaceQuery, PendingText, SearchQuery, TenantModel};
use crate::auth::Scopes;
use crate::error::{Error, Result};
use crate::model::session::Session;
use crate::model::{Memory, MemoryPatch, Namespace, NewMemory, WriteStatus};
use crate::time::Millis;
use crate::vector::{NsScope, Scope, VectorIndex};

/// Most memories a filter may match for its set to restrict the vector search
/// directly; beyond it the graph walk is scoped by tenant, namespace and tier,
/// and the filter is applied to an oversampled result.
const FILTER_SET_CAP: usize = 50_000;
/// Changes read per step while the index catches up.
const SYNC_STEP: usize = 10_000;

/// How hard a commit works to reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// fsync on every commit: an acknowledged write survives power loss.
    Full,
    /// fsync at checkpoints: survives a process crash (`kill -9`), and may lose
    /// the last commits on power loss.
    Normal,
}

/// Tuning for the SQLite backend.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub path: PathBuf,
    pub readers: usize,
    pub synchronous: Synchronous,
    /// Take the single-server lock (a server does; admin commands such as
    /// `engram keys` do not, so they work beside a running server).
    pub exclusive: bool,
    /// The vector index, when the server embeds (`None` for admin commands).
    pub vectors: Option<VectorOptions>,
}

/// Where the vector index lives and what it holds.
#[derive(Debug, Clone)]
pub struct VectorOptions {
    pub dims: usize,
    /// The saved graph (a sidecar `<path>.json` holds its watermark).
    pub index_path: PathBuf,
}

struct Vectors {
    index: Arc<VectorIndex>,
    path: PathBuf,
    /// One catch-up at a time.
    sync: tokio::sync::Mutex<()>,
}

/// The SQLite store; cheap to share behind an `Arc`.
pub struct SqliteStore {
    writer: Arc<writer::Writer>,
    readers: Arc<readers::Readers>,
    vectors: Option<Vectors>,
    keyword: Arc<keyword::KeywordSearch>,
    _lock: Option<lock::DbLock>,
}

/// Opens a connection with the pragmas every connection needs.
pub(crate) fn open_connection(path: &Path, read_only: bool) -> Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| Error::unavailable(format!("cannot open database {}: {e}", path.display())))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // Page cache: 16 MB for the writer, 4 MB per reader (the OS caches the
    // file too; eight 16 MB readers added 100 MB of RSS at 100 000 memories).
    conn.execute_batch(if read_only {
        "PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -4000;"
    } else {
        "PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16000;"
    })?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl SqliteStore {
    /// Locks, opens and migrates the database at `opts.path`.
    pub fn open(opts: SqliteOptions) -> Result<Self> {
        if let Some(dir) = opts.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::unavailable(format!("cannot create directory {}: {e}", dir.display())))?;
        }
        let lock = if opts.exclusive { Some(lock::DbLock::acquire(&opts.path)?) } else { None };
        let mut conn = open_connection(&opts.path, false)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::unavailable(format!("the database could not switch to WAL mode (got {mode})")));
        }
        conn.execute_batch(match opts.synchronous {
            Synchronous::Full => "PRAGMA synchronous = FULL",
            Synchronous::Normal => "PRAGMA synchronous = NORMAL",
        })?;
        schema::migrate(&mut conn)?;
        let vectors = match &opts.vectors {
            Some(v) => Some(Vectors {
                index: Arc::new(open_index(&conn, v)?),
                path: v.index_path.clone(),
                sync: tokio::sync::Mutex::new(()),
            }),
            None => None,
        };
        let readers = readers::Readers::open(opts.path.clone(), opts.readers.max(1))?;
        let writer = Arc::new(writer::Writer::start(conn)?);
        Ok(SqliteStore { writer, readers, vectors, keyword: Arc::default(), _lock: lock })
    }

    /// The vector index, if this store keeps one.
    pub fn vector_index(&self) -> Option<&Arc<VectorIndex>> {
        self.vectors.as_ref().map(|v| &v.index)
    }

    /// Brings the vector index up to date with `vector_changes`.
    pub async fn sync_vectors(&self) -> Result<()> {
        let Some(v) = &self.vectors else { return Ok(()) };
        let _one = v.sync.lock().await;
        loop {
            let after = v.index.applied();
            let changes = self.readers.read(move |c| vectors::changes_since(c, after, SYNC_STEP)).await?;
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

    /// Saves the vector index and forgets the changes it includes.
    pub async fn save_vectors(&self) -> Result<()> {
        let Some(v) = &self.vectors else { return Ok(()) };
        let _one = v.sync.lock().await;
        let (index, path) = (Arc::clone(&v.index), v.path.clone());
        let upto = tokio::task::spawn_blocking(move || index.save(&path))
            .await
            .map_err(|e| Error::internal(format!("saving the vector index panicked: {e}")))??;
        self.writer.write(move |c| vectors::prune_changes(c, upto)).await?;
        Ok(())
    }

    /// Nearest memories by vector within the query's scope (expiry and filter
    /// included): `(seq, cosine)`, best first.
    pub async fn vector_hits(&self, q: SearchQuery, vector: Vec<f32>, k: usize) -> Result<Vec<(i64, f64)>> {
        let Some(v) = &self.vectors else {
            return Err(Error::unprocessable("vector search needs an embedder; this server has none configured"));
        };
        let needs_set = q.filter.is_some() || q.items_only;
        let allowed = if needs_set {
            let q2 = q.clone();
            self.readers.read(move |c| search_sql::scope_seqs(c, &q2, FILTER_SET_CAP)).await?
        } else {
            None
        };
        let index = Arc::clone(&v.index);
        let ns = q.namespace_prefix.joined();
        let tier = (q.tiers.len() == 1).then(|| q.tiers[0]);
        let tenant = q.tenant.clone();
        // Oversample when the filter could not restrict the walk itself.
        let want = if needs_set && allowed.is_none() { k * 4 } else { k };
        let hits = tokio::task::spawn_blocking(move || {
            let scope = Scope {
                tenant: &tenant,
                namespace: if ns.is_empty() { NsScope::Any } else { NsScope::Prefix(&ns) },
                tier,
                unkeyed_only: false,
                allowed: allowed.as_ref(),
            };
            index.search(&vector, want, &scope)
        })
        .await
        .map_err(|e| Error::internal(format!("vector search panicked: {e}")))??;
        // The index knows placement, not expiry or the filter's full verdict.
        let seqs: Vec<i64> = hits.iter().map(|(s, _)| *s as i64).collect();
        let live = self.readers.read(move |c| search_sql::in_scope(c, &q, &seqs)).await?;
        Ok(hits.into_iter().map(|(s, cos)| (s as i64, cos as f64)).filter(|(s, _)| live.contains(s)).take(k).collect())
    }

    /// The cosine between `vector` and each of `seqs` that has a vector.
    pub async fn cosines(&self, seqs: Vec<i64>, vector: Vec<f32>) -> Result<std::collections::HashMap<i64, f64>> {
        let Some(v) = &self.vectors else { return Ok(Default::default()) };
        let index = Arc::clone(&v.index);
        tokio::task::spawn_blocking(move || {
            let mut out = std::collections::HashMap::new();
            for s in seqs {
                if let Some(w) = index.vector(s as u64)? {
                    out.insert(s, crate::vector::dot(&vector, &w) as f64);
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| Error::internal(format!("vector lookup panicked: {e}")))?
    }

    /// BM25 scores of those `seqs` that match the words of `text`.
    pub async fn keyword_scores(&self, text: &str, seqs: Vec<i64>) -> Result<std::collections::HashMap<i64, f64>> {
        let (text, keyword) = (text.to_owned(), Arc::clone(&self.keyword));
        self.readers.read(move |c| keyword.scores(c, &text, &seqs)).await
    }

    pub async fn pending_embeddings(&self, tenant: &str, prefix: &Namespace) -> Result<u64> {
        let (tenant, prefix) = (tenant.to_owned(), prefix.clone());
        self.readers.read(move |c| vectors::pending_count(c, &tenant, &prefix)).await
    }

    pub async fn take_pending(&self, max: usize, exclude: Vec<String>) -> Result<Vec<PendingText>> {
        self.readers.read(move |c| vectors::pending_batch(c, max, &exclude)).await
    }

    /// Stores embeddings of queued memories (`(seq, gen, vector)`), then updates the index.
    pub async fn store_embeddings(&self, done: Vec<(i64, i64, Vec<f32>)>) -> Result<usize> {
        let n = self.writer.write(move |c| vectors::store_queued(c, &done)).await?;
        self.sync_vectors().await?;
        Ok(n)
    }

    pub async fn still_queued(&self, seqs: Vec<i64>) -> Result<usize> {
        self.readers.read(move |c| vectors::still_queued(c, &seqs)).await
    }

    pub async fn tenant_model(&self, tenant: &str) -> Result<Option<TenantModel>> {
        let tenant = tenant.to_owned();
        self.readers.read_point(move |c| vectors::tenant_model(c, &tenant)).await
    }

    pub async fn record_tenant_model(&self, tenant: &str, model: TenantModel, now: Millis) -> Result<TenantModel> {
        let tenant = tenant.to_owned();
        self.writer.write(move |c| vectors::record_tenant_model(c, &tenant, &model, now)).await
    }

    /// Drops a tenant's vectors and queues its memories for embedding again.
    pub async fn requeue_tenant(&self, tenant: &str) -> Result<usize> {
        let tenant = tenant.to_owned();
        let n = self.writer.write(move |c| vectors::requeue_tenant(c, &tenant)).await?;
        self.sync_vectors().await?;
        Ok(n)
    }

    pub async fn tenants(&self) -> Result<Vec<String>> {
        self.readers.read(vectors::tenants).await
    }

    pub async fn put_memories(&self, tenant: &str, batch: Vec<NewMemory>, now: Millis) -> Result<Vec<(WriteStatus, Memory)>> {
        let tenant = tenant.to_owned();
        let touches_vectors = batch.iter().any(|m| m.embedding.is_some());
        let mut encoded = memories::encode(batch)?;
        if let (Some(index), true) = (self.vector_index().cloned(), touches_vectors) {
            let t = tenant.clone();
            encoded = tokio::task::spawn_blocking(move || memories::find_near_duplicates(&t, &mut encoded, &index).map(|()| encoded))
                .await
                .map_err(|e| Error::internal(format!("duplicate search panicked: {e}")))??;
        }
        let written = self.writer.write(move |c| memories::put_batch(c, &tenant, encoded, now)).await?;
        let out: Vec<(WriteStatus, Memory)> = written.into_iter().map(memories::Written::into_memory).collect();
        if touches_vectors || out.iter().any(|(s, _)| *s != WriteStatus::Created) {
            self.sync_vectors().await?;
        }
        Ok(out)
    }

    pub async fn append_turns(&self, a: AppendTurns) -> Result<Appended> {
        self.writer.write(move |c| sessions::append(c, &a)).await
    }

    pub async fn get_session(&self, tenant: &str, id: &str, window: usize, now: Millis) -> Result<Option<Session>> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.readers.read_point(move |c| sessions::get(c, &tenant, &id, window, now)).await
    }

    pub async fn delete_session(&self, tenant: &str, id: &str, now: Millis) -> Result<bool> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.writer.write(move |c| sessions::delete(c, &tenant, &id, now)).await
    }

    pub async fn queue_distillation(&self, tenant: &str, id: &str, now: Millis) -> Result<Option<i64>> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.writer.write(move |c| sessions::queue_rest(c, &tenant, &id, now)).await
    }

    pub async fn sweep_sessions(&self, now: Millis, batch: usize) -> Result<usize> {
        self.writer.write(move |c| sessions::sweep(c, now, batch)).await
    }

    pub async fn due_distill_jobs(&self, now: Millis, max: usize) -> Result<Vec<DistillJob>> {
        self.readers.read(move |c| sessions::due_distill_jobs(c, now, max)).await
    }

    pub async fn distill_job(&self, id: i64) -> Result<Option<DistillJob>> {
        self.readers.read_point(move |c| sessions::distill_job(c, id)).await
    }

    pub async fn session_summary(&self, tenant: &str, id: &str) -> Result<String> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.readers.read_point(move |c| sessions::summary(c, &tenant, &id)).await
    }

    pub async fn finish_distill(&self, job: DistillJob, summary: String, batch: Vec<NewMemory>, now: Millis) -> Result<Option<Vec<(WriteStatus, Memory)>>> {
        let encoded = memories::encode(batch)?;
        let written = self.writer.write(move |c| sessions::finish_distill(c, &job, &summary, encoded, now)).await?;
        Ok(written.map(|w| w.into_iter().map(memories::Written::into_memory).collect()))
    }

    pub async fn retry_job(&self, id: i64, error: String, run_after: Millis) -> Result<()> {
        self.writer.write(move |c| sessions::retry_job(c, id, &error, run_after)).await
    }

    /// Promotes up to `max` episodic memories with salience ≥ `threshold`
    /// (merging those with a semantic near-duplicate).
    pub async fn promote(&self, threshold: f64, now: Millis, max: usize) -> Result<Promotion> {
        let mut cands = self.readers.read(move |c| promotion::candidates(c, threshold, now, max)).await?;
        if cands.is_empty() {
            return Ok(Promotion::default());
        }
        if let Some(index) = self.vector_index().cloned() {
            cands = tokio::task::spawn_blocking(move || -> Result<Vec<promotion::Candidate>> {
                for cand in cands.iter_mut() {
                    let Some(v) = &cand.vector else { continue };
                    let scope = Scope {
                        tenant: &cand.tenant,
                        namespace: NsScope::Exact(&cand.namespace),
                        tier: Some(crate::model::Tier::Semantic),
                        unkeyed_only: true,
                        allowed: None,
                    };
                    cand.near = index.near(v, &scope, crate::model::memory::DUPLICATE_COSINE)?.into_iter().map(|h| h.0).collect();
                }
                Ok(cands)
            })
            .await
            .map_err(|e| Error::internal(format!("promotion's duplicate search panicked: {e}")))??;
        }
        let done = self.writer.write(move |c| promotion::promote(c, &cands, threshold, now)).await?;
        if done != Promotion::default() {
            self.sync_vectors().await?;
        }
        Ok(done)
    }

    pub async fn apply_citations(&self, cites: Vec<(String, String, u32)>, now: Millis) -> Result<usize> {
        let half_life = crate::model::memory::SALIENCE_HALF_LIFE_MS;
        self.writer.write(move |c| salience::apply_citations(c, &cites, half_life, now)).await
    }

    pub async fn decay_salience(&self, now: Millis, batch: usize) -> Result<usize> {
        let half_life = crate::model::memory::SALIENCE_HALF_LIFE_MS;
        self.writer.write(move |c| salience::decay_salience(c, half_life, now, batch)).await
    }

    pub async fn get_memory(&self, tenant: &str, id: &str, now: Millis) -> Result<Option<Memory>> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.readers.read_point(move |c| memories::get(c, &tenant, &id, now)).await
    }

    pub async fn get_by_key(&self, tenant: &str, ns: &Namespace, key: &str, now: Millis) -> Result<Option<Memory>> {
        let (tenant, ns, key) = (tenant.to_owned(), ns.joined(), key.to_owned());
        self.readers.read_point(move |c| memories::get_by_key(c, &tenant, &ns, &key, now)).await
    }

    pub async fn update_memory(&self, tenant: &str, id: &str, patch: MemoryPatch, if_version: Option<i64>, now: Millis) -> Result<Memory> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        let m = self.writer.write(move |c| memories::update(c, &tenant, &id, &patch, if_version, now)).await?;
        self.sync_vectors().await?;
        Ok(m)
    }

    pub async fn delete_memory(&self, tenant: &str, id: &str, now: Millis) -> Result<bool> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        let deleted = self.writer.write(move |c| memories::delete(c, &tenant, &id, now)).await?;
        self.sync_vectors().await?;
        Ok(deleted)
    }

    pub async fn delete_by_key(&self, tenant: &str, ns: &Namespace, key: &str) -> Result<bool> {
        let (tenant, ns, key) = (tenant.to_owned(), ns.joined(), key.to_owned());
        let deleted = self.writer.write(move |c| memories::delete_by_key(c, &tenant, &ns, &key)).await?;
        self.sync_vectors().await?;
        Ok(deleted)
    }

    pub async fn refresh_ttl(&self, tenant: &str, ids: Vec<String>, now: Millis) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let tenant = tenant.to_owned();
        self.writer.write(move |c| memories::refresh_ttl(c, &tenant, &ids, now)).await
    }

    pub async fn list_memories(&self, q: ListQuery) -> Result<Vec<Memory>> {
        self.readers.read(move |c| memories::list(c, &q)).await
    }

    pub async fn filter_listing(&self, q: SearchQuery) -> Result<Vec<Memory>> {
        self.readers.read(move |c| search_sql::filter_listing(c, &q)).await
    }

    pub async fn keyword_hits(&self, q: SearchQuery, k: usize) -> Result<Vec<(i64, f64)>> {
        let keyword = Arc::clone(&self.keyword);
        self.readers.read(move |c| keyword.hits(c, &q, k)).await
    }

    pub async fn expand(&self, q: SearchQuery, seqs: Vec<i64>, max_gap: Option<Millis>) -> Result<Expansion> {
        self.readers.read(move |c| search_sql::expand(c, &q, &seqs, max_gap)).await
    }

    pub async fn hydrate(&self, q: SearchQuery, seqs: Vec<i64>) -> Result<Vec<(i64, Memory)>> {
        self.readers.read(move |c| search_sql::hydrate(c, &q, &seqs)).await
    }

    pub async fn list_namespaces(&self, q: NamespaceQuery) -> Result<Vec<Namespace>> {
        self.readers.read(move |c| memories::list_namespaces(c, &q)).await
    }

    pub async fn sweep_expired(&self, now: Millis, batch: usize) -> Result<usize> {
        let n = self.writer.write(move |c| memories::sweep_expired(c, now, batch)).await?;
        if n > 0 {
            self.sync_vectors().await?;
        }
        Ok(n)
    }

    pub async fn create_key(&self, tenant: &str, name: &str, scopes: Scopes) -> Result<(KeyInfo, String)> {
        let (tenant, name) = (tenant.to_owned(), name.to_owned());
        self.writer.write(move |c| keys::create(c, &tenant, &name, scopes)).await
    }

    pub async fn list_keys(&self, tenant: Option<&str>) -> Result<Vec<KeyInfo>> {
        let tenant = tenant.map(str::to_owned);
        self.readers.read(move |c| keys::list(c, tenant.as_deref())).await
    }

    pub async fn revoke_key(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        self.writer.write(move |c| keys::revoke(c, &id)).await
    }

    pub async fn find_key(&self, hash: [u8; 32]) -> Result<Option<KeyGrant>> {
        self.readers.read_point(move |c| keys::find(c, &hash)).await
    }

    pub async fn has_keys(&self) -> Result<bool> {
        self.readers.read(keys::any_active).await
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

/// Loads the saved index (or rebuilds it from `memory_vectors`), then replays
/// the changes since it was saved.
fn open_index(conn: &Connection, v: &VectorOptions) -> Result<VectorIndex> {
    let started = std::time::Instant::now();
    let (index, how) = match VectorIndex::load(&v.index_path, v.dims)? {
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
