//! Sessions (working memory) and the scheduling of their distillation.
//!
//! Appends run in one transaction, so turn numbers are gap-free and in commit
//! order however many clients append at once. When a session has
//! `distill_every` turns not yet handed to distillation, the append queues a
//! `distill` job in the same transaction, carrying copies of those turns: the
//! job needs nothing else from the session, so a session may expire or be
//! deleted while its job waits. Finishing a job deletes it in the transaction
//! that writes its memories, so each job's memories are written exactly once,
//! even when two workers (or a restart) run it twice.
//!
//! Turns older than the window and already handed to distillation are pruned
//! on append: working memory stays bounded, long-term memory has the rest. A
//! session that ends (idle past its TTL) has its undistilled turns queued
//! first: nothing said is lost.

use super::liveness::session_live;
use super::write::{put_batch, Prepared};
use crate::audit::{self, Change, ChangeKind};
use crate::auth::NamespaceGrant;
use crate::distill::DistillTurn;
use crate::error::{Error, Result};
use crate::model::session::{NewTurn, Session, Turn};
use crate::model::{Memory, Namespace, WriteStatus};
use crate::store::{IndexMark, JobRow, Reads, SessionRow, Tx};
use crate::time::{LocalTime, Millis};

/// The job kind of distillation.
pub const DISTILL: &str = "distill";

/// Turns to append to a session.
#[derive(Debug, Clone)]
pub struct AppendTurns {
    pub tenant: String,
    pub session_id: String,
    /// Where the session's memories go; fixed by the first append (default
    /// `sessions/<id>`), and a different one later is a conflict.
    pub namespace: Option<Namespace>,
    pub turns: Vec<NewTurn>,
    pub now: Millis,
    /// Idle time to live, restarted by every append.
    pub ttl_ms: i64,
    /// Turns kept as working memory (`wm_max_turns`).
    pub window: usize,
    /// Turns per distillation (`distill_every`).
    pub distill_every: usize,
    /// The namespaces the caller is limited to: a session elsewhere is
    /// refused (`forbidden`), new or not.
    pub grant: Option<NamespaceGrant>,
    /// Whether the caller runs the distillation this append queues itself,
    /// at once: the job is then born leased to it ([`Queued`]).
    pub inline: bool,
}

/// A distillation job just queued. One its queuer runs at once is born
/// leased to it until `leased_until`, so no worker takes it first (the
/// caller could then not say which memories it made); the queuer claims it
/// with that lease ([`claim_job`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queued {
    pub id: i64,
    pub leased_until: Option<Millis>,
}

/// Whether a caller limited to `grant` may touch session `s`.
fn granted(grant: Option<&NamespaceGrant>, s: &SessionRow) -> bool {
    grant.is_none_or(|g| g.covers(&s.namespace))
}

/// What an append did.
#[derive(Debug, Clone)]
pub struct Appended {
    pub namespace: Namespace,
    pub turn_count: i64,
    /// Turns not yet handed to distillation.
    pub pending_turns: i64,
    pub expires_at: Millis,
    /// The distillation this append queued, if it completed a stretch.
    pub queued_job: Option<Queued>,
}

