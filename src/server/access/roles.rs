//! The role catalogue: built-in roles and the custom ones administrators
//! define (the `roles` table), and the views of both.

use crate::domain::actions::Action;
use crate::domain::{
    audit::{NewEvent, Outcome},
    grants::{describe_duration, Grant},
    permissions::{Permission, PermissionSet},
    roles::{self, builtin_roles, RoleDef},
    Millis,
};
use crate::dto::{PermissionInfo, RoleInfo};
use crate::errors::AppError;
use crate::server::{
    access::{
        authz::{refuse, Principal},
        grants::{self, grant_from_row, GRANT_COLS},
        role_changes,
    },
    audit,
    platform::{
        db::{text, WriteTx},
        request::RequestCtx,
    },
    state::AppState,
};
use serde_json::json;
use sqlx::{any::AnyRow, Any, Executor, Row};
use std::collections::HashMap;

/// A custom role as stored, with its deletion time.
pub struct StoredRole {
    pub def: RoleDef,
    pub deleted_at: Option<Millis>,
}

/// A custom role's definition from a row with the `roles` columns (also
/// those of a waiting change in `role_changes`).
pub(super) fn def_from_row(r: &AnyRow) -> Result<RoleDef, sqlx::Error> {
    Ok(RoleDef {
        key: text(r, "role_key")?,
        name: text(r, "name")?,
        description: text(r, "description")?,
        permissions: parse_stored(&text(r, "permissions")?),
        max_duration: r.try_get("max_duration_ms")?,
        requestable: r.try_get::<i64, _>("requestable")? != 0,
        builtin: false,
    })
}

fn role_from_row(r: &AnyRow) -> Result<StoredRole, sqlx::Error> {
    Ok(StoredRole {
        def: def_from_row(r)?,
        deleted_at: r.try_get("deleted_at")?,
    })
}

pub async fn custom_roles<'e>(ex: impl Executor<'e, Database = Any>) -> Result<Vec<StoredRole>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT role_key, name, description, permissions, max_duration_ms, requestable, deleted_at FROM roles ORDER BY name",
    )
    .fetch_all(ex)
    .await?;
    rows.iter().map(role_from_row).collect()
}

/// Built-in roles and the custom roles that are not deleted.
pub async fn catalogue<'e>(ex: impl Executor<'e, Database = Any>) -> Result<Vec<RoleDef>, sqlx::Error> {
    let mut all = builtin_roles();
    all.extend(
        custom_roles(ex)
            .await?
            .into_iter()
            .filter(|r| r.deleted_at.is_none())
            .map(|r| r.def),
    );
    Ok(all)
}

/// Every role, deleted custom ones included (to describe old grants).
pub async fn all_roles<'e>(ex: impl Executor<'e, Database = Any>) -> Result<Vec<RoleDef>, sqlx::Error> {
    let mut all = builtin_roles();
    all.extend(custom_roles(ex).await?.into_iter().map(|r| r.def));
    Ok(all)
}

/// A stored permission list; identifiers no longer in the code grant nothing.
pub fn parse_stored(list: &str) -> PermissionSet {
    list.split(',')
        .filter_map(Permission::parse)
        .fold(PermissionSet::EMPTY, |mut s, p| {
            s.insert(p);
            s
        })
}

// ---------------------------------------------------------------- views

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
        reviewers: Vec::new(),
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
        "SELECT role, COUNT(DISTINCT user_id) AS n FROM grants WHERE revoked_at IS NULL AND (expires_at IS NULL OR \
            expires_at > ?) GROUP BY role",
    )
    .bind(now)
    .fetch_all(st.db.pool())
    .await?;
    rows.iter().map(|r| Ok((text(r, "role")?, r.try_get("n")?))).collect()
}

// ---------------------------------------------------------------- custom roles

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
    let max_duration = crate::domain::grants::parse_duration(&input.max_duration)?;
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

pub(super) fn role_json(r: &RoleDef) -> serde_json::Value {
    json!({
        "name": r.name,
        "description": r.description,
        "permissions": r.permissions.to_list(),
        "max_duration_ms": r.max_duration,
        "requestable": r.requestable,
    })
}

