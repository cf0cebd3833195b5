//! Reviewers' decisions, reassignment and role owners. A revoke takes
//! effect when it is submitted, through the same path as any revocation;
//! keep and convert stand until the campaign closes. Refusals are recorded.

use super::{campaign, holder, item_from_row, Item, ITEM_COLS};
use crate::domain::actions::Action;
use crate::domain::{
    audit::{NewEvent, Outcome},
    permissions::Permission,
    reviews::{self as rules, Deciding, Decision, DecisionError, Reviewers},
};
use crate::errors::AppError;
use crate::server::{
    access::{
        authz::{self, refuse, Principal},
        grants::{self, Ending},
        roles, service_accounts,
    },
    audit,
    identity::accounts,
    platform::{db::WriteTx, request::RequestCtx},
    state::AppState,
};
use serde_json::json;
use sqlx::Row;

async fn load_item(tx: &mut WriteTx, item_id: i64) -> Result<Item, AppError> {
    let sql = format!("SELECT {ITEM_COLS} FROM review_items WHERE id = ?{}", tx.for_update());
    let row = sqlx::query(&sql)
        .bind(item_id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(item_from_row(&row)?)
}

fn auditor_refused() -> AppError {
    AppError::Refused("Auditors see access reviews read-only; they do not decide.".into())
}

/// Records a reviewer's decision on one item.
pub async fn decide(
    st: &AppState,
    ctx: &RequestCtx,
    p: &Principal,
    item_id: i64,
    decision: Decision,
    comment: &str,
) -> Result<(), AppError> {
    let now = st.clock.now();
    let comment = comment.trim();
    let mut tx = st.db.begin_write().await?;
    grants::lock_administrators(&mut tx).await?;
    let checked: Result<(Item, i64), AppError> = async {
        let item = load_item(&mut tx, item_id).await?;
        if !rules::may_decide(p.perms) {
            return Err(auditor_refused());
        }
        let c = campaign(tx.conn(), item.campaign_id).await?.ok_or(AppError::NotFound)?;
        if item.token_id.is_some() && matches!(decision, Decision::Convert { .. }) {
            return Err(AppError::Validation(
                "A token is kept or revoked; to time-box it, issue a new one with an expiry.".into(),
            ));
        }
        rules::check_decision(&Deciding {
            now,
            open: c.closed_at.is_none(),
            reviewer: p.user_id,
            reviewer_is_administrator: p.perms.contains(Permission::AccessGrant),
            holder: holder(&item),
            reviewers: &item.reviewers,
            critical: item.critical,
            current: item.decision,
            decision,
            comment,
        })
        .map_err(|e| match e {
            DecisionError::CommentNeeded | DecisionError::CommentTooLong | DecisionError::Expiry => {
                AppError::Validation(e.to_string())
            }
            _ => AppError::Refused(e.to_string()),
        })?;
        Ok((item, c.id))
    }
    .await;
    let (item, campaign_id) = match checked {
        Ok(x) => x,
        Err(e) => {
            drop(tx);
            let ev = NewEvent::new(Action::ReviewDecide, Outcome::Denied, ctx.actor())
                .target("review_item", item_id)
                .details(json!({ "decision": decision.as_str() }));
            return Err(refuse(st, ev, e).await?);
        }
    };
    let reason = format!("Access review {campaign_id}: revoked by the reviewer");
    if decision == Decision::Revoke {
        let ended = match (item.grant_id, item.token_id) {
            (Some(g), _) => grants::end_reviewed_in(&mut tx, ctx.actor(), Some(p.user_id), g, &reason, now).await?,
            (None, Some(t)) => end_token_as(&mut tx, ctx.actor(), Some(p.user_id), t, now).await?,
            (None, None) => Ending::AlreadyEnded,
        };
        if ended == Ending::LastAdministrator {
            drop(tx);
            let ev = NewEvent::new(Action::ReviewDecide, Outcome::Denied, ctx.actor())
                .target("review_item", item_id)
                .details(json!({ "decision": "revoke", "grant_id": item.grant_id }));
            let e = AppError::Refused(
                "This is the last active administrator's access: revoking it would leave nobody to administer Gatehouse."
                    .into(),
            );
            return Err(refuse(st, ev, e).await?);
        }
    }
    sqlx::query(
        "UPDATE review_items SET decision = ?, decision_expires_at = ?, decided_by = ?, decided_at = ?, comment = ? \
         WHERE id = ?",
    )
    .bind(decision.as_str())
    .bind(decision.expires_at())
    .bind(p.user_id)
    .bind(now)
    .bind((!comment.is_empty()).then_some(comment))
    .bind(item_id)
    .execute(tx.conn())
    .await?;
    let event = NewEvent::new(Action::ReviewDecided, Outcome::Success, ctx.actor())
        .target("review_campaign", campaign_id)
        .details(json!({
            "campaign_id": campaign_id,
            "item_id": item_id,
            "grant_id": item.grant_id,
            "token_id": item.token_id,
            "holder_id": item.holder_id,
            "role": item.role,
            "decision": decision.as_str(),
            "expires_at": decision.expires_at(),
            "comment": comment,
            "before": { "decision": item.decision.map(|d| d.as_str()) },
        }));
    audit::append(&mut tx, now, vec![event]).await?;
    tx.commit().await?;
    Ok(())
}

/// Ends a service-account token for a review and records it.
pub(super) async fn end_token_as(
    tx: &mut WriteTx,
    actor: crate::domain::audit::Actor,
    by: Option<i64>,
    token_id: i64,
    now: i64,
) -> Result<Ending, AppError> {
    let Some(account_id) = service_accounts::end_token_in(tx, token_id, by, now).await? else {
        return Ok(Ending::AlreadyEnded);
    };
    let event = NewEvent::new(Action::TokenRevoked, Outcome::Success, actor)
        .target("service_account", account_id)
        .reason("Access review: revoked".to_owned())
        .details(json!({ "token_id": token_id, "before": { "revoked": false }, "after": { "revoked": true } }));
    audit::append(tx, now, vec![event]).await?;
    Ok(Ending::Ended)
}

/// An administrator hands an undecided (or kept) item to another reviewer.
pub async fn reassign(st: &AppState, ctx: &RequestCtx, item_id: i64, to: i64) -> Result<(), AppError> {
    let now = st.clock.now();
    let to_perms = authz::permissions_at(st.db.pool(), to, now).await?;
    let active = active(st, to).await?;
    let mut tx = st.db.begin_write().await?;
    let checked: Result<Item, AppError> = async {
        let item = load_item(&mut tx, item_id).await?;
        let c = campaign(tx.conn(), item.campaign_id).await?.ok_or(AppError::NotFound)?;
        if c.closed_at.is_some() {
            return Err(AppError::Refused(rules::DecisionError::Closed.to_string()));
        }
        if item.decision == Some(Decision::Revoke) {
            return Err(AppError::Refused(rules::DecisionError::RevokeFinal.to_string()));
        }
        if to == holder(&item) {
            return Err(AppError::Refused(rules::DecisionError::OwnAccess.to_string()));
        }
        if !active || !rules::may_decide(to_perms) {
            return Err(AppError::Validation(
                "Reassign to an active employee who is not an auditor.".into(),
            ));
        }
        Ok(item)
    }
    .await;
    let item = match checked {
        Ok(i) => i,
        Err(e) => {
            drop(tx);
            let ev = NewEvent::new(Action::ReviewReassigned, Outcome::Denied, ctx.actor())
                .target("review_item", item_id)
                .details(json!({ "to": to }));
            return Err(refuse(st, ev, e).await?);
        }
    };
    let after = Reviewers::People(vec![to]);
    sqlx::query("UPDATE review_items SET reviewers = ? WHERE id = ?")
        .bind(after.to_stored())
        .bind(item_id)
        .execute(tx.conn())
        .await?;
    let event = NewEvent::new(Action::ReviewReassigned, Outcome::Success, ctx.actor())
        .target("review_campaign", item.campaign_id)
        .details(json!({
            "campaign_id": item.campaign_id,
            "item_id": item_id,
            "grant_id": item.grant_id,
            "before": { "reviewers": item.reviewers.to_stored() },
            "after": { "reviewers": after.to_stored() },
        }));
    audit::append(&mut tx, now, vec![event]).await?;
    tx.commit().await?;
    Ok(())
}

/// Whether the employee exists and is active.
async fn active(st: &AppState, user_id: i64) -> Result<bool, sqlx::Error> {
    Ok(accounts::by_id(st.db.pool(), user_id)
        .await?
        .is_some_and(|u| u.status == "active"))
}

/// Names the employees who review a role's grants (empty: administrators do).
pub async fn set_owners(
    st: &AppState,
    ctx: &RequestCtx,
    p: &Principal,
    role: &str,
    owners: &[i64],
) -> Result<(), AppError> {
    let now = st.clock.now();
    if !roles::all_roles(st.db.pool()).await?.iter().any(|r| r.key == role) {
        return Err(AppError::NotFound);
    }
    if owners.len() > 20 {
        return Err(AppError::Validation("A role has at most 20 owners.".into()));
    }
    let mut owners = owners.to_vec();
    owners.sort_unstable();
    owners.dedup();
    for o in &owners {
        if !active(st, *o).await? || !rules::may_decide(authz::permissions_at(st.db.pool(), *o, now).await?) {
            return Err(AppError::Validation(
                "A role owner is an active employee who is not an auditor.".into(),
            ));
        }
    }
    let mut tx = st.db.begin_write().await?;
    let rows = sqlx::query("SELECT user_id FROM role_owners WHERE role_key = ? ORDER BY user_id")
        .bind(role)
        .fetch_all(tx.conn())
        .await?;
    let before: Vec<i64> = rows.iter().map(|r| r.try_get("user_id")).collect::<Result<_, _>>()?;
    sqlx::query("DELETE FROM role_owners WHERE role_key = ?")
        .bind(role)
        .execute(tx.conn())
        .await?;
    for o in &owners {
        sqlx::query("INSERT INTO role_owners (role_key, user_id, added_by, added_at) VALUES (?, ?, ?, ?)")
            .bind(role)
            .bind(*o)
            .bind(p.user_id)
            .bind(now)
            .execute(tx.conn())
            .await?;
    }
    let event = NewEvent::new(Action::RoleOwnersSet, Outcome::Success, ctx.actor())
        .target("role", role)
        .details(json!({ "role": role, "before": { "owners": before }, "after": { "owners": owners } }));
    audit::append(&mut tx, now, vec![event]).await?;
    tx.commit().await?;
    Ok(())
}
