//! The change feed: every node keeps the keyword and vector indexes in its
//! own memory (a MongoDB without Atlas Search has neither), fed from the
//! database's change stream, so several nodes on one database stay in sync.
//!
//! The stream says *which* memories changed; the feed reads their current
//! documents and applies them (one apply at a time, so a later read always
//! wins), as SQLite's catch-ups resolve a change to the row's current state.
//! A write transaction's last statements set its stripes' `done`
//! (`stripes.rs`); the stream delivers a transaction's changes in order, so
//! once the feed has applied what came before a `done`, the index holds
//! everything that stripe's transactions wrote up to that number
//! ([`Feed::applied`]). A writer waits for its own numbers, so its writes
//! are searchable when it returns; an index mark is the applied number of a
//! place's stripe.
//!
//! At start (and after losing the stream) the feed reads the stripes'
//! counters, opens the stream, then loads every memory and vector: what
//! commits after the stream opened arrives through it, what committed before
//! is in the load.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use futures_util::StreamExt;
use mongodb::bson::{doc, Document};
use mongodb::change_stream::event::{ChangeStreamEvent, OperationType};
use mongodb::change_stream::ChangeStream;
use mongodb::Database;

use super::ctx::{int, req_int, req_str, CHANGES, EVENTS, MEMORIES, STRIPES, TICKETS, VECTORS};
use super::stripes::STRIPES_N;
use crate::error::{Error, Result};
use crate::keyword::{KeywordChange, KeywordDoc, KeywordIndex};
use crate::model::Tier;
use crate::store::StoreEvent;
use crate::vector::{Change, Entry, VectorIndex};

/// Memories read per step while loading.
const LOAD_STEP: i64 = 5_000;

/// The in-process indexes and how far they have applied each stripe.
pub struct Feed {
    db: Database,
    /// Both replaced by fresh ones, loaded aside, when the feed reloads.
    keywords: std::sync::RwLock<Arc<KeywordIndex>>,
    vectors: std::sync::RwLock<Option<Arc<VectorIndex>>>,
    /// A reload is under way: the indexes are behind (see [`Feed::reloading`]).
    reloading: std::sync::atomic::AtomicBool,
    /// Whether the feed follows the stream at all (an admin command's store
    /// keeps no indexes).
    following: bool,
    dims: Option<usize>,
    /// Per stripe: every transaction numbered up to this is applied.
    applied: tokio::sync::watch::Sender<Vec<i64>>,
    /// The indexes' own change numbers (one per apply).
    change: AtomicI64,
    /// One apply at a time.
    apply: tokio::sync::Mutex<()>,
    events: tokio::sync::broadcast::Sender<StoreEvent>,
    /// Woken for a tenant once rows journaling its changes (on any node)
    /// have become readable (`tickets.rs`).
    changed: Arc<crate::store::ChangeSignals>,
}

type Stream = ChangeStream<ChangeStreamEvent<Document>>;

impl Feed {
    /// Loads the indexes and starts following the stream (unless `follow`
    /// is false: then the indexes stay empty and writes wait for nothing).
    pub async fn start(
        db: Database,
        dims: Option<usize>,
        events: tokio::sync::broadcast::Sender<StoreEvent>,
        changed: Arc<crate::store::ChangeSignals>,
        follow: bool,
    ) -> Result<(Arc<Feed>, tokio::task::JoinHandle<()>)> {
        let vectors = std::sync::RwLock::new(None);
        let (applied, _) = tokio::sync::watch::channel(vec![0; STRIPES_N]);
        let feed = Arc::new(Feed {
            db,
            keywords: std::sync::RwLock::new(Arc::new(KeywordIndex::default())),
            vectors,
            reloading: std::sync::atomic::AtomicBool::new(follow),
            following: follow,
            dims,
            applied,
            change: AtomicI64::new(0),
            apply: tokio::sync::Mutex::new(()),
            events,
            changed,
        });
        if !follow {
            return Ok((feed, tokio::spawn(async {})));
        }
        let stream = feed.open().await?;
        let task = tokio::spawn(Arc::clone(&feed).follow(stream));
        Ok((feed, task))
    }

