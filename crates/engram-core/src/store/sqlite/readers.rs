//! A pool of read-only connections. WAL lets them read while the writer writes;
//! queries run on tokio's blocking threads so the async workers never wait on disk.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

pub struct Readers {
    conns: Mutex<Vec<Connection>>,
    permits: Semaphore,
    path: PathBuf,
    busy_timeout: std::time::Duration,
}

impl Readers {
    pub fn open(path: PathBuf, size: usize, busy_timeout: std::time::Duration) -> Result<Arc<Self>> {
        let conns = (0..size).map(|_| super::open_connection(&path, true, busy_timeout)).collect::<Result<Vec<_>>>()?;
        Ok(Arc::new(Readers { conns: Mutex::new(conns), permits: Semaphore::new(size), path, busy_timeout }))
    }

    /// Runs a short point query (a primary-key lookup) right here on the async
    /// worker when a connection is free: such a query takes microseconds, less
    /// than a hop to the blocking pool. Falls back to [`Readers::read`].
    pub async fn read_point<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let Ok(_permit) = self.permits.try_acquire() else {
            return self.read(f).await;
        };
        let conn = self.take()?;
        let out = f(&conn);
        self.give_back(conn)?;
        out
    }

    /// Runs `f` on a pooled connection on a blocking thread.
    pub async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let _permit = self.permits.acquire().await.map_err(|_| Error::unavailable("the store is closed"))?;
        let conn = self.take()?;
        let this = Arc::clone(self);
        let joined = tokio::task::spawn_blocking(move || {
            let out = f(&conn);
            (conn, out)
        })
        .await;
        let (conn, out) = match joined {
            Ok(pair) => pair,
            Err(e) => {
                // The closure panicked and took the connection with it: replace it.
                self.give_back(super::open_connection(&this.path, true, this.busy_timeout)?)?;
                return Err(Error::internal(format!("read task failed: {e}")));
            }
        };
        self.give_back(conn)?;
        out
    }

    /// Takes a connection; the caller holds a permit, so one is free.
    fn take(&self) -> Result<Connection> {
        self.conns
            .lock()
            .map_err(|_| Error::internal("reader pool lock poisoned"))?
            .pop()
            .ok_or_else(|| Error::internal("reader pool empty despite a permit"))
    }

    fn give_back(&self, conn: Connection) -> Result<()> {
        self.conns.lock().map_err(|_| Error::internal("reader pool lock poisoned"))?.push(conn);
        Ok(())
    }
}
