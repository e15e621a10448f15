//! Background jobs. Each runs on an interval until shutdown, records a
//! heartbeat, and on failure logs and retries with backoff — it never dies
//! silently.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::backoff::Backoff;
use crate::service::MemoryService;
use crate::store::Leadership;

mod distill;
mod embed_queue;

pub use distill::{run_distiller, run_session_cleanup};
pub use embed_queue::run_embedding_queue;

/// Rows deleted per sweep transaction (keeps each write short).
pub const SWEEP_BATCH: usize = 1000;
/// How a failing job waits before its next try: 0.5 s doubling to a minute.
pub const JOB_BACKOFF: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(60));

/// Missed beats after which a job counts as stale.
pub const STALE_AFTER_BEATS: i64 = 3;
/// A job is never stale sooner than this after its last success, in
/// milliseconds (a busy step may take a while).
pub const STALE_AT_LEAST_MS: i64 = 30_000;

/// A job's last successful run, for readiness and metrics.
#[derive(Debug, Default)]
pub struct Heartbeat {
    pub name: &'static str,
    last_ok_ms: AtomicI64,
    failures: AtomicI64,
    /// A singleton job another node runs: this node waits to take over.
    standby: AtomicBool,
    /// Work items this node's job completed (embeddings, distillations).
    items: AtomicU64,
    /// How often the job beats when healthy, in milliseconds (0: unknown).
    every_ms: AtomicI64,
}

impl Heartbeat {
    pub fn new(name: &'static str) -> Arc<Self> {
        Arc::new(Heartbeat {
            name,
            last_ok_ms: AtomicI64::new(0),
            failures: AtomicI64::new(0),
            standby: AtomicBool::new(false),
            items: AtomicU64::new(0),
            every_ms: AtomicI64::new(0),
        })
    }
    /// Records how often the job beats when healthy (its loop says so).
    pub fn expect_every(&self, interval: Duration) {
        self.every_ms.store(interval.as_millis().min(i64::MAX as u128) as i64, Ordering::Relaxed);
    }
    /// Whether the last success is too old for a job beating as often as it
    /// said it would ([`STALE_AFTER_BEATS`] beats, at least [`STALE_AT_LEAST_MS`]):
    /// the job hangs or keeps failing. A job on standby is never stale.
    pub fn stale(&self, now: crate::time::Millis) -> bool {
        let (last, every) = (self.last_ok_ms(), self.every_ms.load(Ordering::Relaxed));
        !self.standby() && last > 0 && every > 0 && now - last > (STALE_AFTER_BEATS * every).max(STALE_AT_LEAST_MS)
    }
    /// How often the job beats when healthy, in milliseconds (0: unknown).
    pub fn every_ms(&self) -> i64 {
        self.every_ms.load(Ordering::Relaxed)
    }
    /// Records a successful run at `now`.
    pub fn ok(&self, now: crate::time::Millis) {
        self.last_ok_ms.store(now, Ordering::Relaxed);
        self.failures.store(0, Ordering::Relaxed);
    }
    /// Records a failed run; returns the consecutive failures so far.
    pub fn failed(&self) -> i64 {
        self.failures.fetch_add(1, Ordering::Relaxed) + 1
    }
    /// When the job last succeeded (0 = never).
    pub fn last_ok_ms(&self) -> i64 {
        self.last_ok_ms.load(Ordering::Relaxed)
    }
    /// Consecutive failures so far.
    pub fn failures(&self) -> i64 {
        self.failures.load(Ordering::Relaxed)
    }
    /// Counts `n` completed work items.
    pub fn done(&self, n: usize) {
        self.items.fetch_add(n as u64, Ordering::Relaxed);
    }
    /// Work items completed on this node since it started.
    pub fn items(&self) -> u64 {
        self.items.load(Ordering::Relaxed)
    }
    /// Whether another node runs this singleton job now.
    pub fn standby(&self) -> bool {
        self.standby.load(Ordering::Relaxed)
    }
}

/// Runs `step` when this node holds the job's leadership (one node at a time
/// among those sharing the store); otherwise marks the job standby and does
/// nothing. A node that dies hands the job to the next that asks.
async fn as_leader<F: Future<Output = crate::error::Result<Progress>>>(
    lead: &tokio::sync::Mutex<Leadership>,
    beat: &Heartbeat,
    step: impl FnOnce() -> F,
) -> crate::error::Result<Progress> {
    let held = lead.lock().await.held().await;
    beat.standby.store(!held, Ordering::Relaxed);
    if held {
        step().await
    } else {
        Ok(Progress::Idle)
    }
}

