//! Granting, approving and revoking roles under the rules of
//! `domain::grants`. Each change and its audit event (with before and
//! after) commit together; a change refused by a rule is recorded as denied.

use super::{
    active_admin_ids, end_in, ended_event, insert, load_record, lock_administrators, open_grants, removes_admin_power,
    GrantRecord, NewGrant,
};
use crate::domain::actions::Action;
use crate::domain::{
    audit::{Actor, NewEvent, Outcome},
    grants::{self as rules, Grant, GrantCheck, GrantOutcome, Status},
    Millis,
};
use crate::errors::AppError;
use crate::server::{
    access::{
        authz::{refuse, Principal},
        roles,
    },
    audit,
    identity::accounts,
    platform::{db::WriteTx, request::RequestCtx},
    state::AppState,
};
use serde_json::json;

/// Role keys active now, for before/after in audit details.
fn active_keys(grants: &[Grant], now: Millis) -> Vec<String> {
    let mut v: Vec<String> = grants
        .iter()
        .filter(|g| g.is_active(now))
        .map(|g| g.role.clone())
        .collect();
    v.sort();
    v.dedup();
    v
}

// ---------------------------------------------------------------- granting

pub struct GrantInput {
    pub user_id: i64,
    pub role: String,
    pub reason: String,
    pub expires_in: String,
}

/// Grants a role. Returns the grant id and whether it waits for a second
/// administrator.
pub async fn grant(st: &AppState, ctx: &RequestCtx, p: &Principal, input: GrantInput) -> Result<(i64, bool), AppError> {
    let now = st.clock.now();
    let reason = rules::check_reason(&input.reason)?;
    let expires_at = rules::parse_duration(&input.expires_in)?.map(|d| now + d);
    let mut tx = st.db.begin_write().await?;
    lock_administrators(&mut tx).await?;
    let (id, pending) = match grant_in(
        &mut tx,
        ctx.actor(),
        p.user_id,
        &input.role,
        input.user_id,
        &reason,
        expires_at,
        now,
    )
    .await
    {
        Ok(x) => x,
        Err(e) => {
            drop(tx);
            let ev = NewEvent::new(Action::GrantCreate, Outcome::Denied, ctx.actor())
                .target("user", input.user_id)
                .details(json!({ "role": input.role, "expires_at": expires_at }));
            return Err(refuse(st, ev, e).await?);
        }
    };
    tx.commit().await?;
    Ok((id, pending))
}

/// The grant itself, inside the caller's transaction (onboarding uses it
/// for the initial roles).
#[allow(clippy::too_many_arguments)]
pub async fn grant_in(
    tx: &mut WriteTx,
    actor: Actor,
    actor_id: i64,
    role_key: &str,
    user_id: i64,
    reason: &str,
    expires_at: Option<Millis>,
    now: Millis,
) -> Result<(i64, bool), AppError> {
    let user = accounts::by_id(tx.conn(), user_id).await?.ok_or(AppError::NotFound)?;
    let status = Status::parse(&user.status).ok_or_else(|| crate::errors::internal("unknown user status"))?;
    let roles = roles::catalogue(tx.conn()).await?;
    let role = roles.iter().find(|r| r.key == role_key).ok_or_else(|| {
        AppError::Validation(format!(
            "There is no role \"{}\".",
            role_key.chars().take(40).collect::<String>()
        ))
    })?;
    let held = open_grants(tx.conn(), user_id).await?;
    let admins = active_admin_ids(tx.conn(), now).await?;
    let outcome = rules::check_grant(&GrantCheck {
        actor_id,
        grantee_id: user_id,
        grantee_name: &user.display_name,
        grantee_status: status,
        grantee_grants: &held,
        role,
        roles: &roles,
        expires_at,
        active_admins: admins.len(),
        now,
    })?;
    let pending = outcome == GrantOutcome::NeedsSecondAdmin;
    let new = NewGrant {
        user_id,
        role: role_key,
        granted_by: Some(actor_id),
        reason,
        starts_at: now,
        expires_at,
        pending,
        customers: &[],
    };
    let id = insert(tx, new, now).await?;
    let before = active_keys(&held, now);
    let mut after = before.clone();
    if !pending {
        after.push(role_key.to_owned());
        after.sort();
    }
    let action = if pending {
        Action::GrantRequested
    } else {
        Action::GrantCreated
    };
    audit::append(
        tx,
        now,
        vec![NewEvent::new(action, Outcome::Success, actor)
            .target("user", user_id)
            .reason(reason.to_owned())
            .details(json!({
                "grant_id": id,
                "role": role_key,
                "permissions": role.permissions.to_list(),
                "expires_at": expires_at,
                "awaiting_second_admin": pending,
                "before": { "roles": before },
                "after": { "roles": after },
            }))],
    )
    .await?;
    Ok((id, pending))
}

