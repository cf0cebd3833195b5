//! Elevation requests as stored: create, decide (with step-up), cancel,
//! revoke, and the job that records lapses and expiries. The transitions
//! themselves are checked in `domain::elevation`.

use super::{
    access::{self, Principal},
    activity::format_time,
    audit_log,
    auth::{self, RequestCtx},
    db::{opt_text, text, WriteTx},
    notify,
    people::parse_utc,
    state::AppState,
    users,
};
use crate::api::types::{ElevationView, PolicyView, TicketEvent, TicketView};
use crate::domain::{
    audit::{Actor, NewEvent, Outcome},
    elevation::{self as rules, ElevationError, ExtendTarget, Kind, NewRequest, Policy, Request, State, Transition},
    grants::{describe_duration, parse_duration},
    notify as texts,
    permissions::Permission,
    roles, Millis,
};
use crate::errors::AppError;
use serde_json::json;
use sqlx::{any::AnyRow, Row};
use std::collections::HashMap;
use tower_sessions::Session;

impl From<ElevationError> for AppError {
    fn from(e: ElevationError) -> Self {
        let m = e.to_string();
        match e {
            ElevationError::OwnRequest | ElevationError::NotAnApprover => AppError::Refused(m),
            ElevationError::InvalidTransition(_) | ElevationError::AlreadyApproved | ElevationError::Duplicate => {
                AppError::Conflict(m)
            }
            _ => AppError::Validation(m),
        }
    }
}

const COLS: &str = "id, requester_id, role, duration_ms, justification, ticket, starts_at, requested_at, state, approvals, \
                    approvals_needed, decided_by, decided_at, decision_reason, grant_id, window_start, window_end, customer_scope, kind, \
                    extends_id, approvers, reviewed_by, reviewed_at, review_note, \
                    (SELECT x.window_end FROM elevation_requests x WHERE x.id = elevation_requests.extends_id) AS extends_end";

struct Row_ {
    id: i64,
    requester: i64,
    role: String,
    justification: String,
    ticket: String,
    decided_by: Option<i64>,
    decision_reason: Option<String>,
    grant_id: Option<i64>,
    customers: Vec<String>,
    kind: Kind,
    extends_id: Option<i64>,
    reviewed_by: Option<i64>,
    reviewed_at: Option<Millis>,
    review_note: Option<String>,
    req: Request,
}

fn ids(list: &str) -> Vec<i64> {
    list.split(',').filter_map(|s| s.trim().parse().ok()).collect()
}

