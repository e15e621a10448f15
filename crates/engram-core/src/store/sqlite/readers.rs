//! A pool of read-only connections. WAL lets them read while the writer writes;
//! queries run on tokio's blocking threads so the async workers never wait on disk.
//!
//! Cancel-safe: a connection is held by a [`Lease`] together with its permit,
//! and the lease lives wherever the query runs (the blocking thread). A caller
//! that stops waiting — a client gone, a request timed out, the other half of
//! a joined search failed — leaves the query to finish there, and the
//! connection goes back to the pool before its permit is released. A query
//! that panics gives back a fresh connection instead (the old one may be
//! inside a transaction).

use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};

pub struct Readers {
    conns: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    location: super::Location,
    busy_timeout: std::time::Duration,
}

/// A pooled connection and the permit that reserved it; dropping it returns
/// the connection, then the permit.
struct Lease {
    pool: Arc<Readers>,
    conn: Option<Connection>,
    _permit: OwnedSemaphorePermit,
}

impl Lease {
    fn conn(&self) -> Result<&Connection> {
        self.conn.as_ref().ok_or_else(|| Error::internal("a reader lease without its connection"))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let conn = if std::thread::panicking() {
            super::open_connection(&self.pool.location, true, self.pool.busy_timeout).ok()
        } else {
            self.conn.take()
        };
        if let (Some(c), Ok(mut conns)) = (conn, self.pool.conns.lock()) {
            conns.push(c);
        }
    }
}

impl Readers {
    pub fn open(location: super::Location, size: usize, busy_timeout: std::time::Duration) -> Result<Arc<Self>> {
        let conns =
            (0..size).map(|_| super::open_connection(&location, true, busy_timeout)).collect::<Result<Vec<_>>>()?;
        Ok(Arc::new(Readers {
            conns: Mutex::new(conns),
            permits: Arc::new(Semaphore::new(size)),
            location,
            busy_timeout,
        }))
    }

    /// Runs a short point query (a primary-key lookup) right here on the async
    /// worker when a connection is free: such a query takes microseconds, less
    /// than a hop to the blocking pool. Falls back to [`Readers::read`].
    pub async fn read_point<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
            return self.read(f).await;
        };
        let lease = self.lease(permit)?;
        f(lease.conn()?)
    }

    /// Runs `f` on a pooled connection on a blocking thread.
    pub async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let permit =
            Arc::clone(&self.permits).acquire_owned().await.map_err(|_| Error::unavailable("the store is closed"))?;
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let lease = this.lease(permit)?;
            f(lease.conn()?)
        })
        .await
        .map_err(|e| Error::internal(format!("read task failed: {e}")))?
    }

    /// Takes a connection for the holder of `permit` (so one is free).
    fn lease(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> Result<Lease> {
        let conn = self
            .conns
            .lock()
            .map_err(|_| Error::internal("reader pool lock poisoned"))?
            .pop()
            .ok_or_else(|| Error::internal("reader pool empty despite a permit"))?;
        Ok(Lease { pool: Arc::clone(self), conn: Some(conn), _permit: permit })
    }
}
