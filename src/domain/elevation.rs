//! Just-in-time elevation: an employee asks for a requestable role for a
//! while, someone else approves, and the access ends by itself. The request
//! is a small state machine; every transition is checked here.

use super::{
    grants::describe_duration,
    permissions::{Permission, PermissionSet},
    roles::RoleDef,
    Millis, HOUR, MINUTE,
};
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
    pub const ALL: [State; 7] = [
        State::Pending,
        State::Approved,
        State::Denied,
        State::Cancelled,
        State::Expired,
        State::Revoked,
        State::Lapsed,
    ];

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
    #[error("Give the ticket reference in the form {0}.")]
    TicketFormat(String),
    #[error("Customer ids: at most 20, each 1 to 128 characters without control characters.")]
    Customers,
    #[error("This role gives no access to customer data, so it cannot be limited to customers.")]
    ScopeNotApplicable,
    #[error("Only an active elevation of your own, for the same role, not extended before, can be extended.")]
    NotExtendable,
    #[error("An extension starts when the elevation it extends ends; it takes no start time.")]
    ExtensionStart,
    #[error("The approval policy needs 1 or 2 approvals, at most 20 named approvers, and at least as many named approvers as approvals.")]
    BadPolicy,
    #[error("Break-glass access is for engineers; ask for an elevation instead.")]
    NotAnEngineer,
    #[error("Break-glass access lasts between 5 minutes and 1 hour.")]
    BreakglassDuration,
    #[error("This is not a break-glass activation, or its review is already recorded.")]
    NotReviewable,
    #[error("The post-incident review is recorded by someone other than the person who broke the glass.")]
    OwnReview,
    #[error("Write the review in 20 to 2000 characters.")]
    ReviewNote,
}

/// The form of ticket references. By default a prefix of 2 to 10
/// upper-case letters, a dash and 1 to 10 digits (SUP-1234, OPS-77); the
/// operator can limit the prefixes (GATEHOUSE_TICKET_PREFIXES=SUP,INC).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketRule {
    pub prefixes: Vec<String>,
}

impl TicketRule {
    /// Parses a comma-separated prefix list; each 2 to 10 upper-case letters.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut prefixes = Vec::new();
        for p in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if !(2..=10).contains(&p.len()) || !p.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(format!(
                    "ticket prefix {:?} must be 2 to 10 upper-case letters",
                    p.chars().take(20).collect::<String>()
                ));
            }
            if !prefixes.iter().any(|q| q == p) {
                prefixes.push(p.to_owned());
            }
        }
        Ok(Self { prefixes })
    }

    pub fn accepts(&self, t: &str) -> bool {
        let Some((prefix, number)) = t.split_once('-') else {
            return false;
        };
        (2..=10).contains(&prefix.len())
            && prefix.bytes().all(|b| b.is_ascii_uppercase())
            && (self.prefixes.is_empty() || self.prefixes.iter().any(|p| p == prefix))
            && (1..=10).contains(&number.len())
            && number.bytes().all(|b| b.is_ascii_digit())
    }

    /// How the form is shown to people: "SUP-1234" or "SUP-1234 or INC-1234".
    pub fn example(&self) -> String {
        if self.prefixes.is_empty() {
            "SUP-1234 (letters, a dash, digits)".into()
        } else {
            self.prefixes
                .iter()
                .map(|p| format!("{p}-1234"))
                .collect::<Vec<_>>()
                .join(" or ")
        }
    }
}

/// A ticket reference in the default form.
pub fn valid_ticket(t: &str) -> bool {
    TicketRule::default().accepts(t)
}

pub const MAX_SCOPED_CUSTOMERS: usize = 20;

