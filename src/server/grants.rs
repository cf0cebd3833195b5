//! Granting, approving, revoking and expiring roles, and custom roles. Each
//! change and its audit event (with before and after) commit together; a
//! change refused by a rule is recorded as denied.

use super::{
    access::{self, Principal, GRANT_COLS},
    activity::format_time,
    audit_log,
    auth::RequestCtx,
    db::{opt_text, text, WriteTx},
    state::AppState,
    users,
};
use crate::api::types::{GrantInfo, PermissionInfo, PermissionSource, RoleInfo};
use crate::domain::{
    audit::{Actor, NewEvent, Outcome},
    grants::{self as rules, describe_duration, Grant, GrantCheck, GrantOutcome, Status},
    permissions::{Permission, PermissionSet},
    roles::{self, RoleDef},
    Millis,
};
use crate::errors::AppError;
use serde_json::json;
use sqlx::{any::AnyRow, Row};
use std::collections::HashMap;

// ---------------------------------------------------------------- views

pub fn permission_info(p: Permission) -> PermissionInfo {
    PermissionInfo {
        id: p.id().into(),
        description: p.description().into(),
        sensitivity: p.sensitivity().as_str().into(),
    }
}

pub fn role_info(r: &RoleDef, holders: i64) -> RoleInfo {
    RoleInfo {
        key: r.key.clone(),
        name: r.name.clone(),
        description: r.description.clone(),
        permissions: r.permissions.iter().map(|p| p.id().to_owned()).collect(),
        max_duration: r.max_duration.map(describe_duration),
        max_duration_input: r.max_duration.map(duration_input).unwrap_or_default(),
        requestable: r.requestable,
        builtin: r.builtin,
        critical: r.permissions.has_critical(),
        holders,
    }
}

fn duration_input(ms: Millis) -> String {
    let m = ms / 60_000;
    if m % (24 * 60) == 0 {
        format!("{}d", m / (24 * 60))
    } else if m % 60 == 0 {
        format!("{}h", m / 60)
    } else {
        format!("{m}m")
    }
}

/// Open grants per role key (active or pending, not expired).
pub async fn holders(st: &AppState) -> Result<HashMap<String, i64>, sqlx::Error> {
    let now = st.clock.now();
    let rows = sqlx::query(
        "SELECT role, COUNT(DISTINCT user_id) AS n FROM grants WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?) GROUP BY role",
    )
    .bind(now)
    .fetch_all(&st.db.pool)
    .await?;
    rows.iter().map(|r| Ok((text(r, "role")?, r.try_get("n")?))).collect()
}

/// A full grant row, for history views.
pub struct GrantRecord {
    pub grant: Grant,
    pub granted_by: Option<i64>,
    pub reason: String,
    pub approved_by: Option<i64>,
    pub revoked_by: Option<i64>,
    pub revoke_reason: Option<String>,
}

pub const RECORD_COLS: &str =
    "id, user_id, role, starts_at, expires_at, revoked_at, pending, customer_scope, granted_by, reason, approved_by, revoke_reason, revoked_by";

pub fn record_from_row(r: &AnyRow) -> Result<GrantRecord, sqlx::Error> {
    Ok(GrantRecord {
        grant: access::grant_from_row(r)?,
        granted_by: r.try_get("granted_by")?,
        reason: text(r, "reason")?,
        approved_by: r.try_get("approved_by")?,
        revoked_by: r.try_get("revoked_by")?,
        revoke_reason: opt_text(r, "revoke_reason")?,
    })
}

pub fn state_of(g: &Grant, now: Millis) -> &'static str {
    if g.revoked_at.is_some() {
        "revoked"
    } else if g.expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else if g.pending {
        "pending"
    } else if g.starts_at > now {
        "scheduled"
    } else {
        "active"
    }
}

