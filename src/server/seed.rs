//! `gatehouse seed-demo`: the first customer's company, for trying
//! Gatehouse out. Refuses to touch a database that already has users.

use super::{access::grants, audit, identity::accounts, platform::crypto, state::AppState};
use crate::domain::actions::Action;
use crate::domain::{
    audit::{Actor, NewEvent, Outcome},
    roles::{ADMIN, AUDITOR, ENGINEER, SALES, SUPPORT},
};
use serde_json::json;

pub const DOMAIN: &str = "sunridge-solar.example";

/// (name, department, role)
pub const PEOPLE: [(&str, &str, &str); 18] = [
    ("Maya Okafor", "administration", ADMIN),
    ("Daniel Brandt", "audit", AUDITOR),
    ("Priya Raman", "engineering", ENGINEER),
    ("Lukas Meyer", "engineering", ENGINEER),
    ("Sofia Alvarez", "engineering", ENGINEER),
    ("Kenji Watanabe", "engineering", ENGINEER),
    ("Amara Nwosu", "engineering", ENGINEER),
    ("Elias Lindqvist", "engineering", ENGINEER),
    ("Chloe Dubois", "engineering", ENGINEER),
    ("Mateo Rossi", "engineering", ENGINEER),
    ("Hannah Schulz", "engineering", ENGINEER),
    ("Omar Haddad", "engineering", ENGINEER),
    ("Grace Kim", "engineering", ENGINEER),
    ("Tomasz Nowak", "engineering", ENGINEER),
    ("Leila Farahani", "support", SUPPORT),
    ("Jonas Becker", "support", SUPPORT),
    ("Aisha Bello", "support", SUPPORT),
    ("Ryan O'Connell", "sales", SALES),
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
pub async fn seed_demo(st: &AppState) -> Result<Vec<(String, &'static str, String)>, SeedError> {
    let now = st.clock.now();
    let mut people = Vec::new();
    for (name, dept, role) in PEOPLE {
        let password = crypto::random_token(15);
        let plain = password.clone();
        let hash = tokio::task::spawn_blocking(move || crypto::password::hash(&plain))
            .await
            .expect("hashing task");
        people.push((name, dept, role, email_for(name), password, hash));
    }
    let mut tx = st.db.begin_write().await?;
    if accounts::count(tx.conn()).await? > 0 {
        return Err(SeedError::NotEmpty);
    }
    let mut out = Vec::new();
    let mut admin_id = None;
    for (name, dept, role, email, password, hash) in people {
        let id = accounts::insert(
            &mut tx,
            accounts::NewUser {
                email: &email,
                display_name: name,
                department: dept,
                password_hash: Some(&hash),
                status: "active",
                provisioned_by: accounts::Provisioning::Gatehouse,
            },
            now,
        )
        .await?;
        grants::insert_standing(&mut tx, id, role, admin_id, "demo company (seed-demo)", now).await?;
        if role == ADMIN {
            admin_id = Some(id);
        }
        out.push((email, role, password));
    }
    let count = |r: &str| out.iter().filter(|(_, role, _)| *role == r).count();
    audit::append(
        &mut tx,
        now,
        vec![
            NewEvent::new(Action::DemoSeeded, Outcome::Success, Actor::default()).details(json!({
                "users": out.len(),
                "engineers": count(ENGINEER),
                "support": count(SUPPORT),
                "sales": count(SALES),
                "admins": count(ADMIN),
                "auditors": count(AUDITOR),
            })),
        ],
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
        let n = |r: &str| PEOPLE.iter().filter(|p| p.2 == r).count();
        assert_eq!(
            (n(ENGINEER), n(SUPPORT), n(SALES), n(ADMIN), n(AUDITOR)),
            (12, 3, 1, 1, 1)
        );
        assert_eq!(email_for("Ryan O'Connell"), "ryan.oconnell@sunridge-solar.example");
        let mut emails: Vec<String> = PEOPLE.iter().map(|p| email_for(p.0)).collect();
        emails.sort();
        emails.dedup();
        assert_eq!(emails.len(), 18);
    }
}
