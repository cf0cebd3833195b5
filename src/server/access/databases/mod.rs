//! Database access that follows grants: targets (MySQL or MariaDB servers
//! administered through a connector account), the privileges roles carry
//! there, one account per employee reconciled with what is due, and the
//! employee's own view of their accounts and passwords.

mod connector;
mod drift;
mod mappings;
mod reconcile;
mod targets;

pub use drift::{
    due as scan_due, due_one as scan_due_one, scan_now as scan_drift, set_correction as set_drift_correction,
};
pub use mappings::{approve as approve_mapping, map, unmap, MappingInput};
pub use reconcile::{pass as reconcile, pass_one as reconcile_one, WORKERS};
pub use targets::{list, register, reseal, test, TargetInput};

use crate::domain::actions::Action;
use crate::domain::audit::{NewEvent, Outcome};
use crate::dto::DbAccountView;
use crate::errors::AppError;
use crate::server::{
    audit,
    platform::{crypto, db::text, request::RequestCtx},
    state::AppState,
};
use serde_json::json;
use sqlx::Row;

/// Every target's id (the job starts one task per target).
pub async fn target_ids(st: &AppState) -> Result<Vec<i64>, AppError> {
    Ok(sqlx::query_scalar("SELECT id FROM db_targets ORDER BY id")
        .fetch_all(st.db.pool())
        .await?)
}

/// The employee's accounts, one per target where something was ever due.
pub async fn mine(st: &AppState, user_id: i64) -> Result<Vec<DbAccountView>, AppError> {
    let rows = sqlx::query(
        "SELECT t.id, t.name, t.host, t.port, t.tls, a.account, a.roles, a.locked, a.status FROM db_accounts a \
         JOIN db_targets t ON t.id = a.target_id WHERE a.user_id = ? ORDER BY t.name",
    )
    .bind(user_id)
    .fetch_all(st.db.pool())
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let provisioned = text(&r, "status")? == "provisioned";
        let roles: Vec<String> = text(&r, "roles")?
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        out.push(DbAccountView {
            target_id: r.try_get("id")?,
            target: text(&r, "name")?,
            host: text(&r, "host")?,
            port: r.try_get::<i64, _>("port")? as u16,
            tls: r.try_get::<i64, _>("tls")? != 0,
            account: text(&r, "account")?,
            open: provisioned && r.try_get::<i64, _>("locked")? == 0 && !roles.is_empty(),
            roles,
            provisioned,
        });
    }
    Ok(out)
}

/// A new random password for the employee's account on a target, set there
/// at once and shown once. Only while access there is provisioned.
pub async fn new_password(st: &AppState, ctx: &RequestCtx, user_id: i64, target_id: i64) -> Result<String, AppError> {
    let account = mine(st, user_id)
        .await?
        .into_iter()
        .find(|a| a.target_id == target_id)
        .ok_or(AppError::NotFound)?;
    if !account.open {
        return Err(AppError::Refused(format!(
            "No database access is provisioned for you on {} now.",
            account.target
        )));
    }
    let target = targets::load(st, target_id).await?.ok_or(AppError::NotFound)?;
    let password = secrecy::SecretString::from(crypto::random_token(24));
    let mut s = connector::Session::open(&target.endpoint)
        .await
        .map_err(targets::unreachable)?;
    let set = s.set_password(&account.account, &password).await;
    s.close().await;
    set.map_err(targets::unreachable)?;
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    audit::append(
        &mut tx,
        now,
        vec![NewEvent::new(Action::DbPasswordIssued, Outcome::Success, ctx.actor())
            .target("user", user_id)
            .details(json!({"target": target.name, "target_id": target.id, "account": account.account}))],
    )
    .await?;
    tx.commit().await?;
    use secrecy::ExposeSecret;
    Ok(password.expose_secret().to_owned())
}