/// Creates a custom role, or changes one; answers whether the change waits
/// for a second administrator. A change applies to everyone who holds the
/// role, so it must not break separation of duties for any holder, and one
/// that adds administrator power, an `audit:*` or a critical permission
/// waits for a second administrator once two exist (`role_changes`).
pub async fn save_role(st: &AppState, ctx: &RequestCtx, p: &Principal, input: RoleInput) -> Result<bool, AppError> {
    let def = match role_from_input(&input) {
        Ok(d) => d,
        Err(e) if roles::is_builtin(input.key.trim()) => {
            let ev = NewEvent::new(Action::RoleSave, Outcome::Denied, ctx.actor()).target("role", input.key.trim());
            return Err(refuse(st, ev, AppError::Refused(e.to_string())).await?);
        }
        Err(e) => return Err(e),
    };
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    grants::lock_administrators(&mut tx).await?;
    let existing = custom_roles(tx.conn())
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
            if role_changes::waiting_for(tx.conn(), &def.key).await?.is_some() {
                return Err(AppError::Conflict(
                    "A change to this role waits for a second administrator; approve or withdraw it first.".into(),
                ));
            }
            let holders = match holders_check(&mut tx, &def, now).await? {
                Ok(h) => h,
                Err(err) => {
                    drop(tx);
                    let ev = NewEvent::new(Action::RoleSave, Outcome::Denied, ctx.actor()).target("role", &def.key);
                    return Err(refuse(st, ev, err).await?);
                }
            };
            let admins = grants::active_admin_ids(tx.conn(), now).await?;
            if roles::change_needs_four_eyes(old.def.permissions, def.permissions, admins.len()) {
                let id = role_changes::propose(&mut tx, &def, old.def.permissions, p.user_id, now).await?;
                let ev = NewEvent::new(Action::RoleChangeRequested, Outcome::Success, ctx.actor())
                    .target("role", &def.key)
                    .details(json!({
                        "change_id": id,
                        "before": role_json(&old.def),
                        "after": role_json(&def),
                        "holders": holders,
                        "awaiting_second_admin": true,
                    }));
                audit::append(&mut tx, now, vec![ev]).await?;
                tx.commit().await?;
                return Ok(true);
            }
            update_in(&mut tx, &def, now).await?;
            NewEvent::new(Action::RoleUpdated, Outcome::Success, ctx.actor())
                .target("role", &def.key)
                .details(json!({
                    "before": role_json(&old.def),
                    "after": role_json(&def),
                    "holders": holders,
                }))
        }
        None => {
            sqlx::query(
                "INSERT INTO roles (role_key, name, description, permissions, max_duration_ms, requestable, created_by, \
                 created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            .execute(tx.conn())
            .await?;
            NewEvent::new(Action::RoleCreated, Outcome::Success, ctx.actor())
                .target("role", &def.key)
                .details(json!({ "before": null, "after": role_json(&def) }))
        }
    };
    audit::append(&mut tx, now, vec![event]).await?;
    tx.commit().await?;
    Ok(false)
}

/// Whether `def` may replace the stored role: every holder's other grants
/// together with it must keep separation of duties. Answers the number of
/// holders, or the refusal.
pub(super) async fn holders_check(
    tx: &mut WriteTx,
    def: &RoleDef,
    now: Millis,
) -> Result<Result<usize, AppError>, sqlx::Error> {
    let all = catalogue(tx.conn()).await?;
    let rows = sqlx::query(&format!(
        "SELECT {GRANT_COLS} FROM grants WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)"
    ))
    .bind(now)
    .fetch_all(tx.conn())
    .await?;
    let open: Vec<Grant> = rows.iter().map(grant_from_row).collect::<Result<_, _>>()?;
    let holder_ids: Vec<i64> = open.iter().filter(|g| g.role == def.key).map(|g| g.user_id).collect();
    for uid in &holder_ids {
        let perms = open
            .iter()
            .filter(|g| g.user_id == *uid && g.role != def.key)
            .filter_map(|g| all.iter().find(|r| r.key == g.role))
            .fold(def.permissions, |acc, r| acc.union(r.permissions));
        if roles::conflicts(perms) {
            return Ok(Err(AppError::Conflict(format!(
                "This change would give user {uid} both access management and the audit trail (separation of duties)."
            ))));
        }
    }
    Ok(Ok(holder_ids.len()))
}

/// Writes a custom role's new definition.
pub(super) async fn update_in(tx: &mut WriteTx, def: &RoleDef, now: Millis) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE roles SET name = ?, description = ?, permissions = ?, max_duration_ms = ?, requestable = ?, \
            updated_at = ? WHERE role_key = ?",
    )
    .bind(&def.name)
    .bind(&def.description)
    .bind(def.permissions.to_list())
    .bind(def.max_duration)
    .bind(def.requestable as i64)
    .bind(now)
    .bind(&def.key)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Deletes a custom role nobody holds. Built-in roles cannot be deleted.
pub async fn delete_role(st: &AppState, ctx: &RequestCtx, key: &str) -> Result<(), AppError> {
    let now = st.clock.now();
    let denied = |why: AppError| async move {
        let ev = NewEvent::new(Action::RoleDelete, Outcome::Denied, ctx.actor())
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
    let Some(old) = custom_roles(tx.conn())
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
    .fetch_one(tx.conn())
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
        .execute(tx.conn())
        .await?;
    audit::append(
        &mut tx,
        now,
        vec![NewEvent::new(Action::RoleDeleted, Outcome::Success, ctx.actor())
            .target("role", key)
            .details(json!({ "before": role_json(&old.def), "after": null }))],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
