//! SQL for sessions (working memory) and their distillation jobs.
//!
//! Appends run in the single writer, so turn numbers are gap-free and in
//! commit order however many clients append at once. When a session has
//! `distill_every` turns not yet handed to distillation, the append queues a
//! `distill` job in the same transaction, carrying copies of those turns: the
//! job needs nothing else from the session, so a session may expire or be
//! deleted while its job waits. Finishing a job deletes it in the transaction
//! that writes its memories, so each job's memories are written exactly once,
//! even when two workers (or a restart) run it twice.
//!
//! Turns older than the window and already handed to distillation are pruned
//! on append: working memory stays bounded, long-term memory has the rest.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{Map, Value};

use super::memories::{self, Encoded, Written};
use crate::distill::DistillTurn;
use crate::error::{Error, Result};
use crate::model::session::{Session, Turn};
use crate::model::Namespace;
use crate::store::{AppendTurns, Appended, DistillJob};
use crate::time::Millis;

/// The job kind of distillation in the `jobs` table.
const DISTILL: &str = "distill";

struct Row {
    namespace: String,
    turn_count: i64,
    distilled: i64,
    expires_at: Millis,
}

fn session_row(c: &Connection, tenant: &str, id: &str) -> Result<Option<Row>> {
    Ok(c.prepare_cached(
        "SELECT namespace, turn_count, distilled_through, expires_at FROM sessions WHERE tenant_id = ? AND id = ?",
    )?
    .query_row(params![tenant, id], |r| {
        Ok(Row { namespace: r.get(0)?, turn_count: r.get(1)?, distilled: r.get(2)?, expires_at: r.get(3)? })
    })
    .optional()?)
}

fn metadata_json(m: &Map<String, Value>) -> Result<String> {
    serde_json::to_string(m).map_err(|e| Error::internal(format!("encoding turn metadata: {e}")))
}

fn to_turn(r: &rusqlite::Row<'_>) -> rusqlite::Result<Turn> {
    let meta: String = r.get(4)?;
    let metadata = serde_json::from_str(&meta)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(e)))?;
    Ok(Turn { index: r.get(0)?, role: r.get(1)?, content: r.get(2)?, at: r.get(3)?, metadata })
}

