//! Closing campaigns (at the deadline, or early by an administrator),
//! starting recurrences on their day, and reminding reviewers. Every server
//! runs `run_due`; each campaign is claimed by a conditional update, and a
//! recurrence is unique per parent, so each happens once.

use super::{administrators, campaign, decide::end_token_as, items, open_campaigns, report, scope_of, Campaign, Item};
use crate::domain::actions::Action;
use crate::domain::{
    audit::{Actor, NewEvent, Outcome},
    reviews::{self as rules, Closing, NewCampaign, Reminder},
    Millis,
};
use crate::errors::AppError;
use crate::server::{
    access::{
        authz::{refuse, Principal},
        grants::{self, Ending},
        notify,
    },
    audit,
    platform::{db::WriteTx, names::names, request::RequestCtx},
    state::AppState,
};
use serde_json::json;
use sqlx::Row;
use std::collections::BTreeMap;

/// "Close now": an administrator closes an open campaign before its deadline.
pub async fn close_now(st: &AppState, ctx: &RequestCtx, p: &Principal, campaign_id: i64) -> Result<String, AppError> {
    let now = st.clock.now();
    campaign(st.db.pool(), campaign_id).await?.ok_or(AppError::NotFound)?;
    let mut tx = st.db.begin_write().await?;
    grants::lock_administrators(&mut tx).await?;
    match close_in(&mut tx, campaign_id, ctx.actor(), Some(p.user_id), now).await? {
        Some(sha) => {
            tx.commit().await?;
            Ok(sha)
        }
        None => {
            drop(tx);
            let ev = NewEvent::new(Action::ReviewClosed, Outcome::Denied, ctx.actor())
                .target("review_campaign", campaign_id)
                .details(json!({ "campaign_id": campaign_id }));
            let e = AppError::Conflict("This campaign is already closed.".into());
            Err(refuse(st, ev, e).await?)
        }
    }
}

/// Closes a campaign in the caller's transaction (which called
/// `lock_administrators` first): claims it, applies each item's outcome,
/// freezes the report and records the close. `None` when it was closed
/// already (by another server, or by hand).
async fn close_in(
    tx: &mut WriteTx,
    campaign_id: i64,
    actor: Actor,
    by: Option<i64>,
    now: Millis,
) -> Result<Option<String>, AppError> {
    let claimed =
        sqlx::query("UPDATE review_campaigns SET closed_at = ?, closed_by = ? WHERE id = ? AND closed_at IS NULL")
            .bind(now)
            .bind(by)
            .bind(campaign_id)
            .execute(tx.conn())
            .await?
            .rows_affected();
    if claimed == 0 {
        return Ok(None);
    }
    let c = campaign(tx.conn(), campaign_id).await?.ok_or(AppError::NotFound)?;
    let reason = format!("Access review {campaign_id} \"{}\" closed", c.name);
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut events = Vec::new();
    for item in items(tx.conn(), campaign_id).await? {
        let (outcome, flags) = apply(tx, &c, &item, actor.clone(), &reason, now).await?;
        *counts.entry(outcome).or_default() += 1;
        sqlx::query("UPDATE review_items SET outcome = ?, flags = ? WHERE id = ?")
            .bind(outcome)
            .bind((!flags.is_empty()).then_some(flags.as_str()))
            .bind(item.id)
            .execute(tx.conn())
            .await?;
        if item.decision.is_none() || !flags.is_empty() || outcome == "converted" {
            events.push(
                NewEvent::new(Action::ReviewItemClosed, Outcome::Success, actor.clone())
                    .target("review_campaign", campaign_id)
                    .details(json!({
                        "campaign_id": campaign_id,
                        "item_id": item.id,
                        "grant_id": item.grant_id,
                        "token_id": item.token_id,
                        "holder_id": item.holder_id,
                        "role": item.role,
                        "decision": item.decision.map(|d| d.as_str()),
                        "outcome": outcome,
                        "flags": flags,
                    })),
            );
        }
    }
    audit::append(tx, now, events).await?;
    let closed = items(tx.conn(), campaign_id).await?;
    let csv = report::render(&c, &closed, &names(tx.conn()).await?);
    let sha = report::digest(&csv);
    sqlx::query("UPDATE review_campaigns SET report = ?, report_sha256 = ? WHERE id = ?")
        .bind(&csv)
        .bind(&sha)
        .bind(campaign_id)
        .execute(tx.conn())
        .await?;
    let decided = closed.iter().filter(|i| i.decision.is_some()).count();
    let event = NewEvent::new(Action::ReviewClosed, Outcome::Success, actor)
        .target("review_campaign", campaign_id)
        .details(json!({
            "campaign_id": campaign_id,
            "name": c.name,
            "closed_by": by,
            "by_deadline": by.is_none(),
            "due_at": c.due_at,
            "items": closed.len(),
            "decided": decided,
            "outcomes": counts,
            "report_sha256": sha,
        }));
    audit::append(tx, now, vec![event]).await?;
    Ok(Some(sha))
}

