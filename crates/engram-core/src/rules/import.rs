//! What an import does with each exported record, inside the batch's
//! transaction. Importing is idempotent: a record already present (the same
//! memory at the same or a newer version, the same session with as many
//! turns, the same key) is skipped, so an interrupted import can simply be
//! run again, into an empty store or one in use.
//!
//! - A memory keeps its id, versions, times and salience; it is not merged
//!   with near-duplicates (the exporting store already decided that). Its
//!   vector is kept when the tenant's vectors here come from the same model
//!   as the export's (and has its dimension); otherwise, or when it had
//!   none, it is queued for embedding. A memory whose key a different live
//!   memory holds here, or a newer version of one that names another
//!   namespace or key, is a conflict: reported, not written.
//! - A session gains the turns it lacks, in order; one that began at another
//!   time (an id used again) or whose turns here do not continue into the
//!   export's is a conflict.
//! - Queued jobs come with their session: a session written by this import
//!   has its queued jobs replaced by the export's; others' are left alone.
//! - Keys only when asked ([`ImportState::keys`]: they are credentials): a
//!   key is added unless its id or its secret's hash is known here, in any
//!   tenant; a revocation in the export is applied here.
//!
//! Re-importing an export restores what was deleted since the first import:
//! an import adds and updates, it never deletes.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use super::liveness::memory_live;
use crate::audit::{self, Change, ChangeKind};
use crate::error::Result;
use crate::model::session::Turn;
use crate::store::{JobRow, KeyRow, SessionRow, StoreEvent, Stored, TenantModel, Tx};
use crate::time::Millis;
use crate::transfer::{MergeRecord, Record};

/// Conflicts listed in a report; more are only counted.
const MAX_LISTED_CONFLICTS: usize = 100;

/// A record validated and ready for the transaction.
#[derive(Debug, Clone)]
pub enum Prepared {
    Model { tenant: String, model: TenantModel, recorded_at: Millis },
    Key(KeyRow),
    Memory(Box<Stored>, Option<Vec<f32>>),
    Merge(MergeRecord),
    Session(SessionRow, Vec<Turn>),
    Job(JobRow),
}

impl Prepared {
    /// Validates a record as the API validates input; `None` for a header or end.
    pub fn from_record(r: &Record) -> Result<Option<Prepared>> {
        Ok(Some(match r {
            Record::Header(_) | Record::End(_) => return Ok(None),
            Record::TenantModel(m) => {
                m.validate()?;
                Prepared::Model { tenant: m.tenant.clone(), model: m.model(), recorded_at: m.recorded_at }
            }
            Record::Key(k) => Prepared::Key(k.to_row()?),
            Record::Memory(m) => {
                let (stored, vector) = m.to_stored()?;
                Prepared::Memory(Box::new(stored), vector)
            }
            Record::Merge(m) => {
                m.validate()?;
                Prepared::Merge(m.clone())
            }
            Record::Session(s) => {
                let (row, turns) = s.to_rows()?;
                Prepared::Session(row, turns)
            }
            Record::Job(j) => Prepared::Job(j.to_row()?),
        }))
    }
}

/// What an import did, by record kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImportReport {
    /// Records written (new, or newer than what was here).
    pub imported: BTreeMap<String, u64>,
    /// Records already here (at the same or a newer version).
    pub skipped: BTreeMap<String, u64>,
    /// Records not written because something else holds their place.
    pub conflicts: u64,
    /// The first conflicts, described.
    pub conflict_examples: Vec<String>,
    /// Memories queued for embedding (no vector, or another model here).
    pub queued_for_embedding: u64,
    /// Keys added, as `id (tenant, scopes)`: new credentials, for the
    /// operator to see.
    pub keys_added: Vec<String>,
    /// Key records left out (keys were not asked for).
    pub keys_left_out: u64,
}

impl ImportReport {
    fn imported(&mut self, kind: &str) {
        *self.imported.entry(kind.to_owned()).or_default() += 1;
    }
    fn skipped(&mut self, kind: &str) {
        *self.skipped.entry(kind.to_owned()).or_default() += 1;
    }
    fn conflict(&mut self, what: String) {
        self.conflicts += 1;
        if self.conflict_examples.len() < MAX_LISTED_CONFLICTS {
            self.conflict_examples.push(what);
        }
    }
}

