//! Grants (the `grants` table): who holds which role, from when, until
//! when, for which customers. Every change to a grant is made here:
//! granting with its rules (`change`), expiry (`expiry`), and ending.

mod change;
mod expiry;
mod views;

pub use change::{approve, grant, grant_in, revoke, GrantInput};
pub use expiry::sweep_expired;
pub use views::{grant_info, sources_view};

use crate::domain::actions::Action;
use crate::domain::{
    audit::{Actor, NewEvent, Outcome},
    grants::{Grant, GrantState},
    roles as rules, Millis,
};
use crate::errors::AppError;
use crate::server::{
    access::roles,
    audit,
    platform::db::{opt_text, text, WriteTx},
    state::AppState,
};
use serde_json::json;
use sqlx::{any::AnyRow, Any, AnyConnection, Executor, Row};

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

/// Locks the set of administrators (and, with it, every grant decision)
/// until the transaction ends. A transaction that decides by that set calls
/// this first, before any other statement: on MySQL the rules' plain reads
/// then see what the previous decision committed (InnoDB takes its snapshot
/// at the first plain read), and two decisions never interleave; the lock
/// comes before the audit chain's, as in every writer. SQLite writes one
/// transaction at a time, so there it only reads the row.
pub async fn lock_administrators(tx: &mut WriteTx) -> Result<(), sqlx::Error> {
    let sql = format!(
        "SELECT name FROM rule_locks WHERE name = 'administrators'{}",
        tx.for_update()
    );
    sqlx::query(&sql).fetch_optional(tx.conn()).await?;
    Ok(())
}

/// Keys of the roles that carry administrator power (`employees:manage` or
/// `access:grant`), whatever they are called; deleted custom roles included.
async fn admin_power_roles(conn: &mut AnyConnection) -> Result<Vec<String>, sqlx::Error> {
    Ok(roles::all_roles(&mut *conn)
        .await?
        .into_iter()
        .filter(|r| rules::admin_power(r.permissions))
        .map(|r| r.key)
        .collect())
}

/// Active employees holding administrator power through an active grant
/// for every customer (a customer-scoped grant confers no such power).
pub async fn active_admin_ids(conn: &mut AnyConnection, now: Millis) -> Result<Vec<i64>, sqlx::Error> {
    let keys = admin_power_roles(conn).await?;
    let sql = format!(
        "SELECT DISTINCT g.user_id FROM grants g JOIN users u ON u.id = g.user_id WHERE g.role IN ({}) \
         AND g.revoked_at IS NULL AND g.pending = 0 AND g.customer_scope IS NULL AND g.starts_at <= ? \
         AND (g.expires_at IS NULL OR g.expires_at > ?) AND u.status = 'active' ORDER BY g.user_id",
        vec!["?"; keys.len().max(1)].join(", ")
    );
    let mut q = sqlx::query(&sql);
    if keys.is_empty() {
        q = q.bind(crate::domain::roles::ADMIN);
    }
    for k in &keys {
        q = q.bind(k.as_str());
    }
    let rows = q.bind(now).bind(now).fetch_all(&mut *conn).await?;
    rows.iter().map(|r| r.try_get("user_id")).collect()
}

/// Keys of the roles active at `now`: started, approved, not expired (an
/// expired grant stops counting at its expiry instant), not revoked.
pub async fn active_roles<'e>(
    ex: impl Executor<'e, Database = Any>,
    user_id: i64,
    now: i64,
) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT DISTINCT role FROM grants WHERE user_id = ? AND revoked_at IS NULL AND pending = 0 AND starts_at <= ? \
         AND (expires_at IS NULL OR expires_at > ?) ORDER BY role",
    )
    .bind(user_id)
    .bind(now)
    .bind(now)
    .fetch_all(ex)
    .await?;
    rows.iter().map(|r| text(r, "role")).collect()
}

/// A grant about to be stored.
pub struct NewGrant<'a> {
    pub user_id: i64,
    pub role: &'a str,
    pub granted_by: Option<i64>,
    pub reason: &'a str,
    pub starts_at: Millis,
    pub expires_at: Option<Millis>,
    /// Waits for a second administrator's approval.
    pub pending: bool,
    /// Customers the grant is limited to; empty for all.
    pub customers: &'a [String],
}

