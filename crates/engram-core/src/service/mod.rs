//! `MemoryService`: the one entry point every transport calls.
//!
//! It authenticates callers, checks scopes, validates input into domain types
//! (with messages that name the field), and runs the rules (`crate::rules`)
//! on the [`Store`]. It knows nothing of HTTP. The background jobs and the
//! admin commands go through it too: nothing outside this crate touches the
//! store.

mod admin;
mod auth;
mod embedding;
mod erase;
mod events;
pub mod inputs;
mod items;
mod journal;
mod memories;
pub mod rank;
mod recall;
mod salience;
mod search;
mod sessions;
mod transfer;

use std::sync::Arc;

pub use auth::{AuthMode, UNKNOWN_KEYS_PER_SECOND};
pub use embedding::{embed_sorted, EMBED_BATCH};
pub use erase::{EraseInput, EraseReceipt};
pub use events::{Event, EventFeed, EventId, MAX_STREAMS_PER_CALLER, POLL as EVENTS_POLL, RECHECK as EVENTS_RECHECK};
pub use items::{ItemView, PutItem, SearchItems};
pub use journal::{JournalReport, JOURNAL_PAGE};
pub use memories::ListPage;
pub use rank::{Explain, Mode, RankWeights};
pub use recall::RecallOutput;
pub use salience::{Cited, DECAY_BATCH, PROMOTION_BATCH};
pub use search::{SearchHit, SearchOutput};
pub use sessions::{Appended as TurnsAdded, Distilled, Lifecycle, DEFAULT_RELEVANCE_FLOOR};
pub use transfer::{Export, Import, ImportOptions, EXPORT_PAGE, IMPORT_BATCH};

use crate::clock::SharedClock;
use crate::distill::{Distiller, Extractive};
use crate::embed::Embedder;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::time::Millis;

/// Largest `limit` any call accepts.
pub const MAX_LIMIT: i64 = 1000;
/// Largest `offset` any call accepts (deep pages should use cursors).
pub const MAX_OFFSET: i64 = 100_000;
/// Longest search query, in characters.
pub const MAX_QUERY_CHARS: usize = 10_000;
/// Most memories in one write.
pub const MAX_BATCH: usize = 1000;

/// The service; clone it freely (it is a handle).
#[derive(Clone)]
pub struct MemoryService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    clock: SharedClock,
    auth: auth::Authenticator,
    /// Tenants whose model record was found to be the embedder's, and when
    /// (so search and writes need not read it each time). Trusted for
    /// [`MODEL_CHECK_TTL_MS`], and forgotten at once when a record changes on
    /// any node that announces it (`TenantModelChanged`, `Resync`).
    model_checked: quick_cache::sync::Cache<String, Millis>,
    embedder: Option<Arc<dyn Embedder>>,
    weights: RankWeights,
    lifecycle: Lifecycle,
    distiller: Arc<dyn Distiller>,
    /// One distillation at a time in this process (a session's summary is
    /// read, extended and written back by each).
    distilling: tokio::sync::Mutex<()>,
    /// Wakes the embedding queue worker after a write.
    queued: tokio::sync::Notify,
    /// Wakes the distillation worker when a job is queued.
    distill_queued: tokio::sync::Notify,
    /// Recent queries' intents.
    intents: crate::recall::IntentCache,
    /// Citations not yet written: `(tenant, id)` → times cited.
    cites: std::sync::Mutex<std::collections::HashMap<(String, String), u32>>,
    metrics: crate::metrics::ServiceMetrics,
    /// One scrub after an erasure at a time (see `erase.rs`).
    scrubbing: tokio::sync::Mutex<()>,
    /// Open change streams by caller (see `events.rs`).
    streams: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

/// What a service is built with besides its store and auth mode.
#[derive(Clone)]
pub struct ServiceOptions {
    /// Search by meaning and the embedding queue; `None` = keyword search only.
    pub embedder: Option<Arc<dyn Embedder>>,
    pub weights: RankWeights,
    pub lifecycle: Lifecycle,
    /// Default: [`Extractive`].
    pub distiller: Arc<dyn Distiller>,
    /// Default: the system clock. Give the store the same one.
    pub clock: SharedClock,
    /// Bearer tokens accepted beside API keys; `None`: keys only.
    pub jwt: Option<Arc<crate::jwt::JwtVerifier>>,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            embedder: None,
            weights: RankWeights::default(),
            lifecycle: Lifecycle::default(),
            distiller: Arc::new(Extractive),
            clock: crate::clock::system(),
            jwt: None,
        }
    }
}

/// Tenants whose checked model record is remembered.
const MODEL_CHECKED_TENANTS: usize = 10_000;
/// How long a checked model record is trusted (as long as an auth grant):
/// an admin command beside a SQLite server cannot announce its changes.
pub const MODEL_CHECK_TTL_MS: Millis = auth::CACHE_TTL_MS;

impl MemoryService {
    /// A service without an embedder (keyword search only) and default settings.
    pub fn new(store: Store, auth_mode: AuthMode) -> Self {
        Self::with_options(store, auth_mode, ServiceOptions::default())
    }