    /// Counters, stream, load (see the module docs).
    async fn open(&self) -> Result<Stream> {
        let counters = super::stripes::counters(&self.db).await?;
        let colls = [MEMORIES, VECTORS, STRIPES, EVENTS, CHANGES, TICKETS];
        let stream = self.db.watch().pipeline([doc! { "$match": { "ns.coll": { "$in": colls.to_vec() } } }]).await?;
        self.load().await?;
        self.applied.send_modify(|a| {
            for (s, n) in counters.into_iter().enumerate() {
                a[s] = a[s].max(n);
            }
        });
        Ok(stream)
    }

    /// Every memory and vector, into fresh indexes loaded aside, which then
    /// replace the ones searched meanwhile.
    async fn load(&self) -> Result<()> {
        let _one = self.apply.lock().await;
        self.reloading.store(true, Ordering::Release);
        let keywords = Arc::new(KeywordIndex::default());
        let vectors = self.dims.map(VectorIndex::new).transpose()?.map(Arc::new);
        let mut after = i64::MIN;
        let mut placement: HashMap<i64, (Tier, bool)> = HashMap::new();
        loop {
            let docs = self.page(MEMORIES, after, Some(projection())).await?;
            let Some(last) = docs.last() else { break };
            after = req_int(last, "_id")?;
            let change = self.next_change();
            let mut batch = Vec::new();
            for d in &docs {
                let (seq, doc) = keyword_doc(d)?;
                placement.insert(seq, (doc_tier(d), d.contains_key("key")));
                batch.push(KeywordChange { change, seq: seq as u64, doc });
            }
            let index = Arc::clone(&keywords);
            blocking(move || index.apply(batch)).await?;
        }
        if let Some(v) = &vectors {
            let mut after = i64::MIN;
            loop {
                let docs = self.page(VECTORS, after, None).await?;
                let Some(last) = docs.last() else { break };
                after = req_int(last, "_id")?;
                let change = self.next_change();
                let mut batch = Vec::new();
                for d in &docs {
                    let seq = req_int(d, "_id")?;
                    let entry = match placement.get(&seq) {
                        Some(&(tier, keyed)) => Some(vector_entry(d, tier, keyed)?),
                        None => None,
                    };
                    batch.push(Change { change, seq: seq as u64, entry });
                }
                let index = Arc::clone(v);
                blocking(move || index.apply(batch)).await?;
            }
        }
        *self.keywords.write().map_err(|_| Error::internal("keyword index lock poisoned"))? = keywords;
        *self.vectors.write().map_err(|_| Error::internal("vector index lock poisoned"))? = vectors;
        self.reloading.store(false, Ordering::Release);
        Ok(())
    }

    /// The keyword index.
    pub fn keywords(&self) -> Arc<KeywordIndex> {
        self.keywords.read().map_or_else(|p| Arc::clone(&p.into_inner()), |k| Arc::clone(&k))
    }

    /// Whether a reload is under way: the indexes searched are behind the
    /// database, and a near-duplicate check must not trust them
    /// (`MongoStore::index_mark` marks every place 0 meanwhile).
    pub fn reloading(&self) -> bool {
        self.reloading.load(Ordering::Acquire)
    }

    /// The next [`LOAD_STEP`] documents of `coll` after `_id` `after`.
    async fn page(&self, coll: &str, after: i64, projection: Option<Document>) -> Result<Vec<Document>> {
        let c = self.db.collection::<Document>(coll);
        let mut find = c.find(doc! { "_id": { "$gt": after } }).sort(doc! { "_id": 1 }).limit(LOAD_STEP);
        if let Some(p) = projection {
            find = find.projection(p);
        }
        collect(find.await?).await
    }

    /// The vector index, when the store keeps one.
    pub fn vectors(&self) -> Option<Arc<VectorIndex>> {
        self.vectors.read().ok().and_then(|v| v.clone())
    }

