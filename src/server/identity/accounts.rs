//! Employees' accounts (the `users` table): every change to a row is one
//! of the functions here. The password hash and TOTP secrets live only on
//! `UserRow`, a server-only struct that is never serialised.

use crate::errors::AppError;
use crate::server::platform::{
    crypto::{MasterKey, ResealError},
    db::{opt_text, text, WriteTx},
};
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

/// The account of a signed-in user, while it is active; otherwise the
/// user must sign in again.
pub async fn active<'e>(ex: impl Executor<'e, Database = Any>, id: i64) -> Result<UserRow, AppError> {
    match by_id(ex, id).await? {
        Some(u) if u.is_active() => Ok(u),
        _ => Err(AppError::sign_in_required()),
    }
}

/// Every active account as (id, name, email), by name.
pub async fn active_people<'e>(
    ex: impl Executor<'e, Database = Any>,
) -> Result<Vec<(i64, String, String)>, sqlx::Error> {
    let rows =
        sqlx::query("SELECT id, display_name, email FROM users WHERE status = 'active' ORDER BY display_name, id")
            .fetch_all(ex)
            .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, text(r, "display_name")?, text(r, "email")?)))
        .collect()
}

pub async fn count<'e>(ex: impl Executor<'e, Database = Any>) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) AS n FROM users")
        .fetch_one(ex)
        .await?
        .try_get("n")
}

pub struct NewUser<'a> {
    pub email: &'a str,
    pub display_name: &'a str,
    pub department: &'a str,
    /// None for an invited employee, who sets it through the invitation.
    pub password_hash: Option<&'a str>,
    pub status: &'a str,
    pub provisioned_by: Provisioning,
}

/// Who keeps an employee's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provisioning {
    /// Onboarded in Gatehouse (or the first administrator, or the demo
    /// company): joins through an invitation link.
    Gatehouse,
    /// Created by the company's identity provider over SCIM: signs in
    /// through it, never through an invitation link.
    Scim,
}

impl Provisioning {
    fn id(self) -> &'static str {
        match self {
            Provisioning::Gatehouse => "gatehouse",
            Provisioning::Scim => "scim",
        }
    }
}

/// Whether the employee's identity lives at the company's identity
/// provider: created by SCIM, or linked to a single sign-on subject.
pub async fn managed_by_provider<'e>(ex: impl Executor<'e, Database = Any>, id: i64) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT provisioned_by, oidc_subject FROM users WHERE id = ?")
        .bind(id)
        .fetch_optional(ex)
        .await?;
    Ok(match row {
        Some(r) => text(&r, "provisioned_by")? == Provisioning::Scim.id() || opt_text(&r, "oidc_subject")?.is_some(),
        None => false,
    })
}

pub async fn insert(tx: &mut WriteTx, u: NewUser<'_>, now: i64) -> Result<i64, sqlx::Error> {
    let q = sqlx::query(
        "INSERT INTO users (email, display_name, department, status, password_hash, provisioned_by, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(u.email)
    .bind(u.display_name)
    .bind(u.department)
    .bind(u.status)
    .bind(u.password_hash)
    .bind(u.provisioned_by.id())
    .bind(now)
    .bind(now);
    tx.insert_returning_id(q).await
}

/// Runs an UPDATE of one row; answers whether the row changed (its
/// conditions held).
async fn set(tx: &mut WriteTx, q: Query<'_>) -> Result<bool, sqlx::Error> {
    Ok(q.execute(tx.conn()).await?.rows_affected() == 1)
}

type Query<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>;

// ---------------------------------------------------------------- credentials

/// Stores the time step of an accepted authenticator code, only if it is
/// later than the last one: of two requests racing with one code, one wins.
pub async fn use_totp_step(tx: &mut WriteTx, user_id: i64, step: i64, now: i64) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE users SET totp_last_step = ?, updated_at = ? \
               WHERE id = ? AND (totp_last_step IS NULL OR totp_last_step < ?)";
    set(tx, sqlx::query(sql).bind(step).bind(now).bind(user_id).bind(step)).await
}

