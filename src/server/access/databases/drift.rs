//! Drift: each target's accounts, roles and grants, compared every minute
//! (and on demand) with what Gatehouse intends. A new difference is
//! recorded (`database.drift_found`, which raises the `db_drift` alert)
//! with the exact findings; the same drift is recorded once, and its end
//! too. With correction on, drift of Gatehouse's own names is undone and
//! recorded (`database.drift_corrected`); other accounts are only reported.

use super::connector::Session;
use super::targets::{self, unreachable, Target};
use crate::domain::actions::Action;
use crate::domain::audit::{Actor, NewEvent, Outcome};
use crate::domain::databases::{self as rules, AccountState, Finding, Intended};
use crate::dto::DriftView;
use crate::errors::AppError;
use crate::server::{
    audit,
    platform::{crypto, db::text, request::RequestCtx},
    state::AppState,
};
use serde_json::json;
use sqlx::Row;

/// How often each target is scanned.
pub const EVERY: crate::domain::Millis = 60_000;

/// Scans every target whose last scan is a minute old.
pub async fn due(st: &AppState) -> Result<usize, AppError> {
    let mut n = 0;
    for id in super::target_ids(st).await? {
        n += due_one(st, id).await?;
    }
    Ok(n)
}

/// Scans target `id` if its last scan is a minute old; 1 if it did.
pub async fn due_one(st: &AppState, id: i64) -> Result<usize, AppError> {
    let now = st.clock.now();
    let Some(auto_correct) =
        sqlx::query_scalar::<_, i64>("SELECT auto_correct FROM db_targets WHERE id = ? AND drift_checked_at <= ?")
            .bind(id)
            .bind(now - EVERY)
            .fetch_optional(st.db.pool())
            .await?
    else {
        return Ok(0);
    };
    let Some(t) = targets::load(st, id).await? else {
        return Ok(0);
    };
    match scan(st, &t, auto_correct != 0, Actor::default()).await {
        Ok(_) => Ok(1),
        Err(e) => {
            // Tried again in a minute, not at every pass.
            tracing::warn!(target_id = t.id, error = %e, "drift scan failed");
            st.db
                .write(
                    sqlx::query("UPDATE db_targets SET drift_checked_at = ? WHERE id = ?")
                        .bind(now)
                        .bind(t.id),
                )
                .await?;
            Ok(0)
        }
    }
}

/// A scan asked for by an administrator.
pub async fn scan_now(st: &AppState, ctx: &RequestCtx, id: i64) -> Result<DriftView, AppError> {
    let row = sqlx::query("SELECT auto_correct FROM db_targets WHERE id = ?")
        .bind(id)
        .fetch_optional(st.db.pool())
        .await?
        .ok_or(AppError::NotFound)?;
    let t = targets::load(st, id).await?.ok_or(AppError::NotFound)?;
    let correct = row.try_get::<i64, _>("auto_correct")? != 0;
    let (findings, corrected) = scan(st, &t, correct, ctx.actor()).await?;
    Ok(DriftView {
        findings: findings.iter().map(describe).collect(),
        corrected: corrected.iter().map(describe).collect(),
    })
}

fn describe(f: &Finding) -> String {
    format!("{}: {}", f.subject, f.detail)
}

async fn intended(st: &AppState, t: &Target) -> Result<(Intended, Vec<String>), sqlx::Error> {
    let mappings = super::mappings::active(st, Some(t.id)).await?;
    let rows = sqlx::query("SELECT account, roles, locked, status FROM db_accounts WHERE target_id = ?")
        .bind(t.id)
        .fetch_all(st.db.pool())
        .await?;
    let mut accounts = std::collections::BTreeMap::new();
    let mut pending = Vec::new();
    for r in rows {
        let account = text(&r, "account")?;
        if text(&r, "status")? != "provisioned" {
            pending.push(account);
            continue;
        }
        let roles = text(&r, "roles")?
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        accounts.insert(
            account,
            AccountState {
                roles,
                locked: r.try_get::<i64, _>("locked")? != 0,
            },
        );
    }
    let intended = Intended {
        connector: t.endpoint.username.clone(),
        mappings,
        accounts,
    };
    Ok((intended, pending))
}

