//! Roles, permissions, grants and service accounts.

use super::*;
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
    /// The role owners who review its grants in access reviews (empty:
    /// administrators do).
    #[serde(default)]
    pub reviewers: Vec<String>,
}

/// A change to a role that waits for a second administrator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleChangeView {
    pub id: i64,
    pub role: String,
    pub role_name: String,
    /// Permission identifiers the change adds and removes.
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub proposed_by: String,
    pub proposed_at: String,
    /// The viewer proposed it (may withdraw, not approve).
    pub mine: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogueView {
    pub permissions: Vec<PermissionInfo>,
    pub roles: Vec<RoleInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantInfo {
    pub id: i64,
    pub user_id: i64,
    pub user_name: String,
    pub role: String,
    pub role_name: String,
    pub state: GrantState,
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

/// A role's approval policy, for the administrator's page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyView {
    pub role: String,
    pub role_name: String,
    pub approvals_needed: usize,
    /// Named approvers' emails (empty: holders of requests:approve).
    pub approvers: Vec<String>,
}