fn turns_between(c: &Connection, tenant: &str, id: &str, from: i64, to: i64) -> Result<Vec<Turn>> {
    let mut st = c.prepare_cached(
        "SELECT idx, role, content, at, metadata FROM session_turns \
         WHERE tenant_id = ? AND session_id = ? AND idx BETWEEN ? AND ? ORDER BY idx",
    )?;
    let rows = st.query_map(params![tenant, id, from, to], to_turn)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Queues a distillation of turns `from..=to` of a session; returns the job id.
fn queue_distill(c: &Connection, tenant: &str, id: &str, namespace: &str, from: i64, to: i64, now: Millis) -> Result<i64> {
    let turns: Vec<DistillTurn> = turns_between(c, tenant, id, from, to)?
        .into_iter()
        .map(|t| DistillTurn { index: t.index, role: t.role, content: t.content, at: t.at, metadata: t.metadata })
        .collect();
    let payload = serde_json::json!({ "session_id": id, "namespace": namespace, "turns": turns });
    c.prepare_cached(
        "INSERT INTO jobs (kind, tenant_id, subject, payload, attempts, run_after, created_at) VALUES (?, ?, ?, ?, 0, ?, ?)",
    )?
    .execute(params![DISTILL, tenant, id, payload.to_string(), now, now])?;
    Ok(c.last_insert_rowid())
}

/// Ends a session: its turns not yet distilled are queued for distillation
/// (when `distill_rest`), then the session and its turns are deleted.
fn end_session(c: &Connection, tenant: &str, id: &str, row: &Row, distill_rest: bool, now: Millis) -> Result<()> {
    if distill_rest && row.turn_count > row.distilled {
        queue_distill(c, tenant, id, &row.namespace, row.distilled + 1, row.turn_count, now)?;
    }
    c.prepare_cached("DELETE FROM session_turns WHERE tenant_id = ? AND session_id = ?")?.execute(params![tenant, id])?;
    c.prepare_cached("DELETE FROM sessions WHERE tenant_id = ? AND id = ?")?.execute(params![tenant, id])?;
    Ok(())
}

/// Appends turns (see the module docs).
pub fn append(c: &Connection, a: &AppendTurns) -> Result<Appended> {
    let (tenant, id, now) = (a.tenant.as_str(), a.session_id.as_str(), a.now);
    let mut row = session_row(c, tenant, id)?;
    if let Some(r) = row.as_ref().filter(|r| r.expires_at <= now) {
        // Expired but not yet swept: it ends now, and this starts a new one.
        end_session(c, tenant, id, r, true, now)?;
        row = None;
    }
    let row = match row {
        Some(r) => {
            if let Some(ns) = &a.namespace {
                if ns.joined() != r.namespace {
                    return Err(Error::conflict(format!(
                        "session {id} belongs to namespace {:?}; omit namespace or use that one",
                        r.namespace
                    )));
                }
            }
            r
        }
        None => {
            let namespace = match &a.namespace {
                Some(ns) => ns.joined(),
                None => crate::model::session::default_namespace(id)?.joined(),
            };
            c.prepare_cached(
                "INSERT INTO sessions (tenant_id, id, namespace, turn_count, distilled_through, summary, \
                 created_at, updated_at, expires_at) VALUES (?, ?, ?, 0, 0, '', ?, ?, ?)",
            )?
            .execute(params![tenant, id, namespace, now, now, now + a.ttl_ms])?;
            Row { namespace, turn_count: 0, distilled: 0, expires_at: now + a.ttl_ms }
        }
    };
    let mut insert = c.prepare_cached(
        "INSERT INTO session_turns (tenant_id, session_id, idx, role, content, at, metadata) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )?;
    let mut count = row.turn_count;
    for t in &a.turns {
        count += 1;
        insert.execute(params![tenant, id, count, t.role, t.content, t.at.unwrap_or(now), metadata_json(&t.metadata)?])?;
    }
    let mut distilled = row.distilled;
    let mut queued_job = None;
    let every = a.distill_every.max(1) as i64;
    let due = (count - distilled) / every * every;
    if due > 0 {
        queued_job = Some(queue_distill(c, tenant, id, &row.namespace, distilled + 1, distilled + due, now)?);
        distilled += due;
    }
    let keep_from = (count - a.window as i64).min(distilled);
    c.prepare_cached("DELETE FROM session_turns WHERE tenant_id = ? AND session_id = ? AND idx <= ?")?
        .execute(params![tenant, id, keep_from])?;
    let expires_at = now + a.ttl_ms;
    c.prepare_cached(
        "UPDATE sessions SET turn_count = ?, distilled_through = ?, updated_at = ?, expires_at = ? \
         WHERE tenant_id = ? AND id = ?",
    )?
    .execute(params![count, distilled, now, expires_at, tenant, id])?;
    Ok(Appended {
        namespace: Namespace::parse_joined(&row.namespace, "namespace")?,
        turn_count: count,
        pending_turns: count - distilled,
        expires_at,
        queued_job,
    })
}

/// A live session with its last `window` turns.
pub fn get(c: &Connection, tenant: &str, id: &str, window: usize, now: Millis) -> Result<Option<Session>> {
    let row = c
        .prepare_cached(
            "SELECT namespace, turn_count, distilled_through, summary, created_at, updated_at, expires_at \
             FROM sessions WHERE tenant_id = ? AND id = ? AND expires_at > ?",
        )?
        .query_row(params![tenant, id, now], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, i64>(6)?,
            ))
        })
        .optional()?;
    let Some((namespace, turn_count, distilled, summary, created_at, updated_at, expires_at)) = row else {
        return Ok(None);
    };
    let turns = turns_between(c, tenant, id, turn_count - window as i64 + 1, turn_count)?;
    Ok(Some(Session {
        session_id: id.to_owned(),
        namespace: Namespace::parse_joined(&namespace, "namespace")?,
        turns,
        summary,
        turn_count,
        distilled_turns: distilled,
        created_at,
        updated_at,
        expires_at,
    }))
}

/// Deletes a session, its turns and its queued distillations; false if there
/// was no live session.
pub fn delete(c: &Connection, tenant: &str, id: &str, now: Millis) -> Result<bool> {
    let Some(row) = session_row(c, tenant, id)? else { return Ok(false) };
    end_session(c, tenant, id, &row, false, now)?;
    c.prepare_cached("DELETE FROM jobs WHERE tenant_id = ? AND kind = ? AND subject = ?")?
        .execute(params![tenant, DISTILL, id])?;
    Ok(row.expires_at > now)
}

