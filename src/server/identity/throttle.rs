//! Failed attempts and lockout (`auth_failures`): per account and per
//! client address, judged by `domain::lockout`.

use super::{accounts, device};
use crate::domain::actions::Action;
use crate::domain::{
    audit::{Actor, NewEvent, Outcome},
    lockout,
    validation::Email,
    Millis,
};
use crate::errors::AppError;
use crate::server::{
    audit,
    platform::{
        db::{Backend, WriteTx},
        request::RequestCtx,
    },
    state::AppState,
};
use serde_json::json;
use sqlx::{Any, Executor, Row};

// ---------------------------------------------------------------- throttling

#[derive(Debug, Clone)]
pub struct Subject {
    scope: &'static str,
    key: String,
}

/// Whose failures an attempt counts against: a browser that has completed
/// sign-in for the account (a valid device cookie) has an allowance of its
/// own; any other attempt counts against the account and the address,
/// which failures from unknown browsers lock.
pub fn subjects(st: &AppState, ctx: &RequestCtx, email: &str, user_id: Option<i64>) -> Vec<Subject> {
    if let Some(key) = user_id.and_then(|id| device::known(st, ctx, id)) {
        return vec![Subject { scope: "device", key }];
    }
    let mut v = vec![Subject {
        scope: "account",
        key: email.to_owned(),
    }];
    if let Some(ip) = &ctx.ip {
        v.push(Subject {
            scope: "ip",
            key: ip.clone(),
        });
    }
    v
}

async fn failures<'e>(
    ex: impl Executor<'e, Database = Any>,
    s: &Subject,
    now: Millis,
) -> Result<Vec<Millis>, sqlx::Error> {
    let rows = sqlx::query("SELECT at FROM auth_failures WHERE scope = ? AND subject = ? AND at > ?")
        .bind(s.scope)
        .bind(&s.key)
        .bind(now - lockout::WINDOW)
        .fetch_all(ex)
        .await?;
    rows.iter().map(|r| r.try_get::<i64, _>("at")).collect()
}

/// Locks the subject's row until the transaction ends (creating it the
/// first time), so attempts on one account or address are counted one
/// after another. (SQLite writes one transaction at a time anyway.)
async fn lock_subject(tx: &mut WriteTx, s: &Subject) -> Result<(), sqlx::Error> {
    let sql = match tx.backend {
        Backend::MySql => {
            "INSERT INTO auth_subjects (scope, subject) VALUES (?, ?) ON DUPLICATE KEY UPDATE scope = scope"
        }
        Backend::Sqlite => "INSERT INTO auth_subjects (scope, subject) VALUES (?, ?) ON CONFLICT DO NOTHING",
    };
    sqlx::query(sql).bind(s.scope).bind(&s.key).execute(tx.conn()).await?;
    Ok(())
}

fn too_many(d: lockout::Decision, now: Millis) -> AppError {
    let secs = d.retry_after_seconds(now).unwrap_or(1).max(1);
    let message = match d {
        lockout::Decision::Locked { .. } => format!(
            "Too many failed attempts. Sign-in is locked for {} minutes, or until an administrator unlocks it.",
            (secs + 59) / 60
        ),
        _ => format!("Too many failed attempts. Wait {secs} seconds and try again."),
    };
    AppError::TooManyAttempts {
        message,
        retry_after: secs,
    }
}

/// A password or code attempt, counted before it is checked: its rows in
/// `auth_failures` stand as failures until it is settled, so however many
/// attempts arrive at once, no more are checked than the rules allow.
/// `fail_attempt` keeps the rows and records the failure (and the lock it
/// completes, once); `succeeded` removes them in the caller's transaction.
/// An attempt whose check never finishes stays counted as a failure.
#[must_use = "settle the attempt: fail_attempt or succeeded"]
pub struct Attempt {
    ids: Vec<i64>,
    /// Subjects this attempt locks if it fails (it is the tenth).
    locks: Vec<Subject>,
}

