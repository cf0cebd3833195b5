//! Who reviews: the employees items can be given to, and each role's
//! owners, for the forms that choose them by name.

use crate::domain::reviews as rules;
use crate::dto::{ReviewSetupView, ReviewerChoice, RoleOwnersView};
use crate::errors::AppError;
use crate::server::{
    access::{authz, roles},
    identity::accounts,
    platform::db::text,
    state::AppState,
};
use sqlx::Row;
use std::collections::HashMap;

/// Active employees who may decide review items (everyone but auditors),
/// by name. The server checks again when one is chosen.
pub async fn reviewer_choices(st: &AppState) -> Result<Vec<ReviewerChoice>, AppError> {
    let now = st.clock.now();
    let mut out = Vec::new();
    for (id, name, email) in accounts::active_people(st.db.pool()).await? {
        if rules::may_decide(authz::permissions_at(st.db.pool(), id, now).await?) {
            out.push(ReviewerChoice { id, name, email });
        }
    }
    Ok(out)
}

/// Each role's active owners, by role key, by name: those a campaign
/// started now would give its items to (a suspended or offboarded owner
/// reviews nothing, so is not shown as reviewing).
pub async fn owners_by_role(pool: &sqlx::AnyPool) -> Result<HashMap<String, Vec<ReviewerChoice>>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT o.role_key, u.id, u.display_name, u.email FROM role_owners o JOIN users u ON u.id = o.user_id \
         WHERE u.status = 'active' ORDER BY o.role_key, u.display_name, u.id",
    )
    .fetch_all(pool)
    .await?;
    let mut out: HashMap<String, Vec<ReviewerChoice>> = HashMap::new();
    for r in &rows {
        out.entry(text(r, "role_key")?).or_default().push(ReviewerChoice {
            id: r.try_get("id")?,
            name: text(r, "display_name")?,
            email: text(r, "email")?,
        });
    }
    Ok(out)
}

/// Every role with its owners, and who may own one.
pub async fn setup(st: &AppState) -> Result<ReviewSetupView, AppError> {
    let mut owners = owners_by_role(st.db.pool()).await?;
    let roles = roles::all_roles(st.db.pool())
        .await?
        .into_iter()
        .map(|r| RoleOwnersView {
            owners: owners.remove(&r.key).unwrap_or_default(),
            role: r.key,
            name: r.name,
        })
        .collect();
    Ok(ReviewSetupView {
        roles,
        people: reviewer_choices(st).await?,
    })
}