/// What an import remembers between its transactions.
#[derive(Debug, Default)]
pub struct ImportState {
    /// Whether key records are imported (they are credentials).
    pub keys: bool,
    /// Sessions written by this import: `(tenant, id)`; their jobs come too.
    sessions_written: HashSet<(String, String)>,
    /// The export's model records, by tenant.
    exported_models: HashMap<String, TenantModel>,
    /// This store's model records as last seen, by tenant.
    here_models: HashMap<String, Option<TenantModel>>,
    /// Subjects whose jobs were replaced: `(tenant, kind, subject)`.
    replaced_jobs: HashSet<(String, String, String)>,
    pub report: ImportReport,
}

impl ImportState {
    /// A fresh import; `keys`: whether key records are imported.
    pub fn new(keys: bool) -> Self {
        ImportState { keys, ..ImportState::default() }
    }
}

/// Applies one batch (see the module docs).
pub fn apply(tx: &mut dyn Tx, st: &mut ImportState, batch: Vec<Prepared>, now: Millis) -> Result<()> {
    for p in batch {
        match p {
            Prepared::Model { tenant, model, recorded_at } => import_model(tx, st, tenant, model, recorded_at)?,
            Prepared::Key(k) => import_key(tx, st, k, now)?,
            Prepared::Memory(s, v) => import_memory(tx, st, *s, v, now)?,
            Prepared::Merge(m) => import_merge(tx, st, m)?,
            Prepared::Session(row, turns) => import_session(tx, st, row, turns)?,
            Prepared::Job(j) => import_job(tx, st, j)?,
        }
    }
    Ok(())
}

fn import_model(
    tx: &mut dyn Tx,
    st: &mut ImportState,
    tenant: String,
    model: TenantModel,
    recorded_at: Millis,
) -> Result<()> {
    st.exported_models.insert(tenant.clone(), model.clone());
    match tx.tenant_model(&tenant)? {
        None => {
            tx.record_tenant_model(&tenant, &model, recorded_at)?;
            tx.announce(StoreEvent::TenantModelChanged { tenant: tenant.clone() })?;
            st.report.imported("tenant_model");
            st.here_models.insert(tenant, Some(model));
        }
        Some(here) if here == model => {
            st.report.skipped("tenant_model");
            st.here_models.insert(tenant, Some(here));
        }
        Some(here) => {
            st.report.conflict(format!(
                "tenant {tenant}: vectors here come from {} ({} dims), the export's from {} ({} dims); \
                 its memories are queued for embedding",
                here.model, here.dims, model.model, model.dims
            ));
            st.here_models.insert(tenant, Some(here));
        }
    }
    Ok(())
}

fn import_key(tx: &mut dyn Tx, st: &mut ImportState, mut k: KeyRow, now: Millis) -> Result<()> {
    if !st.keys {
        st.report.keys_left_out += 1;
        return Ok(());
    }
    // Ids and hashes are unique across tenants (revocation goes by id):
    // every key, revoked ones too.
    let here = tx.keys(None)?.into_iter().find(|h| h.id == k.id || h.hash == k.hash);
    match here {
        None => {
            k.revoked_at = k.revoked_at.map(|at| at.min(now));
            tx.insert_key(&k)?;
            tx.announce(StoreEvent::KeysChanged)?;
            st.report.imported("key");
            st.report.keys_added.push(format!("{} ({}, {})", k.id, k.tenant, k.scopes.to_list()));
        }
        Some(here) if here.id != k.id || here.tenant != k.tenant || here.hash != k.hash => {
            st.report.conflict(format!("key {}: its id or secret is another key's here ({})", k.id, here.id));
        }
        Some(here) => match (k.revoked_at, here.revoked_at) {
            (Some(at), None) => {
                tx.revoke_key(Some(&k.tenant), &k.id, at.min(now))?;
                tx.announce(StoreEvent::KeysChanged)?;
                st.report.imported("key");
            }
            _ => st.report.skipped("key"),
        },
    }
    Ok(())
}

/// Whether a vector of `dims` of `tenant`'s export is of the model (and
/// size) this store's vectors of that tenant are.
fn same_model(tx: &mut dyn Tx, st: &mut ImportState, tenant: &str, dims: usize) -> Result<bool> {
    let Some(exported) = st.exported_models.get(tenant) else { return Ok(false) };
    if !st.here_models.contains_key(tenant) {
        let here = tx.tenant_model(tenant)?;
        st.here_models.insert(tenant.to_owned(), here);
    }
    Ok(exported.dims == dims && st.here_models.get(tenant).and_then(Option::as_ref) == Some(exported))
}

