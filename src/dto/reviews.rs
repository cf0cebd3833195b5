//! Access reviews: campaigns, their progress, and the items reviewers decide.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignView {
    pub id: i64,
    pub name: String,
    /// The scope as people read it ("all standing grants", "roles: support").
    pub scope: String,
    pub starts_at: String,
    pub due_at: String,
    pub closed_at: Option<String>,
    /// Closed early by this administrator (none: by the deadline).
    pub closed_by: Option<String>,
    pub every_months: Option<u32>,
    pub undecided_critical: String,
    pub undecided_other: String,
    pub items: i64,
    pub decided: i64,
    /// Decided out of assigned, per reviewer (name, decided, total).
    pub by_reviewer: Vec<(String, i64, i64)>,
    pub report_sha256: Option<String>,
}

/// One item as a reviewer (or the campaign page) sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewItemView {
    pub id: i64,
    pub campaign_id: i64,
    pub campaign: String,
    pub due_at: String,
    pub kind: String,
    pub holder: String,
    pub holder_id: Option<i64>,
    pub role: String,
    pub permissions: Vec<String>,
    pub critical: bool,
    pub granted_at: String,
    pub granted_by: Option<String>,
    pub reason: String,
    pub expires_at: Option<String>,
    pub last_sign_in: Option<String>,
    pub last_used: Option<String>,
    /// Neither signed in nor used under the grant for 30 days.
    pub unused_30_days: bool,
    pub reviewers: String,
    pub decision: Option<String>,
    pub convert_until: Option<String>,
    pub decided_by: Option<String>,
    pub comment: Option<String>,
    pub outcome: Option<String>,
    pub flags: Option<String>,
}

/// An employee who may be given review items: active, and not an auditor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewerChoice {
    pub id: i64,
    pub name: String,
    pub email: String,
}

/// One campaign with its items and, for administrators of an open
/// campaign, who its items can be reassigned to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignDetail {
    pub campaign: CampaignView,
    pub items: Vec<ReviewItemView>,
    pub reassign_to: Vec<ReviewerChoice>,
}

/// A role and the employees who review its grants (none: administrators).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleOwnersView {
    pub role: String,
    pub name: String,
    pub owners: Vec<ReviewerChoice>,
}

/// What the role owners form offers: every role with its owners, and who
/// may own one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewSetupView {
    pub roles: Vec<RoleOwnersView>,
    pub people: Vec<ReviewerChoice>,
}
