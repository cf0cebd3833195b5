//! The audit console: events, integrity, reports and alerts.

use super::*;
use serde::{Deserialize, Serialize};

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
    pub outcome: Outcome,
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

/// A signed checkpoint as the integrity panel shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointView {
    pub number: i64,
    pub tree_size: i64,
    pub root: String,
    pub at: String,
    pub key_id: String,
    /// Names of the active witnesses that co-signed it.
    pub cosigned_by: Vec<String>,
    /// Co-signatures a checkpoint needs to be final (0: none asked).
    pub quorum: u32,
    /// The newest checkpoint with a quorum of co-signatures.
    pub last_final: Option<i64>,
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
    /// Matches while it was open (1 when raised).
    pub count: i64,
    /// When the latest match happened, and its event.
    pub last_seen_at: String,
    pub last_event_seq: i64,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<String>,
    pub comment: Option<String>,
}

/// Where one SIEM sink stands (`GATEHOUSE_SIEM_SINKS`), for /admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiemSinkView {
    pub name: String,
    /// `syslog+tcp`, `syslog+tls`, `file` or `hec`.
    pub kind: String,
    /// The last audit event the sink acknowledged.
    pub delivered_seq: i64,
    /// Events committed and not yet acknowledged.
    pub backlog: i64,
    /// How long the oldest unacknowledged event has waited ("" when none).
    pub lag: String,
    /// Failed deliveries in a row (0 after a success).
    pub failures: i64,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
}
