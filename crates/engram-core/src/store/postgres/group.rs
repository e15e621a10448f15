//! Group commit on PostgreSQL, as SQLite's writer does it: every write of a
//! node goes to one writer task, which takes every write waiting (up to
//! [`MAX_GROUP`]), runs each inside its own SAVEPOINT of one transaction
//! holding the write lock, commits once, and only then answers. One failing
//! write is rolled back alone; a failing COMMIT fails the group. Writes are
//! serialised by the cluster-wide write lock anyway (see `mod.rs`); grouping
//! them lets many share one lock acquisition and one WAL flush instead of
//! waiting for each other's.
//!
//! Also here: [`Conns`], the pool behind its circuit breaker, which the
//! writer task and the store's reads share.

use std::sync::{Arc, Mutex};

use deadpool_postgres::{Object, Pool};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};

use super::conn::PgConn;
use super::WRITE_LOCK;
use crate::breaker::Breaker;
use crate::error::{Error, ErrorCode, Result};
use crate::store::Tx;

/// Most writes committed together.
pub const MAX_GROUP: usize = 256;
const QUEUE_DEPTH: usize = 4096;

/// The connection pool behind its breaker: after a few failed connection
/// attempts in a row, requests fail at once (503, try again) instead of each
/// waiting for a connection, until a trial after the cool-down succeeds.
pub struct Conns {
    pub pool: Pool,
    pub breaker: Breaker,
}

impl Conns {
    /// A pooled connection, unless the database is known to be unreachable.
    pub async fn client(&self) -> Result<Object> {
        if self.breaker.admit().is_err() {
            return Err(Error::unavailable("the database is unreachable; try again shortly"));
        }
        match self.pool.get().await {
            Ok(c) => {
                self.breaker.success();
                Ok(c)
            }
            Err(e) => {
                let e = Error::from(e);
                if e.code() == ErrorCode::Unavailable {
                    self.breaker.failure();
                }
                Err(e)
            }
        }
    }
}

trait WriteOp: Send {
    fn apply(&mut self, tx: &mut dyn Tx) -> Result<()>;
    fn finish(self: Box<Self>, outcome: Result<()>);
}

struct Op<T, F> {
    f: Option<F>,
    out: Option<T>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T: Send, F: FnOnce(&mut dyn Tx) -> Result<T> + Send> WriteOp for Op<T, F> {
    fn apply(&mut self, tx: &mut dyn Tx) -> Result<()> {
        let f = self.f.take().ok_or_else(|| Error::internal("write op applied twice"))?;
        self.out = Some(f(tx)?);
        Ok(())
    }

    fn finish(mut self: Box<Self>, outcome: Result<()>) {
        let result = outcome.and_then(|()| self.out.take().ok_or_else(|| Error::internal("write op lost its result")));
        let _ = self.reply.send(result);
    }
}

/// Handle to the writer task.
pub struct GroupWriter {
    tx: Mutex<Option<mpsc::Sender<Box<dyn WriteOp>>>>,
}

impl GroupWriter {
    /// Starts the writer task on the runtime of the caller.
    pub fn start(conns: Arc<Conns>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(run(conns, rx));
        GroupWriter { tx: Mutex::new(Some(tx)) }
    }

    /// Runs `f` in the next group and returns its result once committed.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Tx) -> Result<T> + Send + 'static,
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
        rx.await.map_err(|_| Error::internal("the writer task stopped"))?
    }

    /// Stops taking writes; the queued ones still run.
    pub fn close(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
    }
}

async fn run(conns: Arc<Conns>, mut rx: mpsc::Receiver<Box<dyn WriteOp>>) {
    while let Some(first) = rx.recv().await {
        let mut group = Vec::with_capacity(8);
        group.push(first);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(op) => group.push(op),
                Err(_) => break,
            }
        }
        let c = match conns.client().await {
            Ok(c) => c,
            Err(e) => {
                group.into_iter().for_each(|op| op.finish(Err(e.clone())));
                continue;
            }
        };
        let rt = Handle::current();
        // A panicking write drops its group's reply channels: those callers
        // get an internal error; the task goes on.
        let _ = tokio::task::spawn_blocking(move || commit_group(c, &rt, group)).await;
    }
}

fn commit_group(mut c: Object, rt: &Handle, group: Vec<Box<dyn WriteOp>>) {
    let fail_all = |group: Vec<Box<dyn WriteOp>>, e: Error| group.into_iter().for_each(|op| op.finish(Err(e.clone())));
    let tx = match rt.block_on(c.transaction()) {
        Ok(tx) => tx,
        Err(e) => return fail_all(group, e.into()),
    };
    if let Err(e) = rt.block_on(tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])) {
        return fail_all(group, e.into());
    }
    // A write alone needs no savepoint: its failure rolls the transaction back.
    let alone = group.len() == 1;
    let mut applied = Vec::with_capacity(group.len());
    for mut op in group {
        if !alone {
            if let Err(e) = rt.block_on(tx.batch_execute("SAVEPOINT op")) {
                op.finish(Err(e.into()));
                continue;
            }
        }
        match op.apply(&mut PgConn::new(&tx, rt)) {
            Ok(()) if alone => applied.push(op),
            Ok(()) => match rt.block_on(tx.batch_execute("RELEASE SAVEPOINT op")) {
                Ok(()) => applied.push(op),
                Err(e) => op.finish(Err(e.into())),
            },
            Err(e) => {
                if !alone {
                    let _ = rt.block_on(tx.batch_execute("ROLLBACK TO SAVEPOINT op; RELEASE SAVEPOINT op"));
                }
                op.finish(Err(e));
            }
        }
    }
    if applied.is_empty() {
        let _ = rt.block_on(tx.rollback());
        return;
    }
    match rt.block_on(tx.commit()) {
        Ok(()) => applied.into_iter().for_each(|op| op.finish(Ok(()))),
        Err(e) => {
            let e = Error::from(e);
            tracing::error!(error = %e, writes = applied.len(), "group commit failed");
            fail_all(applied, e);
        }
    }
}
