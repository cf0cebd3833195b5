//! Just-in-time elevation over HTTP: request, step-up approval, exact
//! expiry, denial, lapse, cancellation, revocation, suspension. SQLite and
//! MySQL.

use crate::helpers::*;
use reqwest::{Client, StatusCode};
use serde_json::Value;

const ADMIN: &str = "maya.okafor@sunridge-solar.example";
const PW: &str = "violet harbour lantern 42";
const JONAS: &str = "jonas.becker@sunridge-solar.example";
const WHY: &str = "customer 1042 asks to correct the delivery address";

on_both!(elevation_requests_are_approved_and_end_by_themselves, elevation_requests_can_be_denied_lapse_cancel_and_revoke);

async fn ask(app: &TestApp, c: &Client, duration: &str, why: &str, ticket: &str) -> reqwest::Response {
    app.call(c, "request_elevation", &[("role", "support-pii"), ("duration", duration), ("justification", why), ("ticket", ticket)]).await
}

async fn mine(app: &TestApp, c: &Client) -> Vec<Value> {
    app.call(c, "my_elevations", &[]).await.json().await.unwrap()
}

async fn elevation_requests_are_approved_and_end_by_themselves(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (maya, maya_key, _) = app.first_admin(ADMIN, PW).await;
    let (jonas, jonas_key, jonas_id) = app.employee(&maya, "Jonas Becker", JONAS, "support", &["support"]).await;

    // Checked before anything is stored.
    assert_eq!(ask(&app, &jonas, "", "because", "SUP-1").await.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(ask(&app, &jonas, "", WHY, "ticket 1").await.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = ask(&app, &jonas, "9h", WHY, "SUP-1234").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_message(&r.text().await.unwrap()).contains("8 hours"));
    let r = app.call(&jonas, "request_elevation", &[("role", "admin"), ("justification", WHY), ("ticket", "SUP-1")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "admin is not requestable");
    assert_eq!(app.count("SELECT COUNT(*) FROM elevation_requests").await, 0);

    let r = ask(&app, &jonas, "", WHY, "SUP-1234").await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let id = r.text().await.unwrap();
    assert_eq!(ask(&app, &jonas, "", WHY, "SUP-1234").await.status(), StatusCode::CONFLICT, "one open request per role");
    assert_eq!(mine(&app, &jonas).await[0]["state"], "pending");
    assert!(!app.perms(&jonas).await.contains(&"customers:read_pii".to_string()));
    // The requester neither sees the queue nor decides.
    assert_eq!(app.call(&jonas, "elevation_queue", &[]).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.call(&jonas, "decide_elevation", &[("id", &id), ("decision", "approve")]).await.status(), StatusCode::FORBIDDEN);

    // The administrator's last code is old: approving needs a new one.
    app.clock.advance(6 * 60_000);
    let queue: Vec<Value> = app.call(&maya, "elevation_queue", &[]).await.json().await.unwrap();
    assert_eq!(queue[0]["justification"], WHY);
    assert_eq!(queue[0]["requester_roles"][0], "support");
    let r = app.call(&maya, "decide_elevation", &[("id", &id), ("decision", "approve")]).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = app.call(&maya, "decide_elevation", &[("id", &id), ("decision", "approve"), ("code", &app.code(&maya_key))]).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert_eq!(r.text().await.unwrap(), "\"approved\"");
    // The clock starts at approval: one hour from now.
    let approved_at = app.clock.now();
    let jonas = app.sign_in(JONAS, "quiet meadow lantern 7", &jonas_key).await;
    let perms = app.perms(&jonas).await;
    assert!(perms.contains(&"customers:read_pii".to_string()));
    let m = mine(&app, &jonas).await;
    assert_eq!(m[0]["state"], "approved");
    assert!(m[0]["ends_in_ms"].as_i64().unwrap() > 59 * 60_000);
    assert_eq!(app.audit_count("elevation.approved", "success").await, 1);
    assert_eq!(app.audit_count("mfa.step_up", "success").await, 1);

    // It ends at the exact instant, job or no job; the job records it.
    // (Checked on the server's own check: Jonas's session idles out meanwhile.)
    use gatehouse::domain::permissions::Permission;
    let check = |at: i64| {
        let pool = app.state.db.pool.clone();
        async move { gatehouse::server::access::permissions_at(&pool, jonas_id, at).await.unwrap().contains(Permission::CustomersReadPii) }
    };
    assert!(check(approved_at + 3_600_000 - 1).await);
    assert!(!check(approved_at + 3_600_000).await);
    app.clock.set(approved_at + 3_600_000);
    let jonas = app.sign_in(JONAS, "quiet meadow lantern 7", &jonas_key).await;
    assert!(!app.perms(&jonas).await.contains(&"customers:read_pii".to_string()));
    assert_eq!(mine(&app, &jonas).await[0]["state"], "expired");
    gatehouse::server::startup::run_access_jobs(&app.state).await;
    assert_eq!(app.audit_count("elevation.expired", "success").await, 1);
    assert_eq!(app.audit_count("grant.expired", "success").await, 1);
    gatehouse::server::startup::run_access_jobs(&app.state).await;
    assert_eq!(app.audit_count("elevation.expired", "success").await, 1, "once");
    app.verify_chain().await;
    app.cleanup().await;
}

async fn elevation_requests_can_be_denied_lapse_cancel_and_revoke(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (maya, maya_key, _) = app.first_admin(ADMIN, PW).await;
    let (jonas, jonas_key, jonas_id) = app.employee(&maya, "Jonas Becker", JONAS, "support", &["support"]).await;
    let decide = |id: String, decision: &'static str, reason: &'static str| {
        let maya = maya.clone();
        let app = &app;
        async move { app.call(&maya, "decide_elevation", &[("id", &id), ("decision", decision), ("reason", reason)]).await }
    };

    // Denied, with a reason (the administrator's code is fresh: no new one needed).
    let id = ask(&app, &jonas, "30m", WHY, "SUP-1").await.text().await.unwrap();
    assert_eq!(decide(id.clone(), "deny", "").await.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = decide(id.clone(), "deny", "use the redacted view").await;
    assert_eq!(r.text().await.unwrap(), "\"denied\"");
    assert_eq!(decide(id.clone(), "approve", "").await.status(), StatusCode::CONFLICT, "a denied request stays denied");
    assert_eq!(mine(&app, &jonas).await[0]["decision_reason"], "use the redacted view");

    // Cancelled by the requester.
    let id = ask(&app, &jonas, "", WHY, "SUP-2").await.text().await.unwrap();
    assert_eq!(app.call(&jonas, "cancel_elevation", &[("id", &id)]).await.status(), StatusCode::OK);
    assert_eq!(mine(&app, &jonas).await[0]["state"], "cancelled");

    // Revoked early by an approver.
    let id = ask(&app, &jonas, "4h", WHY, "SUP-3").await.text().await.unwrap();
    assert_eq!(decide(id.clone(), "approve", "").await.status(), StatusCode::OK);
    assert!(app.perms(&jonas).await.contains(&"customers:read_pii".to_string()));
    let r = app.call(&maya, "revoke_elevation", &[("id", &id), ("reason", "ticket closed")]).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert!(!app.perms(&jonas).await.contains(&"customers:read_pii".to_string()));
    assert_eq!(mine(&app, &jonas).await[0]["state"], "revoked");

    // Pending for a day: lapsed.
    let id = ask(&app, &jonas, "", WHY, "SUP-4").await.text().await.unwrap();
    app.clock.advance(24 * 3_600_000);
    gatehouse::server::startup::run_access_jobs(&app.state).await;
    assert_eq!(app.audit_count("elevation.lapsed", "success").await, 1);
    let maya = app.sign_in(ADMIN, PW, &maya_key).await;
    let r = app.call(&maya, "decide_elevation", &[("id", &id), ("decision", "approve")]).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);

    // Suspending the requester cancels pending requests and ends active elevations.
    let jonas = app.sign_in(JONAS, "quiet meadow lantern 7", &jonas_key).await;
    let pending = ask(&app, &jonas, "", WHY, "SUP-5").await.text().await.unwrap();
    let r = app.call(&jonas, "request_elevation", &[("role", "prod-db-write"), ("justification", WHY), ("ticket", "OPS-9")]).await;
    let active = r.text().await.unwrap();
    assert_eq!(app.call(&maya, "decide_elevation", &[("id", &active), ("decision", "approve")]).await.status(), StatusCode::OK);
    let r = app.call(&maya, "suspend_employee", &[("user_id", &jonas_id.to_string()), ("reason", "investigation")]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let states: Vec<String> = sqlx::query("SELECT state FROM elevation_requests WHERE id IN (?, ?) ORDER BY id")
        .bind(pending.parse::<i64>().unwrap())
        .bind(active.parse::<i64>().unwrap())
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap()
        .iter()
        .map(|r| gatehouse::server::db::text(r, "state").unwrap())
        .collect();
    assert_eq!(states, ["cancelled", "revoked"]);
    assert_eq!(app.count("SELECT COUNT(*) FROM grants WHERE role = 'prod-db-write' AND revoked_at IS NULL").await, 0);
    app.verify_chain().await;
    app.cleanup().await;
}
