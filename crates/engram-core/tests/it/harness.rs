//! What every test body runs on: a [`Harness`] opens a store of the chosen
//! [`Backend`] in a temp dir (or in memory), on a [`ManualClock`] the test moves by hand, and
//! builds services on it. Vectors are the test's own (callers may bring
//! theirs), in a small space of [`DIMS`] dimensions.

use std::sync::Arc;

use engram_core::clock::ManualClock;
use engram_core::embed::{EmbedError, Embedder};
use engram_core::service::{AuthMode, ServiceOptions};
use engram_core::store::sqlite::Location;
use engram_core::store::{
    MongoOptions, MongoStore, PostgresOptions, PostgresStore, SqliteOptions, SqliteStore, Store, Synchronous,
    VectorOptions,
};
use engram_core::vector::normalise;
use engram_core::{MemoryService, TenantCtx};

/// Dimensions of the tests' vectors.
pub const DIMS: usize = 32;
/// The clock's start: 2026-01-01T00:00:00Z.
pub const T0: i64 = 1_767_225_600_000;
pub const MINUTE: i64 = 60_000;
pub const DAY: i64 = 86_400_000;

/// The storage backends the contract is run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    /// `memory://`: SQLite in this process's memory.
    Memory,
    /// MongoDB (the test server `ENGRAM_TEST_MONGO_URL` names).
    Mongo,
}

/// A backend on a temp dir (SQLite) or a fresh database (PostgreSQL), a
/// manual clock, and services built on them.
pub struct Harness {
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    pub clock: Arc<ManualClock>,
    /// The PostgreSQL database of this harness (created by [`Harness::new`]).
    pub postgres_url: Option<String>,
    /// The in-memory database of this harness, and a store kept open on it
    /// for the harness's life: an in-memory database lives while a
    /// connection to it does, so a body that reopens the store (as a
    /// restarted server would a file) finds what it wrote.
    memory: Option<(Location, Store)>,
    /// The MongoDB database of this harness (a fresh name on the test server).
    pub mongo_url: Option<String>,
}

/// The variable naming the test PostgreSQL server (an admin URL).
pub const POSTGRES_URL_VAR: &str = "ENGRAM_TEST_POSTGRES_URL";

/// Runs a future to completion from synchronous test code (the tests run on
/// a multi-threaded runtime).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

/// A database name no other harness (of any test process) uses.
fn unique_database_name() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("engram_t_{}_{n}_{}", std::process::id(), nanos % 1_000_000_000_000)
}

/// Creates an empty database on the test server; returns its URL.
fn fresh_database() -> String {
    let admin = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{POSTGRES_URL_VAR} is not set: the PostgreSQL tests need a server. `make test` starts one; by hand: \
             export {POSTGRES_URL_VAR}=$(scripts/postgres.sh start)"
        )
    });
    let name = unique_database_name();
    block_on(engram_core::store::postgres::create_database(&admin, &name))
        .unwrap_or_else(|e| panic!("cannot create a test database on {admin}: {e}"))
}

/// The variable naming the test MongoDB-wire server (`scripts/mongo.sh`).
pub const MONGO_URL_VAR: &str = "ENGRAM_TEST_MONGO_URL";

/// A URL naming a database no other harness uses on the test server.
pub fn fresh_mongo_database() -> String {
    let base = std::env::var(MONGO_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{MONGO_URL_VAR} is not set: the MongoDB tests need a server. `make test` starts one; by hand: \
             export {MONGO_URL_VAR}=$(scripts/mongo.sh start)"
        )
    });
    let name = unique_database_name();
    let (head, query) = base.split_once('?').unwrap_or((&base, ""));
    let head = head.trim_end_matches('/');
    if query.is_empty() {
        format!("{head}/{name}")
    } else {
        format!("{head}/{name}?{query}")
    }
}

/// The vector space of tests that bring their own vectors: it declares the
/// model's name and dimension, and refuses to embed (nothing in these tests
/// should ask it to).
#[derive(Debug)]
pub struct CallerVectors;

