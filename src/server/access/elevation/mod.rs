//! Elevation: time-boxed access that someone else approves and that ends
//! by itself (requests, decisions, extension, revocation, lapses),
//! break-glass with its post-incident review, approval policies, and the
//! views of all of them. The transitions are checked in
//! `domain::elevation`; this is the `elevation_requests` table.

mod breakglass;
mod policies;
mod requests;
mod views;

pub use breakglass::{break_glass, review};
pub use policies::{approver, named_anywhere, policies, policy, set_policy};
pub use requests::{cancel, create, decide, end_all_in, mark_reminded, revoke, sweep, RequestInput};
pub use views::{history, mine, queue, ticket};

use crate::domain::{
    actions::Action,
    audit::{NewEvent, Outcome},
    elevation::{Kind, Request, State},
    roles, Millis,
};
use crate::errors::AppError;
use crate::server::{
    access::{grants, roles as role_store},
    platform::{
        db::{opt_text, text, WriteTx},
        request::RequestCtx,
    },
    state::AppState,
};
use sqlx::{any::AnyRow, Row};

pub(super) const COLS: &str = "id, requester_id, role, duration_ms, justification, ticket, starts_at, requested_at, state, approvals, \
                    approvals_needed, decided_by, decided_at, decision_reason, grant_id, window_start, window_end, customer_scope, kind, \
                    extends_id, approvers, reviewed_by, reviewed_at, review_note, \
                    (SELECT x.window_end FROM elevation_requests x WHERE x.id = elevation_requests.extends_id) AS extends_end";

pub(super) struct Row_ {
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

pub(super) fn ids(list: &str) -> Vec<i64> {
    list.split(',').filter_map(|s| s.trim().parse().ok()).collect()
}

pub(super) fn join_ids(list: &[i64]) -> String {
    list.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

pub(super) fn from_row(r: &AnyRow) -> Result<Row_, sqlx::Error> {
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
            .map(|s| grants::parse_scope(&s))
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

pub(super) async fn load(tx: &mut WriteTx, id: i64) -> Result<Row_, AppError> {
    let sql = format!("SELECT {COLS} FROM elevation_requests WHERE id = ?{}", tx.for_update());
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(from_row(&row)?)
}

pub(super) async fn refuse(
    st: &AppState,
    ctx: &RequestCtx,
    action: Action,
    id: i64,
    e: AppError,
) -> Result<AppError, AppError> {
    st.recorder
        .record(
            st.clock.now(),
            NewEvent::new(action, Outcome::Denied, ctx.actor())
                .target("elevation", id)
                .reason(e.to_string()),
        )
        .await?;
    Ok(e)
}

pub(super) fn split_customers(s: &str) -> Vec<String> {
    s.split([',', '\n'])
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .collect()
}

/// Inserts the time-boxed grant an approved elevation (or break-glass
/// activation) gives, refusing a combination separation of duties forbids.
#[allow(clippy::too_many_arguments)]
pub(super) async fn insert_grant(
    tx: &mut WriteTx,
    requester: i64,
    role_key: &str,
    by: i64,
    reason: String,
    window: (Millis, Millis),
    customers: &[String],
    now: Millis,
) -> Result<i64, AppError> {
    let catalogue = role_store::catalogue(tx.conn()).await?;
    let role = catalogue.iter().find(|r| r.key == role_key).ok_or(AppError::NotFound)?;
    let held = grants::open_grants(tx.conn(), requester).await?;
    let perms = held
        .iter()
        .filter_map(|g| catalogue.iter().find(|r| r.key == g.role))
        .fold(role.permissions, |acc, r| acc.union(r.permissions));
    if roles::conflicts(perms) {
        return Err(AppError::Conflict(
            "Separation of duties: this elevation would combine access management and the audit trail.".into(),
        ));
    }
    let new = grants::NewGrant {
        user_id: requester,
        role: role_key,
        granted_by: Some(by),
        reason: &reason,
        starts_at: window.0,
        expires_at: Some(window.1),
        pending: false,
        customers,
    };
    Ok(grants::insert(tx, new, now).await?)
}