fn import_memory(
    tx: &mut dyn Tx,
    st: &mut ImportState,
    mut s: Stored,
    vector: Option<Vec<f32>>,
    now: Millis,
) -> Result<()> {
    let (tenant, id) = (s.tenant.clone(), s.memory.id.clone());
    match tx.memory_by_id(&tenant, &id)? {
        Some(here) if here.memory.version >= s.memory.version => {
            st.report.skipped("memory");
            return Ok(());
        }
        Some(here) if here.memory.namespace != s.memory.namespace || here.memory.key != s.memory.key => {
            st.report.conflict(format!(
                "memory {id}: here it is in {} with key {:?}, the export's newer version in {} with key {:?}",
                here.memory.namespace.joined(),
                here.memory.key,
                s.memory.namespace.joined(),
                s.memory.key
            ));
            return Ok(());
        }
        Some(here) => {
            s.seq = here.seq;
            tx.update_memory(&s)?;
            tx.drop_vector(s.seq)?;
            audit::record(tx, &tenant, &s.memory.namespace.joined(), Change::memory(ChangeKind::Updated, &s.memory));
        }
        None => {
            if tx.merged_into(&tenant, &id)?.is_some() {
                st.report.skipped("memory");
                return Ok(());
            }
            if let Some(key) = &s.memory.key {
                if let Some(holder) = tx.memory_by_key(&tenant, &s.memory.namespace, key)? {
                    if memory_live(&holder.memory, now) {
                        st.report.conflict(format!(
                            "memory {id}: key {key:?} in {} is held here by memory {}",
                            s.memory.namespace.joined(),
                            holder.memory.id
                        ));
                        return Ok(());
                    }
                    super::write::remove(tx, &holder, ChangeKind::Expired)?;
                }
            }
            s.seq = tx.insert_memory(&s)?;
            audit::record(tx, &tenant, &s.memory.namespace.joined(), Change::memory(ChangeKind::Created, &s.memory));
        }
    }
    st.report.imported("memory");
    if s.memory.text.is_empty() {
        return Ok(());
    }
    match vector {
        Some(v) if same_model(tx, st, &tenant, v.len())? => tx.put_vector(s.seq, &v),
        _ => {
            st.report.queued_for_embedding += 1;
            tx.queue_embedding(s.seq, s.memory.version)
        }
    }
}

fn import_merge(tx: &mut dyn Tx, st: &mut ImportState, m: MergeRecord) -> Result<()> {
    if tx.merged_into(&m.tenant, &m.id)?.is_some() {
        st.report.skipped("merge");
    } else if tx.memory_by_id(&m.tenant, &m.id)?.is_some() {
        st.report.conflict(format!("merge {}: a memory with that id is here", m.id));
    } else {
        tx.record_merge(&m.tenant, &m.id, &m.survivor, m.merged_at)?;
        st.report.imported("merge");
    }
    Ok(())
}

fn import_session(tx: &mut dyn Tx, st: &mut ImportState, row: SessionRow, turns: Vec<Turn>) -> Result<()> {
    let here = tx.session(&row.tenant, &row.id)?;
    let first = row.turn_count - turns.len() as i64 + 1;
    let have = match &here {
        None => 0,
        Some(h) if h.created_at == row.created_at && h.turn_count >= row.turn_count => {
            st.report.skipped("session");
            return Ok(());
        }
        Some(h) if h.created_at != row.created_at || h.namespace != row.namespace || first > h.turn_count + 1 => {
            st.report.conflict(format!(
                "session {}: the one here (begun at {}, {} turns in {}) is not the export's or does not continue into it",
                row.id,
                h.created_at,
                h.turn_count,
                h.namespace.joined()
            ));
            return Ok(());
        }
        Some(h) => h.turn_count,
    };
    let missing: Vec<Turn> = turns.into_iter().filter(|t| t.index > have).collect();
    tx.put_session(&row)?;
    tx.insert_turns(&row.tenant, &row.id, &missing)?;
    st.sessions_written.insert((row.tenant.clone(), row.id.clone()));
    st.report.imported("session");
    Ok(())
}

fn import_job(tx: &mut dyn Tx, st: &mut ImportState, j: JobRow) -> Result<()> {
    let session = super::sessions::job_session(&j).map(|id| (j.tenant.clone(), id.to_owned()));
    if !session.is_some_and(|s| st.sessions_written.contains(&s)) {
        // Its session here is as new as the export's, or newer: its own
        // queued work stands.
        st.report.skipped("job");
        return Ok(());
    }
    let subject = (j.tenant.clone(), j.kind.clone(), j.subject.clone());
    if !st.replaced_jobs.contains(&subject) {
        tx.delete_jobs_of(&j.tenant, &j.kind, &j.subject)?;
        st.replaced_jobs.insert(subject);
    }
    tx.insert_job(&j)?;
    st.report.imported("job");
    Ok(())
}
