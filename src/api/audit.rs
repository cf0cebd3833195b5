//! The audit console for auditors: browsing, verification, checkpoints,
//! reports and alerts.

// Server functions take a form's fields, however many it has (the
// attribute does not reach the browser's side of `#[server]`).
#![allow(clippy::too_many_arguments)]

use crate::dto::*;
use crate::errors::AppError;
#[cfg(feature = "ssr")]
use crate::server::audit::{alerts, console, siem};

api! {
    "audit_browse" needs [AuditRead] (st, _, _, _)
    pub async fn audit_browse(
        #[server(default)] from: String,
        #[server(default)] to: String,
        #[server(default)] employee: String,
        #[server(default)] action: String,
        #[server(default)] outcome: String,
        #[server(default)] customer: String,
        #[server(default)] text: String,
        #[server(default)] source: String,
        #[server(default)] before: Option<i64>,
    ) -> Result<AuditPage, AppError> {
        let f = console::Filter {
            from,
            to,
            employee,
            action,
            outcome,
            customer,
            text,
            source,
            before,
        };
        console::browse(&st, &f).await
    }
}

api! {
    "audit_verify" needs [AuditRead] (st, _, _, _)
    pub async fn audit_verify() -> Result<VerifyView, AppError> {
        console::verify_now(&st).await
    }
}

api! {
    /// Anomaly alerts, open first (administrators and auditors).
    "alerts" needs [AuditRead, EmployeesManage] (st, _, _, _)
    pub async fn alerts() -> Result<Vec<AlertView>, AppError> {
        alerts::list(&st).await
    }
}

api! {
    /// Each SIEM sink's cursor, backlog, lag and last error.
    "siem_sinks" needs [AuditRead, EmployeesManage] (st, _, _, _)
    pub async fn siem_sinks() -> Result<Vec<SiemSinkView>, AppError> {
        siem::views(&st).await
    }
}

api! {
    /// Acknowledges an alert with a comment; recorded in the audit trail.
    "acknowledge_alert" needs [AuditRead, EmployeesManage] (st, ctx, _, p)
    pub async fn acknowledge_alert(id: i64, #[server(default)] comment: String) -> Result<(), AppError> {
        alerts::acknowledge(&st, &ctx, p.user_id, id, &comment).await
    }
}

api! {
    /// An auditor report, a page at a time (audit:read).
    "audit_report" needs [AuditRead] (st, _, _, _)
    pub async fn audit_report(
        #[server(default)] kind: String,
        #[server(default)] customer: String,
        #[server(default)] employee: String,
        #[server(default)] from: String,
        #[server(default)] to: String,
        #[server(default)] before: Option<i64>,
    ) -> Result<ReportPage, AppError> {
        let q = console::ReportQuery {
            kind,
            customer,
            employee,
            from,
            to,
            before,
        };
        console::report_pages(&st, &q, 50).await
    }
}

api! {
    /// The latest signed checkpoint, if any (audit:read).
    "audit_latest_checkpoint" needs [AuditRead] (st, _, _, _)
    pub async fn audit_latest_checkpoint() -> Result<Option<CheckpointView>, AppError> {
        console::latest_checkpoint(&st).await
    }
}

api! {
    /// The ten newest signed checkpoints with the witnesses that co-signed
    /// each (audit:read).
    "audit_recent_checkpoints" needs [AuditRead] (st, _, _, _)
    pub async fn audit_recent_checkpoints() -> Result<Vec<CheckpointView>, AppError> {
        console::recent_checkpoints(&st).await
    }
}

api! {
    /// Signs a checkpoint now over every event so far (audit:read: it changes
    /// no record, it attests to them).
    "audit_sign_checkpoint" needs [AuditRead] (st, _, _, _)
    pub async fn audit_sign_checkpoint() -> Result<Option<CheckpointView>, AppError> {
        console::sign_checkpoint(&st).await
    }
}
