//! MongoDB's errors in the domain's words: a server that cannot be reached
//! (or is electing, or shutting down) is `unavailable`; a full disk is
//! `storage_full`; a time limit is `timeout`; anything else is internal.
//! Details go to the log, never to the caller (they may name hosts).

use mongodb::error::{ErrorKind, WriteFailure};

use crate::error::Error;

/// MongoDB's `WriteConflict`: another transaction wrote the document first.
pub const WRITE_CONFLICT: i32 = 112;
/// MongoDB's `DuplicateKey`.
pub const DUPLICATE_KEY: i32 = 11000;

/// The server's error code, if the error carries one.
pub fn code(e: &mongodb::error::Error) -> Option<i32> {
    match e.kind.as_ref() {
        ErrorKind::Command(c) => Some(c.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => Some(w.code),
        _ => None,
    }
}

/// Whether running the transaction again may succeed (a write conflict, a
/// lost connection during it).
pub fn transient(e: &mongodb::error::Error) -> bool {
    e.contains_label("TransientTransactionError") || code(e) == Some(WRITE_CONFLICT)
}

impl From<mongodb::error::Error> for Error {
    fn from(e: mongodb::error::Error) -> Self {
        match e.kind.as_ref() {
            ErrorKind::Io(_)
            | ErrorKind::ServerSelection { .. }
            | ErrorKind::ConnectionPoolCleared { .. }
            | ErrorKind::DnsResolve { .. } => {
                tracing::warn!(error = %e, "database connection failed");
                return Error::unavailable("the database cannot be reached; try again shortly");
            }
            ErrorKind::Authentication { .. } => {
                tracing::error!(error = %e, "database authentication failed");
                return Error::unavailable("the database refused this server's credentials");
            }
            _ => {}
        }
        match code(&e) {
            // MaxTimeMSExpired
            Some(50) => Error::timeout("the database took too long to answer"),
            // OutOfDiskSpace and friends
            Some(14031) => {
                tracing::error!(error = %e, "database out of space");
                Error::storage_full("the database server is out of space; free space, then try again")
            }
            // A document past MongoDB's 16 MiB (a huge item's value is kept
            // as text and as filter fields).
            Some(10334 | 17419 | 17420) => Error::unprocessable(
                "this memory is too large for a MongoDB document (16 MiB, its value stored twice): store a smaller one",
            ),
            // Not primary, shutting down, interrupted, a write concern not met
            // in time, time limits, write conflicts that outlived their retries.
            Some(
                10107 | 13435 | 13436 | 11600 | 11601 | 11602 | 91 | 189 | 6 | 7 | 89 | 9001 | 64 | 262 | 239
                | WRITE_CONFLICT,
            ) => {
                tracing::warn!(error = %e, "database unavailable");
                Error::unavailable("the database is unavailable; try again shortly")
            }
            _ if e.contains_label("TransientTransactionError") || e.contains_label("RetryableWriteError") => {
                tracing::warn!(error = %e, "database unavailable");
                Error::unavailable("the database is unavailable; try again shortly")
            }
            _ => Error::internal(format!("mongodb: {e}")),
        }
    }
}

impl From<mongodb::bson::error::Error> for Error {
    fn from(e: mongodb::bson::error::Error) -> Self {
        Error::internal(format!("bson: {e}"))
    }
}
