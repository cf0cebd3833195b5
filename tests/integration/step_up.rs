//! Step-up for the powerful actions: granting a role, creating or changing
//! a role, suspending an employee and creating an API token ask for a fresh
//! authenticator code (the last one at most 5 minutes old), as offboarding
//! does. Without one they are refused and change nothing. SQLite and MySQL.

use crate::helpers::*;
use reqwest::StatusCode;

const ADMIN: &str = "maya.okafor@sunridge-solar.example";
const PW: &str = "violet harbour lantern 42";
const JONAS: &str = "jonas.becker@sunridge-solar.example";

on_both!(powerful_actions_ask_for_a_fresh_code);

/// A server function, a form for it, and the audit action of its success.
type Action<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);

async fn powerful_actions_ask_for_a_fresh_code(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (maya, key, _) = app.first_admin(ADMIN, PW).await;
    let (_, _, jonas) = app.employee(&maya, "Jonas Becker", JONAS, "support", &[]).await;
    let account = service_account(&app, &maya, "okta-scim", &["scim"]).await;
    let (jonas, account) = (jonas.to_string(), account.to_string());
    let actions: Vec<Action> = vec![
        (
            "grant_role",
            vec![
                ("user_id", &jonas),
                ("role", "support"),
                ("reason", "joins the support team"),
            ],
            "grant.created",
        ),
        (
            "save_role",
            vec![
                ("key", "billing"),
                ("name", "Billing"),
                ("permissions[]", "customers:read"),
                ("permissions[]", "orders:write"),
            ],
            "role.created",
        ),
        (
            "create_api_token",
            vec![("account_id", &account), ("label", "production")],
            "api_token.created",
        ),
        (
            "suspend_employee",
            vec![("user_id", &jonas), ("reason", "laptop stolen, ticket SEC-12")],
            "employee.suspended",
        ),
    ];

    // More than five minutes after the last code: each action asks for one.
    app.clock.advance(6 * 60_000);
    for (name, form, done) in &actions {
        let r = app.call(&maya, name, form).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{name}");
        let message = error_message(&r.text().await.unwrap());
        assert!(message.contains("authenticator"), "{name}: {message}");
        assert_eq!(app.audit_count(done, "success").await, 0, "{name} changed something");
    }
    // A wrong code is refused (and counted as a failed code).
    let mut wrong = actions[0].1.clone();
    wrong.push(("code", "000000"));
    let r = app.call(&maya, "grant_role", &wrong).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.audit_count("grant.created", "success").await, 0);
    assert_eq!(app.audit_count("mfa.step_up", "failure").await, 1);

    // With a fresh code the first goes through; the others follow within
    // the five minutes without another.
    let code = app.code(&key);
    let mut with_code = actions[0].1.clone();
    with_code.push(("code", &code));
    let r = app.call(&maya, "grant_role", &with_code).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert_eq!(app.audit_count("mfa.step_up", "success").await, 1);
    for (name, form, done) in &actions {
        if *name != "grant_role" {
            let r = app.call(&maya, name, form).await;
            assert_eq!(r.status(), StatusCode::OK, "{name}: {}", r.text().await.unwrap());
        }
        assert_eq!(app.audit_count(done, "success").await, 1, "{name}");
    }
    app.verify_chain().await;
    app.cleanup().await;
}
