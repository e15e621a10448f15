//! Group commit on PostgreSQL, as SQLite's writer does it, in several lanes:
//! every write of a node goes to one of [`LANES`] writer tasks, which takes
//! every write waiting in its lane (up to [`MAX_GROUP`]), runs each inside
//! its own SAVEPOINT of one transaction, commits once, and only then
//! answers. One failing write is rolled back alone; a failing COMMIT fails
//! the group. Grouping lets many writes share one lock acquisition and one
//! WAL flush.
//!
//! Which writes may run at once is decided by advisory locks, taken at the
//! start of a group's transaction (so they are held to its commit, on every
//! node alike):
//!
//! - a group whose writes name their places ([`WriteScope::Places`]) takes
//!   the write lock shared, then each place's lock exclusively, in one
//!   order (sorted), so groups never wait for each other in a cycle;
//! - a group with a write that may touch anything ([`WriteScope::All`])
//!   takes the write lock exclusively: it runs alone.
//!
//! Writes are routed to lanes by their first place, so one place's writes
//! queue in one lane of a node and rarely wait on a lock.
//!
//! Also here: [`Conns`], the pool behind its circuit breaker, which the
//! writer tasks and the store's reads share.

use std::sync::{Arc, Mutex};

use deadpool_postgres::{Object, Pool};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};

use super::conn::PgConn;
use super::WRITE_LOCK;
use crate::breaker::Breaker;
use crate::error::{Error, ErrorCode, Result};
use crate::store::{Place, Tx, WriteScope};

/// Most writes committed together.
pub const MAX_GROUP: usize = 256;
/// Writer tasks per node (each holds a connection while it commits).
pub const LANES: usize = 4;
const QUEUE_DEPTH: usize = 1024;
/// The first key of a place's advisory lock (the two-`int4` form, apart from
/// the `bigint` locks): `eng` in ASCII, then 3.
pub const PLACE_LOCK_CLASS: i32 = 0x656e_6703;

/// The second key of `place`'s advisory lock: a stable hash of the tenant
/// and namespace, the same on every node (two places sharing one only wait
/// for each other).
pub fn place_key(place: &Place) -> i32 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(place.0.as_bytes());
    h.update([0x1f]);
    h.update(place.1.joined().as_bytes());
    let d = h.finalize();
    i32::from_le_bytes([d[0], d[1], d[2], d[3]])
}

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

/// A write waiting in a lane, with the places it claims.
struct Pending {
    scope: WriteScope,
    op: Box<dyn WriteOp>,
}

/// Handle to the writer tasks.
pub struct GroupWriter {
    lanes: Mutex<Option<Vec<mpsc::Sender<Pending>>>>,
}

impl GroupWriter {
    /// Starts the writer tasks on the runtime of the caller.
    pub fn start(conns: Arc<Conns>) -> Self {
        let lanes = (0..LANES)
            .map(|_| {
                let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
                tokio::spawn(run(conns.clone(), rx));
                tx
            })
            .collect();
        GroupWriter { lanes: Mutex::new(Some(lanes)) }
    }

    /// Runs `f`, which touches only `scope`, in the next group of its lane
    /// and returns its result once committed.
    pub async fn write<T, F>(&self, scope: WriteScope, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Tx) -> Result<T> + Send + 'static,
    {
        let lane = match scope.listed().first() {
            Some(place) => place_key(place).unsigned_abs() as usize % LANES,
            None => 0,
        };
        let sender = self
            .lanes
            .lock()
            .map_err(|_| Error::internal("writer lock poisoned"))?
            .as_ref()
            .and_then(|lanes| lanes.get(lane).cloned())
            .ok_or_else(|| Error::unavailable("the store is shutting down"))?;
        let (reply, rx) = oneshot::channel();
        sender
            .send(Pending { scope, op: Box::new(Op { f: Some(f), out: None, reply }) })
            .await
            .map_err(|_| Error::unavailable("the store is shutting down"))?;
        rx.await.map_err(|_| Error::internal("the writer task stopped"))?
    }

    /// Stops taking writes; the queued ones still run.
    pub fn close(&self) {
        if let Ok(mut lanes) = self.lanes.lock() {
            lanes.take();
        }
    }
}

async fn run(conns: Arc<Conns>, mut rx: mpsc::Receiver<Pending>) {
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
                group.into_iter().for_each(|p| p.op.finish(Err(e.clone())));
                continue;
            }
        };
        let rt = Handle::current();
        // A panicking write drops its group's reply channels: those callers
        // get an internal error; the task goes on.
        let _ = tokio::task::spawn_blocking(move || commit_group(c, &rt, group)).await;
    }
}

/// The place locks a group takes (sorted, distinct), or `None` when one of
/// its writes may touch anything and the group must run alone.
fn place_locks(group: &[Pending]) -> Option<Vec<i32>> {
    let mut keys = Vec::new();
    for p in group {
        match &p.scope {
            WriteScope::All => return None,
            WriteScope::Places(places) => keys.extend(places.iter().map(place_key)),
        }
    }
    keys.sort_unstable();
    keys.dedup();
    Some(keys)
}

/// Takes the group's advisory locks (see the module docs).
fn lock(tx: &tokio_postgres::Transaction<'_>, rt: &Handle, group: &[Pending]) -> Result<()> {
    match place_locks(group) {
        None => {
            rt.block_on(tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK]))?;
        }
        Some(keys) => {
            // The write lock first, then the places in sorted order: one
            // statement per place keeps that order (a select list is
            // evaluated left to right).
            let mut keys = keys.into_iter();
            match keys.next() {
                None => rt.block_on(tx.execute("SELECT pg_advisory_xact_lock_shared($1)", &[&WRITE_LOCK]))?,
                Some(first) => rt.block_on(tx.execute(
                    "SELECT pg_advisory_xact_lock_shared($1), pg_advisory_xact_lock($2, $3)",
                    &[&WRITE_LOCK, &PLACE_LOCK_CLASS, &first],
                ))?,
            };
            for key in keys {
                rt.block_on(tx.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&PLACE_LOCK_CLASS, &key]))?;
            }
        }
    }
    Ok(())
}

fn commit_group(mut c: Object, rt: &Handle, group: Vec<Pending>) {
    let fail_all = |ops: Vec<Box<dyn WriteOp>>, e: Error| ops.into_iter().for_each(|op| op.finish(Err(e.clone())));
    let tx = match rt.block_on(c.transaction()) {
        Ok(tx) => tx,
        Err(e) => return fail_all(group.into_iter().map(|p| p.op).collect(), e.into()),
    };
    if let Err(e) = lock(&tx, rt, &group) {
        return fail_all(group.into_iter().map(|p| p.op).collect(), e);
    }
    // A write alone needs no savepoint: its failure rolls the transaction back.
    let alone = group.len() == 1;
    let mut applied = Vec::with_capacity(group.len());
    for Pending { mut op, .. } in group {
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
