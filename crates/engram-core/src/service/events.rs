//! Change events (`GET /v1/events`): a tenant's changes to memories —
//! created, updated, merged, deleted, expired, erased — read from the change
//! journal (`crate::audit`) in commit order, filtered by namespace prefix
//! and by the caller's namespaces, resumable from any event id.
//!
//! An [`EventFeed`] reads the journal after its position: at once when this
//! process commits a change of its tenant (`Store::changed`), and every
//! [`POLL`] for writes
//! of other nodes sharing a PostgreSQL database. The journal is the source
//! of truth, so a feed never misses a change or sees one twice, across
//! reconnects and nodes; the event id is its position.

use std::collections::VecDeque;
use std::time::Duration;

use serde::Serialize;

use super::MemoryService;
use crate::audit::{ChangeKind, ChangeRow};
use crate::auth::{Scope, TenantCtx};
use crate::error::{Error, Result};
use crate::model::Namespace;
use crate::time::Millis;

/// How often a feed looks for other nodes' changes (PostgreSQL).
pub const POLL: Duration = Duration::from_millis(500);
/// How often a feed checks that its caller's credential still holds (a
/// revoked key or an expired token ends the stream).
pub const RECHECK: Duration = Duration::from_secs(5);
/// Journal rows read at a time.
const PAGE: usize = 200;
/// Change streams one caller (key, token subject, or dev mode's tenant) may
/// hold open at once on one node; one more is `rate_limited` (429).
pub const MAX_STREAMS_PER_CALLER: usize = 16;

/// A caller's place among its open streams, given back when the feed drops.
struct StreamSlot {
    service: MemoryService,
    caller: String,
}

impl StreamSlot {
    fn take(service: &MemoryService, caller: String) -> Result<Self> {
        let mut open = service.inner.streams.lock().map_err(|_| Error::internal("stream count poisoned"))?;
        let n = open.entry(caller.clone()).or_insert(0);
        if *n >= MAX_STREAMS_PER_CALLER {
            return Err(Error::rate_limited(format!(
                "this key already holds {MAX_STREAMS_PER_CALLER} change streams open on this node; close one first"
            )));
        }
        *n += 1;
        Ok(StreamSlot { service: service.clone(), caller })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.service.inner.streams.lock() {
            if let Some(n) = open.get_mut(&self.caller) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    open.remove(&self.caller);
                }
            }
        }
    }
}

/// A position in the stream: the journal row's position and the change's
/// index in it. Written `a.b.c`; opaque to callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventId {
    pos: (i64, i64),
    idx: u32,
}

impl EventId {
    /// Parses an id this server gave (`invalid_input` otherwise).
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || Error::invalid("after is not an event id this server gave");
        let mut parts = s.split('.');
        let mut next = || parts.next().ok_or_else(bad);
        let (a, b, c) = (next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(EventId {
            pos: (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?),
            idx: c.parse().map_err(|_| bad())?,
        })
    }
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.pos.0, self.pos.1, self.idx)
    }
}

/// One change, as streamed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Event {
    /// Resume after this event with `?after=<id>`.
    pub id: String,
    /// `created`, `updated`, `merged`, `deleted`, `expired` or `erased`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub namespace: Namespace,
    pub memory_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// Merged: the memory it was folded into.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub into: Option<String>,
    #[serde(serialize_with = "crate::time::serde_rfc3339::serialize")]
    #[cfg_attr(feature = "schema", schemars(with = "crate::schema::Rfc3339"))]
    pub at: Millis,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
}

/// A subscription to one tenant's changes.
pub struct EventFeed {
    service: MemoryService,
    tenant: String,
    prefix: Namespace,
    /// The caller's granted prefixes under `prefix` (empty: no limit).
    within: Vec<Namespace>,
    /// The last change delivered (or passed over).
    cursor: EventId,
    ready: VecDeque<Event>,
    /// Woken when this process commits a change of the tenant.
    signal: std::sync::Arc<tokio::sync::Notify>,
    /// The credential the caller subscribed with, and when it last held.
    credential: Option<String>,
    /// When (service clock) the credential last held.
    checked: Millis,
    /// Other processes write to the store too: look for their changes.
    poll: bool,
    _slot: StreamSlot,
}

fn streamed(kind: ChangeKind) -> Option<&'static str> {
    match kind {
        ChangeKind::Created
        | ChangeKind::Updated
        | ChangeKind::Merged
        | ChangeKind::Deleted
        | ChangeKind::Expired
        | ChangeKind::Erased => Some(kind.as_str()),
        ChangeKind::SessionDeleted | ChangeKind::KeyCreated | ChangeKind::KeyRevoked | ChangeKind::Unknown => None,
    }
}

