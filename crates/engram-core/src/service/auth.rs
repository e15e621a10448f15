//! Turning a presented API key into a [`TenantCtx`].
//!
//! Grants are cached for [`CACHE_TTL_MS`] (by the service's clock) so the hot
//! path does not touch the database. A created or revoked key is announced
//! to every node (`StoreEvent::KeysChanged`), which forgets its cache at
//! once; without the announcement (a lost event connection) a revoked key
//! still stops working within the cache's lifetime.
//!
//! A bearer token (JWT) is verified instead when one is configured and the
//! credential is shaped like one (`crate::jwt`): no lookup, no cache.
//!
//! A flood of bad keys cannot hammer storage: a key not shaped like ours is
//! refused without a lookup; an unknown key is cached too (bounded), so
//! repeating it costs nothing; and lookups that find nothing are budgeted
//! ([`UNKNOWN_KEYS_PER_SECOND`] a node, governor's GCRA on the service's
//! clock) — once the budget is spent, for the next second a key not in the
//! cache is answered 503 (try again shortly) without a lookup, while keys
//! that worked go on working (on their cached grant, even past its 5 s).

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use quick_cache::sync::Cache;

use super::MemoryService;
use crate::auth::{hash_key, well_formed, TenantCtx};
use crate::clock::{GovernorClock, SharedClock};
use crate::error::{Error, Result};
use crate::jwt::{looks_like_jwt, JwtVerifier};
use crate::time::Millis;

/// How long a key lookup (or "no keys exist") is trusted, in milliseconds.
pub const CACHE_TTL_MS: Millis = 5_000;
/// Most key lookups cached.
const CACHE_MAX: usize = 10_000;
/// Lookups a second (on average) that may find no key, per node; twice as
/// many at once.
pub const UNKNOWN_KEYS_PER_SECOND: u32 = 100;

/// Whether callers must present a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Loopback dev mode: a caller without a key is tenant `default` for as
    /// long as no API key exists. Once a key is created, keys are required.
    DevUntilKeysExist,
    /// Every request must present a valid key.
    Required,
}

/// The caller a key authenticates as, or nothing for an unknown key.
type Grant = Option<TenantCtx>;

pub(crate) struct Authenticator {
    mode: AuthMode,
    /// Key hash → (grant, when it was looked up).
    grants: Cache<[u8; 32], (Grant, Millis)>,
    keys_exist: Mutex<Option<(bool, Millis)>>,
    /// The budget of lookups that found no key.
    misses: RateLimiter<NotKeyed, InMemoryState, GovernorClock, NoOpMiddleware<Nanos>>,
    /// Until when keys not in the cache are refused without a lookup (the
    /// budget was spent).
    refuse_uncached_until: AtomicI64,
    /// Bearer tokens accepted beside keys.
    jwt: Option<Arc<JwtVerifier>>,
}

impl Authenticator {
    pub fn new(mode: AuthMode, clock: SharedClock, jwt: Option<Arc<JwtVerifier>>) -> Self {
        let rate = NonZeroU32::new(UNKNOWN_KEYS_PER_SECOND).unwrap_or(NonZeroU32::MIN);
        let burst = rate.saturating_mul(NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN));
        Authenticator {
            mode,
            grants: Cache::new(CACHE_MAX),
            keys_exist: Mutex::new(None),
            misses: RateLimiter::direct_with_clock(Quota::per_second(rate).allow_burst(burst), GovernorClock(clock)),
            refuse_uncached_until: AtomicI64::new(Millis::MIN),
            jwt,
        }
    }

    /// Forgets every cached lookup (a key changed on some node).
    pub fn forget(&self) {
        self.grants.clear();
        if let Ok(mut guard) = self.keys_exist.lock() {
            *guard = None;
        }
    }
}

/// The caller a grant names, or `unauthenticated`.
fn grant_ctx(grant: Grant) -> Result<TenantCtx> {
    match grant {
        Some(ctx) => Ok(ctx),
        None => Err(Error::unauthenticated("the API key is not valid (unknown or revoked)")),
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
        if let Some(jwt) = auth.jwt.as_ref().filter(|_| looks_like_jwt(secret)) {
            return jwt.verify(secret);
        }
        if !well_formed(secret) {
            return Err(Error::unauthenticated("the API key is not valid (not an engram key)"));
        }
        let hash = hash_key(secret);
        let now = self.now();
        let grant = match auth.grants.get(&hash) {
            Some((g, at)) if now - at < CACHE_TTL_MS => {
                self.inner.metrics.auth_cache_hits.inc();
                g
            }
            stale => {
                self.inner.metrics.auth_cache_misses.inc();
                if now < auth.refuse_uncached_until.load(Ordering::Relaxed) {
                    // A key that worked keeps working through a flood, on its
                    // stale grant (a revocation empties the cache at once).
                    if let Some((g @ Some(_), _)) = stale {
                        return grant_ctx(g);
                    }
                    return Err(Error::unavailable(
                        "too many unknown API keys are being tried; known keys go on working, others try again shortly",
                    ));
                }
                let key = self.store().point(move |r| r.key_by_hash(&hash)).await?;
                let g: Grant = key.map(|k| TenantCtx {
                    tenant: k.tenant,
                    scopes: k.scopes,
                    key_id: Some(k.id),
                    agent_id: None,
                    namespaces: k.namespaces,
                    request_id: None,
                });
                if g.is_none() && auth.misses.check().is_err() {
                    auth.refuse_uncached_until.store(now + 1_000, Ordering::Relaxed);
                }
                auth.grants.insert(hash, (g.clone(), now));
                g
            }
        };
        grant_ctx(grant)
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
        let exist = self.store().read(|r| r.any_key()).await?;
        if let Ok(mut guard) = self.inner.auth.keys_exist.lock() {
            *guard = Some((exist, now));
        }
        Ok(exist)
    }
}
