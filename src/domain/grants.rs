//! Grants and the rules around them: who may give which role to whom, for
//! how long, what an employee can therefore do, and when the last
//! administrator must stay.

use super::{
    permissions::{Permission, PermissionSet},
    roles::{self, RoleDef},
    Millis,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Invited,
    Active,
    Suspended,
    Offboarded,
}

impl Status {
    pub const ALL: [Status; 4] = [Status::Invited, Status::Active, Status::Suspended, Status::Offboarded];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Invited => "invited",
            Status::Active => "active",
            Status::Suspended => "suspended",
            Status::Offboarded => "offboarded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Where a grant stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantState {
    /// Counts now.
    Active,
    /// Waits for a second administrator.
    Pending,
    /// Starts later.
    Scheduled,
    Expired,
    Revoked,
}

impl GrantState {
    /// Where `g` stands at `now`.
    pub fn of(g: &Grant, now: Millis) -> Self {
        if g.revoked_at.is_some() {
            GrantState::Revoked
        } else if g.expires_at.is_some_and(|e| e <= now) {
            GrantState::Expired
        } else if g.pending {
            GrantState::Pending
        } else if g.starts_at > now {
            GrantState::Scheduled
        } else {
            GrantState::Active
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GrantState::Active => "active",
            GrantState::Pending => "pending",
            GrantState::Scheduled => "scheduled",
            GrantState::Expired => "expired",
            GrantState::Revoked => "revoked",
        }
    }

    /// Not ended: active, pending or scheduled.
    pub fn is_open(self) -> bool {
        matches!(self, GrantState::Active | GrantState::Pending | GrantState::Scheduled)
    }
}

pub const DEPARTMENTS: [&str; 5] = ["engineering", "support", "sales", "administration", "audit"];

/// A grant as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: i64,
    pub user_id: i64,
    pub role: String,
    pub starts_at: Millis,
    pub expires_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
    /// Waiting for a second administrator's approval.
    pub pending: bool,
    /// Limited to these customers (an elevation for one case); `None`
    /// means every customer. A scoped grant counts only in a check that
    /// names one of its customers, never for a page or server function.
    pub customers: Option<Vec<String>>,
}

impl Grant {
    /// Counts from its start until its expiry instant (exclusive) or
    /// revocation, whether or not a background job has caught up.
    pub fn is_active(&self, now: Millis) -> bool {
        !self.pending && self.revoked_at.is_none() && self.starts_at <= now && self.expires_at.is_none_or(|e| now < e)
    }

    /// Whether it may answer a check about `customer` (`None`: a check
    /// naming no customer, which a scoped grant never answers).
    pub fn covers(&self, customer: Option<&str>) -> bool {
        match (&self.customers, customer) {
            (None, _) => true,
            (Some(list), Some(c)) => list.iter().any(|x| x == c),
            (Some(_), None) => false,
        }
    }

    /// Not yet decided or still to come: active, pending, or starting later.
    pub fn is_open(&self, now: Millis) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

/// Where a permission comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub grant_id: i64,
    pub role: String,
    pub role_name: String,
    pub expires_at: Option<Millis>,
    /// Only for these customers.
    #[serde(default)]
    pub customers: Option<Vec<String>>,
}

/// Effective permissions of one employee at `now`, each with the grants it
/// comes from. An employee who is not active has none.
pub fn effective(status: Status, grants: &[Grant], roles: &[RoleDef], now: Millis) -> Vec<(Permission, Vec<Source>)> {
    if status != Status::Active {
        return Vec::new();
    }
    let mut out: Vec<(Permission, Vec<Source>)> = Vec::new();
    for g in grants.iter().filter(|g| g.is_active(now)) {
        let Some(role) = roles.iter().find(|r| r.key == g.role) else {
            continue;
        };
        for p in role.permissions.iter() {
            let src = Source {
                grant_id: g.id,
                role: role.key.clone(),
                role_name: role.name.clone(),
                expires_at: g.expires_at,
                customers: g.customers.clone(),
            };
            match out.iter_mut().find(|(q, _)| *q == p) {
                Some((_, v)) => v.push(src),
                None => out.push((p, vec![src])),
            }
        }
    }
    out.sort_by_key(|(p, _)| *p);
    for (_, sources) in &mut out {
        sources.sort_by_key(|s| s.grant_id);
    }
    out
}

