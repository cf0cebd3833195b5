//! Expiry: a grant stops counting at its expiry instant (the checks
//! compare times); this job records each expiry in the audit trail within
//! seconds.

use crate::domain::actions::Action;
use crate::domain::audit::{Actor, NewEvent, Outcome};
use crate::server::{audit, platform::db::text, state::AppState};
use serde_json::json;
use sqlx::Row;

/// Records grants that have reached their expiry. They stopped counting
/// at that instant already; this puts the expiry in the audit chain.
pub async fn sweep_expired(st: &AppState) -> Result<usize, sqlx::Error> {
    // Everything due now, a thousand per transaction, so a burst of
    // simultaneous expiries is recorded within the same run.
    let mut total = 0;
    for _ in 0..100 {
        let n = sweep_batch(st, 1_000).await?;
        total += n.0;
        if n.1 < 1_000 {
            break;
        }
    }
    Ok(total)
}

/// Records up to `limit` due expiries in one transaction; returns (recorded,
/// found). The rows are claimed first (MySQL `FOR UPDATE SKIP LOCKED`;
/// SQLite holds the write lock), so two servers never record the same
/// expiry twice, and one skips what another is recording instead of
/// waiting for it.
async fn sweep_batch(st: &AppState, limit: i64) -> Result<(usize, usize), sqlx::Error> {
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let sql = format!(
        "SELECT id, user_id, role, expires_at, pending FROM grants WHERE expires_at <= ? AND expiry_recorded_at IS NULL \
         AND revoked_at IS NULL ORDER BY expires_at, id LIMIT ?{}",
        tx.skip_locked()
    );
    let rows = sqlx::query(&sql).bind(now).bind(limit).fetch_all(tx.conn()).await?;
    if rows.is_empty() {
        return Ok((0, 0));
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?;
    for chunk in ids.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(",");
        let sql =
            format!("UPDATE grants SET expiry_recorded_at = ? WHERE expiry_recorded_at IS NULL AND id IN ({marks})");
        let mut q = sqlx::query(&sql).bind(now);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(tx.conn()).await?;
    }
    let mut events = Vec::with_capacity(rows.len());
    for r in &rows {
        let expires_at: i64 = r.try_get("expires_at")?;
        events.push(
            NewEvent::new(Action::GrantExpired, Outcome::Success, Actor::default())
                .target("user", r.try_get::<i64, _>("user_id")?)
                .details(json!({
                    "grant_id": r.try_get::<i64, _>("id")?,
                    "role": text(r, "role")?,
                    "expires_at": expires_at,
                    "recorded_after_ms": now - expires_at,
                    "was_pending": r.try_get::<i64, _>("pending")? != 0,
                })),
        );
    }
    let n = events.len();
    audit::append(&mut tx, now, events).await?;
    tx.commit().await?;
    Ok((n, rows.len()))
}
