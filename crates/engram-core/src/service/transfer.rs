//! Export and import (`crate::transfer` has the format; `rules::import`
//! what an import does): an [`Export`] yields a store's records a page at a
//! time, each page read on one snapshot; an [`Import`] validates records and
//! writes them in batches, one transaction each. `engram export`, `import`
//! and `migrate` drive these.
//!
//! An export of a store in use is consistent page by page, not as a whole:
//! to copy a store exactly, stop its writers (migrate's final comparison of
//! counts and checksums says whether anything changed meanwhile).

use super::MemoryService;
use crate::audit::Actor;
use crate::auth::validate_tenant;
use crate::error::{Error, Result};
use crate::rules::import::{self, ImportReport, ImportState, Prepared};
use crate::transfer::{
    Digest, Header, JobRecord, KeyRecord, MemoryRecord, MergeRecord, ModelRecord, Record, SessionRecord, StreamCheck,
};

/// What an import may write.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Only this tenant's records: an export of every tenant gives its
    /// records of this tenant (the others are counted and left out); an
    /// export of another tenant is refused. An export of one tenant is held
    /// to its header's tenant in any case (a record of another is an error).
    pub tenant: Option<String>,
    /// Accept an export of every tenant without naming one: a file's
    /// records then go to whichever tenants they name.
    pub all_tenants: bool,
    /// Import key records (credentials); otherwise they are counted and
    /// left out.
    pub keys: bool,
}

/// Memories (with their vectors) read per page.
pub const EXPORT_PAGE: usize = 500;
/// Records written per import transaction.
pub const IMPORT_BATCH: usize = 500;

/// Where an export is.
#[derive(Debug, Clone)]
enum Phase {
    Header,
    Models,
    Keys,
    Memories(i64),
    Merges,
    Sessions(Option<(String, String)>),
    Jobs(i64),
    End,
    Done,
}

/// A store's records, one page at a time ([`MemoryService::export`]).
pub struct Export {
    service: MemoryService,
    tenant: Option<String>,
    phase: Phase,
    digest: Digest,
}

impl MemoryService {
    /// Exports `tenant`'s records, or every tenant's.
    pub fn export(&self, tenant: Option<&str>) -> Result<Export> {
        if let Some(t) = tenant {
            validate_tenant(t)?;
        }
        Ok(Export {
            service: self.clone(),
            tenant: tenant.map(str::to_owned),
            phase: Phase::Header,
            digest: Digest::default(),
        })
    }

    /// Starts an import into this store.
    pub fn import(&self, opts: ImportOptions) -> Result<Import> {
        if let Some(t) = &opts.tenant {
            validate_tenant(t)?;
        }
        Ok(Import {
            service: self.clone(),
            tenant: opts.tenant,
            all_tenants: opts.all_tenants,
            others_left_out: None,
            state: Some(ImportState::new(opts.keys)),
            check: StreamCheck::default(),
            batch: Vec::new(),
        })
    }
}

impl Export {
    /// The next page of records; `None` after the end record.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Record>>> {
        loop {
            let page = self.read_phase().await?;
            if matches!(self.phase, Phase::Done) && page.is_empty() {
                return Ok(None);
            }
            if !page.is_empty() {
                page.iter().for_each(|r| self.digest.add(r));
                return Ok(Some(page));
            }
        }
    }

    /// Counts and checksum of what was exported so far.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Reads the current phase's next page, moving on when it is exhausted.
    async fn read_phase(&mut self) -> Result<Vec<Record>> {
        let store = self.service.store();
        let tenant = self.tenant.clone();
        let (page, next) = match self.phase.clone() {
            Phase::Header => (vec![Record::Header(Header::new(tenant, self.service.now()))], Phase::Models),
            Phase::Models => {
                let rows = store.read(move |r| r.tenant_models(tenant.as_deref())).await?;
                let page = rows
                    .into_iter()
                    .map(|(tenant, m, recorded_at)| {
                        Record::TenantModel(ModelRecord { tenant, model: m.model, dims: m.dims, recorded_at })
                    })
                    .collect();
                (page, Phase::Keys)
            }
            Phase::Keys => {
                let rows = store.read(move |r| r.keys(tenant.as_deref())).await?;
                (rows.iter().map(|k| Record::Key(KeyRecord::from(k))).collect(), Phase::Memories(0))
            }
            Phase::Memories(after) => {
                let (page, last) = store
                    .read(move |r| {
                        let rows = r.memories_after(tenant.as_deref(), after, EXPORT_PAGE)?;
                        let seqs: Vec<i64> = rows.iter().map(|s| s.seq).collect();
                        let mut vectors: std::collections::HashMap<i64, Vec<f32>> =
                            r.vectors_of(&seqs)?.into_iter().collect();
                        let last = seqs.last().copied();
                        let page = rows
                            .iter()
                            .map(|s| Record::Memory(Box::new(MemoryRecord::new(s, vectors.remove(&s.seq)))))
                            .collect::<Vec<_>>();
                        Ok((page, last))
                    })
                    .await?;
                let next = match last {
                    Some(seq) if page.len() == EXPORT_PAGE => Phase::Memories(seq),
                    _ => Phase::Merges,
                };
                (page, next)
            }
            Phase::Merges => {
                let rows = store.read(move |r| r.merges(tenant.as_deref())).await?;
                let page = rows
                    .into_iter()
                    .map(|(tenant, id, survivor, merged_at)| {
                        Record::Merge(MergeRecord { tenant, id, survivor, merged_at })
                    })
                    .collect();
                (page, Phase::Sessions(None))
            }
            Phase::Sessions(after) => {
                const SESSIONS: usize = 100;
                let page = store
                    .read(move |r| {
                        let rows = r.sessions_after(tenant.as_deref(), after, SESSIONS)?;
                        let mut page = Vec::with_capacity(rows.len());
                        for s in rows {
                            let turns = r.turns(&s.tenant, &s.id, 1, s.turn_count)?;
                            page.push(SessionRecord::new(&s, turns));
                        }
                        Ok(page)
                    })
                    .await?;
                let next = match page.last() {
                    Some(s) if page.len() == SESSIONS => Phase::Sessions(Some((s.tenant.clone(), s.id.clone()))),
                    _ => Phase::Jobs(0),
                };
                (page.into_iter().map(Record::Session).collect(), next)
            }
            Phase::Jobs(after) => {
                const JOBS: usize = 1000;
                let rows = store.read(move |r| r.jobs_after(tenant.as_deref(), after, JOBS)).await?;
                let next = match rows.last() {
                    Some(j) if rows.len() == JOBS => Phase::Jobs(j.id),
                    _ => Phase::End,
                };
                (rows.iter().map(|j| Record::Job(JobRecord::from(j))).collect(), next)
            }
            Phase::End => (vec![Record::End(self.digest.end())], Phase::Done),
            Phase::Done => (Vec::new(), Phase::Done),
        };
        self.phase = next;
        Ok(page)
    }
}

