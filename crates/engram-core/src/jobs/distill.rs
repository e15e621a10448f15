//! The session jobs: the distillation worker (queued distillations, including
//! those left by a restart or by a failed inline run) and the session cleanup
//! sweep (expired sessions end; their undistilled turns are queued first).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{as_leader, run_job, Heartbeat, Progress, SWEEP_BATCH};
use crate::backoff::Backoff;
use crate::error::Result;
use crate::service::MemoryService;

/// Jobs taken per step.
const JOBS_PER_STEP: usize = 16;
/// How often an idle worker looks for due jobs (retries, work from a restart).
const POLL: Duration = Duration::from_secs(1);
/// How long a failed distillation waits: a second, doubling to ten minutes.
const RETRY: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(600));

/// Runs queued distillations until `shutdown` turns true.
pub async fn run_distiller(service: MemoryService, beat: Arc<Heartbeat>, shutdown: watch::Receiver<bool>) {
    let wake = service.clone();
    let b = Arc::clone(&beat);
    run_job(
        service.clock().clone(),
        beat,
        POLL,
        shutdown,
        || distill_due(&service, &b),
        move || {
            let s = wake.clone();
            async move { s.distill_work().await }
        },
    )
    .await
}

async fn distill_due(service: &MemoryService, beat: &Heartbeat) -> Result<Progress> {
    let jobs = service.claim_distillations(JOBS_PER_STEP).await?;
    let full = jobs.len() == JOBS_PER_STEP;
    let mut done = 0;
    for job in jobs {
        let (id, attempts) = (job.id, job.attempts);
        match service.run_distill_job(job).await {
            Ok(ids) => {
                done += 1;
                beat.done(1);
                tracing::debug!(job = id, memories = ids.len(), "distilled");
            }
            Err(e) => {
                // Left queued with a later start; the worker itself carries on.
                let delay = RETRY.delay(attempts.clamp(0, 64) as u32).as_millis() as i64;
                tracing::error!(job = id, attempts = attempts + 1, retry_in_ms = delay, error = %e, "distillation failed");
                service.retry_distillation(id, e.to_string(), delay).await?;
            }
        }
    }
    Ok(if full && done > 0 { Progress::More } else { Progress::Idle })
}

/// Ends expired sessions every `interval` until `shutdown` turns true.
pub async fn run_session_cleanup(
    service: MemoryService,
    interval: Duration,
    beat: Arc<Heartbeat>,
    shutdown: watch::Receiver<bool>,
) {
    let lead = tokio::sync::Mutex::new(service.leadership(beat.name));
    let b = Arc::clone(&beat);
    let step = || {
        as_leader(&lead, &b, || async {
            let n = service.sweep_sessions(SWEEP_BATCH).await?;
            if n > 0 {
                tracing::info!(ended = n, "ended expired sessions");
            }
            Ok(if n == SWEEP_BATCH { Progress::More } else { Progress::Idle })
        })
    };
    run_job(service.clock().clone(), beat, interval, shutdown, step, std::future::pending).await
}
