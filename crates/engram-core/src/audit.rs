//! The change journal: an append-only, hash-chained record of every change
//! to memories (created, updated, merged, deleted, expired), of erasures,
//! deleted sessions and key changes — who made it, when, under which
//! request. It is the audit log (`engram audit verify|export`), and what
//! change events are read from.
//!
//! - **Recording.** Domain rules say what changed with [`record`] as they
//!   change it; the entries wait in the transaction's journal
//!   (`Tx::journal`) and [`flush`] — run by `Store::write` after every write
//!   closure — appends them in the same transaction, so a change and its
//!   record commit together or not at all.
//! - **Chains.** One chain per place (tenant, namespace; the empty namespace
//!   for tenant-wide actions such as keys and erasures), so writes to
//!   different places, which may commit side by side on PostgreSQL, never
//!   contend for one chain head. One row per write and place: its changes
//!   in order, the actor, `seq` (1, 2, … in the chain), the previous row's
//!   hash and its own: SHA-256 over the previous hash and every field
//!   ([`ChangeRow::digest`]). The chain's head (last `seq` and hash) is
//!   kept beside it, so cutting the tail is noticed too.
//! - **What it holds.** Ids, keys, namespaces, versions and counts — never a
//!   memory's text or data, so erasing a memory leaves nothing of its
//!   content here.
//! - **What it proves.** [`verify`] finds an altered, removed or reordered
//!   row, and a chain cut short of its head. Someone able to rewrite the
//!   whole database can rewrite the chains too: keep the heads `verify`
//!   prints somewhere else to pin them.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::store::Tx;
use crate::time::Millis;

/// Who a write is recorded as made by.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// `key:<key id>`, `jwt:<subject>`, `job:<name>` or `cli`; none in
    /// loopback dev mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The agent the caller named (`x-agent-id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The request's id (`x-request-id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Actor {
    /// A background job: `job:<name>`.
    pub fn job(name: &str) -> Self {
        Actor { by: Some(format!("job:{name}")), ..Actor::default() }
    }

    /// The operator at the command line.
    pub fn cli() -> Self {
        Actor { by: Some("cli".into()), ..Actor::default() }
    }
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Created,
    Updated,
    /// Folded into another memory (`into`) as a near-duplicate.
    Merged,
    Deleted,
    /// Removed when its TTL ran out.
    Expired,
    /// Everything under a namespace prefix or of a session, removed on request.
    Erased,
    SessionDeleted,
    KeyCreated,
    KeyRevoked,
    /// A kind this build does not know (written by a newer one).
    #[serde(other)]
    Unknown,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Updated => "updated",
            ChangeKind::Merged => "merged",
            ChangeKind::Deleted => "deleted",
            ChangeKind::Expired => "expired",
            ChangeKind::Erased => "erased",
            ChangeKind::SessionDeleted => "session_deleted",
            ChangeKind::KeyCreated => "key_created",
            ChangeKind::KeyRevoked => "key_revoked",
            ChangeKind::Unknown => "unknown",
        }
    }
}

/// One change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub kind: ChangeKind,
    /// The memory's, session's or key's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// An item's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The memory's version after the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// Merged: the memory it was folded into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub into: Option<String>,
    /// Anything else worth keeping (counts of an erasure, a key's scopes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

impl Change {
    pub fn new(kind: ChangeKind, id: &str) -> Self {
        Change { kind, id: Some(id.to_owned()), key: None, version: None, into: None, detail: None }
    }

    /// A change to memory `m`.
    pub fn memory(kind: ChangeKind, m: &crate::model::Memory) -> Self {
        Change { key: m.key.clone(), version: Some(m.version), ..Change::new(kind, &m.id) }
    }
}

/// A change waiting in a transaction's journal: `(tenant, namespace, change)`.
pub type Journaled = (String, String, Change);

/// Notes a change of `tenant`'s `namespace` (stored form; empty for
/// tenant-wide actions) in the transaction's journal.
pub fn record(tx: &mut dyn Tx, tenant: &str, namespace: &str, change: Change) {
    tx.journal().push((tenant.to_owned(), namespace.to_owned(), change));
}

/// A chain's position: its last `seq` and hash.
pub type Head = (i64, [u8; 32]);