/// Checks and normalises a customer scope (trimmed, duplicates dropped).
pub fn check_customers(list: &[String], role: &RoleDef) -> Result<Vec<String>, ElevationError> {
    let mut out: Vec<String> = Vec::new();
    for c in list.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
        if c.chars().count() > 128 || c.chars().any(char::is_control) {
            return Err(ElevationError::Customers);
        }
        if !out.iter().any(|x| x == c) {
            out.push(c.to_owned());
        }
    }
    if out.len() > MAX_SCOPED_CUSTOMERS {
        return Err(ElevationError::Customers);
    }
    let customer_perms = PermissionSet::of(&[
        Permission::CustomersRead,
        Permission::CustomersReadPii,
        Permission::OrdersWrite,
        Permission::AccountsWrite,
    ]);
    if !out.is_empty() && !role.permissions.intersects(customer_perms) {
        return Err(ElevationError::ScopeNotApplicable);
    }
    Ok(out)
}

/// The elevation an extension request would extend, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtendTarget {
    pub kind: Kind,
    pub role: String,
    pub request: Request,
    pub already_extended: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Asked for and approved by others.
    Request,
    /// Self-activated in an emergency.
    Breakglass,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Request => "request",
            Kind::Breakglass => "breakglass",
        }
    }

    pub fn parse(s: &str) -> Self {
        if s == "breakglass" {
            Kind::Breakglass
        } else {
            Kind::Request
        }
    }
}

pub struct NewRequest<'a> {
    pub role: &'a RoleDef,
    pub duration: Option<Millis>,
    pub justification: &'a str,
    pub ticket: &'a str,
    pub starts_at: Option<Millis>,
    pub ticket_rule: &'a TicketRule,
    /// Limit the grant to these customers (empty: every customer).
    pub customers: &'a [String],
    /// Extends this active elevation (once), and the requester asking.
    pub extends: Option<(&'a ExtendTarget, i64)>,
}

/// Checks a new request; returns the duration to use and the customer
/// scope (normalised).
pub fn check_new(r: &NewRequest<'_>, now: Millis) -> Result<(Millis, Vec<String>), ElevationError> {
    let Some(max) = r.role.max_duration.filter(|_| r.role.requestable) else {
        return Err(ElevationError::NotRequestable);
    };
    let d = r.duration.unwrap_or(DEFAULT_DURATION.min(max));
    if !(MIN_DURATION..=max).contains(&d) {
        return Err(ElevationError::BadDuration(describe_duration(max)));
    }
    let j = r.justification.trim();
    if j.chars().count() < MIN_JUSTIFICATION || j.chars().count() > 1000 {
        return Err(ElevationError::Justification);
    }
    if !r.ticket_rule.accepts(r.ticket.trim()) {
        return Err(if r.ticket_rule.prefixes.is_empty() {
            ElevationError::Ticket
        } else {
            ElevationError::TicketFormat(r.ticket_rule.example())
        });
    }
    if let Some(s) = r.starts_at {
        if s < now - MINUTE || s > now + MAX_START_AHEAD {
            return Err(ElevationError::BadStart);
        }
    }
    if let Some((target, requester)) = r.extends {
        let active = effective_state(&target.request, now) == State::Approved
            && target.request.window.is_some_and(|(s, _)| s <= now);
        if target.kind != Kind::Request
            || target.request.requester != requester
            || target.role != r.role.key
            || target.already_extended
            || !active
        {
            return Err(ElevationError::NotExtendable);
        }
        if r.starts_at.is_some() {
            return Err(ElevationError::ExtensionStart);
        }
    }
    Ok((d, check_customers(r.customers, r.role)?))
}

/// Who approves requests for a role and how many distinct approvals are
/// needed. No named approvers: holders of `requests:approve`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub approvals_needed: usize,
    pub approvers: Vec<i64>,
}

impl Policy {
    pub const DEFAULT: Policy = Policy {
        approvals_needed: 1,
        approvers: Vec::new(),
    };
}

pub fn check_policy(p: &Policy) -> Result<Policy, ElevationError> {
    let mut approvers = p.approvers.clone();
    approvers.sort_unstable();
    approvers.dedup();
    if !(1..=2).contains(&p.approvals_needed) || approvers.len() > 20 || approvers.iter().any(|&a| a <= 0) {
        return Err(ElevationError::BadPolicy);
    }
    if !approvers.is_empty() && approvers.len() < p.approvals_needed {
        return Err(ElevationError::BadPolicy);
    }
    Ok(Policy {
        approvals_needed: p.approvals_needed,
        approvers,
    })
}