/// Counts an attempt for each subject (account first, then address), or
/// refuses it (429 with Retry-After) when one must wait or is locked.
pub async fn begin(st: &AppState, subs: &[Subject]) -> Result<Attempt, AppError> {
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let later = |d: lockout::Decision| d.retry_after_seconds(now).unwrap_or(0);
    let mut worst: Option<lockout::Decision> = None;
    let mut locks = Vec::new();
    for s in subs {
        lock_subject(&mut tx, s).await?;
        let before = failures(tx.conn(), s, now).await?;
        let d = lockout::assess(&before, now);
        if d != lockout::Decision::Allow && worst.is_none_or(|w| later(d) > later(w)) {
            worst = Some(d);
        }
        if lockout::locks_now(&before, now) {
            locks.push(s.clone());
        }
    }
    if let Some(d) = worst {
        return Err(too_many(d, now));
    }
    let mut ids = Vec::with_capacity(subs.len());
    for s in subs {
        let q = sqlx::query("INSERT INTO auth_failures (scope, subject, at) VALUES (?, ?, ?)")
            .bind(s.scope)
            .bind(&s.key)
            .bind(now);
        ids.push(tx.insert_returning_id(q).await?);
    }
    tx.commit().await?;
    Ok(Attempt { ids, locks })
}

impl Attempt {
    /// The password or code was right: the attempt does not count.
    pub async fn succeeded(self, tx: &mut WriteTx) -> Result<(), sqlx::Error> {
        for id in &self.ids {
            sqlx::query("DELETE FROM auth_failures WHERE id = ?")
                .bind(id)
                .execute(tx.conn())
                .await?;
        }
        Ok(())
    }
}

/// Forgets failures older than the window, and the subjects left without
/// any (the background job).
pub async fn prune(st: &AppState) -> Result<(), sqlx::Error> {
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    sqlx::query("DELETE FROM auth_failures WHERE at <= ?")
        .bind(now - lockout::WINDOW)
        .execute(tx.conn())
        .await?;
    sqlx::query(
        "DELETE FROM auth_subjects WHERE NOT EXISTS \
         (SELECT 1 FROM auth_failures f WHERE f.scope = auth_subjects.scope AND f.subject = auth_subjects.subject)",
    )
    .execute(tx.conn())
    .await?;
    tx.commit().await
}

pub fn lockout_events(ctx: &RequestCtx, locked: &[Subject], user_id: Option<i64>) -> Vec<NewEvent> {
    locked
        .iter()
        .map(|s| {
            let e = NewEvent::new(Action::Lockout, Outcome::Denied, ctx.actor_for(None))
                .reason(format!("{} failed attempts within 15 minutes", lockout::LOCK_AFTER))
                .details(json!({ "scope": s.scope }));
            match (s.scope, user_id) {
                ("account" | "device", Some(id)) => e.target("user", id),
                ("account", None) => e.target("email", &s.key),
                _ => e.target("ip", &s.key),
            }
        })
        .collect()
}

/// Records a failed password or code attempt (counted by `begin`) with its
/// audit events, and the lock it completes.
pub async fn fail_attempt(
    st: &AppState,
    ctx: &RequestCtx,
    attempt: Attempt,
    user_id: Option<i64>,
    event: NewEvent,
) -> Result<(), AppError> {
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let mut events = vec![event];
    events.extend(lockout_events(ctx, &attempt.locks, user_id));
    audit::append(&mut tx, now, events).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn clear_account_failures(tx: &mut WriteTx, email: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM auth_failures WHERE scope = 'account' AND subject = ?")
        .bind(email)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// An administrator's (or operator's) unlock: clears the failure window of
/// an account and records who did it.
pub async fn unlock(st: &AppState, actor: Actor, email: &str) -> Result<bool, AppError> {
    let email = Email::parse(email)?;
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let mut cleared = sqlx::query("DELETE FROM auth_failures WHERE scope = 'account' AND subject = ?")
        .bind(email.as_str())
        .execute(tx.conn())
        .await?
        .rows_affected();
    let user = accounts::by_email(tx.conn(), email.as_str()).await?;
    if let Some(u) = &user {
        // The account's known browsers too.
        cleared += sqlx::query("DELETE FROM auth_failures WHERE scope = 'device' AND subject LIKE ?")
            .bind(format!("{}.%", u.id))
            .execute(tx.conn())
            .await?
            .rows_affected();
    }
    let event = NewEvent::new(Action::Unlock, Outcome::Success, actor).details(json!({ "cleared_failures": cleared }));
    let event = match &user {
        Some(u) => event.target("user", u.id),
        None => event.target("email", email.as_str()),
    };
    audit::append(&mut tx, now, vec![event]).await?;
    tx.commit().await?;
    Ok(cleared > 0)
}
