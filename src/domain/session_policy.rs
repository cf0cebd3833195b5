//! Session lifetime rules (OWASP ASVS V3, level 2): a session ends after an
//! idle period (default 30 minutes) or an absolute lifetime (default 12
//! hours), whichever comes first.

use super::{Millis, HOUR, MINUTE};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    pub idle: Millis,
    pub absolute: Millis,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            idle: 30 * MINUTE,
            absolute: 12 * HOUR,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    Live,
    IdleExpired,
    AbsoluteExpired,
}

impl SessionState {
    pub fn reason(self) -> &'static str {
        match self {
            SessionState::Live => "live",
            SessionState::IdleExpired => "idle timeout",
            SessionState::AbsoluteExpired => "absolute lifetime reached",
        }
    }
}

impl Lifetimes {
    pub fn state(&self, created_at: Millis, last_seen: Millis, now: Millis) -> SessionState {
        if now >= created_at + self.absolute {
            SessionState::AbsoluteExpired
        } else if now >= last_seen + self.idle {
            SessionState::IdleExpired
        } else {
            SessionState::Live
        }
    }

    /// When the session ends if it is not used again.
    pub fn expires_at(&self, created_at: Millis, last_seen: Millis) -> Millis {
        (created_at + self.absolute).min(last_seen + self.idle)
    }
}

/// Step-up: a sensitive action needs a TOTP entered within this long.
pub const STEP_UP_FRESHNESS: Millis = 5 * MINUTE;

pub fn step_up_fresh(last_mfa_at: Option<Millis>, now: Millis) -> bool {
    last_mfa_at.is_some_and(|t| t <= now && now - t < STEP_UP_FRESHNESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Millis = 1_700_000_000_000;

    #[test]
    fn idle_timeout_at_the_exact_instant() {
        let l = Lifetimes::default();
        assert_eq!(l.state(T, T, T + 30 * MINUTE - 1), SessionState::Live);
        assert_eq!(l.state(T, T, T + 30 * MINUTE), SessionState::IdleExpired);
    }

    #[test]
    fn activity_extends_up_to_the_absolute_lifetime() {
        let l = Lifetimes::default();
        let last_seen = T + 12 * HOUR - MINUTE;
        assert_eq!(l.state(T, last_seen, T + 12 * HOUR - 1), SessionState::Live);
        assert_eq!(l.state(T, last_seen, T + 12 * HOUR), SessionState::AbsoluteExpired);
        assert_eq!(l.expires_at(T, last_seen), T + 12 * HOUR);
        assert_eq!(l.expires_at(T, T), T + 30 * MINUTE);
    }

    #[test]
    fn step_up_freshness() {
        assert!(step_up_fresh(Some(T), T + 5 * MINUTE - 1));
        assert!(!step_up_fresh(Some(T), T + 5 * MINUTE));
        assert!(!step_up_fresh(None, T));
        assert!(!step_up_fresh(Some(T + 1), T));
    }
}
