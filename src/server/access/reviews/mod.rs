//! Access reviews (the tables `review_campaigns`, `review_items` and
//! `role_owners`): campaigns that certify or remove standing access by a
//! deadline. Starting one takes its snapshot (`start`); reviewers decide
//! items (`decide`); the job closes campaigns at their deadline, starts
//! recurrences and sends reminders (`close`); a closed campaign's report
//! is hashed into its closing event (`report`). The rules are in
//! `domain::reviews`.

mod close;
mod decide;
mod evidence;
mod people;
mod report;
mod start;
mod views;

pub use close::{close_now, run_due};
pub use decide::{decide, reassign, set_owners};
pub use evidence::evidence;
pub use people::{owners_by_role, reviewer_choices, setup};
pub use report::{report_csv, Report};
pub use start::{start, CampaignInput};
pub use views::{campaign_detail, campaign_list, mine};

use crate::domain::{
    permissions::Permission,
    reviews::{DeadlineRule, Decision, Reviewers, Scope, Undecided},
    Millis,
};
use crate::server::{
    access::{authz, grants},
    platform::db::{opt_text, text},
};
use sqlx::{any::AnyRow, Row};

/// A campaign as stored.
#[derive(Debug, Clone)]
pub struct Campaign {
    pub id: i64,
    pub name: String,
    pub scope: String,
    pub rule: DeadlineRule,
    pub every_months: Option<u32>,
    pub parent_id: Option<i64>,
    pub starts_at: Millis,
    pub due_at: Millis,
    pub started_at: Option<Millis>,
    pub closed_at: Option<Millis>,
    pub closed_by: Option<i64>,
    pub report_sha256: Option<String>,
    pub reminded: Option<String>,
}

const CAMPAIGN_COLS: &str = "id, name, scope, critical_rule, other_rule, every_months, parent_id, starts_at, due_at, \
     started_at, closed_at, closed_by, report_sha256, reminded";

fn campaign_from_row(r: &AnyRow) -> Result<Campaign, sqlx::Error> {
    // An unreadable rule revokes nothing: keep and flag.
    let rule = |c: &str| -> Result<Undecided, sqlx::Error> {
        Ok(Undecided::parse(&text(r, c)?).unwrap_or(Undecided::KeepAndFlag))
    };
    Ok(Campaign {
        id: r.try_get("id")?,
        name: text(r, "name")?,
        scope: text(r, "scope")?,
        rule: DeadlineRule {
            critical: rule("critical_rule")?,
            other: rule("other_rule")?,
        },
        every_months: r
            .try_get::<Option<i64>, _>("every_months")?
            .and_then(|m| u32::try_from(m).ok()),
        parent_id: r.try_get("parent_id")?,
        starts_at: r.try_get("starts_at")?,
        due_at: r.try_get("due_at")?,
        started_at: r.try_get("started_at")?,
        closed_at: r.try_get("closed_at")?,
        closed_by: r.try_get("closed_by")?,
        report_sha256: opt_text(r, "report_sha256")?,
        reminded: opt_text(r, "reminded")?,
    })
}

pub async fn campaign<'e>(
    ex: impl sqlx::Executor<'e, Database = sqlx::Any>,
    id: i64,
) -> Result<Option<Campaign>, sqlx::Error> {
    let sql = format!("SELECT {CAMPAIGN_COLS} FROM review_campaigns WHERE id = ?");
    let row = sqlx::query(&sql).bind(id).fetch_optional(ex).await?;
    row.as_ref().map(campaign_from_row).transpose()
}

pub async fn campaigns(pool: &sqlx::AnyPool) -> Result<Vec<Campaign>, sqlx::Error> {
    let sql = format!("SELECT {CAMPAIGN_COLS} FROM review_campaigns ORDER BY id DESC LIMIT 500");
    let rows = sqlx::query(&sql).fetch_all(pool).await?;
    rows.iter().map(campaign_from_row).collect()
}

/// Every open campaign, oldest first.
pub async fn open_campaigns(pool: &sqlx::AnyPool) -> Result<Vec<Campaign>, sqlx::Error> {
    let sql = format!("SELECT {CAMPAIGN_COLS} FROM review_campaigns WHERE closed_at IS NULL ORDER BY id");
    let rows = sqlx::query(&sql).fetch_all(pool).await?;
    rows.iter().map(campaign_from_row).collect()
}

