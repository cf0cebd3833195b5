//! Recovery codes (the `recovery_codes` table): single use, stored as
//! salted hashes; a new batch voids the old one.

use crate::domain::Millis;
use crate::server::platform::db::{text, Db, WriteTx};
use sqlx::Row;

/// A new batch for `user_id`, voiding the old one, in the caller's
/// transaction.
///
/// On MySQL the old codes are deleted by primary key under the account's
/// row lock, never by `user_id`: deleting by `user_id` locks the gap of
/// that index where the account has no codes yet, and two enrolments of
/// different people falling into one gap then each waited for the other's
/// gap to insert (an InnoDB deadlock, seen with three servers under load).
pub async fn replace(tx: &mut WriteTx, user_id: i64, now: Millis) -> Result<Vec<String>, sqlx::Error> {
    // One replacement per account at a time.
    let lock = format!("SELECT id FROM users WHERE id = ?{}", tx.for_update());
    sqlx::query(&lock).bind(user_id).fetch_optional(tx.conn()).await?;
    let old: Vec<i64> = sqlx::query("SELECT id FROM recovery_codes WHERE user_id = ?")
        .bind(user_id)
        .fetch_all(tx.conn())
        .await?
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()?;
    if !old.is_empty() {
        let marks = vec!["?"; old.len()].join(",");
        let sql = format!("DELETE FROM recovery_codes WHERE id IN ({marks})");
        let mut q = sqlx::query(&sql);
        for id in &old {
            q = q.bind(*id);
        }
        q.execute(tx.conn()).await?;
    }
    let (plain, stored) = super::new_recovery_batch();
    for (salt, hash) in stored {
        sqlx::query("INSERT INTO recovery_codes (user_id, salt, code_hash, created_at) VALUES (?, ?, ?, ?)")
            .bind(user_id)
            .bind(salt)
            .bind(hash)
            .bind(now)
            .execute(tx.conn())
            .await?;
    }
    Ok(plain)
}

/// The unused codes of a user: (id, salt, hash).
pub async fn unused(db: &Db, user_id: i64) -> Result<Vec<(i64, Vec<u8>, Vec<u8>)>, sqlx::Error> {
    let rows = sqlx::query("SELECT id, salt, code_hash FROM recovery_codes WHERE user_id = ? AND used_at IS NULL")
        .bind(user_id)
        .fetch_all(db.pool())
        .await?;
    let mut stored = Vec::with_capacity(rows.len());
    for r in &rows {
        let salt = hex::decode(text(r, "salt")?).unwrap_or_default();
        let hash = hex::decode(text(r, "code_hash")?).unwrap_or_default();
        stored.push((r.try_get::<i64, _>("id")?, salt, hash));
    }
    Ok(stored)
}

/// Uses a code up; false when another request used it a moment ago.
pub async fn mark_used(tx: &mut WriteTx, code_id: i64, now: Millis) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE recovery_codes SET used_at = ? WHERE id = ? AND used_at IS NULL")
        .bind(now)
        .bind(code_id)
        .execute(tx.conn())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// How many codes a user has left.
pub async fn left(db: &Db, user_id: i64) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) AS n FROM recovery_codes WHERE user_id = ? AND used_at IS NULL")
        .bind(user_id)
        .fetch_one(db.pool())
        .await?
        .try_get("n")
}
