//! Just-in-time elevation: an employee asks for a requestable role for a
//! while, someone else approves, and the access ends by itself. The request
//! is a small state machine; every transition is checked here.

use super::{grants::describe_duration, permissions::{Permission, PermissionSet}, roles::RoleDef, Millis, HOUR, MINUTE};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Pending,
    Approved,
    Denied,
    Cancelled,
    Expired,
    Revoked,
    /// Pending for 24 hours without a decision.
    Lapsed,
}

impl State {
    pub const ALL: [State; 7] = [State::Pending, State::Approved, State::Denied, State::Cancelled, State::Expired, State::Revoked, State::Lapsed];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Approved => "approved",
            State::Denied => "denied",
            State::Cancelled => "cancelled",
            State::Expired => "expired",
            State::Revoked => "revoked",
            State::Lapsed => "lapsed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

pub const DEFAULT_DURATION: Millis = HOUR;
pub const MIN_DURATION: Millis = 5 * MINUTE;
pub const LAPSE_AFTER: Millis = 24 * HOUR;
pub const MAX_START_AHEAD: Millis = 7 * 24 * HOUR;
pub const MIN_JUSTIFICATION: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElevationError {
    #[error("This role cannot be requested.")]
    NotRequestable,
    #[error("The duration must be between 5 minutes and {0}.")]
    BadDuration(String),
    #[error("Explain why in at least 20 characters (at most 1000).")]
    Justification,
    #[error("Give the ticket reference, such as SUP-1234.")]
    Ticket,
    #[error("The start must be within the next 7 days.")]
    BadStart,
    #[error("You cannot approve or deny your own request.")]
    OwnRequest,
    #[error("Approving needs the requests:approve permission, and auditors never approve.")]
    NotAnApprover,
    #[error("You have already approved this request.")]
    AlreadyApproved,
    #[error("This request is {0}; that is not possible any more.")]
    InvalidTransition(&'static str),
    #[error("A reason is required (at most 1000 characters).")]
    Reason,
    #[error("You already have an open request or active elevation for this role.")]
    Duplicate,
}

/// A ticket reference: letters, a dash, digits (SUP-1234, OPS-77).
pub fn valid_ticket(t: &str) -> bool {
    let Some((prefix, number)) = t.split_once('-') else { return false };
    (2..=10).contains(&prefix.len())
        && prefix.bytes().all(|b| b.is_ascii_uppercase())
        && (1..=10).contains(&number.len())
        && number.bytes().all(|b| b.is_ascii_digit())
}

pub struct NewRequest<'a> {
    pub role: &'a RoleDef,
    pub duration: Option<Millis>,
    pub justification: &'a str,
    pub ticket: &'a str,
    pub starts_at: Option<Millis>,
}

/// Checks a new request; returns the duration to use.
pub fn check_new(r: &NewRequest<'_>, now: Millis) -> Result<Millis, ElevationError> {
    let Some(max) = r.role.max_duration.filter(|_| r.role.requestable) else { return Err(ElevationError::NotRequestable) };
    let d = r.duration.unwrap_or(DEFAULT_DURATION.min(max));
    if !(MIN_DURATION..=max).contains(&d) {
        return Err(ElevationError::BadDuration(describe_duration(max)));
    }
    let j = r.justification.trim();
    if j.chars().count() < MIN_JUSTIFICATION || j.chars().count() > 1000 {
        return Err(ElevationError::Justification);
    }
    if !valid_ticket(r.ticket.trim()) {
        return Err(ElevationError::Ticket);
    }
    if let Some(s) = r.starts_at {
        if s < now - MINUTE || s > now + MAX_START_AHEAD {
            return Err(ElevationError::BadStart);
        }
    }
    Ok(d)
}

/// A request as the transitions see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub requester: i64,
    pub state: State,
    pub requested_at: Millis,
    pub duration: Millis,
    pub starts_at: Option<Millis>,
    /// Approvals so far (distinct approvers).
    pub approvals: Vec<i64>,
    pub approvals_needed: usize,
    /// Set once approved: when the access starts and ends.
    pub window: Option<(Millis, Millis)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    Approve { by: i64, by_perms: PermissionSet },
    Deny { by: i64, by_perms: PermissionSet, reason: String },
    Cancel { by: i64 },
    Revoke { by_perms: PermissionSet, reason: String },
    Expire,
    Lapse,
}