pub fn grant_info(rec: &GrantRecord, roles: &[RoleDef], names: &HashMap<i64, String>, now: Millis) -> GrantInfo {
    let g = &rec.grant;
    let role = roles.iter().find(|r| r.key == g.role);
    GrantInfo {
        id: g.id,
        user_id: g.user_id,
        user_name: access::opt_name(names, Some(g.user_id)).unwrap_or_default(),
        role: g.role.clone(),
        role_name: role.map(|r| r.name.clone()).unwrap_or_else(|| g.role.clone()),
        state: state_of(g, now).into(),
        critical: role.is_some_and(|r| r.permissions.has_critical()),
        granted_by: access::opt_name(names, rec.granted_by),
        reason: rec.reason.clone(),
        starts_at: format_time(g.starts_at),
        expires_at: g.expires_at.map(format_time),
        approved_by: access::opt_name(names, rec.approved_by),
        revoked_by: access::opt_name(names, rec.revoked_by),
        revoked_at: g.revoked_at.map(format_time),
        revoke_reason: rec.revoke_reason.clone(),
        customers: g.customers.clone().unwrap_or_default(),
    }
}

pub fn sources_view(status: Status, grants: &[Grant], roles: &[RoleDef], now: Millis) -> Vec<PermissionSource> {
    rules::effective(status, grants, roles, now)
        .into_iter()
        .map(|(p, srcs)| PermissionSource {
            id: p.id().into(),
            description: p.description().into(),
            sensitivity: p.sensitivity().as_str().into(),
            sources: srcs
                .iter()
                .map(|s| {
                    let only = s
                        .customers
                        .as_ref()
                        .map(|c| format!(", only customers {}", c.join(", ")))
                        .unwrap_or_default();
                    match s.expires_at {
                        Some(e) => format!("{} (grant {}, until {}{only})", s.role_name, s.grant_id, format_time(e)),
                        None => format!("{} (grant {}{only})", s.role_name, s.grant_id),
                    }
                })
                .collect(),
        })
        .collect()
}

pub async fn user_grant_records(st: &AppState, user_id: i64) -> Result<Vec<GrantRecord>, sqlx::Error> {
    let sql = format!("SELECT {RECORD_COLS} FROM grants WHERE user_id = ? ORDER BY id DESC");
    let rows = sqlx::query(&sql).bind(user_id).fetch_all(&st.db.pool).await?;
    rows.iter().map(record_from_row).collect()
}

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

/// Records a refused change, then returns the error.
async fn refuse(st: &AppState, event: NewEvent, err: AppError) -> Result<AppError, AppError> {
    let reason = err.to_string();
    audit_log::record(&st.db, st.clock.now(), event.reason(reason)).await?;
    Ok(err)
}

