//! Reconciliation: each employee's account on each target is brought to
//! what their grants make due, read back, and recorded. Ending access
//! revokes the roles, locks the account when nothing is due, kills every
//! live connection and polls the read-back until it is clean; the result
//! is a revocation receipt in the audit chain.
//!
//! An employee is reconciled when their `access_version` moved since the
//! last confirmed state, when a grant of theirs starts or ends by time
//! (`next_change_at`), when a mapping of the target changed, or when an
//! earlier attempt is pending and its retry is due.

use super::connector::{Session, TargetError};
use super::targets::{self, Target};
use crate::domain::actions::Action;
use crate::domain::audit::{Actor, NewEvent, Outcome};
use crate::domain::databases::{self as rules, AccountState, Mapping, Plan, ReadBack};
use crate::domain::Millis;
use crate::errors::AppError;
use crate::server::{audit, platform::db::text, state::AppState};
use serde_json::json;
use sqlx::Row;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// One pass over every target, the targets at once (a slow or unreachable
/// target does not hold the others up); returns how many accounts were
/// reconciled.
pub async fn pass(st: &AppState) -> Result<usize, AppError> {
    let targets = targets::all(st).await?;
    let done = futures::future::join_all(targets.iter().map(|t| reconcile_target(st, t))).await;
    done.into_iter().sum()
}

/// One pass over one target (the job runs each target in its own task).
pub async fn pass_one(st: &AppState, id: i64) -> Result<usize, AppError> {
    match targets::load(st, id).await? {
        Some(t) => reconcile_target(st, &t).await,
        None => Ok(0),
    }
}

/// Connections one target is reconciled over at once: a burst of changes
/// (a department offboarded, many elevations ending at one instant) is
/// spread over them, and a target is never flooded.
pub const WORKERS: usize = 8;

/// The workers' writes take turns (across targets too): on MySQL,
/// concurrent transactions that each update a missing account row and
/// then insert it deadlock on the index gap they both locked. Only the
/// server holding the lease reconciles, so turns in this process suffice.
static WRITES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Candidate {
    user_id: i64,
    /// The last confirmed state, if any.
    applied: Option<AccountState>,
    attempts: u32,
    pending_since: Option<Millis>,
    alerted: bool,
}

async fn candidates(st: &AppState, target: i64, now: Millis) -> Result<Vec<Candidate>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT u.id, a.user_id AS known, a.roles, a.locked, a.attempts, a.pending_since, a.alerted \
         FROM users u LEFT JOIN db_accounts a ON a.user_id = u.id AND a.target_id = ? \
         WHERE (a.user_id IS NULL AND EXISTS (SELECT 1 FROM grants g JOIN db_role_privileges m \
                ON m.role_key = g.role AND m.target_id = ? AND m.state = 'active' WHERE g.user_id = u.id AND g.revoked_at IS NULL \
                AND (g.expires_at IS NULL OR g.expires_at > ?))) \
            OR (a.user_id IS NOT NULL AND a.next_attempt_at <= ? AND (a.applied_version <> u.access_version \
                OR a.next_change_at <= ? OR a.status = 'pending')) \
         ORDER BY u.id",
    )
    .bind(target)
    .bind(target)
    .bind(now)
    .bind(now)
    .bind(now)
    .fetch_all(st.db.pool())
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let known = r.try_get::<Option<i64>, _>("known")?.is_some();
        out.push(Candidate {
            user_id: r.try_get("id")?,
            applied: if known {
                Some(AccountState {
                    roles: split(&text(&r, "roles")?),
                    locked: r.try_get::<i64, _>("locked")? != 0,
                })
            } else {
                None
            },
            attempts: r.try_get::<Option<i64>, _>("attempts")?.unwrap_or(0) as u32,
            pending_since: r.try_get("pending_since")?,
            alerted: r.try_get::<Option<i64>, _>("alerted")?.unwrap_or(0) != 0,
        });
    }
    Ok(out)
}

