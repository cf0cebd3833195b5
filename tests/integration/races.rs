//! Rules under concurrent requests (issue 17). On MySQL each request has a
//! transaction of its own, so a rule that reads rows without locking them
//! can be passed by two requests at once; SQLite writes one at a time. No
//! interleaving may break a rule on either database.

use crate::helpers::*;
use reqwest::StatusCode;

on_both!(
    two_administrators_suspending_each_other_leave_one,
    concurrent_grants_keep_separation_of_duties,
    an_elevation_and_a_grant_at_once_keep_separation_of_duties,
);

const MAYA: &str = "maya.okafor@sunridge-solar.example";
const LUKAS: &str = "lukas.meyer@sunridge-solar.example";
const JONAS: &str = "jonas.becker@sunridge-solar.example";
const PW: &str = "violet harbour lantern 42";
const ROUNDS: usize = 6;

async fn active_admins(app: &TestApp) -> i64 {
    app.count(
        "SELECT COUNT(DISTINCT g.user_id) FROM grants g JOIN users u ON u.id = g.user_id WHERE g.role = 'admin' \
         AND g.revoked_at IS NULL AND g.pending = 0 AND u.status = 'active'",
    )
    .await
}

/// Each round: two administrators suspend each other at the same moment.
/// Exactly one suspension goes through; one administrator stays.
async fn two_administrators_suspending_each_other_leave_one(b: Backend) {
    for round in 0..ROUNDS {
        let app = TestApp::spawn(&b).await;
        let (maya, _, _) = app.first_admin(MAYA, PW).await;
        let (lukas, _, lukas_id) = app
            .employee(&maya, "Lukas Meyer", LUKAS, "administration", &["admin"])
            .await;
        let (maya_uid, lukas_uid) = (app.user_id(MAYA).await.to_string(), lukas_id.to_string());
        let suspend_lukas = [("user_id", lukas_uid.as_str()), ("reason", "round")];
        let suspend_maya = [("user_id", maya_uid.as_str()), ("reason", "round")];
        let (a, b2) = tokio::join!(
            app.call(&maya, "suspend_employee", &suspend_lukas),
            app.call(&lukas, "suspend_employee", &suspend_maya),
        );
        let mut statuses = [a.status(), b2.status()];
        statuses.sort();
        assert_eq!(active_admins(&app).await, 1, "round {round}: {statuses:?}");
        // The other is refused as the last administrator's (403, recorded),
        // or, arriving after the suspension ended its session, not signed in.
        assert_eq!(statuses[0], StatusCode::OK, "round {round}");
        assert!(
            matches!(statuses[1], StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED),
            "round {round}: {statuses:?}"
        );
        let denied = i64::from(statuses[1] == StatusCode::FORBIDDEN);
        // Refused by the rule, or by the permission check once suspended: recorded either way.
        let recorded =
            app.audit_count("employee.suspend", "denied").await + app.audit_count("authz.denied", "denied").await;
        assert_eq!(recorded, denied, "round {round}");
        app.cleanup().await;
    }
}

/// Each round: `admin` and `auditor` granted to one employee at the same
/// moment. At most one of the two may hold.
async fn concurrent_grants_keep_separation_of_duties(b: Backend) {
    for round in 0..ROUNDS {
        let app = TestApp::spawn(&b).await;
        let (maya, _, _) = app.first_admin(MAYA, PW).await;
        let (_, _, jonas_id) = app
            .employee(&maya, "Jonas Becker", JONAS, "support", &["support"])
            .await;
        let uid = jonas_id.to_string();
        let grant = |role: &'static str| {
            let uid = uid.clone();
            let (app, maya) = (&app, &maya);
            async move {
                app.call(
                    maya,
                    "grant_role",
                    &[("user_id", &uid), ("role", role), ("reason", "race")],
                )
                .await
                .status()
            }
        };
        let (a, b2) = tokio::join!(grant("admin"), grant("auditor"));
        let held = app
            .count(&format!(
                "SELECT COUNT(*) FROM grants WHERE user_id = {jonas_id} AND role IN ('admin', 'auditor') \
                 AND revoked_at IS NULL"
            ))
            .await;
        assert_eq!(held, 1, "round {round}: {a} {b2}");
        let mut statuses = [a, b2];
        statuses.sort();
        assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT], "round {round}");
        app.cleanup().await;
    }
}

/// Each round: an employee's approved elevation to a requestable role that
/// reads the audit trail, and `admin` granted to them, at the same moment.
/// At most one of the two may hold.
async fn an_elevation_and_a_grant_at_once_keep_separation_of_duties(b: Backend) {
    for round in 0..ROUNDS {
        let app = TestApp::spawn(&b).await;
        let (maya, _, _) = app.first_admin(MAYA, PW).await;
        let role = [
            ("key", "audit-peek"),
            ("name", "Audit trail, briefly"),
            ("permissions[]", "audit:read"),
            ("max_duration", "1h"),
            ("requestable", "on"),
        ];
        let r = app.call(&maya, "save_role", &role).await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        let (jonas, _, jonas_id) = app
            .employee(&maya, "Jonas Becker", JONAS, "support", &["support"])
            .await;
        let form = [
            ("role", "audit-peek"),
            ("justification", "checking who opened customer 1042 last week"),
            ("ticket", "SUP-1"),
        ];
        let r = app.call(&jonas, "request_elevation", &form).await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        let request = r.text().await.unwrap();
        let uid = jonas_id.to_string();
        let approve = [("id", request.as_str()), ("decision", "approve")];
        let grant = [("user_id", uid.as_str()), ("role", "admin"), ("reason", "race")];
        let (a, b2) = tokio::join!(
            app.call(&maya, "decide_elevation", &approve),
            app.call(&maya, "grant_role", &grant),
        );
        let statuses = [a.status(), b2.status()];
        let held = app
            .count(&format!(
                "SELECT COUNT(*) FROM grants WHERE user_id = {jonas_id} AND role IN ('admin', 'audit-peek') \
                 AND revoked_at IS NULL"
            ))
            .await;
        assert_eq!(held, 1, "round {round}: {statuses:?}");
        let mut sorted = statuses;
        sorted.sort();
        assert_eq!(sorted, [StatusCode::OK, StatusCode::CONFLICT], "round {round}");
        app.cleanup().await;
    }
}
