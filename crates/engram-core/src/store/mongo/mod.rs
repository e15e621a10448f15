//! The MongoDB backend: for teams that keep their data in MongoDB (or
//! Atlas). Several stateless engram nodes can share one database.
//!
//! - **Documents** (`docs.rs`, `schema.rs`): a collection per kind, every
//!   index led by `tenant_id`; JSON kept as JSON text beside flattened
//!   filter fields, so filters compile to queries where every user string is
//!   a value (`query.rs`).
//! - **Writes** run in multi-document transactions with majority, journaled
//!   acknowledgement. Their first statements take stripe locks
//!   (`stripes.rs`) so that a rule's check-then-write is never interleaved
//!   with another writer's; their journal rows are ordered by tickets
//!   (`tickets.rs`).
//! - **Search**: a MongoDB without Atlas Search has no vector or usable
//!   full-text index, so each node keeps the keyword and vector indexes in
//!   process, fed by the change stream (`feed.rs`); a write returns once its
//!   node's indexes hold it. Events for other nodes' caches travel the same
//!   stream.
//! - **Jobs**: queued work is claimed by writes that hold every stripe (so
//!   exactly once); singleton jobs hold a lease document (`leader.rs`).
//!
//! Reads run in a snapshot transaction (one consistent view).

mod changes;
mod conn;
mod ctx;
mod docs;
mod errors;
mod feed;
mod leader;
mod memories;
mod query;
mod rows;
mod schema;
mod stripes;
mod tickets;
mod vectors;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mongodb::options::{Acknowledgment, ClientOptions, ReadConcern, WriteConcern};
use mongodb::{Client, Database};
use tokio::runtime::Handle;

use super::{Expansion, Hit, Page, Reads, Scope, Stored, Tx};
use crate::clock::SharedClock;
use crate::error::{Error, Result};
use crate::model::Namespace;
use crate::time::Millis;
use conn::{Held, MongoConn};
use ctx::Ctx;
pub use leader::MongoLeadership;

use super::scoped::FILTER_SET_CAP;
/// How long a write waits for its stripes before failing with `unavailable`.
const LOCK_WAIT: Duration = Duration::from_secs(10);
/// How long a write waits for a majority to journal it before failing.
const WRITE_CONCERN_WAIT: Duration = Duration::from_secs(10);
/// How long a write waits for its node's indexes to hold it.
const INDEX_WAIT: Duration = Duration::from_secs(10);

/// Tuning for the MongoDB backend.
#[derive(Debug, Clone)]
pub struct MongoOptions {
    /// A `mongodb://` or `mongodb+srv://` URL; its path names the database
    /// (default `engram`).
    pub url: String,
    /// The dimension of the vectors this server embeds; `None` without an
    /// embedder.
    pub dims: Option<usize>,
    /// The service's clock.
    pub clock: SharedClock,
    /// How long the driver looks for a server before failing with `unavailable`.
    pub server_selection_timeout: Duration,
    /// Keep the in-process search indexes, following the change stream (a
    /// server does; admin commands such as `engram keys` do not search).
    pub indexes: bool,
}

impl MongoOptions {
    pub fn new(url: impl Into<String>) -> Self {
        MongoOptions {
            url: url.into(),
            dims: None,
            clock: crate::clock::system(),
            server_selection_timeout: Duration::from_secs(5),
            indexes: true,
        }
    }
}

/// Whether `url` is a MongoDB URL (the error never repeats it: it may hold
/// a password).
pub fn check_url(url: &str) -> std::result::Result<(), String> {
    if !(url.starts_with("mongodb://") || url.starts_with("mongodb+srv://")) {
        return Err("a MongoDB URL starts with mongodb:// or mongodb+srv://".into());
    }
    let rest = url.split_once("://").map_or("", |(_, r)| r);
    let host = rest.split(['/', '?']).next().unwrap_or("");
    if host.rsplit('@').next().unwrap_or("").is_empty() {
        return Err("the URL names no host, e.g. mongodb://user:password@db.example:27017/engram".into());
    }
    Ok(())
}