/// Applies one item's outcome; returns the stored outcome and flags.
async fn apply(
    tx: &mut WriteTx,
    c: &Campaign,
    item: &Item,
    actor: Actor,
    reason: &str,
    now: Millis,
) -> Result<(&'static str, String), AppError> {
    let closing = rules::at_close(item.decision, item.critical, &item.reviewers, &c.rule, false);
    let closing = match closing {
        Closing::Revoke => {
            let ended = match (item.grant_id, item.token_id) {
                (Some(g), _) => grants::end_reviewed_in(tx, actor, None, g, reason, now).await?,
                (None, Some(t)) => end_token_as(tx, actor, None, t, now).await?,
                (None, None) => Ending::AlreadyEnded,
            };
            match ended {
                Ending::Ended => Closing::Revoke,
                Ending::AlreadyEnded => return Ok(("already_ended", String::new())),
                Ending::LastAdministrator => rules::at_close(None, item.critical, &item.reviewers, &c.rule, true),
            }
        }
        Closing::Convert { expires_at } => match item.grant_id {
            Some(g) => match grants::shorten_in(tx, actor, g, expires_at, reason, now).await? {
                Some(_) => Closing::Convert { expires_at },
                None => return Ok(("already_ended", String::new())),
            },
            None => Closing::Convert { expires_at },
        },
        other => other,
    };
    Ok((closing.as_str(), closing.flags()))
}

/// The reviews' background work, run by every server every two seconds:
/// start the recurrences due, close the campaigns past their deadline,
/// remind reviewers. Returns how many campaigns it started and closed.
pub async fn run_due(st: &AppState) -> Result<(usize, usize), AppError> {
    let now = st.clock.now();
    let started = start_recurrences(st, now).await?;
    let rows =
        sqlx::query("SELECT id FROM review_campaigns WHERE closed_at IS NULL AND due_at <= ? ORDER BY id LIMIT 20")
            .bind(now)
            .fetch_all(st.db.pool())
            .await?;
    let mut closed = 0;
    for r in &rows {
        let id: i64 = r.try_get("id")?;
        let mut tx = st.db.begin_write().await?;
        grants::lock_administrators(&mut tx).await?;
        if close_in(&mut tx, id, Actor::default(), None, now).await?.is_some() {
            tx.commit().await?;
            closed += 1;
        }
    }
    remind(st, now).await?;
    Ok((started, closed))
}

