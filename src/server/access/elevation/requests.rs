//! Elevation requests as stored: create, decide (with step-up), cancel,
//! revoke, and the job that records lapses and expiries.

use super::{from_row, insert_grant, join_ids, load, policy, refuse, split_customers, COLS};
use crate::domain::actions::Action;
use crate::domain::{
    audit::{Actor, NewEvent, Outcome},
    elevation::{self as rules, ElevationError, ExtendTarget, NewRequest, State, Transition},
    grants::{describe_duration, parse_duration},
    notify as texts, Millis,
};
use crate::errors::AppError;
use crate::server::{
    access::{authz::Principal, grants, notify, roles as role_store},
    audit,
    identity::{accounts, mfa},
    platform::{
        db::{text, WriteTx},
        request::RequestCtx,
        time::{format_time, parse_utc},
    },
    state::AppState,
};
use serde_json::json;
use sqlx::Row;
use tower_sessions::Session;

pub struct RequestInput {
    pub role: String,
    pub duration: String,
    pub justification: String,
    pub ticket: String,
    pub starts_at: String,
    /// Customer ids separated by commas or new lines (empty: all customers).
    pub customers: String,
    /// The active elevation this request extends.
    pub extends: Option<i64>,
}

/// An employee asks for a requestable role (or to extend an active
/// elevation of theirs, once).
pub async fn create(st: &AppState, ctx: &RequestCtx, user_id: i64, input: RequestInput) -> Result<i64, AppError> {
    let now = st.clock.now();
    let catalogue = role_store::catalogue(st.db.pool()).await?;
    let role = catalogue
        .iter()
        .find(|r| r.key == input.role)
        .ok_or(ElevationError::NotRequestable)?;
    let duration = parse_duration(&input.duration)?;
    let starts_at = if input.starts_at.trim().is_empty() {
        None
    } else {
        Some(parse_utc(&input.starts_at)?)
    };
    let customers = split_customers(&input.customers);
    // Who decides, and so who is told (read before the write lock is taken).
    let pol = policy(st.db.pool(), &role.key).await?;
    let to = notify::approvers(st, user_id, &pol.approvers, now).await?;
    let requester_name = accounts::by_id(st.db.pool(), user_id)
        .await?
        .map(|u| u.display_name)
        .unwrap_or_default();
    let mut tx = st.db.begin_write().await?;
    let target = match input.extends {
        None => None,
        Some(eid) => {
            let row = match load(&mut tx, eid).await {
                Ok(r) if r.requester == user_id => r,
                Ok(_) | Err(AppError::NotFound) => return Err(ElevationError::NotExtendable.into()),
                Err(e) => return Err(e),
            };
            let extended: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM elevation_requests WHERE extends_id = ? AND ((state = 'pending' AND \
                    requested_at > ?) OR state = 'approved')",
            )
            .bind(eid)
            .bind(now - rules::LAPSE_AFTER)
            .fetch_one(tx.conn())
            .await?
            .try_get("n")?;
            Some(ExtendTarget {
                kind: row.kind,
                role: row.role,
                request: row.req,
                already_extended: extended > 0,
            })
        }
    };
    let new = NewRequest {
        role,
        duration,
        justification: &input.justification,
        ticket: &input.ticket,
        starts_at,
        ticket_rule: &st.config.tickets,
        customers: &customers,
        extends: target.as_ref().map(|t| (t, user_id)),
    };
    let (d, customers) = rules::check_new(&new, now)?;
    // One open request per role and person, and one active elevation
    // (an extension follows on from the active one).
    let open: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM elevation_requests WHERE requester_id = ? AND role = ? AND \
         ((state = 'pending' AND requested_at > ?) OR (state = 'approved' AND window_end > ? AND ? = 0))",
    )
    .bind(user_id)
    .bind(&role.key)
    .bind(now - rules::LAPSE_AFTER)
    .bind(now)
    .bind(input.extends.is_some() as i64)
    .fetch_one(tx.conn())
    .await?
    .try_get("n")?;
    if open > 0 {
        return Err(ElevationError::Duplicate.into());
    }
    let q = sqlx::query(
        "INSERT INTO elevation_requests (requester_id, role, duration_ms, justification, ticket, starts_at, requested_at, \
         state, approvals_needed, approvers, customer_scope, kind, extends_id, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, 'request', ?, ?)",
    )
    .bind(user_id)
    .bind(&role.key)
    .bind(d)
    .bind(input.justification.trim())
    .bind(input.ticket.trim())
    .bind(starts_at)
    .bind(now)
    .bind(pol.approvals_needed as i64)
    .bind(join_ids(&pol.approvers))
    .bind(grants::format_scope(&customers))
    .bind(input.extends)
    .bind(now);
    let id = tx.insert_returning_id(q).await?;
    let subject = texts::requested(
        &requester_name,
        &role.name,
        &describe_duration(d),
        input.ticket.trim(),
        &customers,
        input.extends.is_some(),
    );
    notify::queue(&mut tx, st, now, &to, &subject, "/requests").await?;
    let action = if input.extends.is_some() {
        Action::ExtensionRequested
    } else {
        Action::ElevationRequested
    };
    let event = NewEvent::new(action, Outcome::Success, ctx.actor())
        .target("user", user_id)
        .reason(input.justification.trim().to_owned())
        .details(json!({
            "request_id": id, "role": role.key, "duration_ms": d, "ticket": input.ticket.trim(),
            "starts_at": starts_at, "state": "pending", "customers": customers, "extends": input.extends,
            "approvals_needed": pol.approvals_needed, "approvers": pol.approvers,
        }));
    audit::append(&mut tx, now, vec![event]).await?;
    tx.commit().await?;
    Ok(id)
}

