//! The session jobs: the distillation worker (queued distillations, including
//! those left by a restart or by a failed inline run) and the session cleanup
//! sweep (expired sessions end; their undistilled turns are queued first).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{run_job, Heartbeat, Progress, SWEEP_BATCH};
use crate::error::Result;
use crate::service::MemoryService;
use crate::time::now_ms;

/// Jobs taken per step.
const JOBS_PER_STEP: usize = 16;
/// How often an idle worker looks for due jobs (retries, work from a restart).
const POLL: Duration = Duration::from_secs(1);
/// Longest wait before a failed job is tried again.
const MAX_RETRY_DELAY_MS: i64 = 10 * 60 * 1000;

/// Runs queued distillations until `shutdown` turns true.
pub async fn run_distiller(service: MemoryService, beat: Arc<Heartbeat>, shutdown: watch::Receiver<bool>) {
    let wake = service.clone();
    run_job(beat, POLL, shutdown, || distill_due(&service), move || {
        let s = wake.clone();
        async move { s.distill_work().await }
    })
    .await
}

async fn distill_due(service: &MemoryService) -> Result<Progress> {
    let jobs = service.store().due_distill_jobs(now_ms(), JOBS_PER_STEP).await?;
    let full = jobs.len() == JOBS_PER_STEP;
    let mut done = 0;
    for job in jobs {
        let (id, attempts) = (job.id, job.attempts);
        match service.run_distill_job(job).await {
            Ok(ids) => {
                done += 1;
                tracing::debug!(job = id, memories = ids.len(), "distilled");
            }
            Err(e) => {
                // Left queued with a later start; the worker itself carries on.
                let delay = (1000i64 << attempts.clamp(0, 20)).min(MAX_RETRY_DELAY_MS);
                tracing::error!(job = id, attempts = attempts + 1, retry_in_ms = delay, error = %e, "distillation failed");
                service.store().retry_job(id, e.to_string(), now_ms() + delay).await?;
            }
        }
    }
    Ok(if full && done > 0 { Progress::More } else { Progress::Idle })
}

/// Ends expired sessions every `interval` until `shutdown` turns true.
pub async fn run_session_cleanup(service: MemoryService, interval: Duration, beat: Arc<Heartbeat>, shutdown: watch::Receiver<bool>) {
    let step = || async {
        let n = service.store().sweep_sessions(now_ms(), SWEEP_BATCH).await?;
        if n > 0 {
            tracing::info!(ended = n, "ended expired sessions");
            service.wake_distiller();
        }
        Ok(if n == SWEEP_BATCH { Progress::More } else { Progress::Idle })
    };
    run_job(beat, interval, shutdown, step, std::future::pending).await
}