/// Starts the next campaign of each recurring one whose day has come. The
/// successor's `parent_id` is unique: a server that loses the race gets a
/// duplicate key, and the campaign exists once.
async fn start_recurrences(st: &AppState, now: Millis) -> Result<usize, AppError> {
    let sql = "SELECT p.id FROM review_campaigns p WHERE p.every_months IS NOT NULL \
               AND NOT EXISTS (SELECT 1 FROM review_campaigns c WHERE c.parent_id = p.id) ORDER BY p.id LIMIT 50";
    let rows = sqlx::query(sql).fetch_all(st.db.pool()).await?;
    let mut n = 0;
    for r in &rows {
        let Some(parent) = campaign(st.db.pool(), r.try_get("id")?).await? else {
            continue;
        };
        let (Some(months), Some(scope)) = (parent.every_months, scope_of(&parent)) else {
            continue;
        };
        let Some((starts_at, due_at)) = rules::recurrence_due(parent.starts_at, parent.due_at, months, now) else {
            continue;
        };
        let next = NewCampaign {
            name: parent.name.clone(),
            scope,
            starts_at,
            due_at,
            rule: parent.rule,
            every_months: Some(months),
        };
        let admins = administrators(st.db.pool(), now).await?;
        let mut tx = st.db.begin_write().await?;
        let exists = sqlx::query("SELECT id FROM review_campaigns WHERE parent_id = ?")
            .bind(parent.id)
            .fetch_optional(tx.conn())
            .await?;
        if exists.is_some() {
            continue;
        }
        match super::start::start_in(&mut tx, Actor::default(), None, &next, Some(parent.id), &admins, now).await {
            Ok(_) => {
                tx.commit().await?;
                n += 1;
            }
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}

/// Reminds each reviewer with open items of an open campaign (in the app,
/// and by email when it is configured): 7 days and 1 day before the
/// deadline and on the day. The campaign's `reminded` mark is claimed by a
/// conditional update, so a reminder goes out once.
async fn remind(st: &AppState, now: Millis) -> Result<(), AppError> {
    let offset = st.config.alerts.utc_offset_minutes;
    for c in open_campaigns(st.db.pool())
        .await?
        .into_iter()
        .filter(|c| c.due_at > now)
    {
        let last = c
            .reminded
            .as_deref()
            .and_then(|s| Reminder::ALL.into_iter().find(|r| r.as_str() == s));
        let Some(due) = rules::reminder_due(c.starts_at, c.due_at, now, offset, last) else {
            continue;
        };
        let to = open_reviewers(st, &c, now).await?;
        let mut tx = st.db.begin_write().await?;
        let claimed = sqlx::query(
            "UPDATE review_campaigns SET reminded = ? WHERE id = ? AND closed_at IS NULL AND (reminded IS NULL OR reminded = ?)",
        )
        .bind(due.as_str())
        .bind(c.id)
        .bind(c.reminded.as_deref().unwrap_or(""))
        .execute(tx.conn())
        .await?
        .rows_affected();
        if claimed == 1 {
            let subject = format!(
                "Access review \"{}\": you have items to decide by {}",
                c.name,
                crate::server::platform::time::format_time(c.due_at)
            );
            notify::queue(&mut tx, st, now, &to, &subject, &format!("/reviews?campaign={}", c.id)).await?;
            tx.commit().await?;
        }
    }
    Ok(())
}

/// Reviewers who still have undecided items in the campaign.
async fn open_reviewers(st: &AppState, c: &Campaign, now: Millis) -> Result<Vec<notify::Recipient>, AppError> {
    let undecided: Vec<Item> = items(st.db.pool(), c.id)
        .await?
        .into_iter()
        .filter(|i| i.decision.is_none())
        .collect();
    let mut ids: Vec<i64> = Vec::new();
    let admins = administrators(st.db.pool(), now).await?;
    for i in &undecided {
        match &i.reviewers {
            rules::Reviewers::People(p) => ids.extend(p.iter().copied()),
            rules::Reviewers::Administrators => ids.extend(admins.iter().copied().filter(|a| Some(*a) != i.holder_id)),
            rules::Reviewers::NoIndependentReviewer => {}
        }
    }
    ids.sort_unstable();
    ids.dedup();
    let mut out = Vec::new();
    for id in ids {
        out.extend(notify::person(st.db.pool(), id).await?);
    }
    Ok(out)
}