/// Queues every turn of a live session not yet handed to distillation; the
/// job id, or `None` when there was nothing to distill.
pub fn queue_rest(c: &Connection, tenant: &str, id: &str, now: Millis) -> Result<Option<i64>> {
    let row = session_row(c, tenant, id)?
        .filter(|r| r.expires_at > now)
        .ok_or_else(|| Error::not_found(format!("no session with id {id}")))?;
    if row.turn_count == row.distilled {
        return Ok(None);
    }
    let job = queue_distill(c, tenant, id, &row.namespace, row.distilled + 1, row.turn_count, now)?;
    c.prepare_cached("UPDATE sessions SET distilled_through = turn_count WHERE tenant_id = ? AND id = ?")?
        .execute(params![tenant, id])?;
    Ok(Some(job))
}

/// Ends up to `batch` expired sessions (their undistilled turns are queued
/// for distillation first); returns how many.
pub fn sweep(c: &Connection, now: Millis, batch: usize) -> Result<usize> {
    let expired: Vec<(String, String)> = c
        .prepare_cached("SELECT tenant_id, id FROM sessions WHERE expires_at <= ? LIMIT ?")?
        .query_map(params![now, batch as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (tenant, id) in &expired {
        if let Some(row) = session_row(c, tenant, id)? {
            end_session(c, tenant, id, &row, true, now)?;
        }
    }
    Ok(expired.len())
}

/// Due distillation jobs, oldest first, at most `max`.
pub fn due_distill_jobs(c: &Connection, now: Millis, max: usize) -> Result<Vec<DistillJob>> {
    let mut st = c.prepare_cached(
        "SELECT id, tenant_id, payload, attempts FROM jobs WHERE kind = ? AND run_after <= ? ORDER BY id LIMIT ?",
    )?;
    let rows = st.query_map(params![DISTILL, now, max as i64], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, tenant, payload, attempts) = row?;
        out.push(decode_job(id, tenant, &payload, attempts)?);
    }
    Ok(out)
}

/// One distillation job by id (`None` once it is done).
pub fn distill_job(c: &Connection, id: i64) -> Result<Option<DistillJob>> {
    let row = c
        .prepare_cached("SELECT tenant_id, payload, attempts FROM jobs WHERE id = ? AND kind = ?")?
        .query_row(params![id, DISTILL], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))
        .optional()?;
    row.map(|(tenant, payload, attempts)| decode_job(id, tenant, &payload, attempts)).transpose()
}

fn decode_job(id: i64, tenant: String, payload: &str, attempts: i64) -> Result<DistillJob> {
    #[derive(serde::Deserialize)]
    struct Payload {
        session_id: String,
        namespace: String,
        turns: Vec<DistillTurn>,
    }
    let p: Payload =
        serde_json::from_str(payload).map_err(|e| Error::internal(format!("distill job {id} has a bad payload: {e}")))?;
    Ok(DistillJob {
        id,
        tenant,
        session_id: p.session_id,
        namespace: Namespace::parse_joined(&p.namespace, "namespace")?,
        turns: p.turns,
        attempts,
    })
}

/// The running summary of a live session ("" when there is none).
pub fn summary(c: &Connection, tenant: &str, id: &str) -> Result<String> {
    Ok(c.prepare_cached("SELECT summary FROM sessions WHERE tenant_id = ? AND id = ?")?
        .query_row(params![tenant, id], |r| r.get(0))
        .optional()?
        .unwrap_or_default())
}

/// Completes a distillation job: deletes it, writes its memories and the
/// session's new summary — all or nothing. `None` when the job was already
/// done (nothing is written then).
pub fn finish_distill(
    c: &Connection,
    job: &DistillJob,
    summary: &str,
    batch: Vec<Encoded>,
    now: Millis,
) -> Result<Option<Vec<Written>>> {
    let deleted = c.prepare_cached("DELETE FROM jobs WHERE id = ? AND kind = ?")?.execute(params![job.id, DISTILL])?;
    if deleted == 0 {
        return Ok(None);
    }
    c.prepare_cached("UPDATE sessions SET summary = ? WHERE tenant_id = ? AND id = ?")?
        .execute(params![summary, job.tenant, job.session_id])?;
    if batch.is_empty() {
        return Ok(Some(Vec::new()));
    }
    memories::put_batch(c, &job.tenant, batch, now).map(Some)
}

/// Records a failed attempt; the job runs again after `run_after`.
pub fn retry_job(c: &Connection, id: i64, error: &str, run_after: Millis) -> Result<()> {
    c.prepare_cached("UPDATE jobs SET attempts = attempts + 1, last_error = ?, run_after = ? WHERE id = ?")?
        .execute(params![error.chars().take(500).collect::<String>(), run_after, id])?;
    Ok(())
}
