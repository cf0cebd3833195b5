//! Break-glass: an engineer's immediate, short access with a fresh code,
//! and the post-incident review someone else records.

use super::{insert_grant, load, refuse};
use crate::domain::actions::Action;
use crate::domain::{
    audit::{NewEvent, Outcome},
    elevation::{self as rules, ElevationError},
    grants::{describe_duration, parse_duration},
    notify as texts, roles,
};
use crate::errors::AppError;
use crate::server::{
    access::{
        authz::{self, Principal},
        grants, notify,
    },
    audit,
    identity::{accounts, mfa},
    platform::request::RequestCtx,
    state::AppState,
};
use serde_json::json;
use sqlx::Row;
use tower_sessions::Session;

/// An engineer breaks the glass: the `breakglass` role for at most an
/// hour, at once, with a justification and a new authenticator code. The
/// activation raises an alert and stays flagged until someone else records
/// a post-incident review.
pub async fn break_glass(
    st: &AppState,
    ctx: &RequestCtx,
    session: &Session,
    user_id: i64,
    duration: &str,
    justification: &str,
    code: &str,
) -> Result<i64, AppError> {
    let user = accounts::by_id(st.db.pool(), user_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let duration = parse_duration(duration)?;
    let d = match rules::check_breakglass(&user.department, duration, justification) {
        Ok(d) => d,
        Err(e @ ElevationError::NotAnEngineer) => {
            let e = AppError::Refused(e.to_string());
            st.recorder
                .record(
                    st.clock.now(),
                    NewEvent::new(Action::Breakglass, Outcome::Denied, ctx.actor())
                        .target("user", user_id)
                        .reason(e.to_string()),
                )
                .await?;
            return Err(e);
        }
        Err(e) => return Err(e.into()),
    };
    let emergency = authz::emergency_administrator(st, user_id).await?;
    let passkey_required = ctx.passkey_required || st.config.require_passkey.requires_for_breakglass(emergency);
    mfa::confirm_code(st, ctx, session, code, "break glass", passkey_required).await?;
    let now = st.clock.now();
    let to = notify::admins_and_auditors(st, user_id, now).await?;
    let mut tx = st.db.begin_write().await?;
    // Activation grants: the same lock as every grant decision (see
    // `grants::lock_administrators`).
    grants::lock_administrators(&mut tx).await?;
    let open: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM elevation_requests WHERE requester_id = ? AND kind = \
        'breakglass' AND state = 'approved' AND window_end > ?",
    )
    .bind(user_id)
    .bind(now)
    .fetch_one(tx.conn())
    .await?
    .try_get("n")?;
    if open > 0 {
        return Err(AppError::Conflict("Your break-glass access is already active.".into()));
    }
    let q = sqlx::query(
        "INSERT INTO elevation_requests (requester_id, role, duration_ms, justification, ticket, requested_at, state, \
         approvals_needed, kind, decided_by, decided_at, window_start, window_end, updated_at) \
         VALUES (?, ?, ?, ?, '', ?, 'approved', 0, 'breakglass', ?, ?, ?, ?, ?)",
    )
    .bind(user_id)
    .bind(roles::BREAKGLASS)
    .bind(d)
    .bind(justification.trim())
    .bind(now)
    .bind(user_id)
    .bind(now)
    .bind(now)
    .bind(now + d)
    .bind(now);
    let id = tx.insert_returning_id(q).await?;
    let gid = insert_grant(
        &mut tx,
        user_id,
        roles::BREAKGLASS,
        user_id,
        format!("break-glass activation {id}"),
        (now, now + d),
        &[],
        now,
    )
    .await?;
    sqlx::query("UPDATE elevation_requests SET grant_id = ? WHERE id = ?")
        .bind(gid)
        .bind(id)
        .execute(tx.conn())
        .await?;
    notify::queue(
        &mut tx,
        st,
        now,
        &to,
        &texts::breakglass(&user.display_name, &describe_duration(d), justification.trim()),
        "/requests",
    )
    .await?;
    audit::append(
        &mut tx,
        now,
        vec![
            NewEvent::new(Action::BreakglassActivated, Outcome::Success, ctx.actor())
                .target("user", user_id)
                .reason(justification.trim().to_owned())
                .details(json!({
                    "request_id": id,
                    "role": roles::BREAKGLASS,
                    "grant_id": gid,
                    "window": [now, now + d],
                    "after": { "state": "approved", "roles": [roles::BREAKGLASS] },
                })),
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Someone other than the engineer records the post-incident review of a
/// break-glass activation, which clears its flag.
pub async fn review(st: &AppState, ctx: &RequestCtx, p: &Principal, id: i64, note: &str) -> Result<(), AppError> {
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let row = load(&mut tx, id).await?;
    if let Err(e) = rules::check_review(row.kind, row.requester, p.user_id, row.reviewed_at.is_some(), note) {
        drop(tx);
        let e: AppError = match e {
            ElevationError::OwnReview => AppError::Refused(e.to_string()),
            ElevationError::NotReviewable => AppError::Conflict(e.to_string()),
            other => other.into(),
        };
        if matches!(e, AppError::Refused(_)) {
            return Err(refuse(st, ctx, Action::BreakglassReview, id, e).await?);
        }
        return Err(e);
    }
    sqlx::query(
        "UPDATE elevation_requests SET reviewed_by = ?, reviewed_at = ?, review_note = ?, updated_at = ? \
        WHERE id = ? AND reviewed_at IS NULL",
    )
    .bind(p.user_id)
    .bind(now)
    .bind(note.trim())
    .bind(now)
    .bind(id)
    .execute(tx.conn())
    .await?;
    audit::append(
        &mut tx,
        now,
        vec![NewEvent::new(Action::BreakglassReviewed, Outcome::Success, ctx.actor())
            .target("user", row.requester)
            .reason(note.trim().to_owned())
            .details(json!({ "request_id": id, "grant_id": row.grant_id }))],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
