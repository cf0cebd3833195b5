//! What the review screens show: campaigns with their progress, and the
//! items a reviewer has to decide.

use super::{campaign, campaigns, holder, items, items_for, open_campaigns, Campaign, Item};
use crate::domain::{
    permissions::Permission,
    reviews::{Reviewers, Scope, DAY},
    Millis,
};
use crate::dto::{CampaignDetail, CampaignView, ReviewItemView};
use crate::errors::AppError;
use crate::server::{
    access::authz::Principal,
    platform::{
        names::{names, names_of, opt_name},
        time::format_time,
    },
    state::AppState,
};
use std::collections::{BTreeMap, HashMap};

fn describe(scope: &str) -> String {
    match Scope::parse(scope) {
        Some(Scope::AllStanding) => "all standing grants".into(),
        Some(Scope::Roles(r)) => format!("roles: {}", r.join(", ")),
        Some(Scope::Critical) => "grants carrying critical permissions".into(),
        Some(Scope::Department(d)) => format!("department: {d}"),
        Some(Scope::ServiceTokens) => "service-account tokens".into(),
        None => scope.to_owned(),
    }
}

fn rule(u: crate::domain::reviews::Undecided) -> String {
    match u {
        crate::domain::reviews::Undecided::Revoke => "revoke".into(),
        crate::domain::reviews::Undecided::KeepAndFlag => "keep and flag".into(),
    }
}

fn campaign_view(c: &Campaign, items: &[Item], names: &HashMap<i64, String>) -> CampaignView {
    let mut by: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for i in items {
        let who = match &i.reviewers {
            Reviewers::People(p) => p
                .iter()
                .map(|id| opt_name(names, Some(*id)).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(", "),
            Reviewers::Administrators => "administrators".into(),
            Reviewers::NoIndependentReviewer => "no independent reviewer".into(),
        };
        let e = by.entry(who).or_default();
        e.1 += 1;
        if i.decision.is_some() {
            e.0 += 1;
        }
    }
    CampaignView {
        id: c.id,
        name: c.name.clone(),
        scope: describe(&c.scope),
        starts_at: format_time(c.starts_at),
        due_at: format_time(c.due_at),
        closed_at: c.closed_at.map(format_time),
        closed_by: opt_name(names, c.closed_by),
        every_months: c.every_months,
        undecided_critical: rule(c.rule.critical),
        undecided_other: rule(c.rule.other),
        items: items.len() as i64,
        decided: items.iter().filter(|i| i.decision.is_some()).count() as i64,
        by_reviewer: by.into_iter().map(|(k, (d, t))| (k, d, t)).collect(),
        report_sha256: c.report_sha256.clone(),
    }
}

/// Every campaign, newest first, with its progress.
pub async fn campaign_list(st: &AppState) -> Result<Vec<CampaignView>, AppError> {
    let names = names(st.db.pool()).await?;
    let mut out = Vec::new();
    for c in campaigns(st.db.pool()).await? {
        let items = items(st.db.pool(), c.id).await?;
        out.push(campaign_view(&c, &items, &names));
    }
    Ok(out)
}

/// One campaign with all its items; for an administrator (`p` holds
/// `access:grant`) of an open campaign, who its items can be reassigned to.
pub async fn campaign_detail(st: &AppState, p: &Principal, id: i64) -> Result<CampaignDetail, AppError> {
    let c = campaign(st.db.pool(), id).await?.ok_or(AppError::NotFound)?;
    let items = items(st.db.pool(), id).await?;
    let names = names(st.db.pool()).await?;
    let now = st.clock.now();
    let views = items.iter().map(|i| item_view(&c, i, &names, now)).collect();
    let reassign_to = if c.closed_at.is_none() && p.perms.contains(Permission::AccessGrant) {
        super::reviewer_choices(st).await?
    } else {
        Vec::new()
    };
    Ok(CampaignDetail {
        campaign: campaign_view(&c, &items, &names),
        items: views,
        reassign_to,
    })
}

fn item_view(c: &Campaign, i: &Item, names: &HashMap<i64, String>, now: Millis) -> ReviewItemView {
    let recent = |t: Option<Millis>| t.is_some_and(|t| now - t < 30 * DAY);
    ReviewItemView {
        id: i.id,
        campaign_id: c.id,
        campaign: c.name.clone(),
        due_at: format_time(c.due_at),
        kind: i.kind.clone(),
        holder: super::report::holder_name(i, names),
        holder_id: i.holder_id,
        role: i.role.clone(),
        permissions: i
            .permissions
            .split(',')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
        critical: i.critical,
        granted_at: format_time(i.granted_at),
        granted_by: opt_name(names, i.granted_by),
        reason: i.reason.clone(),
        expires_at: i.expires_at.map(format_time),
        last_sign_in: i.last_sign_in.map(format_time),
        last_used: i.last_used.map(format_time),
        unused_30_days: !recent(i.last_sign_in) && !recent(i.last_used),
        reviewers: super::report::reviewers_text(&i.reviewers, names),
        decision: i.decision.map(|d| d.as_str().to_owned()),
        convert_until: i.decision.and_then(|d| d.expires_at()).map(format_time),
        decided_by: opt_name(names, i.decided_by),
        comment: i.comment.clone(),
        outcome: i.outcome.clone(),
        flags: i.flags.clone(),
    }
}

/// The items `p` may decide in open campaigns (undecided, or kept or
/// converted and still open to change), grouped by campaign and holder.
pub async fn mine(st: &AppState, p: &Principal) -> Result<Vec<ReviewItemView>, AppError> {
    let now = st.clock.now();
    let admin = p.perms.contains(Permission::AccessGrant);
    let open = open_campaigns(st.db.pool()).await?;
    let mut found = Vec::new();
    for c in open.iter() {
        let mut mine: Vec<Item> = items_for(st.db.pool(), c.id, p.user_id, admin)
            .await?
            .into_iter()
            .filter(|i| i.decision != Some(crate::domain::reviews::Decision::Revoke))
            .filter(|i| i.reviewers.includes(p.user_id, admin, holder(i)))
            .collect();
        mine.sort_by_key(|i| (i.holder_id, i.id));
        found.push((c, mine));
    }
    // Only the names these items show.
    let mut ids: Vec<i64> = found
        .iter()
        .flat_map(|(_, items)| items.iter())
        .flat_map(|i| [i.holder_id, i.granted_by, i.decided_by])
        .flatten()
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let names = names_of(st.db.pool(), &ids).await?;
    Ok(found
        .into_iter()
        .flat_map(|(c, items)| {
            items
                .into_iter()
                .map(|i| item_view(c, &i, &names, now))
                .collect::<Vec<_>>()
        })
        .collect())
}
