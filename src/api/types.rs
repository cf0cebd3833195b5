//! What the access-management screens receive from the server.

use super::ActivityItem;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionInfo {
    pub id: String,
    pub description: String,
    pub sensitivity: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleInfo {
    pub key: String,
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
    /// "8 hours", or None for a standing role.
    pub max_duration: Option<String>,
    /// The same as a form value ("8h").
    pub max_duration_input: String,
    pub requestable: bool,
    pub builtin: bool,
    pub critical: bool,
    /// Employees holding it now (active or pending grants).
    pub holders: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogueView {
    pub permissions: Vec<PermissionInfo>,
    pub roles: Vec<RoleInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmployeeRow {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub department: String,
    pub status: String,
    /// Names of the roles active now.
    pub roles: Vec<String>,
    pub mfa: bool,
    pub offboard_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantInfo {
    pub id: i64,
    pub user_id: i64,
    pub user_name: String,
    pub role: String,
    pub role_name: String,
    /// active, pending, scheduled, expired or revoked.
    pub state: String,
    pub critical: bool,
    pub granted_by: Option<String>,
    pub reason: String,
    pub starts_at: String,
    pub expires_at: Option<String>,
    pub approved_by: Option<String>,
    pub revoked_by: Option<String>,
    pub revoked_at: Option<String>,
    pub revoke_reason: Option<String>,
    /// Only for these customers (empty: every customer).
    #[serde(default)]
    pub customers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionSource {
    pub id: String,
    pub description: String,
    pub sensitivity: String,
    /// "Customer support (grant 12, until 2026-…)".
    pub sources: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub tag: String,
    pub started: String,
    pub last_seen: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecklistEntry {
    pub item: String,
    pub label: String,
    pub done_by: Option<String>,
    pub done_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmployeeDetail {
    pub employee: EmployeeRow,
    pub status_reason: Option<String>,
    pub grants: Vec<GrantInfo>,
    pub permissions: Vec<PermissionSource>,
    pub sessions: Vec<SessionInfo>,
    pub activity: Vec<ActivityItem>,
    pub checklist: Vec<ChecklistEntry>,
    pub invitation_expires_at: Option<String>,
    pub offboarded_at: Option<String>,
    pub offboarded_by: Option<String>,
    pub is_self: bool,
    /// The viewer entered an authenticator code in the last 5 minutes.
    pub step_up_fresh: bool,
    /// Roles that can be granted (for the grant form).
    pub roles: Vec<RoleInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invited {
    pub user_id: i64,
    pub link: String,
    pub expires_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DashboardView {
    pub employees: i64,
    pub without_mfa: i64,
    pub critical_standing: i64,
    pub expiring_soon: i64,
    pub admins: i64,
    pub offboarding: i64,
    pub suspended: i64,
    pub pending_approvals: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffboardingRow {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub status: String,
    pub offboard_at: Option<String>,
    pub offboarded_at: Option<String>,
    pub offboarded_by: Option<String>,
    pub checklist: Vec<ChecklistEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationInfo {
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MyAccessView {
    pub permissions: Vec<PermissionSource>,
    pub grants: Vec<GrantInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenView {
    pub id: i64,
    pub label: String,
    pub created: String,
    pub created_by: Option<String>,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
    pub usable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccountView {
    pub id: i64,
    pub name: String,
    pub scopes: Vec<String>,
    pub created: String,
    pub created_by: Option<String>,
    pub tokens: Vec<TokenView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewToken {
    /// The token itself: shown once, never stored.
    pub token: String,
    pub expires_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEventView {
    pub seq: i64,
    pub at: String,
    /// The employee (name and email), the service, or "system".
    pub actor: String,
    pub actor_ip: Option<String>,
    pub actor_session: Option<String>,
    pub actor_agent: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub customer_id: Option<String>,
    pub outcome: String,
    pub reason: Option<String>,
    /// Pretty-printed JSON.
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub events: Vec<AuditEventView>,
    /// Pass as `before` for the next (older) page.
    pub next_before: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyView {
    pub ok: bool,
    pub checked: u64,
    pub head_seq: i64,
    pub message: String,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElevationView {
    pub id: i64,
    pub requester: String,
    pub requester_id: i64,
    pub role: String,
    pub role_name: String,
    pub duration: String,
    pub justification: String,
    pub ticket: String,
    pub state: String,
    pub requested_at: String,
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
    /// Milliseconds until the access ends, while it is active (for the countdown).
    pub ends_in_ms: Option<i64>,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
    pub grant_id: Option<i64>,
    /// The requester's roles now (for approvers).
    pub requester_roles: Vec<String>,
    /// "request" or "breakglass".
    pub kind: String,
    /// Only for these customers (empty: every customer).
    pub customers: Vec<String>,
    /// The elevation this one extends.
    pub extends: Option<i64>,
    /// The requester may ask to extend it now (active, not extended yet).
    pub extendable: bool,
    pub approvals: usize,
    pub approvals_needed: usize,
    /// Named approvers (empty: holders of requests:approve).
    pub approvers: Vec<String>,
    /// The viewer may approve or deny it.
    pub can_decide: bool,
    /// A break-glass activation still waiting for its post-incident review.
    pub needs_review: bool,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<String>,
    pub review_note: Option<String>,
    /// The requester's recent elevations (for approvers): "Role, state, ticket, date".
    pub recent: Vec<String>,
}

/// Everything done under one elevation (the ticket view).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketView {
    pub elevation: ElevationView,
    /// Audit events naming its grant (and its extension's): checks,
    /// reported accesses, the grant's own life. Oldest first.
    pub events: Vec<TicketEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketEvent {
    pub seq: i64,
    pub at: String,
    pub action: String,
    pub outcome: String,
    pub customer_id: Option<String>,
    /// What was touched or asked: permission, fields, record types.
    pub what: String,
    pub source: Option<String>,
    pub grant_id: i64,
}

/// An in-app notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationView {
    pub id: i64,
    pub subject: String,
    /// A page of Gatehouse, e.g. /requests.
    pub link: String,
    pub at: String,
    pub unread: bool,
}

/// A role's approval policy, for the administrator's page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyView {
    pub role: String,
    pub role_name: String,
    pub approvals_needed: usize,
    /// Named approvers' emails (empty: holders of requests:approve).
    pub approvers: Vec<String>,
}

/// A signed checkpoint as the integrity panel shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointView {
    pub number: i64,
    pub tree_size: i64,
    pub root: String,
    pub at: String,
    pub key_id: String,
}

/// One access to customer data in an auditor report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRowView {
    pub seq: i64,
    pub at: String,
    pub employee: String,
    pub what: String,
    pub customer_id: Option<String>,
    pub purpose: Option<String>,
    pub grant: Option<String>,
    pub decision: String,
    pub source: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportPage {
    pub rows: Vec<ReportRowView>,
    pub next_before: Option<i64>,
}

/// An anomaly alert, for administrators and auditors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertView {
    pub id: i64,
    pub rule: String,
    pub employee: Option<String>,
    pub event_seq: i64,
    pub summary: String,
    pub raised_at: String,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<String>,
    pub comment: Option<String>,
}
