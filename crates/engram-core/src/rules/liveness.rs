//! Liveness: what "expired" means, written once. Reads never return an
//! expired memory or session, whichever backend holds it and whether or not
//! the sweep has deleted it yet.
//!
//! A memory with `expires_at` is live strictly before that instant; a pinned
//! memory never expires. A session is live strictly before its `expires_at`
//! (restarted by every append). Backends translate [`memory_live`] into their
//! queries through `Scope::live_at`; the conformance suite checks they agree.

use crate::model::Memory;
use crate::store::{SessionRow, Stored};
use crate::time::Millis;

/// Whether a memory is live at `now`.
pub fn memory_live(m: &Memory, now: Millis) -> bool {
    live_until(m.expires_at, now)
}

/// Whether something expiring at `expires_at` (never: `None`) is live at `now`.
pub fn live_until(expires_at: Option<Millis>, now: Millis) -> bool {
    expires_at.is_none_or(|e| e > now)
}

/// The stored memory, if it is live at `now`.
pub fn live(s: Option<Stored>, now: Millis) -> Option<Stored> {
    s.filter(|s| memory_live(&s.memory, now))
}

/// Whether a session is live at `now`.
pub fn session_live(s: &SessionRow, now: Millis) -> bool {
    s.expires_at > now
}

/// When a memory written or refreshed at `now` expires: never when pinned or
/// without a TTL, else `ttl_ms` after `now`.
pub fn expiry(pinned: bool, ttl_ms: Option<i64>, now: Millis) -> Option<Millis> {
    if pinned {
        None
    } else {
        ttl_ms.map(|t| now.saturating_add(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_exclusive_and_pinning_wins() {
        assert_eq!(expiry(false, Some(10), 100), Some(110));
        assert_eq!(expiry(true, Some(10), 100), None);
        assert_eq!(expiry(false, None, 100), None);
        assert_eq!(expiry(false, Some(i64::MAX), 100), Some(i64::MAX));
    }
}