/// One row of a chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRow {
    pub tenant: String,
    /// The chain: the namespace (stored form), empty for tenant-wide actions.
    pub namespace: String,
    /// 1, 2, … within the chain.
    pub seq: i64,
    pub at: Millis,
    #[serde(flatten)]
    pub actor: Actor,
    /// The changes, as JSON text (hashed as stored; exported verbatim).
    #[serde(with = "raw_json")]
    pub changes: String,
    #[serde(with = "hex32")]
    pub prev_hash: [u8; 32],
    #[serde(with = "hex32")]
    pub hash: [u8; 32],
}

impl ChangeRow {
    /// SHA-256 over the previous hash and every field, each length-prefixed
    /// (so no two rows hash alike by shifting bytes between fields).
    pub fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.prev_hash);
        let opt = |o: &Option<String>| o.clone().unwrap_or_default();
        let fields = [
            self.tenant.clone(),
            self.namespace.clone(),
            self.seq.to_string(),
            self.at.to_string(),
            opt(&self.actor.by),
            opt(&self.actor.agent_id),
            opt(&self.actor.request_id),
        ];
        for f in fields.iter().chain(std::iter::once(&self.changes)) {
            h.update((f.len() as u64).to_be_bytes());
            h.update(f.as_bytes());
        }
        h.finalize().into()
    }

    /// The changes, parsed.
    pub fn parsed(&self) -> Result<Vec<Change>> {
        serde_json::from_str(&self.changes).map_err(|e| {
            Error::internal(format!("change row {}/{}#{} does not parse: {e}", self.tenant, self.namespace, self.seq))
        })
    }
}

/// Appends the transaction's journal to the chains: one row per place, in
/// the order places were first touched. Run by `Store::write` after each
/// write closure, inside its transaction.
pub fn flush(tx: &mut dyn Tx, actor: &Actor, now: Millis) -> Result<()> {
    let journal = std::mem::take(tx.journal());
    if journal.is_empty() {
        return Ok(());
    }
    let mut places: Vec<((String, String), Vec<Change>)> = Vec::new();
    for (tenant, namespace, change) in journal {
        match places.iter_mut().find(|(p, _)| p.0 == tenant && p.1 == namespace) {
            Some((_, changes)) => changes.push(change),
            None => places.push(((tenant, namespace), vec![change])),
        }
    }
    for ((tenant, namespace), changes) in places {
        let (seq, prev_hash) = tx.change_head(&tenant, &namespace)?.unwrap_or((0, [0; 32]));
        let changes =
            serde_json::to_string(&changes).map_err(|e| Error::internal(format!("changes do not encode: {e}")))?;
        let mut row = ChangeRow {
            tenant,
            namespace,
            seq: seq + 1,
            at: now,
            actor: actor.clone(),
            changes,
            prev_hash,
            hash: [0; 32],
        };
        row.hash = row.digest();
        tx.append_change(&row)?;
    }
    Ok(())
}

/// What [`verify`] found wrong: the chain, the row, and how.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fault {
    pub tenant: String,
    pub namespace: String,
    pub seq: i64,
    pub problem: String,
}

/// A chain as verified: its place, length and last hash.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChainHead {
    pub tenant: String,
    pub namespace: String,
    pub seq: i64,
    #[serde(with = "hex32")]
    pub hash: [u8; 32],
}

/// Checks chains row by row (rows in chain order: by tenant, namespace,
/// seq) against the heads recorded before the rows were read: rows appended
/// since are left out, so a live store verifies as well as a still one.
/// Feed it pages with [`Verifier::rows`] and finish with [`Verifier::finish`].
#[derive(Debug, Default)]
pub struct Verifier {
    /// The heads read first, by chain.
    heads: std::collections::HashMap<(String, String), ChainHead>,
    current: Option<ChainHead>,
    /// Chains seen, with the last row checked.
    seen: Vec<ChainHead>,
    faults: Vec<Fault>,
    rows_checked: u64,
}

impl Verifier {
    /// A verifier of the chains whose heads are `heads` (read before any row).
    pub fn new(heads: Vec<ChainHead>) -> Self {
        let heads = heads.into_iter().map(|h| ((h.tenant.clone(), h.namespace.clone()), h)).collect();
        Verifier { heads, ..Verifier::default() }
    }

