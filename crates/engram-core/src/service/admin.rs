//! Operations of the operator rather than of a tenant's agents: API keys,
//! re-embedding after a model change, readiness, and the store's lifecycle.
//! The CLI, `/readyz` and the jobs reach storage only through these.

use super::MemoryService;
use crate::auth::{generate_key, validate_tenant, KeyInfo, Scopes};
use crate::error::Result;
use crate::store::{KeyRow, StoreEvent};

impl MemoryService {
    /// Creates an API key for `tenant`; returns it as listed and its secret
    /// (shown once: only its hash is stored).
    pub async fn create_key(&self, tenant: &str, name: &str, scopes: Scopes) -> Result<(KeyInfo, String)> {
        validate_tenant(tenant)?;
        let key = generate_key()?;
        let row = KeyRow {
            id: key.id,
            tenant: tenant.to_owned(),
            name: name.to_owned(),
            hash: key.hash,
            scopes,
            created_at: self.now(),
            revoked_at: None,
        };
        let stored = row.clone();
        self.store()
            .write(move |tx| {
                tx.insert_key(&stored)?;
                tx.announce(StoreEvent::KeysChanged)
            })
            .await?;
        // This node at once; the others when they hear the event.
        self.inner.auth.forget();
        Ok((row.into(), key.secret))
    }

    /// Keys of one tenant, or of all (revoked ones included; never secrets).
    pub async fn list_keys(&self, tenant: Option<&str>) -> Result<Vec<KeyInfo>> {
        let tenant = tenant.map(str::to_owned);
        let rows = self.store().read(move |r| r.keys(tenant.as_deref())).await?;
        Ok(rows.into_iter().map(KeyInfo::from).collect())
    }

    /// Revokes a key; false when no unrevoked key has that id. Every server
    /// sharing the store stops accepting it as soon as it hears of it, and
    /// within the auth cache's lifetime at the latest.
    pub async fn revoke_key(&self, id: &str) -> Result<bool> {
        let (id, now) = (id.to_owned(), self.now());
        self.store()
            .write(move |tx| {
                let revoked = tx.revoke_key(&id, now)?;
                if revoked {
                    tx.announce(StoreEvent::KeysChanged)?;
                }
                Ok(revoked)
            })
            .await
            .inspect(|_| self.inner.auth.forget())
    }

    /// Every tenant with memories.
    pub async fn tenants(&self) -> Result<Vec<String>> {
        self.store().read(|r| r.tenants()).await
    }

    /// Drops a tenant's vectors and model record and queues its memories for
    /// embedding again (after a model change); returns how many were queued.
    pub async fn reembed(&self, tenant: &str) -> Result<usize> {
        validate_tenant(tenant)?;
        let t = tenant.to_owned();
        let n = self
            .store()
            .write(move |tx| {
                tx.forget_tenant_model(&t)?;
                let n = tx.requeue_tenant(&t)?;
                tx.announce(StoreEvent::TenantModelChanged { tenant: t.clone() })?;
                Ok(n)
            })
            .await?;
        // This node at once; the others when they hear the event.
        self.inner.model_checked.remove(tenant);
        self.notify_queued();
        Ok(n)
    }

    /// The right to run the singleton job `job` on this node (see
    /// `store::Leadership`).
    pub fn leadership(&self, job: &str) -> crate::store::Leadership {
        self.store().leadership(job)
    }

    /// Whether the store answers (for readiness).
    pub async fn ping(&self) -> Result<()> {
        self.store().ping().await
    }

    /// Saves derived indexes so a restart is quick.
    pub async fn save_indexes(&self) -> Result<()> {
        self.store().save_indexes().await
    }

    /// Grows with every vector stored (see `Store::index_watermark`).
    pub async fn index_watermark(&self) -> Result<i64> {
        self.store().index_watermark().await
    }

    /// Finishes queued writes and closes the store; later calls fail with `unavailable`.
    pub async fn close(&self) {
        self.store().close().await
    }
}