/// A second administrator approves a pending grant (administrator power or audit).
pub async fn approve(st: &AppState, ctx: &RequestCtx, p: &Principal, grant_id: i64) -> Result<(), AppError> {
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    lock_administrators(&mut tx).await?;
    let result: Result<GrantRecord, AppError> = async {
        let rec = load_record(&mut tx, grant_id).await?;
        rules::check_approval(p.user_id, rec.granted_by, &rec.grant, now)?;
        // "A second administrator": the approver must hold administrator power.
        if !active_admin_ids(tx.conn(), now).await?.contains(&p.user_id) {
            return Err(AppError::Refused(
                "Only another administrator can approve an administrator grant.".into(),
            ));
        }
        // The grant rules again, as they stand now.
        let user = accounts::by_id(tx.conn(), rec.grant.user_id)
            .await?
            .ok_or(AppError::NotFound)?;
        let status = Status::parse(&user.status).ok_or_else(|| crate::errors::internal("unknown user status"))?;
        let roles = roles::catalogue(tx.conn()).await?;
        let role = roles
            .iter()
            .find(|r| r.key == rec.grant.role)
            .ok_or(AppError::NotFound)?;
        let others: Vec<Grant> = open_grants(tx.conn(), rec.grant.user_id)
            .await?
            .into_iter()
            .filter(|g| g.id != grant_id)
            .collect();
        rules::check_grant(&GrantCheck {
            actor_id: p.user_id,
            grantee_id: rec.grant.user_id,
            grantee_name: &user.display_name,
            grantee_status: status,
            grantee_grants: &others,
            role,
            roles: &roles,
            expires_at: rec.grant.expires_at,
            active_admins: 0,
            now,
        })?;
        Ok(rec)
    }
    .await;
    let rec = match result {
        Ok(r) => r,
        Err(e) => {
            drop(tx);
            let ev = NewEvent::new(Action::GrantApprove, Outcome::Denied, ctx.actor()).target("grant", grant_id);
            return Err(refuse(st, ev, e).await?);
        }
    };
    sqlx::query("UPDATE grants SET pending = 0, approved_by = ?, approved_at = ? WHERE id = ? AND pending = 1")
        .bind(p.user_id)
        .bind(now)
        .bind(grant_id)
        .execute(tx.conn())
        .await?;
    audit::append(
        &mut tx,
        now,
        vec![NewEvent::new(Action::GrantApproved, Outcome::Success, ctx.actor())
            .target("user", rec.grant.user_id)
            .details(json!({
                "grant_id": grant_id,
                "role": rec.grant.role,
                "requested_by": rec.granted_by,
                "before": { "pending": true },
                "after": { "pending": false, "approved_by": p.user_id },
            }))],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Revokes a grant (or rejects a pending one). History stays: the row
/// keeps who granted it and gains who revoked it, when and why.
pub async fn revoke(
    st: &AppState,
    ctx: &RequestCtx,
    p: &Principal,
    grant_id: i64,
    reason: &str,
) -> Result<(), AppError> {
    let now = st.clock.now();
    let reason = rules::check_reason(reason)?;
    let mut tx = st.db.begin_write().await?;
    lock_administrators(&mut tx).await?;
    let checked: Result<(GrantRecord, Vec<Grant>), AppError> = async {
        let rec = load_record(&mut tx, grant_id).await?;
        let (removes_power, admins) = removes_admin_power(&mut tx, &rec.grant, now).await?;
        rules::check_revoke(p.user_id, &rec.grant, removes_power, admins, now)?;
        let held = open_grants(tx.conn(), rec.grant.user_id).await?;
        Ok((rec, held))
    }
    .await;
    let (rec, held) = match checked {
        Ok(x) => x,
        Err(e) => {
            drop(tx);
            let ev = NewEvent::new(Action::GrantRevoke, Outcome::Denied, ctx.actor()).target("grant", grant_id);
            return Err(refuse(st, ev, e).await?);
        }
    };
    if !end_in(&mut tx, grant_id, Some(p.user_id), &reason, now).await? {
        return Err(AppError::Conflict("This grant has already ended.".into()));
    }
    let action = if rec.grant.pending {
        Action::GrantRejected
    } else {
        Action::GrantRevoked
    };
    let event = ended_event(action, ctx.actor(), &rec, &held, &reason, now);
    audit::append(&mut tx, now, vec![event]).await?;
    tx.commit().await?;
    Ok(())
}
