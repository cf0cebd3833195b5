//! Changes to a role that wait for a second administrator (the
//! `role_changes` table): proposed by `roles::save_role` when a change adds
//! administrator power, an `audit:*` or a critical permission while two or
//! more administrators exist; approved by another administrator (then
//! applied, in the same transaction), or rejected or withdrawn.

use super::{
    authz::{refuse, Principal},
    grants,
    roles::{self as role_store, parse_stored},
};
use crate::domain::actions::Action;
use crate::domain::{
    audit::{NewEvent, Outcome},
    permissions::{Permission, PermissionSet},
    roles::{self, RoleDef},
    Millis,
};
use crate::dto::RoleChangeView;
use crate::errors::AppError;
use crate::server::{
    audit,
    platform::{
        db::{text, WriteTx},
        names,
        request::RequestCtx,
        time::format_time,
    },
    state::AppState,
};
use serde_json::json;
use sqlx::{any::AnyRow, Any, Executor, Row};

const COLS: &str = "id, role_key, name, description, permissions, max_duration_ms, requestable, base_permissions, \
                    proposed_by, proposed_at, outcome";

struct Change {
    id: i64,
    def: RoleDef,
    base: PermissionSet,
    proposed_by: i64,
    proposed_at: Millis,
    decided: bool,
}

fn from_row(r: &AnyRow) -> Result<Change, sqlx::Error> {
    Ok(Change {
        id: r.try_get("id")?,
        def: role_store::def_from_row(r)?,
        base: parse_stored(&text(r, "base_permissions")?),
        proposed_by: r.try_get("proposed_by")?,
        proposed_at: r.try_get("proposed_at")?,
        decided: r.try_get::<Option<String>, _>("outcome")?.is_some(),
    })
}

/// The waiting change of a role, if any.
pub async fn waiting_for<'e>(ex: impl Executor<'e, Database = Any>, key: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query("SELECT id FROM role_changes WHERE role_key = ? AND outcome IS NULL")
        .bind(key)
        .fetch_optional(ex)
        .await?
        .map(|r| r.try_get("id"))
        .transpose()
}

/// Stores a change to wait for a second administrator; `base` is the role's
/// permissions as the proposer saw them.
pub async fn propose(
    tx: &mut WriteTx,
    def: &RoleDef,
    base: PermissionSet,
    by: i64,
    now: Millis,
) -> Result<i64, sqlx::Error> {
    tx.insert_returning_id(
        sqlx::query(
            "INSERT INTO role_changes (role_key, name, description, permissions, max_duration_ms, requestable, \
             base_permissions, proposed_by, proposed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&def.key)
        .bind(&def.name)
        .bind(&def.description)
        .bind(def.permissions.to_list())
        .bind(def.max_duration)
        .bind(def.requestable as i64)
        .bind(base.to_list())
        .bind(by)
        .bind(now),
    )
    .await
}

fn ids(perms: PermissionSet) -> Vec<String> {
    perms.iter().map(Permission::id).map(str::to_owned).collect()
}

/// Changes that wait, oldest first.
pub async fn waiting(st: &AppState, viewer: i64) -> Result<Vec<RoleChangeView>, AppError> {
    let sql = format!("SELECT {COLS} FROM role_changes WHERE outcome IS NULL ORDER BY id");
    let rows = sqlx::query(&sql).fetch_all(st.db.pool()).await?;
    let names = names::names(st.db.pool()).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let c = from_row(r)?;
        out.push(RoleChangeView {
            id: c.id,
            role: c.def.key.clone(),
            role_name: c.def.name.clone(),
            added: ids(c.def.permissions.without(c.base)),
            removed: ids(c.base.without(c.def.permissions)),
            proposed_by: names::opt_name(&names, Some(c.proposed_by)).unwrap_or_default(),
            proposed_at: format_time(c.proposed_at),
            mine: c.proposed_by == viewer,
        });
    }
    Ok(out)
}

/// Approves (applies) or rejects a waiting change. Its author may withdraw
/// it but never approve it; a role changed since the proposal is not
/// overwritten. Refusals are recorded.
pub async fn decide(st: &AppState, ctx: &RequestCtx, p: &Principal, id: i64, approve: bool) -> Result<(), AppError> {
    let action = if approve {
        Action::RoleChangeApproved
    } else {
        Action::RoleChangeRejected
    };
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    grants::lock_administrators(&mut tx).await?;
    let sql = format!("SELECT {COLS} FROM role_changes WHERE id = ?{}", tx.for_update());
    let row = sqlx::query(&sql).bind(id).fetch_optional(tx.conn()).await?;
    let change = row.as_ref().map(from_row).transpose()?.ok_or(AppError::NotFound)?;
    if change.decided {
        return Err(AppError::Conflict("This change was already decided.".into()));
    }
    let checked: Result<Option<(RoleDef, usize)>, AppError> = async {
        let admins = grants::active_admin_ids(tx.conn(), now).await?;
        roles::check_role_change_decision(p.user_id, change.proposed_by, admins.contains(&p.user_id), approve)?;
        if !approve {
            return Ok(None);
        }
        let current = role_store::custom_roles(tx.conn())
            .await?
            .into_iter()
            .find(|r| r.def.key == change.def.key && r.deleted_at.is_none())
            .ok_or_else(|| AppError::Conflict("The role was deleted.".into()))?;
        if current.def.permissions != change.base {
            return Err(AppError::Conflict(
                "The role changed after this was proposed; reject it and propose the change again.".into(),
            ));
        }
        let holders = role_store::holders_check(&mut tx, &change.def, now).await??;
        Ok(Some((current.def, holders)))
    }
    .await;
    let applied = match checked {
        Ok(a) => a,
        Err(e) => {
            drop(tx);
            let ev = NewEvent::new(action, Outcome::Denied, ctx.actor()).target("role_change", id);
            return Err(refuse(st, ev, e).await?);
        }
    };
    sqlx::query("UPDATE role_changes SET outcome = ?, decided_by = ?, decided_at = ? WHERE id = ? AND outcome IS NULL")
        .bind(if approve { "approved" } else { "rejected" })
        .bind(p.user_id)
        .bind(now)
        .bind(id)
        .execute(tx.conn())
        .await?;
    let mut events = vec![NewEvent::new(action, Outcome::Success, ctx.actor())
        .target("role_change", id)
        .details(json!({
            "role": change.def.key,
            "proposed_by": change.proposed_by,
            "withdrawn": !approve && p.user_id == change.proposed_by,
        }))];
    if let Some((before, holders)) = applied {
        role_store::update_in(&mut tx, &change.def, now).await?;
        events.push(
            NewEvent::new(Action::RoleUpdated, Outcome::Success, ctx.actor())
                .target("role", &change.def.key)
                .details(json!({
                    "before": role_store::role_json(&before),
                    "after": role_store::role_json(&change.def),
                    "holders": holders,
                    "change_id": id,
                    "proposed_by": change.proposed_by,
                    "approved_by": p.user_id,
                })),
        );
    }
    audit::append(&mut tx, now, events).await?;
    tx.commit().await?;
    Ok(())
}
