//! The privileges roles carry on targets (`db_role_privileges`). Adding
//! one is checked against the target's catalogue; while two or more
//! administrators exist it waits for a second one, like a grant of
//! administrator power, and reaches the target only once approved.
//! Taking one away needs nobody else: it only narrows access.

use super::connector::{Session, TargetError};
use super::targets::{load, unreachable};
use crate::domain::actions::Action;
use crate::domain::audit::{NewEvent, Outcome};
use crate::domain::databases::{self as rules, Mapping, Privilege, Scope};
use crate::errors::AppError;
use crate::server::{
    access::grants,
    audit,
    platform::{
        db::{text, WriteTx},
        request::RequestCtx,
    },
    state::AppState,
};
use serde_json::json;
use sqlx::Row;

/// A stored privilege of a role on a target.
pub struct Stored {
    pub id: i64,
    pub target_id: i64,
    pub mapping: Mapping,
    /// Proposed, waiting for a second administrator.
    pub waiting: bool,
    pub proposed_by: i64,
}

/// Every stored privilege, waiting or not, of a target (all with `None`).
pub async fn all(st: &AppState, target: Option<i64>) -> Result<Vec<Stored>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, target_id, role_key, privilege, schema_name, table_name, column_name, state, created_by \
         FROM db_role_privileges WHERE (? IS NULL OR target_id = ?) \
         ORDER BY role_key, schema_name, table_name, column_name, privilege",
    )
    .bind(target)
    .bind(target)
    .fetch_all(st.db.pool())
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let opt = |c: &str| -> Result<Option<String>, sqlx::Error> { Ok(Some(text(&r, c)?).filter(|s| !s.is_empty())) };
        let Some(privilege) = Privilege::parse(&text(&r, "privilege")?) else {
            continue;
        };
        out.push(Stored {
            id: r.try_get("id")?,
            target_id: r.try_get("target_id")?,
            mapping: Mapping {
                role: text(&r, "role_key")?,
                privilege,
                scope: Scope {
                    schema: text(&r, "schema_name")?,
                    table: opt("table_name")?,
                    column: opt("column_name")?,
                },
            },
            waiting: text(&r, "state")? != "active",
            proposed_by: r.try_get("created_by")?,
        });
    }
    Ok(out)
}

/// The approved privileges of a target: what reaches it.
pub async fn active(st: &AppState, target: Option<i64>) -> Result<Vec<Mapping>, sqlx::Error> {
    Ok(all(st, target)
        .await?
        .into_iter()
        .filter(|s| !s.waiting)
        .map(|s| s.mapping)
        .collect())
}

/// What an administrator chose for a mapping.
pub struct MappingInput {
    pub target: i64,
    pub role: String,
    pub privilege: String,
    pub schema: String,
    pub table: String,
    pub column: String,
}

