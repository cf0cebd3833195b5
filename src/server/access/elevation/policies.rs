//! Approval policies per requestable role: who approves, and how many.

use super::{ids, join_ids, split_customers};
use crate::domain::actions::Action;
use crate::domain::{
    audit::{NewEvent, Outcome},
    elevation::{self as rules, ElevationError, Policy},
    permissions::Permission,
};
use crate::dto::PolicyView;
use crate::errors::AppError;
use crate::server::{
    access::{
        authz::{self, Principal},
        roles as role_store,
    },
    audit,
    platform::{db::text, request::RequestCtx},
    state::AppState,
};
use serde_json::json;
use sqlx::Row;
use std::collections::HashMap;

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
        .fetch_all(st.db.pool())
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
    let perms = authz::held(st, auth.user_id, ctx.access_version).await?;
    if perms.contains(Permission::RequestsApprove) || named_anywhere(st, auth.user_id).await? {
        return Ok(Principal {
            user_id: auth.user_id,
            auth,
            perms,
        });
    }
    authz::deny(st, ctx, &[Permission::RequestsApprove], operation).await?;
    Err(AppError::Forbidden)
}

/// Every role's approval policy.
pub async fn policies(st: &AppState) -> Result<Vec<PolicyView>, AppError> {
    let catalogue = role_store::catalogue(st.db.pool()).await?;
    let emails: HashMap<i64, String> = sqlx::query("SELECT id, email FROM users")
        .fetch_all(st.db.pool())
        .await?
        .iter()
        .map(|r| Ok((r.try_get("id")?, text(r, "email")?)))
        .collect::<Result<_, sqlx::Error>>()?;
    let mut out = Vec::new();
    for role in catalogue.iter().filter(|r| r.requestable) {
        let p = policy(st.db.pool(), &role.key).await?;
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
    let catalogue = role_store::catalogue(st.db.pool()).await?;
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
            .fetch_optional(st.db.pool())
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
        let perms = authz::permissions_at(st.db.pool(), *a, now).await?;
        if perms.contains(Permission::AuditRead) || perms.contains(Permission::AuditExport) {
            return Err(AppError::Validation("An auditor cannot be an approver.".into()));
        }
    }
    let mut tx = st.db.begin_write().await?;
    let before = policy(tx.conn(), &role.key).await?;
    sqlx::query("DELETE FROM approval_policies WHERE role_key = ?")
        .bind(&role.key)
        .execute(tx.conn())
        .await?;
    sqlx::query("INSERT INTO approval_policies (role_key, approvals_needed, approvers, updated_by, updated_at) VALUES (?, ?, ?, ?, ?)")
        .bind(&role.key)
        .bind(pol.approvals_needed as i64)
        .bind(join_ids(&pol.approvers))
        .bind(p.user_id)
        .bind(now)
        .execute(tx.conn())
        .await?;
    audit::append(
        &mut tx,
        now,
        vec![NewEvent::new(Action::PolicyChanged, Outcome::Success, ctx.actor())
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