/// What a transition leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Next {
    pub state: State,
    pub approvals: Vec<i64>,
    /// Approved now: the access window (start, end) to grant.
    pub grant_window: Option<(Millis, Millis)>,
}

fn is_approver(perms: PermissionSet) -> bool {
    perms.contains(Permission::RequestsApprove) && !perms.contains(Permission::AuditRead) && !perms.contains(Permission::AuditExport)
}

/// The state a request is really in at `now` (a pending request lapses
/// after 24 hours; an approved one expires at its end), whether or not a
/// job has recorded it yet.
pub fn effective_state(r: &Request, now: Millis) -> State {
    match (r.state, r.window) {
        (State::Pending, _) if now >= r.requested_at + LAPSE_AFTER => State::Lapsed,
        (State::Approved, Some((_, end))) if now >= end => State::Expired,
        (s, _) => s,
    }
}

pub fn apply(r: &Request, t: Transition, now: Millis) -> Result<Next, ElevationError> {
    let state = effective_state(r, now);
    let same = |s: State| Next { state: s, approvals: r.approvals.clone(), grant_window: None };
    let invalid = || ElevationError::InvalidTransition(state.as_str());
    match t {
        Transition::Approve { by, by_perms } => {
            if state != State::Pending {
                return Err(invalid());
            }
            if by == r.requester {
                return Err(ElevationError::OwnRequest);
            }
            if !is_approver(by_perms) {
                return Err(ElevationError::NotAnApprover);
            }
            if r.approvals.contains(&by) {
                return Err(ElevationError::AlreadyApproved);
            }
            let mut approvals = r.approvals.clone();
            approvals.push(by);
            if approvals.len() < r.approvals_needed.max(1) {
                return Ok(Next { state: State::Pending, approvals, grant_window: None });
            }
            // Without a chosen start, the clock starts at approval.
            let start = r.starts_at.map_or(now, |s| s.max(now));
            Ok(Next { state: State::Approved, approvals, grant_window: Some((start, start + r.duration)) })
        }
        Transition::Deny { by, by_perms, reason } => {
            if state != State::Pending {
                return Err(invalid());
            }
            if by == r.requester {
                return Err(ElevationError::OwnRequest);
            }
            if !is_approver(by_perms) {
                return Err(ElevationError::NotAnApprover);
            }
            check_reason(&reason)?;
            Ok(same(State::Denied))
        }
        Transition::Cancel { by } => {
            // The requester may withdraw while waiting, or before the start.
            let not_started = state == State::Approved && r.window.is_some_and(|(s, _)| now < s);
            if by != r.requester || !(state == State::Pending || not_started) {
                return Err(invalid());
            }
            Ok(same(State::Cancelled))
        }
        Transition::Revoke { by_perms, reason } => {
            if state != State::Approved {
                return Err(invalid());
            }
            if !is_approver(by_perms) {
                return Err(ElevationError::NotAnApprover);
            }
            check_reason(&reason)?;
            Ok(same(State::Revoked))
        }
        Transition::Expire => match state {
            State::Expired if r.state == State::Approved => Ok(same(State::Expired)),
            _ => Err(invalid()),
        },
        Transition::Lapse => match state {
            State::Lapsed if r.state == State::Pending => Ok(same(State::Lapsed)),
            _ => Err(invalid()),
        },
    }
}

