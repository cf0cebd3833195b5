//! The employee directory, an employee's page, the signed-in employee's
//! own access, and the least-privilege overview. Read-only.

use super::offboarding::offboarding_report;
use crate::domain::{
    grants::{Status, DEPARTMENTS},
    offboarding::CHECKLIST,
    roles,
    session_policy::step_up_fresh,
    Millis, HOUR,
};
use crate::dto::*;
use crate::errors::AppError;
use crate::server::{
    access::{
        authz::{self, Principal},
        grants::{self, grant_info, sources_view, RECORD_COLS},
        roles as role_store,
    },
    audit::activity,
    identity::{accounts, invitations, passkeys},
    platform::{
        db::{opt_text, text},
        names,
        time::format_time,
    },
    state::AppState,
};
use sqlx::Row;
use std::collections::HashMap;

pub(super) struct Person {
    pub(super) id: i64,
    pub(super) name: String,
    pub(super) email: String,
    pub(super) department: String,
    /// An unknown stored status reads as suspended: it grants nothing.
    pub(super) status: Status,
    pub(super) mfa: bool,
    pub(super) offboard_at: Option<Millis>,
    pub(super) status_reason: Option<String>,
    pub(super) offboarded_at: Option<Millis>,
    pub(super) offboarded_by: Option<i64>,
}

pub(super) async fn people(st: &AppState, id: Option<i64>) -> Result<Vec<Person>, sqlx::Error> {
    let base = "SELECT id, display_name, email, department, status, totp_secret_enc, offboard_at, status_reason, \
        offboarded_at, offboarded_by FROM users";
    let rows = match id {
        Some(id) => {
            sqlx::query(&format!("{base} WHERE id = ?"))
                .bind(id)
                .fetch_all(st.db.pool())
                .await?
        }
        None => {
            sqlx::query(&format!("{base} ORDER BY display_name"))
                .fetch_all(st.db.pool())
                .await?
        }
    };
    rows.iter()
        .map(|r| {
            Ok(Person {
                id: r.try_get("id")?,
                name: text(r, "display_name")?,
                email: text(r, "email")?,
                department: text(r, "department")?,
                status: Status::parse(&text(r, "status")?).unwrap_or(Status::Suspended),
                mfa: opt_text(r, "totp_secret_enc")?.is_some(),
                offboard_at: r.try_get("offboard_at")?,
                status_reason: opt_text(r, "status_reason")?,
                offboarded_at: r.try_get("offboarded_at")?,
                offboarded_by: r.try_get("offboarded_by")?,
            })
        })
        .collect()
}

/// Active role keys per user.
async fn active_roles_by_user(st: &AppState, now: Millis) -> Result<HashMap<i64, Vec<String>>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT user_id, role FROM grants WHERE revoked_at IS NULL AND pending = 0 AND starts_at <= ? AND \
            (expires_at IS NULL OR expires_at > ?) ORDER BY role",
    )
    .bind(now)
    .bind(now)
    .fetch_all(st.db.pool())
    .await?;
    let mut m: HashMap<i64, Vec<String>> = HashMap::new();
    for r in &rows {
        m.entry(r.try_get("user_id")?).or_default().push(text(r, "role")?);
    }
    Ok(m)
}

fn row_view(p: &Person, role_keys: &[String], roles: &[roles::RoleDef]) -> EmployeeRow {
    EmployeeRow {
        id: p.id,
        name: p.name.clone(),
        email: p.email.clone(),
        department: p.department.clone(),
        status: p.status,
        roles: role_keys
            .iter()
            .map(|k| {
                roles
                    .iter()
                    .find(|r| &r.key == k)
                    .map(|r| r.name.clone())
                    .unwrap_or_else(|| k.clone())
            })
            .collect(),
        mfa: p.mfa,
        offboard_at: p.offboard_at.map(format_time),
    }
}

/// Directory filters; empty strings mean "any".
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub q: String,
    pub department: String,
    pub role: String,
    pub status: String,
    pub mfa: String,
}

