//! Offboarding: the confirmation it needs, when it may be scheduled, and
//! the steps outside Gatehouse that an administrator ticks off.

use super::{grants::Status, Millis, MINUTE};

/// Steps outside Gatehouse, each marked done by an administrator.
pub const CHECKLIST: [(&str, &str); 6] = [
    ("laptop", "Laptop and hardware returned"),
    ("email", "Email account disabled"),
    ("sso", "SSO account disabled"),
    ("github", "GitHub access removed"),
    ("aws", "AWS access removed"),
    ("vpn", "VPN access removed"),
];

pub fn checklist_label(item: &str) -> Option<&'static str> {
    CHECKLIST.iter().find(|(k, _)| *k == item).map(|(_, l)| *l)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OffboardError {
    #[error("Type the employee's email address exactly to confirm.")]
    ConfirmationMismatch,
    #[error("This employee is already offboarded.")]
    AlreadyOffboarded,
    #[error("A scheduled offboarding must be at least one minute in the future.")]
    ScheduleInPast,
    #[error("A scheduled offboarding must be within one year.")]
    ScheduleTooFar,
}

/// The administrator confirms by typing the employee's email.
pub fn check_confirmation(typed: &str, email: &str) -> Result<(), OffboardError> {
    if typed.trim().eq_ignore_ascii_case(email) {
        Ok(())
    } else {
        Err(OffboardError::ConfirmationMismatch)
    }
}

pub fn check_offboardable(status: Status) -> Result<(), OffboardError> {
    if status == Status::Offboarded {
        return Err(OffboardError::AlreadyOffboarded);
    }
    Ok(())
}

pub fn check_schedule(at: Millis, now: Millis) -> Result<(), OffboardError> {
    if at < now + MINUTE {
        return Err(OffboardError::ScheduleInPast);
    }
    if at > now + 366 * 24 * 60 * MINUTE {
        return Err(OffboardError::ScheduleTooFar);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirmation_is_the_exact_email() {
        assert_eq!(
            check_confirmation(
                " Jonas.Becker@sunridge-solar.example ",
                "jonas.becker@sunridge-solar.example"
            ),
            Ok(())
        );
        assert_eq!(
            check_confirmation("jonas", "jonas.becker@sunridge-solar.example"),
            Err(OffboardError::ConfirmationMismatch)
        );
        assert_eq!(
            check_confirmation("", "jonas.becker@sunridge-solar.example"),
            Err(OffboardError::ConfirmationMismatch)
        );
    }

    #[test]
    fn offboarding_happens_once() {
        assert_eq!(
            check_offboardable(Status::Offboarded),
            Err(OffboardError::AlreadyOffboarded)
        );
        for s in [Status::Invited, Status::Active, Status::Suspended] {
            assert_eq!(check_offboardable(s), Ok(()));
        }
    }

    #[test]
    fn schedules_are_in_the_future() {
        let now = 1_800_000_000_000;
        assert_eq!(check_schedule(now, now), Err(OffboardError::ScheduleInPast));
        assert_eq!(check_schedule(now + MINUTE, now), Ok(()));
        assert_eq!(
            check_schedule(now + 400 * 24 * 60 * MINUTE, now),
            Err(OffboardError::ScheduleTooFar)
        );
    }

    #[test]
    fn checklist_items_have_labels() {
        assert_eq!(checklist_label("github"), Some("GitHub access removed"));
        assert_eq!(checklist_label("nope"), None);
        assert_eq!(CHECKLIST.len(), 6);
    }
}