/// Reads the target, compares, corrects when asked, and records what is new.
async fn scan(
    st: &AppState,
    t: &Target,
    correct: bool,
    actor: Actor,
) -> Result<(Vec<Finding>, Vec<Finding>), AppError> {
    let names = &st.config.db_names;
    let (intended, pending) = intended(st, t).await?;
    let mut s = Session::open(&t.endpoint).await.map_err(unreachable)?;
    let observed = s.observe(names).await;
    let mut observed = match observed {
        Ok(o) => o,
        Err(e) => {
            s.close().await;
            return Err(unreachable(e));
        }
    };
    // An account whose change is pending is the reconciler's to settle.
    let personal: Vec<String> = pending
        .iter()
        .filter_map(|a| names.account_user(a).map(|id| names.personal_role(id)))
        .collect();
    observed.accounts.retain(|(a, _)| !pending.contains(a));
    observed
        .role_edges
        .retain(|(g, _, _)| !pending.contains(g) && !personal.contains(g));
    let found = rules::drift(names, &intended, &observed);
    let mut corrected = Vec::new();
    if correct {
        for f in found.iter().filter(|f| f.fix.is_some()) {
            match s.apply(f.fix.as_ref().expect("filtered"), names).await {
                Ok(()) => corrected.push(f.clone()),
                Err(e) => tracing::warn!(target_id = t.id, error = %e, "drift correction failed"),
            }
        }
    }
    s.close().await;
    let remaining: Vec<Finding> = found.iter().filter(|f| !corrected.contains(f)).cloned().collect();
    let fingerprint = if remaining.is_empty() {
        String::new()
    } else {
        crypto::sha256_hex(serde_json::to_string(&remaining).unwrap_or_default().as_bytes())
    };
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let before: String = sqlx::query_scalar("SELECT drift_fingerprint FROM db_targets WHERE id = ?")
        .bind(t.id)
        .fetch_one(tx.conn())
        .await?;
    sqlx::query("UPDATE db_targets SET drift_checked_at = ?, drift_fingerprint = ? WHERE id = ?")
        .bind(now)
        .bind(&fingerprint)
        .bind(t.id)
        .execute(tx.conn())
        .await?;
    let target = json!({"target": t.name, "target_id": t.id});
    let with = |key: &str, list: &[Finding]| {
        let mut v = target.clone();
        v[key] = json!(list
            .iter()
            .map(|f| json!({"kind": f.kind, "subject": f.subject, "detail": f.detail}))
            .collect::<Vec<_>>());
        v
    };
    let mut events = Vec::new();
    if !corrected.is_empty() {
        events.push(
            NewEvent::new(Action::DbDriftCorrected, Outcome::Success, actor.clone())
                .target("db_target", t.id)
                .details(with("corrected", &corrected)),
        );
    }
    if fingerprint != before {
        events.push(if remaining.is_empty() {
            NewEvent::new(Action::DbDriftCleared, Outcome::Success, actor)
                .target("db_target", t.id)
                .details(target.clone())
        } else {
            NewEvent::new(Action::DbDriftFound, Outcome::Failure, actor)
                .target("db_target", t.id)
                .details(with("findings", &remaining))
        });
    }
    audit::append(&mut tx, now, events).await?;
    tx.commit().await?;
    Ok((remaining, corrected))
}

/// Turns automatic correction of Gatehouse's own drift on or off.
pub async fn set_correction(st: &AppState, ctx: &RequestCtx, id: i64, on: bool) -> Result<(), AppError> {
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    let changed = sqlx::query("UPDATE db_targets SET auto_correct = ? WHERE id = ?")
        .bind(on as i64)
        .bind(id)
        .execute(tx.conn())
        .await?
        .rows_affected();
    if changed == 0 {
        return Err(AppError::NotFound);
    }
    audit::append(
        &mut tx,
        now,
        vec![NewEvent::new(Action::DbDriftCorrection, Outcome::Success, ctx.actor())
            .target("db_target", id)
            .details(json!({"auto_correct": on}))],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
