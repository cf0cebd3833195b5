//! Every background job, in one place: the session janitor, and the
//! access jobs every two seconds (grant expiry, elevation lapses, scheduled
//! offboarding, anomaly alerts and their webhook, reminders and
//! notifications, summaries of anonymous API refusals, checkpoint signing).

use super::{
    access::{elevation, grants, notify, people},
    audit::{alerts, checkpoints},
    identity::{self, sessions},
    state::AppState,
};
use std::time::Duration;

/// Ends timed-out sessions every `every`, recording each in the audit
/// chain, and forgets sign-in failures older than the lockout window.
pub fn spawn_janitor(st: AppState, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if let Err(e) = sweep_sessions(&st).await {
                tracing::error!(error = %e, "session sweep failed");
            }
            if let Err(e) = identity::prune_failures(&st).await {
                tracing::error!(error = %e, "sign-in failure pruning failed");
            }
        }
    });
}

/// Records grant expiries and carries out scheduled offboardings every
/// `every` (two seconds in production), so each lands in the audit chain
/// within seconds of its time.
pub fn spawn_access_jobs(st: AppState, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            run_access_jobs(&st).await;
        }
    });
}

pub async fn run_access_jobs(st: &AppState) {
    if let Err(e) = grants::sweep_expired(st).await {
        tracing::error!(error = %e, "grant expiry job failed");
    }
    if let Err(e) = elevation::sweep(st).await {
        tracing::error!(error = %e, "elevation job failed");
    }
    if let Err(e) = people::sweep_scheduled(st).await {
        tracing::error!(error = %e, "scheduled offboarding job failed");
    }
    if let Err(e) = alerts::scan(st).await {
        tracing::error!(error = %e, "anomaly alert job failed");
    }
    if let Err(e) = alerts::deliver(st).await {
        tracing::error!(error = %e, "alert webhook job failed");
    }
    if let Err(e) = notify::remind(st).await {
        tracing::error!(error = %e, "elevation reminder job failed");
    }
    if let Err(e) = notify::deliver(st).await {
        tracing::error!(error = %e, "notification delivery job failed");
    }
    if let Err(e) = st.anonymous.fold(&st.db, st.clock.now(), false).await {
        tracing::error!(error = %e, "folding anonymous refusals into the audit trail failed");
    }
    checkpoints::sign_due(st).await;
}

pub async fn sweep_sessions(st: &AppState) -> Result<usize, sqlx::Error> {
    let expired = sessions::expired(&st.db, st.clock.now(), 500).await?;
    for (id_hash, user_id) in &expired {
        sessions::expire_session(st, id_hash, *user_id, "timed out while unused", None).await?;
    }
    Ok(expired.len())
}
