//! Operations of the operator rather than of a tenant's agents: API keys,
//! re-embedding after a model change, readiness, and the store's lifecycle.
//! The CLI, `/readyz` and the jobs reach storage only through these.

use super::MemoryService;
use crate::audit::{self, Actor, Change, ChangeKind};
use crate::auth::{generate_key, validate_tenant, KeyInfo, NamespaceGrant, Scope, Scopes, TenantCtx};
use crate::error::{Error, Result};
use crate::store::{KeyRow, StoreEvent, Tx};

/// Longest key name, in characters.
pub const MAX_KEY_NAME: usize = 128;

/// Checks a key's name: 1–[`MAX_KEY_NAME`] characters, no control characters.
fn validate_key_name(name: &str) -> Result<()> {
    let n = name.chars().count();
    if n == 0 || n > MAX_KEY_NAME || name.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "name must be 1-{MAX_KEY_NAME} characters without control characters, got {n} characters"
        )));
    }
    Ok(())
}

/// Journals a key's creation or revocation in its tenant's chain (never its
/// secret or hash).
fn record_key(tx: &mut dyn Tx, kind: ChangeKind, k: &KeyRow) {
    let mut detail = serde_json::json!({ "name": k.name, "scopes": k.scopes.to_list() });
    if let Some(g) = &k.namespaces {
        detail["namespaces"] = g.to_list().into();
    }
    audit::record(tx, &k.tenant, "", Change { detail: Some(detail), ..Change::new(kind, &k.id) });
}

/// Whether admin `ctx` manages key `k`: its tenant's, and within its
/// namespaces when it is limited to some.
fn manages(ctx: &TenantCtx, k: &KeyRow) -> bool {
    k.tenant == ctx.tenant && ctx.namespaces.as_ref().is_none_or(|mine| mine.includes(k.namespaces.as_ref()))
}

impl MemoryService {
    /// Creates an API key for `tenant`, limited to `namespaces` when given;
    /// returns it as listed and its secret (shown once: only its hash is stored).
    pub async fn create_key(
        &self,
        tenant: &str,
        name: &str,
        scopes: Scopes,
        namespaces: Option<NamespaceGrant>,
    ) -> Result<(KeyInfo, String)> {
        self.make_key(&Actor::cli(), tenant, name, scopes, namespaces).await
    }

    async fn make_key(
        &self,
        actor: &Actor,
        tenant: &str,
        name: &str,
        scopes: Scopes,
        namespaces: Option<NamespaceGrant>,
    ) -> Result<(KeyInfo, String)> {
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
            namespaces,
        };
        let stored = row.clone();
        self.store()
            .write(actor, move |tx| {
                tx.insert_key(&stored)?;
                record_key(tx, ChangeKind::KeyCreated, &stored);
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
            .write(&Actor::cli(), move |tx| {
                let key = tx.keys(None)?.into_iter().find(|k| k.id == id && k.revoked_at.is_none());
                let revoked = tx.revoke_key(None, &id, now)?;
                if let Some(k) = key.filter(|_| revoked) {
                    record_key(tx, ChangeKind::KeyRevoked, &k);
                    tx.announce(StoreEvent::KeysChanged)?;
                }
                Ok(revoked)
            })
            .await
            .inspect(|_| self.inner.auth.forget())
    }

    /// `POST /v1/admin/keys`: a new key of the caller's own tenant (an admin
    /// manages its tenant's keys, never another's), limited to `namespaces`
    /// when given. An admin limited to namespaces makes keys within its own
    /// (by default, its own): a key never grants more than its maker holds.
    /// Returns the key as listed and its secret, shown this once.
    pub async fn admin_create_key(
        &self,
        ctx: &TenantCtx,
        name: &str,
        scopes: &[String],
        namespaces: Option<&[String]>,
    ) -> Result<(KeyInfo, String)> {
        ctx.require(Scope::Admin)?;
        validate_key_name(name)?;
        if scopes.is_empty() || scopes.len() > 3 {
            return Err(Error::invalid("scopes must list 1-3 of read, write, admin"));
        }
        // Each item exactly one scope (no lists, blanks or padding inside one).
        if let Some(bad) = scopes.iter().find(|s| Scope::parse(s).map_or(true, |p| p.as_str() != s.as_str())) {
            return Err(Error::invalid(format!("unknown scope {bad:?}; scopes are read, write, admin")));
        }
        let scopes = Scopes::parse_list(&scopes.join(","))?;
        let grant = match namespaces {
            Some(list) => Some(NamespaceGrant::from_joined(list)?),
            None => ctx.namespaces.clone(),
        };
        if let Some(mine) = &ctx.namespaces {
            if !mine.includes(grant.as_ref()) {
                return Err(Error::forbidden(format!(
                    "a key limited to namespaces ({}) can only make keys within them",
                    mine.to_list()
                )));
            }
        }
        self.make_key(&ctx.actor(), &ctx.tenant, name, scopes, grant).await
    }

    /// `GET /v1/admin/keys`: the caller's tenant's keys, revoked ones
    /// included (never secrets or hashes); to an admin limited to
    /// namespaces, the keys within its own.
    pub async fn admin_list_keys(&self, ctx: &TenantCtx) -> Result<Vec<KeyInfo>> {
        ctx.require(Scope::Admin)?;
        let tenant = ctx.tenant.clone();
        let rows = self.store().read(move |r| r.keys(Some(&tenant))).await?;
        Ok(rows.into_iter().filter(|k| manages(ctx, k)).map(KeyInfo::from).collect())
    }

    /// `DELETE /v1/admin/keys/{id}`: revokes a key of the caller's tenant
    /// (within its namespaces, for a limited admin); `not_found` for an
    /// unknown, already revoked or other tenant's key.
    pub async fn admin_revoke_key(&self, ctx: &TenantCtx, id: &str) -> Result<()> {
        ctx.require(Scope::Admin)?;
        let (tenant, id_, now, caller) = (ctx.tenant.clone(), id.to_owned(), self.now(), ctx.clone());
        let revoked = self
            .store()
            .write(&ctx.actor(), move |tx| {
                let ours = tx
                    .keys(Some(&tenant))?
                    .into_iter()
                    .find(|k| k.id == id_ && k.revoked_at.is_none() && manages(&caller, k));
                let Some(key) = ours else {
                    return Ok(false);
                };
                let revoked = tx.revoke_key(Some(&tenant), &id_, now)?;
                if revoked {
                    record_key(tx, ChangeKind::KeyRevoked, &key);
                    tx.announce(StoreEvent::KeysChanged)?;
                }
                Ok(revoked)
            })
            .await?;
        if revoked {
            self.inner.auth.forget();
            Ok(())
        } else {
            Err(Error::not_found(format!("no active key {id:?} in this tenant")))
        }
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
            .write(&Actor::cli(), move |tx| {
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