/// The database a URL names (its path), or `engram`.
fn database_name(url: &str) -> String {
    let rest = url.split_once("://").map_or("", |(_, r)| r);
    let path = rest.split('?').next().unwrap_or("").split_once('/').map_or("", |(_, p)| p);
    if path.is_empty() {
        "engram".into()
    } else {
        path.to_owned()
    }
}

/// Row numbers for new memories, taken from the `seq` counter in blocks.
pub struct Numbers(tokio::sync::Mutex<(i64, i64)>);

/// Numbers taken per block.
const BLOCK: i64 = 256;

impl Numbers {
    pub async fn next(&self, db: &Database) -> Result<i64> {
        let mut b = self.0.lock().await;
        if b.0 >= b.1 {
            let first = Ctx::take_numbers(db, "seq", BLOCK).await?;
            *b = (first, first + BLOCK);
        }
        b.0 += 1;
        Ok(b.0 - 1)
    }
}

/// The MongoDB store; cheap to share behind an `Arc`.
pub struct MongoStore {
    client: Client,
    db: Database,
    /// This process's name among the nodes (leases).
    node: String,
    feed: Arc<feed::Feed>,
    follower: tokio::task::JoinHandle<()>,
    seqs: Arc<Numbers>,
    /// This node's writers queue here for a stripe, in order, before they
    /// take it in the database: only writers of different nodes ever meet
    /// there (and back off).
    local: Arc<Vec<Arc<tokio::sync::Mutex<()>>>>,
    events: tokio::sync::broadcast::Sender<super::StoreEvent>,
    clock: SharedClock,
    changed: Arc<super::ChangeSignals>,
    timings: crate::metrics::StoreTimings,
    vectors: bool,
}

impl MongoStore {
    /// Connects, creates the collections and indexes (once, whichever node
    /// comes first), loads the in-process indexes and follows the stream.
    pub async fn open(opts: MongoOptions) -> Result<Self> {
        check_url(&opts.url).map_err(|e| Error::invalid(format!("store URL: {e}")))?;
        let mut co = ClientOptions::parse(&opts.url)
            .await
            .map_err(|e| Error::invalid(format!("store URL: not a valid MongoDB URL ({})", e.kind)))?;
        co.app_name = Some("engram".into());
        co.server_selection_timeout = Some(opts.server_selection_timeout);
        // An acknowledged write is on a majority's journal; one that cannot
        // get there within the limit is an error (503), not a wait forever.
        co.write_concern = Some(
            WriteConcern::builder().w(Acknowledgment::Majority).journal(true).w_timeout(WRITE_CONCERN_WAIT).build(),
        );
        // The feed's reads must see what its stream announced, and searches
        // what this node wrote: the primary, whatever the URL prefers.
        co.selection_criteria =
            Some(mongodb::options::SelectionCriteria::ReadPreference(mongodb::options::ReadPreference::Primary));
        let client = Client::with_options(co)?;
        let db = client.database(&database_name(&opts.url));
        schema::migrate(&db, opts.clock.now_ms()).await?;
        let (events, _) = tokio::sync::broadcast::channel(super::EVENT_BUFFER);
        let changed = Arc::new(super::ChangeSignals::default());
        let (feed, follower) =
            feed::Feed::start(db.clone(), opts.dims, events.clone(), Arc::clone(&changed), opts.indexes).await?;
        Ok(MongoStore {
            client,
            db,
            node: uuid::Uuid::now_v7().to_string(),
            feed,
            follower,
            seqs: Arc::new(Numbers(tokio::sync::Mutex::new((0, 0)))),
            local: Arc::new((0..stripes::STRIPES_N).map(|_| Arc::default()).collect()),
            events,
            clock: opts.clock,
            changed,
            timings: Default::default(),
            vectors: opts.dims.is_some(),
        })
    }

    pub fn timings(&self) -> &crate::metrics::StoreTimings {
        &self.timings
    }

