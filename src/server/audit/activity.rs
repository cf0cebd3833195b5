//! A person's own sign-in activity, read from the audit chain.

use super::log::event_from_row;
use crate::dto::ActivityItem;
use crate::errors::AppError;
use crate::server::{platform::time::format_time, state::AppState};

fn describe(action: &str, outcome: &str, details: &serde_json::Value) -> &'static str {
    let replay = details.get("replay").and_then(|v| v.as_bool()).unwrap_or(false);
    match (action, outcome) {
        ("auth.signin", "success") => "Signed in",
        ("auth.signin", _) => "Sign-in failed",
        ("auth.password", _) => "Password accepted",
        ("auth.mfa", _) if replay => "Reused authenticator code refused",
        ("auth.mfa", _) => "Wrong authenticator code",
        ("mfa.step_up", "success") => "Confirmed with authenticator code",
        ("mfa.step_up", _) if replay => "Reused authenticator code refused",
        ("mfa.step_up", _) => "Wrong authenticator code",
        ("auth.recovery_code", "success") => "Signed in with a recovery code",
        ("auth.recovery_code", _) => "Wrong recovery code",
        ("auth.lockout", _) => "Sign-in locked after repeated failures",
        ("auth.unlock", _) => "Sign-in unlocked",
        ("auth.signout", _) => "Signed out",
        ("auth.signout_everywhere", _) => "Signed out everywhere",
        ("auth.session_expired", _) => "Session ended by timeout",
        ("mfa.enrolled", _) => "Authenticator app set up",
        ("mfa.enrol", _) => "Authenticator setup code refused",
        ("mfa.recovery_codes_regenerated", _) => "New recovery codes generated",
        ("setup.first_admin", _) => "Gatehouse set up, account created",
        ("grant.created", _) => "Role granted",
        ("grant.requested", _) => "Role granted, awaiting a second administrator",
        ("grant.approved", _) => "Role grant approved",
        ("grant.rejected", _) => "Role grant rejected",
        ("grant.revoked", _) => "Role revoked",
        ("grant.expired", _) => "Role expired",
        ("grant.create", _) => "Role grant refused",
        ("grant.revoke", _) => "Revocation refused",
        ("employee.onboarded", _) => "Employee onboarded",
        ("invitation.created", _) => "Invitation link created",
        ("invitation.accepted", _) => "Invitation accepted",
        ("employee.suspended", _) => "Suspended",
        ("employee.reactivated", _) => "Reactivated",
        ("employee.offboarded", _) => "Offboarded",
        ("employee.offboarding_scheduled", _) => "Offboarding scheduled",
        ("employee.offboarding_cancelled", _) => "Scheduled offboarding cancelled",
        ("employee.offboard" | "employee.suspend", _) => "Refused: would lock out the last administrator or yourself",
        ("offboarding.checklist", _) => "Offboarding step done",
        _ => "Account event",
    }
}

pub async fn for_user(st: &AppState, user_id: i64, limit: i64) -> Result<Vec<ActivityItem>, AppError> {
    let rows = sqlx::query(
        "SELECT seq, at, actor_user_id, actor_session, actor_ip, actor_ua, action, target_type, target_id, customer_id, \
         outcome, reason, details, prev_hash, hash FROM audit_events \
         WHERE target_type = 'user' AND target_id = ? ORDER BY seq DESC LIMIT ?",
    )
    .bind(user_id.to_string())
    .bind(limit)
    .fetch_all(st.db.reader())
    .await?;
    items(&rows)
}

fn items(rows: &[sqlx::any::AnyRow]) -> Result<Vec<ActivityItem>, AppError> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let e = event_from_row(r)?;
        let details: serde_json::Value = serde_json::from_str(&e.details).unwrap_or_default();
        out.push(ActivityItem {
            seq: e.seq,
            when: format_time(e.at),
            what: describe(&e.action, e.outcome.as_str(), &details).to_owned(),
            outcome: e.outcome.as_str().to_owned(),
            ip: e.actor.ip.unwrap_or_default(),
            device: e.actor.user_agent.unwrap_or_default(),
            note: e.reason.unwrap_or_default(),
        });
    }
    Ok(out)
}
