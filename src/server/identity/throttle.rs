//! Failed attempts and lockout (`auth_failures`): per account and per
//! client address, judged by `domain::lockout`.

use super::accounts;
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
        db::{Db, WriteTx},
        request::RequestCtx,
    },
    state::AppState,
};
use serde_json::json;
use sqlx::Row;

// ---------------------------------------------------------------- throttling

#[derive(Debug, Clone)]
pub struct Subject {
    scope: &'static str,
    key: String,
}

pub fn subjects(email: &str, ip: &Option<String>) -> Vec<Subject> {
    let mut v = vec![Subject {
        scope: "account",
        key: email.to_owned(),
    }];
    if let Some(ip) = ip {
        v.push(Subject {
            scope: "ip",
            key: ip.clone(),
        });
    }
    v
}

pub async fn failures(db: &Db, s: &Subject, now: Millis) -> Result<Vec<Millis>, sqlx::Error> {
    let rows = sqlx::query("SELECT at FROM auth_failures WHERE scope = ? AND subject = ? AND at > ?")
        .bind(s.scope)
        .bind(&s.key)
        .bind(now - lockout::WINDOW)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(|r| r.try_get::<i64, _>("at")).collect()
}

/// Refuses the attempt when the account or the address must wait or is locked.
pub async fn throttle(db: &Db, subs: &[Subject], now: Millis) -> Result<(), AppError> {
    let mut worst: Option<lockout::Decision> = None;
    for s in subs {
        let d = lockout::assess(&failures(db, s, now).await?, now);
        let later = |d: lockout::Decision| d.retry_after_seconds(now).unwrap_or(0);
        if d != lockout::Decision::Allow && worst.is_none_or(|w| later(d) > later(w)) {
            worst = Some(d);
        }
    }
    match worst {
        None => Ok(()),
        Some(d) => {
            let secs = d.retry_after_seconds(now).unwrap_or(1).max(1);
            let message = match d {
                lockout::Decision::Locked { .. } => format!(
                    "Too many failed attempts. Sign-in is locked for {} minutes, or until an administrator unlocks it.",
                    (secs + 59) / 60
                ),
                _ => format!("Too many failed attempts. Wait {secs} seconds and try again."),
            };
            Err(AppError::TooManyAttempts {
                message,
                retry_after: secs,
            })
        }
    }
}

/// Records a failed attempt for each subject, and returns the subjects this
/// failure locks (the tenth in the window), so the lock is audited once.
pub async fn record_failure(
    tx: &mut WriteTx,
    db: &Db,
    subs: &[Subject],
    now: Millis,
) -> Result<Vec<Subject>, sqlx::Error> {
    let mut locked = Vec::new();
    for s in subs {
        let before = failures(db, s, now).await?;
        if lockout::locks_now(&before, now) {
            locked.push(s.clone());
        }
        sqlx::query("INSERT INTO auth_failures (scope, subject, at) VALUES (?, ?, ?)")
            .bind(s.scope)
            .bind(&s.key)
            .bind(now)
            .execute(tx.conn())
            .await?;
    }
    Ok(locked)
}

pub fn lockout_events(ctx: &RequestCtx, locked: &[Subject], user_id: Option<i64>) -> Vec<NewEvent> {
    locked
        .iter()
        .map(|s| {
            let e = NewEvent::new(Action::Lockout, Outcome::Denied, ctx.actor_for(None))
                .reason(format!("{} failed attempts within 15 minutes", lockout::LOCK_AFTER))
                .details(json!({ "scope": s.scope }));
            match (s.scope, user_id) {
                ("account", Some(id)) => e.target("user", id),
                ("account", None) => e.target("email", &s.key),
                _ => e.target("ip", &s.key),
            }
        })
        .collect()
}

/// Records a failed password or code attempt with its audit events.
pub async fn fail_attempt(
    st: &AppState,
    ctx: &RequestCtx,
    subs: &[Subject],
    user_id: Option<i64>,
    event: NewEvent,
) -> Result<(), AppError> {
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let locked = record_failure(&mut tx, &st.db, subs, now).await?;
    let mut events = vec![event];
    events.extend(lockout_events(ctx, &locked, user_id));
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
    let cleared = sqlx::query("DELETE FROM auth_failures WHERE scope = 'account' AND subject = ?")
        .bind(email.as_str())
        .execute(tx.conn())
        .await?
        .rows_affected();
    let user = accounts::by_email(tx.conn(), email.as_str()).await?;
    let event = NewEvent::new(Action::Unlock, Outcome::Success, actor).details(json!({ "cleared_failures": cleared }));
    let event = match &user {
        Some(u) => event.target("user", u.id),
        None => event.target("email", email.as_str()),
    };
    audit::append(&mut tx, now, vec![event]).await?;
    tx.commit().await?;
    Ok(cleared > 0)
}
