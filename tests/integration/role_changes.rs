//! Changing a role changes what every holder may do without a new grant:
//! a change that adds administrator power, an `audit:*` permission or a
//! critical permission waits for a second administrator once two exist,
//! as granting such a role does. SQLite and MySQL.

use crate::helpers::*;
use reqwest::{Client, StatusCode};
use serde_json::Value;

const ADMIN: &str = "maya.okafor@sunridge-solar.example";
const PW: &str = "violet harbour lantern 42";
const LUKAS: &str = "lukas.meyer@sunridge-solar.example";
const JONAS: &str = "jonas.becker@sunridge-solar.example";

on_both!(widening_a_role_waits_for_a_second_administrator);

fn role_form(perms: &[&'static str]) -> Vec<(&'static str, &'static str)> {
    let mut form = vec![("key", "callcenter"), ("name", "Call centre")];
    form.extend(perms.iter().map(|p| ("permissions[]", *p)));
    form
}

async fn save(app: &TestApp, c: &Client, perms: &[&'static str]) -> (StatusCode, String) {
    let r = app.call(c, "save_role", &role_form(perms)).await;
    (r.status(), r.text().await.unwrap())
}

async fn pending(app: &TestApp, c: &Client) -> Vec<Value> {
    let r = app.call(c, "pending_role_changes", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

async fn widening_a_role_waits_for_a_second_administrator(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (maya, _, _) = app.first_admin(ADMIN, PW).await;
    // A custom role, created and granted by the only administrator.
    assert_eq!(save(&app, &maya, &["customers:read"]).await.0, StatusCode::OK);
    let (jonas, _, _) = app
        .employee(&maya, "Jonas Becker", JONAS, "support", &["callcenter"])
        .await;
    // With one administrator a change applies at once.
    let (s, body) = save(&app, &maya, &["customers:read", "orders:write"]).await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "false"));
    assert!(app.perms(&jonas).await.contains(&"orders:write".to_string()));
    let (lukas, _, _) = app
        .employee(&maya, "Lukas Meyer", LUKAS, "engineering", &["admin"])
        .await;

    // Two administrators: adding a critical permission waits, and nobody's
    // access changes meanwhile.
    let widened = ["customers:read", "orders:write", "customers:read_pii"];
    let (s, body) = save(&app, &maya, &widened).await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "true"), "{body}");
    assert!(!app.perms(&jonas).await.contains(&"customers:read_pii".to_string()));
    assert_eq!(app.audit_count("role.change_requested", "success").await, 1);
    let waiting = pending(&app, &lukas).await;
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(waiting[0]["role"], "callcenter");
    assert_eq!(waiting[0]["added"], serde_json::json!(["customers:read_pii"]));
    let id = waiting[0]["id"].to_string();
    // One change at a time; never approved by its author.
    let (s, _) = save(&app, &maya, &["customers:read"]).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let r = app.call(&maya, "approve_role_change", &[("id", &id)]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.audit_count("role.change_approved", "denied").await, 1);
    assert!(!app.perms(&jonas).await.contains(&"customers:read_pii".to_string()));
    // Nor by someone without access management.
    let r = app.call(&jonas, "approve_role_change", &[("id", &id)]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // The second administrator approves: the change applies to its holders.
    let r = app.call(&lukas, "approve_role_change", &[("id", &id)]).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert!(app.perms(&jonas).await.contains(&"customers:read_pii".to_string()));
    assert_eq!(app.audit_count("role.change_approved", "success").await, 1);
    assert_eq!(app.audit_count("role.updated", "success").await, 2);
    assert!(pending(&app, &maya).await.is_empty());
    let r = app.call(&lukas, "approve_role_change", &[("id", &id)]).await;
    assert_eq!(r.status(), StatusCode::CONFLICT, "decided once");

    // Administrator power by a change waits too; rejected, nothing changes.
    let mut with_power = widened.to_vec();
    with_power.push("access:grant");
    let (s, body) = save(&app, &maya, &with_power).await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "true"));
    let id = pending(&app, &lukas).await[0]["id"].to_string();
    let r = app.call(&lukas, "reject_role_change", &[("id", &id)]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(!app.perms(&jonas).await.contains(&"access:grant".to_string()));
    assert_eq!(app.audit_count("role.change_rejected", "success").await, 1);
    // Narrowing, or adding what is neither critical nor administrative,
    // applies at once.
    let (s, body) = save(&app, &maya, &["customers:read", "customers:read_pii", "leads:read"]).await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "false"));
    let perms = app.perms(&jonas).await;
    assert!(perms.contains(&"leads:read".to_string()) && !perms.contains(&"orders:write".to_string()));
    app.verify_chain().await;
    app.cleanup().await;
}
