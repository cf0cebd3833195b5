//! The employee directory, an employee's page, onboarding and offboarding.

use super::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmployeeRow {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub department: String,
    pub status: EmployeeStatus,
    /// Names of the roles active now.
    pub roles: Vec<String>,
    pub mfa: bool,
    pub offboard_at: Option<String>,
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
    /// Created by SCIM or linked to single sign-on: signs in through the
    /// company's identity provider, never through an invitation link.
    pub managed_by_provider: bool,
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
    /// Shown once; None when the link went to the invitee by email.
    pub link: Option<String>,
    /// The address the link was sent to (GATEHOUSE_INVITATIONS_BY_EMAIL).
    pub emailed_to: Option<String>,
    pub expires_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DashboardView {
    /// Administrators must use a passkey (GATEHOUSE_REQUIRE_PASSKEY).
    pub passkeys_required: bool,
    /// Administrators without the passkey their access requires (id, name).
    pub lacking_passkey: Vec<(i64, String)>,
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
    pub status: EmployeeStatus,
    pub offboard_at: Option<String>,
    pub offboarded_at: Option<String>,
    pub offboarded_by: Option<String>,
    pub checklist: Vec<ChecklistEntry>,
    /// API tokens the employee created (revoked at offboarding unless
    /// GATEHOUSE_OFFBOARD_REVOKE_TOKENS is false).
    pub tokens: Vec<CreatedToken>,
}

/// An API token, by the service account it belongs to, that an employee created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedToken {
    pub id: i64,
    pub account: String,
    pub label: String,
    pub usable: bool,
    pub revoked_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationInfo {
    pub name: String,
    pub email: String,
}
