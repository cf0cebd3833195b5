//! Leaving: offboarding now or at a scheduled time (every grant, elevation,
//! invitation and session ends in one transaction), and the checklist after.

use super::{
    directory::{checklist, people},
    lifecycle::{deactivation_check, denied},
};
use crate::domain::actions::Action;
use crate::domain::{
    audit::{Actor, NewEvent, Outcome},
    grants::{self as rules, Status},
    offboarding, Millis,
};
use crate::dto::OffboardingRow;
use crate::errors::AppError;
use crate::server::{
    access::{authz::Principal, elevation, grants, service_accounts},
    audit,
    identity::{accounts, invitations, mfa, sessions},
    platform::{
        db::{text, WriteTx},
        names,
        request::RequestCtx,
        time::{format_time, parse_utc},
    },
    state::AppState,
};
use serde_json::json;
use sqlx::Row;
use tower_sessions::Session;

// ---------------------------------------------------------------- offboarding

pub struct OffboardInput {
    pub user_id: i64,
    pub confirm_email: String,
    pub code: String,
    /// Empty for now, else a UTC time `YYYY-MM-DDTHH:MM`.
    pub at: String,
}

/// Offboards now, or schedules it. Needs the employee's email typed and a
/// fresh authenticator code (step-up).
pub async fn offboard(
    st: &AppState,
    ctx: &RequestCtx,
    session: &Session,
    p: &Principal,
    input: OffboardInput,
) -> Result<(), AppError> {
    let now = st.clock.now();
    let user = accounts::by_id(st.db.pool(), input.user_id)
        .await?
        .ok_or(AppError::NotFound)?;
    offboarding::check_confirmation(&input.confirm_email, &user.email)?;
    let status = Status::parse(&user.status).ok_or_else(|| crate::errors::internal("unknown status"))?;
    offboarding::check_offboardable(status)?;
    let at = if input.at.trim().is_empty() {
        None
    } else {
        Some(parse_utc(&input.at)?)
    };
    if let Some(at) = at {
        offboarding::check_schedule(at, now)?;
    }
    mfa::step_up(st, ctx, session, &input.code, "offboarding").await?;

    let mut tx = st.db.begin_write().await?;
    grants::lock_administrators(&mut tx).await?;
    if let Err(e) = deactivation_check(&mut tx, p.user_id, user.id, now).await {
        drop(tx);
        return Err(denied(st, ctx, Action::Offboard, user.id, e).await?);
    }
    match at {
        Some(at) => {
            accounts::schedule_offboarding(&mut tx, user.id, at, p.user_id, now).await?;
            audit::append(
                &mut tx,
                now,
                vec![
                    NewEvent::new(Action::OffboardingScheduled, Outcome::Success, ctx.actor())
                        .target("user", user.id)
                        .details(json!({ "at": at })),
                ],
            )
            .await?;
        }
        None => {
            let leaver = Leaver {
                user_id: user.id,
                status_before: &user.status,
                reason: "offboarding",
                revoke_tokens: st.config.offboard_revoke_tokens,
            };
            if !offboard_in(&mut tx, &ctx.actor(), Some(p.user_id), leaver, now).await? {
                return Err(offboarding::OffboardError::AlreadyOffboarded.into());
            }
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Cancels a scheduled offboarding; never one's own (that decision belongs
/// to another administrator). A refusal is recorded.
pub async fn cancel_scheduled(st: &AppState, ctx: &RequestCtx, p: &Principal, user_id: i64) -> Result<(), AppError> {
    if p.user_id == user_id {
        let e = AppError::Refused(rules::RuleError::OwnAccess.to_string());
        return Err(denied(st, ctx, Action::OffboardingCancelled, user_id, e).await?);
    }
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let row = sqlx::query("SELECT offboard_at FROM users WHERE id = ? AND status <> 'offboarded'")
        .bind(user_id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(AppError::NotFound)?;
    let Some(at) = row.try_get::<Option<i64>, _>("offboard_at")? else {
        return Err(AppError::Conflict(
            "No offboarding is scheduled for this employee.".into(),
        ));
    };
    accounts::cancel_offboarding(&mut tx, user_id, now).await?;
    audit::append(
        &mut tx,
        now,
        vec![
            NewEvent::new(Action::OffboardingCancelled, Outcome::Success, ctx.actor())
                .target("user", user_id)
                .details(json!({ "before": { "at": at }, "after": { "at": null } })),
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Who leaves, and how.
pub struct Leaver<'a> {
    pub user_id: i64,
    pub status_before: &'a str,
    pub reason: &'a str,
    /// Revoke the API tokens they created (GATEHOUSE_OFFBOARD_REVOKE_TOKENS).
    pub revoke_tokens: bool,
}

/// The offboarding itself, in the caller's transaction: status, every
/// grant and elevation, pending invitations, every session, and (by the
/// option, on by default) the API tokens the person created.
pub async fn offboard_in(
    tx: &mut WriteTx,
    actor: &Actor,
    actor_id: Option<i64>,
    leaver: Leaver<'_>,
    now: Millis,
) -> Result<bool, sqlx::Error> {
    let Leaver {
        user_id,
        status_before,
        reason,
        revoke_tokens,
    } = leaver;
    if !accounts::mark_offboarded(tx, user_id, actor_id, reason, now).await? {
        // Offboarded a moment ago by someone else: nothing more to do.
        return Ok(false);
    }
    elevation::end_all_in(tx, actor, user_id, "offboarding", now).await?;
    let revoked = grants::revoke_all_in(tx, actor, actor_id, user_id, "offboarding", now).await?;
    let cancelled = invitations::cancel_open(tx, user_id, now).await?;
    let sessions_ended = sessions::delete_all_for_user(tx, user_id).await?;
    let tokens_revoked = if revoke_tokens {
        service_accounts::revoke_created_by_in(tx, actor, actor_id, user_id, now).await?
    } else {
        Vec::new()
    };
    audit::append(
        tx,
        now,
        vec![NewEvent::new(Action::Offboarded, Outcome::Success, actor.clone())
            .target("user", user_id)
            .reason(reason.to_owned())
            .details(json!({
                "grants_revoked": revoked.iter().map(|(id, _)| id).collect::<Vec<_>>(),
                "invitations_cancelled": cancelled,
                "sessions_ended": sessions_ended,
                "tokens_revoked": tokens_revoked,
                "before": { "status": status_before, "roles": revoked.iter().map(|(_, r)| r).collect::<Vec<_>>() },
                "after": { "status": "offboarded", "roles": [] },
            }))],
    )
    .await?;
    Ok(true)
}

/// Carries out scheduled offboardings that are due.
pub async fn sweep_scheduled(st: &AppState) -> Result<usize, sqlx::Error> {
    let now = st.clock.now();
    let rows = sqlx::query(
        "SELECT id, status, offboard_scheduled_by FROM users WHERE offboard_at <= ? AND status \
        <> 'offboarded' LIMIT 100",
    )
    .bind(now)
    .fetch_all(st.db.pool())
    .await?;
    let mut done = 0;
    for r in &rows {
        let user_id: i64 = r.try_get("id")?;
        let by: Option<i64> = r.try_get("offboard_scheduled_by")?;
        let status = text(r, "status")?;
        let mut tx = st.db.begin_write().await?;
        grants::lock_administrators(&mut tx).await?;
        let admins = grants::active_admin_ids(tx.conn(), now).await?;
        if rules::is_last_admin(user_id, admins.contains(&user_id), admins.len()) {
            // Decided once, also when two servers read the same due row.
            if !accounts::drop_offboarding(&mut tx, user_id).await? {
                continue;
            }
            audit::append(
                &mut tx,
                now,
                vec![NewEvent::new(Action::Offboard, Outcome::Denied, Actor::default())
                    .target("user", user_id)
                    .reason("scheduled offboarding not carried out: last active administrator")],
            )
            .await?;
        } else {
            let actor = Actor {
                user_agent: Some("scheduled offboarding".into()),
                ..Actor::default()
            };
            let leaver = Leaver {
                user_id,
                status_before: &status,
                reason: "scheduled offboarding",
                revoke_tokens: st.config.offboard_revoke_tokens,
            };
            if offboard_in(&mut tx, &actor, by, leaver, now).await? {
                done += 1;
            }
        }
        tx.commit().await?;
    }
    Ok(done)
}

pub async fn mark_checklist(
    st: &AppState,
    ctx: &RequestCtx,
    p: &Principal,
    user_id: i64,
    item: &str,
) -> Result<(), AppError> {
    let Some(label) = offboarding::checklist_label(item) else {
        return Err(AppError::Validation("Unknown checklist item.".into()));
    };
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let user = accounts::by_id(tx.conn(), user_id).await?.ok_or(AppError::NotFound)?;
    if user.status != "offboarded" {
        return Err(AppError::Conflict(
            "The checklist starts once the employee is offboarded.".into(),
        ));
    }
    let exists = sqlx::query("SELECT done_at FROM offboarding_checklist WHERE user_id = ? AND item = ?")
        .bind(user_id)
        .bind(item)
        .fetch_optional(tx.conn())
        .await?;
    if exists.is_some() {
        return Err(AppError::Conflict("This step is already marked done.".into()));
    }
    sqlx::query("INSERT INTO offboarding_checklist (user_id, item, done_by, done_at) VALUES (?, ?, ?, ?)")
        .bind(user_id)
        .bind(item)
        .bind(p.user_id)
        .bind(now)
        .execute(tx.conn())
        .await?;
    audit::append(
        &mut tx,
        now,
        vec![
            NewEvent::new(Action::OffboardingChecklist, Outcome::Success, ctx.actor())
                .target("user", user_id)
                .details(
                    json!({ "item": item, "label": label, "before": { "done": false }, "after": { "done": true } }),
                ),
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn offboarding_report(st: &AppState) -> Result<Vec<OffboardingRow>, AppError> {
    let names = names::names(st.db.pool()).await?;
    let mut out = Vec::new();
    for p in people(st, None)
        .await?
        .into_iter()
        .filter(|p| p.status == Status::Offboarded || p.offboard_at.is_some())
    {
        out.push(OffboardingRow {
            id: p.id,
            checklist: checklist(st, p.id, &names).await?,
            tokens: service_accounts::created_by(st.db.pool(), p.id, st.clock.now()).await?,
            name: p.name,
            email: p.email,
            status: p.status,
            offboard_at: p.offboard_at.map(format_time),
            offboarded_at: p.offboarded_at.map(format_time),
            offboarded_by: names::opt_name(&names, p.offboarded_by),
        });
    }
    Ok(out)
}