    pub fn changed(&self) -> &super::ChangeSignals {
        &self.changed
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    pub fn events(&self) -> tokio::sync::broadcast::Receiver<super::StoreEvent> {
        self.events.subscribe()
    }

    pub fn leadership(&self, job: &str) -> MongoLeadership {
        MongoLeadership::new(self.db.clone(), job, &self.node)
    }

    /// Runs `f` in a snapshot transaction on a blocking thread.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Reads) -> Result<T> + Send + 'static,
    {
        let (client, db, rt) = (self.client.clone(), self.db.clone(), Handle::current());
        blocking(move || {
            let mut session = run(&rt, client.start_session())?;
            run(&rt, session.start_transaction().read_concern(ReadConcern::snapshot()))?;
            let out = f(&mut MongoConn::reader(&db, &mut session, &rt));
            // Nothing was written: ending the transaction frees its snapshot.
            let _ = run(&rt, session.abort_transaction());
            out
        })
        .await
    }

    /// A lookup by key: no transaction needed for one document.
    pub async fn point<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Reads) -> Result<T> + Send + 'static,
    {
        let (client, db, rt) = (self.client.clone(), self.db.clone(), Handle::current());
        blocking(move || {
            let mut session = run(&rt, client.start_session())?;
            f(&mut MongoConn::reader(&db, &mut session, &rt))
        })
        .await
    }

    /// Runs `f` in a transaction holding the stripes of `scope`, commits it,
    /// and waits until this node's indexes hold what it changed.
    pub async fn write<T, F>(&self, scope: super::WriteScope, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Tx) -> Result<T> + Send + 'static,
    {
        let wanted = stripes::of(&scope);
        let (local, client, db) = (Arc::clone(&self.local), self.client.clone(), self.db.clone());
        let seqs = Arc::clone(&self.seqs);
        // A task of its own: a write, once begun, runs to its end even if its
        // caller stops waiting, so its ticket is always marked done (an
        // abandoned ticket would hold back every event feed until it lapses).
        let task = tokio::spawn(async move {
            // In stripe order, so two writers never wait for each other's next.
            let mut queued = Vec::with_capacity(wanted.len());
            for &s in &wanted {
                queued.push(Arc::clone(&local[s]).lock_owned().await);
            }
            let ticket = tickets::begin(&db).await?;
            let (db2, rt) = (db.clone(), Handle::current());
            let out = blocking(move || {
                let db = db2;
                let mut session = run(&rt, client.start_session())?;
                let held = take_stripes(&rt, &db, &mut session, &wanted)?;
                let mut conn = MongoConn::writer(&db, &mut session, &rt, Held { stripes: held.clone(), ticket, seqs });
                let out = f(&mut conn);
                let touched = conn.touched;
                drop(conn);
                let committed = out.and_then(|v| {
                    run(&rt, stripes::finish(&mut Ctx { db: &db, session: &mut session }, &held))?;
                    run(&rt, session.commit_transaction())?;
                    Ok(v)
                });
                match committed {
                    Ok(v) => Ok((v, held, touched)),
                    Err(e) => {
                        let _ = run(&rt, session.abort_transaction());
                        Err(e)
                    }
                }
            })
            .await;
            drop(queued);
            if let Err(e) = tickets::end(&db, ticket).await {
                tracing::warn!(error = %e, ticket, "cannot mark a journal ticket done; it lapses by itself");
            }
            out
        });
        let (v, held, touched) = task.await.map_err(|e| Error::internal(format!("a write panicked: {e}")))??;
        if touched {
            self.feed.wait(&held, INDEX_WAIT).await;
        }
        Ok(v)
    }

    /// A session without a transaction, for searches' own reads.
    async fn with_session<T, F>(&self, f: F) -> Result<T>
    where
        F: for<'c> FnOnce(&'c mut Ctx<'c>) -> futures_util::future::BoxFuture<'c, Result<T>>,
    {
        let mut session = self.client.start_session().await?;
        let mut ctx = Ctx { db: &self.db, session: &mut session };
        f(&mut ctx).await
    }

