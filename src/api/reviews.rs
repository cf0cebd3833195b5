//! Access reviews: campaigns (administrators start and close them,
//! auditors read them) and the decisions of reviewers (role owners and
//! administrators; whether an item is theirs is the rules' question).
// A campaign's form has nine fields; each is an argument of the server function.
#![allow(clippy::too_many_arguments)]

use crate::dto::*;
use crate::errors::AppError;
#[cfg(feature = "ssr")]
use crate::server::{
    access::{authz, reviews},
    identity::mfa,
};

#[cfg(feature = "ssr")]
fn scope(kind: &str, roles: Vec<String>, department: String) -> Result<crate::domain::reviews::Scope, AppError> {
    use crate::domain::reviews::Scope;
    Ok(match kind {
        "all" => Scope::AllStanding,
        // One field each, or keys separated by commas in one field.
        "roles" => Scope::Roles(
            roles
                .iter()
                .flat_map(|r| r.split(','))
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        "critical" => Scope::Critical,
        "department" if !department.trim().is_empty() => Scope::Department(department.trim().to_owned()),
        "department" => return Err(AppError::Validation("Name the department to review.".into())),
        "tokens" => Scope::ServiceTokens,
        _ => return Err(AppError::Validation("Choose what the campaign reviews.".into())),
    })
}

#[cfg(feature = "ssr")]
fn undecided(s: &str) -> Result<crate::domain::reviews::Undecided, AppError> {
    crate::domain::reviews::Undecided::parse(s)
        .ok_or_else(|| AppError::Validation("At the deadline, undecided items are revoked or kept and flagged.".into()))
}

api! {
    /// Starts a campaign now; returns its id. Step-up: at its deadline a
    /// campaign may revoke access nobody vouched for.
    "start_review" needs [AccessGrant] (st, ctx, session, p)
    pub async fn start_review(
        name: String,
        scope_kind: String,
        #[server(default)] roles: Vec<String>,
        #[server(default)] department: String,
        due_in_days: i64,
        #[server(default)] critical_rule: String,
        #[server(default)] other_rule: String,
        #[server(default)] every_months: String,
        #[server(default)] code: String,
    ) -> Result<i64, AppError> {
        mfa::step_up(&st, &ctx, &session, &code, "start access review").await?;
        let defaults = crate::domain::reviews::DeadlineRule::default();
        let rule = crate::domain::reviews::DeadlineRule {
            critical: if critical_rule.is_empty() { defaults.critical } else { undecided(&critical_rule)? },
            other: if other_rule.is_empty() { defaults.other } else { undecided(&other_rule)? },
        };
        let every_months = match every_months.trim() {
            "" | "0" => None,
            m => Some(m.parse::<u32>().map_err(|_| AppError::Validation("A campaign recurs every 1 to 12 months.".into()))?),
        };
        let input = reviews::CampaignInput {
            name,
            scope: scope(&scope_kind, roles, department)?,
            due_in_days,
            rule,
            every_months,
        };
        Ok(reviews::start(&st, &ctx, &p, input).await?.0)
    }
}

api! {
    "review_campaigns" needs [AccessGrant, AuditRead] (st, _, _, _)
    pub async fn review_campaigns() -> Result<Vec<CampaignView>, AppError> {
        reviews::campaign_list(&st).await
    }
}

api! {
    "review_campaign" needs [AccessGrant, AuditRead] (st, _, _, p)
    pub async fn review_campaign(id: i64) -> Result<CampaignDetail, AppError> {
        reviews::campaign_detail(&st, &p, id).await
    }
}

api! {
    /// "Close now": undecided items follow the campaign's rule (step-up:
    /// it may revoke access). Returns the report's SHA-256.
    "close_review" needs [AccessGrant] (st, ctx, session, p)
    pub async fn close_review(id: i64, #[server(default)] code: String) -> Result<String, AppError> {
        mfa::step_up(&st, &ctx, &session, &code, "close access review").await?;
        reviews::close_now(&st, &ctx, &p, id).await
    }
}

api! {
    "reassign_review_item" needs [AccessGrant] (st, ctx, _, _)
    pub async fn reassign_review_item(id: i64, to: i64) -> Result<(), AppError> {
        reviews::reassign(&st, &ctx, id, to).await
    }
}

api! {
    /// Every role with its owners, and the employees who may own one.
    "review_setup" needs [AccessGrant] (st, _, _, _)
    pub async fn review_setup() -> Result<ReviewSetupView, AppError> {
        reviews::setup(&st).await
    }
}

api! {
    /// Names the employees (by id) who review a role's grants; none:
    /// administrators do.
    "set_role_owners" needs [AccessGrant] (st, ctx, _, p)
    pub async fn set_role_owners(role: String, #[server(default)] owners: Vec<i64>) -> Result<(), AppError> {
        reviews::set_owners(&st, &ctx, &p, &role, &owners).await
    }
}

api! {
    /// The items the signed-in employee has to decide, across open campaigns.
    "my_reviews" (st, ctx, _)
    pub async fn my_reviews() -> Result<Vec<ReviewItemView>, AppError> {
        let p = authz::signed_in(&st, &ctx).await?;
        reviews::mine(&st, &p).await
    }
}

api! {
    /// Keep, revoke, or convert to time-boxed (`until`, UTC) one or more
    /// items; stops at the first refusal (each decision is its own change).
    "decide_review" (st, ctx, _)
    pub async fn decide_review(
        items: Vec<i64>,
        decision: String,
        #[server(default)] until: String,
        #[server(default)] comment: String,
    ) -> Result<usize, AppError> {
        use crate::domain::reviews::Decision;
        let p = authz::signed_in(&st, &ctx).await?;
        let decision = match decision.as_str() {
            "keep" => Decision::Keep,
            "revoke" => Decision::Revoke,
            "convert" => Decision::Convert {
                expires_at: crate::server::platform::time::parse_utc(&until)?,
            },
            _ => return Err(AppError::Validation("Decide keep, revoke or convert.".into())),
        };
        if items.is_empty() || items.len() > 500 {
            return Err(AppError::Validation("Choose between 1 and 500 items.".into()));
        }
        for id in &items {
            reviews::decide(&st, &ctx, &p, *id, decision, &comment).await?;
        }
        Ok(items.len())
    }
}
