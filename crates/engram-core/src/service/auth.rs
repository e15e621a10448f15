//! Turning a presented API key into a [`TenantCtx`].
//!
//! Grants are cached for [`CACHE_TTL`] so the hot path does not touch the
//! database; a revoked key therefore stops working within that time. Unknown
//! keys are cached too (bounded), so a flood of bad keys cannot hammer storage.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::MemoryService;
use crate::auth::{hash_key, TenantCtx};
use crate::error::{Error, Result};
use crate::store::KeyGrant;

/// How long a key lookup (or "no keys exist") is trusted.
pub const CACHE_TTL: Duration = Duration::from_secs(5);
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

/// Key hash → (grant, or `None` for an unknown key; when it was looked up).
type GrantCache = HashMap<[u8; 32], (Option<KeyGrant>, Instant)>;

pub(crate) struct Authenticator {
    mode: AuthMode,
    grants: Mutex<GrantCache>,
    keys_exist: Mutex<Option<(bool, Instant)>>,
}

impl Authenticator {
    pub fn new(mode: AuthMode) -> Self {
        Authenticator { mode, grants: Mutex::new(HashMap::new()), keys_exist: Mutex::new(None) }
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
        let cached = {
            let grants = auth.grants.lock().map_err(|_| Error::internal("auth cache poisoned"))?;
            grants.get(&hash).filter(|(_, at)| at.elapsed() < CACHE_TTL).map(|(g, _)| g.clone())
        };
        let grant = match cached {
            Some(g) => g,
            None => {
                let g = self.store().find_key(hash).await?;
                let mut grants = auth.grants.lock().map_err(|_| Error::internal("auth cache poisoned"))?;
                if grants.len() >= CACHE_MAX {
                    grants.clear();
                }
                grants.insert(hash, (g.clone(), Instant::now()));
                g
            }
        };
        match grant {
            Some(g) => Ok(TenantCtx { tenant: g.tenant, scopes: g.scopes, key_id: Some(g.id) }),
            None => Err(Error::unauthenticated("the API key is not valid (unknown or revoked)")),
        }
    }

    async fn keys_exist(&self) -> Result<bool> {
        let auth = &self.inner.auth;
        if let Ok(guard) = auth.keys_exist.lock() {
            if let Some((exist, at)) = *guard {
                if at.elapsed() < CACHE_TTL {
                    return Ok(exist);
                }
            }
        }
        let exist = self.store().has_keys().await?;
        if let Ok(mut guard) = auth.keys_exist.lock() {
            *guard = Some((exist, Instant::now()));
        }
        Ok(exist)
    }
}
