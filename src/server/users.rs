//! Users, as stored. The password hash and TOTP secrets live only here, on
//! a server-only struct that is never serialised.

use super::db::{opt_text, text, WriteTx};
use sqlx::{any::AnyRow, Any, Executor, Row};

#[derive(Clone)]
pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    pub department: String,
    pub status: String,
    pub password_hash: Option<String>,
    pub totp_secret_enc: Option<String>,
    pub totp_pending_enc: Option<String>,
    pub totp_last_step: Option<i64>,
    /// Changes with anything the employee's permissions depend on.
    pub access_version: i64,
}

impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("status", &self.status)
            .finish()
    }
}

impl UserRow {
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }

    pub fn has_totp(&self) -> bool {
        self.totp_secret_enc.is_some()
    }
}

const COLS: &str =
    "id, email, display_name, department, status, password_hash, totp_secret_enc, totp_pending_enc, totp_last_step, access_version";

fn from_row(r: &AnyRow) -> Result<UserRow, sqlx::Error> {
    Ok(UserRow {
        id: r.try_get("id")?,
        email: text(r, "email")?,
        display_name: text(r, "display_name")?,
        department: text(r, "department")?,
        status: text(r, "status")?,
        password_hash: opt_text(r, "password_hash")?,
        totp_secret_enc: opt_text(r, "totp_secret_enc")?,
        totp_pending_enc: opt_text(r, "totp_pending_enc")?,
        totp_last_step: r.try_get("totp_last_step")?,
        access_version: r.try_get("access_version")?,
    })
}

pub async fn by_email<'e>(ex: impl Executor<'e, Database = Any>, email: &str) -> Result<Option<UserRow>, sqlx::Error> {
    let sql = format!("SELECT {COLS} FROM users WHERE email = ?");
    sqlx::query(&sql)
        .bind(email)
        .fetch_optional(ex)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

pub async fn by_id<'e>(ex: impl Executor<'e, Database = Any>, id: i64) -> Result<Option<UserRow>, sqlx::Error> {
    let sql = format!("SELECT {COLS} FROM users WHERE id = ?");
    sqlx::query(&sql)
        .bind(id)
        .fetch_optional(ex)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

pub async fn count<'e>(ex: impl Executor<'e, Database = Any>) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) AS n FROM users")
        .fetch_one(ex)
        .await?
        .try_get("n")
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

pub async fn admin_exists<'e>(ex: impl Executor<'e, Database = Any>, now: i64) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM grants g JOIN users u ON u.id = g.user_id WHERE g.role = 'admin' \
         AND g.revoked_at IS NULL AND g.pending = 0 AND g.starts_at <= ? AND (g.expires_at IS NULL OR g.expires_at > ?) AND u.status = 'active'",
    )
    .bind(now)
    .bind(now)
    .fetch_one(ex)
    .await?
    .try_get("n")?;
    Ok(n > 0)
}

pub struct NewUser<'a> {
    pub email: &'a str,
    pub display_name: &'a str,
    pub department: &'a str,
    /// None for an invited employee, who sets it through the invitation.
    pub password_hash: Option<&'a str>,
    pub status: &'a str,
}

pub async fn insert(tx: &mut WriteTx, u: NewUser<'_>, now: i64) -> Result<i64, sqlx::Error> {
    let q = sqlx::query(
        "INSERT INTO users (email, display_name, department, status, password_hash, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(u.email)
    .bind(u.display_name)
    .bind(u.department)
    .bind(u.status)
    .bind(u.password_hash)
    .bind(now)
    .bind(now);
    insert_returning_id(tx, q).await
}

/// Runs an INSERT and returns the new row's id: through `last_insert_id` on
/// MySQL, and `last_insert_rowid()` on SQLite (which the Any driver does not pass on).
pub async fn insert_returning_id<'q>(
    tx: &mut WriteTx,
    q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
) -> Result<i64, sqlx::Error> {
    let r = q.execute(&mut ***tx).await?;
    if let Some(id) = r.last_insert_id() {
        return Ok(id);
    }
    sqlx::query("SELECT last_insert_rowid() AS id")
        .fetch_one(&mut ***tx)
        .await?
        .try_get("id")
}

pub async fn insert_grant(
    tx: &mut WriteTx,
    user_id: i64,
    role: &str,
    granted_by: Option<i64>,
    reason: &str,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let q = sqlx::query(
        "INSERT INTO grants (user_id, role, granted_by, reason, starts_at, created_at) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(user_id)
    .bind(role)
    .bind(granted_by)
    .bind(reason)
    .bind(now)
    .bind(now);
    insert_returning_id(tx, q).await
}
