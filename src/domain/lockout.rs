//! Brute-force protection for passwords and codes, per account and per
//! client address: 5 free failures, then a growing wait between attempts,
//! and a lock once 10 failures fall within 15 minutes. The lock lasts until
//! the window has passed (the oldest counted failure is older than 15
//! minutes) or an administrator unlocks the account.

use super::{Millis, MINUTE, SECOND};

pub const WINDOW: Millis = 15 * MINUTE;
pub const FREE_ATTEMPTS: usize = 5;
pub const LOCK_AFTER: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Try again at this instant.
    Wait {
        until: Millis,
    },
    /// Locked until this instant (or an unlock).
    Locked {
        until: Millis,
    },
}

impl Decision {
    pub fn retry_after_seconds(self, now: Millis) -> Option<i64> {
        match self {
            Decision::Allow => None,
            Decision::Wait { until } | Decision::Locked { until } => Some(((until - now).max(0) + 999) / 1000),
        }
    }
}

/// The delay owed after `failures` failures in the window: none for the
/// first five, then 2, 4, 8, 16, 32 seconds.
pub fn delay_after(failures: usize) -> Millis {
    if failures < FREE_ATTEMPTS {
        0
    } else {
        let exp = (failures - FREE_ATTEMPTS + 1).min(5) as u32;
        (1i64 << exp) * SECOND
    }
}

/// Decides whether an attempt may go ahead now, given the times of recent
/// failures (any order; those outside the window are ignored).
pub fn assess(failures: &[Millis], now: Millis) -> Decision {
    let mut recent: Vec<Millis> = failures
        .iter()
        .copied()
        .filter(|&t| t > now - WINDOW && t <= now)
        .collect();
    if recent.is_empty() {
        return Decision::Allow;
    }
    recent.sort_unstable();
    if recent.len() >= LOCK_AFTER {
        // Locked until enough failures have left the window to bring the
        // count below the lock threshold.
        let until = recent[recent.len() - LOCK_AFTER] + WINDOW;
        return Decision::Locked { until };
    }
    let last = *recent.last().unwrap_or(&now);
    let until = last + delay_after(recent.len());
    if until > now {
        Decision::Wait { until }
    } else {
        Decision::Allow
    }
}

/// True when this failure is the one that locks (the count reaches the lock
/// threshold), so the lock is recorded once.
pub fn locks_now(failures_before: &[Millis], now: Millis) -> bool {
    let recent = failures_before
        .iter()
        .filter(|&&t| t > now - WINDOW && t <= now)
        .count();
    recent + 1 == LOCK_AFTER
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Millis = 1_700_000_000_000;

    #[test]
    fn five_free_attempts() {
        let f: Vec<Millis> = (0..4).map(|i| T + i).collect();
        assert_eq!(assess(&f, T + 10), Decision::Allow);
        let f: Vec<Millis> = (0..5).map(|i| T + i).collect();
        assert_eq!(
            assess(&f, T + 10),
            Decision::Wait {
                until: T + 4 + 2 * SECOND
            }
        );
        assert_eq!(assess(&f, T + 4 + 2 * SECOND), Decision::Allow);
    }

    #[test]
    fn delays_grow() {
        assert_eq!(delay_after(4), 0);
        assert_eq!(delay_after(5), 2 * SECOND);
        assert_eq!(delay_after(6), 4 * SECOND);
        assert_eq!(delay_after(9), 32 * SECOND);
        assert_eq!(delay_after(30), 32 * SECOND);
    }

    #[test]
    fn ten_failures_in_the_window_lock() {
        let f: Vec<Millis> = (0..10).map(|i| T + i * MINUTE).collect();
        let now = T + 9 * MINUTE + 1;
        assert_eq!(assess(&f, now), Decision::Locked { until: T + WINDOW });
        assert_eq!(
            assess(&f, now).retry_after_seconds(now),
            Some((WINDOW - 9 * MINUTE - 1 + 999) / 1000)
        );
        // Once the oldest failure leaves the window, nine remain: waiting, not locked.
        assert!(matches!(
            assess(&f, T + WINDOW + 1),
            Decision::Wait { .. } | Decision::Allow
        ));
        assert_ne!(assess(&f, T + WINDOW + 1), Decision::Locked { until: T + WINDOW });
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let f: Vec<Millis> = (0..10).map(|i| T + i).collect();
        assert_eq!(assess(&f, T + WINDOW + 10), Decision::Allow);
    }

    #[test]
    fn lock_is_reported_once() {
        let nine: Vec<Millis> = (0..9).map(|i| T + i).collect();
        assert!(locks_now(&nine, T + 100));
        let ten: Vec<Millis> = (0..10).map(|i| T + i).collect();
        assert!(!locks_now(&ten, T + 100));
        assert!(!locks_now(&nine[..8], T + 100));
    }
}
