//! Admission control: what is served now and what is refused at once, so an
//! overloaded server answers quickly instead of queueing without bound.
//!
//! - **Load shedding** ([`shed`]): at most `limits.max_in_flight` requests
//!   are served at once (tower's `ConcurrencyLimit`); one more is refused at
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

/// A token bucket per API key.
pub struct KeyLimiter {
    limiter: RateLimiter<String, HashMapStateStore<String>, GovernorClock, NoOpMiddleware<Nanos>>,
    clock: GovernorClock,
}

impl KeyLimiter {
    /// Buckets of `burst` requests, refilled at `per_second`.
    pub fn new(per_second: NonZeroU32, burst: NonZeroU32, clock: SharedClock) -> Self {
        let clock = GovernorClock(clock);
        let quota = Quota::per_second(per_second).allow_burst(burst);
        KeyLimiter { limiter: RateLimiter::hashmap_with_clock(quota, clock.clone()), clock }
    }

    /// Lets the caller's request in, or says how long to wait. Callers
    /// without a key are not limited.
    pub fn admit(&self, ctx: &TenantCtx) -> Result<(), Duration> {
        let Some(key) = &ctx.key_id else {
            return Ok(());
        };
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
