//! Sessions (working memory) and their distillation into episodic memories.
//!
//! Appending turns is one durable write; when it completes a stretch of
//! `distill_every` turns it also queues a distillation job (see
//! `rules/sessions.rs`). A fast distiller (the extractive default) runs
//! that job before the append returns, so the response names the memories it
//! made; a slow one (an LLM) leaves it to the distillation worker. Either way
//! the job is the unit of work: it survives a restart and its memories are
//! written exactly once.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::inputs::AddTurns;
use super::MemoryService;
use crate::audit::Actor;
use crate::auth::{Scope, TenantCtx};
use crate::distill::{DistillRequest, DistilledMemory, Distiller, Extractive};
use crate::error::{Error, Result};
use crate::model::memory::{MAX_METADATA_ENTRIES, MAX_TEXT_BYTES};
use crate::model::session::{validate_session_id, NewTurn, Session, MAX_TURNS_PER_CALL};
use crate::model::{Namespace, NewMemory, Source, Tier};
use crate::rules::sessions::{self as rules, AppendTurns, DistillJob};
use crate::rules::write::prepare;
use crate::time::{iso_date, serde_rfc3339, LocalTime, Millis};

/// The default recall relevance floor (cosine with all-MiniLM-L6-v2),
/// calibrated on LoCoMo and off-topic questions (docs/decisions.md).
pub const DEFAULT_RELEVANCE_FLOOR: f64 = 0.3;

/// Working-memory, promotion and recall settings (DESIGN §1 defaults).
#[derive(Debug, Clone)]
pub struct Lifecycle {
    /// Turns a session keeps as working memory.
    pub wm_max_turns: usize,
    /// Turns per distillation.
    pub distill_every: usize,
    /// A session ends after this long without a new turn.
    pub session_ttl_ms: i64,
    /// Episodic memories at or above this salience are promoted to semantic.
    pub promotion_threshold: f64,
    /// Recall packs long-term memories only when the best is at least this
    /// similar to the query (cosine, 0–1; 0 turns the floor off).
    pub recall_relevance_floor: f64,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            wm_max_turns: 10,
            distill_every: 5,
            session_ttl_ms: 86_400_000,
            promotion_threshold: 0.8,
            recall_relevance_floor: DEFAULT_RELEVANCE_FLOOR,
        }
    }
}

/// The answer to an append.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Appended {
    pub session_id: String,
    pub namespace: Namespace,
    pub turn_count: i64,
    /// Memories distilled by this append (created or merged into).
    pub distilled: Vec<String>,
    /// Turns waiting for the next distillation (or for the worker).
    pub pending_turns: i64,
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[cfg_attr(feature = "schema", schemars(with = "crate::schema::Rfc3339"))]
    pub expires_at: Millis,
}

/// The answer to `POST /v1/sessions/{id}/distill`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Distilled {
    pub session_id: String,
    pub distilled: Vec<String>,
}

