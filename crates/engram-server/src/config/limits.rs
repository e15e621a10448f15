//! `[limits]`: admission control — how many requests are served at once, and
//! how fast each API key may send them. Validated here into [`Limits`]; the
//! HTTP layer applies them (`http::admission`).

use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

/// `[limits]` as written in the config file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Requests served at once; one more is refused at once with 503 and
    /// `Retry-After` (load shedding) rather than queued. `/healthz`,
    /// `/readyz` and `/metrics` are not counted.
    pub max_in_flight: i64,
    /// Requests per second each API key may send on average (a token
    /// bucket); 0 turns the limit off. Callers without a key (loopback dev
    /// mode) are not limited.
    pub key_requests_per_second: i64,
    /// Requests a key may send at once above its rate (the bucket's size).
    pub key_burst: i64,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection { max_in_flight: 512, key_requests_per_second: 500, key_burst: 1000 }
    }
}

/// Validated limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_in_flight: usize,
    /// `(requests per second, burst)` per API key; `None`: unlimited.
    pub per_key: Option<(NonZeroU32, NonZeroU32)>,
}

impl Default for Limits {
    fn default() -> Self {
        LimitsSection::default().validate(&mut Vec::new())
    }
}

impl LimitsSection {
    /// The limits, with a message in `errors` for every value out of range.
    pub fn validate(&self, errors: &mut Vec<String>) -> Limits {
        let mut check = |key: &str, v: i64, lo: i64, hi: i64| {
            if !(lo..=hi).contains(&v) {
                errors.push(format!("limits.{key} = {v} is out of range: allowed {lo} to {hi}"));
            }
        };
        check("max_in_flight", self.max_in_flight, 1, 1_000_000);
        check("key_requests_per_second", self.key_requests_per_second, 0, 1_000_000);
        check("key_burst", self.key_burst, 1, 10_000_000);
        let nonzero = |v: i64| u32::try_from(v).ok().and_then(NonZeroU32::new);
        Limits {
            max_in_flight: usize::try_from(self.max_in_flight).unwrap_or(1).max(1),
            per_key: nonzero(self.key_requests_per_second).zip(nonzero(self.key_burst)),
        }
    }
}
