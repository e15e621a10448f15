//! A circuit breaker for calls to an outside service (an embedding or chat API):
//! after `threshold` consecutive failures it opens and refuses calls at once for
//! `cool_down`, then lets one trial call through (half-open); a success closes it.
//! Time comes from the service's clock, so tests move it instead of sleeping.

use std::sync::Mutex;
use std::time::Duration;

use crate::clock::SharedClock;
use crate::time::Millis;

#[derive(Debug)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Millis,
    },
    /// A trial call is in flight; another is let through after `until` in case
    /// the first never reports back.
    HalfOpen {
        until: Millis,
    },
}

/// Shared by every caller of one service.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cool_down_ms: Millis,
    clock: SharedClock,
    state: Mutex<State>,
}

impl Breaker {
    pub fn new(threshold: u32, cool_down: Duration, clock: SharedClock) -> Self {
        Breaker {
            threshold: threshold.max(1),
            cool_down_ms: cool_down.as_millis() as Millis,
            clock,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    /// `Ok` when a call may go ahead; otherwise how long until the next trial.
    pub fn admit(&self) -> Result<(), Duration> {
        let Ok(mut st) = self.state.lock() else {
            return Ok(());
        };
        match *st {
            State::Closed { .. } => Ok(()),
            State::Open { until } | State::HalfOpen { until } => {
                let now = self.clock.now_ms();
                if now >= until {
                    *st = State::HalfOpen { until: now + self.cool_down_ms };
                    Ok(())
                } else {
                    Err(Duration::from_millis((until - now) as u64))
                }
            }
        }
    }

    pub fn success(&self) {
        if let Ok(mut st) = self.state.lock() {
            *st = State::Closed { failures: 0 };
        }
    }

    pub fn failure(&self) {
        if let Ok(mut st) = self.state.lock() {
            let failures = match *st {
                State::Closed { failures } => failures + 1,
                State::HalfOpen { .. } | State::Open { .. } => self.threshold,
            };
            *st = if failures >= self.threshold {
                State::Open { until: self.clock.now_ms() + self.cool_down_ms }
            } else {
                State::Closed { failures }
            };
        }
    }

    /// Whether calls are being refused now.
    pub fn is_open(&self) -> bool {
        let now = self.clock.now_ms();
        self.state.lock().map(|s| matches!(*s, State::Open { until } if now < until)).unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn opens_after_threshold_and_half_opens_after_cool_down() {
        let clock = ManualClock::new(0);
        let b = Breaker::new(3, Duration::from_millis(30), clock.clone());
        for _ in 0..2 {
            assert!(b.admit().is_ok());
            b.failure();
        }
        assert!(b.admit().is_ok(), "two failures keep it closed");
        b.failure();
        assert_eq!(b.admit(), Err(Duration::from_millis(30)), "the third opens it");
        assert!(b.is_open());
        clock.advance(29);
        assert!(b.admit().is_err(), "still cooling down");
        clock.advance(1);
        assert!(b.admit().is_ok(), "one trial after the cool-down");
        assert!(b.admit().is_err(), "only one trial at a time");
        b.failure();
        assert!(b.admit().is_err(), "a failed trial reopens it");
        clock.advance(30);
        assert!(b.admit().is_ok());
        b.success();
        assert!(b.admit().is_ok() && b.admit().is_ok(), "a successful trial closes it");
        assert!(!b.is_open());
    }
}