fn split(s: &str) -> BTreeSet<String> {
    s.split(',').filter(|r| !r.is_empty()).map(str::to_owned).collect()
}

fn join(s: &BTreeSet<String>) -> String {
    s.iter().cloned().collect::<Vec<_>>().join(",")
}

async fn reconcile_target(st: &AppState, target: &Target) -> Result<usize, AppError> {
    let now = st.clock.now();
    let due_now = candidates(st, target.id, now).await?;
    if due_now.is_empty() {
        return Ok(0);
    }
    let mappings: Vec<Mapping> = super::mappings::active(st, Some(target.id)).await?;
    let workers = due_now.len().min(WORKERS);
    let mut shares: Vec<Vec<&Candidate>> = vec![Vec::new(); workers];
    for (i, c) in due_now.iter().enumerate() {
        shares[i % workers].push(c);
    }
    let done = futures::future::join_all(shares.iter().map(|share| work(st, target, &mappings, share))).await;
    done.into_iter().sum()
}

/// One worker's share of a target's candidates, over one connection. Once
/// the connection is lost (or the target stops answering), the rest of
/// the share is left pending at once instead of each waiting for its own
/// timeout.
async fn work(st: &AppState, target: &Target, mappings: &[Mapping], share: &[&Candidate]) -> Result<usize, AppError> {
    let mut session = match Session::open(&target.endpoint).await {
        Ok(s) => s,
        Err(e) => {
            for c in share {
                failed(st, target, mappings, c, &e).await?;
            }
            return Ok(0);
        }
    };
    let (mut n, mut lost) = (0, None::<TargetError>);
    for c in share {
        if let Some(e) = &lost {
            failed(st, target, mappings, c, e).await?;
            continue;
        }
        match reconcile_one(st, target, &mut session, mappings, c).await {
            Ok(()) => n += 1,
            Err(Failure::Target(e)) => {
                failed(st, target, mappings, c, &e).await?;
                if e.ends_session() {
                    lost = Some(e);
                }
            }
            Err(Failure::App(e)) => {
                session.close().await;
                return Err(e);
            }
        }
    }
    if lost.is_none() {
        session.close().await;
    }
    Ok(n)
}

enum Failure {
    Target(TargetError),
    App(AppError),
}

impl From<TargetError> for Failure {
    fn from(e: TargetError) -> Self {
        Failure::Target(e)
    }
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::App(e.into())
    }
}

impl From<AppError> for Failure {
    fn from(e: AppError) -> Self {
        Failure::App(e)
    }
}

/// What is due for one employee on a target now, with the facts' version
/// and the next instant it changes by time.
async fn due(
    st: &AppState,
    mappings: &[Mapping],
    user_id: i64,
    now: Millis,
) -> Result<(AccountState, i64, Option<Millis>), sqlx::Error> {
    let facts = crate::server::access::load_facts(st.db.pool(), user_id, now).await?;
    // Roles still in the catalogue (a deleted custom role carries nothing).
    let mapped: BTreeSet<String> = mappings
        .iter()
        .map(|m| m.role.clone())
        .filter(|k| facts.roles.iter().any(|r| &r.key == k))
        .collect();
    let (keys, next) = rules::due_roles(facts.status, &facts.grants, &mapped, now);
    let names = &st.config.db_names;
    let roles = keys.iter().filter_map(|k| names.role(k)).collect();
    Ok((AccountState::due(roles), facts.version, next))
}