/// One item of a campaign's snapshot, with its decision and outcome.
#[derive(Debug, Clone)]
pub struct Item {
    pub id: i64,
    pub campaign_id: i64,
    pub kind: String,
    pub grant_id: Option<i64>,
    pub token_id: Option<i64>,
    pub holder_id: Option<i64>,
    pub role: String,
    pub permissions: String,
    pub critical: bool,
    pub granted_at: Millis,
    pub granted_by: Option<i64>,
    pub reason: String,
    pub expires_at: Option<Millis>,
    pub last_sign_in: Option<Millis>,
    pub last_used: Option<Millis>,
    pub reviewers: Reviewers,
    pub decision: Option<Decision>,
    pub decided_by: Option<i64>,
    pub decided_at: Option<Millis>,
    pub comment: Option<String>,
    pub outcome: Option<String>,
    pub flags: Option<String>,
}

const ITEM_COLS: &str =
    "id, campaign_id, kind, grant_id, token_id, holder_id, role, permissions, critical, granted_at, \
     granted_by, reason, expires_at, last_sign_in, last_used, reviewers, decision, decision_expires_at, decided_by, \
     decided_at, comment, outcome, flags";

fn item_from_row(r: &AnyRow) -> Result<Item, sqlx::Error> {
    let decision = opt_text(r, "decision")?;
    let decision_expires: Option<Millis> = r.try_get("decision_expires_at")?;
    Ok(Item {
        id: r.try_get("id")?,
        campaign_id: r.try_get("campaign_id")?,
        kind: text(r, "kind")?,
        grant_id: r.try_get("grant_id")?,
        token_id: r.try_get("token_id")?,
        holder_id: r.try_get("holder_id")?,
        role: text(r, "role")?,
        permissions: text(r, "permissions")?,
        critical: r.try_get::<i64, _>("critical")? != 0,
        granted_at: r.try_get("granted_at")?,
        granted_by: r.try_get("granted_by")?,
        reason: text(r, "reason")?,
        expires_at: r.try_get("expires_at")?,
        last_sign_in: r.try_get("last_sign_in")?,
        last_used: r.try_get("last_used")?,
        reviewers: Reviewers::parse(&text(r, "reviewers")?),
        decision: decision.and_then(|d| Decision::parse(&d, decision_expires)),
        decided_by: r.try_get("decided_by")?,
        decided_at: r.try_get("decided_at")?,
        comment: opt_text(r, "comment")?,
        outcome: opt_text(r, "outcome")?,
        flags: opt_text(r, "flags")?,
    })
}

/// A campaign's items in snapshot order.
pub async fn items<'e>(
    ex: impl sqlx::Executor<'e, Database = sqlx::Any>,
    campaign_id: i64,
) -> Result<Vec<Item>, sqlx::Error> {
    let sql = format!("SELECT {ITEM_COLS} FROM review_items WHERE campaign_id = ? ORDER BY id");
    let rows = sqlx::query(&sql).bind(campaign_id).fetch_all(ex).await?;
    rows.iter().map(item_from_row).collect()
}

/// The items of a campaign that may be `reviewer`'s: assigned to them by
/// name, or (for an administrator) to administrators. A narrowing in SQL;
/// the caller still asks `Reviewers::includes`.
pub async fn items_for<'e>(
    ex: impl sqlx::Executor<'e, Database = sqlx::Any>,
    campaign_id: i64,
    reviewer: i64,
    administrator: bool,
) -> Result<Vec<Item>, sqlx::Error> {
    let sql = format!(
        "SELECT {ITEM_COLS} FROM review_items WHERE campaign_id = ? AND (reviewers = ? OR reviewers = ? \
         OR reviewers LIKE ? OR reviewers LIKE ? OR reviewers LIKE ?) ORDER BY id"
    );
    let rows = sqlx::query(&sql)
        .bind(campaign_id)
        .bind(if administrator { "administrators" } else { "" })
        .bind(format!("people:{reviewer}"))
        .bind(format!("people:{reviewer},%"))
        .bind(format!("people:%,{reviewer}"))
        .bind(format!("people:%,{reviewer},%"))
        .fetch_all(ex)
        .await?;
    rows.iter().map(item_from_row).collect()
}

/// The item's holder for the self-review rule (a token has none: no
/// employee's id matches).
fn holder(item: &Item) -> i64 {
    item.holder_id.unwrap_or(i64::MIN)
}

/// Active employees who may decide for administrators: they hold
/// `access:grant` through an active grant.
async fn administrators(pool: &sqlx::AnyPool, now: Millis) -> Result<Vec<i64>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let candidates = grants::active_admin_ids(&mut conn, now).await?;
    drop(conn);
    let mut out = Vec::new();
    for id in candidates {
        if authz::permissions_at(pool, id, now)
            .await?
            .contains(Permission::AccessGrant)
        {
            out.push(id);
        }
    }
    Ok(out)
}

/// A campaign's scope as stored, read back; an unreadable one takes nothing.
pub fn scope_of(c: &Campaign) -> Option<Scope> {
    Scope::parse(&c.scope)
}
