//! PostgreSQL's errors in the domain's words: a server that cannot be reached,
//! is shutting down or has no connection free is `unavailable` (try again
//! shortly), a statement that ran past its time is `timeout`, a full disk is
//! `storage_full`; anything else is an internal error. Details go to the log,
//! never to the caller (they may name hosts and tables).

use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;

use crate::error::Error;

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        let Some(code) = e.code() else {
            // No SQLSTATE: the connection failed (refused, reset, closed, timed
            // out), or a value could not be encoded or decoded (a bug).
            let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
            if e.is_closed() || io || e.to_string().starts_with("timeout") {
                tracing::warn!(error = %e, "database connection failed");
                return Error::unavailable("the database cannot be reached; try again shortly");
            }
            return Error::internal(format!("postgres: {e}"));
        };
        let class = &code.code()[..2];
        if *code == SqlState::DISK_FULL || *code == SqlState::OUT_OF_MEMORY {
            tracing::error!(error = %e, "database out of space");
            return Error::storage_full("the database server is out of space; free space, then try again");
        }
        if *code == SqlState::CHARACTER_NOT_IN_REPERTOIRE {
            // A bound string held U+0000, which PostgreSQL cannot store.
            return Error::invalid("text must not contain the NUL character (U+0000)");
        }
        if *code == SqlState::QUERY_CANCELED {
            return Error::timeout("the database took too long to answer");
        }
        // 08: connection exceptions; 57P0x: shutting down or restarting; 53:
        // out of connections; 40: serialization failures and deadlocks.
        if matches!(class, "08" | "40" | "53") || code.code().starts_with("57P") {
            tracing::warn!(error = %e, "database unavailable");
            return Error::unavailable("the database is unavailable; try again shortly");
        }
        // `DbError`'s own Display carries the message ("db error" alone says nothing).
        match e.as_db_error() {
            Some(db) => Error::internal(format!("postgres: {db}")),
            None => Error::internal(format!("postgres: {e}")),
        }
    }
}

impl From<PoolError> for Error {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Backend(e) => e.into(),
            PoolError::Closed => Error::unavailable("the store is closed"),
            other => {
                tracing::warn!(error = %other, "no database connection");
                Error::unavailable("no database connection could be had in time; try again shortly")
            }
        }
    }
}
