//! What admission costs a request on the hot path (issue 12; DESIGN §8
//! target < 5 µs): authenticating a cached API key, its token bucket, and
//! the database breaker's check — each alone and together, on a real SQLite
//! store. Run: `cargo bench -p engram-server --bench admission`.

use std::num::NonZeroU32;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use engram_core::auth::Scopes;
use engram_core::breaker::Breaker;
use engram_core::service::AuthMode;
use engram_core::store::{SqliteOptions, SqliteStore, Store};
use engram_core::MemoryService;
use engram_server::http::admission::KeyLimiter;

fn admission(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::Sqlite(SqliteStore::open(SqliteOptions::new(dir.path().join("engram.db"))).unwrap());
    let service = MemoryService::new(store, AuthMode::Required);
    let (_, secret) = rt.block_on(service.create_key("bench", "bench", Scopes::ALL, None)).unwrap();
    // The bucket never runs dry here: the cost of a check, not of a refusal.
    let limiter = KeyLimiter::new(NonZeroU32::MAX, NonZeroU32::MAX, service.clock().clone());
    let breaker = Breaker::new(3, Duration::from_millis(500), service.clock().clone());
    let ctx = rt.block_on(service.authenticate(Some(&secret))).unwrap();

    let mut g = c.benchmark_group("admission");
    g.bench_function("authenticate (cached key)", |b| {
        b.iter(|| rt.block_on(service.authenticate(Some(std::hint::black_box(&secret)))).unwrap())
    });
    g.bench_function("key token bucket", |b| b.iter(|| limiter.admit(std::hint::black_box(&ctx)).unwrap()));
    g.bench_function("breaker check", |b| b.iter(|| breaker.admit().unwrap()));
    g.bench_function("all three", |b| {
        b.iter(|| {
            let ctx = rt.block_on(service.authenticate(Some(std::hint::black_box(&secret)))).unwrap();
            limiter.admit(&ctx).unwrap();
            breaker.admit().unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, admission);
criterion_main!(benches);