impl Embedder for CallerVectors {
    fn model(&self) -> &str {
        "caller-vectors-32"
    }
    fn dims(&self) -> usize {
        DIMS
    }
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Err(EmbedError::Unavailable(format!("the tests bring their own vectors; asked to embed {texts:?}")))
    }
}

impl Harness {
    pub fn new(backend: Backend) -> Self {
        let postgres_url = (backend == Backend::Postgres).then(fresh_database);
        let memory = (backend == Backend::Memory).then(|| {
            let location = Location::memory();
            let keeper = SqliteOptions {
                location: location.clone(),
                exclusive: false,
                readers: 1,
                ..SqliteOptions::in_memory()
            };
            (location, Store::Sqlite(SqliteStore::open(keeper).expect("open the in-memory store")))
        });
        let mongo_url = (backend == Backend::Mongo).then(fresh_mongo_database);
        Harness {
            backend,
            dir: tempfile::tempdir().expect("tempdir"),
            clock: ManualClock::new(T0),
            postgres_url,
            memory,
            mongo_url,
        }
    }

    /// Where this harness's SQLite database lives (a file, or memory).
    fn sqlite_location(&self) -> Location {
        match &self.memory {
            Some((location, _)) => location.clone(),
            None => Location::File(self.dir.path().join("engram.db")),
        }
    }

    /// Opens the backend's store on this harness's directory and clock.
    pub fn store(&self) -> Store {
        match self.backend {
            Backend::Sqlite | Backend::Memory => {
                let mut opts = SqliteOptions { location: self.sqlite_location(), ..SqliteOptions::in_memory() };
                opts.readers = 4;
                opts.synchronous = Synchronous::Normal;
                let index_path = (self.backend == Backend::Sqlite).then(|| self.dir.path().join("engram.vectors"));
                opts.vectors = Some(VectorOptions { dims: DIMS, index_path });
                opts.clock = self.clock.clone();
                Store::Sqlite(SqliteStore::open(opts).expect("open the store"))
            }
            Backend::Postgres => {
                let mut opts = PostgresOptions::new(self.postgres_url.clone().expect("a database"));
                opts.pool_size = 8;
                opts.dims = Some(DIMS);
                opts.clock = self.clock.clone();
                Store::Postgres(block_on(PostgresStore::open(opts)).expect("open the store"))
            }
            Backend::Mongo => {
                let mut opts = MongoOptions::new(self.mongo_url.clone().expect("a database"));
                opts.dims = Some(DIMS);
                opts.clock = self.clock.clone();
                Store::Mongo(block_on(MongoStore::open(opts)).expect("open the store"))
            }
        }
    }

    /// The store as an admin command beside a running server opens it (the
    /// CLI's `for_admin`): no single-server lock, no vector index.
    pub fn admin_store(&self) -> Store {
        match self.backend {
            Backend::Sqlite | Backend::Memory => {
                let mut opts = SqliteOptions { location: self.sqlite_location(), ..SqliteOptions::in_memory() };
                opts.exclusive = false;
                opts.readers = 1;
                opts.clock = self.clock.clone();
                Store::Sqlite(SqliteStore::open(opts).expect("open the store beside the other"))
            }
            Backend::Postgres => {
                let mut opts = PostgresOptions::new(self.postgres_url.clone().expect("a database"));
                opts.pool_size = 2;
                opts.clock = self.clock.clone();
                Store::Postgres(block_on(PostgresStore::open(opts)).expect("open the store"))
            }
            Backend::Mongo => {
                let mut opts = MongoOptions::new(self.mongo_url.clone().expect("a database"));
                opts.indexes = false;
                opts.clock = self.clock.clone();
                Store::Mongo(block_on(MongoStore::open(opts)).expect("open the store"))
            }
        }
    }

    /// A service with default settings and no embedder (keyword search only).
    pub fn service(&self) -> MemoryService {
        self.service_with(ServiceOptions::default())
    }

    /// A service whose callers bring their own vectors ([`CallerVectors`]).
    pub fn vector_service(&self) -> MemoryService {
        self.service_with(ServiceOptions { embedder: Some(Arc::new(CallerVectors)), ..ServiceOptions::default() })
    }

