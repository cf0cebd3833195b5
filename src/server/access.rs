//! Authorization: the role catalogue as stored, an employee's grants, and
//! the one check every server function and route goes through. A refusal
//! is recorded in the audit chain as denied.

use super::{
    audit_log,
    auth::{AuthState, RequestCtx},
    db::{opt_text, text},
    state::AppState,
};
use crate::domain::{
    audit::{NewEvent, Outcome},
    grants::{Grant, Status},
    permissions::{Permission, PermissionSet},
    roles::{builtin_roles, RoleDef},
    Millis,
};
use crate::errors::AppError;
use serde_json::json;
use sqlx::{any::AnyRow, Any, Executor, Row};

/// A custom role as stored, with its deletion time.
pub struct StoredRole {
    pub def: RoleDef,
    pub deleted_at: Option<Millis>,
}

fn role_from_row(r: &AnyRow) -> Result<StoredRole, sqlx::Error> {
    let perms = text(r, "permissions")?;
    Ok(StoredRole {
        def: RoleDef {
            key: text(r, "role_key")?,
            name: text(r, "name")?,
            description: text(r, "description")?,
            permissions: parse_stored(&perms),
            max_duration: r.try_get("max_duration_ms")?,
            requestable: r.try_get::<i64, _>("requestable")? != 0,
            builtin: false,
        },
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

pub fn grant_from_row(r: &AnyRow) -> Result<Grant, sqlx::Error> {
    Ok(Grant {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        role: text(r, "role")?,
        starts_at: r.try_get("starts_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
        pending: r.try_get::<i64, _>("pending")? != 0,
        customers: opt_text(r, "customer_scope")?.map(|s| parse_scope(&s)),
    })
}

/// A stored customer scope (a JSON array of ids). Unreadable text limits
/// the grant to no customer at all rather than widening it.
pub fn parse_scope(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

pub fn format_scope(customers: &[String]) -> Option<String> {
    (!customers.is_empty()).then(|| serde_json::Value::from(customers.to_vec()).to_string())
}

pub const GRANT_COLS: &str = "id, user_id, role, starts_at, expires_at, revoked_at, pending, customer_scope";

/// A user's grants that are not revoked (active, pending, future or expired).
pub async fn open_grants<'e>(ex: impl Executor<'e, Database = Any>, user_id: i64) -> Result<Vec<Grant>, sqlx::Error> {
    let sql = format!("SELECT {GRANT_COLS} FROM grants WHERE user_id = ? AND revoked_at IS NULL ORDER BY id");
    let rows = sqlx::query(&sql).bind(user_id).fetch_all(ex).await?;
    rows.iter().map(grant_from_row).collect()
}

pub async fn status_of<'e>(ex: impl Executor<'e, Database = Any>, user_id: i64) -> Result<Option<Status>, sqlx::Error> {
    let row = sqlx::query("SELECT status FROM users WHERE id = ?")
        .bind(user_id)
        .fetch_optional(ex)
        .await?;
    Ok(row
        .map(|r| text(&r, "status"))
        .transpose()?
        .and_then(|s| Status::parse(&s)))
}

/// The permissions an employee holds at `now`, read from the database
/// (one query, no cache).
pub async fn permissions_at(pool: &sqlx::AnyPool, user_id: i64, now: Millis) -> Result<PermissionSet, sqlx::Error> {
    Ok(super::access_cache::load(pool, user_id, now).await?.permissions(now))
}

/// The permissions an employee holds now, from the cache when `version`
/// (their `access_version` as read in this request) matches it.
pub async fn held(st: &AppState, user_id: i64, version: Option<i64>) -> Result<PermissionSet, sqlx::Error> {
    let now = st.clock.now();
    Ok(st
        .access
        .facts(&st.db.pool, user_id, version, now)
        .await?
        .permissions(now))
}

/// A stored permission list; identifiers no longer in the code grant nothing.
pub(crate) fn parse_stored(list: &str) -> PermissionSet {
    list.split(',')
        .filter_map(Permission::parse)
        .fold(PermissionSet::EMPTY, |mut s, p| {
            s.insert(p);
            s
        })
}

/// Active employees holding an active `admin` grant.
pub async fn active_admin_ids<'e>(ex: impl Executor<'e, Database = Any>, now: Millis) -> Result<Vec<i64>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT DISTINCT g.user_id FROM grants g JOIN users u ON u.id = g.user_id WHERE g.role = 'admin' \
         AND g.revoked_at IS NULL AND g.pending = 0 AND g.starts_at <= ? AND (g.expires_at IS NULL OR g.expires_at > ?) \
         AND u.status = 'active' ORDER BY g.user_id",
    )
    .bind(now)
    .bind(now)
    .fetch_all(ex)
    .await?;
    rows.iter().map(|r| r.try_get("user_id")).collect()
}

/// The signed-in employee and what they may do.
#[derive(Debug, Clone)]
pub struct Principal {
    pub auth: AuthState,
    pub user_id: i64,
    pub perms: PermissionSet,
}

/// Allows the call when the signed-in employee holds `perm`; otherwise
/// records the refusal (denied) and answers 403. `operation` names what was
/// attempted, for the audit trail.
pub async fn require(
    st: &AppState,
    ctx: &RequestCtx,
    perm: Permission,
    operation: &str,
) -> Result<Principal, AppError> {
    require_any(st, ctx, &[perm], operation).await
}

pub async fn require_any(
    st: &AppState,
    ctx: &RequestCtx,
    perms: &[Permission],
    operation: &str,
) -> Result<Principal, AppError> {
    let auth = ctx.full()?.clone();
    let held = held(st, auth.user_id, ctx.access_version).await?;
    if perms.iter().any(|p| held.contains(*p)) {
        return Ok(Principal {
            user_id: auth.user_id,
            auth,
            perms: held,
        });
    }
    deny(st, ctx, perms, operation).await?;
    Err(AppError::Forbidden)
}

/// Records a refused call in the audit chain.
pub async fn deny(st: &AppState, ctx: &RequestCtx, perms: &[Permission], operation: &str) -> Result<(), AppError> {
    let needed: Vec<&str> = perms.iter().map(|p| p.id()).collect();
    tracing::warn!(request_id = %ctx.request_id, operation, ?needed, "permission denied");
    audit_log::record(
        &st.db,
        st.clock.now(),
        NewEvent::new("authz.denied", Outcome::Denied, ctx.actor())
            .target("operation", operation)
            .reason("missing permission")
            .details(json!({ "operation": operation, "needs_any_of": needed })),
    )
    .await?;
    Ok(())
}

/// Display name of a user id, for history views.
pub async fn names<'e>(
    ex: impl Executor<'e, Database = Any>,
) -> Result<std::collections::HashMap<i64, String>, sqlx::Error> {
    let rows = sqlx::query("SELECT id, display_name FROM users").fetch_all(ex).await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, text(r, "display_name")?)))
        .collect()
}

pub fn opt_name(names: &std::collections::HashMap<i64, String>, id: Option<i64>) -> Option<String> {
    id.map(|i| names.get(&i).cloned().unwrap_or_else(|| format!("user {i}")))
}
