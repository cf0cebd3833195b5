//! Elevation requests as stored: create, decide (with step-up), cancel,
//! revoke, and the job that records lapses and expiries. The transitions
//! themselves are checked in `domain::elevation`.

use super::{
    access::{self, Principal},
    activity::format_time,
    audit_log,
    auth::{self, RequestCtx},
    db::{opt_text, text, WriteTx},
    people::parse_utc,
    state::AppState,
    users,
};
use crate::api::types::ElevationView;
use crate::domain::{
    audit::{Actor, NewEvent, Outcome},
    elevation::{self as rules, ElevationError, NewRequest, Request, State, Transition},
    grants::{describe_duration, parse_duration},
    roles, Millis,
};
use crate::errors::AppError;
use serde_json::json;
use sqlx::{any::AnyRow, Row};
use tower_sessions::Session;

impl From<ElevationError> for AppError {
    fn from(e: ElevationError) -> Self {
        let m = e.to_string();
        match e {
            ElevationError::OwnRequest | ElevationError::NotAnApprover => AppError::Refused(m),
            ElevationError::InvalidTransition(_) | ElevationError::AlreadyApproved | ElevationError::Duplicate => AppError::Conflict(m),
            _ => AppError::Validation(m),
        }
    }
}

const COLS: &str = "id, requester_id, role, duration_ms, justification, ticket, starts_at, requested_at, state, approvals, \
                    approvals_needed, decided_by, decided_at, decision_reason, grant_id, window_start, window_end";

struct Row_ {
    id: i64,
    requester: i64,
    role: String,
    justification: String,
    ticket: String,
    decided_by: Option<i64>,
    decision_reason: Option<String>,
    grant_id: Option<i64>,
    req: Request,
}

fn from_row(r: &AnyRow) -> Result<Row_, sqlx::Error> {
    let approvals = text(r, "approvals")?;
    let ws: Option<i64> = r.try_get("window_start")?;
    let we: Option<i64> = r.try_get("window_end")?;
    Ok(Row_ {
        id: r.try_get("id")?,
        requester: r.try_get("requester_id")?,
        role: text(r, "role")?,
        justification: text(r, "justification")?,
        ticket: text(r, "ticket")?,
        decided_by: r.try_get("decided_by")?,
        decision_reason: opt_text(r, "decision_reason")?,
        grant_id: r.try_get("grant_id")?,
        req: Request {
            requester: r.try_get("requester_id")?,
            state: State::parse(&text(r, "state")?).unwrap_or(State::Cancelled),
            requested_at: r.try_get("requested_at")?,
            duration: r.try_get("duration_ms")?,
            starts_at: r.try_get("starts_at")?,
            approvals: approvals.split(',').filter_map(|s| s.parse().ok()).collect(),
            approvals_needed: r.try_get::<i64, _>("approvals_needed")? as usize,
            window: ws.zip(we),
        },
    })
}

pub struct RequestInput {
    pub role: String,
    pub duration: String,
    pub justification: String,
    pub ticket: String,
    pub starts_at: String,
}