    /// A service with `opts`, on this harness's clock.
    pub fn service_with(&self, mut opts: ServiceOptions) -> MemoryService {
        opts.clock = self.clock.clone();
        MemoryService::with_options(self.store(), AuthMode::DevUntilKeysExist, opts)
    }

    pub fn now(&self) -> i64 {
        engram_core::clock::Clock::now_ms(self.clock.as_ref())
    }

    pub fn advance(&self, ms: i64) {
        self.clock.advance(ms);
    }
}

/// Sixty memories in namespace `k` that match "fading ember" best and expire
/// after a second, and two that match one of the words and last.
pub fn fading_and_lasting_embers() -> serde_json::Value {
    let mut memories: Vec<serde_json::Value> = (0..60)
        .map(|i| serde_json::json!({"namespace": ["k"], "text": format!("fading ember number {i}"), "ttl_seconds": 1}))
        .collect();
    memories.push(serde_json::json!({"namespace": ["k"], "text": "an ember that lasts"}));
    memories.push(serde_json::json!({"namespace": ["k"], "text": "another lasting ember"}));
    serde_json::json!({ "memories": memories })
}

/// After [`fading_and_lasting_embers`] expired: a keyword search for "fading
/// ember" with `limit` 2 gets a full page of the two that last.
pub async fn only_the_lasting_embers_are_found(svc: &MemoryService, ctx: &TenantCtx) {
    let input: engram_core::service::inputs::SearchInput =
        from_json(serde_json::json!({"query": "fading ember", "mode": "keyword", "limit": 2}));
    let found: Vec<String> = svc.search(ctx, input).await.unwrap().results.into_iter().map(|r| r.memory.text).collect();
    assert_eq!(found.len(), 2, "a full page of live memories: {found:?}");
    assert!(found.iter().all(|t| t.contains("last")), "{found:?}");
}

/// A caller of tenant `tenant` with every scope.
pub fn tenant(tenant: &str) -> TenantCtx {
    TenantCtx { tenant: tenant.into(), ..TenantCtx::dev() }
}

/// Parses a JSON value into a request shape (panics on a test's typo).
pub fn from_json<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}"))
}

/// A small deterministic generator (xorshift), so failures reproduce.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    /// A random unit vector.
    pub fn unit(&mut self, dims: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..dims).map(|_| self.next()).collect();
        normalise(&mut v).expect("non-zero");
        v
    }
}

/// `v` nudged in one coordinate, still unit length (cosine stays high).
pub fn nudged(v: &[f32], by: f32) -> Vec<f32> {
    let mut w = v.to_vec();
    w[0] += by;
    normalise(&mut w).expect("non-zero");
    w
}

/// How long a generated-input test runs under `make fuzz`
/// (`ENGRAM_FUZZ_SECONDS`); `None`: its fixed number of cases.
pub fn fuzz_budget() -> Option<std::time::Duration> {
    if std::env::var_os("ENGRAM_FUZZ_SEED").is_some() && std::env::var_os("ENGRAM_FUZZ_SECONDS").is_none() {
        return Some(std::time::Duration::ZERO);
    }
    let s = std::env::var("ENGRAM_FUZZ_SECONDS").ok()?;
    Some(std::time::Duration::from_secs(s.parse().expect("ENGRAM_FUZZ_SECONDS is a number of seconds")))
}

/// The seed of a batch of generated input: `ENGRAM_FUZZ_SEED` (to replay
/// one a failure printed), else a fresh one under `make fuzz` (printed),
/// else `fixed` (so `make test` is repeatable).
pub fn batch_seed(what: &str, fixed: u64) -> u64 {
    if let Ok(s) = std::env::var("ENGRAM_FUZZ_SEED") {
        return s.parse().expect("ENGRAM_FUZZ_SEED is a number");
    }
    if fuzz_budget().is_none() {
        return fixed;
    }
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    eprintln!("{what}: seed {seed}");
    seed
}