/// The union of permissions of the active grants that hold for every
/// customer (the fast path of a server function's check; customer-scoped
/// grants count only in an access check naming their customer).
pub fn permission_set(status: Status, grants: &[Grant], roles: &[RoleDef], now: Millis) -> PermissionSet {
    if status != Status::Active {
        return PermissionSet::EMPTY;
    }
    grants
        .iter()
        .filter(|g| g.is_active(now) && g.customers.is_none())
        .filter_map(|g| roles.iter().find(|r| r.key == g.role))
        .fold(PermissionSet::EMPTY, |acc, r| acc.union(r.permissions))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("You cannot change your own access; ask another administrator.")]
    OwnAccess,
    #[error("Access cannot be granted to an employee who is {0}.")]
    NotGrantable(&'static str),
    #[error("Separation of duties: one person cannot both manage access and audit it (administrator and auditor are exclusive).")]
    SeparationOfDuties,
    #[error("The role \"{0}\" needs an expiry: it may be granted for at most {1}.")]
    ExpiryRequired(String, String),
    #[error("The role \"{0}\" may be granted for at most {1}.")]
    TooLong(String, String),
    #[error("The expiry must be in the future.")]
    ExpiryInPast,
    #[error("A reason is required (at most 1000 characters).")]
    ReasonRequired,
    #[error("{0} already holds this role.")]
    AlreadyHeld(String),
    #[error("This is the last active administrator; make someone else an administrator first.")]
    LastAdmin,
    #[error("A grant needs a second administrator's approval; the one who asked for it cannot approve it.")]
    SameApprover,
    #[error("This grant is not waiting for approval.")]
    NotPending,
    #[error("This grant has already ended.")]
    AlreadyEnded,
    #[error("Write the duration as a number and a unit, such as 30m, 8h or 14d.")]
    BadDuration,
}

/// Parses a duration such as `30m`, `8h` or `14d`; empty means none.
pub fn parse_duration(input: &str) -> Result<Option<Millis>, RuleError> {
    let s = input.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if s.len() > 8 {
        return Err(RuleError::BadDuration);
    }
    let (num, unit) = s.split_at(s.len() - 1);
    let n: i64 = num.trim().parse().map_err(|_| RuleError::BadDuration)?;
    let unit_ms = match unit {
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(RuleError::BadDuration),
    };
    if n <= 0 || n > 3660 {
        return Err(RuleError::BadDuration);
    }
    Ok(Some(n * unit_ms))
}

pub fn describe_duration(ms: Millis) -> String {
    let minutes = ms / 60_000;
    match minutes {
        m if m % (24 * 60) == 0 => plural(m / (24 * 60), "day"),
        m if m % 60 == 0 => plural(m / 60, "hour"),
        m => plural(m, "minute"),
    }
}