/// A queued distillation: the turns to distill and where their memories go.
#[derive(Debug, Clone)]
pub struct DistillJob {
    pub id: i64,
    pub tenant: String,
    pub session_id: String,
    pub namespace: Namespace,
    pub turns: Vec<DistillTurn>,
    /// Failed attempts so far.
    pub attempts: i64,
    /// When the session that queued it began (`None` for old jobs).
    pub session_started: Option<Millis>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Payload {
    session_id: String,
    namespace: String,
    turns: Vec<DistillTurn>,
    /// When the session that queued the job began (jobs queued before this
    /// was recorded have none).
    #[serde(default)]
    session_started: Option<Millis>,
}

/// Checks a job that comes from outside (an import): a known kind, whose
/// payload decodes and holds what an append would have queued.
pub fn check_job(j: &JobRow) -> Result<()> {
    if j.kind != DISTILL {
        return Err(Error::invalid(format!("unknown job kind {:?} (known: {DISTILL})", j.kind)));
    }
    let p: Payload = serde_json::from_str(&j.payload)
        .map_err(|e| Error::invalid(format!("the payload is not a distillation: {e}")))?;
    crate::model::session::validate_session_id(&p.session_id)?;
    if Namespace::parse_joined(&p.namespace, "payload.namespace")?.is_empty() {
        return Err(Error::invalid("payload.namespace must not be empty"));
    }
    let subject_ok = match p.session_started {
        Some(started) => j.subject == format!("{}@{started}", p.session_id),
        None => j.subject.strip_prefix(&p.session_id).is_some_and(|rest| rest.starts_with('@')),
    };
    if !subject_ok {
        return Err(Error::invalid("the subject is not the payload's session"));
    }
    if p.turns.is_empty() || p.turns.len() > 10_000 {
        return Err(Error::invalid("payload.turns must hold 1-10000 turns"));
    }
    for (i, t) in p.turns.iter().enumerate() {
        let field = format!("payload.turns[{i}]");
        let in_range = (1..=crate::transfer::MAX_COUNT).contains(&t.index)
            && (0..=crate::transfer::MAX_MILLIS).contains(&t.at)
            && t.utc_offset.abs() <= 18 * 3600;
        if !in_range {
            return Err(Error::invalid(format!("{field}: index, time or offset out of range")));
        }
        NewTurn::validate(t.role.clone(), t.content.clone(), None, t.metadata.clone(), &field)?;
    }
    Ok(())
}

/// The session id and namespace a distillation's payload names (`None`
/// when it does not decode).
pub fn job_namespace(j: &JobRow) -> Option<(String, Namespace)> {
    let p: Payload = serde_json::from_str(&j.payload).ok()?;
    Some((p.session_id, Namespace::from_stored(&p.namespace)))
}

/// The id of the session a job belongs to (from its subject).
pub fn job_session(j: &JobRow) -> Option<&str> {
    j.subject.rsplit_once('@').map(|(id, _)| id)
}

/// A job's subject: the session it belongs to — its id and when it began,
/// so a later session under the same id is another subject.
fn subject(s: &SessionRow) -> String {
    format!("{}@{}", s.id, s.created_at)
}

fn decode(job: JobRow) -> Result<DistillJob> {
    let p: Payload = serde_json::from_str(&job.payload)
        .map_err(|e| Error::internal(format!("distill job {} has a bad payload: {e}", job.id)))?;
    Ok(DistillJob {
        id: job.id,
        tenant: job.tenant,
        session_id: p.session_id,
        namespace: Namespace::from_stored(&p.namespace),
        turns: p.turns,
        attempts: job.attempts,
        session_started: p.session_started,
    })
}

/// Queues a distillation of turns `from..=to` of a session (leased to its
/// queuer when `leased`); returns the job.
fn queue_distill(tx: &mut dyn Tx, s: &SessionRow, from: i64, to: i64, leased: bool, now: Millis) -> Result<Queued> {
    let turns: Vec<DistillTurn> = tx
        .turns(&s.tenant, &s.id, from, to)?
        .into_iter()
        .map(|t| DistillTurn {
            index: t.index,
            role: t.role,
            content: t.content,
            at: t.at.at,
            utc_offset: t.at.utc_offset,
            metadata: t.metadata,
        })
        .collect();
    let payload = Payload {
        session_id: s.id.clone(),
        namespace: s.namespace.joined(),
        turns,
        session_started: Some(s.created_at),
    };
    let leased_until = leased.then_some(now + DISTILL_LEASE_MS);
    let id = tx.insert_job(&JobRow {
        id: 0,
        kind: DISTILL.into(),
        tenant: s.tenant.clone(),
        subject: subject(s),
        payload: serde_json::to_string(&payload)?,
        attempts: 0,
        run_after: leased_until.unwrap_or(now),
        created_at: now,
    })?;
    Ok(Queued { id, leased_until })
}

/// Ends a session: its undistilled turns are queued (when `distill_rest`),
/// then the session and its turns are deleted.
fn end(tx: &mut dyn Tx, s: &SessionRow, distill_rest: bool, now: Millis) -> Result<()> {
    if distill_rest && s.turn_count > s.distilled_through {
        queue_distill(tx, s, s.distilled_through + 1, s.turn_count, false, now)?;
    }
    tx.delete_session(&s.tenant, &s.id)
}

/// Appends turns (see the module docs).
pub fn append(tx: &mut dyn Tx, a: &AppendTurns) -> Result<Appended> {
    let (tenant, id, now) = (a.tenant.as_str(), a.session_id.as_str(), a.now);
    let mut row = tx.session(tenant, id)?;
    if let Some(r) = row.as_ref().filter(|r| !session_live(r, now)) {
        // Expired but not yet swept: it ends now, and this starts a new one.
        end(tx, r, true, now)?;
        row = None;
    }
    let mut s = match row {
        // Another's session is not there for this caller (as get and delete say).
        Some(r) if !granted(a.grant.as_ref(), &r) => {
            return Err(Error::not_found(format!("no session with id {id} in the namespaces this key may touch")));
        }
        Some(r) => {
            if let Some(ns) = a.namespace.as_ref().filter(|ns| **ns != r.namespace) {
                return Err(Error::conflict(format!(
                    "session {id} belongs to namespace {:?}, not {:?}; omit namespace or use that one",
                    r.namespace.joined(),
                    ns.joined()
                )));
            }
            r
        }
        None => SessionRow {
            tenant: tenant.to_owned(),
            id: id.to_owned(),
            namespace: match &a.namespace {
                Some(ns) => ns.clone(),
                None => crate::model::session::default_namespace(id)?,
            },
            turn_count: 0,
            distilled_through: 0,
            summary: String::new(),
            created_at: now,
            updated_at: now,
            expires_at: now + a.ttl_ms,
        },
    };
    let turns: Vec<Turn> = a
        .turns
        .iter()
        .enumerate()
        .map(|(i, t)| Turn {
            index: s.turn_count + 1 + i as i64,
            role: t.role.clone(),
            content: t.content.clone(),
            at: t.at.unwrap_or(LocalTime { at: now, utc_offset: 0 }),
            metadata: t.metadata.clone(),
        })
        .collect();
    s.turn_count += turns.len() as i64;
    s.updated_at = now;
    s.expires_at = now + a.ttl_ms;
    if !granted(a.grant.as_ref(), &s) {
        return Err(Error::forbidden(format!(
            "a new session {id} would be in namespace {:?}, outside the namespaces this key is limited to; pass a namespace within them",
            s.namespace.joined()
        )));
    }
    tx.put_session(&s)?;
    tx.insert_turns(tenant, id, &turns)?;
    let every = a.distill_every.max(1) as i64;
    let due = (s.turn_count - s.distilled_through) / every * every;
    let mut queued_job = None;
    if due > 0 {
        queued_job = Some(queue_distill(tx, &s, s.distilled_through + 1, s.distilled_through + due, a.inline, now)?);
        s.distilled_through += due;
        tx.put_session(&s)?;
    }
    let keep_from = (s.turn_count - a.window as i64).min(s.distilled_through);
    tx.delete_turns_through(tenant, id, keep_from)?;
    Ok(Appended {
        namespace: s.namespace,
        turn_count: s.turn_count,
        pending_turns: s.turn_count - s.distilled_through,
        expires_at: s.expires_at,
        queued_job,
    })
}

/// A live session with its last `window` turns.
pub fn get(r: &mut dyn Reads, tenant: &str, id: &str, window: usize, now: Millis) -> Result<Option<Session>> {
    let Some(s) = r.session(tenant, id)?.filter(|s| session_live(s, now)) else {
        return Ok(None);
    };
    let turns = r.turns(tenant, id, s.turn_count - window as i64 + 1, s.turn_count)?;
    Ok(Some(Session {
        session_id: s.id,
        namespace: s.namespace,
        turns,
        summary: s.summary,
        turn_count: s.turn_count,
        distilled_turns: s.distilled_through,
        created_at: s.created_at,
        updated_at: s.updated_at,
        expires_at: s.expires_at,
    }))
}

/// Deletes a live session, its turns and the distillations it queued; false
/// if there was no live session (or none `grant` covers). A session that has
/// expired (and the sweep has not reached) ends as expiry ends it: its
/// undistilled turns are queued.
pub fn delete(tx: &mut dyn Tx, tenant: &str, id: &str, grant: Option<&NamespaceGrant>, now: Millis) -> Result<bool> {
    let Some(s) = tx.session(tenant, id)?.filter(|s| granted(grant, s)) else {
        return Ok(false);
    };
    if !session_live(&s, now) {
        end(tx, &s, true, now)?;
        return Ok(false);
    }
    end(tx, &s, false, now)?;
    // Jobs an earlier session of this id left when it ended are kept.
    tx.delete_jobs_of(tenant, DISTILL, &subject(&s))?;
    audit::record(tx, tenant, &s.namespace.joined(), Change::new(ChangeKind::SessionDeleted, id));
    Ok(true)
}

/// Queues every turn of a live session not yet handed to distillation; the
/// job id, or `None` when there was nothing to distill.
pub fn queue_rest(
    tx: &mut dyn Tx,
    tenant: &str,
    id: &str,
    grant: Option<&NamespaceGrant>,
    now: Millis,
) -> Result<Option<Queued>> {
    let mut s = tx
        .session(tenant, id)?
        .filter(|s| session_live(s, now) && granted(grant, s))
        .ok_or_else(|| Error::not_found(format!("no session with id {id}")))?;
    if s.turn_count == s.distilled_through {
        return Ok(None);
    }
    // The caller (`POST …/distill`) runs it at once.
    let job = queue_distill(tx, &s, s.distilled_through + 1, s.turn_count, true, now)?;
    s.distilled_through = s.turn_count;
    tx.put_session(&s)?;
    Ok(Some(job))
}

/// Ends up to `batch` sessions expired at `now` (their undistilled turns are
/// queued first); returns how many.
pub fn sweep(tx: &mut dyn Tx, now: Millis, batch: usize) -> Result<usize> {
    let expired = tx.expired_sessions(now, batch)?;
    for (tenant, id) in &expired {
        if let Some(s) = tx.session(tenant, id)? {
            end(tx, &s, true, now)?;
        }
    }
    Ok(expired.len())
}

/// Due distillation jobs, oldest first, at most `max` (a look: see [`claim_jobs`]).
pub fn due_jobs(r: &mut dyn Reads, now: Millis, max: usize) -> Result<Vec<DistillJob>> {
    r.due_jobs(DISTILL, now, max)?.into_iter().map(decode).collect()
}

/// How long a taken distillation is its taker's alone (a slow model's calls
/// and retries fit well inside); a taker that dies leaves it to the next
/// after this.
pub const DISTILL_LEASE_MS: Millis = 10 * 60_000;

/// Takes the due distillation jobs, oldest first, at most `max`: each is
/// leased to the caller for [`DISTILL_LEASE_MS`], so no other worker (on any
/// node) takes it meanwhile.
pub fn claim_jobs(tx: &mut dyn Tx, now: Millis, max: usize) -> Result<Vec<DistillJob>> {
    let due = tx.due_jobs(DISTILL, now, max)?;
    for j in &due {
        tx.lease_job(j.id, now + DISTILL_LEASE_MS)?;
    }
    due.into_iter().map(decode).collect()
}

/// Takes one distillation job if it is due, or still under the lease it was
/// born with (`leased_until`: its queuer runs it); `None` when it is done,
/// or another worker holds it.
pub fn claim_job(tx: &mut dyn Tx, id: i64, leased_until: Option<Millis>, now: Millis) -> Result<Option<DistillJob>> {
    let ours = |j: &JobRow| j.run_after <= now || (j.attempts == 0 && Some(j.run_after) == leased_until);
    match tx.job(id)?.filter(|j| j.kind == DISTILL && ours(j)) {
        Some(j) => {
            tx.lease_job(j.id, now + DISTILL_LEASE_MS)?;
            decode(j).map(Some)
        }
        None => Ok(None),
    }
}

/// The running summary of a session ("" when it has none or has ended).
pub fn summary(r: &mut dyn Reads, tenant: &str, id: &str) -> Result<String> {
    Ok(r.session(tenant, id)?.map(|s| s.summary).unwrap_or_default())
}

/// Completes a distillation job: deletes it, writes its memories and the
/// session's new summary — all or nothing. `None` when the job was already
/// done (nothing is written then).
pub fn finish(
    tx: &mut dyn Tx,
    job: &DistillJob,
    summary: String,
    batch: Vec<Prepared>,
    now: Millis,
) -> Result<Option<Vec<(WriteStatus, Memory)>>> {
    if !tx.delete_job(job.id)? {
        return Ok(None);
    }
    // The summary belongs to the session that queued the job, not to a
    // later one that took its id.
    let ours = |s: &SessionRow| job.session_started.is_none_or(|t| t == s.created_at);
    if let Some(mut s) = tx.session(&job.tenant, &job.session_id)?.filter(ours) {
        s.summary = summary;
        tx.put_session(&s)?;
    }
    // Distilled memories bring no vectors: nothing to compare by meaning yet.
    // Distilled memories have no vectors yet: nothing to compare since a mark.
    put_batch(tx, &job.tenant, batch, &IndexMark::default(), now).map(Some)
}
