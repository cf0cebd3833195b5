//! A campaign's report: one CSV line per item with its facts, decision,
//! who decided, when, the comment and the outcome. At close the report is
//! frozen (stored, names as they were) and its SHA-256 goes into the
//! closing event; an open campaign's report is rendered as it stands.

use super::{campaign, items, Campaign, Item};
use crate::domain::reviews::Reviewers;
use crate::errors::AppError;
use crate::server::{
    audit::console::csv_cell,
    platform::{
        crypto::sha256_hex,
        db::opt_text,
        names::{names, opt_name},
        time::format_time,
    },
    state::AppState,
};
use std::collections::HashMap;

pub const HEADER: &str = "campaign_id,item_id,kind,holder,role,permissions,critical,granted_at_utc,granted_by,reason,\
expires_at_utc,last_sign_in_utc,last_used_utc,reviewers,decision,convert_until_utc,decided_by,decided_at_utc,comment,\
outcome,flags\r\n";

fn time(t: Option<i64>) -> String {
    t.map(format_time).unwrap_or_default()
}

/// Who holds an item: the employee, or the service account of a token.
pub(super) fn holder_name(i: &Item, names: &HashMap<i64, String>) -> String {
    match i.holder_id {
        Some(_) => opt_name(names, i.holder_id).unwrap_or_default(),
        None => format!("service account {}", i.role),
    }
}

pub(super) fn reviewers_text(r: &Reviewers, names: &HashMap<i64, String>) -> String {
    match r {
        Reviewers::People(p) => p
            .iter()
            .map(|i| opt_name(names, Some(*i)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("; "),
        Reviewers::Administrators => "administrators".into(),
        Reviewers::NoIndependentReviewer => "no independent reviewer".into(),
    }
}

/// The report's text, from the campaign's items and people's names.
pub(super) fn render(c: &Campaign, items: &[Item], names: &HashMap<i64, String>) -> String {
    let mut out = String::from(HEADER);
    for i in items {
        let holder = holder_name(i, names);
        let cells = [
            c.id.to_string(),
            i.id.to_string(),
            i.kind.clone(),
            holder,
            i.role.clone(),
            i.permissions.clone(),
            (if i.critical { "yes" } else { "no" }).into(),
            format_time(i.granted_at),
            opt_name(names, i.granted_by).unwrap_or_default(),
            i.reason.clone(),
            time(i.expires_at),
            time(i.last_sign_in),
            time(i.last_used),
            reviewers_text(&i.reviewers, names),
            i.decision.map(|d| d.as_str().to_owned()).unwrap_or_default(),
            time(i.decision.and_then(|d| d.expires_at())),
            opt_name(names, i.decided_by).unwrap_or_default(),
            time(i.decided_at),
            i.comment.clone().unwrap_or_default(),
            i.outcome.clone().unwrap_or_default(),
            i.flags.clone().unwrap_or_default(),
        ];
        let line: Vec<String> = cells.iter().map(|v| csv_cell(v)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

/// A campaign's report as CSV, with its SHA-256 once the campaign closed.
pub struct Report {
    pub campaign: Campaign,
    pub csv: String,
    pub sha256: Option<String>,
}

/// The frozen report of a closed campaign, or the current one of an open campaign.
pub async fn report_csv(st: &AppState, campaign_id: i64) -> Result<Report, AppError> {
    let c = campaign(st.db.pool(), campaign_id).await?.ok_or(AppError::NotFound)?;
    if c.closed_at.is_some() {
        let row = sqlx::query("SELECT report FROM review_campaigns WHERE id = ?")
            .bind(campaign_id)
            .fetch_one(st.db.pool())
            .await?;
        let csv = opt_text(&row, "report")?.unwrap_or_default();
        let sha256 = c.report_sha256.clone();
        return Ok(Report {
            campaign: c,
            csv,
            sha256,
        });
    }
    let items = items(st.db.pool(), campaign_id).await?;
    let names = names(st.db.pool()).await?;
    let csv = render(&c, &items, &names);
    Ok(Report {
        campaign: c,
        csv,
        sha256: None,
    })
}

/// The report's SHA-256, as stored in the closing event.
pub(super) fn digest(csv: &str) -> String {
    sha256_hex(csv.as_bytes())
}
