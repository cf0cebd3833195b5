//! Display names of employees for history views: a read other areas may
//! make without depending on `identity` (the audit console, alerts).

use super::db::text;
use sqlx::{Any, Executor, Row};
use std::collections::HashMap;

/// Display name of a user id, for history views.
pub async fn names<'e>(ex: impl Executor<'e, Database = Any>) -> Result<HashMap<i64, String>, sqlx::Error> {
    let rows = sqlx::query("SELECT id, display_name FROM users").fetch_all(ex).await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, text(r, "display_name")?)))
        .collect()
}

/// Display names of these user ids only.
pub async fn names_of(pool: &sqlx::AnyPool, ids: &[i64]) -> Result<HashMap<i64, String>, sqlx::Error> {
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT id, display_name FROM users WHERE id IN ({})",
            vec!["?"; chunk.len()].join(", ")
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for r in q.fetch_all(pool).await? {
            out.insert(r.try_get("id")?, text(&r, "display_name")?);
        }
    }
    Ok(out)
}

pub fn opt_name(names: &HashMap<i64, String>, id: Option<i64>) -> Option<String> {
    id.map(|i| names.get(&i).cloned().unwrap_or_else(|| format!("user {i}")))
}

/// The id of the employee with this email, if any.
pub async fn id_by_email<'e>(ex: impl Executor<'e, Database = Any>, email: &str) -> Result<Option<i64>, sqlx::Error> {
    let row = sqlx::query("SELECT id FROM users WHERE email = ?")
        .bind(email)
        .fetch_optional(ex)
        .await?;
    row.map(|r| r.try_get("id")).transpose()
}