/// An import in progress ([`MemoryService::import`]).
pub struct Import {
    service: MemoryService,
    /// The one tenant records may belong to, if any.
    tenant: Option<String>,
    all_tenants: bool,
    /// Records of other tenants are left out (an export of every tenant,
    /// imported for one) rather than refused.
    others_left_out: Option<u64>,
    /// `None` once a batch failed: the import cannot go on.
    state: Option<ImportState>,
    check: StreamCheck,
    batch: Vec<Prepared>,
}

impl Import {
    /// Validates and takes one record (the `line`th of the input, for
    /// messages); writes a batch when one is full. The first record must be
    /// a header, and nothing may follow the end record.
    pub async fn add(&mut self, record: Record, line: u64) -> Result<()> {
        if !self.check.add(&record, line)? {
            if let Record::Header(h) = &record {
                self.take_header(h, line)?;
            }
            return if self.check.ended() { self.flush().await } else { Ok(()) };
        }
        if let (Some(want), Some(has)) = (&self.tenant, record.tenant()) {
            if want != has {
                if let Some(n) = &mut self.others_left_out {
                    *n += 1;
                    return Ok(());
                }
                return Err(Error::invalid(format!(
                    "line {line}: a record of tenant {has:?} in an export of tenant {want:?}"
                )));
            }
        }
        let at = |e: Error| Error::invalid(format!("line {line}: {}", e.public_message()));
        if let Some(p) = Prepared::from_record(&record).map_err(at)? {
            self.batch.push(p);
        }
        if self.batch.len() >= IMPORT_BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    /// Which tenants the records may be of, by the header and the options.
    fn take_header(&mut self, h: &Header, line: u64) -> Result<()> {
        match (&self.tenant, &h.tenant) {
            (Some(want), Some(has)) if want != has => {
                Err(Error::invalid(format!("line {line}: this is an export of tenant {has:?}, not of {want:?}")))
            }
            (None, Some(has)) => {
                self.tenant = Some(has.clone());
                Ok(())
            }
            (Some(_), None) => {
                self.others_left_out = Some(0);
                Ok(())
            }
            (None, None) if !self.all_tenants => Err(Error::invalid(format!(
                "line {line}: an export of every tenant writes into every tenant it names: \
                 import it with --all-tenants, or one tenant's records with --tenant NAME"
            ))),
            _ => Ok(()),
        }
    }

    /// Writes what is pending and checks the input was whole (see
    /// [`StreamCheck::finish`]); returns the report and the digest of what
    /// was read.
    pub async fn finish(mut self) -> Result<(ImportReport, Digest)> {
        self.flush().await?;
        let mut state = self.state.take().ok_or_else(|| Error::internal("the import failed earlier"))?;
        if let Some(n) = self.others_left_out.filter(|n| *n > 0) {
            state.report.skipped.insert("other tenants' records".into(), n);
        }
        let digest = self.check.finish().map_err(|e| {
            Error::invalid(format!(
                "{}. What was read is imported; importing the whole export again is safe",
                e.public_message()
            ))
        })?;
        Ok((state.report, digest.clone()))
    }

    async fn flush(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let mut state = self.state.take().ok_or_else(|| Error::internal("the import failed earlier"))?;
        let batch = std::mem::take(&mut self.batch);
        let now = self.service.now();
        let queued_before = state.report.queued_for_embedding;
        let state = self
            .service
            .store()
            .write(&Actor { by: Some("import".into()), ..Actor::default() }, move |tx| {
                import::apply(tx, &mut state, batch, now)?;
                Ok(state)
            })
            .await?;
        if state.report.queued_for_embedding > queued_before {
            self.service.notify_queued();
        }
        self.state = Some(state);
        Ok(())
    }
}