pub async fn list(st: &AppState, f: &Filter) -> Result<Vec<EmployeeRow>, AppError> {
    let check = |v: &str, allowed: &[&str], what: &str| -> Result<(), AppError> {
        if v.is_empty() || allowed.contains(&v) {
            Ok(())
        } else {
            Err(AppError::Validation(format!("Unknown {what} filter.")))
        }
    };
    check(&f.department, &DEPARTMENTS, "department")?;
    check(&f.status, &["invited", "active", "suspended", "offboarded"], "status")?;
    check(&f.mfa, &["enrolled", "missing"], "MFA")?;
    if f.q.chars().count() > 100 || f.role.len() > 40 {
        return Err(AppError::Validation("The search is too long.".into()));
    }
    let now = st.clock.now();
    let roles = role_store::all_roles(st.db.pool()).await?;
    let by_user = active_roles_by_user(st, now).await?;
    let q = f.q.trim().to_lowercase();
    let empty = Vec::new();
    Ok(people(st, None)
        .await?
        .iter()
        .filter(|p| q.is_empty() || p.name.to_lowercase().contains(&q) || p.email.contains(&q))
        .filter(|p| f.department.is_empty() || p.department == f.department)
        .filter(|p| f.status.is_empty() || p.status.as_str() == f.status)
        .filter(|p| f.mfa.is_empty() || (f.mfa == "enrolled") == p.mfa)
        .filter(|p| f.role.is_empty() || by_user.get(&p.id).is_some_and(|v| v.contains(&f.role)))
        .map(|p| row_view(p, by_user.get(&p.id).unwrap_or(&empty), &roles))
        .collect())
}

pub(super) async fn checklist(
    st: &AppState,
    user_id: i64,
    names: &HashMap<i64, String>,
) -> Result<Vec<ChecklistEntry>, sqlx::Error> {
    let rows = sqlx::query("SELECT item, done_by, done_at FROM offboarding_checklist WHERE user_id = ?")
        .bind(user_id)
        .fetch_all(st.db.pool())
        .await?;
    let mut done: HashMap<String, (i64, i64)> = HashMap::new();
    for r in &rows {
        done.insert(text(r, "item")?, (r.try_get("done_by")?, r.try_get("done_at")?));
    }
    Ok(CHECKLIST
        .iter()
        .map(|(k, label)| ChecklistEntry {
            item: (*k).into(),
            label: (*label).into(),
            done_by: done.get(*k).and_then(|(by, _)| names::opt_name(names, Some(*by))),
            done_at: done.get(*k).map(|(_, at)| format_time(*at)),
        })
        .collect())
}

