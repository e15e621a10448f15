//! SQLite's errors in the domain's words: a busy or locked database is
//! `unavailable` (try again shortly), a full disk is `storage_full`, a
//! database that cannot be opened or written says so; anything else is an
//! internal error whose detail goes to the log.

use rusqlite::ErrorCode as Sqlite;

use crate::error::Error;

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        let code = match &e {
            rusqlite::Error::SqliteFailure(f, _) => Some(f.code),
            _ => None,
        };
        match code {
            Some(Sqlite::DatabaseBusy | Sqlite::DatabaseLocked) => {
                Error::unavailable("the database is busy with another writer; try again shortly")
            }
            Some(Sqlite::DiskFull) => {
                Error::storage_full("the disk holding the database is full; free space, then try again")
            }
            Some(Sqlite::ReadOnly | Sqlite::CannotOpen | Sqlite::PermissionDenied) => {
                Error::unavailable(format!("the database cannot be written: {e}"))
            }
            _ => Error::internal(format!("sqlite: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn failure(code: std::os::raw::c_int) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn sqlite_errors_become_domain_errors() {
        assert_eq!(Error::from(failure(rusqlite::ffi::SQLITE_BUSY)).code(), ErrorCode::Unavailable);
        assert_eq!(Error::from(failure(rusqlite::ffi::SQLITE_LOCKED)).code(), ErrorCode::Unavailable);
        assert_eq!(Error::from(failure(rusqlite::ffi::SQLITE_FULL)).code(), ErrorCode::StorageFull);
        assert_eq!(Error::from(failure(rusqlite::ffi::SQLITE_CORRUPT)).code(), ErrorCode::Internal);
        assert!(!Error::from(failure(rusqlite::ffi::SQLITE_FULL)).public_message().contains("sqlite"));
    }
}