    pub async fn list(&self, scope: Scope, page: Page) -> Result<Vec<Stored>> {
        self.with_session(|c| Box::pin(async move { memories::list(c, &scope, &page).await })).await
    }

    pub async fn namespaces(&self, scope: Scope) -> Result<Vec<Namespace>> {
        self.with_session(|c| Box::pin(async move { memories::namespaces(c, &scope).await })).await
    }

    pub async fn expand(&self, scope: Scope, seqs: Vec<i64>, max_gap: Option<Millis>) -> Result<Expansion> {
        self.with_session(|c| Box::pin(async move { memories::expand(c, &scope, &seqs, max_gap).await })).await
    }

    pub async fn hydrate(&self, scope: Scope, seqs: Vec<i64>) -> Result<Vec<Stored>> {
        self.with_session(|c| Box::pin(async move { memories::hydrate(c, &scope, &seqs).await })).await
    }

    pub async fn keyword_hits(&self, scope: Scope, terms: Vec<String>, k: usize) -> Result<Vec<Hit>> {
        let index = self.feed.keywords();
        self.scoped_hits(scope, k, usize::MAX, move |s, want| index.search(s, &terms, want)).await
    }

    pub async fn keyword_scores(&self, terms: Vec<String>, seqs: Vec<i64>) -> Result<HashMap<i64, f64>> {
        let seqs: Vec<u64> = seqs.into_iter().map(|s| s as u64).collect();
        let scores = self.feed.keywords().scores(&terms, &seqs)?;
        Ok(scores.into_iter().map(|(s, v)| (s as i64, v)).collect())
    }

    pub async fn vector_hits(&self, scope: Scope, vector: Vec<f32>, k: usize) -> Result<Vec<Hit>> {
        let Some(index) = self.feed.vectors() else {
            return Err(Error::unprocessable("vector search needs an embedder; this server has none configured"));
        };
        self.scoped_hits(scope, k, k.saturating_mul(64), move |s, want| {
            Ok(index.search(&vector, want, s)?.into_iter().map(|(seq, cos)| (seq, cos as f64)).collect())
        })
        .await
    }

    /// The best `k` in-scope hits of an in-process index's `search(scope,
    /// want)` (`store::scoped`); every hit's scope is checked in the database.
    async fn scoped_hits<F>(&self, q: Scope, k: usize, max_want: usize, search: F) -> Result<Vec<Hit>>
    where
        F: Fn(&crate::vector::Scope<'_>, usize) -> Result<Vec<(u64, f64)>> + Send + Sync + 'static,
    {
        let (client, db) = (self.client.clone(), self.db.clone());
        let set = {
            let (client, db) = (client.clone(), db.clone());
            move |q: Scope| -> futures_util::future::BoxFuture<'static, Result<_>> {
                Box::pin(async move {
                    let mut session = client.start_session().await?;
                    memories::scope_seqs(&mut Ctx { db: &db, session: &mut session }, &q, FILTER_SET_CAP).await
                })
            }
        };
        let admitted = move |q: Scope, seqs: Vec<i64>| -> futures_util::future::BoxFuture<'static, Result<_>> {
            let (client, db) = (client.clone(), db.clone());
            Box::pin(async move {
                let mut session = client.start_session().await?;
                memories::in_scope(&mut Ctx { db: &db, session: &mut session }, &q, &seqs).await
            })
        };
        super::scoped::scoped_hits(q, k, max_want, search, set, admitted, || false).await
    }

    pub async fn near(
        &self,
        tenant: &str,
        probes: Vec<(Namespace, Vec<f32>)>,
        min_cosine: f32,
    ) -> Result<Vec<Vec<Hit>>> {
        let Some(index) = self.feed.vectors() else {
            return Ok(vec![Vec::new(); probes.len()]);
        };
        let tenant = tenant.to_owned();
        blocking(move || super::scoped::near_all(&index, &tenant, &probes, min_cosine)).await
    }

    pub async fn cosines(&self, seqs: Vec<i64>, vector: Vec<f32>) -> Result<HashMap<i64, f64>> {
        let Some(index) = self.feed.vectors() else {
            return Ok(HashMap::new());
        };
        blocking(move || super::scoped::cosines(&index, seqs, &vector)).await
    }

    /// The indexes follow the stream by themselves.
    pub async fn sync_indexes(&self) -> Result<()> {
        Ok(())
    }

    /// Nothing to save: a node rebuilds its indexes from the database.
    pub async fn save_vectors(&self) -> Result<()> {
        Ok(())
    }

    /// Grows with every transaction the indexes have applied.
    pub async fn index_watermark(&self) -> Result<i64> {
        Ok(if self.vectors { self.feed.applied().iter().sum() } else { 0 })
    }

    /// Each place's mark: what its stripe's transactions the indexes hold
    /// (0 while they reload: every vector of the place is then looked at).
    pub async fn index_mark(&self, places: Vec<super::Place>) -> Result<super::IndexMark> {
        if self.feed.reloading() {
            return Ok(super::IndexMark::default());
        }
        let applied = self.feed.applied();
        let mut mark = super::IndexMark::default();
        for p in places {
            let s = stripes::stripe(&p.0, &p.1.joined());
            mark.places.insert(p, applied.get(s).copied().unwrap_or(0));
        }
        Ok(mark)
    }

    /// MongoDB rewrites documents in place and frees their space; there is
    /// nothing more the backend can do (see docs/mongodb.md).
    pub async fn scrub(&self) -> Result<()> {
        Ok(())
    }

    pub async fn ping(&self) -> Result<()> {
        self.db.run_command(mongodb::bson::doc! { "ping": 1 }).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.follower.abort();
    }
}

