//! Turning a presented API key into a [`TenantCtx`].
//!
//! Grants are cached for [`CACHE_TTL_MS`] (by the service's clock) so the hot
//! path does not touch the database. A created or revoked key is announced
//! to every node (`StoreEvent::KeysChanged`), which forgets its cache at
//! once; without the announcement (a lost event connection) a revoked key
//! still stops working within the cache's lifetime. Unknown keys are cached too, in a bounded cache, so a
//! flood of bad keys cannot hammer storage.

use std::sync::Mutex;

use quick_cache::sync::Cache;

use super::MemoryService;
use crate::auth::{hash_key, Scopes, TenantCtx};
use crate::error::{Error, Result};
use crate::time::Millis;

/// How long a key lookup (or "no keys exist") is trusted, in milliseconds.
pub const CACHE_TTL_MS: Millis = 5_000;
/// Most key lookups cached.
const CACHE_MAX: usize = 10_000;

/// Whether callers must present a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Loopback dev mode: a caller without a key is tenant `default` for as
    /// long as no API key exists. Once a key is created, keys are required.
    DevUntilKeysExist,
    /// Every request must present a valid key.
    Required,
}

/// What a key grants: `(key id, tenant, scopes)`, or nothing for an unknown key.
type Grant = Option<(String, String, Scopes)>;

pub(crate) struct Authenticator {
    mode: AuthMode,
    /// Key hash → (grant, when it was looked up).
    grants: Cache<[u8; 32], (Grant, Millis)>,
    keys_exist: Mutex<Option<(bool, Millis)>>,
}

impl Authenticator {
    pub fn new(mode: AuthMode) -> Self {
        Authenticator { mode, grants: Cache::new(CACHE_MAX), keys_exist: Mutex::new(None) }
    }

    /// Forgets every cached lookup (a key changed on some node).
    pub fn forget(&self) {
        self.grants.clear();
        if let Ok(mut guard) = self.keys_exist.lock() {
            *guard = None;
        }
    }
}

impl MemoryService {
    /// Authenticates a request from the key it presented (if any).
    pub async fn authenticate(&self, presented: Option<&str>) -> Result<TenantCtx> {
        let auth = &self.inner.auth;
        let Some(secret) = presented.map(str::trim).filter(|s| !s.is_empty()) else {
            if auth.mode == AuthMode::DevUntilKeysExist && !self.keys_exist().await? {
                return Ok(TenantCtx::dev());
            }
            return Err(Error::unauthenticated(
                "an API key is required: send `Authorization: Bearer <key>` or `x-api-key: <key>`",
            ));
        };
        let hash = hash_key(secret);
        let now = self.now();
        let grant = match auth.grants.get(&hash).filter(|(_, at)| now - at < CACHE_TTL_MS) {
            Some((g, _)) => g,
            None => {
                let key = self.store().point(move |r| r.key_by_hash(&hash)).await?;
                let g: Grant = key.map(|k| (k.id, k.tenant, k.scopes));
                auth.grants.insert(hash, (g.clone(), now));
                g
            }
        };
        match grant {
            Some((id, tenant, scopes)) => Ok(TenantCtx { tenant, scopes, key_id: Some(id) }),
            None => Err(Error::unauthenticated("the API key is not valid (unknown or revoked)")),
        }
    }

    async fn keys_exist(&self) -> Result<bool> {
        let now = self.now();
        if let Ok(guard) = self.inner.auth.keys_exist.lock() {
            if let Some((exist, at)) = *guard {
                if now - at < CACHE_TTL_MS {
                    return Ok(exist);
                }
            }
        }
        let exist = self.store().read(|r| r.any_active_key()).await?;
        if let Ok(mut guard) = self.inner.auth.keys_exist.lock() {
            *guard = Some((exist, now));
        }
        Ok(exist)
    }
}
