//! Elevations as the screens show them, and the ticket view of what was
//! done under one.

use super::{from_row, Row_, COLS};
use crate::domain::{
    actions::Action,
    elevation::{self as rules, Kind, State},
    grants::describe_duration,
    permissions::Permission,
};
use crate::dto::{ElevationView, TicketEvent, TicketView};
use crate::errors::AppError;
use crate::server::{
    access::{authz::Principal, grants, roles as role_store},
    audit,
    platform::{db::text, names, time::format_time},
    state::AppState,
};
use sqlx::{any::AnyRow, Row};

async fn views(st: &AppState, rows: &[AnyRow], viewer: Option<&Principal>) -> Result<Vec<ElevationView>, AppError> {
    let now = st.clock.now();
    let names = names::names(st.db.pool()).await?;
    let catalogue = role_store::all_roles(st.db.pool()).await?;
    let parsed: Vec<Row_> = rows.iter().map(from_row).collect::<Result<_, _>>()?;
    // Which of these have an extension in progress or granted.
    let mut extended = std::collections::HashSet::new();
    if !parsed.is_empty() {
        let list = parsed.iter().map(|r| r.id.to_string()).collect::<Vec<_>>().join(",");
        let sql = format!(
            "SELECT extends_id FROM elevation_requests WHERE extends_id IN ({list}) AND (state = \
            'approved' OR (state = 'pending' AND requested_at > ?))"
        );
        for r in sqlx::query(&sql)
            .bind(now - rules::LAPSE_AFTER)
            .fetch_all(st.db.pool())
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
                    "SELECT role, state, ticket, requested_at, kind FROM elevation_requests WHERE requester_id = ? \
                        AND id <> ? ORDER BY id DESC LIMIT 5",
                )
                .bind(row.requester)
                .bind(row.id)
                .fetch_all(st.db.pool())
                .await?
                .iter()
                .map(|r| {
                    Ok(format!(
                        "{}, {}, {}, {}",
                        role_name(&text(r, "role")?),
                        text(r, "state")?,
                        text(r, "ticket")?,
                        format_time(r.try_get("requested_at")?)
                    ))
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
                (grants::active_roles(st.db.pool(), row.requester, now).await?, recent)
            }
            None => (Vec::new(), Vec::new()),
        };
        let can_decide = viewer.is_some_and(|p| {
            state == State::Pending && p.user_id != row.requester && rules::may_decide(&row.req, p.user_id, p.perms)
        });
        out.push(ElevationView {
            id: row.id,
            requester: names::opt_name(&names, Some(row.requester)).unwrap_or_default(),
            requester_id: row.requester,
            role_name: role_name(&row.role),
            role: row.role,
            duration: describe_duration(row.req.duration),
            justification: row.justification,
            ticket: row.ticket,
            state,
            requested_at: format_time(row.req.requested_at),
            starts_at: row.req.window.map(|w| w.0).or(row.req.starts_at).map(format_time),
            ends_at: row.req.window.map(|w| format_time(w.1)),
            ends_in_ms: row
                .req
                .window
                .filter(|_| state == State::Approved && started)
                .map(|(_, e)| e - now),
            decided_by: names::opt_name(&names, row.decided_by),
            decision_reason: row.decision_reason,
            grant_id: row.grant_id,
            requester_roles,
            kind: row.kind,
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
                .filter_map(|a| names::opt_name(&names, Some(*a)))
                .collect(),
            can_decide,
            needs_review: row.kind == Kind::Breakglass && row.reviewed_at.is_none(),
            reviewed_by: names::opt_name(&names, row.reviewed_by),
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
    .fetch_all(st.db.pool())
    .await?;
    views(st, &rows, None).await
}

/// Pending requests this approver may decide on, active elevations (to
/// revoke), and break-glass activations waiting for their review.
pub async fn queue(st: &AppState, p: &Principal) -> Result<Vec<ElevationView>, AppError> {
    let now = st.clock.now();
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM elevation_requests WHERE requester_id <> ? AND ((state = 'pending' AND requested_at > ?) \
         OR (state = 'approved' AND window_end > ?) OR (kind = 'breakglass' AND reviewed_at IS NULL)) ORDER BY id"
    ))
    .bind(p.user_id)
    .bind(now - rules::LAPSE_AFTER)
    .bind(now)
    .fetch_all(st.db.pool())
    .await?;
    let all = views(st, &rows, Some(p)).await?;
    // A named approver sees what they may decide; revoking and reviews are
    // for holders of requests:approve.
    let revoker = p.perms.contains(Permission::RequestsApprove);
    Ok(all
        .into_iter()
        .filter(|v| v.can_decide || (v.state != State::Pending && revoker))
        .collect())
}

/// An elevation and everything recorded under its grant (and its
/// extension's grant), for auditors.
pub async fn ticket(st: &AppState, id: i64) -> Result<TicketView, AppError> {
    let rows = sqlx::query(&format!("SELECT {COLS} FROM elevation_requests WHERE id = ?"))
        .bind(id)
        .fetch_all(st.db.pool())
        .await?;
    let elevation = views(st, &rows, None)
        .await?
        .into_iter()
        .next()
        .ok_or(AppError::NotFound)?;
    let mut grants: Vec<i64> = elevation.grant_id.into_iter().collect();
    for r in sqlx::query("SELECT grant_id FROM elevation_requests WHERE extends_id = ? AND grant_id IS NOT NULL")
        .bind(id)
        .fetch_all(st.db.pool())
        .await?
    {
        grants.push(r.try_get("grant_id")?);
    }
    let mut events = Vec::new();
    for gid in grants {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM audit_events WHERE seq IN (SELECT seq FROM audit_grant_refs WHERE grant_id = ?) ORDER BY seq LIMIT 5000",
            audit::COLUMNS
        ))
        .bind(gid)
        .fetch_all(st.db.pool())
        .await?;
        for r in &rows {
            let e = audit::event_from_row(r)?;
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
            let what = match Action::parse(&e.action) {
                Some(Action::AccessCheck) => d
                    .get("permission")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned(),
                Some(Action::DataAccess) => {
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
                outcome: e.outcome,
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

/// Every request and activation, newest first, for auditors.
pub async fn history(st: &AppState) -> Result<Vec<ElevationView>, AppError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM elevation_requests ORDER BY id DESC LIMIT 500"
    ))
    .fetch_all(st.db.pool())
    .await?;
    views(st, &rows, None).await
}