impl MemoryService {
    /// Subscribes the caller (`read` scope) to its tenant's changes under
    /// `namespace_prefix` (`/`-joined; empty: all), after event `after`
    /// (else from now on). `credential` is what the caller authenticated
    /// with: checked again every [`RECHECK`], so a revoked key's stream ends.
    pub async fn subscribe(
        &self,
        ctx: &TenantCtx,
        credential: Option<&str>,
        namespace_prefix: &str,
        after: Option<&str>,
    ) -> Result<EventFeed> {
        ctx.require(Scope::Read)?;
        let mut scope = crate::store::Scope::tenant(&ctx.tenant, 0);
        scope.namespace_prefix = Namespace::parse_joined(namespace_prefix, "namespace_prefix")?;
        ctx.confine(&mut scope)?;
        let caller = ctx.key_id.clone().unwrap_or_else(|| format!("tenant:{}", ctx.tenant));
        let slot = StreamSlot::take(self, caller)?;
        let cursor = match after {
            Some(id) => EventId::parse(id)?,
            None => EventId { pos: self.store().read(|r| r.changes_tail()).await?, idx: u32::MAX },
        };
        Ok(EventFeed {
            service: self.clone(),
            tenant: ctx.tenant.clone(),
            prefix: scope.namespace_prefix,
            within: scope.within,
            cursor,
            ready: VecDeque::new(),
            signal: self.store().changed().watch(&ctx.tenant),
            credential: credential.map(str::to_owned),
            checked: self.now(),
            poll: self.store().polls_for_changes(),
            _slot: slot,
        })
    }
}

impl EventFeed {
    /// The next event, waiting as long as it takes.
    pub async fn next(&mut self) -> Result<Event> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                return Ok(e);
            }
            // Listen before looking, so a write between the two is not missed.
            let signal = std::sync::Arc::clone(&self.signal);
            let woken = signal.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            self.recheck().await?;
            if self.fill().await? {
                continue;
            }
            let wait = if self.poll { POLL } else { RECHECK };
            tokio::select! {
                _ = woken => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Ends the feed once its caller's credential no longer holds.
    async fn recheck(&mut self) -> Result<()> {
        let now = self.service.now();
        if now - self.checked < RECHECK.as_millis() as Millis {
            return Ok(());
        }
        let ctx = self.service.authenticate(self.credential.as_deref()).await?;
        if ctx.tenant != self.tenant {
            return Err(Error::unauthenticated("the credential no longer names this tenant"));
        }
        self.checked = now;
        Ok(())
    }

    /// Reads the journal after the cursor; whether it read anything new.
    async fn fill(&mut self) -> Result<bool> {
        // The cursor's own row again: it may be only partly delivered.
        let after = (self.cursor.pos.0, self.cursor.pos.1.saturating_sub(1));
        let tenant = self.tenant.clone();
        let rows = self.service.store().read(move |r| r.changes_since(&tenant, after, PAGE)).await?;
        let mut moved = false;
        for (pos, row) in rows {
            let changes = match row.parsed() {
                Ok(c) => c,
                Err(e) => {
                    // Passed over, not stuck on: the audit log keeps it.
                    tracing::warn!(error = %e, "a journal row does not parse; its events are skipped");
                    self.cursor = EventId { pos, idx: u32::MAX };
                    moved = true;
                    continue;
                }
            };
            for (i, change) in changes.into_iter().enumerate() {
                let id = EventId { pos, idx: i as u32 };
                if id <= self.cursor {
                    continue;
                }
                self.cursor = id;
                moved = true;
                if let Some(event) = self.event(id, &row, change) {
                    self.ready.push_back(event);
                }
            }
        }
        Ok(moved)
    }

    fn event(&self, id: EventId, row: &ChangeRow, c: crate::audit::Change) -> Option<Event> {
        let kind = streamed(c.kind)?;
        // The tenant's own chain holds key changes and erasure summaries;
        // an erased session is not a memory.
        if row.namespace.is_empty() || c.detail.as_ref().is_some_and(|d| d.get("session").is_some()) {
            return None;
        }
        let ns = Namespace::from_stored(&row.namespace);
        let visible =
            ns.is_under(&self.prefix) && (self.within.is_empty() || self.within.iter().any(|p| ns.is_under(p)));
        visible.then(|| Event {
            id: id.to_string(),
            kind,
            namespace: ns,
            memory_id: c.id,
            key: c.key,
            version: c.version,
            into: c.into,
            at: row.at,
            by: row.actor.by.clone(),
            agent_id: row.actor.agent_id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_round_trip_and_order() {
        let a = EventId { pos: (0, 41), idx: 3 };
        assert_eq!(EventId::parse(&a.to_string()).unwrap(), a);
        assert!(a < EventId { pos: (0, 42), idx: 0 } && a < EventId { pos: (1, 0), idx: 0 });
        for bad in ["", "1.2", "1.2.3.4", "a.b.c", "1.2.-1", "1..3"] {
            assert!(EventId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