async fn reconcile_one(
    st: &AppState,
    target: &Target,
    s: &mut Session,
    mappings: &[Mapping],
    c: &Candidate,
) -> Result<(), Failure> {
    let started = Instant::now();
    let now = st.clock.now();
    let (due, version, next_change) = due(st, mappings, c.user_id, now).await?;
    let names = &st.config.db_names;
    let (account, personal) = (names.account(c.user_id), names.personal_role(c.user_id));
    let mut before = s.read_back(&account, &personal).await?;
    if before.is_none() && !due.locked {
        s.create_account(&account, &personal).await?;
        before = s.read_back(&account, &personal).await?;
    }
    // No account and nothing due: nothing to hold, nothing to end.
    let actual = match &before {
        Some(rb) => AccountState {
            roles: rb.roles.iter().filter(|r| names.owns(r)).cloned().collect(),
            locked: rb.locked,
        },
        None => AccountState::due(BTreeSet::new()),
    };
    let plan = rules::plan(&actual, &due);
    if before.is_some() && !plan.grant.is_empty() {
        s.ensure_personal(&account, &personal).await?;
    }
    for role in &plan.grant {
        let carried: Vec<Mapping> = mappings
            .iter()
            .filter(|m| names.role(&m.role).as_deref() == Some(role.as_str()))
            .cloned()
            .collect();
        s.ensure_role(role, &carried).await?;
        s.grant_role(role, &personal).await?;
    }
    for role in &plan.revoke {
        s.revoke_role(role, &personal).await?;
    }
    if plan.lock {
        s.set_locked(&account, true).await?;
    }
    if plan.new_password {
        let unknown = secrecy::SecretString::from(crate::server::platform::crypto::random_token(24));
        s.set_password(&account, &unknown).await?;
    }
    if plan.unlock {
        s.set_locked(&account, false).await?;
    }
    // Connections that must end: all of them when access ends, or when a
    // role was taken from a working account (a session keeps what its
    // active role held).
    let ending = before.is_some() && (due.locked || !plan.revoke.is_empty());
    let mut killed: Vec<u64> = Vec::new();
    let deadline = started + Duration::from_millis(rules::READ_BACK_FOR as u64);
    let (read_back, confirmed) = loop {
        let rb = match before {
            None => ReadBack {
                locked: true,
                ..ReadBack::default()
            },
            Some(_) => s.read_back(&account, &personal).await?.unwrap_or_default(),
        };
        if ending {
            for id in &rb.connections {
                if due.locked || !killed.contains(id) {
                    s.kill(*id).await?;
                    if !killed.contains(id) {
                        killed.push(*id);
                    }
                }
            }
        }
        let gone = !rb.connections.iter().any(|c| killed.contains(c));
        let clean = before.is_none() || (rb.confirms(&due) && gone);
        if clean || Instant::now() >= deadline {
            break (rb, clean);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let took_ms = started.elapsed().as_millis() as i64;
    let _turn = WRITES.lock().await;
    record(
        st,
        target,
        c,
        Done {
            due: &due,
            version,
            next_change,
            plan: &plan,
            killed: &killed,
            read_back: &read_back,
            confirmed,
            ending: ending && (!plan.revoke.is_empty() || plan.lock || !killed.is_empty()),
            took_ms,
            account: &account,
        },
    )
    .await?;
    Ok(())
}

/// What a reconciliation did and saw.
struct Done<'a> {
    due: &'a AccountState,
    version: i64,
    next_change: Option<Millis>,
    plan: &'a Plan,
    killed: &'a [u64],
    read_back: &'a ReadBack,
    confirmed: bool,
    ending: bool,
    took_ms: i64,
    account: &'a str,
}

/// The row written for an employee on a target.
struct Row_<'a> {
    roles: &'a BTreeSet<String>,
    locked: bool,
    version: i64,
    next_change: Option<Millis>,
    pending: bool,
    attempts: u32,
    next_attempt_at: Millis,
    pending_since: Option<Millis>,
    alerted: bool,
    error: Option<&'a str>,
}

