//! The single writer: one thread owns the write connection and group-commits.
//!
//! Callers send closures over a channel. The thread takes every closure that is
//! waiting (up to [`MAX_GROUP`]), runs each inside its own SAVEPOINT of one
//! transaction, commits once, and only then answers the callers. One failing
//! closure is rolled back alone; a failing COMMIT fails the whole group. So
//! under load many writes share one fsync, and an answer always means durable.
//! Around each commit it keeps the [`EarliestExpiry`] current.

use std::sync::Arc;
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::expiry::EarliestExpiry;
use crate::error::{Error, Result};

/// Most writes committed together.
pub const MAX_GROUP: usize = 512;
const QUEUE_DEPTH: usize = 4096;

trait WriteOp: Send {
    fn apply(&mut self, conn: &Connection) -> Result<()>;
    fn finish(self: Box<Self>, outcome: Result<()>);
}

struct Op<T, F> {
    f: Option<F>,
    out: Option<T>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T: Send, F: FnOnce(&Connection) -> Result<T> + Send> WriteOp for Op<T, F> {
    fn apply(&mut self, conn: &Connection) -> Result<()> {
        let f = self.f.take().ok_or_else(|| Error::internal("write op applied twice"))?;
        self.out = Some(f(conn)?);
        Ok(())
    }

    fn finish(mut self: Box<Self>, outcome: Result<()>) {
        let result = outcome.and_then(|()| self.out.take().ok_or_else(|| Error::internal("write op lost its result")));
        let _ = self.reply.send(result);
    }
}

/// Handle to the writer thread.
pub struct Writer {
    tx: std::sync::Mutex<Option<mpsc::Sender<Box<dyn WriteOp>>>>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub fn start(conn: Connection, expiry: Arc<EarliestExpiry>) -> Result<Self> {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let thread = std::thread::Builder::new()
            .name("engram-sqlite-writer".into())
            .spawn(move || run(conn, rx, &expiry))
            .map_err(|e| Error::internal(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { tx: std::sync::Mutex::new(Some(tx)), thread: std::sync::Mutex::new(Some(thread)) })
    }

    /// Runs `f` in the next group commit and returns its result once durable.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let sender = self
            .tx
            .lock()
            .map_err(|_| Error::internal("writer lock poisoned"))?
            .clone()
            .ok_or_else(|| Error::unavailable("the store is shutting down"))?;
        let (reply, rx) = oneshot::channel();
        sender
            .send(Box::new(Op { f: Some(f), out: None, reply }))
            .await
            .map_err(|_| Error::unavailable("the store is shutting down"))?;
        rx.await.map_err(|_| Error::internal("the writer thread stopped"))?
    }

    /// Stops taking writes, finishes the queued ones, checkpoints the WAL and
    /// waits for the thread to end. Safe to call twice.
    pub fn shutdown(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

fn run(conn: Connection, mut rx: mpsc::Receiver<Box<dyn WriteOp>>, expiry: &EarliestExpiry) {
    let mut group: Vec<Box<dyn WriteOp>> = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = rx.blocking_recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(op) => group.push(op),
                Err(_) => break,
            }
        }
        commit_group(&conn, &mut group, expiry);
    }
    match conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        Ok(()) => tracing::info!("checkpointed the WAL"),
        Err(e) => tracing::warn!(error = %e, "WAL checkpoint at shutdown failed"),
    }
}

/// Runs one of the group's fixed statements, prepared once per connection
/// (`execute_batch` would parse it again for every write).
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

fn commit_group(conn: &Connection, group: &mut Vec<Box<dyn WriteOp>>, expiry: &EarliestExpiry) {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        tracing::warn!(error = %e, writes = group.len(), "cannot begin a write transaction");
        group.drain(..).for_each(|op| op.finish(Err(copy_of(&e))));
        return;
    }
    let mut applied = Vec::with_capacity(group.len());
    for mut op in group.drain(..) {
        let outcome = exec(conn, "SAVEPOINT op").map_err(Error::from).and_then(|()| op.apply(conn));
        match outcome {
            Ok(()) => match exec(conn, "RELEASE op") {
                Ok(()) => applied.push(op),
                Err(e) => op.finish(Err(e.into())),
            },
            Err(e) => {
                let _ = exec(conn, "ROLLBACK TO op").and_then(|()| exec(conn, "RELEASE op"));
                op.finish(Err(e));
            }
        }
    }
    // Lowered before the rows are visible, exact once they are (or are not);
    // when it cannot be read, searches check expiry in SQL until it can.
    if expiry.lower_to(conn).is_err() {
        expiry.unknown();
    }
    let committed = exec(conn, "COMMIT").map_err(|e| copy_of(&e));
    if committed.is_err() {
        let _ = exec(conn, "ROLLBACK");
    }
    if let Err(e) = expiry.set_from(conn) {
        expiry.unknown();
        tracing::warn!(error = %e, "cannot read the earliest expiry");
    }
    match committed {
        Ok(()) => applied.into_iter().for_each(|op| op.finish(Ok(()))),
        Err(e) => {
            tracing::error!(error = %e, writes = applied.len(), "group commit failed");
            applied.into_iter().for_each(|op| op.finish(Err(e.clone())));
        }
    }
}

