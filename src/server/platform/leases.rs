//! Leases on background work that one server at a time may do, so several
//! replicas on one database decide nothing twice (the `job_leases` table,
//! written only here). A lease is taken or renewed by one conditional
//! UPDATE, atomic on SQLite and MySQL alike: it succeeds for the holder, or
//! for anyone once the lease has expired.

use super::{crypto, db::Db};
use crate::domain::Millis;

/// How long a lease lasts without renewal: a replica that stops renewing
/// (killed, stalled, cut off from the database) is replaced this long after
/// its last renewal at the latest.
pub const TTL: Millis = 10_000;

/// How long a claimed delivery (an outbox message, an alert's webhook call)
/// belongs to the server that claimed it: longer than any send may take
/// (SMTP gives up after 10 s, webhooks after 5 s). A server that dies while
/// sending leaves the message to the others this long after its claim.
pub const CLAIM: Millis = 60_000;

/// This process's name as a lease holder.
pub fn holder() -> &'static str {
    static HOLDER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOLDER.get_or_init(|| crypto::random_token(12))
}

/// Takes or renews `lease` for `holder` until `now + TTL`; whether it is
/// held. Renewing before each step of a pass keeps a stalled holder from
/// acting on a lease another server has taken since.
pub async fn hold(db: &Db, lease: &str, holder: &str, now: Millis) -> Result<bool, sqlx::Error> {
    let done = db
        .write(
            sqlx::query(
                "UPDATE job_leases SET holder = ?, expires_at = ? WHERE name = ? AND (holder = ? OR expires_at < ?)",
            )
            .bind(holder)
            .bind(now + TTL)
            .bind(lease)
            .bind(holder)
            .bind(now),
        )
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether some server holds a lease now: a server is running on this
/// database (or was killed less than `TTL` ago).
pub async fn any_held(db: &Db, now: Millis) -> Result<bool, sqlx::Error> {
    use sqlx::Row;
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM job_leases WHERE expires_at >= ?")
        .bind(now)
        .fetch_one(db.pool())
        .await?
        .try_get("n")?;
    Ok(n > 0)
}

/// Gives `lease` up at once (a server stopping cleanly), so another takes
/// over without waiting for it to expire.
pub async fn release(db: &Db, lease: &str, holder: &str) -> Result<(), sqlx::Error> {
    db.write(
        sqlx::query("UPDATE job_leases SET expires_at = 0 WHERE name = ? AND holder = ?")
            .bind(lease)
            .bind(holder),
    )
    .await?;
    Ok(())
}