/// Runs `step` until `shutdown` turns true: again at once while it reports
/// more work, else after `interval` or when `wake` resolves. A failure is
/// logged, counted in the heartbeat, and retried after [`JOB_BACKOFF`] (never
/// longer than `interval`): a job never dies silently. Heartbeats are stamped
/// with `clock`.
pub async fn run_job<S, SF, W, WF>(
    clock: crate::clock::SharedClock,
    beat: Arc<Heartbeat>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
    mut step: S,
    mut wake: W,
) where
    S: FnMut() -> SF,
    SF: Future<Output = crate::error::Result<Progress>>,
    W: FnMut() -> WF,
    WF: Future<Output = ()>,
{
    beat.expect_every(interval);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let wait = match step().await {
            Ok(progress) => {
                beat.ok(clock.now_ms());
                if progress == Progress::More {
                    continue;
                }
                interval
            }
            Err(e) => {
                let failures = beat.failed();
                let backoff = JOB_BACKOFF.delay(failures.clamp(1, 64) as u32 - 1);
                tracing::error!(job = beat.name, error = %e, retry_in_ms = backoff.as_millis() as u64, "job failed");
                backoff.min(interval)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = wake() => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// What a job step found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Done for now: wait for the interval (or a wake-up).
    Idle,
    /// There is more to do at once.
    More,
}

/// Deletes expired memories every `interval` until `shutdown` turns true.
pub async fn run_ttl_sweeper(
    service: MemoryService,
    interval: Duration,
    beat: Arc<Heartbeat>,
    shutdown: watch::Receiver<bool>,
) {
    let lead = tokio::sync::Mutex::new(service.leadership(beat.name));
    let b = Arc::clone(&beat);
    let step = || {
        as_leader(&lead, &b, || async {
            let n = sweep_all(&service).await?;
            if n > 0 {
                tracing::info!(deleted = n, "swept expired memories");
            }
            Ok(Progress::Idle)
        })
    };
    run_job(service.clock().clone(), beat, interval, shutdown, step, std::future::pending).await
}

async fn sweep_all(service: &MemoryService) -> crate::error::Result<usize> {
    let mut total = 0;
    loop {
        let n = service.sweep_expired(SWEEP_BATCH).await?;
        total += n;
        if n < SWEEP_BATCH {
            return Ok(total);
        }
    }
}

/// How often counted citations are written.
const CITE_FLUSH: Duration = Duration::from_secs(1);
/// How often salience decay looks for memories not updated for a day.
const DECAY_EVERY: Duration = Duration::from_secs(3600);

/// Writes citations every second and decays salience hourly until
/// `shutdown` turns true; then writes the last citations.
pub async fn run_salience(service: MemoryService, beat: Arc<Heartbeat>, shutdown: watch::Receiver<bool>) {
    // When the last full decay pass ended (0 = never this run).
    let last_decay = AtomicI64::new(0);
    // Citations are counted per node and flushed by each; decay is one node's.
    let lead = tokio::sync::Mutex::new(service.leadership("salience_decay"));
    let b = Arc::clone(&beat);
    let step = || async {
        service.flush_citations().await?;
        let due = service.now() - last_decay.load(Ordering::Relaxed) >= DECAY_EVERY.as_millis() as i64;
        if !due {
            return Ok(Progress::Idle);
        }
        as_leader(&lead, &b, || async {
            let n = service.decay_salience().await?;
            if n < crate::service::DECAY_BATCH {
                last_decay.store(service.now(), Ordering::Relaxed);
                return Ok(Progress::Idle);
            }
            Ok(Progress::More)
        })
        .await
    };
    run_job(service.clock().clone(), beat, CITE_FLUSH, shutdown, step, std::future::pending).await;
    if let Err(e) = service.flush_citations().await {
        tracing::error!(error = %e, "writing the last citations at shutdown failed");
    }
}

/// Promotes salient episodic memories every `interval` until `shutdown`.
pub async fn run_promotion(
    service: MemoryService,
    interval: Duration,
    beat: Arc<Heartbeat>,
    shutdown: watch::Receiver<bool>,
) {
    let lead = tokio::sync::Mutex::new(service.leadership(beat.name));
    let b = Arc::clone(&beat);
    let step = || {
        as_leader(&lead, &b, || async {
            let done = service.promote().await?;
            if done.promoted + done.merged > 0 {
                tracing::info!(promoted = done.promoted, merged = done.merged, "promoted episodic memories");
            }
            let more = done.promoted + done.merged == crate::service::PROMOTION_BATCH;
            Ok(if more { Progress::More } else { Progress::Idle })
        })
    };
    run_job(service.clock().clone(), beat, interval, shutdown, step, std::future::pending).await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_failing_step_is_retried_with_backoff_and_counted() {
        let beat = Heartbeat::new("test");
        let calls = Arc::new(AtomicUsize::new(0));
        let (stop, rx) = watch::channel(false);
        let (c, b) = (Arc::clone(&calls), Arc::clone(&beat));
        let job = tokio::spawn(async move {
            let step = || {
                let n = c.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 3 {
                        Err(crate::Error::internal("store unavailable"))
                    } else {
                        Ok(Progress::Idle)
                    }
                }
            };
            run_job(crate::clock::system(), b, Duration::from_secs(60), rx, step, std::future::pending).await
        });
        // Three failures: retried after 0.5 s, 1 s, 2 s — not after the 60 s interval.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!((calls.load(Ordering::SeqCst), beat.failures(), beat.last_ok_ms()), (1, 1, 0));
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!((calls.load(Ordering::SeqCst), beat.failures()), (2, 2));
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!((calls.load(Ordering::SeqCst), beat.failures()), (3, 3));
        tokio::time::sleep(Duration::from_millis(2000)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 4, "the job never dies: it succeeds once the cause is gone");
        assert_eq!(beat.failures(), 0);
        assert!(beat.last_ok_ms() > 0);
        // Then it waits for its interval; shutdown ends it.
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        stop.send(true).unwrap();
        job.await.unwrap();
    }
}