/// Every account on the target is reconciled again at the next pass: the
/// roles due to each may have changed with the mappings.
async fn reconcile_all(tx: &mut WriteTx, target: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE db_accounts SET applied_version = -1 WHERE target_id = ?")
        .bind(target)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Grants a privilege to its role's database role on the target.
async fn grant_on_target(st: &AppState, target: &super::targets::Target, m: &Mapping) -> Result<String, AppError> {
    let role = st.config.db_names.role(&m.role).ok_or(AppError::NotFound)?;
    let mut s = Session::open(&target.endpoint).await.map_err(unreachable)?;
    let granted = s.ensure_role(&role, std::slice::from_ref(m)).await.map_err(unreachable);
    s.close().await;
    granted.map(|_| role)
}

/// Adds a privilege to a role on a target after checking that the target's
/// catalogue holds what it names. Returns whether it waits for a second
/// administrator; otherwise the role's database role holds it at once.
pub async fn map(st: &AppState, ctx: &RequestCtx, i: MappingInput) -> Result<bool, AppError> {
    let by = ctx.actor().user_id.ok_or(AppError::Forbidden)?;
    let m = rules::check_mapping(
        &st.config.db_names,
        &i.role,
        &i.privilege,
        &i.schema,
        &i.table,
        &i.column,
    )
    .map_err(|e| AppError::Validation(e.to_string()))?;
    let known = crate::server::access::roles::catalogue(st.db.pool())
        .await?
        .iter()
        .any(|r| r.key == m.role);
    if !known {
        return Err(AppError::Validation(format!("There is no role {}.", m.role)));
    }
    let target = load(st, i.target).await?.ok_or(AppError::NotFound)?;
    let mut s = Session::open(&target.endpoint).await.map_err(unreachable)?;
    let exists = s.exists(&m).await.map_err(unreachable);
    s.close().await;
    if !exists? {
        return Err(AppError::Validation(format!(
            "{} has no {} (checked in its catalogue).",
            target.name,
            describe(&m.scope)
        )));
    }
    let now = st.clock.now();
    let (table, column) = (
        m.scope.table.clone().unwrap_or_default(),
        m.scope.column.clone().unwrap_or_default(),
    );
    let held: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM db_role_privileges WHERE target_id = ? AND role_key = ? AND privilege = ? \
         AND schema_name = ? AND table_name = ? AND column_name = ?",
    )
    .bind(target.id)
    .bind(&m.role)
    .bind(m.privilege.sql())
    .bind(&m.scope.schema)
    .bind(&table)
    .bind(&column)
    .fetch_one(st.db.pool())
    .await?;
    if held > 0 {
        return Err(AppError::Conflict(
            "The role already carries that privilege there (or it waits for approval).".into(),
        ));
    }
    let waits = {
        let mut conn = st.db.pool().acquire().await?;
        grants::active_admin_ids(&mut conn, now).await?.len() >= 2
    };
    let role = match waits {
        true => st.config.db_names.role(&m.role).ok_or(AppError::NotFound)?,
        false => grant_on_target(st, &target, &m).await?,
    };
    let mut tx = st.db.begin_write().await?;
    sqlx::query(
        "INSERT INTO db_role_privileges (target_id, role_key, privilege, schema_name, table_name, column_name, \
         created_by, created_at, state, approved_by, approved_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(target.id)
    .bind(&m.role)
    .bind(m.privilege.sql())
    .bind(&m.scope.schema)
    .bind(&table)
    .bind(&column)
    .bind(by)
    .bind(now)
    .bind(if waits { "proposed" } else { "active" })
    .bind((!waits).then_some(by))
    .bind((!waits).then_some(now))
    .execute(tx.conn())
    .await?;
    if !waits {
        reconcile_all(&mut tx, target.id).await?;
    }
    let action = if waits {
        Action::DbPrivilegeProposed
    } else {
        Action::DbPrivilegeMapped
    };
    audit::append(
        &mut tx,
        now,
        vec![NewEvent::new(action, Outcome::Success, ctx.actor())
            .target("db_target", target.id)
            .details(json!({"role": m.role, "db_role": role, "grant": m.grant_clause()}))],
    )
    .await?;
    tx.commit().await?;
    Ok(waits)
}

/// A second administrator approves a waiting privilege: granted on the
/// target, then recorded as active.
pub async fn approve(st: &AppState, ctx: &RequestCtx, id: i64) -> Result<(), AppError> {
    let by = ctx.actor().user_id.ok_or(AppError::Forbidden)?;
    let stored = all(st, None)
        .await?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or(AppError::NotFound)?;
    if !stored.waiting {
        return Err(AppError::Conflict("That privilege is approved already.".into()));
    }
    if stored.proposed_by == by {
        return Err(AppError::Refused(
            "Another administrator must approve a database privilege you proposed.".into(),
        ));
    }
    let target = load(st, stored.target_id).await?.ok_or(AppError::NotFound)?;
    let role = grant_on_target(st, &target, &stored.mapping).await?;
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let done = sqlx::query(
        "UPDATE db_role_privileges SET state = 'active', approved_by = ?, approved_at = ? WHERE id = ? AND state = 'proposed'",
    )
    .bind(by)
    .bind(now)
    .bind(id)
    .execute(tx.conn())
    .await?;
    if done.rows_affected() == 0 {
        return Err(AppError::Conflict("That privilege was decided meanwhile.".into()));
    }
    reconcile_all(&mut tx, target.id).await?;
    audit::append(
        &mut tx,
        now,
        vec![NewEvent::new(Action::DbPrivilegeMapped, Outcome::Success, ctx.actor())
            .target("db_target", target.id)
            .details(json!({
                "role": stored.mapping.role,
                "db_role": role,
                "grant": stored.mapping.grant_clause(),
                "proposed_by": stored.proposed_by,
                "approved_by": by,
            }))],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Takes a privilege from a role on a target: revoked from the database
/// role there first, then forgotten. A waiting one is withdrawn.
pub async fn unmap(st: &AppState, ctx: &RequestCtx, id: i64) -> Result<(), AppError> {
    let stored = all(st, None)
        .await?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or(AppError::NotFound)?;
    let (m, target_id) = (&stored.mapping, stored.target_id);
    let target = load(st, target_id).await?.ok_or(AppError::NotFound)?;
    let role = st.config.db_names.role(&m.role).ok_or(AppError::NotFound)?;
    if !stored.waiting {
        let mut s = Session::open(&target.endpoint).await.map_err(unreachable)?;
        let revoked = s.revoke_privilege(&role, m).await;
        s.close().await;
        match revoked {
            // 1141/1147: the role never held it (granted by hand, or gone).
            Err(TargetError::Sql(e)) if e.contains("1141") || e.contains("1147") => {}
            r => r.map_err(unreachable)?,
        }
    }
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    sqlx::query("DELETE FROM db_role_privileges WHERE id = ?")
        .bind(id)
        .execute(tx.conn())
        .await?;
    reconcile_all(&mut tx, target.id).await?;
    audit::append(
        &mut tx,
        now,
        vec![NewEvent::new(Action::DbPrivilegeUnmapped, Outcome::Success, ctx.actor())
            .target("db_target", target.id)
            .details(json!({"role": m.role, "db_role": role, "revoked": m.grant_clause(), "was_waiting": stored.waiting}))],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

fn describe(s: &Scope) -> String {
    match (&s.table, &s.column) {
        (None, _) => format!("schema {}", s.schema),
        (Some(t), None) => format!("table {}.{t}", s.schema),
        (Some(t), Some(c)) => format!("column {}.{t}.{c}", s.schema),
    }
}
