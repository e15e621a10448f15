//! Erasure: everything of a tenant under a namespace prefix, or of one
//! session, removed on request — memories and items (their vectors, queued
//! embeddings, keyword index entries and merge aliases go with their rows),
//! sessions and their turns, queued distillations (which carry turns' text),
//! and the memories distilled from those sessions.
//!
//! The service runs it page by page, one transaction each
//! ([`ERASE_PAGE`] rows scanned), so other writes go on between pages; a
//! page erases what matches at that moment, and the last pages find nothing
//! left. Every erased memory and session is journaled as `erased`, and the
//! whole erasure once more in the tenant's chain with its counts.

use serde::Serialize;

use super::sessions::{job_namespace, job_session, DISTILL};
use super::write::remove;
use crate::audit::{self, Change, ChangeKind};
use crate::auth::NamespaceGrant;
use crate::error::Result;
use crate::model::{Namespace, Source};
use crate::store::{SessionRow, Stored, Tx};

/// Rows scanned per transaction.
pub const ERASE_PAGE: usize = 500;

/// What to erase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Everything under a (non-empty) namespace prefix.
    Prefix(Namespace),
    /// A session, its turns and queued work, and the memories distilled from it.
    Session(String),
}

impl Target {
    fn memory(&self, s: &Stored) -> bool {
        match self {
            Target::Prefix(p) => s.memory.namespace.is_under(p),
            Target::Session(id) => matches!(&s.memory.source, Source::Session { session_id, .. } if session_id == id),
        }
    }

    fn session(&self, s: &SessionRow) -> bool {
        match self {
            Target::Prefix(p) => s.namespace.is_under(p),
            Target::Session(id) => &s.id == id,
        }
    }

    /// As it is named in the journal and the receipt.
    pub fn describe(&self) -> serde_json::Value {
        match self {
            Target::Prefix(p) => serde_json::json!({ "namespace_prefix": p.segments() }),
            Target::Session(id) => serde_json::json!({ "session_id": id }),
        }
    }
}

/// Counts by kind of what an erasure removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Erased {
    /// Memories without a key.
    pub memories: u64,
    /// LangGraph items (memories with a key).
    pub items: u64,
    pub sessions: u64,
    pub turns: u64,
    /// Queued distillations.
    pub jobs: u64,
}

impl Erased {
    pub fn add(&mut self, o: Erased) {
        self.memories += o.memories;
        self.items += o.items;
        self.sessions += o.sessions;
        self.turns += o.turns;
        self.jobs += o.jobs;
    }
}

/// Where the page after a full `page` starts (`None` after a short one: done).
fn next_after<T, C>(page: &[T], key: impl Fn(&T) -> C) -> Option<C> {
    (page.len() == ERASE_PAGE).then(|| page.last().map(key)).flatten()
}

fn granted(grant: Option<&NamespaceGrant>, ns: &Namespace) -> bool {
    grant.is_none_or(|g| g.covers(ns))
}

/// Erases the tenant's matching memories among the next page after `seq`;
/// the counts and where the next page starts (`None`: done).
pub fn memories_page(
    tx: &mut dyn Tx,
    tenant: &str,
    target: &Target,
    grant: Option<&NamespaceGrant>,
    after: i64,
) -> Result<(Erased, Option<i64>)> {
    let page = tx.memories_after(Some(tenant), after, ERASE_PAGE)?;
    let mut out = Erased::default();
    for s in page.iter().filter(|s| target.memory(s) && granted(grant, &s.memory.namespace)) {
        remove(tx, s, ChangeKind::Erased)?;
        if s.memory.key.is_some() {
            out.items += 1;
        } else {
            out.memories += 1;
        }
    }
    Ok((out, next_after(&page, |s| s.seq)))
}

/// Erases the tenant's matching sessions (turns and queued work with them)
/// among the next page after `(tenant, id)`.
pub fn sessions_page(
    tx: &mut dyn Tx,
    tenant: &str,
    target: &Target,
    grant: Option<&NamespaceGrant>,
    after: Option<(String, String)>,
) -> Result<(Erased, Option<(String, String)>)> {
    let page = tx.sessions_after(Some(tenant), after, ERASE_PAGE)?;
    let mut out = Erased::default();
    for s in page.iter().filter(|s| target.session(s) && granted(grant, &s.namespace)) {
        out.turns += tx.turns(tenant, &s.id, 1, s.turn_count)?.len() as u64;
        tx.delete_session(tenant, &s.id)?;
        out.sessions += 1;
        let change =
            Change { detail: Some(serde_json::json!({ "session": true })), ..Change::new(ChangeKind::Erased, &s.id) };
        audit::record(tx, tenant, &s.namespace.joined(), change);
    }
    Ok((out, next_after(&page, |s| (s.tenant.clone(), s.id.clone()))))
}

/// Erases the tenant's matching queued distillations among the next page
/// after job `id` (an ended session's jobs outlive it, with its turns).
pub fn jobs_page(
    tx: &mut dyn Tx,
    tenant: &str,
    target: &Target,
    grant: Option<&NamespaceGrant>,
    after: i64,
) -> Result<(Erased, Option<i64>)> {
    let page = tx.jobs_after(Some(tenant), after, ERASE_PAGE)?;
    let mut out = Erased::default();
    for j in page.iter().filter(|j| j.kind == DISTILL) {
        let hit = match (job_namespace(j), target) {
            (Some((_, ns)), Target::Prefix(p)) => ns.is_under(p) && granted(grant, &ns),
            (Some((session_id, ns)), Target::Session(id)) => &session_id == id && granted(grant, &ns),
            // A payload that does not decode still names its session in its subject.
            (None, Target::Session(id)) => grant.is_none() && job_session(j) == Some(id.as_str()),
            (None, Target::Prefix(_)) => false,
        };
        if hit && tx.delete_job(j.id)? {
            out.jobs += 1;
        }
    }
    Ok((out, next_after(&page, |j| j.id)))
}

/// Journals the whole erasure in the tenant's chain.
pub fn record_receipt(tx: &mut dyn Tx, tenant: &str, target: &Target, erased: &Erased) {
    let detail = serde_json::json!({ "target": target.describe(), "erased": erased });
    audit::record(tx, tenant, "", Change { id: None, detail: Some(detail), ..Change::new(ChangeKind::Erased, "") });
}