impl MemoryService {
    /// Appends turns to a session, creating it on first use.
    pub async fn add_turns(&self, ctx: &TenantCtx, session_id: &str, req: AddTurns) -> Result<Appended> {
        ctx.require(Scope::Write)?;
        validate_session_id(session_id)?;
        if req.turns.is_empty() || req.turns.len() > MAX_TURNS_PER_CALL {
            return Err(Error::invalid(format!(
                "turns must hold 1 to {MAX_TURNS_PER_CALL} turns, got {}",
                req.turns.len()
            )));
        }
        let namespace = req.namespace.map(|ns| Namespace::new(ns, "namespace")).transpose()?;
        let turns = req
            .turns
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                let field = format!("turns[{i}]");
                let at =
                    t.at.as_deref()
                        .map(LocalTime::parse)
                        .transpose()
                        .map_err(|e| Error::invalid(format!("{field}.at: {e}")))?;
                NewTurn::validate(t.role, t.content, at, t.metadata.unwrap_or_default(), &field)
            })
            .collect::<Result<Vec<_>>>()?;
        let life = self.lifecycle();
        let append = AppendTurns {
            tenant: ctx.tenant.clone(),
            session_id: session_id.to_owned(),
            namespace,
            turns,
            now: self.now(),
            ttl_ms: life.session_ttl_ms,
            window: life.wm_max_turns,
            distill_every: life.distill_every,
            grant: ctx.namespaces.clone(),
            inline: self.inner.distiller.inline(),
        };
        let a = self.store().write(&ctx.actor(), move |tx| rules::append(tx, &append)).await?;
        let distilled = match a.queued_job {
            Some(job) if job.leased_until.is_some() => match self.run_distill_job_by_id(job).await {
                Ok(ids) => ids,
                Err(e) => {
                    // The turns are stored and the job stays queued.
                    tracing::warn!(error = %e, job = job.id, "distilling inline failed; left to the worker");
                    self.release_inline(job.id, &e).await;
                    Vec::new()
                }
            },
            Some(_) => {
                self.inner.distill_queued.notify_one();
                Vec::new()
            }
            None => Vec::new(),
        };
        Ok(Appended {
            session_id: session_id.to_owned(),
            namespace: a.namespace,
            turn_count: a.turn_count,
            distilled,
            pending_turns: a.pending_turns,
            expires_at: a.expires_at,
        })
    }

    /// A live session: its window of turns, summary and counts.
    pub async fn get_session(&self, ctx: &TenantCtx, session_id: &str) -> Result<Session> {
        ctx.require(Scope::Read)?;
        validate_session_id(session_id)?;
        self.session_window(&ctx.tenant, session_id)
            .await?
            .filter(|s| ctx.may_touch(&s.namespace))
            .ok_or_else(|| Error::not_found(format!("no session with id {session_id}")))
    }

    /// Deletes a session and its turns; turns not yet distilled are dropped
    /// with it (distill first to keep them).
    pub async fn delete_session(&self, ctx: &TenantCtx, session_id: &str) -> Result<()> {
        ctx.require(Scope::Write)?;
        validate_session_id(session_id)?;
        let (tenant, id, now, grant) = (ctx.tenant.clone(), session_id.to_owned(), self.now(), ctx.namespaces.clone());
        if self.store().write(&ctx.actor(), move |tx| rules::delete(tx, &tenant, &id, grant.as_ref(), now)).await? {
            Ok(())
        } else {
            Err(Error::not_found(format!("no session with id {session_id}")))
        }
    }

    /// Distills every turn of the session not yet distilled, now.
    pub async fn distill_session(&self, ctx: &TenantCtx, session_id: &str) -> Result<Distilled> {
        ctx.require(Scope::Write)?;
        validate_session_id(session_id)?;
        let (tenant, id, now, grant) = (ctx.tenant.clone(), session_id.to_owned(), self.now(), ctx.namespaces.clone());
        let distilled = match self
            .store()
            .write(&ctx.actor(), move |tx| rules::queue_rest(tx, &tenant, &id, grant.as_ref(), now))
            .await?
        {
            Some(job) => match self.run_distill_job_by_id(job).await {
                Ok(ids) => ids,
                Err(e) => {
                    self.release_inline(job.id, &e).await;
                    return Err(e);
                }
            },
            None => Vec::new(),
        };
        Ok(Distilled { session_id: session_id.to_owned(), distilled })
    }

    /// Resolves when a distillation job was queued for the worker.
    pub async fn distill_work(&self) {
        self.inner.distill_queued.notified().await
    }

    /// Wakes the distillation worker (work was queued outside a request).
    pub fn wake_distiller(&self) {
        self.inner.distill_queued.notify_one();
    }

    /// A live session with its working-memory window, if there is one.
    pub(crate) async fn session_window(&self, tenant: &str, id: &str) -> Result<Option<Session>> {
        let (tenant, id, window, now) = (tenant.to_owned(), id.to_owned(), self.lifecycle().wm_max_turns, self.now());
        self.store().point(move |r| rules::get(r, &tenant, &id, window, now)).await
    }

    /// Ends up to `batch` sessions idle past their TTL (their undistilled
    /// turns are queued first); returns how many.
    pub async fn sweep_sessions(&self, batch: usize) -> Result<usize> {
        let now = self.now();
        let n = self.store().write(&Actor::job("session_cleanup"), move |tx| rules::sweep(tx, now, batch)).await?;
        if n > 0 {
            self.wake_distiller();
        }
        Ok(n)
    }

    /// Due distillation jobs, oldest first (a look: nothing is taken).
    pub async fn due_distillations(&self, max: usize) -> Result<Vec<DistillJob>> {
        let now = self.now();
        self.store().read(move |r| rules::due_jobs(r, now, max)).await
    }

    /// Takes the due distillation jobs, oldest first (leased to this caller:
    /// see `rules::sessions::claim_jobs`).
    pub async fn claim_distillations(&self, max: usize) -> Result<Vec<DistillJob>> {
        let now = self.now();
        self.store().write(&Actor::job("distillation"), move |tx| rules::claim_jobs(tx, now, max)).await
    }

    /// Records a failed attempt of a job; it runs again after `delay_ms`.
    pub async fn retry_distillation(&self, id: i64, error: String, delay_ms: i64) -> Result<()> {
        let run_after = self.now() + delay_ms;
        self.store().write(&Actor::job("distillation"), move |tx| tx.retry_job(id, &error, run_after)).await
    }

    /// Gives up the lease a job was born with after running it inline
    /// failed, so the worker retries it at once (not after the lease).
    async fn release_inline(&self, id: i64, e: &Error) {
        if let Err(e) = self.retry_distillation(id, e.to_string(), 0).await {
            tracing::warn!(error = %e, job = id, "cannot release an inline distillation; it waits for its lease");
        }
        self.inner.distill_queued.notify_one();
    }

    /// Runs a job this caller queued (nothing if it is done, or another
    /// worker holds it).
    async fn run_distill_job_by_id(&self, job: rules::Queued) -> Result<Vec<String>> {
        let _one = self.inner.distilling.lock().await;
        let now = self.now();
        let claim = move |tx: &mut dyn crate::store::Tx| rules::claim_job(tx, job.id, job.leased_until, now);
        match self.store().write(&Actor::job("distillation"), claim).await? {
            Some(job) => self.distill_locked(job).await,
            None => Ok(Vec::new()),
        }
    }

    /// Runs a queued job (the worker's entry point); returns the ids of the
    /// memories written. A job another caller finished meanwhile writes nothing.
    pub async fn run_distill_job(&self, job: DistillJob) -> Result<Vec<String>> {
        let _one = self.inner.distilling.lock().await;
        self.distill_locked(job).await
    }

    async fn distill_locked(&self, job: DistillJob) -> Result<Vec<String>> {
        let (tenant, sid) = (job.tenant.clone(), job.session_id.clone());
        let summary = self.store().point(move |r| rules::summary(r, &tenant, &sid)).await?;
        let req = DistillRequest { session_id: job.session_id.clone(), turns: job.turns.clone(), summary };
        let distiller = Arc::clone(&self.inner.distiller);
        let out = tokio::task::spawn_blocking(move || match distiller.distill(&req) {
            Ok(out) => Ok(out),
            Err(e) => {
                tracing::warn!(distiller = distiller.name(), error = %e, "distiller failed; using the extractive one");
                Extractive.distill(&req)
            }
        })
        .await
        .map_err(|e| Error::internal(format!("distillation panicked: {e}")))?
        .map_err(|e| Error::internal(format!("extractive distillation failed: {e}")))?;
        let batch: Vec<_> = out.memories.into_iter().filter_map(|m| to_new_memory(&job, m)).map(prepare).collect();
        let embeds = !batch.is_empty();
        let now = self.now();
        let written = self
            .store()
            .write(&Actor::job("distillation"), move |tx| rules::finish(tx, &job, out.summary, batch, now))
            .await?;
        let ids: Vec<String> = written.unwrap_or_default().into_iter().map(|(_, m)| m.id).collect();
        if embeds && !ids.is_empty() {
            self.notify_queued();
        }
        Ok(ids)
    }
}

