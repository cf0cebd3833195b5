//! Starting a campaign: its checks, then the snapshot, one item per grant
//! (or token) in scope with the facts a reviewer decides on, written with
//! the campaign's start event in one transaction.

use super::administrators;
use crate::domain::actions::Action;
use crate::domain::{
    audit::{Actor, NewEvent, Outcome},
    grants::DEPARTMENTS,
    reviews::{self as rules, CampaignError, DeadlineRule, GrantFacts, NewCampaign, Scope, DAY},
    Millis,
};
use crate::errors::AppError;
use crate::server::{
    access::{authz::Principal, roles},
    audit,
    platform::{
        db::{opt_text, text, WriteTx},
        request::RequestCtx,
    },
    state::AppState,
};
use serde_json::json;
use sqlx::Row;
use std::collections::HashMap;

/// A campaign as an administrator asks for it.
pub struct CampaignInput {
    pub name: String,
    pub scope: Scope,
    /// Days from now to the deadline.
    pub due_in_days: i64,
    pub rule: DeadlineRule,
    pub every_months: Option<u32>,
}

/// Starts a campaign now; returns its id and how many items it holds.
pub async fn start(
    st: &AppState,
    ctx: &RequestCtx,
    p: &Principal,
    input: CampaignInput,
) -> Result<(i64, usize), AppError> {
    let now = st.clock.now();
    let new = NewCampaign {
        name: input.name.trim().to_owned(),
        scope: input.scope,
        starts_at: now,
        due_at: now.saturating_add(input.due_in_days.saturating_mul(DAY)),
        rule: input.rule,
        every_months: input.every_months,
    };
    rules::check_campaign(&new).map_err(validation)?;
    if let Scope::Department(d) = &new.scope {
        if !DEPARTMENTS.iter().any(|k| k.eq_ignore_ascii_case(d)) {
            return Err(AppError::Validation(format!(
                "Choose one of the departments: {}.",
                DEPARTMENTS.join(", ")
            )));
        }
    }
    if let Scope::Roles(keys) = &new.scope {
        let known = roles::all_roles(st.db.pool()).await?;
        if let Some(k) = keys.iter().find(|k| !known.iter().any(|r| &r.key == *k)) {
            let k: String = k.chars().take(40).collect();
            return Err(AppError::Validation(format!("There is no role \"{k}\".")));
        }
    }
    let admins = administrators(st.db.pool(), now).await?;
    let mut tx = st.db.begin_write().await?;
    let (id, n) = start_in(&mut tx, ctx.actor(), Some(p.user_id), &new, None, &admins, now).await?;
    tx.commit().await?;
    Ok((id, n))
}

fn validation(e: CampaignError) -> AppError {
    AppError::Validation(e.to_string())
}

/// Stores the campaign, takes its snapshot and records its start, in the
/// caller's transaction. `parent` is the campaign it recurs from.
pub(super) async fn start_in(
    tx: &mut WriteTx,
    actor: Actor,
    created_by: Option<i64>,
    c: &NewCampaign,
    parent: Option<i64>,
    admins: &[i64],
    now: Millis,
) -> Result<(i64, usize), sqlx::Error> {
    let q = sqlx::query(
        "INSERT INTO review_campaigns (name, scope, critical_rule, other_rule, every_months, parent_id, starts_at, due_at, \
         created_by, created_at, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(c.name.as_str())
    .bind(c.scope.to_stored())
    .bind(c.rule.critical.as_str())
    .bind(c.rule.other.as_str())
    .bind(c.every_months.map(i64::from))
    .bind(parent)
    .bind(c.starts_at)
    .bind(c.due_at)
    .bind(created_by)
    .bind(now)
    .bind(now);
    let id = tx.insert_returning_id(q).await?;
    let rows = snapshot(tx, &c.scope, admins, now, c.due_at).await?;
    insert_items(tx, id, &rows).await?;
    let critical = rows.iter().filter(|r| r.critical).count();
    let flagged = rows.iter().filter(|r| r.reviewers == "none").count();
    audit::append(
        tx,
        now,
        vec![NewEvent::new(Action::ReviewStarted, Outcome::Success, actor)
            .target("review_campaign", id)
            .details(json!({
                "campaign_id": id,
                "name": c.name,
                "scope": c.scope.to_stored(),
                "starts_at": c.starts_at,
                "due_at": c.due_at,
                "undecided": { "critical": c.rule.critical.as_str(), "other": c.rule.other.as_str() },
                "every_months": c.every_months,
                "recurs_from": parent,
                "items": rows.len(),
                "critical_items": critical,
                "no_independent_reviewer": flagged,
            }))],
    )
    .await?;
    Ok((id, rows.len()))
}

/// One snapshot item before it is stored.
struct Snap {
    kind: &'static str,
    grant_id: Option<i64>,
    token_id: Option<i64>,
    holder_id: Option<i64>,
    role: String,
    permissions: String,
    critical: bool,
    granted_at: Millis,
    granted_by: Option<i64>,
    reason: String,
    expires_at: Option<Millis>,
    last_sign_in: Option<Millis>,
    last_used: Option<Millis>,
    reviewers: String,
}

/// The latest instant per key from a two-column query (key, at).
async fn latest(tx: &mut WriteTx, sql: &str) -> Result<HashMap<i64, Millis>, sqlx::Error> {
    let rows = sqlx::query(sql).fetch_all(tx.conn()).await?;
    rows.iter()
        .map(|r| -> Result<(i64, Millis), sqlx::Error> { Ok((r.try_get("k")?, r.try_get("at")?)) })
        .collect()
}

async fn snapshot(
    tx: &mut WriteTx,
    scope: &Scope,
    admins: &[i64],
    now: Millis,
    due_at: Millis,
) -> Result<Vec<Snap>, sqlx::Error> {
    if *scope == Scope::ServiceTokens {
        return tokens(tx, admins, now, due_at).await;
    }
    let catalogue = roles::all_roles(tx.conn()).await?;
    let owners = owners(tx).await?;
    let signed_in = latest(
        tx,
        "SELECT actor_user_id AS k, MAX(at) AS at FROM audit_events WHERE action = 'auth.signin' \
         AND outcome = 'success' AND actor_user_id IS NOT NULL GROUP BY actor_user_id",
    )
    .await?;
    let used = latest(
        tx,
        "SELECT r.grant_id AS k, MAX(e.at) AS at FROM audit_grant_refs r JOIN audit_events e ON e.seq = r.seq \
         WHERE e.action IN ('access.check', 'data.access') AND e.outcome = 'success' GROUP BY r.grant_id",
    )
    .await?;
    let rows = sqlx::query(
        "SELECT g.id, g.user_id, g.role, g.starts_at, g.expires_at, g.granted_by, g.reason, u.department \
         FROM grants g JOIN users u ON u.id = g.user_id WHERE g.revoked_at IS NULL AND g.pending = 0 \
         AND g.starts_at <= ? AND (g.expires_at IS NULL OR g.expires_at > ?) AND u.status <> 'offboarded' ORDER BY g.id",
    )
    .bind(now)
    .bind(due_at)
    .fetch_all(tx.conn())
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        let role = text(r, "role")?;
        let perms = catalogue
            .iter()
            .find(|c| c.key == role)
            .map(|c| c.permissions)
            .unwrap_or_default();
        let facts = GrantFacts {
            role: role.clone(),
            critical: perms.has_critical(),
            department: opt_text(r, "department")?.unwrap_or_default(),
            starts_at: r.try_get("starts_at")?,
            expires_at: r.try_get("expires_at")?,
            revoked: false,
            pending: false,
        };
        if !rules::is_standing(&facts, now, due_at) || !scope.takes(&facts) {
            continue;
        }
        let id: i64 = r.try_get("id")?;
        let holder: i64 = r.try_get("user_id")?;
        let role_owners = owners.get(&role).map(Vec::as_slice).unwrap_or_default();
        out.push(Snap {
            kind: "grant",
            grant_id: Some(id),
            token_id: None,
            holder_id: Some(holder),
            permissions: perms.to_list(),
            critical: facts.critical,
            granted_at: facts.starts_at,
            granted_by: r.try_get("granted_by")?,
            reason: text(r, "reason")?,
            expires_at: facts.expires_at,
            last_sign_in: signed_in.get(&holder).copied(),
            last_used: used.get(&id).copied(),
            reviewers: rules::reviewers(holder, role_owners, admins).to_stored(),
            role,
        });
    }
    Ok(out)
}