fn check_reason(reason: &str) -> Result<(), ElevationError> {
    let r = reason.trim();
    if r.is_empty() || r.chars().count() > 1000 {
        return Err(ElevationError::Reason);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::roles::{builtin_roles, ENGINEER, SUPPORT_PII};

    const NOW: Millis = 1_800_000_000_000;

    fn role(key: &str) -> RoleDef {
        builtin_roles().into_iter().find(|r| r.key == key).unwrap()
    }

    fn approver() -> PermissionSet {
        PermissionSet::of(&[Permission::RequestsApprove, Permission::EmployeesManage])
    }

    fn pending() -> Request {
        Request { requester: 7, state: State::Pending, requested_at: NOW, duration: HOUR, starts_at: None, approvals: vec![], approvals_needed: 1, window: None }
    }

    fn new<'a>(role: &'a RoleDef, justification: &'a str) -> NewRequest<'a> {
        NewRequest { role, duration: None, justification, ticket: "SUP-1234", starts_at: None }
    }

    const WHY: &str = "customer 1042 asks to correct the delivery address";

    #[test]
    fn new_requests_are_checked() {
        let pii = role(SUPPORT_PII);
        assert_eq!(check_new(&new(&pii, WHY), NOW), Ok(HOUR), "one hour by default");
        assert_eq!(check_new(&new(&role(ENGINEER), WHY), NOW), Err(ElevationError::NotRequestable));
        assert_eq!(check_new(&new(&pii, "because"), NOW), Err(ElevationError::Justification));
        let mut r = new(&pii, WHY);
        r.duration = Some(8 * HOUR + 1);
        assert_eq!(check_new(&r, NOW), Err(ElevationError::BadDuration("8 hours".into())));
        r.duration = Some(8 * HOUR);
        assert_eq!(check_new(&r, NOW), Ok(8 * HOUR));
        r.duration = Some(MINUTE);
        assert!(check_new(&r, NOW).is_err());
        let mut r = new(&pii, WHY);
        r.ticket = "sup 12";
        assert_eq!(check_new(&r, NOW), Err(ElevationError::Ticket));
        let mut r = new(&pii, WHY);
        r.starts_at = Some(NOW + 8 * 24 * HOUR);
        assert_eq!(check_new(&r, NOW), Err(ElevationError::BadStart));
        r.starts_at = Some(NOW + 24 * HOUR);
        assert!(check_new(&r, NOW).is_ok());
    }

    #[test]
    fn tickets() {
        for ok in ["SUP-1234", "OPS-7", "INC-2026001"] {
            assert!(valid_ticket(ok), "{ok}");
        }
        for bad in ["", "SUP", "SUP-", "sup-1", "SUP-12a", "S-1", "SUP-1-2"] {
            assert!(!valid_ticket(bad), "{bad}");
        }
    }

    #[test]
    fn approval_starts_the_clock_and_self_approval_is_refused() {
        let r = pending();
        assert_eq!(apply(&r, Transition::Approve { by: 7, by_perms: approver() }, NOW + 10), Err(ElevationError::OwnRequest));
        let auditor = PermissionSet::of(&[Permission::RequestsApprove, Permission::AuditRead]);
        assert_eq!(apply(&r, Transition::Approve { by: 2, by_perms: auditor }, NOW), Err(ElevationError::NotAnApprover));
        assert_eq!(apply(&r, Transition::Approve { by: 2, by_perms: PermissionSet::EMPTY }, NOW), Err(ElevationError::NotAnApprover));
        let next = apply(&r, Transition::Approve { by: 2, by_perms: approver() }, NOW + 10 * MINUTE).unwrap();
        assert_eq!(next.state, State::Approved);
        assert_eq!(next.grant_window, Some((NOW + 10 * MINUTE, NOW + 10 * MINUTE + HOUR)), "from approval, not request");
        // A chosen start keeps it.
        let mut later = pending();
        later.starts_at = Some(NOW + 5 * HOUR);
        let next = apply(&later, Transition::Approve { by: 2, by_perms: approver() }, NOW).unwrap();
        assert_eq!(next.grant_window, Some((NOW + 5 * HOUR, NOW + 6 * HOUR)));
    }

    #[test]
    fn two_approvals_when_the_policy_says_so() {
        let mut r = pending();
        r.approvals_needed = 2;
        let first = apply(&r, Transition::Approve { by: 2, by_perms: approver() }, NOW).unwrap();
        assert_eq!((first.state, first.grant_window), (State::Pending, None));
        r.approvals = first.approvals;
        assert_eq!(apply(&r, Transition::Approve { by: 2, by_perms: approver() }, NOW), Err(ElevationError::AlreadyApproved));
        let second = apply(&r, Transition::Approve { by: 3, by_perms: approver() }, NOW).unwrap();
        assert_eq!(second.state, State::Approved);
        assert_eq!(second.approvals, [2, 3]);
    }

    #[test]
    fn pending_requests_lapse_after_a_day() {
        let r = pending();
        assert_eq!(effective_state(&r, NOW + LAPSE_AFTER - 1), State::Pending);
        assert_eq!(effective_state(&r, NOW + LAPSE_AFTER), State::Lapsed);
        assert_eq!(apply(&r, Transition::Approve { by: 2, by_perms: approver() }, NOW + LAPSE_AFTER), Err(ElevationError::InvalidTransition("lapsed")));
        assert_eq!(apply(&r, Transition::Lapse, NOW + LAPSE_AFTER).unwrap().state, State::Lapsed);
        assert!(apply(&r, Transition::Lapse, NOW).is_err());
    }

    #[test]
    fn approved_access_expires_at_the_exact_instant() {
        let mut r = pending();
        r.state = State::Approved;
        r.window = Some((NOW, NOW + HOUR));
        assert_eq!(effective_state(&r, NOW + HOUR - 1), State::Approved);
        assert_eq!(effective_state(&r, NOW + HOUR), State::Expired);
        assert!(apply(&r, Transition::Expire, NOW + HOUR - 1).is_err());
        assert_eq!(apply(&r, Transition::Expire, NOW + HOUR).unwrap().state, State::Expired);
        assert_eq!(apply(&r, Transition::Revoke { by_perms: approver(), reason: "done".into() }, NOW + HOUR), Err(ElevationError::InvalidTransition("expired")));
    }

    #[test]
    fn deny_cancel_and_revoke() {
        let r = pending();
        assert_eq!(apply(&r, Transition::Deny { by: 2, by_perms: approver(), reason: " ".into() }, NOW), Err(ElevationError::Reason));
        assert_eq!(apply(&r, Transition::Deny { by: 2, by_perms: approver(), reason: "use the redacted view".into() }, NOW).unwrap().state, State::Denied);
        assert_eq!(apply(&r, Transition::Cancel { by: 2 }, NOW), Err(ElevationError::InvalidTransition("pending")), "only the requester cancels");
        assert_eq!(apply(&r, Transition::Cancel { by: 7 }, NOW).unwrap().state, State::Cancelled);
        let mut active = pending();
        active.state = State::Approved;
        active.window = Some((NOW - 1, NOW + HOUR));
        assert!(apply(&active, Transition::Cancel { by: 7 }, NOW).is_err(), "started: revoke, not cancel");
        assert_eq!(apply(&active, Transition::Revoke { by_perms: approver(), reason: "ticket closed".into() }, NOW).unwrap().state, State::Revoked);
        let mut denied = pending();
        denied.state = State::Denied;
        for t in [Transition::Approve { by: 2, by_perms: approver() }, Transition::Cancel { by: 7 }, Transition::Expire, Transition::Lapse] {
            assert_eq!(apply(&denied, t, NOW), Err(ElevationError::InvalidTransition("denied")));
        }
    }
}