/// Grants a role. Returns the grant id and whether it waits for a second
/// administrator.
pub async fn grant(st: &AppState, ctx: &RequestCtx, p: &Principal, input: GrantInput) -> Result<(i64, bool), AppError> {
    let now = st.clock.now();
    let reason = rules::check_reason(&input.reason)?;
    let expires_at = rules::parse_duration(&input.expires_in)?.map(|d| now + d);
    let mut tx = st.db.begin_write().await?;
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
            let ev = NewEvent::new("grant.create", Outcome::Denied, ctx.actor())
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
    let user = users::by_id(&mut ***tx, user_id).await?.ok_or(AppError::NotFound)?;
    let status = Status::parse(&user.status).ok_or_else(|| super::errors::internal("unknown user status"))?;
    let roles = access::catalogue(&mut ***tx).await?;
    let role = roles.iter().find(|r| r.key == role_key).ok_or_else(|| {
        AppError::Validation(format!(
            "There is no role \"{}\".",
            role_key.chars().take(40).collect::<String>()
        ))
    })?;
    let held = access::open_grants(&mut ***tx, user_id).await?;
    let admins = access::active_admin_ids(&mut ***tx, now).await?;
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
    let q = sqlx::query(
        "INSERT INTO grants (user_id, role, granted_by, reason, starts_at, expires_at, pending, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(user_id)
    .bind(role_key)
    .bind(actor_id)
    .bind(reason)
    .bind(now)
    .bind(expires_at)
    .bind(pending as i64)
    .bind(now);
    let id = users::insert_returning_id(tx, q).await?;
    let before = active_keys(&held, now);
    let mut after = before.clone();
    if !pending {
        after.push(role_key.to_owned());
        after.sort();
    }
    let action = if pending { "grant.requested" } else { "grant.created" };
    audit_log::append(
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

async fn load_record(tx: &mut WriteTx, grant_id: i64) -> Result<GrantRecord, AppError> {
    let sql = format!("SELECT {RECORD_COLS} FROM grants WHERE id = ?{}", tx.for_update());
    let row = sqlx::query(&sql)
        .bind(grant_id)
        .fetch_optional(&mut ***tx)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(record_from_row(&row)?)
}

async fn is_active_admin(tx: &mut WriteTx, user_id: i64, now: Millis) -> Result<(bool, usize), sqlx::Error> {
    let admins = access::active_admin_ids(&mut ***tx, now).await?;
    Ok((admins.contains(&user_id), admins.len()))
}

/// A second administrator approves a pending `admin` grant.
pub async fn approve(st: &AppState, ctx: &RequestCtx, p: &Principal, grant_id: i64) -> Result<(), AppError> {
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let result: Result<GrantRecord, AppError> = async {
        let rec = load_record(&mut tx, grant_id).await?;
        rules::check_approval(p.user_id, rec.granted_by, &rec.grant, now)?;
        // "A second administrator": the approver must hold `admin` itself.
        if !access::active_admin_ids(&mut **tx, now).await?.contains(&p.user_id) {
            return Err(AppError::Refused(
                "Only another administrator can approve an administrator grant.".into(),
            ));
        }
        // The grant rules again, as they stand now.
        let user = users::by_id(&mut **tx, rec.grant.user_id)
            .await?
            .ok_or(AppError::NotFound)?;
        let status = Status::parse(&user.status).ok_or_else(|| super::errors::internal("unknown user status"))?;
        let roles = access::catalogue(&mut **tx).await?;
        let role = roles
            .iter()
            .find(|r| r.key == rec.grant.role)
            .ok_or(AppError::NotFound)?;
        let others: Vec<Grant> = access::open_grants(&mut **tx, rec.grant.user_id)
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
            let ev = NewEvent::new("grant.approve", Outcome::Denied, ctx.actor()).target("grant", grant_id);
            return Err(refuse(st, ev, e).await?);
        }
    };
    sqlx::query("UPDATE grants SET pending = 0, approved_by = ?, approved_at = ? WHERE id = ? AND pending = 1")
        .bind(p.user_id)
        .bind(now)
        .bind(grant_id)
        .execute(&mut **tx)
        .await?;
    audit_log::append(
        &mut tx,
        now,
        vec![NewEvent::new("grant.approved", Outcome::Success, ctx.actor())
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
    let checked: Result<(GrantRecord, Vec<Grant>), AppError> = async {
        let rec = load_record(&mut tx, grant_id).await?;
        let (grantee_admin, admins) = is_active_admin(&mut tx, rec.grant.user_id, now).await?;
        rules::check_revoke(p.user_id, &rec.grant, grantee_admin, admins, now)?;
        let held = access::open_grants(&mut **tx, rec.grant.user_id).await?;
        Ok((rec, held))
    }
    .await;
    let (rec, held) = match checked {
        Ok(x) => x,
        Err(e) => {
            drop(tx);
            let ev = NewEvent::new("grant.revoke", Outcome::Denied, ctx.actor()).target("grant", grant_id);
            return Err(refuse(st, ev, e).await?);
        }
    };
    if !end_in(&mut tx, grant_id, Some(p.user_id), &reason, now).await? {
        return Err(AppError::Conflict("This grant has already ended.".into()));
    }
    let before = active_keys(&held, now);
    let after = active_keys(
        &held.iter().filter(|g| g.id != grant_id).cloned().collect::<Vec<_>>(),
        now,
    );
    let action = if rec.grant.pending {
        "grant.rejected"
    } else {
        "grant.revoked"
    };
    audit_log::append(
        &mut tx,
        now,
        vec![NewEvent::new(action, Outcome::Success, ctx.actor())
            .target("user", rec.grant.user_id)
            .reason(reason)
            .details(json!({
                "grant_id": grant_id,
                "role": rec.grant.role,
                "granted_by": rec.granted_by,
                "before": { "roles": before },
                "after": { "roles": after },
            }))],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Ends one grant now, inside the caller's transaction; false if it had
/// already ended.
pub async fn end_in(
    tx: &mut WriteTx,
    grant_id: i64,
    by: Option<i64>,
    reason: &str,
    now: Millis,
) -> Result<bool, sqlx::Error> {
    let changed = sqlx::query(
        "UPDATE grants SET revoked_at = ?, revoked_by = ?, revoke_reason = ? WHERE id = ? AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(by)
    .bind(reason)
    .bind(grant_id)
    .execute(&mut ***tx)
    .await?
    .rows_affected();
    Ok(changed == 1)
}

/// Revokes every open grant of a user inside the caller's transaction
/// (offboarding). Returns the revoked grants' ids and roles.
pub async fn revoke_all_in(
    tx: &mut WriteTx,
    actor: &Actor,
    actor_id: Option<i64>,
    user_id: i64,
    reason: &str,
    now: Millis,
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    let sql = format!(
        "SELECT {GRANT_COLS} FROM grants WHERE user_id = ? AND revoked_at IS NULL{}",
        tx.for_update()
    );
    let rows = sqlx::query(&sql).bind(user_id).fetch_all(&mut ***tx).await?;
    let open: Vec<Grant> = rows.iter().map(access::grant_from_row).collect::<Result<_, _>>()?;
    sqlx::query(
        "UPDATE grants SET revoked_at = ?, revoked_by = ?, revoke_reason = ? WHERE user_id = ? AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(actor_id)
    .bind(reason)
    .bind(user_id)
    .execute(&mut ***tx)
    .await?;
    let events = open
        .iter()
        .map(|g| {
            NewEvent::new("grant.revoked", Outcome::Success, actor.clone())
                .target("user", user_id)
                .reason(reason.to_owned())
                .details(json!({ "grant_id": g.id, "role": g.role, "state_before": state_of(g, now) }))
        })
        .collect();
    audit_log::append(tx, now, events).await?;
    Ok(open.into_iter().map(|g| (g.id, g.role)).collect())
}

/// Records grants that have reached their expiry. They stopped counting
/// at that instant already; this puts the expiry in the audit chain.
pub async fn sweep_expired(st: &AppState) -> Result<usize, sqlx::Error> {
    // Everything due now, a thousand per transaction, so a burst of
    // simultaneous expiries is recorded within the same run.
    let mut total = 0;
    for _ in 0..100 {
        let n = sweep_batch(st, 1_000).await?;
        total += n.0;
        if n.1 < 1_000 {
            break;
        }
    }
    Ok(total)
}

/// Records up to `limit` due expiries in one transaction; returns (recorded,
/// found). The rows are locked first (MySQL `FOR UPDATE`; SQLite holds the
/// write lock), so two processes never record the same expiry twice.
async fn sweep_batch(st: &AppState, limit: i64) -> Result<(usize, usize), sqlx::Error> {
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let sql = format!(
        "SELECT id, user_id, role, expires_at, pending FROM grants WHERE expires_at <= ? AND expiry_recorded_at IS NULL \
         AND revoked_at IS NULL ORDER BY expires_at, id LIMIT ?{}",
        tx.for_update()
    );
    let rows = sqlx::query(&sql).bind(now).bind(limit).fetch_all(&mut **tx).await?;
    if rows.is_empty() {
        return Ok((0, 0));
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?;
    for chunk in ids.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(",");
        let sql =
            format!("UPDATE grants SET expiry_recorded_at = ? WHERE expiry_recorded_at IS NULL AND id IN ({marks})");
        let mut q = sqlx::query(&sql).bind(now);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut **tx).await?;
    }
    let mut events = Vec::with_capacity(rows.len());
    for r in &rows {
        let expires_at: i64 = r.try_get("expires_at")?;
        events.push(
            NewEvent::new("grant.expired", Outcome::Success, Actor::default())
                .target("user", r.try_get::<i64, _>("user_id")?)
                .details(json!({
                    "grant_id": r.try_get::<i64, _>("id")?,
                    "role": text(r, "role")?,
                    "expires_at": expires_at,
                    "recorded_after_ms": now - expires_at,
                    "was_pending": r.try_get::<i64, _>("pending")? != 0,
                })),
        );
    }
    let n = events.len();
    audit_log::append(&mut tx, now, events).await?;
    tx.commit().await?;
    Ok((n, rows.len()))
}

// ---------------------------------------------------------------- custom roles

pub struct RoleInput {
    pub key: String,
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
    pub max_duration: String,
    pub requestable: bool,
}

fn role_from_input(input: &RoleInput) -> Result<RoleDef, AppError> {
    let mut perms = PermissionSet::EMPTY;
    for id in &input.permissions {
        let p = Permission::parse(id.trim()).ok_or_else(|| {
            AppError::Validation(format!(
                "Unknown permission \"{}\".",
                id.chars().take(40).collect::<String>()
            ))
        })?;
        perms.insert(p);
    }
    let max_duration = rules::parse_duration(&input.max_duration)?;
    let def = RoleDef {
        key: input.key.trim().to_owned(),
        name: input.name.trim().to_owned(),
        description: input.description.trim().to_owned(),
        permissions: perms,
        max_duration,
        requestable: input.requestable,
        builtin: false,
    };
    roles::validate_custom(&def)?;
    Ok(def)
}

fn role_json(r: &RoleDef) -> serde_json::Value {
    json!({
        "name": r.name,
        "description": r.description,
        "permissions": r.permissions.to_list(),
        "max_duration_ms": r.max_duration,
        "requestable": r.requestable,
    })
}

/// Creates a custom role, or changes one. A change applies to everyone who
/// holds the role, so it must not break separation of duties for any holder.
pub async fn save_role(st: &AppState, ctx: &RequestCtx, p: &Principal, input: RoleInput) -> Result<(), AppError> {
    let def = match role_from_input(&input) {
        Ok(d) => d,
        Err(e) if roles::is_builtin(input.key.trim()) => {
            let ev = NewEvent::new("role.save", Outcome::Denied, ctx.actor()).target("role", input.key.trim());
            return Err(refuse(st, ev, AppError::Refused(e.to_string())).await?);
        }
        Err(e) => return Err(e),
    };
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let existing = access::custom_roles(&mut **tx)
        .await?
        .into_iter()
        .find(|r| r.def.key == def.key);
    let event = match existing {
        Some(old) if old.deleted_at.is_some() => {
            return Err(AppError::Conflict(
                "A deleted role's identifier cannot be used again; choose another.".into(),
            ));
        }
        Some(old) => {
            // Holders' other grants together with the changed role.
            let all = access::catalogue(&mut **tx).await?;
            let rows = sqlx::query(&format!(
                "SELECT {GRANT_COLS} FROM grants WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)"
            ))
            .bind(now)
            .fetch_all(&mut **tx)
            .await?;
            let open: Vec<Grant> = rows.iter().map(access::grant_from_row).collect::<Result<_, _>>()?;
            let holder_ids: Vec<i64> = open.iter().filter(|g| g.role == def.key).map(|g| g.user_id).collect();
            for uid in &holder_ids {
                let perms = open
                    .iter()
                    .filter(|g| g.user_id == *uid && g.role != def.key)
                    .filter_map(|g| all.iter().find(|r| r.key == g.role))
                    .fold(def.permissions, |acc, r| acc.union(r.permissions));
                if roles::conflicts(perms) {
                    drop(tx);
                    let ev = NewEvent::new("role.save", Outcome::Denied, ctx.actor()).target("role", &def.key);
                    let err = AppError::Conflict(format!(
                        "This change would give user {uid} both access management and the audit trail (separation of duties)."
                    ));
                    return Err(refuse(st, ev, err).await?);
                }
            }
            sqlx::query(
                "UPDATE roles SET name = ?, description = ?, permissions = ?, max_duration_ms = ?, requestable = ?, updated_at = ? WHERE role_key = ?",
            )
            .bind(&def.name)
            .bind(&def.description)
            .bind(def.permissions.to_list())
            .bind(def.max_duration)
            .bind(def.requestable as i64)
            .bind(now)
            .bind(&def.key)
            .execute(&mut **tx)
            .await?;
            NewEvent::new("role.updated", Outcome::Success, ctx.actor())
                .target("role", &def.key)
                .details(json!({
                    "before": role_json(&old.def),
                    "after": role_json(&def),
                    "holders": holder_ids.len(),
                }))
        }
        None => {
            sqlx::query(
                "INSERT INTO roles (role_key, name, description, permissions, max_duration_ms, requestable, created_by, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&def.key)
            .bind(&def.name)
            .bind(&def.description)
            .bind(def.permissions.to_list())
            .bind(def.max_duration)
            .bind(def.requestable as i64)
            .bind(p.user_id)
            .bind(now)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            NewEvent::new("role.created", Outcome::Success, ctx.actor())
                .target("role", &def.key)
                .details(json!({ "before": null, "after": role_json(&def) }))
        }
    };
    audit_log::append(&mut tx, now, vec![event]).await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes a custom role nobody holds. Built-in roles cannot be deleted.
pub async fn delete_role(st: &AppState, ctx: &RequestCtx, key: &str) -> Result<(), AppError> {
    let now = st.clock.now();
    let denied = |why: AppError| async move {
        let ev = NewEvent::new("role.delete", Outcome::Denied, ctx.actor())
            .target("role", key.chars().take(40).collect::<String>());
        refuse(st, ev, why).await
    };
    if roles::is_builtin(key) {
        return Err(denied(AppError::Refused(format!(
            "\"{key}\" is a built-in role; built-in roles cannot be deleted."
        )))
        .await?);
    }
    let mut tx = st.db.begin_write().await?;
    let Some(old) = access::custom_roles(&mut **tx)
        .await?
        .into_iter()
        .find(|r| r.def.key == key && r.deleted_at.is_none())
    else {
        return Err(AppError::NotFound);
    };
    let in_use: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM grants WHERE role = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
    )
    .bind(key)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?
    .try_get("n")?;
    if in_use > 0 {
        drop(tx);
        let msg = format!("The role is in use by {in_use} grant(s); revoke them first.");
        return Err(denied(AppError::Conflict(msg)).await?);
    }
    sqlx::query("UPDATE roles SET deleted_at = ?, updated_at = ? WHERE role_key = ?")
        .bind(now)
        .bind(now)
        .bind(key)
        .execute(&mut **tx)
        .await?;
    audit_log::append(
        &mut tx,
        now,
        vec![NewEvent::new("role.deleted", Outcome::Success, ctx.actor())
            .target("role", key)
            .details(json!({ "before": role_json(&old.def), "after": null }))],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
