//! The embedding queue worker: takes the oldest queued memories, embeds them in
//! model calls of similar-length texts (little padding), stores the vectors and
//! updates the index. Under a burst of writes the queue fills and every call is
//! a full batch; when idle it sleeps until a write wakes it (or a poll, which
//! also picks up work queued before a restart).
//!
//! It also saves the vector index now and then, so a restart replays little.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Heartbeat;
use crate::backoff::Backoff;
use crate::error::Result;
use crate::service::{MemoryService, EMBED_BATCH};
use crate::store::PendingText;

/// Queued memories taken at once (about 8 s of work for the local model). They are sorted by length and embedded in
/// model calls of [`EMBED_BATCH`], so each call pads little: consecutive
/// writes vary widely in length, and a batch is padded to its longest text
/// (taking only 32 at a time halved the throughput on LoCoMo turns).
pub const WINDOW: usize = 512;
/// How often an idle worker looks for work anyway.
const POLL: Duration = Duration::from_secs(1);
/// How often the vector index is saved when it changed (and blocked tenants
/// are looked at again), in milliseconds.
const SAVE_EVERY_MS: i64 = 60_000;
/// How long a failing step waits: 0.2 s doubling to 30 s.
const RETRY: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));

/// Runs until `shutdown` turns true, then saves the index once more.
pub async fn run_embedding_queue(service: MemoryService, beat: Arc<Heartbeat>, mut shutdown: watch::Receiver<bool>) {
    let mut last_save = service.now();
    let mut saved_at_change = service.index_watermark().await.unwrap_or(0);
    // Tenants whose vectors were made with another model wait for `engram
    // reembed`; forgotten now and then in case it ran.
    let mut blocked = HashSet::new();
    let mut blocked_since = service.now();
    beat.expect_every(POLL);
    loop {
        if service.now() - blocked_since >= SAVE_EVERY_MS {
            blocked.clear();
            blocked_since = service.now();
        }
        if *shutdown.borrow() {
            break;
        }
        let wait = match step(&service, &beat, &mut blocked).await {
            Ok(n) => {
                beat.ok(service.now());
                if n > 0 {
                    continue;
                }
                POLL
            }
            Err(e) => {
                let failures = beat.failed();
                let backoff = RETRY.delay(failures.clamp(1, 64) as u32 - 1);
                tracing::error!(job = beat.name, error = %e, retry_in_ms = backoff.as_millis() as u64, "job failed");
                backoff
            }
        };
        if service.now() - last_save >= SAVE_EVERY_MS {
            let watermark = service.index_watermark().await.unwrap_or(saved_at_change);
            if watermark != saved_at_change {
                match service.save_indexes().await {
                    Ok(()) => saved_at_change = watermark,
                    Err(e) => {
                        tracing::error!(job = beat.name, error = %e, "saving the vector index failed")
                    }
                }
            }
            last_save = service.now();
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = service.queued_work() => {}
            _ = shutdown.changed() => {}
        }
    }
    if let Err(e) = service.save_indexes().await {
        tracing::error!(job = beat.name, error = %e, "saving the vector index at shutdown failed");
    }
}

/// Embeds one batch; returns how many memories it took off the queue.
async fn step(service: &MemoryService, beat: &Heartbeat, blocked: &mut HashSet<String>) -> Result<usize> {
    let Some(current) = service.current_model() else {
        return Ok(0);
    };
    service.sync_indexes().await?;
    let pending = service.claim_embeddings(WINDOW, blocked.iter().cloned().collect()).await?;
    if pending.is_empty() {
        return Ok(0);
    }
    let mut checked = HashSet::new();
    let mut ready: Vec<PendingText> = Vec::with_capacity(pending.len());
    for p in pending {
        if blocked.contains(&p.tenant) {
            continue;
        }
        if !checked.contains(&p.tenant) {
            if let Err(e) = service.ensure_tenant_model(&p.tenant).await {
                tracing::warn!(tenant = %p.tenant, model = %current.model, error = %e, "tenant's vectors wait for `engram reembed`");
                blocked.insert(p.tenant.clone());
                continue;
            }
            checked.insert(p.tenant.clone());
        }
        ready.push(p);
    }
    if ready.is_empty() {
        // Only blocked tenants' work was found; look again without them.
        return Ok(1);
    }
    // Stored one model call at a time, so the first vectors land quickly; a
    // call's vectors are stored while the model computes the next call's.
    ready.sort_by_key(|p| p.text.len());
    let mut storing: Option<tokio::task::JoinHandle<Result<usize>>> = None;
    for chunk in ready.chunks(EMBED_BATCH) {
        let texts = chunk.iter().map(|p| p.text.clone()).collect();
        let vectors = service.embed_texts(texts, true).await;
        if let Some(previous) = storing.take() {
            joined(previous).await?;
        }
        let done: Vec<(PendingText, Vec<f32>)> = chunk.iter().cloned().zip(vectors?).collect();
        let service = service.clone();
        storing = Some(tokio::spawn(async move { service.store_embeddings(done).await }));
    }
    if let Some(last) = storing {
        joined(last).await?;
    }
    beat.done(ready.len());
    Ok(ready.len())
}

async fn joined(task: tokio::task::JoinHandle<Result<usize>>) -> Result<usize> {
    task.await.map_err(|e| crate::Error::internal(format!("storing embeddings panicked: {e}")))?
}
