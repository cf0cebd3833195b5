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
mod tests;