    pub fn rows(&mut self, rows: &[ChangeRow]) {
        for row in rows {
            let head = self.heads.get(&(row.tenant.clone(), row.namespace.clone()));
            if head.is_some_and(|h| row.seq > h.seq) {
                continue; // appended after the heads were read
            }
            self.rows_checked += 1;
            let same_chain =
                self.current.as_ref().is_some_and(|c| c.tenant == row.tenant && c.namespace == row.namespace);
            if !same_chain {
                self.end_chain();
            }
            let (want_seq, want_prev) = match &self.current {
                Some(c) => (c.seq + 1, c.hash),
                None => (1, [0; 32]),
            };
            let fault = |problem: String| Fault {
                tenant: row.tenant.clone(),
                namespace: row.namespace.clone(),
                seq: row.seq,
                problem,
            };
            if row.seq != want_seq {
                self.faults.push(fault(format!("expected entry {want_seq} here: entries are missing or out of order")));
            } else if row.prev_hash != want_prev {
                self.faults.push(fault("it does not follow the entry before it (moved, replaced or removed)".into()));
            }
            if row.digest() != row.hash {
                self.faults.push(fault("its content does not match its hash (altered)".into()));
            } else if row.parsed().is_err() {
                self.faults.push(fault("its changes do not parse".into()));
            }
            self.current = Some(ChainHead {
                tenant: row.tenant.clone(),
                namespace: row.namespace.clone(),
                seq: row.seq,
                hash: row.hash,
            });
        }
    }

    fn end_chain(&mut self) {
        if let Some(c) = self.current.take() {
            self.seen.push(c);
        }
    }

    /// Compares the chains seen with the heads read first; a chain seen
    /// without one must have a head in `heads_now` (read after the rows: it
    /// began meanwhile). Returns the heads, the faults and the rows checked.
    pub fn finish(mut self, heads_now: &[ChainHead]) -> (Vec<ChainHead>, Vec<Fault>, u64) {
        self.end_chain();
        let seen: std::collections::HashMap<(String, String), &ChainHead> =
            self.seen.iter().map(|c| ((c.tenant.clone(), c.namespace.clone()), c)).collect();
        let mut faults = std::mem::take(&mut self.faults);
        let mut heads: Vec<ChainHead> = self.heads.values().cloned().collect();
        heads.sort_by(|a, b| (&a.tenant, &a.namespace).cmp(&(&b.tenant, &b.namespace)));
        for head in &heads {
            let problem = match seen.get(&(head.tenant.clone(), head.namespace.clone())) {
                None => Some(format!("the chain is empty, but its head says {} entries", head.seq)),
                Some(c) if c.seq != head.seq || c.hash != head.hash => Some(format!(
                    "the chain ends at entry {}, but its head says entry {} (entries cut off the end)",
                    c.seq, head.seq
                )),
                Some(_) => None,
            };
            if let Some(problem) = problem {
                faults.push(Fault {
                    tenant: head.tenant.clone(),
                    namespace: head.namespace.clone(),
                    seq: head.seq,
                    problem,
                });
            }
        }
        let now: std::collections::HashSet<(&str, &str)> =
            heads_now.iter().map(|h| (h.tenant.as_str(), h.namespace.as_str())).collect();
        for c in &self.seen {
            let key = (c.tenant.clone(), c.namespace.clone());
            if !self.heads.contains_key(&key) && !now.contains(&(c.tenant.as_str(), c.namespace.as_str())) {
                faults.push(Fault {
                    tenant: c.tenant.clone(),
                    namespace: c.namespace.clone(),
                    seq: c.seq,
                    problem: "the chain has no recorded head".into(),
                });
            }
        }
        (heads, faults, self.rows_checked)
    }
}

/// Serde for JSON text embedded as JSON, byte for byte.
mod raw_json {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::value::RawValue;

    pub fn serialize<S: Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
        RawValue::from_string(text.to_owned()).map_err(serde::ser::Error::custom)?.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(Box::<RawValue>::deserialize(d)?.get().to_owned())
    }
}

