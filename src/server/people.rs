//! The employee directory and an employee's life cycle: onboarding by
//! invitation, suspension, offboarding (now or scheduled) and its
//! checklist, and the least-privilege overview.

use super::{
    access::{self, Principal},
    activity::{self, format_time},
    audit_log,
    auth::{self, RequestCtx},
    crypto,
    db::{opt_text, text, WriteTx},
    grants::{self, grant_info, record_from_row, sources_view, RECORD_COLS},
    session_store,
    state::AppState,
    users,
};
use crate::api::types::*;
use crate::domain::{
    audit::{Actor, NewEvent, Outcome},
    grants::{self as rules, Status, DEPARTMENTS},
    offboarding::{self, CHECKLIST},
    permissions::Permission,
    roles,
    session_policy::step_up_fresh,
    validation::{Email, PersonName},
    Millis, HOUR,
};
use crate::errors::AppError;
use serde_json::json;
use sqlx::Row;
use std::collections::HashMap;
use tower_sessions::Session;

struct Person {
    id: i64,
    name: String,
    email: String,
    department: String,
    status: String,
    mfa: bool,
    offboard_at: Option<Millis>,
    status_reason: Option<String>,
    offboarded_at: Option<Millis>,
    offboarded_by: Option<i64>,
}

async fn people(st: &AppState, id: Option<i64>) -> Result<Vec<Person>, sqlx::Error> {
    let base = "SELECT id, display_name, email, department, status, totp_secret_enc, offboard_at, status_reason, offboarded_at, offboarded_by FROM users";
    let rows = match id {
        Some(id) => {
            sqlx::query(&format!("{base} WHERE id = ?"))
                .bind(id)
                .fetch_all(&st.db.pool)
                .await?
        }
        None => {
            sqlx::query(&format!("{base} ORDER BY display_name"))
                .fetch_all(&st.db.pool)
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
                status: text(r, "status")?,
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
        "SELECT user_id, role FROM grants WHERE revoked_at IS NULL AND pending = 0 AND starts_at <= ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY role",
    )
    .bind(now)
    .bind(now)
    .fetch_all(&st.db.pool)
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
        status: p.status.clone(),
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
    let roles = access::all_roles(&st.db.pool).await?;
    let by_user = active_roles_by_user(st, now).await?;
    let q = f.q.trim().to_lowercase();
    let empty = Vec::new();
    Ok(people(st, None)
        .await?
        .iter()
        .filter(|p| q.is_empty() || p.name.to_lowercase().contains(&q) || p.email.contains(&q))
        .filter(|p| f.department.is_empty() || p.department == f.department)
        .filter(|p| f.status.is_empty() || p.status == f.status)
        .filter(|p| f.mfa.is_empty() || (f.mfa == "enrolled") == p.mfa)
        .filter(|p| f.role.is_empty() || by_user.get(&p.id).is_some_and(|v| v.contains(&f.role)))
        .map(|p| row_view(p, by_user.get(&p.id).unwrap_or(&empty), &roles))
        .collect())
}

async fn checklist(
    st: &AppState,
    user_id: i64,
    names: &HashMap<i64, String>,
) -> Result<Vec<ChecklistEntry>, sqlx::Error> {
    let rows = sqlx::query("SELECT item, done_by, done_at FROM offboarding_checklist WHERE user_id = ?")
        .bind(user_id)
        .fetch_all(&st.db.pool)
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
            done_by: done.get(*k).and_then(|(by, _)| access::opt_name(names, Some(*by))),
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
    let all_roles = access::all_roles(&st.db.pool).await?;
    let names = access::names(&st.db.pool).await?;
    let records = grants::user_grant_records(st, user_id).await?;
    let status = Status::parse(&person.status).unwrap_or(Status::Suspended);
    let gs: Vec<_> = records.iter().map(|r| r.grant.clone()).collect();
    let active_keys: Vec<String> = gs.iter().filter(|g| g.is_active(now)).map(|g| g.role.clone()).collect();
    let sessions =
        sqlx::query("SELECT id_hash, created_at, last_seen FROM sessions WHERE user_id = ? ORDER BY last_seen DESC")
            .bind(user_id)
            .fetch_all(&st.db.pool)
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
    let invitation_expires_at: Option<i64> = sqlx::query(
        "SELECT MAX(expires_at) AS e FROM invitations WHERE user_id = ? AND used_at IS NULL AND cancelled_at IS NULL AND expires_at > ?",
    )
    .bind(user_id)
    .bind(now)
    .fetch_one(&st.db.pool)
    .await?
    .try_get("e")?;
    let catalogue = access::catalogue(&st.db.pool).await?;
    Ok(EmployeeDetail {
        employee: row_view(&person, &active_keys, &all_roles),
        status_reason: person.status_reason.clone(),
        grants: records.iter().map(|r| grant_info(r, &all_roles, &names, now)).collect(),
        permissions: sources_view(status, &gs, &all_roles, now),
        sessions,
        activity: activity::for_user(st, user_id, 30).await?,
        checklist: checklist(st, user_id, &names).await?,
        invitation_expires_at: invitation_expires_at.map(format_time),
        offboarded_at: person.offboarded_at.map(format_time),
        offboarded_by: access::opt_name(&names, person.offboarded_by),
        is_self: p.user_id == user_id,
        step_up_fresh: step_up_fresh(p.auth.mfa_at, now),
        roles: catalogue.iter().map(|r| grants::role_info(r, 0)).collect(),
    })
}

/// The signed-in employee's own permissions and grants.
pub async fn my_access(st: &AppState, user_id: i64) -> Result<MyAccessView, AppError> {
    let now = st.clock.now();
    let status = access::status_of(&st.db.pool, user_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let all_roles = access::all_roles(&st.db.pool).await?;
    let names = access::names(&st.db.pool).await?;
    let records = grants::user_grant_records(st, user_id).await?;
    let gs: Vec<_> = records.iter().map(|r| r.grant.clone()).collect();
    Ok(MyAccessView {
        permissions: sources_view(status, &gs, &all_roles, now),
        grants: records.iter().map(|r| grant_info(r, &all_roles, &names, now)).collect(),
    })
}

// ---------------------------------------------------------------- onboarding

pub struct OnboardInput {
    pub name: String,
    pub email: String,
    pub department: String,
    pub roles: Vec<String>,
    pub reason: String,
}

fn invitation_link(st: &AppState, token: &str) -> String {
    let mut url = st.config.public_url.clone();
    url.set_path("/invite");
    url.set_query(Some(&format!("token={token}")));
    url.to_string()
}

async fn new_invitation(tx: &mut WriteTx, user_id: i64, by: i64, now: Millis) -> Result<String, sqlx::Error> {
    let token = crypto::random_token(32);
    sqlx::query(
        "INSERT INTO invitations (user_id, token_hash, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(user_id)
    .bind(crypto::sha256_hex(token.as_bytes()))
    .bind(by)
    .bind(now)
    .bind(now + auth::INVITATION_LIFETIME)
    .execute(&mut ***tx)
    .await?;
    Ok(token)
}

/// Creates an invited employee with initial roles and a single-use
/// invitation link (valid 72 hours). The link is shown once, never stored.
pub async fn onboard(st: &AppState, ctx: &RequestCtx, p: &Principal, input: OnboardInput) -> Result<Invited, AppError> {
    let now = st.clock.now();
    let name = PersonName::parse(&input.name)?;
    let email = Email::parse(&input.email)?;
    if !DEPARTMENTS.contains(&input.department.as_str()) {
        return Err(AppError::Validation("Choose a department.".into()));
    }
    if input.roles.len() > 20 {
        return Err(AppError::Validation("Too many roles.".into()));
    }
    if !input.roles.is_empty() && !p.perms.contains(Permission::AccessGrant) {
        access::deny(st, ctx, &[Permission::AccessGrant], "onboard_employee.roles").await?;
        return Err(AppError::Forbidden);
    }
    let reason = if input.reason.trim().is_empty() {
        "onboarding".to_owned()
    } else {
        rules::check_reason(&input.reason)?
    };
    let mut tx = st.db.begin_write().await?;
    if users::by_email(&mut **tx, email.as_str()).await?.is_some() {
        return Err(AppError::Conflict("An employee with this email already exists.".into()));
    }
    let user_id = users::insert(
        &mut tx,
        users::NewUser {
            email: email.as_str(),
            display_name: name.as_str(),
            department: &input.department,
            password_hash: None,
            status: "invited",
        },
        now,
    )
    .await?;
    audit_log::append(
        &mut tx,
        now,
        vec![NewEvent::new("employee.onboarded", Outcome::Success, ctx.actor())
            .target("user", user_id)
            .details(json!({
                "email": email.as_str(),
                "department": input.department,
                "initial_roles": input.roles,
                "before": null,
                "after": { "status": "invited" },
            }))],
    )
    .await?;
    for role in &input.roles {
        // A rule refusal rolls back the whole onboarding.
        grants::grant_in(&mut tx, ctx.actor(), p.user_id, role, user_id, &reason, None, now).await?;
    }
    let token = new_invitation(&mut tx, user_id, p.user_id, now).await?;
    audit_log::append(
        &mut tx,
        now,
        vec![NewEvent::new("invitation.created", Outcome::Success, ctx.actor())
            .target("user", user_id)
            .details(json!({ "expires_at": now + auth::INVITATION_LIFETIME }))],
    )
    .await?;
    tx.commit().await?;
    Ok(Invited {
        user_id,
        link: invitation_link(st, &token),
        expires_at: format_time(now + auth::INVITATION_LIFETIME),
    })
}

/// A new invitation link for an employee who has not accepted yet; the old
/// link stops working.
pub async fn reissue_invitation(
    st: &AppState,
    ctx: &RequestCtx,
    p: &Principal,
    user_id: i64,
) -> Result<Invited, AppError> {
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let user = users::by_id(&mut **tx, user_id).await?.ok_or(AppError::NotFound)?;
    if user.status != "invited" {
        return Err(AppError::Conflict(
            "Only an employee who has not accepted the invitation can get a new link.".into(),
        ));
    }
    let cancelled = sqlx::query(
        "UPDATE invitations SET cancelled_at = ? WHERE user_id = ? AND used_at IS NULL AND cancelled_at IS NULL",
    )
    .bind(now)
    .bind(user_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let token = new_invitation(&mut tx, user_id, p.user_id, now).await?;
    audit_log::append(
        &mut tx,
        now,
        vec![NewEvent::new("invitation.created", Outcome::Success, ctx.actor())
            .target("user", user_id)
            .details(json!({ "expires_at": now + auth::INVITATION_LIFETIME, "replaced": cancelled }))],
    )
    .await?;
    tx.commit().await?;
    Ok(Invited {
        user_id,
        link: invitation_link(st, &token),
        expires_at: format_time(now + auth::INVITATION_LIFETIME),
    })
}

// ---------------------------------------------------------------- suspension

async fn deactivation_check(tx: &mut WriteTx, actor_id: i64, user_id: i64, now: Millis) -> Result<(), AppError> {
    let admins = access::active_admin_ids(&mut ***tx, now).await?;
    rules::check_deactivate(actor_id, user_id, admins.contains(&user_id), admins.len())?;
    Ok(())
}

async fn denied(
    st: &AppState,
    ctx: &RequestCtx,
    action: &str,
    user_id: i64,
    e: AppError,
) -> Result<AppError, AppError> {
    audit_log::record(
        &st.db,
        st.clock.now(),
        NewEvent::new(action, Outcome::Denied, ctx.actor())
            .target("user", user_id)
            .reason(e.to_string()),
    )
    .await?;
    Ok(e)
}

/// Blocks sign-in and ends every session; grants stay.
pub async fn suspend(
    st: &AppState,
    ctx: &RequestCtx,
    p: &Principal,
    user_id: i64,
    reason: &str,
) -> Result<(), AppError> {
    let now = st.clock.now();
    let reason = rules::check_reason(reason)?;
    let mut tx = st.db.begin_write().await?;
    let user = users::by_id(&mut **tx, user_id).await?.ok_or(AppError::NotFound)?;
    if user.status != "active" && user.status != "invited" {
        return Err(AppError::Conflict(format!(
            "This employee is {}; only active or invited employees can be suspended.",
            user.status
        )));
    }
    if let Err(e) = deactivation_check(&mut tx, p.user_id, user_id, now).await {
        drop(tx);
        return Err(denied(st, ctx, "employee.suspend", user_id, e).await?);
    }
    sqlx::query("UPDATE users SET status = 'suspended', status_reason = ?, updated_at = ? WHERE id = ?")
        .bind(&reason)
        .bind(now)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    let ended = session_store::delete_all_for_user(&mut tx, user_id).await?;
    super::elevation::end_all_in(&mut tx, &ctx.actor(), user_id, "suspended", now).await?;
    audit_log::append(
        &mut tx,
        now,
        vec![NewEvent::new("employee.suspended", Outcome::Success, ctx.actor())
            .target("user", user_id)
            .reason(reason)
            .details(json!({
                "sessions_ended": ended,
                "before": { "status": user.status },
                "after": { "status": "suspended" },
            }))],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn reactivate(st: &AppState, ctx: &RequestCtx, p: &Principal, user_id: i64) -> Result<(), AppError> {
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let user = users::by_id(&mut **tx, user_id).await?.ok_or(AppError::NotFound)?;
    if user.status != "suspended" {
        return Err(AppError::Conflict(
            "Only a suspended employee can be reactivated.".into(),
        ));
    }
    if p.user_id == user_id {
        return Err(AppError::Refused(rules::RuleError::OwnAccess.to_string()));
    }
    // Someone suspended before accepting the invitation goes back to invited.
    let back_to = if user.password_hash.is_some() {
        "active"
    } else {
        "invited"
    };
    sqlx::query("UPDATE users SET status = ?, status_reason = NULL, updated_at = ? WHERE id = ?")
        .bind(back_to)
        .bind(now)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    audit_log::append(
        &mut tx,
        now,
        vec![NewEvent::new("employee.reactivated", Outcome::Success, ctx.actor())
            .target("user", user_id)
            .details(json!({ "before": { "status": "suspended" }, "after": { "status": back_to } }))],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

// ---------------------------------------------------------------- offboarding

pub struct OffboardInput {
    pub user_id: i64,
    pub confirm_email: String,
    pub code: String,
    /// Empty for now, else a UTC time `YYYY-MM-DDTHH:MM`.
    pub at: String,
}

pub fn parse_utc(input: &str) -> Result<Millis, AppError> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let bad = || AppError::Validation("Give the date and time as YYYY-MM-DDTHH:MM (UTC).".into());
    let s = input.trim();
    if s.len() > 20 {
        return Err(bad());
    }
    // Browsers send seconds when the field's step asks for them.
    let with_seconds = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let dt = time::PrimitiveDateTime::parse(s, &fmt)
        .or_else(|_| time::PrimitiveDateTime::parse(s, &with_seconds))
        .map_err(|_| bad())?;
    Ok((dt.assume_utc().unix_timestamp_nanos() / 1_000_000) as Millis)
}

/// Offboards now, or schedules it. Needs the employee's email typed and a
/// fresh authenticator code (step-up).
pub async fn offboard(
    st: &AppState,
    ctx: &RequestCtx,
    session: &Session,
    p: &Principal,
    input: OffboardInput,
) -> Result<(), AppError> {
    let now = st.clock.now();
    let user = users::by_id(&st.db.pool, input.user_id)
        .await?
        .ok_or(AppError::NotFound)?;
    offboarding::check_confirmation(&input.confirm_email, &user.email)?;
    let status = Status::parse(&user.status).ok_or_else(|| super::errors::internal("unknown status"))?;
    offboarding::check_offboardable(status)?;
    let at = if input.at.trim().is_empty() {
        None
    } else {
        Some(parse_utc(&input.at)?)
    };
    if let Some(at) = at {
        offboarding::check_schedule(at, now)?;
    }
    auth::step_up(st, ctx, session, &input.code, "offboarding").await?;

    let mut tx = st.db.begin_write().await?;
    if let Err(e) = deactivation_check(&mut tx, p.user_id, user.id, now).await {
        drop(tx);
        return Err(denied(st, ctx, "employee.offboard", user.id, e).await?);
    }
    match at {
        Some(at) => {
            sqlx::query("UPDATE users SET offboard_at = ?, offboard_scheduled_by = ?, updated_at = ? WHERE id = ? AND status <> 'offboarded'")
                .bind(at)
                .bind(p.user_id)
                .bind(now)
                .bind(user.id)
                .execute(&mut **tx)
                .await?;
            audit_log::append(
                &mut tx,
                now,
                vec![
                    NewEvent::new("employee.offboarding_scheduled", Outcome::Success, ctx.actor())
                        .target("user", user.id)
                        .details(json!({ "at": at })),
                ],
            )
            .await?;
        }
        None => {
            if !offboard_in(
                &mut tx,
                &ctx.actor(),
                Some(p.user_id),
                user.id,
                &user.status,
                "offboarding",
                now,
            )
            .await?
            {
                return Err(offboarding::OffboardError::AlreadyOffboarded.into());
            }
        }
    }
    tx.commit().await?;
    Ok(())
}

pub async fn cancel_scheduled(st: &AppState, ctx: &RequestCtx, user_id: i64) -> Result<(), AppError> {
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let row = sqlx::query("SELECT offboard_at FROM users WHERE id = ? AND status <> 'offboarded'")
        .bind(user_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(AppError::NotFound)?;
    let Some(at) = row.try_get::<Option<i64>, _>("offboard_at")? else {
        return Err(AppError::Conflict(
            "No offboarding is scheduled for this employee.".into(),
        ));
    };
    sqlx::query("UPDATE users SET offboard_at = NULL, offboard_scheduled_by = NULL, updated_at = ? WHERE id = ?")
        .bind(now)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    audit_log::append(
        &mut tx,
        now,
        vec![
            NewEvent::new("employee.offboarding_cancelled", Outcome::Success, ctx.actor())
                .target("user", user_id)
                .details(json!({ "before": { "at": at }, "after": { "at": null } })),
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The offboarding itself, in the caller's transaction: status, every
/// grant, pending invitations, every session. (API tokens and access
/// requests do not exist yet; they join here when they do.)
pub async fn offboard_in(
    tx: &mut WriteTx,
    actor: &Actor,
    actor_id: Option<i64>,
    user_id: i64,
    status_before: &str,
    reason: &str,
    now: Millis,
) -> Result<bool, sqlx::Error> {
    let changed = sqlx::query(
        "UPDATE users SET status = 'offboarded', offboarded_at = ?, offboarded_by = ?, offboard_at = NULL, status_reason = ?, updated_at = ? \
         WHERE id = ? AND status <> 'offboarded'",
    )
    .bind(now)
    .bind(actor_id)
    .bind(reason)
    .bind(now)
    .bind(user_id)
    .execute(&mut ***tx)
    .await?
    .rows_affected();
    if changed != 1 {
        // Offboarded a moment ago by someone else: nothing more to do.
        return Ok(false);
    }
    super::elevation::end_all_in(tx, actor, user_id, "offboarding", now).await?;
    let revoked = grants::revoke_all_in(tx, actor, actor_id, user_id, "offboarding", now).await?;
    let invitations = sqlx::query(
        "UPDATE invitations SET cancelled_at = ? WHERE user_id = ? AND used_at IS NULL AND cancelled_at IS NULL",
    )
    .bind(now)
    .bind(user_id)
    .execute(&mut ***tx)
    .await?
    .rows_affected();
    let sessions = session_store::delete_all_for_user(tx, user_id).await?;
    audit_log::append(
        tx,
        now,
        vec![NewEvent::new("employee.offboarded", Outcome::Success, actor.clone())
            .target("user", user_id)
            .reason(reason.to_owned())
            .details(json!({
                "grants_revoked": revoked.iter().map(|(id, _)| id).collect::<Vec<_>>(),
                "invitations_cancelled": invitations,
                "sessions_ended": sessions,
                "before": { "status": status_before, "roles": revoked.iter().map(|(_, r)| r).collect::<Vec<_>>() },
                "after": { "status": "offboarded", "roles": [] },
            }))],
    )
    .await?;
    Ok(true)
}

/// Carries out scheduled offboardings that are due.
pub async fn sweep_scheduled(st: &AppState) -> Result<usize, sqlx::Error> {
    let now = st.clock.now();
    let rows = sqlx::query("SELECT id, status, offboard_scheduled_by FROM users WHERE offboard_at <= ? AND status <> 'offboarded' LIMIT 100")
        .bind(now)
        .fetch_all(&st.db.pool)
        .await?;
    let mut done = 0;
    for r in &rows {
        let user_id: i64 = r.try_get("id")?;
        let by: Option<i64> = r.try_get("offboard_scheduled_by")?;
        let status = text(r, "status")?;
        let mut tx = st.db.begin_write().await?;
        let admins = access::active_admin_ids(&mut **tx, now).await?;
        if rules::is_last_admin(user_id, admins.contains(&user_id), admins.len()) {
            sqlx::query("UPDATE users SET offboard_at = NULL WHERE id = ?")
                .bind(user_id)
                .execute(&mut **tx)
                .await?;
            audit_log::append(
                &mut tx,
                now,
                vec![NewEvent::new("employee.offboard", Outcome::Denied, Actor::default())
                    .target("user", user_id)
                    .reason("scheduled offboarding not carried out: last active administrator")],
            )
            .await?;
        } else {
            let actor = Actor {
                user_agent: Some("scheduled offboarding".into()),
                ..Actor::default()
            };
            if offboard_in(&mut tx, &actor, by, user_id, &status, "scheduled offboarding", now).await? {
                done += 1;
            }
        }
        tx.commit().await?;
    }
    Ok(done)
}

pub async fn mark_checklist(
    st: &AppState,
    ctx: &RequestCtx,
    p: &Principal,
    user_id: i64,
    item: &str,
) -> Result<(), AppError> {
    let Some(label) = offboarding::checklist_label(item) else {
        return Err(AppError::Validation("Unknown checklist item.".into()));
    };
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let user = users::by_id(&mut **tx, user_id).await?.ok_or(AppError::NotFound)?;
    if user.status != "offboarded" {
        return Err(AppError::Conflict(
            "The checklist starts once the employee is offboarded.".into(),
        ));
    }
    let exists = sqlx::query("SELECT done_at FROM offboarding_checklist WHERE user_id = ? AND item = ?")
        .bind(user_id)
        .bind(item)
        .fetch_optional(&mut **tx)
        .await?;
    if exists.is_some() {
        return Err(AppError::Conflict("This step is already marked done.".into()));
    }
    sqlx::query("INSERT INTO offboarding_checklist (user_id, item, done_by, done_at) VALUES (?, ?, ?, ?)")
        .bind(user_id)
        .bind(item)
        .bind(p.user_id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    audit_log::append(
        &mut tx,
        now,
        vec![NewEvent::new("offboarding.checklist", Outcome::Success, ctx.actor())
            .target("user", user_id)
            .details(json!({ "item": item, "label": label, "before": { "done": false }, "after": { "done": true } }))],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn offboarding_report(st: &AppState) -> Result<Vec<OffboardingRow>, AppError> {
    let names = access::names(&st.db.pool).await?;
    let mut out = Vec::new();
    for p in people(st, None)
        .await?
        .into_iter()
        .filter(|p| p.status == "offboarded" || p.offboard_at.is_some())
    {
        out.push(OffboardingRow {
            id: p.id,
            checklist: checklist(st, p.id, &names).await?,
            name: p.name,
            email: p.email,
            status: p.status,
            offboard_at: p.offboard_at.map(format_time),
            offboarded_at: p.offboarded_at.map(format_time),
            offboarded_by: access::opt_name(&names, p.offboarded_by),
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------- overview

/// Grants behind the overview's numbers.
pub async fn grant_list(st: &AppState, filter: &str) -> Result<Vec<GrantInfo>, AppError> {
    let now = st.clock.now();
    let roles = access::all_roles(&st.db.pool).await?;
    let names = access::names(&st.db.pool).await?;
    let sql = format!(
        "SELECT {RECORD_COLS} FROM grants WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?) ORDER BY id DESC"
    );
    let rows = sqlx::query(&sql).bind(now).fetch_all(&st.db.pool).await?;
    let recs: Vec<_> = rows.iter().map(record_from_row).collect::<Result<_, _>>()?;
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

pub async fn dashboard(st: &AppState) -> Result<DashboardView, AppError> {
    let now = st.clock.now();
    let all = people(st, None).await?;
    let live = |p: &&Person| p.status == "active" || p.status == "invited";
    let count = |f: &dyn Fn(&Person) -> bool| all.iter().filter(|p| f(p)).count() as i64;
    Ok(DashboardView {
        employees: all.iter().filter(live).count() as i64,
        without_mfa: count(&|p| (p.status == "active" || p.status == "invited") && !p.mfa),
        critical_standing: grant_list(st, "critical").await?.len() as i64,
        expiring_soon: grant_list(st, "expiring").await?.len() as i64,
        admins: access::active_admin_ids(&st.db.pool, now).await?.len() as i64,
        offboarding: offboarding_report(st)
            .await?
            .iter()
            .filter(|r| r.status != "offboarded" || r.checklist.iter().any(|c| c.done_at.is_none()))
            .count() as i64,
        suspended: count(&|p| p.status == "suspended"),
        pending_approvals: grant_list(st, "pending").await?.len() as i64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_times_are_utc() {
        assert_eq!(parse_utc("2026-01-01T12:00").unwrap(), 1_767_268_800_000);
        assert_eq!(parse_utc("2026-01-01T12:00:30").unwrap(), 1_767_268_830_000);
        for bad in ["2026-01-01", "tomorrow", "2026-13-01T00:00", "2026-01-01T12:00Z+1", ""] {
            assert!(parse_utc(bad).is_err(), "{bad}");
        }
    }
}