/// The domain error for a failure shared by every write of a group (each
/// caller gets its own copy).
fn copy_of(e: &rusqlite::Error) -> Error {
    match e {
        rusqlite::Error::SqliteFailure(f, msg) => rusqlite::Error::SqliteFailure(*f, msg.clone()).into(),
        other => Error::internal(format!("sqlite: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write as the test queues it.
    type Write = Box<dyn FnOnce(&Connection) -> Result<()> + Send>;

    fn insert(conn: &Connection, x: i64) -> Result<()> {
        conn.execute("INSERT INTO t (x) VALUES (?1)", [x])?;
        Ok(())
    }

    fn rows(path: &std::path::Path) -> Vec<i64> {
        let c = Connection::open(path).expect("open");
        let mut s = c.prepare("SELECT x FROM t ORDER BY x").expect("prepare");
        let out = s.query_map([], |r| r.get(0)).expect("query").collect::<rusqlite::Result<Vec<i64>>>();
        out.expect("rows")
    }

    /// A failing write of a group is rolled back alone, whether it is the
    /// first of its group or not, and the others commit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_write_is_undone_alone_wherever_it_is_in_its_group() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("engram.db");
        let mut c = super::super::open_connection(
            &super::super::Location::File(path.clone()),
            false,
            std::time::Duration::from_secs(1),
        )
        .expect("open");
        super::super::schema::migrate(&mut c, 0).expect("migrate");
        c.execute_batch("CREATE TABLE t (x INTEGER NOT NULL UNIQUE)").expect("table");
        let expiry = Arc::new(EarliestExpiry::load(&c).expect("expiry"));
        let writer = Arc::new(Writer::start(c, expiry).expect("writer"));

        // Hold the writer inside a first group until the next writes are
        // queued, so they make one group together, in order.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (entered, started) = tokio::sync::oneshot::channel::<()>();
        let blocker = tokio::spawn({
            let w = Arc::clone(&writer);
            async move {
                w.write(move |c| {
                    let _ = entered.send(());
                    held.recv().map_err(|_| Error::internal("released"))?;
                    insert(c, 1)
                })
                .await
            }
        });
        started.await.expect("the first group started");
        // In one group: a write that inserts and then fails, a good one, a
        // failing one in the middle, and a last good one.
        let queued_now = || {
            let tx = writer.tx.lock().expect("lock");
            tx.as_ref().map_or(0, |t| t.max_capacity() - t.capacity())
        };
        let mut queued = Vec::new();
        let writes: Vec<Write> = vec![
            Box::new(|c| {
                insert(c, 10)?;
                Err(Error::conflict("the first write fails"))
            }),
            Box::new(|c| insert(c, 11)),
            Box::new(|c| {
                insert(c, 12)?;
                insert(c, 11)
            }),
            Box::new(|c| insert(c, 13)),
        ];
        for (i, f) in writes.into_iter().enumerate() {
            let w = Arc::clone(&writer);
            queued.push(tokio::spawn(async move { w.write(f).await }));
            // Queued in this order before the next is sent.
            while queued_now() < i + 1 {
                tokio::task::yield_now().await;
            }
        }
        release.send(()).expect("release");
        blocker.await.expect("join").expect("the first group commits");
        let mut outcomes = Vec::new();
        for q in queued {
            outcomes.push(q.await.expect("join").is_ok());
        }
        assert_eq!(outcomes, [false, true, false, true]);
        assert_eq!(rows(&path), [1, 11, 13]);
        writer.shutdown();
    }
}