impl Drop for MongoStore {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

/// Starts the session's transaction and takes `wanted` stripes, starting
/// again after a backoff while another transaction holds one.
fn take_stripes(
    rt: &Handle,
    db: &Database,
    session: &mut mongodb::ClientSession,
    wanted: &[usize],
) -> Result<Vec<(usize, i64)>> {
    let started = std::time::Instant::now();
    let mut delays = crate::backoff::Backoff::new(Duration::from_millis(1), Duration::from_millis(50)).delays();
    loop {
        run(rt, session.start_transaction().read_concern(ReadConcern::snapshot()))?;
        match run(rt, stripes::take(&mut Ctx { db, session: &mut *session }, wanted)) {
            Ok(held) => return Ok(held),
            Err(e) => {
                let _ = run(rt, session.abort_transaction());
                if !errors::transient(&e) {
                    return Err(e.into());
                }
                if started.elapsed() > LOCK_WAIT {
                    return Err(Error::unavailable(
                        "the database is busy with other writes to the same namespaces; try again",
                    ));
                }
                // Jittered, so writers that collided do not collide again.
                let delay = delays.next().unwrap_or(Duration::from_millis(50));
                let jitter = getrandom::u32().unwrap_or(0) as u64 % (delay.as_micros() as u64 + 1);
                std::thread::sleep(delay / 2 + Duration::from_micros(jitter / 2));
            }
        }
    }
}

/// Runs a driver call to completion on a blocking thread.
fn run<F: std::future::IntoFuture>(rt: &Handle, f: F) -> F::Output {
    rt.block_on(f.into_future())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::internal(format!("a store call panicked: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_database_and_are_checked_without_echoing() {
        assert_eq!(database_name("mongodb://h:1/"), "engram");
        assert_eq!(database_name("mongodb://u:p@h:1/mem?directConnection=true"), "mem");
        assert_eq!(database_name("mongodb+srv://u:p@cluster.example"), "engram");
        assert!(check_url("mongodb://u:secret@h:27017/db").is_ok());
        let e = check_url("mongodb://u:secret@/db").unwrap_err();
        assert!(!e.contains("secret"), "{e}");
        assert!(check_url("postgres://h/db").is_err());
    }
}