/// Approves (creating the time-boxed grant once enough approvals are in)
/// or denies. Needs a fresh authenticator code (step-up).
#[allow(clippy::too_many_arguments)]
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
    mfa::step_up(
        st,
        ctx,
        session,
        code,
        if approve { "approve elevation" } else { "deny elevation" },
    )
    .await?;
    let now = st.clock.now();
    let action = if approve {
        Action::ElevationApprove
    } else {
        Action::ElevationDeny
    };
    let mut tx = st.db.begin_write().await?;
    // An approval grants: separation of duties reads the requester's other
    // grants, so it takes the lock every grant decision takes first.
    grants::lock_administrators(&mut tx).await?;
    let row = load(&mut tx, id).await?;
    let t = if approve {
        Transition::Approve {
            by: p.user_id,
            by_perms: p.perms,
        }
    } else {
        Transition::Deny {
            by: p.user_id,
            by_perms: p.perms,
            reason: reason.to_owned(),
        }
    };
    let next = match rules::apply(&row.req, t, now) {
        Ok(n) => n,
        Err(e) => {
            drop(tx);
            return Err(refuse(st, ctx, action, id, e.into()).await?);
        }
    };
    let mut grant_id = None;
    if let Some(window) = next.grant_window {
        let why = format!("elevation request {id}, {}", row.ticket);
        let gid = match insert_grant(
            &mut tx,
            row.requester,
            &row.role,
            p.user_id,
            why,
            window,
            &row.customers,
            now,
        )
        .await
        {
            Ok(g) => g,
            Err(e @ AppError::Conflict(_)) => {
                drop(tx);
                return Err(refuse(st, ctx, action, id, e).await?);
            }
            Err(e) => return Err(e),
        };
        grant_id = Some(gid);
        sqlx::query("UPDATE elevation_requests SET grant_id = ?, window_start = ?, window_end = ? WHERE id = ?")
            .bind(gid)
            .bind(window.0)
            .bind(window.1)
            .bind(id)
            .execute(tx.conn())
            .await?;
    }
    let decided = next.state != State::Pending;
    sqlx::query(
        "UPDATE elevation_requests SET state = ?, approvals = ?, decided_by = CASE WHEN ? = 1 THEN ? ELSE decided_by END, \
         decided_at = CASE WHEN ? = 1 THEN ? ELSE decided_at END, decision_reason = ?, updated_at = ? WHERE id = ?",
    )
    .bind(next.state.as_str())
    .bind(join_ids(&next.approvals))
    .bind(decided as i64)
    .bind(p.user_id)
    .bind(decided as i64)
    .bind(now)
    .bind((!approve).then(|| reason.trim().to_owned()))
    .bind(now)
    .bind(id)
    .execute(tx.conn())
    .await?;
    let done = match next.state {
        State::Approved => Action::ElevationApproved,
        State::Denied => Action::ElevationDenied,
        _ => Action::ApprovalRecorded,
    };
    let mut ev = NewEvent::new(done, Outcome::Success, ctx.actor())
        .target("user", row.requester)
        .details(json!({
            "request_id": id,
            "role": row.role,
            "ticket": row.ticket,
            "grant_id": grant_id,
            "window": next.grant_window,
            "customers": row.customers,
            "extends": row.extends_id,
            "approvals": next.approvals,
            "approvals_needed": row.req.approvals_needed,
            "before": { "state": row.req.state.as_str() },
            "after": { "state": next.state.as_str() },
        }));
    if !approve {
        ev = ev.reason(reason.trim().to_owned());
    }
    let role_name = role_store::all_roles(tx.conn())
        .await?
        .into_iter()
        .find(|r| r.key == row.role)
        .map(|r| r.name)
        .unwrap_or_else(|| row.role.clone());
    let subject = match next.state {
        State::Pending => texts::partly_approved(&role_name, id, next.approvals.len(), row.req.approvals_needed),
        s => {
            let window = next.grant_window.map(|(a, b)| (format_time(a), format_time(b)));
            texts::decided(
                &role_name,
                id,
                s.as_str(),
                window.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
                (!approve).then(|| reason.trim()),
            )
        }
    };
    let to = notify::person(tx.conn(), row.requester).await?;
    notify::queue(&mut tx, st, now, &to, &subject, "/requests").await?;
    audit::append(&mut tx, now, vec![ev]).await?;
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
        grants::end_in(&mut tx, gid, Some(user_id), "elevation cancelled", now).await?;
    }
    sqlx::query("UPDATE elevation_requests SET state = ?, updated_at = ? WHERE id = ?")
        .bind(next.state.as_str())
        .bind(now)
        .bind(id)
        .execute(tx.conn())
        .await?;
    audit::append(
        &mut tx,
        now,
        vec![NewEvent::new(Action::ElevationCancelled, Outcome::Success, ctx.actor())
            .target("user", user_id)
            .details(json!({
                "request_id": id,
                "role": row.role,
                "before": { "state": row.req.state.as_str() },
                "after": { "state": "cancelled" },
            }))],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Ends an active elevation early (step-up needed).
pub async fn revoke(
    st: &AppState,
    ctx: &RequestCtx,
    session: &Session,
    p: &Principal,
    id: i64,
    reason: &str,
    code: &str,
) -> Result<(), AppError> {
    mfa::step_up(st, ctx, session, code, "revoke elevation").await?;
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let row = load(&mut tx, id).await?;
    let next = match rules::apply(
        &row.req,
        Transition::Revoke {
            by: p.user_id,
            by_perms: p.perms,
            reason: reason.to_owned(),
        },
        now,
    ) {
        Ok(n) => n,
        Err(e) => {
            drop(tx);
            return Err(refuse(st, ctx, Action::ElevationRevoke, id, e.into()).await?);
        }
    };
    if let Some(gid) = row.grant_id {
        grants::end_in(&mut tx, gid, Some(p.user_id), reason.trim(), now).await?;
    }
    sqlx::query("UPDATE elevation_requests SET state = ?, decision_reason = ?, updated_at = ? WHERE id = ?")
        .bind(next.state.as_str())
        .bind(reason.trim())
        .bind(now)
        .bind(id)
        .execute(tx.conn())
        .await?;
    // Its extension goes with it: a pending one is cancelled, an approved
    // one (starting when this one would have ended) revoked.
    let extension = sqlx::query(
        "SELECT id, state, grant_id FROM elevation_requests WHERE extends_id = ? AND state IN ('pending', 'approved')",
    )
    .bind(id)
    .fetch_optional(tx.conn())
    .await?;
    let mut extension_ended = None;
    if let Some(x) = extension {
        let xid: i64 = x.try_get("id")?;
        let approved = text(&x, "state")? == "approved";
        if let (true, Some(gid)) = (approved, x.try_get::<Option<i64>, _>("grant_id")?) {
            grants::end_in(&mut tx, gid, Some(p.user_id), reason.trim(), now).await?;
        }
        sqlx::query("UPDATE elevation_requests SET state = ?, decision_reason = ?, updated_at = ? WHERE id = ?")
            .bind(if approved { "revoked" } else { "cancelled" })
            .bind(reason.trim())
            .bind(now)
            .bind(xid)
            .execute(tx.conn())
            .await?;
        extension_ended = Some(xid);
    }
    audit::append(
        &mut tx,
        now,
        vec![NewEvent::new(Action::ElevationRevoked, Outcome::Success, ctx.actor())
            .target("user", row.requester)
            .reason(reason.trim().to_owned())
            .details(json!({
                "request_id": id,
                "role": row.role,
                "grant_id": row.grant_id,
                "extension_ended": extension_ended,
                "before": { "state": "approved" },
                "after": { "state": "revoked" },
            }))],
    )
    .await?;
    let role_name = role_store::all_roles(tx.conn())
        .await?
        .into_iter()
        .find(|r| r.key == row.role)
        .map(|r| r.name)
        .unwrap_or_else(|| row.role.clone());
    let to = notify::person(tx.conn(), row.requester).await?;
    notify::queue(
        &mut tx,
        st,
        now,
        &to,
        &texts::decided(&role_name, id, "revoked", None, Some(reason.trim())),
        "/requests",
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Cancels an employee's pending requests and revokes active elevations,
/// inside the caller's transaction (suspension and offboarding).
pub async fn end_all_in(
    tx: &mut WriteTx,
    actor: &Actor,
    user_id: i64,
    reason: &str,
    now: Millis,
) -> Result<(usize, usize), sqlx::Error> {
    let cancelled = sqlx::query(
        "UPDATE elevation_requests SET state = 'cancelled', decision_reason = ?, updated_at \
        = ? WHERE requester_id = ? AND state = 'pending'",
    )
    .bind(reason)
    .bind(now)
    .bind(user_id)
    .execute(tx.conn())
    .await?
    .rows_affected() as usize;
    let active = sqlx::query(
        "SELECT id, grant_id FROM elevation_requests WHERE requester_id = ? AND state = 'approved' AND window_end > ?",
    )
    .bind(user_id)
    .bind(now)
    .fetch_all(tx.conn())
    .await?;
    for r in &active {
        if let Some(gid) = r.try_get::<Option<i64>, _>("grant_id")? {
            grants::end_in(tx, gid, None, reason, now).await?;
        }
    }
    sqlx::query(
        "UPDATE elevation_requests SET state = 'revoked', decision_reason = ?, updated_at = ? WHERE \
        requester_id = ? AND state = 'approved' AND window_end > ?",
    )
    .bind(reason)
    .bind(now)
    .bind(user_id)
    .bind(now)
    .execute(tx.conn())
    .await?;
    if cancelled + active.len() > 0 {
        audit::append(
            tx,
            now,
            vec![NewEvent::new(Action::ElevationsEnded, Outcome::Success, actor.clone())
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
    let due = format!(
        "SELECT {COLS} FROM elevation_requests WHERE (state = 'pending' AND requested_at <= ?) OR (state = \
            'approved' AND window_end <= ?) ORDER BY id LIMIT 1000"
    );
    // A plain read first, so a pass with nothing due takes no write lock.
    let any = sqlx::query(&due)
        .bind(now - rules::LAPSE_AFTER)
        .bind(now)
        .fetch_optional(st.db.pool())
        .await?;
    if any.is_none() {
        return Ok(0);
    }
    // Then the due requests are claimed: those another server is deciding
    // now are skipped, not waited for (`WriteTx::skip_locked`).
    let mut tx = st.db.begin_write().await?;
    let rows = sqlx::query(&format!("{due}{}", tx.skip_locked()))
        .bind(now - rules::LAPSE_AFTER)
        .bind(now)
        .fetch_all(tx.conn())
        .await?;
    let mut events = Vec::new();
    for r in &rows {
        let row = from_row(r)?;
        let t = if row.req.state == State::Pending {
            Transition::Lapse
        } else {
            Transition::Expire
        };
        let Ok(next) = rules::apply(&row.req, t, now) else {
            continue;
        };
        let changed = sqlx::query("UPDATE elevation_requests SET state = ?, updated_at = ? WHERE id = ? AND state = ?")
            .bind(next.state.as_str())
            .bind(now)
            .bind(row.id)
            .bind(row.req.state.as_str())
            .execute(tx.conn())
            .await?
            .rows_affected();
        if changed == 1 {
            events.push(
                NewEvent::new(state_action(next.state), Outcome::Success, Actor::default())
                    .target("user", row.requester)
                    .details(json!({
                        "request_id": row.id,
                        "role": row.role,
                        "grant_id": row.grant_id,
                        "before": { "state": row.req.state.as_str() },
                        "after": { "state": next.state.as_str() },
                    })),
            );
        }
    }
    let n = events.len();
    audit::append(&mut tx, now, events).await?;
    tx.commit().await?;
    Ok(n)
}

/// Claims the reminder of an active elevation (once: false when it was
/// already sent).
pub async fn mark_reminded(tx: &mut WriteTx, id: i64, now: Millis) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE elevation_requests SET reminded_at = ? WHERE id = ? AND reminded_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The event that records a request's move to `state`.
fn state_action(state: State) -> Action {
    match state {
        State::Pending => Action::ElevationRequested,
        State::Approved => Action::ElevationApproved,
        State::Denied => Action::ElevationDenied,
        State::Cancelled => Action::ElevationCancelled,
        State::Expired => Action::ElevationExpired,
        State::Revoked => Action::ElevationRevoked,
        State::Lapsed => Action::ElevationLapsed,
    }
}