async fn store(
    tx: &mut crate::server::platform::db::WriteTx,
    target: i64,
    user_id: i64,
    account: &str,
    r: Row_<'_>,
    now: Millis,
) -> Result<(), sqlx::Error> {
    let status = if r.pending { "pending" } else { "provisioned" };
    let updated = sqlx::query(
        "UPDATE db_accounts SET roles = ?, locked = ?, applied_version = ?, next_change_at = ?, status = ?, attempts = ?, \
         next_attempt_at = ?, pending_since = ?, alerted = ?, last_error = ?, updated_at = ? WHERE target_id = ? AND user_id = ?",
    )
    .bind(join(r.roles))
    .bind(r.locked as i64)
    .bind(r.version)
    .bind(r.next_change)
    .bind(status)
    .bind(r.attempts as i64)
    .bind(r.next_attempt_at)
    .bind(r.pending_since)
    .bind(r.alerted as i64)
    .bind(r.error)
    .bind(now)
    .bind(target)
    .bind(user_id)
    .execute(tx.conn())
    .await?;
    if updated.rows_affected() == 0 {
        sqlx::query(
            "INSERT INTO db_accounts (target_id, user_id, account, roles, locked, applied_version, next_change_at, status, \
             attempts, next_attempt_at, pending_since, alerted, last_error, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(target)
        .bind(user_id)
        .bind(account)
        .bind(join(r.roles))
        .bind(r.locked as i64)
        .bind(r.version)
        .bind(r.next_change)
        .bind(status)
        .bind(r.attempts as i64)
        .bind(r.next_attempt_at)
        .bind(r.pending_since)
        .bind(r.alerted as i64)
        .bind(r.error)
        .bind(now)
        .execute(tx.conn())
        .await?;
    }
    Ok(())
}

fn system() -> Actor {
    Actor::default()
}

/// Whether something that was provisioned is still to be taken away.
fn revoking(applied: Option<&AccountState>, due: &AccountState) -> bool {
    applied.is_some_and(|a| !a.roles.is_subset(&due.roles) || (due.locked && !a.locked))
}

async fn record(st: &AppState, target: &Target, c: &Candidate, d: Done<'_>) -> Result<(), AppError> {
    let now = st.clock.now();
    let names = &st.config.db_names;
    let base = json!({"target": target.name, "target_id": target.id, "account": d.account});
    let with = |extra: serde_json::Value| {
        let mut v = base.clone();
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        v
    };
    let read_back = json!({
        "roles": d.read_back.roles,
        "locked": d.read_back.locked,
        "connections": d.read_back.connections,
    });
    let mut events = Vec::new();
    let mut tx = st.db.begin_write().await?;
    if d.confirmed {
        store(
            &mut tx,
            target.id,
            c.user_id,
            d.account,
            Row_ {
                roles: &d.due.roles,
                locked: d.due.locked,
                version: d.version,
                next_change: d.next_change,
                pending: false,
                attempts: 0,
                next_attempt_at: 0,
                pending_since: None,
                alerted: false,
                error: None,
            },
            now,
        )
        .await?;
        if !d.plan.grant.is_empty() || d.plan.unlock {
            events.push(
                NewEvent::new(Action::DbAccessProvisioned, Outcome::Success, system())
                    .target("user", c.user_id)
                    .details(with(json!({
                        "granted": d.plan.grant,
                        "unlocked": d.plan.unlock,
                        "password_replaced": d.plan.new_password,
                        "read_back": read_back,
                        "took_ms": d.took_ms,
                    }))),
            );
        }
        // A revocation that raised the alert is confirmed here, even if
        // nothing was left to do; the alert closes with the last one.
        if d.ending || c.alerted {
            let closes_alert = c.alerted
                && sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) FROM db_accounts WHERE user_id = ? AND target_id <> ? AND alerted = 1",
                )
                .bind(c.user_id)
                .bind(target.id)
                .fetch_one(tx.conn())
                .await?
                    == 0;
            events.push(
                NewEvent::new(Action::DbRevocationReceipt, Outcome::Success, system())
                    .target("user", c.user_id)
                    .details(with(json!({
                        "revoked": d.plan.revoke,
                        "locked": d.due.locked,
                        "connections_killed": d.killed,
                        "read_back": read_back,
                        "confirmed_at": now,
                        "took_ms": d.took_ms,
                        "closes_alert": closes_alert,
                    }))),
            );
        }
    } else {
        let seen = AccountState {
            roles: d.read_back.roles.iter().filter(|r| names.owns(r)).cloned().collect(),
            locked: d.read_back.locked,
        };
        pending(
            st,
            &mut tx,
            target,
            c,
            d.account,
            Some(&seen),
            d.due,
            "the read-back did not confirm the change in time",
            &mut events,
        )
        .await?;
        events.push(
            NewEvent::new(Action::DbChangePending, Outcome::Failure, system())
                .target("user", c.user_id)
                .details(with(
                    json!({"revoked": d.plan.revoke, "connections_killed": d.killed, "read_back": read_back}),
                )),
        );
        events.retain(|e| c.pending_since.is_none() || e.action != Action::DbChangePending.id());
    }
    audit::append(&mut tx, now, events).await?;
    tx.commit().await?;
    Ok(())
}