fn plural(n: i64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

pub fn check_reason(reason: &str) -> Result<String, RuleError> {
    let r = reason.trim();
    if r.is_empty() || r.chars().count() > 1000 || r.chars().any(|c| c.is_control() && c != '\n') {
        return Err(RuleError::ReasonRequired);
    }
    Ok(r.to_owned())
}

/// What the grant rules need to know.
pub struct GrantCheck<'a> {
    pub actor_id: i64,
    pub grantee_id: i64,
    pub grantee_name: &'a str,
    pub grantee_status: Status,
    /// The grantee's active and pending grants.
    pub grantee_grants: &'a [Grant],
    pub role: &'a RoleDef,
    pub roles: &'a [RoleDef],
    pub expires_at: Option<Millis>,
    /// Active administrators (active employees holding administrator power:
    /// `employees:manage` or `access:grant`, through any role).
    pub active_admins: usize,
    pub now: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantOutcome {
    /// The grant takes effect now.
    Active,
    /// The grant waits for a second administrator (administrator power or
    /// an audit permission, while two or more administrators exist).
    NeedsSecondAdmin,
}

pub fn check_grant(c: &GrantCheck<'_>) -> Result<GrantOutcome, RuleError> {
    if c.actor_id == c.grantee_id {
        return Err(RuleError::OwnAccess);
    }
    match c.grantee_status {
        Status::Suspended | Status::Offboarded => return Err(RuleError::NotGrantable(c.grantee_status.as_str())),
        Status::Invited | Status::Active => {}
    }
    if let Some(e) = c.expires_at {
        if e <= c.now {
            return Err(RuleError::ExpiryInPast);
        }
    }
    if let Some(max) = c.role.max_duration {
        match c.expires_at {
            None => return Err(RuleError::ExpiryRequired(c.role.name.clone(), describe_duration(max))),
            Some(e) if e - c.now > max => return Err(RuleError::TooLong(c.role.name.clone(), describe_duration(max))),
            Some(_) => {}
        }
    }
    let open: Vec<&Grant> = c.grantee_grants.iter().filter(|g| g.is_open(c.now)).collect();
    if open.iter().any(|g| g.role == c.role.key) {
        return Err(RuleError::AlreadyHeld(c.grantee_name.to_owned()));
    }
    let held = open
        .iter()
        .filter_map(|g| c.roles.iter().find(|r| r.key == g.role))
        .fold(PermissionSet::EMPTY, |acc, r| acc.union(r.permissions));
    if roles::conflicts(held.union(c.role.permissions)) {
        return Err(RuleError::SeparationOfDuties);
    }
    if roles::needs_four_eyes(c.role.permissions) && c.active_admins >= 2 {
        return Ok(GrantOutcome::NeedsSecondAdmin);
    }
    Ok(GrantOutcome::Active)
}

/// A second administrator approves a pending grant. The grant rules are
/// checked again by the caller at approval time.
pub fn check_approval(
    approver_id: i64,
    requested_by: Option<i64>,
    grant: &Grant,
    now: Millis,
) -> Result<(), RuleError> {
    if !grant.pending {
        return Err(RuleError::NotPending);
    }
    if !grant.is_open(now) {
        return Err(RuleError::AlreadyEnded);
    }
    if approver_id == grant.user_id {
        return Err(RuleError::OwnAccess);
    }
    if requested_by == Some(approver_id) {
        return Err(RuleError::SameApprover);
    }
    Ok(())
}

/// Is `user_id` the only active administrator left?
pub fn is_last_admin(user_id: i64, user_is_active_admin: bool, active_admins: usize) -> bool {
    user_is_active_admin && active_admins <= 1 && user_id > 0
}

/// Revoking a grant. `removes_admin_power`: the grantee holds administrator
/// power through this grant and no other.
pub fn check_revoke(
    actor_id: i64,
    grant: &Grant,
    removes_admin_power: bool,
    active_admins: usize,
    now: Millis,
) -> Result<(), RuleError> {
    if actor_id == grant.user_id {
        return Err(RuleError::OwnAccess);
    }
    if !grant.is_open(now) {
        return Err(RuleError::AlreadyEnded);
    }
    if removes_admin_power && grant.is_active(now) && is_last_admin(grant.user_id, true, active_admins) {
        return Err(RuleError::LastAdmin);
    }
    Ok(())
}

/// Suspending or offboarding someone.
pub fn check_deactivate(
    actor_id: i64,
    user_id: i64,
    user_is_active_admin: bool,
    active_admins: usize,
) -> Result<(), RuleError> {
    if actor_id == user_id {
        return Err(RuleError::OwnAccess);
    }
    if is_last_admin(user_id, user_is_active_admin, active_admins) {
        return Err(RuleError::LastAdmin);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
