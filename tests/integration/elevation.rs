//! Just-in-time elevation over HTTP: request, step-up approval, exact
//! expiry, denial, lapse, cancellation, revocation, suspension. SQLite and
//! MySQL.

use crate::helpers::*;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

const ADMIN: &str = "maya.okafor@sunridge-solar.example";
const PW: &str = "violet harbour lantern 42";
const JONAS: &str = "jonas.becker@sunridge-solar.example";
const WHY: &str = "customer 1042 asks to correct the delivery address";

on_both!(
    elevation_requests_are_approved_and_end_by_themselves,
    elevation_requests_can_be_denied_lapse_cancel_and_revoke,
    customer_scoped_elevations_answer_only_for_their_customers_and_show_in_the_ticket_view,
    approval_policies_name_approvers_and_need_two_approvals,
    an_active_elevation_is_extended_once_through_approval,
    engineers_break_the_glass_and_someone_else_reviews_it,
);

async fn ask(app: &TestApp, c: &Client, duration: &str, why: &str, ticket: &str) -> reqwest::Response {
    app.call(
        c,
        "request_elevation",
        &[
            ("role", "support-pii"),
            ("duration", duration),
            ("justification", why),
            ("ticket", ticket),
        ],
    )
    .await
}

async fn mine(app: &TestApp, c: &Client) -> Vec<Value> {
    app.call(c, "my_elevations", &[]).await.json().await.unwrap()
}

async fn elevation_requests_are_approved_and_end_by_themselves(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (maya, maya_key, _) = app.first_admin(ADMIN, PW).await;
    let (jonas, jonas_key, jonas_id) = app
        .employee(&maya, "Jonas Becker", JONAS, "support", &["support"])
        .await;

    // Checked before anything is stored.
    assert_eq!(
        ask(&app, &jonas, "", "because", "SUP-1").await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        ask(&app, &jonas, "", WHY, "ticket 1").await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let r = ask(&app, &jonas, "9h", WHY, "SUP-1234").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_message(&r.text().await.unwrap()).contains("8 hours"));
    let r = app
        .call(
            &jonas,
            "request_elevation",
            &[("role", "admin"), ("justification", WHY), ("ticket", "SUP-1")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "admin is not requestable");
    assert_eq!(app.count("SELECT COUNT(*) FROM elevation_requests").await, 0);

    let r = ask(&app, &jonas, "", WHY, "SUP-1234").await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let id = r.text().await.unwrap();
    assert_eq!(
        ask(&app, &jonas, "", WHY, "SUP-1234").await.status(),
        StatusCode::CONFLICT,
        "one open request per role"
    );
    assert_eq!(mine(&app, &jonas).await[0]["state"], "pending");
    assert!(!app.perms(&jonas).await.contains(&"customers:read_pii".to_string()));
    // The requester neither sees the queue nor decides.
    assert_eq!(
        app.call(&jonas, "elevation_queue", &[]).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(&jonas, "decide_elevation", &[("id", &id), ("decision", "approve")])
            .await
            .status(),
        StatusCode::FORBIDDEN
    );

    // The administrator's last code is old: approving needs a new one.
    app.clock.advance(6 * 60_000);
    let queue: Vec<Value> = app.call(&maya, "elevation_queue", &[]).await.json().await.unwrap();
    assert_eq!(queue[0]["justification"], WHY);
    assert_eq!(queue[0]["requester_roles"][0], "support");
    let r = app
        .call(&maya, "decide_elevation", &[("id", &id), ("decision", "approve")])
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = app
        .call(
            &maya,
            "decide_elevation",
            &[("id", &id), ("decision", "approve"), ("code", &app.code(&maya_key))],
        )
        .await;
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
        let pool = app.state.db.pool().clone();
        async move {
            gatehouse::server::access::authz::permissions_at(&pool, jonas_id, at)
                .await
                .unwrap()
                .contains(Permission::CustomersReadPii)
        }
    };
    assert!(check(approved_at + 3_600_000 - 1).await);
    assert!(!check(approved_at + 3_600_000).await);
    app.clock.set(approved_at + 3_600_000);
    let jonas = app.sign_in(JONAS, "quiet meadow lantern 7", &jonas_key).await;
    assert!(!app.perms(&jonas).await.contains(&"customers:read_pii".to_string()));
    assert_eq!(mine(&app, &jonas).await[0]["state"], "expired");
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    assert_eq!(app.audit_count("elevation.expired", "success").await, 1);
    assert_eq!(app.audit_count("grant.expired", "success").await, 1);
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    assert_eq!(app.audit_count("elevation.expired", "success").await, 1, "once");
    app.verify_chain().await;
    app.cleanup().await;
}

