//! Recovery codes (the `recovery_codes` table): single use, stored as
//! salted hashes; a new batch voids the old one.

use crate::domain::Millis;
use crate::server::platform::db::{text, Db, WriteTx};
use sqlx::Row;

pub async fn replace(tx: &mut WriteTx, user_id: i64, now: Millis) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = ?")
        .bind(user_id)
        .execute(tx.conn())
        .await?;
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
