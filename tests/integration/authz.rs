//! The authorization matrix: every built-in role (the five standing ones
//! and the three time-boxed ones) against every access server function
//! and page. Refusals are 403 and recorded as denied.

use crate::helpers::*;
use reqwest::StatusCode;

on_both!(every_role_against_every_function_and_page);

/// Who may call: administrators (`employees:manage` / `access:grant`),
/// auditors (`audit:read`), or anyone signed in.
#[derive(Clone, Copy, PartialEq)]
enum Who {
    Admin,
    Audit,
    AdminOrAudit,
    Any,
}
use Who::{Admin as ADMIN, AdminOrAudit as ADMIN_OR_AUDIT, Any as ANY, Audit as AUDIT};

fn allowed(who: Who, role: &str) -> bool {
    match who {
        Who::Any => true,
        Who::Admin => role == "admin",
        Who::Audit => role == "auditor",
        Who::AdminOrAudit => role == "admin" || role == "auditor",
    }
}

/// Server functions of the access screens, a harmless form for each, and
/// whether only administrators may call it.
type Form = &'static [(&'static str, &'static str)];

const FUNCTIONS: &[(&str, Form, Who)] = &[
    ("catalogue", &[], ADMIN),
    ("save_role", &[("key", "Bad Key"), ("name", "x")], ADMIN),
    ("delete_role", &[("key", "nope")], ADMIN),
    ("pending_role_changes", &[], ADMIN),
    ("approve_role_change", &[("id", "999999")], ADMIN),
    ("reject_role_change", &[("id", "999999")], ADMIN),
    ("list_employees", &[], ADMIN),
    ("employee", &[("id", "999999")], ADMIN),
    (
        "onboard_employee",
        &[("name", ""), ("email", "x@example.com"), ("department", "sales")],
        ADMIN,
    ),
    ("reissue_invitation", &[("user_id", "999999")], ADMIN),
    (
        "grant_role",
        &[("user_id", "999999"), ("role", "support"), ("reason", "x")],
        ADMIN,
    ),
    ("approve_grant", &[("grant_id", "999999")], ADMIN),
    ("revoke_grant", &[("grant_id", "999999"), ("reason", "x")], ADMIN),
    ("suspend_employee", &[("user_id", "999999"), ("reason", "x")], ADMIN),
    ("reactivate_employee", &[("user_id", "999999")], ADMIN),
    (
        "offboard_employee",
        &[("user_id", "999999"), ("confirm_email", "x@example.com")],
        ADMIN,
    ),
    ("cancel_offboarding", &[("user_id", "999999")], ADMIN),
    ("unlock_employee", &[("user_id", "999999")], ADMIN),
    ("mark_checklist", &[("user_id", "999999"), ("item", "github")], ADMIN),
    ("offboarding_report", &[], ADMIN),
    ("dashboard", &[], ADMIN),
    ("grant_list", &[], ADMIN),
    ("service_accounts", &[], ADMIN),
    ("create_service_account", &[("name", "Bad Name")], ADMIN),
    ("create_api_token", &[("account_id", "999999"), ("label", "x")], ADMIN),
    ("revoke_api_token", &[("token_id", "999999")], ADMIN),
    ("audit_browse", &[], AUDIT),
    ("audit_verify", &[], AUDIT),
    ("audit_latest_checkpoint", &[], AUDIT),
    ("audit_report", &[("kind", "denied")], AUDIT),
    ("alerts", &[], ADMIN_OR_AUDIT),
    (
        "acknowledge_alert",
        &[("id", "999999"), ("comment", "nothing here")],
        ADMIN_OR_AUDIT,
    ),
    ("audit_sign_checkpoint", &[], AUDIT),
    ("elevation_queue", &[], ADMIN),
    ("decide_elevation", &[("id", "999999"), ("decision", "approve")], ADMIN),
    ("revoke_elevation", &[("id", "999999"), ("reason", "x")], ADMIN),
    ("review_breakglass", &[("id", "999999"), ("note", "x")], ADMIN),
    ("approval_policies", &[], ADMIN),
    (
        "set_approval_policy",
        &[("role", "support-pii"), ("approvals_needed", "9")],
        ADMIN,
    ),
    ("elevation_history", &[], AUDIT),
    ("elevation_ticket", &[("id", "999999")], AUDIT),
    (
        "request_elevation",
        &[("role", "support-pii"), ("justification", "short"), ("ticket", "SUP-1")],
        ANY,
    ),
    ("my_elevations", &[], ANY),
    ("my_notifications", &[], ANY),
    ("mark_notifications_read", &[], ANY),
    ("cancel_elevation", &[("id", "999999")], ANY),
    ("requestable_roles", &[], ANY),
    ("my_access", &[], ANY),
    ("me", &[], ANY),
    ("my_activity", &[], ANY),
];

const PAGES: &[(&str, Who)] = &[
    ("/admin", ADMIN),
    ("/employees", ADMIN),
    ("/employees/new", ADMIN),
    ("/employees/1", ADMIN),
    ("/roles", ADMIN),
    ("/grants", ADMIN),
    ("/offboarding", ADMIN),
    ("/service-accounts", ADMIN),
    ("/audit", AUDIT),
    ("/audit/reports", AUDIT),
    ("/audit/elevations", AUDIT),
    ("/audit/elevations/1", AUDIT),
    ("/", ANY),
    ("/access", ANY),
    ("/requests", ANY),
    ("/notifications", ANY),
    ("/activity", ANY),
    ("/security", ANY),
];

