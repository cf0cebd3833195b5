//! A person's own sign-in activity, read from the audit chain.

use super::log::event_from_row;
use crate::domain::{actions::Action, audit::Outcome};
use crate::dto::ActivityItem;
use crate::errors::AppError;
use crate::server::{platform::time::format_time, state::AppState};

fn describe(action: Option<Action>, outcome: Outcome, details: &serde_json::Value) -> &'static str {
    use Action as A;
    use Outcome::Success;
    let replay = details.get("replay").and_then(|v| v.as_bool()).unwrap_or(false);
    let by_passkey = details.get("method").and_then(|v| v.as_str()) == Some("passkey");
    let asked_passkey = details.get("passkey_required").and_then(|v| v.as_bool()) == Some(true);
    let Some(action) = action else { return "Account event" };
    match (action, outcome) {
        (A::SignIn, Success) => "Signed in",
        (A::SignIn, _) => "Sign-in failed",
        (A::PasswordAccepted, _) => "Password accepted",
        (A::SignInCode, Success) => "Authenticator code accepted; a passkey is to be added next",
        (A::SignInCode, _) if replay => "Reused authenticator code refused",
        (A::SignInCode, _) => "Wrong authenticator code",
        (A::StepUp, Success) if by_passkey => "Confirmed with a passkey",
        (A::StepUp, _) if asked_passkey => "Asked to confirm with a passkey: your access requires one",
        (A::StepUp, Success) => "Confirmed with authenticator code",
        (A::StepUp, _) if replay => "Reused authenticator code refused",
        (A::StepUp, _) => "Wrong authenticator code",
        (A::RecoveryCode, Success) => "Signed in with a recovery code",
        (A::RecoveryCode, _) => "Wrong recovery code",
        (A::Lockout, _) => "Sign-in locked after repeated failures",
        (A::Unlock, _) => "Sign-in unlocked",
        (A::SignOut, _) => "Signed out",
        (A::SignOutEverywhere, _) => "Signed out everywhere",
        (A::SessionExpired, _) => "Session ended by timeout",
        (A::Enrolled, _) => "Authenticator app set up",
        (A::EnrolRefused, _) => "Authenticator setup code refused",
        (A::RecoveryCodesRegenerated, _) => "New recovery codes generated",
        (A::PasskeyRegistered, _) => "Passkey added",
        (A::PasskeyRegister, _) => "Passkey refused at registration",
        (A::PasskeyRemoved, _) => "Passkey removed",
        (A::PasskeyUsed, _) => "Passkey used",
        (A::PasskeyUse, Outcome::Denied) => "Passkey refused: its signature counter went backwards (possible clone)",
        (A::PasskeyUse, _) => "Passkey refused",
        (A::FirstAdmin, _) => "Gatehouse set up, account created",
        (A::GrantCreated, _) => "Role granted",
        (A::GrantRequested, _) => "Role granted, awaiting a second administrator",
        (A::GrantApproved, _) => "Role grant approved",
        (A::GrantRejected, _) => "Role grant rejected",
        (A::GrantRevoked, _) => "Role revoked",
        (A::GrantExpired, _) => "Role expired",
        (A::GrantShortened, _) => "Role made time-boxed by an access review",
        (A::GrantCreate, _) => "Role grant refused",
        (A::GrantRevoke, _) => "Revocation refused",
        (A::Onboarded, _) => "Employee onboarded",
        (A::InvitationCreated, _) => "Invitation link created",
        (A::InvitationAccepted, _) => "Invitation accepted",
        (A::Suspended, _) => "Suspended",
        (A::Reactivated, _) => "Reactivated",
        (A::Offboarded, _) => "Offboarded",
        (A::OffboardingScheduled, _) => "Offboarding scheduled",
        (A::OffboardingCancelled, Outcome::Denied) => "Refused: cancelling your own offboarding",
        (A::OffboardingCancelled, _) => "Scheduled offboarding cancelled",
        (A::Offboard | A::Suspend, _) => "Refused: would lock out the last administrator or yourself",
        (A::OffboardingChecklist, _) => "Offboarding step done",
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
    .fetch_all(st.db.pool())
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
            what: describe(Action::parse(&e.action), e.outcome, &details).to_owned(),
            outcome: e.outcome,
            ip: e.actor.ip.unwrap_or_default(),
            device: e.actor.user_agent.unwrap_or_default(),
            note: e.reason.unwrap_or_default(),
        });
    }
    Ok(out)
}
