//! Elevation requests, break-glass, and what was done under them.

use super::*;
use serde::{Deserialize, Serialize};

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
    pub state: RequestState,
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
    pub kind: ElevationKind,
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
    pub outcome: Outcome,
    pub customer_id: Option<String>,
    /// What was touched or asked: permission, fields, record types.
    pub what: String,
    pub source: Option<String>,
    pub grant_id: i64,
}
