//! `POST /v1/erase`: erasure with a receipt (see `rules::erase` for what is
//! removed). The caller needs the `write` or `admin` scope, and a caller
//! limited to namespaces erases only within them. After the erasure the
//! store scrubs its files (`Store::scrub`), so the erased text does not
//! linger in them.

use serde::{Deserialize, Serialize};

use super::MemoryService;
use crate::auth::{NamespaceGrant, TenantCtx};
use crate::error::{Error, Result};
use crate::model::session::validate_session_id;
use crate::model::Namespace;
use crate::rules::erase::{self, Erased, Target};
use crate::store::Tx;
use crate::time::Millis;

/// `POST /v1/erase`: exactly one of the two.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct EraseInput {
    /// Everything under this namespace prefix (1–8 segments).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<crate::schema::NamespaceIn>"))]
    pub namespace_prefix: Option<Vec<String>>,
    /// This session: its turns, queued work and the memories distilled from it.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<crate::schema::SessionId>"))]
    pub session_id: Option<String>,
}

/// Where the erasure is recorded in the audit log.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuditEntry {
    /// The tenant's chain (the empty namespace).
    pub namespace: String,
    pub seq: i64,
    /// SHA-256 of the entry, 64 hex digits.
    pub hash: String,
}

/// What an erasure removed, and where it is recorded.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EraseReceipt {
    pub tenant: String,
    /// The target, as asked.
    pub target: serde_json::Value,
    /// Counts by kind.
    pub erased: Erased,
    #[serde(serialize_with = "crate::time::serde_rfc3339::serialize")]
    #[cfg_attr(feature = "schema", schemars(with = "crate::schema::Rfc3339"))]
    pub erased_at: Millis,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    pub audit: Option<AuditEntry>,
    /// Whether the store's files were scrubbed after it (false: nothing was
    /// erased, or the scrub failed and the next erasure tries again; logged).
    pub scrubbed: bool,
}

/// One page of an erasure (see `rules::erase`): what it erased and where
/// the next page starts.
type PageFn<C> = fn(&mut dyn Tx, &str, &Target, Option<&NamespaceGrant>, C) -> Result<(Erased, Option<C>)>;

impl MemoryService {
    /// Runs `page` from `after` until it finds nothing more, one write each.
    async fn erase_pages<C: Clone + Send + 'static>(
        &self,
        ctx: &TenantCtx,
        target: &Target,
        mut after: C,
        page: PageFn<C>,
    ) -> Result<Erased> {
        let mut erased = Erased::default();
        loop {
            let (t, tg, g, a) = (ctx.tenant.clone(), target.clone(), ctx.namespaces.clone(), after.clone());
            let (n, next) = self.store().write(&ctx.actor(), move |tx| page(tx, &t, &tg, g.as_ref(), a)).await?;
            erased.add(n);
            match next {
                Some(n) => after = n,
                None => return Ok(erased),
            }
        }
    }

    /// Erases a namespace prefix or a session of the caller's tenant.
    pub async fn erase(&self, ctx: &TenantCtx, input: EraseInput) -> Result<EraseReceipt> {
        if !(ctx.scopes.write || ctx.scopes.admin) {
            return Err(Error::forbidden("erasing needs the write or admin scope"));
        }
        let target = match (input.namespace_prefix, input.session_id) {
            (Some(p), None) => {
                let prefix = Namespace::new(p, "namespace_prefix")?;
                ctx.require_namespace(&prefix, "namespace_prefix")?;
                Target::Prefix(prefix)
            }
            (None, Some(id)) => {
                validate_session_id(&id)?;
                if ctx.namespaces.is_some() {
                    // Another's session is not there for this caller (as elsewhere).
                    let (t, i) = (ctx.tenant.clone(), id.clone());
                    if let Some(s) = self.store().point(move |r| r.session(&t, &i)).await? {
                        if !ctx.may_touch(&s.namespace) {
                            return Err(Error::not_found(format!("no session with id {id}")));
                        }
                    }
                }
                Target::Session(id)
            }
            _ => return Err(Error::invalid("give exactly one of namespace_prefix and session_id")),
        };
        let (actor, tenant) = (ctx.actor(), ctx.tenant.clone());
        // Sessions first (their turns queue no more work), then queued work,
        // then memories.
        let mut erased = Erased::default();
        erased.add(
            self.erase_pages(ctx, &target, None, |tx, t, tg, g, a: Option<(String, String)>| {
                erase::sessions_page(tx, t, tg, g, a).map(|(n, next)| (n, next.map(Some)))
            })
            .await?,
        );
        erased.add(self.erase_pages(ctx, &target, 0, erase::jobs_page).await?);
        erased.add(self.erase_pages(ctx, &target, 0, erase::memories_page).await?);
        let (t, tg) = (tenant.clone(), target.clone());
        let seq = self
            .store()
            .write(&actor, move |tx| {
                let seq = tx.change_head(&t, "")?.map_or(1, |(seq, _)| seq + 1);
                erase::record_receipt(tx, &t, &tg, &erased);
                Ok(seq)
            })
            .await?;
        let anything = erased != Erased::default();
        let scrubbed = anything && {
            // One rewrite at a time in this process.
            let _one = self.inner.scrubbing.lock().await;
            match self.store().scrub().await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "scrubbing after an erasure failed; the next erasure tries again");
                    false
                }
            }
        };
        let t = tenant.clone();
        let entry = self
            .store()
            .read(move |r| r.change_rows(Some(&t), Some(&(t.clone(), String::new(), seq - 1)), 1))
            .await?
            .into_iter()
            .find(|row| row.namespace.is_empty() && row.seq == seq)
            .map(|row| AuditEntry {
                namespace: row.namespace,
                seq: row.seq,
                hash: row.hash.iter().map(|b| format!("{b:02x}")).collect(),
            });
        Ok(EraseReceipt {
            tenant,
            target: target.describe(),
            erased,
            erased_at: self.now(),
            request_id: actor.request_id,
            audit: entry,
            scrubbed,
        })
    }
}