/// Owners per role: active employees only.
async fn owners(tx: &mut WriteTx) -> Result<HashMap<String, Vec<i64>>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT o.role_key, o.user_id FROM role_owners o JOIN users u ON u.id = o.user_id \
         WHERE u.status = 'active' ORDER BY o.role_key, o.user_id",
    )
    .fetch_all(tx.conn())
    .await?;
    let mut map: HashMap<String, Vec<i64>> = HashMap::new();
    for r in &rows {
        map.entry(text(r, "role_key")?).or_default().push(r.try_get("user_id")?);
    }
    Ok(map)
}

/// Service-account tokens in force past the deadline; administrators review them.
async fn tokens(tx: &mut WriteTx, admins: &[i64], now: Millis, due_at: Millis) -> Result<Vec<Snap>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT t.id, t.label, t.created_by, t.created_at, t.expires_at, t.last_used_at, s.name, s.scopes \
         FROM api_tokens t JOIN service_accounts s ON s.id = t.account_id WHERE t.revoked_at IS NULL \
         AND s.disabled_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > ?) AND t.created_at <= ? ORDER BY t.id",
    )
    .bind(due_at)
    .bind(now)
    .fetch_all(tx.conn())
    .await?;
    let reviewers = rules::reviewers(i64::MIN, &[], admins).to_stored();
    rows.iter()
        .map(|r| -> Result<Snap, sqlx::Error> {
            Ok(Snap {
                kind: "token",
                grant_id: None,
                token_id: Some(r.try_get("id")?),
                holder_id: None,
                role: text(r, "name")?,
                permissions: text(r, "scopes")?,
                critical: false,
                granted_at: r.try_get("created_at")?,
                granted_by: r.try_get("created_by")?,
                reason: text(r, "label")?,
                expires_at: r.try_get("expires_at")?,
                last_sign_in: None,
                last_used: r.try_get("last_used_at")?,
                reviewers: reviewers.clone(),
            })
        })
        .collect()
}

async fn insert_items(tx: &mut WriteTx, campaign_id: i64, rows: &[Snap]) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(200) {
        let sql = format!(
            "INSERT INTO review_items (campaign_id, kind, grant_id, token_id, holder_id, role, permissions, critical, \
             granted_at, granted_by, reason, expires_at, last_sign_in, last_used, reviewers) VALUES {}",
            vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ")
        );
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q
                .bind(campaign_id)
                .bind(r.kind)
                .bind(r.grant_id)
                .bind(r.token_id)
                .bind(r.holder_id)
                .bind(r.role.as_str())
                .bind(r.permissions.as_str())
                .bind(r.critical as i64)
                .bind(r.granted_at)
                .bind(r.granted_by)
                .bind(r.reason.as_str())
                .bind(r.expires_at)
                .bind(r.last_sign_in)
                .bind(r.last_used)
                .bind(r.reviewers.as_str());
        }
        q.execute(tx.conn()).await?;
    }
    Ok(())
}