/// Serde for 32-byte hashes as 64 lowercase hex digits.
mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(h: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&h.iter().map(|b| format!("{b:02x}")).collect::<String>())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        crate::transfer::unhex(&text).ok_or_else(|| serde::de::Error::custom("a hash is 64 lowercase hex digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64, prev: [u8; 32], changes: &str) -> ChangeRow {
        let mut r = ChangeRow {
            tenant: "t".into(),
            namespace: "a/b".into(),
            seq,
            at: 1_000 + seq,
            actor: Actor { by: Some("key:abc".into()), agent_id: None, request_id: Some(format!("r{seq}")) },
            changes: changes.into(),
            prev_hash: prev,
            hash: [0; 32],
        };
        r.hash = r.digest();
        r
    }

    fn chain(n: i64) -> Vec<ChangeRow> {
        let mut out: Vec<ChangeRow> = Vec::new();
        for seq in 1..=n {
            let prev = out.last().map_or([0; 32], |r| r.hash);
            out.push(row(seq, prev, &format!(r#"[{{"kind":"created","id":"m{seq}"}}]"#)));
        }
        out
    }

    fn check(rows: &[ChangeRow], heads: Vec<ChainHead>) -> Vec<Fault> {
        let mut v = Verifier::new(heads.clone());
        v.rows(rows);
        v.finish(&heads).1
    }

    fn head_of(rows: &[ChangeRow]) -> Vec<ChainHead> {
        let last = rows.last().unwrap();
        vec![ChainHead { tenant: "t".into(), namespace: "a/b".into(), seq: last.seq, hash: last.hash }]
    }

    #[test]
    fn a_whole_chain_verifies_and_each_kind_of_tampering_is_found() {
        let good = chain(5);
        assert_eq!(check(&good, head_of(&good)), vec![]);

        let mut altered = good.clone();
        altered[2].changes = r#"[{"kind":"deleted","id":"m3"}]"#.into();
        let f = check(&altered, head_of(&good));
        assert_eq!((f.len(), f[0].seq), (1, 3), "{f:?}");
        assert!(f[0].problem.contains("altered"));

        let mut removed = good.clone();
        removed.remove(1);
        let f = check(&removed, head_of(&good));
        assert_eq!(f[0].seq, 3, "{f:?}");

        let mut reordered = good.clone();
        reordered.swap(1, 2);
        assert!(!check(&reordered, head_of(&good)).is_empty());

        // Renumbered to hide a removal: the links give it away.
        let mut renumbered = good.clone();
        renumbered.remove(1);
        for (i, r) in renumbered.iter_mut().enumerate() {
            r.seq = i as i64 + 1;
        }
        assert!(!check(&renumbered, head_of(&good)).is_empty());

        let cut = &good[..4];
        let f = check(cut, head_of(&good));
        assert!(f.len() == 1 && f[0].problem.contains("cut off"), "{f:?}");

        // Rows appended after the heads were read are left out, not faults.
        assert_eq!(check(&good, head_of(&good[..3])), vec![]);
        // A chain whose head was deleted is found, unless it began meanwhile.
        let mut v = Verifier::new(vec![]);
        v.rows(&good);
        assert!(v.finish(&[]).1[0].problem.contains("no recorded head"));
        let mut v = Verifier::new(vec![]);
        v.rows(&good);
        assert_eq!(v.finish(&head_of(&good)).1, vec![]);
    }

    #[test]
    fn a_row_exports_its_changes_verbatim_and_reads_back_the_same() {
        let r = chain(1).remove(0);
        let line = serde_json::to_string(&r).unwrap();
        assert!(line.contains(r#""changes":[{"kind":"created","id":"m1"}]"#), "{line}");
        let back: ChangeRow = serde_json::from_str(&line).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.digest(), r.hash, "an exported row verifies on its own");
    }

    #[test]
    fn fields_cannot_trade_bytes() {
        let mut a = row(1, [0; 32], "[]");
        a.actor.by = Some("ab".into());
        a.actor.agent_id = Some("c".into());
        let mut b = a.clone();
        b.actor.by = Some("a".into());
        b.actor.agent_id = Some("bc".into());
        assert_ne!(a.digest(), b.digest());
    }
}
