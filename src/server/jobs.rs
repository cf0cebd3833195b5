//! Every background job, in one place: the session janitor, and the
//! access jobs every two seconds (grant expiry, elevation lapses, scheduled
//! offboarding, anomaly alerts and their webhook, reminders and
//! notifications, summaries of anonymous API refusals, checkpoint signing).
//!
//! With several servers on one database, every server sweeps what is due
//! every two seconds (grant expiries, elevation lapses and ends, scheduled
//! offboardings, reminders), each item claimed in the database as it is
//! decided (`FOR UPDATE SKIP LOCKED` on MySQL, or a conditional update),
//! so a dead server's share is picked up by the others at their next
//! pass. The work with one writer (alert judging reads the chain from one
//! cursor; checkpoint signing extends one chain of checkpoints) runs on the
//! server holding its lease (`platform::leases`), renewed before each step,
//! taken over by another server within `leases::TTL` of the holder's last
//! renewal. Deliveries to the outside (alert webhooks, notifications) run
//! on every server, each message claimed before it is sent
//! (`leases::CLAIM`).

use super::{
    access::{databases, elevation, grants, notify, people, reviews},
    audit::{alerts, checkpoints, siem},
    identity::{self, sessions},
    platform::{leases, metrics},
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
            if !leads(&st, "janitor").await {
                continue;
            }
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
    let (_keep, stop) = tokio::sync::watch::channel(false);
    // The sender lives as long as the task: never stopped.
    tokio::spawn(async move {
        let _keep = _keep;
        access_jobs(st, every, stop).await
    });
}

/// The access jobs until `stop` turns true; a pass under way finishes
/// first. Awaiting the handle waits for that pass.
pub fn spawn_stoppable_access_jobs(
    st: AppState,
    every: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(access_jobs(st, every, stop))
}

async fn access_jobs(st: AppState, every: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        pass(&st, Some("access_jobs")).await;
        if *stop.borrow() {
            let _ = leases::release(&st.db, "access_jobs", leases::holder()).await;
            return;
        }
    }
}

/// Reconciles database accounts with grants every `every` (half a second
/// in production, so a database follows an elevation's end within two
/// seconds), on the server holding the `db_provisioning` lease: one writer
/// per target. Each target's work (reconciliation, then its drift scan
/// when a minute old) runs in a task of its own, and a target whose last
/// task is still running is skipped, so a slow or unreachable target never
/// delays the others.
pub fn spawn_db_provisioning(st: AppState, every: Duration) -> tokio::task::JoinHandle<()> {
    use std::collections::HashSet;
    use std::sync::{Arc, Mutex};
    /// Frees a target for the next tick when its task ends (or is aborted).
    struct Busy(Arc<Mutex<HashSet<i64>>>, i64);
    impl Drop for Busy {
        fn drop(&mut self) {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.1);
        }
    }
    let busy: Arc<Mutex<HashSet<i64>>> = Arc::default();
    tokio::spawn(async move {
        // Aborting the job (a test, a shutdown) aborts the targets' tasks.
        let mut tasks = tokio::task::JoinSet::new();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            while tasks.try_join_next().is_some() {}
            if !leads(&st, "db_provisioning").await {
                continue;
            }
            let ids = match databases::target_ids(&st).await {
                Ok(ids) => ids,
                Err(e) => {
                    tracing::error!(error = %e, "cannot list database targets");
                    continue;
                }
            };
            for id in ids {
                if !busy.lock().unwrap_or_else(|p| p.into_inner()).insert(id) {
                    continue;
                }
                let (st, guard) = (st.clone(), Busy(busy.clone(), id));
                tasks.spawn(async move {
                    let _guard = guard;
                    let r = databases::reconcile_one(&st, id).await;
                    ran(&st, "db_provisioning", "database reconciliation", r);
                    let r = databases::scan_due_one(&st, id).await;
                    ran(&st, "db_drift", "database drift scan", r);
                });
            }
        }
    })
}