fn join_ids(list: &[i64]) -> String {
    list.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

fn from_row(r: &AnyRow) -> Result<Row_, sqlx::Error> {
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
        customers: opt_text(r, "customer_scope")?
            .map(|s| access::parse_scope(&s))
            .unwrap_or_default(),
        kind: Kind::parse(&text(r, "kind")?),
        extends_id: r.try_get("extends_id")?,
        reviewed_by: r.try_get("reviewed_by")?,
        reviewed_at: r.try_get("reviewed_at")?,
        review_note: opt_text(r, "review_note")?,
        req: Request {
            requester: r.try_get("requester_id")?,
            state: State::parse(&text(r, "state")?).unwrap_or(State::Cancelled),
            requested_at: r.try_get("requested_at")?,
            duration: r.try_get("duration_ms")?,
            starts_at: r.try_get("starts_at")?,
            approvals: ids(&text(r, "approvals")?),
            approvals_needed: r.try_get::<i64, _>("approvals_needed")? as usize,
            approvers: ids(&text(r, "approvers")?),
            extends_end: r.try_get("extends_end")?,
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
    /// Customer ids separated by commas or new lines (empty: all customers).
    pub customers: String,
    /// The active elevation this request extends.
    pub extends: Option<i64>,
}

/// The approval policy of a role (1 approval by a holder of
/// `requests:approve` unless configured).
pub async fn policy<'e>(ex: impl sqlx::Executor<'e, Database = sqlx::Any>, role: &str) -> Result<Policy, sqlx::Error> {
    let row = sqlx::query("SELECT approvals_needed, approvers FROM approval_policies WHERE role_key = ?")
        .bind(role)
        .fetch_optional(ex)
        .await?;
    Ok(match row {
        Some(r) => Policy {
            approvals_needed: r.try_get::<i64, _>("approvals_needed")?.clamp(1, 2) as usize,
            approvers: ids(&text(&r, "approvers")?),
        },
        None => Policy::DEFAULT,
    })
}

/// Whether the employee is named as an approver in any role's policy.
pub async fn named_anywhere(st: &AppState, user_id: i64) -> Result<bool, sqlx::Error> {
    let rows = sqlx::query("SELECT approvers FROM approval_policies")
        .fetch_all(&st.db.pool)
        .await?;
    for r in &rows {
        if ids(&text(r, "approvers")?).contains(&user_id) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Lets through holders of `requests:approve` and employees named in an
/// approval policy; anyone else is refused (and the refusal recorded).
/// Which requests they may decide on is checked per request.
pub async fn approver(st: &AppState, ctx: &RequestCtx, operation: &str) -> Result<Principal, AppError> {
    let auth = ctx.full()?.clone();
    let perms = access::held(st, auth.user_id, ctx.access_version).await?;
    if perms.contains(Permission::RequestsApprove) || named_anywhere(st, auth.user_id).await? {
        return Ok(Principal {
            user_id: auth.user_id,
            auth,
            perms,
        });
    }
    access::deny(st, ctx, &[Permission::RequestsApprove], operation).await?;
    Err(AppError::Forbidden)
}

fn split_customers(s: &str) -> Vec<String> {
    s.split([',', '\n'])
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .collect()
}

/// An employee asks for a requestable role (or to extend an active
/// elevation of theirs, once).
pub async fn create(st: &AppState, ctx: &RequestCtx, user_id: i64, input: RequestInput) -> Result<i64, AppError> {
    let now = st.clock.now();
    let catalogue = access::catalogue(&st.db.pool).await?;
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
    let pol = policy(&st.db.pool, &role.key).await?;
    let to = notify::approvers(st, user_id, &pol.approvers, now).await?;
    let requester_name = users::by_id(&st.db.pool, user_id)
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
                "SELECT COUNT(*) AS n FROM elevation_requests WHERE extends_id = ? AND ((state = 'pending' AND requested_at > ?) OR state = 'approved')",
            )
            .bind(eid)
            .bind(now - rules::LAPSE_AFTER)
            .fetch_one(&mut **tx)
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
    .fetch_one(&mut **tx)
    .await?
    .try_get("n")?;
    if open > 0 {
        return Err(ElevationError::Duplicate.into());
    }
    let q = sqlx::query(
        "INSERT INTO elevation_requests (requester_id, role, duration_ms, justification, ticket, starts_at, requested_at, state, approvals_needed, \
         approvers, customer_scope, kind, extends_id, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, 'request', ?, ?)",
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
    .bind(access::format_scope(&customers))
    .bind(input.extends)
    .bind(now);
    let id = users::insert_returning_id(&mut tx, q).await?;
    let subject = texts::requested(
        &requester_name,
        &role.name,
        &describe_duration(d),
        input.ticket.trim(),
        &customers,
        input.extends.is_some(),
    );
    notify::queue(&mut tx, st, now, &to, &subject, "/requests").await?;
    audit_log::append(
        &mut tx,
        now,
        vec![NewEvent::new(if input.extends.is_some() { "elevation.extension_requested" } else { "elevation.requested" }, Outcome::Success, ctx.actor())
            .target("user", user_id)
            .reason(input.justification.trim().to_owned())
            .details(json!({
                "request_id": id, "role": role.key, "duration_ms": d, "ticket": input.ticket.trim(), "starts_at": starts_at, "state": "pending",
                "customers": customers, "extends": input.extends, "approvals_needed": pol.approvals_needed, "approvers": pol.approvers,
            }))],
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

async fn load(tx: &mut WriteTx, id: i64) -> Result<Row_, AppError> {
    let sql = format!("SELECT {COLS} FROM elevation_requests WHERE id = ?{}", tx.for_update());
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(&mut ***tx)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(from_row(&row)?)
}

async fn refuse(st: &AppState, ctx: &RequestCtx, action: &str, id: i64, e: AppError) -> Result<AppError, AppError> {
    audit_log::record(
        &st.db,
        st.clock.now(),
        NewEvent::new(action, Outcome::Denied, ctx.actor())
            .target("elevation", id)
            .reason(e.to_string()),
    )
    .await?;
    Ok(e)
}

/// Inserts the time-boxed grant an approved elevation (or break-glass
/// activation) gives, refusing a combination separation of duties forbids.
#[allow(clippy::too_many_arguments)]
async fn insert_grant(
    tx: &mut WriteTx,
    requester: i64,
    role_key: &str,
    by: i64,
    reason: String,
    window: (Millis, Millis),
    customers: &[String],
    now: Millis,
) -> Result<i64, AppError> {
    let catalogue = access::catalogue(&mut ***tx).await?;
    let role = catalogue.iter().find(|r| r.key == role_key).ok_or(AppError::NotFound)?;
    let held = access::open_grants(&mut ***tx, requester).await?;
    let perms = held
        .iter()
        .filter_map(|g| catalogue.iter().find(|r| r.key == g.role))
        .fold(role.permissions, |acc, r| acc.union(r.permissions));
    if roles::conflicts(perms) {
        return Err(AppError::Conflict(
            "Separation of duties: this elevation would combine access management and the audit trail.".into(),
        ));
    }
    let q = sqlx::query(
        "INSERT INTO grants (user_id, role, granted_by, reason, starts_at, expires_at, customer_scope, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(requester)
    .bind(role_key)
    .bind(by)
    .bind(reason)
    .bind(window.0)
    .bind(window.1)
    .bind(access::format_scope(customers))
    .bind(now);
    Ok(users::insert_returning_id(tx, q).await?)
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
    auth::step_up(
        st,
        ctx,
        session,
        code,
        if approve { "approve elevation" } else { "deny elevation" },
    )
    .await?;
    let now = st.clock.now();
    let action = if approve { "elevation.approve" } else { "elevation.deny" };
    let mut tx = st.db.begin_write().await?;
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
            .execute(&mut **tx)
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
    .execute(&mut **tx)
    .await?;
    let done = match next.state {
        State::Approved => "elevation.approved",
        State::Denied => "elevation.denied",
        _ => "elevation.approval_recorded",
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
    let role_name = access::all_roles(&mut **tx)
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
    let to = notify::person(&mut **tx, row.requester).await?;
    notify::queue(&mut tx, st, now, &to, &subject, "/requests").await?;
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
        super::grants::end_in(&mut tx, gid, Some(user_id), "elevation cancelled", now).await?;
    }
    sqlx::query("UPDATE elevation_requests SET state = ?, updated_at = ? WHERE id = ?")
        .bind(next.state.as_str())
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
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
pub async fn revoke(
    st: &AppState,
    ctx: &RequestCtx,
    session: &Session,
    p: &Principal,
    id: i64,
    reason: &str,
    code: &str,
) -> Result<(), AppError> {
    auth::step_up(st, ctx, session, code, "revoke elevation").await?;
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
            return Err(refuse(st, ctx, "elevation.revoke", id, e.into()).await?);
        }
    };
    if let Some(gid) = row.grant_id {
        super::grants::end_in(&mut tx, gid, Some(p.user_id), reason.trim(), now).await?;
    }
    sqlx::query("UPDATE elevation_requests SET state = ?, decision_reason = ?, updated_at = ? WHERE id = ?")
        .bind(next.state.as_str())
        .bind(reason.trim())
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    // Its extension goes with it: a pending one is cancelled, an approved
    // one (starting when this one would have ended) revoked.
    let extension = sqlx::query(
        "SELECT id, state, grant_id FROM elevation_requests WHERE extends_id = ? AND state IN ('pending', 'approved')",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    let mut extension_ended = None;
    if let Some(x) = extension {
        let xid: i64 = x.try_get("id")?;
        let approved = text(&x, "state")? == "approved";
        if let (true, Some(gid)) = (approved, x.try_get::<Option<i64>, _>("grant_id")?) {
            super::grants::end_in(&mut tx, gid, Some(p.user_id), reason.trim(), now).await?;
        }
        sqlx::query("UPDATE elevation_requests SET state = ?, decision_reason = ?, updated_at = ? WHERE id = ?")
            .bind(if approved { "revoked" } else { "cancelled" })
            .bind(reason.trim())
            .bind(now)
            .bind(xid)
            .execute(&mut **tx)
            .await?;
        extension_ended = Some(xid);
    }
    audit_log::append(
        &mut tx,
        now,
        vec![NewEvent::new("elevation.revoked", Outcome::Success, ctx.actor()).target("user", row.requester).reason(reason.trim().to_owned()).details(
            json!({ "request_id": id, "role": row.role, "grant_id": row.grant_id, "extension_ended": extension_ended, "before": { "state": "approved" }, "after": { "state": "revoked" } }),
        )],
    )
    .await?;
    let role_name = access::all_roles(&mut **tx)
        .await?
        .into_iter()
        .find(|r| r.key == row.role)
        .map(|r| r.name)
        .unwrap_or_else(|| row.role.clone());
    let to = notify::person(&mut **tx, row.requester).await?;
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
    let cancelled = sqlx::query("UPDATE elevation_requests SET state = 'cancelled', decision_reason = ?, updated_at = ? WHERE requester_id = ? AND state = 'pending'")
        .bind(reason)
        .bind(now)
        .bind(user_id)
        .execute(&mut ***tx)
        .await?
        .rows_affected() as usize;
    let active = sqlx::query(
        "SELECT id, grant_id FROM elevation_requests WHERE requester_id = ? AND state = 'approved' AND window_end > ?",
    )
    .bind(user_id)
    .bind(now)
    .fetch_all(&mut ***tx)
    .await?;
    for r in &active {
        if let Some(gid) = r.try_get::<Option<i64>, _>("grant_id")? {
            super::grants::end_in(tx, gid, None, reason, now).await?;
        }
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

async fn views(st: &AppState, rows: &[AnyRow], viewer: Option<&Principal>) -> Result<Vec<ElevationView>, AppError> {
    let now = st.clock.now();
    let names = access::names(&st.db.pool).await?;
    let catalogue = access::all_roles(&st.db.pool).await?;
    let parsed: Vec<Row_> = rows.iter().map(from_row).collect::<Result<_, _>>()?;
    // Which of these have an extension in progress or granted.
    let mut extended = std::collections::HashSet::new();
    if !parsed.is_empty() {
        let list = parsed.iter().map(|r| r.id.to_string()).collect::<Vec<_>>().join(",");
        let sql = format!("SELECT extends_id FROM elevation_requests WHERE extends_id IN ({list}) AND (state = 'approved' OR (state = 'pending' AND requested_at > ?))");
        for r in sqlx::query(&sql)
            .bind(now - rules::LAPSE_AFTER)
            .fetch_all(&st.db.pool)
            .await?
        {
            extended.insert(r.try_get::<i64, _>("extends_id")?);
        }
    }
    let role_name = |key: &str| {
        catalogue
            .iter()
            .find(|c| c.key == key)
            .map(|c| c.name.clone())
            .unwrap_or_else(|| key.to_owned())
    };
    let mut out = Vec::new();
    for row in parsed {
        let state = rules::effective_state(&row.req, now);
        let started = row.req.window.is_some_and(|(s, e)| s <= now && now < e);
        let (requester_roles, recent) = match viewer {
            Some(_) => {
                let recent = sqlx::query(
                    "SELECT role, state, ticket, requested_at, kind FROM elevation_requests WHERE requester_id = ? AND id <> ? ORDER BY id DESC LIMIT 5",
                )
                .bind(row.requester)
                .bind(row.id)
                .fetch_all(&st.db.pool)
                .await?
                .iter()
                .map(|r| Ok(format!("{}, {}, {}, {}", role_name(&text(r, "role")?), text(r, "state")?, text(r, "ticket")?, format_time(r.try_get("requested_at")?))))
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
                (users::active_roles(&st.db.pool, row.requester, now).await?, recent)
            }
            None => (Vec::new(), Vec::new()),
        };
        let can_decide = viewer.is_some_and(|p| {
            state == State::Pending && p.user_id != row.requester && rules::may_decide(&row.req, p.user_id, p.perms)
        });
        out.push(ElevationView {
            id: row.id,
            requester: access::opt_name(&names, Some(row.requester)).unwrap_or_default(),
            requester_id: row.requester,
            role_name: role_name(&row.role),
            role: row.role,
            duration: describe_duration(row.req.duration),
            justification: row.justification,
            ticket: row.ticket,
            state: state.as_str().into(),
            requested_at: format_time(row.req.requested_at),
            starts_at: row.req.window.map(|w| w.0).or(row.req.starts_at).map(format_time),
            ends_at: row.req.window.map(|w| format_time(w.1)),
            ends_in_ms: row
                .req
                .window
                .filter(|_| state == State::Approved && started)
                .map(|(_, e)| e - now),
            decided_by: access::opt_name(&names, row.decided_by),
            decision_reason: row.decision_reason,
            grant_id: row.grant_id,
            requester_roles,
            kind: row.kind.as_str().into(),
            extendable: row.kind == Kind::Request
                && state == State::Approved
                && started
                && row.extends_id.is_none()
                && !extended.contains(&row.id),
            customers: row.customers,
            extends: row.extends_id,
            approvals: row.req.approvals.len(),
            approvals_needed: row.req.approvals_needed,
            approvers: row
                .req
                .approvers
                .iter()
                .filter_map(|a| access::opt_name(&names, Some(*a)))
                .collect(),
            can_decide,
            needs_review: row.kind == Kind::Breakglass && row.reviewed_at.is_none(),
            reviewed_by: access::opt_name(&names, row.reviewed_by),
            reviewed_at: row.reviewed_at.map(format_time),
            review_note: row.review_note,
            recent,
        });
    }
    Ok(out)
}

pub async fn mine(st: &AppState, user_id: i64) -> Result<Vec<ElevationView>, AppError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM elevation_requests WHERE requester_id = ? ORDER BY id DESC LIMIT 100"
    ))
    .bind(user_id)
    .fetch_all(&st.db.pool)
    .await?;
    views(st, &rows, None).await
}

/// Pending requests this approver may decide on, active elevations (to
/// revoke), and break-glass activations waiting for their review.
pub async fn queue(st: &AppState, p: &Principal) -> Result<Vec<ElevationView>, AppError> {
    let now = st.clock.now();
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM elevation_requests WHERE requester_id <> ? AND ((state = 'pending' AND requested_at > ?) OR (state = 'approved' AND window_end > ?) \
         OR (kind = 'breakglass' AND reviewed_at IS NULL)) ORDER BY id"
    ))
    .bind(p.user_id)
    .bind(now - rules::LAPSE_AFTER)
    .bind(now)
    .fetch_all(&st.db.pool)
    .await?;
    let all = views(st, &rows, Some(p)).await?;
    // A named approver sees what they may decide; revoking and reviews are
    // for holders of requests:approve.
    let revoker = p.perms.contains(Permission::RequestsApprove);
    Ok(all
        .into_iter()
        .filter(|v| v.can_decide || (v.state != "pending" && revoker))
        .collect())
}

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
    let user = users::by_id(&st.db.pool, user_id).await?.ok_or(AppError::NotFound)?;
    let duration = parse_duration(duration)?;
    let d = match rules::check_breakglass(&user.department, duration, justification) {
        Ok(d) => d,
        Err(e @ ElevationError::NotAnEngineer) => {
            let e = AppError::Refused(e.to_string());
            audit_log::record(
                &st.db,
                st.clock.now(),
                NewEvent::new("elevation.breakglass", Outcome::Denied, ctx.actor())
                    .target("user", user_id)
                    .reason(e.to_string()),
            )
            .await?;
            return Err(e);
        }
        Err(e) => return Err(e.into()),
    };
    auth::confirm_code(st, ctx, session, code, "break glass").await?;
    let now = st.clock.now();
    let to = notify::admins_and_auditors(st, user_id, now).await?;
    let mut tx = st.db.begin_write().await?;
    let open: i64 = sqlx::query("SELECT COUNT(*) AS n FROM elevation_requests WHERE requester_id = ? AND kind = 'breakglass' AND state = 'approved' AND window_end > ?")
        .bind(user_id)
        .bind(now)
        .fetch_one(&mut **tx)
        .await?
        .try_get("n")?;
    if open > 0 {
        return Err(AppError::Conflict("Your break-glass access is already active.".into()));
    }
    let q = sqlx::query(
        "INSERT INTO elevation_requests (requester_id, role, duration_ms, justification, ticket, requested_at, state, approvals_needed, kind, \
         decided_by, decided_at, window_start, window_end, updated_at) VALUES (?, ?, ?, ?, '', ?, 'approved', 0, 'breakglass', ?, ?, ?, ?, ?)",
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
    let id = users::insert_returning_id(&mut tx, q).await?;
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
        .execute(&mut **tx)
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
    audit_log::append(
        &mut tx,
        now,
        vec![NewEvent::new("elevation.breakglass_activated", Outcome::Success, ctx.actor()).target("user", user_id).reason(justification.trim().to_owned()).details(
            json!({ "request_id": id, "role": roles::BREAKGLASS, "grant_id": gid, "window": [now, now + d], "after": { "state": "approved", "roles": [roles::BREAKGLASS] } }),
        )],
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
            return Err(refuse(st, ctx, "elevation.breakglass_review", id, e).await?);
        }
        return Err(e);
    }
    sqlx::query("UPDATE elevation_requests SET reviewed_by = ?, reviewed_at = ?, review_note = ?, updated_at = ? WHERE id = ? AND reviewed_at IS NULL")
        .bind(p.user_id)
        .bind(now)
        .bind(note.trim())
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    audit_log::append(
        &mut tx,
        now,
        vec![
            NewEvent::new("elevation.breakglass_reviewed", Outcome::Success, ctx.actor())
                .target("user", row.requester)
                .reason(note.trim().to_owned())
                .details(json!({ "request_id": id, "grant_id": row.grant_id })),
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// An elevation and everything recorded under its grant (and its
/// extension's grant), for auditors.
pub async fn ticket(st: &AppState, id: i64) -> Result<TicketView, AppError> {
    let rows = sqlx::query(&format!("SELECT {COLS} FROM elevation_requests WHERE id = ?"))
        .bind(id)
        .fetch_all(&st.db.pool)
        .await?;
    let elevation = views(st, &rows, None)
        .await?
        .into_iter()
        .next()
        .ok_or(AppError::NotFound)?;
    let mut grants: Vec<i64> = elevation.grant_id.into_iter().collect();
    for r in sqlx::query("SELECT grant_id FROM elevation_requests WHERE extends_id = ? AND grant_id IS NOT NULL")
        .bind(id)
        .fetch_all(&st.db.pool)
        .await?
    {
        grants.push(r.try_get("grant_id")?);
    }
    let mut events = Vec::new();
    for gid in grants {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM audit_events WHERE seq IN (SELECT seq FROM audit_grant_refs WHERE grant_id = ?) ORDER BY seq LIMIT 5000",
            audit_log::COLUMNS
        ))
        .bind(gid)
        .fetch_all(&st.db.pool)
        .await?;
        for r in &rows {
            let e = audit_log::event_from_row(r)?;
            let d: serde_json::Value = serde_json::from_str(&e.details).unwrap_or_default();
            // The index is a convenience; the chained event itself must name the grant.
            if d.get("grant_id").and_then(serde_json::Value::as_i64) != Some(gid) {
                continue;
            }
            let list = |k: &str| {
                d.get(k)
                    .and_then(|v| v.as_array())
                    .map(|a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(", "))
                    .unwrap_or_default()
            };
            let what = match e.action.as_str() {
                "access.check" => d
                    .get("permission")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned(),
                "data.access" => {
                    let mut w = d.get("action").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
                    for part in [list("fields"), list("record_types")] {
                        if !part.is_empty() {
                            w.push_str(&format!(" ({part})"));
                        }
                    }
                    w
                }
                _ => e.reason.clone().unwrap_or_default(),
            };
            events.push(TicketEvent {
                seq: e.seq,
                at: format_time(e.at),
                action: e.action.clone(),
                outcome: e.outcome.as_str().into(),
                customer_id: e.customer_id.clone(),
                what,
                source: d
                    .get("source_system")
                    .or_else(|| d.get("service"))
                    .and_then(|v| v.as_str())
                    .map(str::to_owned),
                grant_id: gid,
            });
        }
    }
    events.sort_by_key(|e| e.seq);
    Ok(TicketView { elevation, events })
}

/// Every role's approval policy.
pub async fn policies(st: &AppState) -> Result<Vec<PolicyView>, AppError> {
    let catalogue = access::catalogue(&st.db.pool).await?;
    let emails: HashMap<i64, String> = sqlx::query("SELECT id, email FROM users")
        .fetch_all(&st.db.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("id")?, text(r, "email")?)))
        .collect::<Result<_, sqlx::Error>>()?;
    let mut out = Vec::new();
    for role in catalogue.iter().filter(|r| r.requestable) {
        let p = policy(&st.db.pool, &role.key).await?;
        out.push(PolicyView {
            role: role.key.clone(),
            role_name: role.name.clone(),
            approvals_needed: p.approvals_needed,
            approvers: p.approvers.iter().filter_map(|a| emails.get(a).cloned()).collect(),
        });
    }
    Ok(out)
}

/// Sets who approves requests for a role and how many approvals they need
/// (named approvers by email, separated by commas or new lines). Applies to
/// requests made from now on.
pub async fn set_policy(
    st: &AppState,
    ctx: &RequestCtx,
    p: &Principal,
    role_key: &str,
    approvals_needed: &str,
    approvers: &str,
) -> Result<(), AppError> {
    let now = st.clock.now();
    let catalogue = access::catalogue(&st.db.pool).await?;
    let role = catalogue
        .iter()
        .find(|r| r.key == role_key && r.requestable)
        .ok_or(ElevationError::NotRequestable)?;
    let needed: usize = approvals_needed.trim().parse().map_err(|_| ElevationError::BadPolicy)?;
    let mut ids_ = Vec::new();
    for email in split_customers(approvers) {
        let email = email.to_lowercase();
        let row = sqlx::query("SELECT id, status FROM users WHERE email = ?")
            .bind(&email)
            .fetch_optional(&st.db.pool)
            .await?;
        match row {
            Some(r) if text(&r, "status")? == "active" => ids_.push(r.try_get::<i64, _>("id")?),
            _ => {
                return Err(AppError::Validation(format!(
                    "No active employee has the email {:?}.",
                    email.chars().take(254).collect::<String>()
                )))
            }
        }
    }
    let pol = rules::check_policy(&Policy {
        approvals_needed: needed,
        approvers: ids_,
    })?;
    // Auditors never approve: naming one would make the policy unusable.
    for a in &pol.approvers {
        let perms = access::permissions_at(&st.db.pool, *a, now).await?;
        if perms.contains(Permission::AuditRead) || perms.contains(Permission::AuditExport) {
            return Err(AppError::Validation("An auditor cannot be an approver.".into()));
        }
    }
    let mut tx = st.db.begin_write().await?;
    let before = policy(&mut **tx, &role.key).await?;
    sqlx::query("DELETE FROM approval_policies WHERE role_key = ?")
        .bind(&role.key)
        .execute(&mut **tx)
        .await?;
    sqlx::query("INSERT INTO approval_policies (role_key, approvals_needed, approvers, updated_by, updated_at) VALUES (?, ?, ?, ?, ?)")
        .bind(&role.key)
        .bind(pol.approvals_needed as i64)
        .bind(join_ids(&pol.approvers))
        .bind(p.user_id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    audit_log::append(
        &mut tx,
        now,
        vec![NewEvent::new("elevation.policy_changed", Outcome::Success, ctx.actor())
            .target("role", &role.key)
            .details(json!({
                "before": { "approvals_needed": before.approvals_needed, "approvers": before.approvers },
                "after": { "approvals_needed": pol.approvals_needed, "approvers": pol.approvers },
            }))],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Every request and activation, newest first, for auditors.
pub async fn history(st: &AppState) -> Result<Vec<ElevationView>, AppError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM elevation_requests ORDER BY id DESC LIMIT 500"
    ))
    .fetch_all(&st.db.pool)
    .await?;
    views(st, &rows, None).await
}
