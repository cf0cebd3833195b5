//! `gatehouse seed-demo`: the first customer's company, for trying
//! Gatehouse out. Refuses to touch a database that already has users.

use super::{audit_log, crypto, state::AppState, users};
use crate::domain::{
    audit::{Actor, NewEvent, Outcome},
    roles::Role,
};
use serde_json::json;

pub const DOMAIN: &str = "sunridge-solar.example";

/// (name, department, role)
pub const PEOPLE: [(&str, &str, Role); 18] = [
    ("Maya Okafor", "administration", Role::Admin),
    ("Daniel Brandt", "audit", Role::Auditor),
    ("Priya Raman", "engineering", Role::Engineer),
    ("Lukas Meyer", "engineering", Role::Engineer),
    ("Sofia Alvarez", "engineering", Role::Engineer),
    ("Kenji Watanabe", "engineering", Role::Engineer),
    ("Amara Nwosu", "engineering", Role::Engineer),
    ("Elias Lindqvist", "engineering", Role::Engineer),
    ("Chloe Dubois", "engineering", Role::Engineer),
    ("Mateo Rossi", "engineering", Role::Engineer),
    ("Hannah Schulz", "engineering", Role::Engineer),
    ("Omar Haddad", "engineering", Role::Engineer),
    ("Grace Kim", "engineering", Role::Engineer),
    ("Tomasz Nowak", "engineering", Role::Engineer),
    ("Leila Farahani", "support", Role::Support),
    ("Jonas Becker", "support", Role::Support),
    ("Aisha Bello", "support", Role::Support),
    ("Ryan O'Connell", "sales", Role::Sales),
];

pub fn email_for(name: &str) -> String {
    let local: String = name
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('.'),
            c if c.is_ascii_alphabetic() => Some(c),
            _ => None,
        })
        .collect();
    format!("{local}@{DOMAIN}")
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("the database already has users; seed-demo only fills an empty database")]
    NotEmpty,
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// Creates the demo company and returns (email, role, password) for each
/// person. Passwords are random and exist only in this return value.
pub async fn seed_demo(st: &AppState) -> Result<Vec<(String, Role, String)>, SeedError> {
    let now = st.clock.now();
    let mut people = Vec::new();
    for (name, dept, role) in PEOPLE {
        let password = crypto::random_token(15);
        let hash = crypto::password::hash_blocking(password.clone()).await;
        people.push((name, dept, role, email_for(name), password, hash));
    }
    let mut tx = st.db.begin_write().await?;
    if users::count(&mut **tx).await? > 0 {
        return Err(SeedError::NotEmpty);
    }
    let mut out = Vec::new();
    let mut admin_id = None;
    for (name, dept, role, email, password, hash) in people {
        let id = users::insert(&mut tx, users::NewUser { email: &email, display_name: name, department: dept, password_hash: &hash }, now).await?;
        users::insert_grant(&mut tx, id, role, admin_id, "demo company (seed-demo)", now).await?;
        if role == Role::Admin {
            admin_id = Some(id);
        }
        out.push((email, role, password));
    }
    let count = |r: Role| out.iter().filter(|(_, role, _)| *role == r).count();
    audit_log::append(
        &mut tx,
        now,
        vec![NewEvent::new("demo.seeded", Outcome::Success, Actor::default()).details(json!({
            "users": out.len(),
            "engineers": count(Role::Engineer),
            "support": count(Role::Support),
            "sales": count(Role::Sales),
            "admins": count(Role::Admin),
            "auditors": count(Role::Auditor),
        }))],
    )
    .await?;
    tx.commit().await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_company_from_the_brief() {
        let n = |r: Role| PEOPLE.iter().filter(|p| p.2 == r).count();
        assert_eq!((n(Role::Engineer), n(Role::Support), n(Role::Sales), n(Role::Admin), n(Role::Auditor)), (12, 3, 1, 1, 1));
        assert_eq!(email_for("Ryan O'Connell"), "ryan.oconnell@sunridge-solar.example");
        let mut emails: Vec<String> = PEOPLE.iter().map(|p| email_for(p.0)).collect();
        emails.sort();
        emails.dedup();
        assert_eq!(emails.len(), 18);
    }
}