/// Keeps a sealed authenticator secret awaiting confirmation (only while
/// none is active).
pub async fn set_pending_totp(tx: &mut WriteTx, user_id: i64, sealed: &str, now: i64) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE users SET totp_pending_enc = ?, updated_at = ? WHERE id = ? AND totp_secret_enc IS NULL";
    set(tx, sqlx::query(sql).bind(sealed).bind(now).bind(user_id)).await
}

/// Makes the confirmed secret the active one, unless one is active already.
pub async fn confirm_totp(
    tx: &mut WriteTx,
    user_id: i64,
    sealed: &str,
    step: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let sql =
        "UPDATE users SET totp_secret_enc = ?, totp_pending_enc = NULL, totp_enrolled_at = ?, totp_last_step = ?, \
               updated_at = ? WHERE id = ? AND totp_secret_enc IS NULL";
    set(
        tx,
        sqlx::query(sql)
            .bind(sealed)
            .bind(now)
            .bind(step)
            .bind(now)
            .bind(user_id),
    )
    .await
}

/// Keeps sealed recovery codes until the page that shows them once reads them.
pub async fn stash_recovery_codes(tx: &mut WriteTx, user_id: i64, sealed: &str) -> Result<(), sqlx::Error> {
    set(
        tx,
        sqlx::query("UPDATE users SET recovery_reveal_enc = ? WHERE id = ?")
            .bind(sealed)
            .bind(user_id),
    )
    .await?;
    Ok(())
}

/// The sealed recovery codes waiting to be shown, forgotten as they are read.
pub async fn take_recovery_codes(tx: &mut WriteTx, user_id: i64) -> Result<Option<String>, sqlx::Error> {
    let sql = format!("SELECT recovery_reveal_enc FROM users WHERE id = ?{}", tx.for_update());
    let row = sqlx::query(&sql).bind(user_id).fetch_optional(tx.conn()).await?;
    let sealed = match row {
        Some(r) => opt_text(&r, "recovery_reveal_enc")?,
        None => None,
    };
    if sealed.is_some() {
        set(
            tx,
            sqlx::query("UPDATE users SET recovery_reveal_enc = NULL WHERE id = ?").bind(user_id),
        )
        .await?;
    }
    Ok(sealed)
}

// ---------------------------------------------------------------- status

/// An invited employee sets a password and becomes active.
pub async fn accept_invitation(
    tx: &mut WriteTx,
    user_id: i64,
    password_hash: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let sql =
        "UPDATE users SET status = 'active', password_hash = ?, updated_at = ? WHERE id = ? AND status = 'invited'";
    set(tx, sqlx::query(sql).bind(password_hash).bind(now).bind(user_id)).await
}

/// An invited employee who signed in through the identity provider becomes active.
pub async fn activate_invited(tx: &mut WriteTx, user_id: i64, now: i64) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE users SET status = 'active', updated_at = ? WHERE id = ? AND status = 'invited'";
    set(tx, sqlx::query(sql).bind(now).bind(user_id)).await
}

/// Links the provider's subject to the account, once.
pub async fn link_oidc_subject(tx: &mut WriteTx, user_id: i64, subject: &str, now: i64) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE users SET oidc_subject = ?, updated_at = ? WHERE id = ? AND oidc_subject IS NULL";
    set(tx, sqlx::query(sql).bind(subject).bind(now).bind(user_id)).await
}

pub async fn suspend(tx: &mut WriteTx, user_id: i64, reason: &str, now: i64) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE users SET status = 'suspended', status_reason = ?, updated_at = ? WHERE id = ?";
    set(tx, sqlx::query(sql).bind(reason).bind(now).bind(user_id)).await
}

/// Back to `status` (active, or invited for someone who never accepted).
pub async fn reactivate(tx: &mut WriteTx, user_id: i64, status: &str, now: i64) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE users SET status = ?, status_reason = NULL, updated_at = ? WHERE id = ?";
    set(tx, sqlx::query(sql).bind(status).bind(now).bind(user_id)).await
}

pub async fn schedule_offboarding(
    tx: &mut WriteTx,
    user_id: i64,
    at: i64,
    by: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE users SET offboard_at = ?, offboard_scheduled_by = ?, updated_at = ? \
               WHERE id = ? AND status <> 'offboarded'";
    set(tx, sqlx::query(sql).bind(at).bind(by).bind(now).bind(user_id)).await
}

