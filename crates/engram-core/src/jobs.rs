//! Background jobs. Each runs on an interval until shutdown, records a
//! heartbeat, and on failure logs and retries with backoff — it never dies
//! silently.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::service::MemoryService;
use crate::time::now_ms;

mod embed_queue;

pub use embed_queue::run_embedding_queue;

/// Rows deleted per sweep transaction (keeps each write short).
pub const SWEEP_BATCH: usize = 1000;

/// A job's last successful run, for readiness and metrics.
#[derive(Debug, Default)]
pub struct Heartbeat {
    pub name: &'static str,
    last_ok_ms: AtomicI64,
    failures: AtomicI64,
}

impl Heartbeat {
    pub fn new(name: &'static str) -> Arc<Self> {
        Arc::new(Heartbeat { name, last_ok_ms: AtomicI64::new(0), failures: AtomicI64::new(0) })
    }
    /// When the job last succeeded (0 = never).
    pub fn last_ok_ms(&self) -> i64 {
        self.last_ok_ms.load(Ordering::Relaxed)
    }
    /// Consecutive failures so far.
    pub fn failures(&self) -> i64 {
        self.failures.load(Ordering::Relaxed)
    }
}

/// Deletes expired memories every `interval` until `shutdown` turns true.
pub async fn run_ttl_sweeper(service: MemoryService, interval: Duration, beat: Arc<Heartbeat>, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(500);
    loop {
        let outcome = sweep_all(&service).await;
        let wait = match outcome {
            Ok(n) => {
                if n > 0 {
                    tracing::info!(job = beat.name, deleted = n, "swept expired memories");
                }
                beat.last_ok_ms.store(now_ms(), Ordering::Relaxed);
                beat.failures.store(0, Ordering::Relaxed);
                backoff = Duration::from_millis(500);
                interval
            }
            Err(e) => {
                beat.failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(job = beat.name, error = %e, retry_in_ms = backoff.as_millis() as u64, "job failed");
                let w = backoff.min(interval);
                backoff = (backoff * 2).min(Duration::from_secs(60));
                w
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

async fn sweep_all(service: &MemoryService) -> crate::error::Result<usize> {
    let mut total = 0;
    loop {
        let n = service.store().sweep_expired(now_ms(), SWEEP_BATCH).await?;
        total += n;
        if n < SWEEP_BATCH {
            return Ok(total);
        }
    }
}