/// Streams the audit trail to the configured SIEM sinks, on the server
/// holding the `siem` lease (renewed every two seconds): each sink in a task
/// of its own (`audit::siem::stream`), all aborted when the lease is lost,
/// so two servers never stream one sink at once for longer than a lease.
pub fn spawn_siem(st: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if st.config.siem.is_empty() {
            return;
        }
        let mut tasks = tokio::task::JoinSet::new();
        let shared = siem::Shared::default();
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if !leads(&st, "siem").await {
                // Aborted and awaited, so the set is empty for the next lead.
                tasks.shutdown().await;
                continue;
            }
            // A sink task that ended (it panicked) is restarted.
            while tasks.try_join_next().is_some() {}
            if tasks.is_empty() {
                for sink in st.config.siem.iter().cloned() {
                    tasks.spawn(siem::stream(st.clone(), sink, shared.clone()));
                }
            }
        }
    })
}

/// Logs and counts a job's outcome (job lag and failures in /metrics).
fn ran<T, E: std::fmt::Display>(st: &AppState, job: &'static str, what: &str, r: Result<T, E>) {
    if let Err(e) = &r {
        tracing::error!(error = %e, job, "{what} failed");
    }
    metrics::global().job_ran(job, st.clock.now(), r.is_ok());
}

/// One pass of database reconciliation, and the drift scans that are a
/// minute old, here and now (tests, tools).
pub async fn run_db_provisioning(st: &AppState) {
    ran(
        st,
        "db_provisioning",
        "database reconciliation",
        databases::reconcile(st).await,
    );
    ran(st, "db_drift", "database drift scan", databases::scan_due(st).await);
}

/// Whether this server holds (took or renewed) `lease` now.
pub async fn leads(st: &AppState, lease: &str) -> bool {
    match leases::hold(&st.db, lease, leases::holder(), st.clock.now()).await {
        Ok(held) => held,
        Err(e) => {
            tracing::error!(error = %e, lease, "cannot take or renew a job lease");
            false
        }
    }
}

/// One pass of every access job, here and now (tests, tools).
pub async fn run_access_jobs(st: &AppState) {
    pass(st, None).await;
}

/// One pass; under `lease`, each step runs only while this server holds it.
async fn pass(st: &AppState, lease: Option<&str>) {
    let go = || async {
        match lease {
            Some(l) => leads(st, l).await,
            None => true,
        }
    };
    // Every server counts its own anonymous refusals in memory: each folds
    // its own, lease or not.
    let folded = st.anonymous.fold(&st.db, st.clock.now(), false).await;
    ran(
        st,
        "anonymous_refusals",
        "folding anonymous refusals into the audit trail",
        folded,
    );
    // Every server sweeps what is due; each item is claimed as it is decided.
    ran(st, "grant_expiry", "grant expiry job", grants::sweep_expired(st).await);
    ran(st, "elevation_lapse", "elevation job", elevation::sweep(st).await);
    ran(
        st,
        "scheduled_offboarding",
        "scheduled offboarding job",
        people::sweep_scheduled(st).await,
    );
    ran(st, "reminders", "elevation reminder job", notify::remind(st).await);
    // Access reviews: each campaign's close is claimed, each recurrence unique.
    ran(st, "access_reviews", "access review job", reviews::run_due(st).await);
    // Work with one writer runs only while this server holds the lease.
    if go().await {
        ran(st, "alert_judging", "anomaly alert job", alerts::scan(st).await);
    }
    if go().await {
        let signed = checkpoints::sign_due(st).await;
        metrics::global().job_ran("checkpoint_signing", st.clock.now(), signed);
    }
    // Every server delivers what is due, claiming each message first.
    ran(st, "alert_webhook", "alert webhook job", alerts::deliver(st).await);
    ran(
        st,
        "notification_delivery",
        "notification delivery job",
        notify::deliver(st).await,
    );
}

pub async fn sweep_sessions(st: &AppState) -> Result<usize, sqlx::Error> {
    let expired = sessions::expired(&st.db, st.clock.now(), 500).await?;
    for (id_hash, user_id) in &expired {
        sessions::expire_session(st, id_hash, *user_id, "timed out while unused", None).await?;
    }
    Ok(expired.len())
}
