//! What a signed-in employee sees of their own account.

use super::*;
use crate::domain::permissions::Permission;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub name: String,
    pub email: String,
    pub roles: Vec<String>,
    /// Permissions held now (what the navigation offers; the server checks
    /// every call on its own).
    pub permissions: Vec<Permission>,
    pub recovery_codes_left: i64,
    pub department: String,
    /// Named as an approver in some role's approval policy.
    #[serde(default)]
    pub named_approver: bool,
    /// Unread in-app notifications (the badge).
    #[serde(default)]
    pub unread: i64,
}

impl Profile {
    pub fn can(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityItem {
    pub seq: i64,
    pub when: String,
    pub what: String,
    pub outcome: Outcome,
    pub ip: String,
    pub device: String,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolmentView {
    pub key: String,
    pub uri: String,
    pub qr_svg: String,
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MyAccessView {
    pub permissions: Vec<PermissionSource>,
    pub grants: Vec<GrantInfo>,
}

/// One of the signed-in employee's passkeys, on `/security`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyView {
    pub id: i64,
    pub name: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

/// What the sign-in and security pages offer about passkeys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyInfo {
    /// Passkeys work on this server (its public URL is a domain name).
    pub on: bool,
    /// The employee of this session (signed in, or at the second step of
    /// sign-in) has at least one.
    pub registered: bool,
    /// Their access requires one (`GATEHOUSE_REQUIRE_PASSKEY`).
    pub required: bool,
}