/// The episodic memory for a distilled one: provenance in `source` and
/// metadata, the source turn's own metadata kept where room allows.
fn to_new_memory(job: &DistillJob, m: DistilledMemory) -> Option<NewMemory> {
    let mut text = m.text.trim().to_owned();
    crate::text::truncate_bytes(&mut text, MAX_TEXT_BYTES);
    if text.is_empty() {
        return None;
    }
    let date = iso_date(m.at.date());
    let ours: [(&str, Value); 7] = [
        ("session_id", json!(job.session_id)),
        ("turn_from", json!(m.turn_from)),
        ("turn_to", json!(m.turn_to)),
        ("speakers", json!(m.speakers)),
        ("date", json!(date)),
        ("entities", json!(m.entities)),
        ("key_phrases", json!(m.key_phrases)),
    ];
    let mut metadata = Map::new();
    for (k, v) in ours {
        metadata.insert(k.to_owned(), v);
    }
    for (k, v) in m.metadata {
        if metadata.len() >= MAX_METADATA_ENTRIES {
            break;
        }
        metadata.entry(k).or_insert(v);
    }
    Some(NewMemory {
        namespace: job.namespace.clone(),
        key: None,
        tier: Tier::Episodic,
        text,
        data: None,
        tags: vec!["distilled".to_owned()],
        metadata,
        salience: m.salience.clamp(0.0, 1.0),
        pinned: false,
        ttl_ms: None,
        source: Source::Session { session_id: job.session_id.clone(), turns: [m.turn_from, m.turn_to] },
        index: None,
        embedding: None,
    })
}