    /// A service with an embedder, ranking weights, lifecycle settings and a distiller.
    pub fn with_options(store: Store, auth_mode: AuthMode, opts: ServiceOptions) -> Self {
        let events = store.events();
        let service = MemoryService {
            inner: Arc::new(Inner {
                metrics: Default::default(),
                scrubbing: Default::default(),
                streams: Default::default(),
                store,
                auth: auth::Authenticator::new(auth_mode, opts.clock.clone(), opts.jwt),
                clock: opts.clock,
                model_checked: quick_cache::sync::Cache::new(MODEL_CHECKED_TENANTS),
                embedder: opts.embedder,
                weights: opts.weights,
                lifecycle: opts.lifecycle,
                distiller: opts.distiller,
                distilling: tokio::sync::Mutex::new(()),
                queued: tokio::sync::Notify::new(),
                distill_queued: tokio::sync::Notify::new(),
                cites: Default::default(),
                intents: crate::recall::IntentCache::new(1024),
            }),
        };
        service.follow_events(events);
        service
    }

    /// Acts on the store's events (from this node and others) while the
    /// service lives: a key change empties the auth cache; a model change
    /// wakes the embedding queue; a resync does both.
    fn follow_events(&self, mut events: tokio::sync::broadcast::Receiver<crate::store::StoreEvent>) {
        use crate::store::StoreEvent;
        use tokio::sync::broadcast::error::RecvError;
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let inner = Arc::downgrade(&self.inner);
        runtime.spawn(async move {
            loop {
                let event = match events.recv().await {
                    Ok(e) => e,
                    Err(RecvError::Lagged(_)) => StoreEvent::Resync,
                    Err(RecvError::Closed) => return,
                };
                let Some(inner) = inner.upgrade() else {
                    return;
                };
                let service = MemoryService { inner };
                match event {
                    StoreEvent::KeysChanged => service.inner.auth.forget(),
                    StoreEvent::TenantModelChanged { tenant } => {
                        service.inner.model_checked.remove(&tenant);
                        service.notify_queued();
                    }
                    StoreEvent::Resync => {
                        service.inner.auth.forget();
                        service.inner.model_checked.clear();
                        service.notify_queued();
                    }
                }
            }
        });
    }

    /// The working-memory and promotion settings.
    pub fn lifecycle(&self) -> &Lifecycle {
        &self.inner.lifecycle
    }

    /// The storage backend (the rules run on it; nothing outside the crate does).
    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The current time by the service's clock.
    /// What the service measures (exported by the server's `/metrics`).
    pub fn metrics(&self) -> &crate::metrics::ServiceMetrics {
        &self.inner.metrics
    }

    /// How long store calls take, and whether the store refuses them.
    pub fn store_health(&self) -> (&crate::metrics::StoreTimings, bool) {
        (self.store().timings(), self.store().breaker_open())
    }

    /// Work waiting across tenants: `(memories to embed, queued jobs)`.
    pub async fn queue_depths(&self) -> Result<(u64, u64)> {
        self.store().read(|r| r.queue_depths()).await
    }

    pub fn now(&self) -> Millis {
        self.inner.clock.now_ms()
    }

    /// The service's clock (for what it drives: breakers, heartbeats).
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// The embedder, when one is configured.
    pub fn embedder(&self) -> Option<&Arc<dyn Embedder>> {
        self.inner.embedder.as_ref()
    }

    /// Resolves after the next write that queued embeddings (or at once if one
    /// happened since the last call).
    pub async fn queued_work(&self) {
        self.inner.queued.notified().await
    }
}

/// Which results of a ranked or listed search to return.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Paging {
    pub limit: usize,
    pub offset: usize,
}

/// Checks a `limit` (1..=1000, default `default`).
pub(crate) fn check_limit(limit: Option<i64>, default: i64, field: &str) -> Result<usize> {
    let l = limit.unwrap_or(default);
    if !(1..=MAX_LIMIT).contains(&l) {
        return Err(Error::invalid(format!("{field} must be between 1 and {MAX_LIMIT}, got {l}")));
    }
    Ok(l as usize)
}

/// Checks an `offset` (0..=100 000).
pub(crate) fn check_offset(offset: Option<i64>, field: &str) -> Result<usize> {
    let o = offset.unwrap_or(0);
    if !(0..=MAX_OFFSET).contains(&o) {
        return Err(Error::invalid(format!("{field} must be between 0 and {MAX_OFFSET}, got {o}")));
    }
    Ok(o as usize)
}

/// Checks a `min_score` (a finite number; scores can be below 0, as cosines
/// can); absent keeps every result.
pub(crate) fn check_min_score(min: Option<f64>) -> Result<f64> {
    match min {
        None => Ok(f64::NEG_INFINITY),
        Some(m) if m.is_finite() => Ok(m),
        Some(m) => Err(Error::invalid(format!("min_score must be a finite number, got {m}"))),
    }
}

/// Checks a search query's length.
pub(crate) fn check_query(q: &str, field: &str) -> Result<()> {
    let n = q.chars().count();
    if n > MAX_QUERY_CHARS {
        return Err(Error::invalid(format!("{field} is {n} characters; the limit is {MAX_QUERY_CHARS}")));
    }
    Ok(())
}