/// Leaves a change pending: retried with growing delays, and after a
/// minute unconfirmed, a revocation raises an anomaly alert once.
#[allow(clippy::too_many_arguments)]
async fn pending(
    st: &AppState,
    tx: &mut crate::server::platform::db::WriteTx,
    target: &Target,
    c: &Candidate,
    account: &str,
    seen: Option<&AccountState>,
    due: &AccountState,
    error: &str,
    events: &mut Vec<NewEvent>,
) -> Result<(), AppError> {
    let now = st.clock.now();
    let since = c.pending_since.unwrap_or(now);
    let last = seen.or(c.applied.as_ref());
    let alert = !c.alerted && revoking(last, due) && now - since >= rules::UNCONFIRMED_AFTER;
    if alert {
        events.push(
            NewEvent::new(Action::DbRevocationUnconfirmed, Outcome::Failure, system())
                .target("user", c.user_id)
                .details(json!({
                    "target": target.name,
                    "target_id": target.id,
                    "account": account,
                    "pending_since": since,
                    "error": error,
                })),
        );
    }
    let empty = BTreeSet::new();
    store(
        tx,
        target.id,
        c.user_id,
        account,
        Row_ {
            roles: last.map(|a| &a.roles).unwrap_or(&empty),
            locked: last.is_none_or(|a| a.locked),
            // Never matches a version: the next due retry reconciles again.
            version: -1,
            next_change: None,
            pending: true,
            attempts: c.attempts + 1,
            next_attempt_at: now + rules::retry_delay(c.attempts),
            pending_since: Some(since),
            alerted: c.alerted || alert,
            error: Some(error),
        },
        now,
    )
    .await?;
    Ok(())
}

/// A target that failed: the employee's change stays pending.
async fn failed(
    st: &AppState,
    target: &Target,
    mappings: &[Mapping],
    c: &Candidate,
    e: &TargetError,
) -> Result<(), AppError> {
    tracing::warn!(target_id = target.id, user_id = c.user_id, error = %e, "database target change failed; retrying");
    let (due, _, _) = due(st, mappings, c.user_id, st.clock.now()).await?;
    let _turn = WRITES.lock().await;
    let account = st.config.db_names.account(c.user_id);
    let mut events = Vec::new();
    let mut tx = st.db.begin_write().await?;
    let message = e.to_string();
    pending(st, &mut tx, target, c, &account, None, &due, &message, &mut events).await?;
    if c.pending_since.is_none() {
        events.push(
            NewEvent::new(Action::DbChangePending, Outcome::Failure, system())
                .target("user", c.user_id)
                .details(json!({"target": target.name, "target_id": target.id, "account": account, "error": message})),
        );
    }
    audit::append(&mut tx, st.clock.now(), events).await?;
    tx.commit().await?;
    Ok(())
}
