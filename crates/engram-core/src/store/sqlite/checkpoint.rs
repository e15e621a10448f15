//! WAL checkpoints, mostly off the writer thread.
//!
//! SQLite's automatic checkpoint runs inside the COMMIT that finds the WAL at
//! 1 000 pages or more, on the committing connection: under a stream of
//! batched writes the single writer spent about a fifth of its time copying
//! the WAL into the database file. Here the writer's WAL hook only signals,
//! and a thread of its own copies the WAL with a PASSIVE checkpoint on its own
//! connection, beside the writer and the readers, waiting for neither (see
//! <https://sqlite.org/wal.html#checkpointing>).
//!
//! The WAL only restarts from its start when a write transaction begins with
//! all of it copied, which under a steady stream of commits the thread alone
//! would rarely see: the writer commits while it copies. So once the thread
//! has copied what there was, the writer copies the few frames committed
//! since, before its next group ([`Tail::copy_if_due`]). The thread ends when
//! the writer's connection closes (the hook, and with it the signal's sender,
//! goes with it).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use rusqlite::Connection;

use crate::error::{Error, Result};

/// WAL size in pages from which a commit asks for a checkpoint (SQLite's own
/// `wal_autocheckpoint` default).
const CHECKPOINT_PAGES: i32 = 1000;

/// What the checkpoint thread left for the writer: the frames committed while
/// it copied.
#[derive(Default)]
pub struct Tail(AtomicBool);

impl Tail {
    /// Copies the rest of the WAL on the writer's connection, if the thread
    /// finished a checkpoint since the last call. Called between groups.
    pub fn copy_if_due(&self, writer: &Connection) {
        if self.0.swap(false, Ordering::AcqRel) {
            passive(writer);
        }
    }
}

fn passive(conn: &Connection) {
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "WAL checkpoint failed; the next commit past the mark retries it");
    }
}

/// Starts the checkpoint thread for the database at `path` and points the
/// writer's WAL hook at it (which also turns SQLite's automatic checkpoint on
/// that connection off). The writer calls the returned [`Tail`] between groups.
pub fn start(writer: &mut Connection, path: &Path, busy_timeout: std::time::Duration) -> Result<Arc<Tail>> {
    let conn = super::open_connection(path, false, busy_timeout)?;
    let tail = Arc::new(Tail::default());
    let (signal, wanted) = mpsc::sync_channel::<()>(1);
    let left = Arc::clone(&tail);
    std::thread::Builder::new()
        .name("engram-sqlite-checkpoint".into())
        .spawn(move || {
            while wanted.recv().is_ok() {
                passive(&conn);
                left.0.store(true, Ordering::Release);
            }
        })
        .map_err(|e| Error::internal(format!("cannot start the checkpoint thread: {e}")))?;
    writer.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages: std::ffi::c_int| {
        if pages >= CHECKPOINT_PAGES {
            // Full: a checkpoint is already asked for, and it copies this commit too.
            let _ = signal.try_send(());
        }
        Ok(())
    }))?;
    Ok(tail)
}
