//! The embedded SQLite backend: one file, WAL, a group-committing writer thread
//! and a pool of readers. See `schema.rs` for the tables.

mod filter_sql;
mod fts;
mod keys;
mod lock;
mod memories;
mod readers;
mod schema;
mod sql;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, OpenFlags};

use super::{KeyGrant, KeyInfo, ListQuery, NamespaceQuery, Scored, SearchQuery};
use crate::auth::Scopes;
use crate::error::{Error, Result};
use crate::model::{Memory, MemoryPatch, Namespace, NewMemory, WriteStatus};
use crate::time::Millis;

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
}

/// The SQLite store; cheap to share behind an `Arc`.
pub struct SqliteStore {
    writer: Arc<writer::Writer>,
    readers: Arc<readers::Readers>,
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
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16000;")?;
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
        let readers = readers::Readers::open(opts.path.clone(), opts.readers.max(1))?;
        let writer = Arc::new(writer::Writer::start(conn)?);
        Ok(SqliteStore { writer, readers, _lock: lock })
    }

    pub async fn put_memories(&self, tenant: &str, batch: Vec<NewMemory>, now: Millis) -> Result<Vec<(WriteStatus, Memory)>> {
        let tenant = tenant.to_owned();
        let encoded = memories::encode(batch)?;
        let written = self.writer.write(move |c| memories::put_batch(c, &tenant, encoded, now)).await?;
        Ok(written.into_iter().map(memories::Written::into_memory).collect())
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
        self.writer.write(move |c| memories::update(c, &tenant, &id, &patch, if_version, now)).await
    }

    pub async fn delete_memory(&self, tenant: &str, id: &str, now: Millis) -> Result<bool> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.writer.write(move |c| memories::delete(c, &tenant, &id, now)).await
    }

    pub async fn delete_by_key(&self, tenant: &str, ns: &Namespace, key: &str) -> Result<bool> {
        let (tenant, ns, key) = (tenant.to_owned(), ns.joined(), key.to_owned());
        self.writer.write(move |c| memories::delete_by_key(c, &tenant, &ns, &key)).await
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

    pub async fn search(&self, q: SearchQuery) -> Result<Vec<Scored>> {
        self.readers.read(move |c| memories::search(c, &q)).await
    }

    pub async fn list_namespaces(&self, q: NamespaceQuery) -> Result<Vec<Namespace>> {
        self.readers.read(move |c| memories::list_namespaces(c, &q)).await
    }

    pub async fn sweep_expired(&self, now: Millis, batch: usize) -> Result<usize> {
        self.writer.write(move |c| memories::sweep_expired(c, now, batch)).await
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

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.writer.shutdown();
    }
}
