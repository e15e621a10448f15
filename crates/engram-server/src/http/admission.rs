//! Admission control: what is served now and what is refused at once, so an
//! overloaded server answers quickly instead of queueing without bound.
//!
//! - **Load shedding** ([`shed`]): at most `limits.max_in_flight` requests
//!   are served at once (tower's `GlobalConcurrencyLimit`: one semaphore for
//!   every route); one more is refused at
//!   once with 503 `unavailable` and `Retry-After: 1` (tower's `LoadShed`).
//!   The health and metrics routes sit outside the limit, so an overloaded
//!   server still says how it is.
//! - **Per-key rate** ([`KeyLimiter`]): each API key has a token bucket
//!   (governor's GCRA: `key_requests_per_second` on average, `key_burst` at
//!   once); a request over it is a 429 `rate_limited` whose `Retry-After`
//!   says when the next one will be let in. The bucket runs on the service's
//!   clock, so tests move time by hand. Callers without a key (loopback dev
//!   mode) are not limited.
//!
//! Unknown and revoked keys never reach a bucket: authentication refuses them
//! first, from its cache (`engram_core::service::auth`).

use std::num::NonZeroU32;
use std::time::Duration;

use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use engram_core::clock::{GovernorClock, SharedClock};
use engram_core::{Error, ErrorCode, TenantCtx};
use governor::clock::Clock as _;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};

use super::error::ApiError;

/// Checks between two sweeps of buckets that are full again (forgotten:
/// a full bucket is what a new one would be), so callers seen once — token
/// subjects come and go — do not pile up.
const SWEEP_EVERY: u64 = 4096;

/// A token bucket per API key (or token subject).
pub struct KeyLimiter {
    limiter: RateLimiter<String, HashMapStateStore<String>, GovernorClock, NoOpMiddleware<Nanos>>,
    clock: GovernorClock,
    checks: std::sync::atomic::AtomicU64,
}

impl KeyLimiter {
    /// Buckets of `burst` requests, refilled at `per_second`.
    pub fn new(per_second: NonZeroU32, burst: NonZeroU32, clock: SharedClock) -> Self {
        let clock = GovernorClock(clock);
        let quota = Quota::per_second(per_second).allow_burst(burst);
        KeyLimiter { limiter: RateLimiter::hashmap_with_clock(quota, clock.clone()), clock, checks: Default::default() }
    }

    /// Lets the caller's request in, or says how long to wait. Callers
    /// without a key are not limited.
    pub fn admit(&self, ctx: &TenantCtx) -> Result<(), Duration> {
        let Some(key) = &ctx.key_id else {
            return Ok(());
        };
        if self.checks.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter.check_key(key).map_err(|until| until.wait_time_from(self.clock.now()))
    }
}

/// The 429 for a caller told to wait `wait`: `Retry-After` in whole
/// seconds, rounded up (at least 1).
pub fn throttled(wait: Duration) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut resp = ApiError(Error::User {
        code: ErrorCode::RateLimited,
        message: format!("this API key sent more requests than its rate allows; try again in {secs} s"),
    })
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
        resp.headers_mut().insert("retry-after", v);
    }
    resp
}

/// The response to a request shed because the server is at its limit.
pub async fn shed(_: tower::BoxError) -> ApiError {
    ApiError(Error::unavailable("the server is serving as many requests as it may; try again shortly"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use engram_core::clock::ManualClock;

    #[test]
    fn buckets_of_callers_gone_quiet_are_forgotten() {
        let clock = ManualClock::new(1_767_225_600_000);
        let n = NonZeroU32::new(10).unwrap();
        let limiter = KeyLimiter::new(n, n, clock.clone());
        let caller = |i: u64| TenantCtx { key_id: Some(format!("jwt:subject-{i}")), ..TenantCtx::dev() };
        for i in 0..SWEEP_EVERY - 1 {
            limiter.admit(&caller(i)).unwrap();
        }
        assert_eq!(limiter.limiter.len(), (SWEEP_EVERY - 1) as usize);
        // Their buckets refill; the next check sweeps the full ones away.
        clock.advance(2_000);
        limiter.admit(&caller(SWEEP_EVERY)).unwrap();
        assert!(limiter.limiter.len() <= 1, "{} buckets kept", limiter.limiter.len());
        // A caller over its rate is still refused after a sweep.
        let busy = caller(0);
        while limiter.admit(&busy).is_ok() {}
        assert!(limiter.admit(&busy).is_err());
    }
}