/// Stores a grant; returns its id.
pub async fn insert(tx: &mut WriteTx, g: NewGrant<'_>, now: Millis) -> Result<i64, sqlx::Error> {
    let q = sqlx::query(
        "INSERT INTO grants (user_id, role, granted_by, reason, starts_at, expires_at, pending, customer_scope, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(g.user_id)
    .bind(g.role)
    .bind(g.granted_by)
    .bind(g.reason)
    .bind(g.starts_at)
    .bind(g.expires_at)
    .bind(g.pending as i64)
    .bind(format_scope(g.customers))
    .bind(now);
    tx.insert_returning_id(q).await
}

/// Stores a standing grant starting now (setup's first administrator, the
/// demo company).
pub async fn insert_standing(
    tx: &mut WriteTx,
    user_id: i64,
    role: &str,
    granted_by: Option<i64>,
    reason: &str,
    now: Millis,
) -> Result<i64, sqlx::Error> {
    let new = NewGrant {
        user_id,
        role,
        granted_by,
        reason,
        starts_at: now,
        expires_at: None,
        pending: false,
        customers: &[],
    };
    insert(tx, new, now).await
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
    "id, user_id, role, starts_at, expires_at, revoked_at, pending, customer_scope, granted_by, reason, \
        approved_by, revoke_reason, revoked_by";

pub fn record_from_row(r: &AnyRow) -> Result<GrantRecord, sqlx::Error> {
    Ok(GrantRecord {
        grant: grant_from_row(r)?,
        granted_by: r.try_get("granted_by")?,
        reason: text(r, "reason")?,
        approved_by: r.try_get("approved_by")?,
        revoked_by: r.try_get("revoked_by")?,
        revoke_reason: opt_text(r, "revoke_reason")?,
    })
}

pub async fn user_grant_records(st: &AppState, user_id: i64) -> Result<Vec<GrantRecord>, sqlx::Error> {
    let sql = format!("SELECT {RECORD_COLS} FROM grants WHERE user_id = ? ORDER BY id DESC");
    let rows = sqlx::query(&sql).bind(user_id).fetch_all(st.db.pool()).await?;
    rows.iter().map(record_from_row).collect()
}

pub(super) async fn load_record(tx: &mut WriteTx, grant_id: i64) -> Result<GrantRecord, AppError> {
    let sql = format!("SELECT {RECORD_COLS} FROM grants WHERE id = ?{}", tx.for_update());
    let row = sqlx::query(&sql)
        .bind(grant_id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(record_from_row(&row)?)
}

/// Whether ending `grant` takes administrator power from its holder (it
/// carries it, and no other active grant of theirs does), and how many
/// administrators there are.
pub(super) async fn removes_admin_power(
    tx: &mut WriteTx,
    grant: &Grant,
    now: Millis,
) -> Result<(bool, usize), sqlx::Error> {
    let admins = active_admin_ids(tx.conn(), now).await?;
    let keys = admin_power_roles(tx.conn()).await?;
    let others = open_grants(tx.conn(), grant.user_id).await?;
    let kept = others
        .iter()
        .any(|g| g.id != grant.id && g.customers.is_none() && g.is_active(now) && keys.contains(&g.role));
    let removes = admins.contains(&grant.user_id) && keys.contains(&grant.role) && !kept;
    Ok((removes, admins.len()))
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
    .execute(tx.conn())
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
    let rows = sqlx::query(&sql).bind(user_id).fetch_all(tx.conn()).await?;
    let open: Vec<Grant> = rows.iter().map(grant_from_row).collect::<Result<_, _>>()?;
    sqlx::query(
        "UPDATE grants SET revoked_at = ?, revoked_by = ?, revoke_reason = ? WHERE user_id = ? AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(actor_id)
    .bind(reason)
    .bind(user_id)
    .execute(tx.conn())
    .await?;
    let events = open
        .iter()
        .map(|g| {
            NewEvent::new(Action::GrantRevoked, Outcome::Success, actor.clone())
                .target("user", user_id)
                .reason(reason.to_owned())
                .details(json!({ "grant_id": g.id, "role": g.role, "state_before": GrantState::of(g, now).as_str() }))
        })
        .collect();
    audit::append(tx, now, events).await?;
    Ok(open.into_iter().map(|g| (g.id, g.role)).collect())
}

/// What became of a grant an access review ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Ended,
    /// It had ended already (revoked, or expired).
    AlreadyEnded,
    /// It is the last active administrator's power: the rule wins, the grant stays.
    LastAdministrator,
}

/// Ends a grant for an access review, inside the caller's transaction
/// (which called `lock_administrators` first), unless that would remove
/// the last active administrator; records `grant.revoked` as any
/// revocation does, so the cache, database accounts and sessions follow.
pub async fn end_reviewed_in(
    tx: &mut WriteTx,
    actor: Actor,
    by: Option<i64>,
    grant_id: i64,
    reason: &str,
    now: Millis,
) -> Result<Ending, AppError> {
    let rec = load_record(tx, grant_id).await?;
    if rec.grant.revoked_at.is_some() || rec.grant.expires_at.is_some_and(|e| e <= now) {
        return Ok(Ending::AlreadyEnded);
    }
    let (removes_power, admins) = removes_admin_power(tx, &rec.grant, now).await?;
    if crate::domain::grants::is_last_admin(rec.grant.user_id, removes_power, admins) {
        return Ok(Ending::LastAdministrator);
    }
    let held = open_grants(tx.conn(), rec.grant.user_id).await?;
    if !end_in(tx, grant_id, by, reason, now).await? {
        return Ok(Ending::AlreadyEnded);
    }
    let event = ended_event(Action::GrantRevoked, actor, &rec, &held, reason, now);
    audit::append(tx, now, vec![event]).await?;
    Ok(Ending::Ended)
}

/// Makes a standing grant end at `expires_at` (an access review's
/// conversion to time-boxed access), inside the caller's transaction, and
/// records it: `None` when the grant has ended, `Some(false)` when it
/// already ends sooner.
pub async fn shorten_in(
    tx: &mut WriteTx,
    actor: Actor,
    grant_id: i64,
    expires_at: Millis,
    reason: &str,
    now: Millis,
) -> Result<Option<bool>, AppError> {
    let rec = load_record(tx, grant_id).await?;
    if rec.grant.revoked_at.is_some() || rec.grant.expires_at.is_some_and(|e| e <= now) {
        return Ok(None);
    }
    if rec.grant.expires_at.is_some_and(|e| e <= expires_at) || expires_at <= now {
        return Ok(Some(false));
    }
    sqlx::query("UPDATE grants SET expires_at = ? WHERE id = ? AND revoked_at IS NULL")
        .bind(expires_at)
        .bind(grant_id)
        .execute(tx.conn())
        .await?;
    let event = NewEvent::new(Action::GrantShortened, Outcome::Success, actor)
        .target("user", rec.grant.user_id)
        .reason(reason.to_owned())
        .details(json!({
            "grant_id": grant_id,
            "role": rec.grant.role,
            "before": { "expires_at": rec.grant.expires_at },
            "after": { "expires_at": expires_at },
        }));
    audit::append(tx, now, vec![event]).await?;
    Ok(Some(true))
}

/// The audit event of an ended grant (revoked, or a pending one rejected),
/// with the holder's active roles before and after.
pub(super) fn ended_event(
    action: Action,
    actor: Actor,
    rec: &GrantRecord,
    held: &[Grant],
    reason: &str,
    now: Millis,
) -> NewEvent {
    let keys = |keep: &dyn Fn(&Grant) -> bool| {
        let mut v: Vec<String> = held
            .iter()
            .filter(|g| keep(g) && g.is_active(now))
            .map(|g| g.role.clone())
            .collect();
        v.sort();
        v.dedup();
        v
    };
    NewEvent::new(action, Outcome::Success, actor)
        .target("user", rec.grant.user_id)
        .reason(reason.to_owned())
        .details(json!({
            "grant_id": rec.grant.id,
            "role": rec.grant.role,
            "granted_by": rec.granted_by,
            "before": { "roles": keys(&|_| true) },
            "after": { "roles": keys(&|g| g.id != rec.grant.id) },
        }))
}