    fn next_change(&self) -> i64 {
        self.change.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Follows the stream until the store closes; on losing it (after the
    /// driver's own resume failed), reloads and tells the caches to resync.
    async fn follow(self: Arc<Self>, mut stream: Stream) {
        let mut pending: HashSet<i64> = HashSet::new();
        let mut done: Vec<(usize, i64)> = Vec::new();
        let mut journaled: HashMap<i64, Vec<String>> = HashMap::new();
        loop {
            let next = stream.next().await;
            let step = match next {
                Some(Ok(ev)) => self.take(ev, &mut pending, &mut done, &mut journaled).await,
                Some(Err(e)) => Err(e.into()),
                None => Err(Error::unavailable("the change stream ended")),
            };
            if let Err(e) = step {
                tracing::warn!(error = %e, "the change stream failed; reloading the indexes");
                pending.clear();
                done.clear();
                journaled.clear();
                let _ = self.events.send(StoreEvent::Resync);
                stream = loop {
                    match self.open().await {
                        Ok(s) => break s,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot reopen the change stream; trying again");
                            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                        }
                    }
                };
            }
        }
    }

    /// One event: a changed memory or vector is noted; a stripe's `done`
    /// applies what was noted and advances the stripe; an event is passed on.
    async fn take(
        &self,
        ev: ChangeStreamEvent<Document>,
        pending: &mut HashSet<i64>,
        done: &mut Vec<(usize, i64)>,
        journaled: &mut HashMap<i64, Vec<String>>,
    ) -> Result<()> {
        let coll = ev.ns.as_ref().and_then(|n| n.coll.clone()).unwrap_or_default();
        match coll.as_str() {
            MEMORIES | VECTORS => {
                if let Some(seq) = ev.document_key.as_ref().and_then(|k| int(k.get("_id"))) {
                    pending.insert(seq);
                }
            }
            // A journal row: its tenant's feeds are woken when its ticket ends
            // (before, the row is not yet theirs to read: `tickets.rs`).
            CHANGES if ev.operation_type == OperationType::Insert => {
                if let Some(d) = &ev.full_document {
                    if let (Some(tx), Ok(tenant)) = (int(d.get("tx")), d.get_str("tenant_id")) {
                        if journaled.len() >= 10_000 {
                            // Tickets of writers that died: forgotten (their
                            // tenants' feeds look again within a recheck).
                            journaled.clear();
                        }
                        let tenants = journaled.entry(tx).or_default();
                        if !tenants.iter().any(|t| t == tenant) {
                            tenants.push(tenant.to_owned());
                        }
                    }
                }
            }
            // A ticket was taken or ended: the rows of every ticket now below
            // the lowest still open have become readable.
            TICKETS if !journaled.is_empty() => {
                let d = self.db.collection::<Document>(TICKETS).find_one(doc! {}).await?;
                let xmin = super::tickets::xmin_of(d.as_ref());
                let readable: Vec<i64> = journaled.keys().copied().filter(|t| *t < xmin).collect();
                let mut tenants: Vec<String> = Vec::new();
                for t in readable {
                    for tenant in journaled.remove(&t).unwrap_or_default() {
                        if !tenants.contains(&tenant) {
                            tenants.push(tenant);
                        }
                    }
                }
                self.changed.signal(&tenants);
            }
            EVENTS if ev.operation_type == OperationType::Insert => {
                if let Some(p) = ev.full_document.as_ref().and_then(|d| d.get_str("payload").ok()) {
                    let _ = self.events.send(StoreEvent::decode(p));
                }
            }
            STRIPES => {
                let updated = ev.update_description.as_ref().map(|u| &u.updated_fields);
                let stripe = ev
                    .document_key
                    .as_ref()
                    .and_then(|k| k.get_str("_id").ok())
                    .and_then(|i| i.strip_prefix("stripe:"))
                    .and_then(|n| n.parse::<usize>().ok());
                if let (Some(n), Some(s)) = (updated.and_then(|u| int(u.get("done"))), stripe) {
                    done.push((s, n));
                    self.apply_pending(std::mem::take(pending)).await?;
                    self.applied.send_modify(|a| {
                        for (s, n) in done.drain(..) {
                            if s < a.len() {
                                a[s] = a[s].max(n);
                            }
                        }
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Reads the current documents of `seqs` and applies them.
    async fn apply_pending(&self, seqs: HashSet<i64>) -> Result<()> {
        if seqs.is_empty() {
            return Ok(());
        }
        let _one = self.apply.lock().await;
        let seqs: Vec<i64> = seqs.into_iter().collect();
        let memories = collect(
            self.db
                .collection::<Document>(MEMORIES)
                .find(doc! { "_id": { "$in": &seqs } })
                .projection(projection())
                .await?,
        )
        .await?;
        let mut found: HashMap<i64, &Document> = HashMap::new();
        for d in &memories {
            found.insert(req_int(d, "_id")?, d);
        }
        let change = self.next_change();
        let mut keyword = Vec::with_capacity(seqs.len());
        for &seq in &seqs {
            let doc = match found.get(&seq) {
                Some(d) => keyword_doc(d)?.1,
                None => None,
            };
            keyword.push(KeywordChange { change, seq: seq as u64, doc });
        }
        let index = self.keywords();
        blocking(move || index.apply(keyword)).await?;
        if let Some(v) = self.vectors() {
            let stored =
                collect(self.db.collection::<Document>(VECTORS).find(doc! { "_id": { "$in": &seqs } }).await?).await?;
            let mut vectors: HashMap<i64, &Document> = HashMap::new();
            for d in &stored {
                vectors.insert(req_int(d, "_id")?, d);
            }
            let mut batch = Vec::with_capacity(seqs.len());
            for &seq in &seqs {
                let entry = match (found.get(&seq), vectors.get(&seq)) {
                    (Some(m), Some(d)) => Some(vector_entry(d, doc_tier(m), m.contains_key("key"))?),
                    _ => None,
                };
                batch.push(Change { change, seq: seq as u64, entry });
            }
            blocking(move || v.apply(batch)).await?;
        }
        Ok(())
    }

    /// The applied number of each stripe.
    pub fn applied(&self) -> Vec<i64> {
        self.applied.borrow().clone()
    }

    /// Waits until the feed has applied `held` (a write's stripes and
    /// numbers), or `limit` passes (then the write stands, and its index
    /// entries follow when the feed gets there).
    pub async fn wait(&self, held: &[(usize, i64)], limit: std::time::Duration) {
        if !self.following {
            return;
        }
        let mut rx = self.applied.subscribe();
        let reached = rx.wait_for(|a| held.iter().all(|&(s, n)| a.get(s).is_some_and(|&x| x >= n)));
        if tokio::time::timeout(limit, reached).await.is_err() {
            tracing::warn!(
                "the change feed has not caught up with a write after {limit:?}; its index entries will follow"
            );
        }
    }
}

fn projection() -> Document {
    doc! { "_id": 1, "tenant_id": 1, "namespace": 1, "tier": 1, "key": 1, "search_text": 1 }
}

fn doc_tier(d: &Document) -> Tier {
    Tier::from_stored(d.get_str("tier").unwrap_or("episodic"))
}

/// A memory's keyword document (`None`: nothing to index).
fn keyword_doc(d: &Document) -> Result<(i64, Option<KeywordDoc>)> {
    let seq = req_int(d, "_id")?;
    let text = d.get_str("search_text").unwrap_or("");
    if text.is_empty() {
        return Ok((seq, None));
    }
    Ok((
        seq,
        Some(KeywordDoc {
            tenant: req_str(d, "tenant_id")?.to_owned(),
            namespace: req_str(d, "namespace")?.to_owned(),
            tier: doc_tier(d),
            keyed: d.contains_key("key"),
            search_text: text.to_owned(),
        }),
    ))
}

fn vector_entry(d: &Document, tier: Tier, keyed: bool) -> Result<Entry> {
    Ok(Entry {
        tenant: req_str(d, "tenant_id")?.to_owned(),
        namespace: req_str(d, "namespace")?.to_owned(),
        tier,
        keyed,
        vector: super::vectors::decode(d)?,
    })
}

async fn collect(mut cursor: mongodb::Cursor<Document>) -> Result<Vec<Document>> {
    let mut out = Vec::new();
    while let Some(d) = cursor.next().await {
        out.push(d?);
    }
    Ok(out)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::internal(format!("an index update panicked: {e}")))?
}