pub const BREAKGLASS_MAX: Millis = HOUR;

/// An engineer activating break-glass access for themselves: who may, and
/// for how long (default and at most 1 hour). The authenticator code is
/// checked by the caller.
pub fn check_breakglass(
    department: &str,
    duration: Option<Millis>,
    justification: &str,
) -> Result<Millis, ElevationError> {
    if department != "engineering" {
        return Err(ElevationError::NotAnEngineer);
    }
    let d = duration.unwrap_or(BREAKGLASS_MAX);
    if !(MIN_DURATION..=BREAKGLASS_MAX).contains(&d) {
        return Err(ElevationError::BreakglassDuration);
    }
    let j = justification.trim();
    if j.chars().count() < MIN_JUSTIFICATION || j.chars().count() > 1000 {
        return Err(ElevationError::Justification);
    }
    Ok(d)
}

/// The post-incident review of a break-glass activation: by a second
/// person, once.
pub fn check_review(
    kind: Kind,
    activator: i64,
    reviewer: i64,
    already_reviewed: bool,
    note: &str,
) -> Result<(), ElevationError> {
    if kind != Kind::Breakglass || already_reviewed {
        return Err(ElevationError::NotReviewable);
    }
    if activator == reviewer {
        return Err(ElevationError::OwnReview);
    }
    let n = note.trim().chars().count();
    if !(MIN_JUSTIFICATION..=2000).contains(&n) {
        return Err(ElevationError::ReviewNote);
    }
    Ok(())
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
    /// Named approvers (empty: holders of `requests:approve`).
    pub approvers: Vec<i64>,
    /// For an extension: when the extended elevation ends (the extension
    /// starts then, or at approval if that is later).
    pub extends_end: Option<Millis>,
    /// Set once approved: when the access starts and ends.
    pub window: Option<(Millis, Millis)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    Approve {
        by: i64,
        by_perms: PermissionSet,
    },
    Deny {
        by: i64,
        by_perms: PermissionSet,
        reason: String,
    },
    Cancel {
        by: i64,
    },
    Revoke {
        by: i64,
        by_perms: PermissionSet,
        reason: String,
    },
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

fn is_auditor(perms: PermissionSet) -> bool {
    perms.contains(Permission::AuditRead) || perms.contains(Permission::AuditExport)
}

/// Whether `by` may decide on this request: a named approver when the
/// policy names some, otherwise a holder of `requests:approve`; never an
/// auditor, never the requester (checked separately).
pub fn may_decide(r: &Request, by: i64, perms: PermissionSet) -> bool {
    if is_auditor(perms) {
        return false;
    }
    if r.approvers.is_empty() {
        perms.contains(Permission::RequestsApprove)
    } else {
        r.approvers.contains(&by)
    }
}

fn is_approver(perms: PermissionSet) -> bool {
    perms.contains(Permission::RequestsApprove) && !is_auditor(perms)
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
    let same = |s: State| Next {
        state: s,
        approvals: r.approvals.clone(),
        grant_window: None,
    };
    let invalid = || ElevationError::InvalidTransition(state.as_str());
    match t {
        Transition::Approve { by, by_perms } => {
            if state != State::Pending {
                return Err(invalid());
            }
            if by == r.requester {
                return Err(ElevationError::OwnRequest);
            }
            if !may_decide(r, by, by_perms) {
                return Err(ElevationError::NotAnApprover);
            }
            if r.approvals.contains(&by) {
                return Err(ElevationError::AlreadyApproved);
            }
            let mut approvals = r.approvals.clone();
            approvals.push(by);
            if approvals.len() < r.approvals_needed.max(1) {
                return Ok(Next {
                    state: State::Pending,
                    approvals,
                    grant_window: None,
                });
            }
            // Without a chosen start, the clock starts at approval; an
            // extension follows on from the elevation it extends.
            let start = r.extends_end.or(r.starts_at).map_or(now, |s| s.max(now));
            Ok(Next {
                state: State::Approved,
                approvals,
                grant_window: Some((start, start + r.duration)),
            })
        }
        Transition::Deny { by, by_perms, reason } => {
            if state != State::Pending {
                return Err(invalid());
            }
            if by == r.requester {
                return Err(ElevationError::OwnRequest);
            }
            if !may_decide(r, by, by_perms) {
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
        Transition::Revoke { by, by_perms, reason } => {
            if state != State::Approved {
                return Err(invalid());
            }
            if by == r.requester {
                return Err(ElevationError::OwnRequest);
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
        Request {
            requester: 7,
            state: State::Pending,
            requested_at: NOW,
            duration: HOUR,
            starts_at: None,
            approvals: vec![],
            approvals_needed: 1,
            approvers: vec![],
            extends_end: None,
            window: None,
        }
    }

    static ANY_TICKET: TicketRule = TicketRule { prefixes: Vec::new() };

    fn new<'a>(role: &'a RoleDef, justification: &'a str) -> NewRequest<'a> {
        NewRequest {
            role,
            duration: None,
            justification,
            ticket: "SUP-1234",
            starts_at: None,
            ticket_rule: &ANY_TICKET,
            customers: &[],
            extends: None,
        }
    }

    const WHY: &str = "customer 1042 asks to correct the delivery address";

    #[test]
    fn new_requests_are_checked() {
        let pii = role(SUPPORT_PII);
        assert_eq!(
            check_new(&new(&pii, WHY), NOW),
            Ok((HOUR, vec![])),
            "one hour by default"
        );
        assert_eq!(
            check_new(&new(&role(ENGINEER), WHY), NOW),
            Err(ElevationError::NotRequestable)
        );
        assert_eq!(
            check_new(&new(&pii, "because"), NOW),
            Err(ElevationError::Justification)
        );
        let mut r = new(&pii, WHY);
        r.duration = Some(8 * HOUR + 1);
        assert_eq!(check_new(&r, NOW), Err(ElevationError::BadDuration("8 hours".into())));
        r.duration = Some(8 * HOUR);
        assert_eq!(check_new(&r, NOW).map(|x| x.0), Ok(8 * HOUR));
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
        assert_eq!(
            apply(
                &r,
                Transition::Approve {
                    by: 7,
                    by_perms: approver()
                },
                NOW + 10
            ),
            Err(ElevationError::OwnRequest)
        );
        let auditor = PermissionSet::of(&[Permission::RequestsApprove, Permission::AuditRead]);
        assert_eq!(
            apply(
                &r,
                Transition::Approve {
                    by: 2,
                    by_perms: auditor
                },
                NOW
            ),
            Err(ElevationError::NotAnApprover)
        );
        assert_eq!(
            apply(
                &r,
                Transition::Approve {
                    by: 2,
                    by_perms: PermissionSet::EMPTY
                },
                NOW
            ),
            Err(ElevationError::NotAnApprover)
        );
        let next = apply(
            &r,
            Transition::Approve {
                by: 2,
                by_perms: approver(),
            },
            NOW + 10 * MINUTE,
        )
        .unwrap();
        assert_eq!(next.state, State::Approved);
        assert_eq!(
            next.grant_window,
            Some((NOW + 10 * MINUTE, NOW + 10 * MINUTE + HOUR)),
            "from approval, not request"
        );
        // A chosen start keeps it.
        let mut later = pending();
        later.starts_at = Some(NOW + 5 * HOUR);
        let next = apply(
            &later,
            Transition::Approve {
                by: 2,
                by_perms: approver(),
            },
            NOW,
        )
        .unwrap();
        assert_eq!(next.grant_window, Some((NOW + 5 * HOUR, NOW + 6 * HOUR)));
    }

    #[test]
    fn two_approvals_when_the_policy_says_so() {
        let mut r = pending();
        r.approvals_needed = 2;
        let first = apply(
            &r,
            Transition::Approve {
                by: 2,
                by_perms: approver(),
            },
            NOW,
        )
        .unwrap();
        assert_eq!((first.state, first.grant_window), (State::Pending, None));
        r.approvals = first.approvals;
        assert_eq!(
            apply(
                &r,
                Transition::Approve {
                    by: 2,
                    by_perms: approver()
                },
                NOW
            ),
            Err(ElevationError::AlreadyApproved)
        );
        let second = apply(
            &r,
            Transition::Approve {
                by: 3,
                by_perms: approver(),
            },
            NOW,
        )
        .unwrap();
        assert_eq!(second.state, State::Approved);
        assert_eq!(second.approvals, [2, 3]);
    }

    #[test]
    fn pending_requests_lapse_after_a_day() {
        let r = pending();
        assert_eq!(effective_state(&r, NOW + LAPSE_AFTER - 1), State::Pending);
        assert_eq!(effective_state(&r, NOW + LAPSE_AFTER), State::Lapsed);
        assert_eq!(
            apply(
                &r,
                Transition::Approve {
                    by: 2,
                    by_perms: approver()
                },
                NOW + LAPSE_AFTER
            ),
            Err(ElevationError::InvalidTransition("lapsed"))
        );
        assert_eq!(
            apply(&r, Transition::Lapse, NOW + LAPSE_AFTER).unwrap().state,
            State::Lapsed
        );
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
        assert_eq!(
            apply(
                &r,
                Transition::Revoke {
                    by: 2,
                    by_perms: approver(),
                    reason: "done".into()
                },
                NOW + HOUR
            ),
            Err(ElevationError::InvalidTransition("expired"))
        );
    }

    #[test]
    fn deny_cancel_and_revoke() {
        let r = pending();
        assert_eq!(
            apply(
                &r,
                Transition::Deny {
                    by: 2,
                    by_perms: approver(),
                    reason: " ".into()
                },
                NOW
            ),
            Err(ElevationError::Reason)
        );
        assert_eq!(
            apply(
                &r,
                Transition::Deny {
                    by: 2,
                    by_perms: approver(),
                    reason: "use the redacted view".into()
                },
                NOW
            )
            .unwrap()
            .state,
            State::Denied
        );
        assert_eq!(
            apply(&r, Transition::Cancel { by: 2 }, NOW),
            Err(ElevationError::InvalidTransition("pending")),
            "only the requester cancels"
        );
        assert_eq!(
            apply(&r, Transition::Cancel { by: 7 }, NOW).unwrap().state,
            State::Cancelled
        );
        let mut active = pending();
        active.state = State::Approved;
        active.window = Some((NOW - 1, NOW + HOUR));
        assert!(
            apply(&active, Transition::Cancel { by: 7 }, NOW).is_err(),
            "started: revoke, not cancel"
        );
        assert_eq!(
            apply(
                &active,
                Transition::Revoke {
                    by: 2,
                    by_perms: approver(),
                    reason: "ticket closed".into()
                },
                NOW
            )
            .unwrap()
            .state,
            State::Revoked
        );
        let mut denied = pending();
        denied.state = State::Denied;
        for t in [
            Transition::Approve {
                by: 2,
                by_perms: approver(),
            },
            Transition::Cancel { by: 7 },
            Transition::Expire,
            Transition::Lapse,
        ] {
            assert_eq!(apply(&denied, t, NOW), Err(ElevationError::InvalidTransition("denied")));
        }
    }

    #[test]
    fn ticket_format_is_configurable() {
        let rule = TicketRule::parse("SUP, INC ,SUP").unwrap();
        assert_eq!(rule.prefixes, ["SUP", "INC"]);
        assert!(rule.accepts("SUP-1") && rule.accepts("INC-2026001"));
        assert!(!rule.accepts("OPS-7"), "a prefix not on the list");
        assert_eq!(rule.example(), "SUP-1234 or INC-1234");
        assert!(TicketRule::parse("sup").is_err());
        assert!(TicketRule::parse("S").is_err());
        assert_eq!(TicketRule::parse("").unwrap(), TicketRule::default());
        let pii = role(SUPPORT_PII);
        let mut r = new(&pii, WHY);
        r.ticket_rule = &rule;
        r.ticket = "OPS-7";
        assert_eq!(
            check_new(&r, NOW),
            Err(ElevationError::TicketFormat("SUP-1234 or INC-1234".into()))
        );
        r.ticket = "INC-7";
        assert!(check_new(&r, NOW).is_ok());
    }

    #[test]
    fn customer_scope_is_checked_and_normalised() {
        let pii = role(SUPPORT_PII);
        let list: Vec<String> = vec![" 1042 ".into(), "1042".into(), "".into(), "cust-9".into()];
        let mut r = new(&pii, WHY);
        r.customers = &list;
        assert_eq!(
            check_new(&r, NOW),
            Ok((HOUR, vec!["1042".to_string(), "cust-9".to_string()]))
        );
        let too_many: Vec<String> = (0..21).map(|i| i.to_string()).collect();
        r.customers = &too_many;
        assert_eq!(check_new(&r, NOW), Err(ElevationError::Customers));
        let control = vec!["10\n42".to_string()];
        r.customers = &control;
        assert_eq!(check_new(&r, NOW), Err(ElevationError::Customers));
        let long = vec!["x".repeat(129)];
        r.customers = &long;
        assert_eq!(check_new(&r, NOW), Err(ElevationError::Customers));
        let prod = role(crate::domain::roles::PROD_DB_WRITE);
        let one = vec!["1042".to_string()];
        let mut r = new(&prod, WHY);
        r.customers = &one;
        assert_eq!(
            check_new(&r, NOW),
            Err(ElevationError::ScopeNotApplicable),
            "production access has no customer to limit to"
        );
    }

    fn active(requester: i64) -> ExtendTarget {
        let mut req = pending();
        req.requester = requester;
        req.state = State::Approved;
        req.window = Some((NOW - 30 * MINUTE, NOW + 30 * MINUTE));
        ExtendTarget {
            kind: Kind::Request,
            role: SUPPORT_PII.into(),
            request: req,
            already_extended: false,
        }
    }

    #[test]
    fn an_active_elevation_is_extended_once_through_approval() {
        let pii = role(SUPPORT_PII);
        let target = active(7);
        let mut r = new(&pii, WHY);
        r.extends = Some((&target, 7));
        assert!(check_new(&r, NOW).is_ok());
        r.extends = Some((&target, 8));
        assert_eq!(
            check_new(&r, NOW),
            Err(ElevationError::NotExtendable),
            "someone else's elevation"
        );
        let extended = ExtendTarget {
            already_extended: true,
            ..active(7)
        };
        r.extends = Some((&extended, 7));
        assert_eq!(check_new(&r, NOW), Err(ElevationError::NotExtendable), "only once");
        r.extends = Some((&target, 7));
        assert_eq!(
            check_new(&r, NOW + 30 * MINUTE),
            Err(ElevationError::NotExtendable),
            "ended at its instant"
        );
        let glass = ExtendTarget {
            kind: Kind::Breakglass,
            ..active(7)
        };
        r.extends = Some((&glass, 7));
        assert_eq!(check_new(&r, NOW), Err(ElevationError::NotExtendable));
        let other_role = ExtendTarget {
            role: "prod-db-write".into(),
            ..active(7)
        };
        r.extends = Some((&other_role, 7));
        assert_eq!(check_new(&r, NOW), Err(ElevationError::NotExtendable));
        r.extends = Some((&target, 7));
        r.starts_at = Some(NOW + HOUR);
        assert_eq!(check_new(&r, NOW), Err(ElevationError::ExtensionStart));

        // Approved in time: it follows on without a gap. Approved late: from approval.
        let mut ext = pending();
        ext.extends_end = Some(NOW + 30 * MINUTE);
        let next = apply(
            &ext,
            Transition::Approve {
                by: 2,
                by_perms: approver(),
            },
            NOW,
        )
        .unwrap();
        assert_eq!(next.grant_window, Some((NOW + 30 * MINUTE, NOW + 90 * MINUTE)));
        let next = apply(
            &ext,
            Transition::Approve {
                by: 2,
                by_perms: approver(),
            },
            NOW + HOUR,
        )
        .unwrap();
        assert_eq!(next.grant_window, Some((NOW + HOUR, NOW + 2 * HOUR)));
    }

    #[test]
    fn named_approvers_replace_the_permission() {
        let mut r = pending();
        r.approvers = vec![5, 6];
        r.approvals_needed = 2;
        let plain = PermissionSet::EMPTY;
        assert_eq!(
            apply(
                &r,
                Transition::Approve {
                    by: 2,
                    by_perms: approver()
                },
                NOW
            ),
            Err(ElevationError::NotAnApprover),
            "an administrator not on the list"
        );
        let first = apply(&r, Transition::Approve { by: 5, by_perms: plain }, NOW).unwrap();
        assert_eq!(first.state, State::Pending, "two approvals needed");
        r.approvals = first.approvals;
        let auditor = PermissionSet::of(&[Permission::AuditRead]);
        assert_eq!(
            apply(
                &r,
                Transition::Approve {
                    by: 6,
                    by_perms: auditor
                },
                NOW
            ),
            Err(ElevationError::NotAnApprover),
            "never an auditor"
        );
        assert_eq!(
            apply(&r, Transition::Approve { by: 6, by_perms: plain }, NOW)
                .unwrap()
                .state,
            State::Approved
        );
        r.requester = 5;
        r.approvals = vec![];
        assert_eq!(
            apply(&r, Transition::Approve { by: 5, by_perms: plain }, NOW),
            Err(ElevationError::OwnRequest),
            "named, but the requester"
        );
        assert_eq!(
            apply(
                &r,
                Transition::Deny {
                    by: 6,
                    by_perms: plain,
                    reason: "not needed".into()
                },
                NOW
            )
            .unwrap()
            .state,
            State::Denied
        );
    }

    #[test]
    fn policies_are_checked() {
        assert_eq!(
            check_policy(&Policy {
                approvals_needed: 2,
                approvers: vec![]
            }),
            Ok(Policy {
                approvals_needed: 2,
                approvers: vec![]
            })
        );
        assert_eq!(
            check_policy(&Policy {
                approvals_needed: 1,
                approvers: vec![4, 3, 4]
            })
            .unwrap()
            .approvers,
            [3, 4]
        );
        for bad in [
            Policy {
                approvals_needed: 0,
                approvers: vec![],
            },
            Policy {
                approvals_needed: 3,
                approvers: vec![],
            },
            Policy {
                approvals_needed: 2,
                approvers: vec![3],
            },
            Policy {
                approvals_needed: 1,
                approvers: vec![0],
            },
            Policy {
                approvals_needed: 1,
                approvers: (1..=21).collect(),
            },
        ] {
            assert_eq!(check_policy(&bad), Err(ElevationError::BadPolicy), "{bad:?}");
        }
    }

    #[test]
    fn break_glass_is_for_engineers_for_at_most_an_hour() {
        assert_eq!(check_breakglass("engineering", None, WHY), Ok(HOUR));
        assert_eq!(check_breakglass("engineering", Some(20 * MINUTE), WHY), Ok(20 * MINUTE));
        assert_eq!(
            check_breakglass("engineering", Some(HOUR + 1), WHY),
            Err(ElevationError::BreakglassDuration)
        );
        assert_eq!(
            check_breakglass("engineering", Some(MINUTE), WHY),
            Err(ElevationError::BreakglassDuration)
        );
        assert_eq!(
            check_breakglass("support", None, WHY),
            Err(ElevationError::NotAnEngineer)
        );
        assert_eq!(
            check_breakglass("engineering", None, "prod down"),
            Err(ElevationError::Justification)
        );
    }

    #[test]
    fn break_glass_is_reviewed_once_by_someone_else() {
        let note = "root cause: expired TLS certificate; access used for 12 minutes";
        assert_eq!(check_review(Kind::Breakglass, 7, 2, false, note), Ok(()));
        assert_eq!(
            check_review(Kind::Breakglass, 7, 7, false, note),
            Err(ElevationError::OwnReview)
        );
        assert_eq!(
            check_review(Kind::Breakglass, 7, 2, true, note),
            Err(ElevationError::NotReviewable)
        );
        assert_eq!(
            check_review(Kind::Request, 7, 2, false, note),
            Err(ElevationError::NotReviewable)
        );
        assert_eq!(
            check_review(Kind::Breakglass, 7, 2, false, "ok"),
            Err(ElevationError::ReviewNote)
        );
    }
}
