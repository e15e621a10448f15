//! An exclusive lock on the database file, held for the life of the store, so two
//! servers never write one SQLite file. The holder's pid is written into the lock
//! file so the second process can name it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Held while the store is open; the OS releases it when the process dies.
#[derive(Debug)]
pub struct DbLock {
    _file: File,
}

impl DbLock {
    /// Takes the lock next to `db_path`, or fails at once naming the holder.
    pub fn acquire(db_path: &Path) -> Result<Self> {
        let mut name = db_path.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::unavailable(format!("cannot open lock file {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(Error::unavailable(format!(
                    "the database {} is in use by another engram process ({}); stop it or use another --data-dir",
                    db_path.display(),
                    if holder.is_empty() { "holder unknown" } else { holder }
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::unavailable(format!("cannot lock {}: {e}", path.display())))
            }
        }
        let stamp = format!(
            "pid {} since {}",
            std::process::id(),
            crate::time::format_rfc3339(crate::clock::Clock::now_ms(&crate::clock::SystemClock))
        );
        let written = file
            .set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(stamp.as_bytes()))
            .and_then(|_| file.flush());
        if let Err(e) = written {
            tracing::warn!(error = %e, "could not record the lock holder");
        }
        Ok(DbLock { _file: file })
    }
}
