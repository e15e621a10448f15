//! The one retry-delay policy: exponential backoff (delays double from a first
//! delay up to a cap), from the `backon` crate. Jobs that fail, queued work
//! that fails, and calls to outside providers all wait by it.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// Delays that double from `first` up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Backoff {
    pub const fn new(first: Duration, max: Duration) -> Self {
        Backoff { first, max }
    }

    /// The delays in order: `first`, `2·first`, … capped at `max`, forever
    /// (to the millisecond: backon computes them in `f32`).
    pub fn delays(&self) -> impl Iterator<Item = Duration> {
        ExponentialBuilder::new()
            .with_min_delay(self.first)
            .with_max_delay(self.max)
            .with_factor(2.0)
            .without_max_times()
            .build()
            .map(|d| Duration::from_millis((d.as_secs_f64() * 1000.0).round() as u64))
    }

    /// The delay before retry number `attempt` (0 = the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        self.delays().nth(attempt.min(64) as usize).unwrap_or(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let b = Backoff::new(Duration::from_millis(500), Duration::from_secs(3));
        let got: Vec<u128> = b.delays().take(5).map(|d| d.as_millis()).collect();
        assert_eq!(got, [500, 1000, 2000, 3000, 3000]);
        assert_eq!(b.delay(0), Duration::from_millis(500));
        assert_eq!(b.delay(2), Duration::from_secs(2));
        assert_eq!(b.delay(40), Duration::from_secs(3));
    }
}