/// An employee asks for a requestable role.
pub async fn create(st: &AppState, ctx: &RequestCtx, user_id: i64, input: RequestInput) -> Result<i64, AppError> {
    let now = st.clock.now();
    let catalogue = access::catalogue(&st.db.pool).await?;
    let role = catalogue.iter().find(|r| r.key == input.role).ok_or(ElevationError::NotRequestable)?;
    let duration = parse_duration(&input.duration)?;
    let starts_at = if input.starts_at.trim().is_empty() { None } else { Some(parse_utc(&input.starts_at)?) };
    let d = rules::check_new(&NewRequest { role, duration, justification: &input.justification, ticket: &input.ticket, starts_at }, now)?;
    let mut tx = st.db.begin_write().await?;
    // One open request or elevation per role and person.
    let open: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM elevation_requests WHERE requester_id = ? AND role = ? AND \
         ((state = 'pending' AND requested_at > ?) OR (state = 'approved' AND window_end > ?))",
    )
    .bind(user_id)
    .bind(&role.key)
    .bind(now - rules::LAPSE_AFTER)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?
    .try_get("n")?;
    if open > 0 {
        return Err(ElevationError::Duplicate.into());
    }
    let q = sqlx::query(
        "INSERT INTO elevation_requests (requester_id, role, duration_ms, justification, ticket, starts_at, requested_at, state, approvals_needed, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 1, ?)",
    )
    .bind(user_id)
    .bind(&role.key)
    .bind(d)
    .bind(input.justification.trim())
    .bind(input.ticket.trim())
    .bind(starts_at)
    .bind(now)
    .bind(now);
    let id = users::insert_returning_id(&mut tx, q).await?;
    audit_log::append(
        &mut tx,
        now,
        vec![NewEvent::new("elevation.requested", Outcome::Success, ctx.actor())
            .target("user", user_id)
            .reason(input.justification.trim().to_owned())
            .details(json!({ "request_id": id, "role": role.key, "duration_ms": d, "ticket": input.ticket.trim(), "starts_at": starts_at, "state": "pending" }))],
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

async fn load(tx: &mut WriteTx, id: i64) -> Result<Row_, AppError> {
    let sql = format!("SELECT {COLS} FROM elevation_requests WHERE id = ?{}", tx.for_update());
    let row = sqlx::query(&sql).bind(id).fetch_optional(&mut ***tx).await?.ok_or(AppError::NotFound)?;
    Ok(from_row(&row)?)
}

async fn refuse(st: &AppState, ctx: &RequestCtx, action: &str, id: i64, e: AppError) -> Result<AppError, AppError> {
    audit_log::record(&st.db, st.clock.now(), NewEvent::new(action, Outcome::Denied, ctx.actor()).target("elevation", id).reason(e.to_string()))
        .await?;
    Ok(e)
}

/// Approves (creating the time-boxed grant once enough approvals are in)
/// or denies. Needs a fresh authenticator code (step-up).
pub async fn decide(
    st: &AppState,
    ctx: &RequestCtx,
    session: &Session,
    p: &Principal,
    id: i64,
    approve: bool,
    reason: &str,
    code: &str,
) -> Result<State, AppError> {
    auth::step_up(st, ctx, session, code, if approve { "approve elevation" } else { "deny elevation" }).await?;
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let row = load(&mut tx, id).await?;
    let t = if approve {
        Transition::Approve { by: p.user_id, by_perms: p.perms }
    } else {
        Transition::Deny { by: p.user_id, by_perms: p.perms, reason: reason.to_owned() }
    };
    let next = match rules::apply(&row.req, t, now) {
        Ok(n) => n,
        Err(e) => {
            drop(tx);
            let action = if approve { "elevation.approve" } else { "elevation.deny" };
            return Err(refuse(st, ctx, action, id, e.into()).await?);
        }
    };
    let approvals = next.approvals.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let mut grant_id = None;
    if let Some((start, end)) = next.grant_window {
        // Separation of duties still holds for elevations.
        let catalogue = access::catalogue(&mut **tx).await?;
        let role = catalogue.iter().find(|r| r.key == row.role).ok_or(AppError::NotFound)?;
        let held = access::open_grants(&mut **tx, row.requester).await?;
        let perms = held
            .iter()
            .filter_map(|g| catalogue.iter().find(|r| r.key == g.role))
            .fold(role.permissions, |acc, r| acc.union(r.permissions));
        if roles::conflicts(perms) {
            drop(tx);
            let e = AppError::Conflict("Separation of duties: this elevation would combine access management and the audit trail.".into());
            return Err(refuse(st, ctx, "elevation.approve", id, e).await?);
        }
        let q = sqlx::query(
            "INSERT INTO grants (user_id, role, granted_by, reason, starts_at, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(row.requester)
        .bind(&row.role)
        .bind(p.user_id)
        .bind(format!("elevation request {id}, {}", row.ticket))
        .bind(start)
        .bind(end)
        .bind(now);
        let gid = users::insert_returning_id(&mut tx, q).await?;
        grant_id = Some(gid);
        sqlx::query("UPDATE elevation_requests SET grant_id = ?, window_start = ?, window_end = ? WHERE id = ?")
            .bind(gid)
            .bind(start)
            .bind(end)
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    let decided = next.state != State::Pending;
    sqlx::query(
        "UPDATE elevation_requests SET state = ?, approvals = ?, decided_by = CASE WHEN ? = 1 THEN ? ELSE decided_by END, \
         decided_at = CASE WHEN ? = 1 THEN ? ELSE decided_at END, decision_reason = ?, updated_at = ? WHERE id = ?",
    )
    .bind(next.state.as_str())
    .bind(&approvals)
    .bind(decided as i64)
    .bind(p.user_id)
    .bind(decided as i64)
    .bind(now)
    .bind((!approve).then(|| reason.trim().to_owned()))
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    let action = match next.state {
        State::Approved => "elevation.approved",
        State::Denied => "elevation.denied",
        _ => "elevation.approval_recorded",
    };
    let mut ev = NewEvent::new(action, Outcome::Success, ctx.actor()).target("user", row.requester).details(json!({
        "request_id": id,
        "role": row.role,
        "ticket": row.ticket,
        "grant_id": grant_id,
        "window": next.grant_window,
        "approvals": next.approvals,
        "before": { "state": row.req.state.as_str() },
        "after": { "state": next.state.as_str() },
    }));
    if !approve {
        ev = ev.reason(reason.trim().to_owned());
    }
    audit_log::append(&mut tx, now, vec![ev]).await?;
    tx.commit().await?;
    Ok(next.state)
}

/// The requester withdraws a pending (or not yet started) request.
pub async fn cancel(st: &AppState, ctx: &RequestCtx, user_id: i64, id: i64) -> Result<(), AppError> {
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let row = load(&mut tx, id).await?;
    if row.requester != user_id {
        return Err(AppError::NotFound);
    }
    let next = rules::apply(&row.req, Transition::Cancel { by: user_id }, now)?;
    if let Some(gid) = row.grant_id {
        sqlx::query("UPDATE grants SET revoked_at = ?, revoked_by = ?, revoke_reason = 'elevation cancelled' WHERE id = ? AND revoked_at IS NULL")
            .bind(now)
            .bind(user_id)
            .bind(gid)
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query("UPDATE elevation_requests SET state = ?, updated_at = ? WHERE id = ?").bind(next.state.as_str()).bind(now).bind(id).execute(&mut **tx).await?;
    audit_log::append(
        &mut tx,
        now,
        vec![NewEvent::new("elevation.cancelled", Outcome::Success, ctx.actor())
            .target("user", user_id)
            .details(json!({ "request_id": id, "role": row.role, "before": { "state": row.req.state.as_str() }, "after": { "state": "cancelled" } }))],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Ends an active elevation early (step-up needed).
pub async fn revoke(st: &AppState, ctx: &RequestCtx, session: &Session, p: &Principal, id: i64, reason: &str, code: &str) -> Result<(), AppError> {
    auth::step_up(st, ctx, session, code, "revoke elevation").await?;
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let row = load(&mut tx, id).await?;
    if row.requester == p.user_id {
        return Err(ElevationError::OwnRequest.into());
    }
    let next = match rules::apply(&row.req, Transition::Revoke { by_perms: p.perms, reason: reason.to_owned() }, now) {
        Ok(n) => n,
        Err(e) => {
            drop(tx);
            return Err(refuse(st, ctx, "elevation.revoke", id, e.into()).await?);
        }
    };
    if let Some(gid) = row.grant_id {
        sqlx::query("UPDATE grants SET revoked_at = ?, revoked_by = ?, revoke_reason = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(now)
            .bind(p.user_id)
            .bind(reason.trim())
            .bind(gid)
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query("UPDATE elevation_requests SET state = ?, decision_reason = ?, updated_at = ? WHERE id = ?")
        .bind(next.state.as_str())
        .bind(reason.trim())
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    audit_log::append(
        &mut tx,
        now,
        vec![NewEvent::new("elevation.revoked", Outcome::Success, ctx.actor()).target("user", row.requester).reason(reason.trim().to_owned()).details(
            json!({ "request_id": id, "role": row.role, "grant_id": row.grant_id, "before": { "state": "approved" }, "after": { "state": "revoked" } }),
        )],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Cancels an employee's pending requests and revokes active elevations,
/// inside the caller's transaction (suspension and offboarding).
pub async fn end_all_in(tx: &mut WriteTx, actor: &Actor, user_id: i64, reason: &str, now: Millis) -> Result<(usize, usize), sqlx::Error> {
    let cancelled = sqlx::query("UPDATE elevation_requests SET state = 'cancelled', decision_reason = ?, updated_at = ? WHERE requester_id = ? AND state = 'pending'")
        .bind(reason)
        .bind(now)
        .bind(user_id)
        .execute(&mut ***tx)
        .await?
        .rows_affected() as usize;
    let active = sqlx::query("SELECT id, grant_id FROM elevation_requests WHERE requester_id = ? AND state = 'approved' AND window_end > ?")
        .bind(user_id)
        .bind(now)
        .fetch_all(&mut ***tx)
        .await?;
    for r in &active {
        let gid: Option<i64> = r.try_get("grant_id")?;
        sqlx::query("UPDATE grants SET revoked_at = ?, revoke_reason = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(now)
            .bind(reason)
            .bind(gid)
            .execute(&mut ***tx)
            .await?;
    }
    sqlx::query("UPDATE elevation_requests SET state = 'revoked', decision_reason = ?, updated_at = ? WHERE requester_id = ? AND state = 'approved' AND window_end > ?")
        .bind(reason)
        .bind(now)
        .bind(user_id)
        .bind(now)
        .execute(&mut ***tx)
        .await?;
    if cancelled + active.len() > 0 {
        audit_log::append(
            tx,
            now,
            vec![NewEvent::new("elevation.ended_all", Outcome::Success, actor.clone())
                .target("user", user_id)
                .reason(reason.to_owned())
                .details(json!({ "pending_cancelled": cancelled, "active_revoked": active.len() }))],
        )
        .await?;
    }
    Ok((cancelled, active.len()))
}

/// Records lapsed requests and ended elevations (the access itself
/// already stopped at its end instant).
pub async fn sweep(st: &AppState) -> Result<usize, sqlx::Error> {
    let now = st.clock.now();
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM elevation_requests WHERE (state = 'pending' AND requested_at <= ?) OR (state = 'approved' AND window_end <= ?) LIMIT 1000"
    ))
    .bind(now - rules::LAPSE_AFTER)
    .bind(now)
    .fetch_all(&st.db.pool)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut tx = st.db.begin_write().await?;
    let mut events = Vec::new();
    for r in &rows {
        let row = from_row(r)?;
        let t = if row.req.state == State::Pending { Transition::Lapse } else { Transition::Expire };
        let Ok(next) = rules::apply(&row.req, t, now) else { continue };
        let changed = sqlx::query("UPDATE elevation_requests SET state = ?, updated_at = ? WHERE id = ? AND state = ?")
            .bind(next.state.as_str())
            .bind(now)
            .bind(row.id)
            .bind(row.req.state.as_str())
            .execute(&mut **tx)
            .await?
            .rows_affected();
        if changed == 1 {
            events.push(NewEvent::new(&format!("elevation.{}", next.state.as_str()), Outcome::Success, Actor::default()).target("user", row.requester).details(
                json!({ "request_id": row.id, "role": row.role, "grant_id": row.grant_id, "before": { "state": row.req.state.as_str() }, "after": { "state": next.state.as_str() } }),
            ));
        }
    }
    let n = events.len();
    audit_log::append(&mut tx, now, events).await?;
    tx.commit().await?;
    Ok(n)
}

async fn views(st: &AppState, rows: &[AnyRow], with_roles: bool) -> Result<Vec<ElevationView>, AppError> {
    let now = st.clock.now();
    let names = access::names(&st.db.pool).await?;
    let catalogue = access::all_roles(&st.db.pool).await?;
    let mut out = Vec::new();
    for r in rows {
        let row = from_row(r)?;
        let state = rules::effective_state(&row.req, now);
        let requester_roles = if with_roles { users::active_roles(&st.db.pool, row.requester, now).await? } else { Vec::new() };
        out.push(ElevationView {
            id: row.id,
            requester: access::opt_name(&names, Some(row.requester)).unwrap_or_default(),
            requester_id: row.requester,
            role_name: catalogue.iter().find(|c| c.key == row.role).map(|c| c.name.clone()).unwrap_or_else(|| row.role.clone()),
            role: row.role,
            duration: describe_duration(row.req.duration),
            justification: row.justification,
            ticket: row.ticket,
            state: state.as_str().into(),
            requested_at: format_time(row.req.requested_at),
            starts_at: row.req.window.map(|w| w.0).or(row.req.starts_at).map(format_time),
            ends_at: row.req.window.map(|w| format_time(w.1)),
            ends_in_ms: row.req.window.filter(|(s, e)| state == State::Approved && *s <= now && now < *e).map(|(_, e)| e - now),
            decided_by: access::opt_name(&names, row.decided_by),
            decision_reason: row.decision_reason,
            grant_id: row.grant_id,
            requester_roles,
        });
    }
    Ok(out)
}

pub async fn mine(st: &AppState, user_id: i64) -> Result<Vec<ElevationView>, AppError> {
    let rows = sqlx::query(&format!("SELECT {COLS} FROM elevation_requests WHERE requester_id = ? ORDER BY id DESC LIMIT 100"))
        .bind(user_id)
        .fetch_all(&st.db.pool)
        .await?;
    views(st, &rows, false).await
}

/// Pending requests other people may decide on, and active elevations.
pub async fn queue(st: &AppState, p: &Principal) -> Result<Vec<ElevationView>, AppError> {
    let now = st.clock.now();
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM elevation_requests WHERE requester_id <> ? AND ((state = 'pending' AND requested_at > ?) OR (state = 'approved' AND window_end > ?)) ORDER BY id"
    ))
    .bind(p.user_id)
    .bind(now - rules::LAPSE_AFTER)
    .bind(now)
    .fetch_all(&st.db.pool)
    .await?;
    views(st, &rows, true).await
}