async fn last_denied_operation(app: &TestApp) -> String {
    use sqlx::Row;
    let row = sqlx::query("SELECT target_id FROM audit_events WHERE action = 'authz.denied' ORDER BY seq DESC LIMIT 1")
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    row.try_get("target_id").unwrap()
}

async fn every_role_against_every_function_and_page(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let people = gatehouse::server::seed::seed_demo(&app.state).await.unwrap();
    // Signed out: every function that needs a person answers 401.
    let anon = client();
    for (name, form, _) in FUNCTIONS.iter().filter(|f| f.0 != "me") {
        let r = app.call(&anon, name, form).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{name} signed out");
    }
    let mut clients = Vec::new();
    for role in ["admin", "auditor", "engineer", "support", "sales"] {
        let (email, _, pw) = people.iter().find(|p| p.1 == role).unwrap();
        let (c, _) = app.sign_in_enrolling(email, pw).await;
        clients.push((role, c));
    }
    // The time-boxed built-in roles, each held alone by a new employee.
    let admin = clients[0].1.clone();
    for (i, role) in ["support-pii", "prod-db-write", "breakglass"].into_iter().enumerate() {
        let email = format!("elevated{i}@sunridge-solar.example");
        let inv = app
            .onboard(&admin, &format!("Elevated Person{i}"), &email, "support", &[])
            .await;
        let r = app
            .call(
                &admin,
                "grant_role",
                &[
                    ("user_id", &inv["user_id"].to_string()),
                    ("role", role),
                    ("reason", "matrix"),
                    ("expires_in", "1h"),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let (c, _) = app.join(inv["link"].as_str().unwrap(), "quiet meadow lantern 7").await;
        assert!(!app.perms(&c).await.is_empty(), "{role} holds its permissions");
        clients.push((role, c));
    }
    assert_eq!(
        clients.len(),
        gatehouse::domain::roles::builtin_roles().len(),
        "every built-in role"
    );
    // Elevation request 1 exists, so its ticket page answers 200 to those allowed.
    let support = &clients.iter().find(|(r, _)| *r == "support").unwrap().1;
    let form = [
        ("role", "support-pii"),
        ("justification", "customer 1042 asks to correct the delivery address"),
        ("ticket", "SUP-1"),
    ];
    let r = app.call(support, "request_elevation", &form).await;
    assert_eq!(r.text().await.unwrap(), "1");
    for (role, c) in clients {
        for (name, form, who) in FUNCTIONS {
            let denied_before = app.audit_count("authz.denied", "denied").await;
            let r = app.call(&c, name, form).await;
            let status = r.status();
            let body = r.text().await.unwrap();
            if !allowed(*who, role) {
                assert_eq!(status, StatusCode::FORBIDDEN, "{role} calling {name}: {body}");
                assert_eq!(
                    app.audit_count("authz.denied", "denied").await,
                    denied_before + 1,
                    "{role} {name} refusal recorded"
                );
                assert_eq!(last_denied_operation(&app).await, *name);
                assert!(!body.contains("999999"), "no detail leaks");
            } else {
                assert!(
                    status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
                    "{role} calling {name}: {status} {body}"
                );
                assert!(status.as_u16() < 500, "{role} calling {name}: {status} {body}");
                assert_eq!(
                    app.audit_count("authz.denied", "denied").await,
                    denied_before,
                    "{role} {name} not refused"
                );
            }
        }
        // Routes outside the server functions and pages.
        for (path, operation) in [
            ("/audit/export.csv", "audit_export_csv"),
            ("/audit/export.bundle", "audit_export_bundle"),
            ("/audit/report.csv?kind=denied", "audit_report_csv"),
            ("/api/v1/audit/checkpoints", "audit_checkpoints"),
            ("/api/v1/audit/proofs/1", "audit_proof"),
        ] {
            let denied_before = app.audit_count("authz.denied", "denied").await;
            let r = app.get(&c, path).await;
            if allowed(AUDIT, role) {
                assert_eq!(r.status(), StatusCode::OK, "{role} opening {path}");
            } else {
                assert_eq!(r.status(), StatusCode::FORBIDDEN, "{role} opening {path}");
                assert!(r.text().await.unwrap().contains("request_id"));
                assert_eq!(app.audit_count("authz.denied", "denied").await, denied_before + 1);
                assert_eq!(last_denied_operation(&app).await, operation);
            }
        }
        for (path, who) in PAGES {
            let denied_before = app.audit_count("authz.denied", "denied").await;
            let r = app.get(&c, path).await;
            if !allowed(*who, role) {
                assert_eq!(r.status(), StatusCode::FORBIDDEN, "{role} opening {path}");
                assert!(r.text().await.unwrap().contains("Request id"));
                assert_eq!(app.audit_count("authz.denied", "denied").await, denied_before + 1);
                assert_eq!(last_denied_operation(&app).await, format!("page {path}"));
            } else {
                assert_eq!(r.status(), StatusCode::OK, "{role} opening {path}");
            }
            // HEAD reaches the same route: gated the same way.
            let r = c.head(app.url(path)).send().await.unwrap();
            let expected = if allowed(*who, role) {
                StatusCode::OK
            } else {
                StatusCode::FORBIDDEN
            };
            assert_eq!(r.status(), expected, "{role} asking HEAD {path}");
        }
    }
    app.verify_chain().await;
    app.cleanup().await;
}