pub async fn detail(st: &AppState, p: &Principal, user_id: i64) -> Result<EmployeeDetail, AppError> {
    let now = st.clock.now();
    let person = people(st, Some(user_id))
        .await?
        .into_iter()
        .next()
        .ok_or(AppError::NotFound)?;
    let all_roles = role_store::all_roles(st.db.pool()).await?;
    let names = names::names(st.db.pool()).await?;
    let records = grants::user_grant_records(st, user_id).await?;
    let status = person.status;
    let gs: Vec<_> = records.iter().map(|r| r.grant.clone()).collect();
    let active_keys: Vec<String> = gs.iter().filter(|g| g.is_active(now)).map(|g| g.role.clone()).collect();
    let sessions =
        sqlx::query("SELECT id_hash, created_at, last_seen FROM sessions WHERE user_id = ? ORDER BY last_seen DESC")
            .bind(user_id)
            .fetch_all(st.db.pool())
            .await?
            .iter()
            .map(|r| {
                Ok(SessionInfo {
                    tag: text(r, "id_hash")?.chars().take(8).collect(),
                    started: format_time(r.try_get("created_at")?),
                    last_seen: format_time(r.try_get("last_seen")?),
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let invitation_expires_at = invitations::open_until(st.db.pool(), user_id, now).await?;
    let catalogue = role_store::catalogue(st.db.pool()).await?;
    Ok(EmployeeDetail {
        employee: row_view(&person, &active_keys, &all_roles),
        status_reason: person.status_reason.clone(),
        grants: records.iter().map(|r| grant_info(r, &all_roles, &names, now)).collect(),
        permissions: sources_view(status, &gs, &all_roles, now),
        sessions,
        activity: activity::for_user(st, user_id, 30).await?,
        checklist: checklist(st, user_id, &names).await?,
        invitation_expires_at: invitation_expires_at.map(format_time),
        managed_by_provider: accounts::managed_by_provider(st.db.pool(), user_id).await?,
        offboarded_at: person.offboarded_at.map(format_time),
        offboarded_by: names::opt_name(&names, person.offboarded_by),
        is_self: p.user_id == user_id,
        step_up_fresh: step_up_fresh(p.auth.mfa_at, now),
        roles: catalogue.iter().map(|r| role_store::role_info(r, 0)).collect(),
    })
}

/// The signed-in employee's own permissions and grants.
pub async fn my_access(st: &AppState, user_id: i64) -> Result<MyAccessView, AppError> {
    let now = st.clock.now();
    let status = authz::status_of(st.db.pool(), user_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let all_roles = role_store::all_roles(st.db.pool()).await?;
    let names = names::names(st.db.pool()).await?;
    let records = grants::user_grant_records(st, user_id).await?;
    let gs: Vec<_> = records.iter().map(|r| r.grant.clone()).collect();
    Ok(MyAccessView {
        permissions: sources_view(status, &gs, &all_roles, now),
        grants: records.iter().map(|r| grant_info(r, &all_roles, &names, now)).collect(),
    })
}

// ---------------------------------------------------------------- overview

/// Grants behind the overview's numbers.
pub async fn grant_list(st: &AppState, filter: &str) -> Result<Vec<GrantInfo>, AppError> {
    let now = st.clock.now();
    let roles = role_store::all_roles(st.db.pool()).await?;
    let names = names::names(st.db.pool()).await?;
    let sql = format!(
        "SELECT {RECORD_COLS} FROM grants WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?) ORDER BY id DESC"
    );
    let rows = sqlx::query(&sql).bind(now).fetch_all(st.db.pool()).await?;
    let recs: Vec<_> = rows.iter().map(grants::record_from_row).collect::<Result<_, _>>()?;
    let critical = |role: &str| {
        roles
            .iter()
            .find(|r| r.key == role)
            .is_some_and(|r| r.permissions.has_critical())
    };
    let keep = |r: &grants::GrantRecord| -> Result<bool, AppError> {
        let g = &r.grant;
        Ok(match filter {
            "" | "open" => true,
            "critical" => critical(&g.role) && g.expires_at.is_none() && !g.pending,
            "expiring" => g.expires_at.is_some_and(|e| e - now <= 7 * 24 * HOUR) && !g.pending,
            "pending" => g.pending,
            _ => return Err(AppError::Validation("Unknown grant filter.".into())),
        })
    };
    let mut out = Vec::new();
    for r in &recs {
        if keep(r)? {
            out.push(grant_info(r, &roles, &names, now));
        }
    }
    Ok(out)
}

/// Administrators whose access requires a passkey
/// (`GATEHOUSE_REQUIRE_PASSKEY=administrators`) and who have none: they
/// can sign in only to add one. Names, with ids.
async fn lacking_passkey(st: &AppState, admin_ids: &[i64], all: &[Person]) -> Result<Vec<(i64, String)>, AppError> {
    let mut out = Vec::new();
    if !st.config.require_passkey.administrators {
        return Ok(out);
    }
    for &id in admin_ids {
        if passkeys::of_user(st.db.pool(), id).await?.is_empty() && !authz::emergency_administrator(st, id).await? {
            let name = all
                .iter()
                .find(|p| p.id == id)
                .map(|p| p.name.clone())
                .unwrap_or_default();
            out.push((id, name));
        }
    }
    Ok(out)
}

pub async fn dashboard(st: &AppState) -> Result<DashboardView, AppError> {
    let now = st.clock.now();
    let all = people(st, None).await?;
    let admin_ids = grants::active_admin_ids(&mut *st.db.pool().acquire().await?, now).await?;
    let live = |p: &&Person| matches!(p.status, Status::Active | Status::Invited);
    let count = |f: &dyn Fn(&Person) -> bool| all.iter().filter(|p| f(p)).count() as i64;
    Ok(DashboardView {
        passkeys_required: st.config.require_passkey.administrators,
        lacking_passkey: lacking_passkey(st, &admin_ids, &all).await?,
        employees: all.iter().filter(live).count() as i64,
        without_mfa: count(&|p| matches!(p.status, Status::Active | Status::Invited) && !p.mfa),
        critical_standing: grant_list(st, "critical").await?.len() as i64,
        expiring_soon: grant_list(st, "expiring").await?.len() as i64,
        admins: admin_ids.len() as i64,
        offboarding: offboarding_report(st)
            .await?
            .iter()
            .filter(|r| r.status != Status::Offboarded || r.checklist.iter().any(|c| c.done_at.is_none()))
            .count() as i64,
        suspended: count(&|p| p.status == Status::Suspended),
        pending_approvals: grant_list(st, "pending").await?.len() as i64,
    })
}