async fn elevation_requests_can_be_denied_lapse_cancel_and_revoke(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (maya, maya_key, _) = app.first_admin(ADMIN, PW).await;
    let (jonas, jonas_key, jonas_id) = app
        .employee(&maya, "Jonas Becker", JONAS, "support", &["support"])
        .await;
    let decide = |id: String, decision: &'static str, reason: &'static str| {
        let maya = maya.clone();
        let app = &app;
        async move {
            app.call(
                &maya,
                "decide_elevation",
                &[("id", &id), ("decision", decision), ("reason", reason)],
            )
            .await
        }
    };

    // Denied, with a reason (the administrator's code is fresh: no new one needed).
    let id = ask(&app, &jonas, "30m", WHY, "SUP-1").await.text().await.unwrap();
    assert_eq!(
        decide(id.clone(), "deny", "").await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let r = decide(id.clone(), "deny", "use the redacted view").await;
    assert_eq!(r.text().await.unwrap(), "\"denied\"");
    assert_eq!(
        decide(id.clone(), "approve", "").await.status(),
        StatusCode::CONFLICT,
        "a denied request stays denied"
    );
    assert_eq!(mine(&app, &jonas).await[0]["decision_reason"], "use the redacted view");

    // Cancelled by the requester.
    let id = ask(&app, &jonas, "", WHY, "SUP-2").await.text().await.unwrap();
    assert_eq!(
        app.call(&jonas, "cancel_elevation", &[("id", &id)]).await.status(),
        StatusCode::OK
    );
    assert_eq!(mine(&app, &jonas).await[0]["state"], "cancelled");

    // Revoked early by an approver.
    let id = ask(&app, &jonas, "4h", WHY, "SUP-3").await.text().await.unwrap();
    assert_eq!(decide(id.clone(), "approve", "").await.status(), StatusCode::OK);
    assert!(app.perms(&jonas).await.contains(&"customers:read_pii".to_string()));
    let r = app
        .call(&maya, "revoke_elevation", &[("id", &id), ("reason", "ticket closed")])
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert!(!app.perms(&jonas).await.contains(&"customers:read_pii".to_string()));
    assert_eq!(mine(&app, &jonas).await[0]["state"], "revoked");

    // Pending for a day: lapsed.
    let id = ask(&app, &jonas, "", WHY, "SUP-4").await.text().await.unwrap();
    app.clock.advance(24 * 3_600_000);
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    assert_eq!(app.audit_count("elevation.lapsed", "success").await, 1);
    let maya = app.sign_in(ADMIN, PW, &maya_key).await;
    let r = app
        .call(&maya, "decide_elevation", &[("id", &id), ("decision", "approve")])
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);

    // Suspending the requester cancels pending requests and ends active elevations.
    let jonas = app.sign_in(JONAS, "quiet meadow lantern 7", &jonas_key).await;
    let pending = ask(&app, &jonas, "", WHY, "SUP-5").await.text().await.unwrap();
    let r = app
        .call(
            &jonas,
            "request_elevation",
            &[("role", "prod-db-write"), ("justification", WHY), ("ticket", "OPS-9")],
        )
        .await;
    let active = r.text().await.unwrap();
    assert_eq!(
        app.call(&maya, "decide_elevation", &[("id", &active), ("decision", "approve")])
            .await
            .status(),
        StatusCode::OK
    );
    let r = app
        .call(
            &maya,
            "suspend_employee",
            &[("user_id", &jonas_id.to_string()), ("reason", "investigation")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let states: Vec<String> = sqlx::query("SELECT state FROM elevation_requests WHERE id IN (?, ?) ORDER BY id")
        .bind(pending.parse::<i64>().unwrap())
        .bind(active.parse::<i64>().unwrap())
        .fetch_all(app.state.db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| gatehouse::server::platform::db::text(r, "state").unwrap())
        .collect();
    assert_eq!(states, ["cancelled", "revoked"]);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM grants WHERE role = 'prod-db-write' AND revoked_at IS NULL")
            .await,
        0
    );
    app.verify_chain().await;
    app.cleanup().await;
}

const LENA: &str = "lena.fischer@sunridge-solar.example";
const TOM: &str = "tom.walsh@sunridge-solar.example";
const ADA: &str = "ada.nwosu@sunridge-solar.example";

async fn api(app: &TestApp, token: &str, path: &str, body: &Value) -> (StatusCode, Value) {
    let r = client()
        .post(app.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn pii_check(customer: Option<&str>) -> Value {
    let mut v = json!({ "employee": JONAS, "permission": "customers:read_pii", "resource": { "type": "customer", "id": "C" }, "purpose": "SUP-1234" });
    if let Some(c) = customer {
        v["customer_id"] = json!(c);
    }
    v
}

async fn customer_scoped_elevations_answer_only_for_their_customers_and_show_in_the_ticket_view(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (maya, _, _) = app.first_admin(ADMIN, PW).await;
    let maya_id = app.user_id(ADMIN).await;
    let (jonas, _, jonas_id) = app
        .employee(&maya, "Jonas Becker", JONAS, "support", &["support"])
        .await;
    let (ada, _, _) = app.employee(&maya, "Ada Nwosu", ADA, "audit", &["auditor"]).await;
    let svc = service_account(&app, &maya, "customer-api", &["access:check", "events:write"]).await;
    let token = api_token(&app, &maya, svc, "").await;

    // Bad scopes are refused and write nothing.
    let many: Vec<String> = (0..21).map(|i| format!("C-{i}")).collect();
    let r = app
        .call(
            &jonas,
            "request_elevation",
            &[
                ("role", "support-pii"),
                ("justification", WHY),
                ("ticket", "SUP-1234"),
                ("customers", &many.join(",")),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .call(
            &jonas,
            "request_elevation",
            &[
                ("role", "prod-db-write"),
                ("justification", WHY),
                ("ticket", "OPS-1"),
                ("customers", "1042"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_message(&r.text().await.unwrap()).contains("cannot be limited to customers"));
    assert_eq!(app.count("SELECT COUNT(*) FROM elevation_requests").await, 0);

    let r = app
        .call(
            &jonas,
            "request_elevation",
            &[
                ("role", "support-pii"),
                ("justification", WHY),
                ("ticket", "SUP-1234"),
                ("customers", " 1042 , 1042"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let id = r.text().await.unwrap();
    assert_eq!(
        mine(&app, &jonas).await[0]["customers"],
        json!(["1042"]),
        "trimmed, duplicates dropped"
    );
    let r = app
        .call(&maya, "decide_elevation", &[("id", &id), ("decision", "approve")])
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let grant: i64 = app
        .count(&format!("SELECT grant_id FROM elevation_requests WHERE id = {id}"))
        .await;

    // The access check allows PII for customer 1042 only.
    let (s, body) = api(&app, &token, "/api/v1/access-checks", &pii_check(Some("1042"))).await;
    assert_eq!(
        (s, body["decision"].as_str()),
        (StatusCode::OK, Some("allow")),
        "{body}"
    );
    assert_eq!(body["grant"]["id"], grant);
    let (_, body) = api(&app, &token, "/api/v1/access-checks", &pii_check(Some("1043"))).await;
    assert_eq!(body["decision"], "deny");
    assert_eq!(body["reason"], "customers:read_pii is granted only for other customers");
    let (_, body) = api(&app, &token, "/api/v1/access-checks", &pii_check(None)).await;
    assert_eq!(body["decision"], "deny", "a check naming no customer is not covered");
    // Nor does it open Gatehouse's own screens.
    assert!(!app.perms(&jonas).await.contains(&"customers:read_pii".to_string()));

    // The backend reports what it read, naming the grant; a grant of
    // somebody else is refused and nothing is stored.
    let event = |g: i64| json!({ "events": [{ "employee": jonas_id, "action": "customer.view", "customer_id": "1042", "fields": ["address", "phone"], "source_system": "support-desk", "occurred_at": "2020-11-01T10:00:00Z", "grant_id": g }] });
    let maya_grant: i64 = app
        .count(&format!(
            "SELECT id FROM grants WHERE user_id = {maya_id} ORDER BY id LIMIT 1"
        ))
        .await;
    let before = app.count("SELECT COUNT(*) FROM audit_events").await;
    let (s, body) = api(&app, &token, "/api/v1/audit-events", &event(maya_grant)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["error"], "events[0].grant_id: not a grant of this employee",
        "{body}"
    );
    let (s, _) = api(&app, &token, "/api/v1/audit-events", &json!({ "events": [{ "employee": jonas_id, "action": "customer.view", "customer_id": "1042", "source_system": "x", "occurred_at": "2020-11-01T10:00:00Z", "grant_id": 0 }] })).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events").await,
        before,
        "nothing written"
    );
    let (s, body) = api(&app, &token, "/api/v1/audit-events", &event(grant)).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");

    // The ticket view: everything done under the elevation's grant.
    assert_eq!(
        app.call(&jonas, "elevation_ticket", &[("id", &id)]).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(&maya, "elevation_ticket", &[("id", &id)]).await.status(),
        StatusCode::FORBIDDEN,
        "administrators do not read the trail"
    );
    let r = app.call(&ada, "elevation_ticket", &[("id", &id)]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["elevation"]["ticket"], "SUP-1234");
    let events = t["events"].as_array().unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["elevation.approved", "access.check", "data.access"], "{t}");
    assert_eq!(events[1]["customer_id"], "1042");
    assert_eq!(events[1]["what"], "customers:read_pii");
    assert_eq!(events[2]["what"], "customer.view (address, phone)");
    assert_eq!(events[2]["source"], "support-desk");
    let history: Value = app.call(&ada, "elevation_history", &[]).await.json().await.unwrap();
    assert_eq!(history[0]["id"].to_string(), id);
    assert_eq!(
        app.get(&ada, &format!("/audit/elevations/{id}")).await.status(),
        StatusCode::OK
    );

    // It still ends at its instant, for its customer too.
    let end: i64 = app
        .count(&format!("SELECT window_end FROM elevation_requests WHERE id = {id}"))
        .await;
    app.clock.set(end);
    let (_, body) = api(&app, &token, "/api/v1/access-checks", &pii_check(Some("1042"))).await;
    assert_eq!(body["decision"], "deny");
    app.verify_chain().await;
    app.cleanup().await;
}

async fn approval_policies_name_approvers_and_need_two_approvals(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (maya, _, _) = app.first_admin(ADMIN, PW).await;
    let maya_id = app.user_id(ADMIN).await;
    let (jonas, _, _) = app
        .employee(&maya, "Jonas Becker", JONAS, "support", &["support"])
        .await;
    let (lena, _, lena_id) = app.employee(&maya, "Lena Fischer", LENA, "support", &["support"]).await;
    let (tom, _, _) = app.employee(&maya, "Tom Walsh", TOM, "support", &["support"]).await;
    app.employee(&maya, "Ada Nwosu", ADA, "audit", &["auditor"]).await;
    let set = |needed: &'static str, approvers: String| {
        let maya = maya.clone();
        let app = &app;
        async move {
            app.call(
                &maya,
                "set_approval_policy",
                &[
                    ("role", "support-pii"),
                    ("approvals_needed", needed),
                    ("approvers", &approvers),
                ],
            )
            .await
        }
    };

    // Refused policies write nothing.
    assert_eq!(set("3", String::new()).await.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        set("2", LENA.into()).await.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "two approvals need two named approvers"
    );
    assert_eq!(
        set("1", "nobody@sunridge-solar.example".into()).await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let r = set("1", ADA.into()).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_message(&r.text().await.unwrap()).contains("auditor"));
    let r = app
        .call(
            &lena,
            "set_approval_policy",
            &[("role", "support-pii"), ("approvals_needed", "1")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT COUNT(*) FROM approval_policies").await, 0);

    let r = set("2", format!("{}, {ADMIN}", LENA.to_uppercase())).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert_eq!(app.audit_count("elevation.policy_changed", "success").await, 1);
    let policies: Value = app.call(&maya, "approval_policies", &[]).await.json().await.unwrap();
    let pii = policies
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["role"] == "support-pii")
        .unwrap();
    assert_eq!(pii["approvals_needed"], 2);
    let mut named: Vec<&str> = pii["approvers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    named.sort();
    assert_eq!(named, [LENA, ADMIN]);
    assert_eq!(app.me(&lena).await["named_approver"], true);

    let id = ask(&app, &jonas, "", WHY, "SUP-1234").await.text().await.unwrap();
    // Tom holds no requests:approve and is not named: refused, recorded.
    let denied = app.audit_count("authz.denied", "denied").await;
    assert_eq!(
        app.call(&tom, "elevation_queue", &[]).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(&tom, "decide_elevation", &[("id", &id), ("decision", "approve")])
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.audit_count("authz.denied", "denied").await, denied + 2);
    // Lena is named: she sees it and her approval counts, but one is not enough.
    let q: Value = app.call(&lena, "elevation_queue", &[]).await.json().await.unwrap();
    assert_eq!(
        (q[0]["can_decide"].as_bool(), q[0]["approvals_needed"].as_i64()),
        (Some(true), Some(2)),
        "{q}"
    );
    let r = app
        .call(&lena, "decide_elevation", &[("id", &id), ("decision", "approve")])
        .await;
    assert_eq!(r.text().await.unwrap(), "\"pending\"");
    assert!(!app.perms(&jonas).await.contains(&"customers:read_pii".to_string()));
    let r = app
        .call(&lena, "decide_elevation", &[("id", &id), ("decision", "approve")])
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT, "the same person twice");
    let r = app
        .call(&maya, "decide_elevation", &[("id", &id), ("decision", "approve")])
        .await;
    assert_eq!(r.text().await.unwrap(), "\"approved\"");
    assert!(app.perms(&jonas).await.contains(&"customers:read_pii".to_string()));
    assert_eq!(app.audit_count("elevation.approval_recorded", "success").await, 1);
    let row = sqlx::query(&format!("SELECT approvals FROM elevation_requests WHERE id = {id}"))
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    let approvals = gatehouse::server::platform::db::text(&row, "approvals").unwrap();
    assert_eq!(approvals, format!("{lena_id},{maya_id}"));

    // Named approvers replace the permission: an administrator not on the
    // list is refused for this role.
    assert_eq!(set("1", LENA.into()).await.status(), StatusCode::OK);
    let r = app
        .call(
            &jonas,
            "request_elevation",
            &[("role", "prod-db-write"), ("justification", WHY), ("ticket", "OPS-9")],
        )
        .await;
    let other = r.text().await.unwrap();
    assert_eq!(
        app.call(&maya, "decide_elevation", &[("id", &other), ("decision", "approve")])
            .await
            .status(),
        StatusCode::OK,
        "prod-db-write keeps the default policy"
    );
    let r = app
        .call(
            &maya,
            "request_elevation",
            &[("role", "support-pii"), ("justification", WHY), ("ticket", "SUP-9")],
        )
        .await;
    let mayas = r.text().await.unwrap();
    let r = app
        .call(&jonas, "decide_elevation", &[("id", &mayas), ("decision", "approve")])
        .await;
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "the requester's colleague without the permission or a name"
    );
    let r = app
        .call(
            &lena,
            "decide_elevation",
            &[
                ("id", &mayas),
                ("decision", "deny"),
                ("reason", "not needed for this ticket"),
            ],
        )
        .await;
    assert_eq!(r.text().await.unwrap(), "\"denied\"");
    app.verify_chain().await;
    app.cleanup().await;
}

async fn an_active_elevation_is_extended_once_through_approval(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (maya, _, _) = app.first_admin(ADMIN, PW).await;
    let (jonas, _, jonas_id) = app
        .employee(&maya, "Jonas Becker", JONAS, "support", &["support"])
        .await;
    let (lena, _, _) = app.employee(&maya, "Lena Fischer", LENA, "support", &["support"]).await;
    let extend = |c: &Client, of: &str, duration: &'static str| {
        let (c, of, app) = (c.clone(), of.to_owned(), &app);
        async move {
            app.call(
                &c,
                "request_elevation",
                &[
                    ("role", "support-pii"),
                    ("duration", duration),
                    ("justification", WHY),
                    ("ticket", "SUP-1234"),
                    ("extends", &of),
                ],
            )
            .await
        }
    };

    let id = ask(&app, &jonas, "1h", WHY, "SUP-1234").await.text().await.unwrap();
    // Not active yet: nothing to extend.
    assert_eq!(
        extend(&jonas, &id, "1h").await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.call(&maya, "decide_elevation", &[("id", &id), ("decision", "approve")])
            .await
            .status(),
        StatusCode::OK
    );
    let end: i64 = app
        .count(&format!("SELECT window_end FROM elevation_requests WHERE id = {id}"))
        .await;
    assert_eq!(mine(&app, &jonas).await[0]["extendable"], true);
    // Only the requester's own.
    let r = app
        .call(
            &lena,
            "request_elevation",
            &[
                ("role", "support-pii"),
                ("justification", WHY),
                ("ticket", "SUP-1234"),
                ("extends", &id),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // A denied extension does not use up the one allowed.
    let denied = extend(&jonas, &id, "1h").await.text().await.unwrap();
    let r = app
        .call(
            &maya,
            "decide_elevation",
            &[
                ("id", &denied),
                ("decision", "deny"),
                ("reason", "finish within the hour"),
            ],
        )
        .await;
    assert_eq!(r.text().await.unwrap(), "\"denied\"");
    let r = extend(&jonas, &id, "2h").await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let ext = r.text().await.unwrap();
    assert_eq!(app.audit_count("elevation.extension_requested", "success").await, 2);
    assert_eq!(
        extend(&jonas, &id, "1h").await.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "one extension at a time"
    );
    let r = app
        .call(&maya, "decide_elevation", &[("id", &ext), ("decision", "approve")])
        .await;
    assert_eq!(r.text().await.unwrap(), "\"approved\"");
    // It follows on from the first window without a gap.
    let (start, new_end): (i64, i64) = (
        app.count(&format!("SELECT window_start FROM elevation_requests WHERE id = {ext}"))
            .await,
        app.count(&format!("SELECT window_end FROM elevation_requests WHERE id = {ext}"))
            .await,
    );
    assert_eq!((start, new_end), (end, end + 2 * 3_600_000));
    use gatehouse::domain::permissions::Permission;
    let holds = |at: i64| {
        let pool = app.state.db.pool().clone();
        async move {
            gatehouse::server::access::authz::permissions_at(&pool, jonas_id, at)
                .await
                .unwrap()
                .contains(Permission::CustomersReadPii)
        }
    };
    assert!(holds(end).await, "no gap at the first end");
    assert!(holds(new_end - 1).await);
    assert!(!holds(new_end).await);
    // Once only.
    let r = extend(&jonas, &id, "1h").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_message(&r.text().await.unwrap()).contains("not extended before"));
    let r = extend(&jonas, &ext, "1h").await;
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "an extension is not extended again (it has not started either)"
    );

    // Revoking the elevation ends its approved extension too.
    let r = app
        .call(
            &maya,
            "revoke_elevation",
            &[("id", &id), ("reason", "ticket closed early")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert!(!holds(end).await);
    let now = app.clock.now();
    assert!(!holds(now).await);
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM elevation_requests WHERE id = {ext} AND state = 'revoked'"
        ))
        .await,
        1
    );
    app.verify_chain().await;
    app.cleanup().await;
}

async fn engineers_break_the_glass_and_someone_else_reviews_it(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (maya, _, _) = app.first_admin(ADMIN, PW).await;
    let (jonas, _, _) = app
        .employee(&maya, "Jonas Becker", JONAS, "support", &["support"])
        .await;
    let (eng, eng_key, eng_id) = app
        .employee(
            &maya,
            "Priya Raman",
            "priya.raman@sunridge-solar.example",
            "engineering",
            &["engineer"],
        )
        .await;
    const OUTAGE: &str = "payments API down, need prod database to fix stuck orders";

    // Not for support staff: refused and recorded.
    app.clock.advance(31_000);
    let r = app
        .call(&jonas, "break_glass", &[("justification", OUTAGE), ("code", "000000")])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.audit_count("elevation.breakglass", "denied").await, 1);
    // A code is always needed, however fresh the session; at most an hour.
    let r = app.call(&eng, "break_glass", &[("justification", OUTAGE)]).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = app
        .call(
            &eng,
            "break_glass",
            &[
                ("justification", OUTAGE),
                ("duration", "2h"),
                ("code", &app.code(&eng_key)),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .call(&eng, "break_glass", &[("justification", OUTAGE), ("code", "123456")])
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "a wrong code");
    assert_eq!(app.count("SELECT COUNT(*) FROM elevation_requests").await, 0);

    let r = app
        .call(
            &eng,
            "break_glass",
            &[
                ("justification", OUTAGE),
                ("duration", "30m"),
                ("code", &app.code(&eng_key)),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let id = r.text().await.unwrap();
    let perms = app.perms(&eng).await;
    assert!(
        perms.contains(&"prod_db:write".to_string()) && perms.contains(&"customers:read_pii".to_string()),
        "{perms:?}"
    );
    app.clock.advance(31_000);
    let r = app
        .call(
            &eng,
            "break_glass",
            &[("justification", OUTAGE), ("code", &app.code(&eng_key))],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT, "already active");
    // Administrators and auditors are alerted, and told in the app.
    let n: Value = app.call(&maya, "my_notifications", &[]).await.json().await.unwrap();
    assert!(
        n[0]["subject"]
            .as_str()
            .unwrap()
            .starts_with("Break-glass: Priya Raman activated emergency access for 30 minutes"),
        "{n}"
    );
    let n: Value = app.call(&jonas, "my_notifications", &[]).await.json().await.unwrap();
    assert_eq!(n, json!([]), "support staff are not told");
    gatehouse::server::audit::alerts::scan(&app.state).await.unwrap();
    assert_eq!(
        app.count("SELECT COUNT(*) FROM alerts WHERE rule = 'breakglass'").await,
        1
    );

    // Flagged until someone else records the review.
    let q: Value = app.call(&maya, "elevation_queue", &[]).await.json().await.unwrap();
    let item = q
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"].as_i64() == id.parse().ok())
        .expect("in the queue");
    assert_eq!(
        (item["kind"].as_str(), item["needs_review"].as_bool()),
        (Some("breakglass"), Some(true))
    );
    assert_eq!(
        app.call(
            &eng,
            "review_breakglass",
            &[("id", &id), ("note", "all fine, I fixed it myself")]
        )
        .await
        .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(&maya, "review_breakglass", &[("id", &id), ("note", "ok")])
            .await
            .status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // It ends by itself after 30 minutes.
    use gatehouse::domain::permissions::Permission;
    let end: i64 = app
        .count(&format!("SELECT window_end FROM elevation_requests WHERE id = {id}"))
        .await;
    assert!(
        !gatehouse::server::access::authz::permissions_at(app.state.db.pool(), eng_id, end)
            .await
            .unwrap()
            .contains(Permission::ProdDbWrite)
    );
    let note = "root cause: expired TLS certificate on the payments API; access used for 12 minutes";
    assert_eq!(
        app.call(&maya, "review_breakglass", &[("id", &id), ("note", note)])
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.call(&maya, "review_breakglass", &[("id", &id), ("note", note)])
            .await
            .status(),
        StatusCode::CONFLICT,
        "once"
    );
    assert_eq!(app.audit_count("elevation.breakglass_reviewed", "success").await, 1);
    let q: Value = app.call(&maya, "elevation_queue", &[]).await.json().await.unwrap();
    assert!(q.as_array().unwrap().iter().all(|e| e["needs_review"] == false));
    let _ = eng_id;
    app.verify_chain().await;
    app.cleanup().await;
}