pub async fn cancel_offboarding(tx: &mut WriteTx, user_id: i64, now: i64) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE users SET offboard_at = NULL, offboard_scheduled_by = NULL, updated_at = ? WHERE id = ?";
    set(tx, sqlx::query(sql).bind(now).bind(user_id)).await
}

/// Drops a scheduled offboarding that the rules refused to carry out;
/// false when none was scheduled any more (another server dropped it).
pub async fn drop_offboarding(tx: &mut WriteTx, user_id: i64) -> Result<bool, sqlx::Error> {
    set(
        tx,
        sqlx::query("UPDATE users SET offboard_at = NULL WHERE id = ? AND offboard_at IS NOT NULL").bind(user_id),
    )
    .await
}

/// Marks the account offboarded; false when it already was.
pub async fn mark_offboarded(
    tx: &mut WriteTx,
    user_id: i64,
    by: Option<i64>,
    reason: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE users SET status = 'offboarded', offboarded_at = ?, offboarded_by = ?, offboard_at = NULL, \
               status_reason = ?, updated_at = ? WHERE id = ? AND status <> 'offboarded'";
    set(
        tx,
        sqlx::query(sql).bind(now).bind(by).bind(reason).bind(now).bind(user_id),
    )
    .await
}

// ---------------------------------------------------------------- provisioning (SCIM)

pub async fn set_external_id(tx: &mut WriteTx, user_id: i64, external_id: Option<&str>) -> Result<bool, sqlx::Error> {
    set(
        tx,
        sqlx::query("UPDATE users SET scim_external_id = ? WHERE id = ?")
            .bind(external_id)
            .bind(user_id),
    )
    .await
}

/// What the identity provider manages of an account.
pub struct Profile<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub department: &'a str,
    pub external_id: Option<&'a str>,
}

pub async fn update_profile(tx: &mut WriteTx, user_id: i64, p: Profile<'_>, now: i64) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE users SET email = ?, display_name = ?, department = ?, scim_external_id = ?, updated_at = ? WHERE id = ?";
    set(
        tx,
        sqlx::query(sql)
            .bind(p.email)
            .bind(p.name)
            .bind(p.department)
            .bind(p.external_id)
            .bind(now)
            .bind(user_id),
    )
    .await
}

pub async fn mark_scim_deleted(tx: &mut WriteTx, user_id: i64, now: i64) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE users SET scim_deleted_at = ?, updated_at = ? WHERE id = ?";
    set(tx, sqlx::query(sql).bind(now).bind(now).bind(user_id)).await
}

/// Seals every account's secrets (authenticator secret, pending secret,
/// recovery codes waiting to be shown) again under the master key's current
/// key, in the caller's transaction (`gatehouse rotate-master-key`); the
/// number of values sealed.
pub async fn reseal(tx: &mut WriteTx, master: &MasterKey) -> Result<u64, ResealError> {
    const COLUMNS: [(&str, &str); 3] = [
        ("totp_secret_enc", "totp"),
        ("totp_pending_enc", "totp-pending"),
        ("recovery_reveal_enc", "recovery-reveal"),
    ];
    let sql = format!(
        "SELECT id, totp_secret_enc, totp_pending_enc, recovery_reveal_enc FROM users WHERE totp_secret_enc IS NOT NULL \
         OR totp_pending_enc IS NOT NULL OR recovery_reveal_enc IS NOT NULL ORDER BY id{}",
        tx.for_update()
    );
    let rows = sqlx::query(&sql).fetch_all(tx.conn()).await?;
    let mut sealed = 0;
    for r in &rows {
        let id: i64 = r.try_get("id")?;
        for (column, purpose) in COLUMNS {
            let Some(value) = opt_text(r, column)? else { continue };
            let context = format!("{purpose}:{id}");
            let plain = master
                .open(&context, &value)
                .ok_or_else(|| ResealError::Unopenable(format!("users.{column} of user {id}")))?;
            // `column` is one of the three names above, never input.
            sqlx::query(&format!("UPDATE users SET {column} = ? WHERE id = ?"))
                .bind(master.seal(&context, &plain))
                .bind(id)
                .execute(tx.conn())
                .await?;
            sealed += 1;
        }
    }
    Ok(sealed)
}
