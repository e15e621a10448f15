//! Reading the change journal (`crate::audit`): verifying its hash chains
//! and paging through it for export. The operator's tools (`engram audit
//! verify|export`) call these.

use super::MemoryService;
use crate::audit::{ChainHead, ChangeRow, Fault, Verifier};
use crate::auth::validate_tenant;
use crate::error::Result;

/// Rows read at a time.
pub const JOURNAL_PAGE: usize = 1_000;

/// What `verify_journal` found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JournalReport {
    pub rows_checked: u64,
    /// Every chain's recorded head: keep them elsewhere to pin the journal.
    pub heads: Vec<ChainHead>,
    /// Empty when every chain is whole.
    pub faults: Vec<Fault>,
}

impl MemoryService {
    /// Up to `limit` journal rows (of `tenant`, or all) after `after` =
    /// `(tenant, namespace, seq)`, in chain order.
    pub async fn journal_page(
        &self,
        tenant: Option<&str>,
        after: Option<(String, String, i64)>,
        limit: usize,
    ) -> Result<Vec<ChangeRow>> {
        if let Some(t) = tenant {
            validate_tenant(t)?;
        }
        let tenant = tenant.map(str::to_owned);
        self.store().read(move |r| r.change_rows(tenant.as_deref(), after.as_ref(), limit)).await
    }

    /// Checks every chain (of `tenant`, or all) row by row and against its
    /// recorded head (see `audit::Verifier`).
    pub async fn verify_journal(&self, tenant: Option<&str>) -> Result<JournalReport> {
        let heads = |t: Option<String>| self.store().read(move |r| r.change_heads(t.as_deref()));
        // Heads first: rows appended while this reads are left out.
        let mut v = Verifier::new(heads(tenant.map(str::to_owned)).await?);
        let mut after = None;
        loop {
            let rows = self.journal_page(tenant, after.clone(), JOURNAL_PAGE).await?;
            v.rows(&rows);
            match rows.last() {
                Some(last) if rows.len() == JOURNAL_PAGE => {
                    after = Some((last.tenant.clone(), last.namespace.clone(), last.seq))
                }
                _ => break,
            }
        }
        let now = heads(tenant.map(str::to_owned)).await?;
        let (heads, faults, rows_checked) = v.finish(&now);
        Ok(JournalReport { rows_checked, heads, faults })
    }
}
