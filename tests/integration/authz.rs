//! The authorization matrix: every built-in role (the five standing ones
//! and the three time-boxed ones) against every access server function
//! and page, and every function that decides about a person against that
//! person acting on their own case. Refusals are 403 and recorded as denied.

use crate::helpers::*;
use reqwest::StatusCode;

on_both!(
    every_role_against_every_function_and_page,
    nobody_acts_on_their_own_case
);

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
    ("db_targets", &[], ADMIN),
    (
        "register_db_target",
        &[
            ("name", "x"),
            ("host", "db.example.com"),
            ("username", "u"),
            ("password", "p"),
        ],
        ADMIN,
    ),
    ("test_db_target", &[("id", "999999")], ADMIN),
    (
        "map_db_privilege",
        &[
            ("target", "999999"),
            ("role", "support"),
            ("privilege", "DROP"),
            ("schema", "app"),
        ],
        ADMIN,
    ),
    ("unmap_db_privilege", &[("id", "999999")], ADMIN),
    ("approve_db_privilege", &[("id", "999999")], ADMIN),
    ("scan_db_drift", &[("id", "999999")], ADMIN),
    ("set_db_drift_correction", &[("id", "999999")], ADMIN),
    ("my_db_accounts", &[], ANY),
    ("audit_browse", &[], AUDIT),
    ("audit_verify", &[], AUDIT),
    ("audit_latest_checkpoint", &[], AUDIT),
    ("audit_recent_checkpoints", &[], AUDIT),
    ("audit_report", &[("kind", "denied")], AUDIT),
    ("alerts", &[], ADMIN_OR_AUDIT),
    ("siem_sinks", &[], ADMIN_OR_AUDIT),
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
    (
        "start_review",
        &[("name", "x"), ("scope_kind", "all"), ("due_in_days", "0")],
        ADMIN,
    ),
    ("review_campaigns", &[], ADMIN_OR_AUDIT),
    ("review_campaign", &[("id", "999999")], ADMIN_OR_AUDIT),
    ("close_review", &[("id", "999999")], ADMIN),
    ("reassign_review_item", &[("id", "999999"), ("to", "1")], ADMIN),
    ("review_setup", &[], ADMIN),
    ("set_role_owners", &[("role", "nope")], ADMIN),
    ("my_reviews", &[], ANY),
    ("decide_review", &[("items[]", "999999"), ("decision", "keep")], ANY),
    ("my_elevations", &[], ANY),
    ("passkey_registration_options", &[], ANY),
    ("register_passkey", &[("name", "x"), ("credential", "{}")], ANY),
    ("my_passkeys", &[], ANY),
    ("remove_passkey", &[("id", "999999")], ANY),
    ("passkey_step_up", &[("purpose", "x"), ("credential", "{}")], ANY),
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
    ("/targets", ADMIN),
    ("/audit", AUDIT),
    ("/audit/reports", AUDIT),
    ("/audit/elevations", AUDIT),
    ("/reviews", ANY),
    ("/reviews/campaigns", ADMIN_OR_AUDIT),
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
        let size = app
            .count("SELECT COALESCE(MAX(tree_size), 1) FROM audit_checkpoints")
            .await;
        let consistency = format!("/api/v1/audit/consistency?from={size}&to={size}");
        for (path, operation) in [
            ("/audit/export.csv", "audit_export_csv"),
            ("/audit/export.bundle", "audit_export_bundle"),
            ("/audit/report.csv?kind=denied", "audit_report_csv"),
            ("/api/v1/audit/checkpoints", "audit_checkpoints"),
            ("/api/v1/audit/proofs/1", "audit_proof"),
            (consistency.as_str(), "audit_consistency"),
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

/// Nobody acts on their own case, across the functions that decide about
/// a person: an administrator refused granting to, revoking from,
/// suspending and offboarding themselves, approving their own pending
/// grant, their own role change or their own elevation request, and
/// cancelling their own scheduled offboarding; an auditor refused
/// acknowledging an alert about themselves. Each answer is 403 and each
/// refusal is recorded.
async fn nobody_acts_on_their_own_case(b: Backend) {
    use serde_json::Value;
    let app = TestApp::spawn_with(&b, &[("GATEHOUSE_ALERT_FAILED_SIGNINS", "3")]).await;
    let people = gatehouse::server::seed::seed_demo(&app.state).await.unwrap();
    let who = |role: &str| people.iter().find(|p| p.1 == role).unwrap().clone();
    let (admin, _) = app.sign_in_enrolling(&who("admin").0, &who("admin").2).await;
    let (auditor, _) = app.sign_in_enrolling(&who("auditor").0, &who("auditor").2).await;
    let admin_id = app.user_id(&who("admin").0).await.to_string();
    let auditor_email = who("auditor").0;
    // A second administrator (granted at once: there is one so far).
    let (second_email, _, second_pw) = who("engineer");
    let second_id = app.user_id(&second_email).await.to_string();
    let form = [
        ("user_id", second_id.as_str()),
        ("role", "admin"),
        ("reason", "second administrator"),
    ];
    assert_eq!(app.call(&admin, "grant_role", &form).await.status(), StatusCode::OK);
    let (second, _) = app.sign_in_enrolling(&second_email, &second_pw).await;

    let denied = || app.count("SELECT COUNT(*) FROM audit_events WHERE outcome = 'denied'");
    let refused = |c: &reqwest::Client, name: &'static str, form: Vec<(&'static str, String)>| {
        let (app, c) = (&app, c.clone());
        async move {
            let before = app
                .count("SELECT COUNT(*) FROM audit_events WHERE outcome = 'denied'")
                .await;
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = app.call(&c, name, &form).await;
            let status = r.status();
            let body = r.text().await.unwrap();
            assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {body}");
            assert_eq!(
                app.count("SELECT COUNT(*) FROM audit_events WHERE outcome = 'denied'")
                    .await,
                before + 1,
                "{name}: refusal recorded"
            );
        }
    };
    let s = |v: &str| v.to_owned();
    refused(
        &admin,
        "grant_role",
        vec![("user_id", s(&admin_id)), ("role", s("auditor")), ("reason", s("self"))],
    )
    .await;
    let grants: Vec<Value> = app.call(&admin, "grant_list", &[]).await.json().await.unwrap();
    let own = grants
        .iter()
        .find(|g| g["user_id"].as_i64() == admin_id.parse().ok() && g["role"] == "admin")
        .unwrap()["id"]
        .to_string();
    refused(
        &admin,
        "revoke_grant",
        vec![("grant_id", own), ("reason", s("leaving the team"))],
    )
    .await;
    refused(
        &admin,
        "suspend_employee",
        vec![("user_id", s(&admin_id)), ("reason", s("self"))],
    )
    .await;
    refused(
        &admin,
        "offboard_employee",
        vec![("user_id", s(&admin_id)), ("confirm_email", who("admin").0)],
    )
    .await;

    // Their own pending grant (two administrators now: four eyes).
    let (sales_email, _, _) = who("sales");
    let sales_id = app.user_id(&sales_email).await.to_string();
    let r = app
        .call(
            &admin,
            "grant_role",
            &[("user_id", &sales_id), ("role", "admin"), ("reason", "covers holidays")],
        )
        .await;
    assert_eq!(r.text().await.unwrap(), "true", "waits for a second administrator");
    let grants: Vec<Value> = app.call(&admin, "grant_list", &[]).await.json().await.unwrap();
    let pending = grants
        .iter()
        .find(|g| g["user_id"].as_i64() == sales_id.parse().ok() && g["role"] == "admin")
        .unwrap()["id"]
        .to_string();
    refused(&admin, "approve_grant", vec![("grant_id", pending)]).await;

    // Their own role change.
    let role = |perms: &[&'static str]| {
        let mut f = vec![("key", s("callcenter")), ("name", s("Call centre"))];
        f.extend(perms.iter().map(|p| ("permissions[]", s(p))));
        f
    };
    let f = role(&["customers:read"]);
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(app.call(&admin, "save_role", &f).await.status(), StatusCode::OK);
    let f = role(&["customers:read", "customers:read_pii"]);
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(app.call(&admin, "save_role", &f).await.text().await.unwrap(), "true");
    let changes: Vec<Value> = app
        .call(&admin, "pending_role_changes", &[])
        .await
        .json()
        .await
        .unwrap();
    refused(
        &admin,
        "approve_role_change",
        vec![("id", changes[0]["id"].to_string())],
    )
    .await;

    // Their own elevation request.
    let r = app
        .call(
            &admin,
            "request_elevation",
            &[
                ("role", "support-pii"),
                ("justification", "customer 1042 asks to correct the delivery address"),
                ("ticket", "SUP-1"),
            ],
        )
        .await;
    let request = r.text().await.unwrap();
    refused(
        &admin,
        "decide_elevation",
        vec![("id", request), ("decision", s("approve"))],
    )
    .await;

    // Their own scheduled offboarding.
    let r = app
        .call(
            &second,
            "offboard_employee",
            &[
                ("user_id", &admin_id),
                ("confirm_email", &who("admin").0),
                ("at", "2026-01-02T12:00"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    refused(&admin, "cancel_offboarding", vec![("user_id", s(&admin_id))]).await;

    // An alert about themselves.
    for _ in 0..3 {
        let form = [
            ("email", auditor_email.as_str()),
            ("password", "not the password at all"),
        ];
        app.call(&client(), "sign_in", &form).await;
    }
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    let alerts: Vec<Value> = app.call(&auditor, "alerts", &[]).await.json().await.unwrap();
    let about_me = alerts.iter().find(|a| a["rule"] == "failed_signins").unwrap()["id"].to_string();
    refused(
        &auditor,
        "acknowledge_alert",
        vec![("id", about_me), ("comment", s("that was me"))],
    )
    .await;
    assert!(denied().await >= 9);
    app.verify_chain().await;
    app.cleanup().await;
}
