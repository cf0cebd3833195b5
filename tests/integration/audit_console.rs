//! The auditor console: filters, keyset pages that stay put while events
//! are appended, and verification on demand. SQLite and MySQL.

use crate::helpers::*;
use gatehouse::domain::actions::Action;
use gatehouse::domain::audit::{Actor, NewEvent, Outcome};
use reqwest::{Client, StatusCode};
use serde_json::Value;

on_both!(
    auditors_browse_filter_page_and_verify,
    reports_show_who_accessed_what_and_why
);

async fn browse(app: &TestApp, c: &Client, form: &[(&str, &str)]) -> Value {
    let r = app.call(c, "audit_browse", form).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

fn seqs(page: &Value) -> Vec<i64> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect()
}

async fn auditors_browse_filter_page_and_verify(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let people = gatehouse::server::seed::seed_demo(&app.state).await.unwrap();
    let who = |role: &str| people.iter().find(|p| p.1 == role).unwrap().clone();
    let (admin_email, _, admin_pw) = who("admin");
    let (auditor_email, _, auditor_pw) = who("auditor");
    let (admin, _) = app.sign_in_enrolling(&admin_email, &admin_pw).await;
    let (auditor, _) = app.sign_in_enrolling(&auditor_email, &auditor_pw).await;
    let jonas = app.user_id("jonas.becker@sunridge-solar.example").await;
    let r = app
        .call(
            &admin,
            "grant_role",
            &[
                ("user_id", &jonas.to_string()),
                ("role", "support-pii"),
                ("reason", "SUP-4711 refund"),
                ("expires_in", "1h"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    for i in 0..120 {
        let e = NewEvent::new(
            Action::DataAccess,
            Outcome::Success,
            Actor {
                user_id: Some(jonas),
                ..Default::default()
            },
        )
        .customer(format!("C-{}", i % 3))
        .reason(format!("ticket 100% SUP-{i}"));
        app.state.recorder.record(app.clock.now(), e).await.unwrap();
    }

    // Newest first, 50 a page, with a key for the next one.
    let p1 = browse(&app, &auditor, &[]).await;
    let s1 = seqs(&p1);
    assert_eq!(s1.len(), 50);
    assert!(s1.windows(2).all(|w| w[0] > w[1]));
    let before = p1["next_before"].as_i64().unwrap();
    assert_eq!(before, *s1.last().unwrap());
    // Appends between pages do not move the next page.
    for _ in 0..5 {
        app.state
            .recorder
            .record(
                app.clock.now(),
                NewEvent::new(Action::DataAccess, Outcome::Success, Actor::default()).customer("C-9"),
            )
            .await
            .unwrap();
    }
    let p2 = browse(&app, &auditor, &[("before", &before.to_string())]).await;
    let s2 = seqs(&p2);
    assert_eq!(s2[0], before - 1);
    assert!(s2.iter().all(|s| *s < before));

    // Filters.
    let by_customer = browse(&app, &auditor, &[("customer", "C-1")]).await;
    assert_eq!(by_customer["events"].as_array().unwrap().len(), 40);
    assert!(by_customer["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["customer_id"] == "C-1"));
    let grants = browse(
        &app,
        &auditor,
        &[
            ("action", "grant.created"),
            ("employee", "jonas.becker@sunridge-solar.example"),
        ],
    )
    .await;
    assert_eq!(grants["events"].as_array().unwrap().len(), 1);
    assert!(grants["events"][0]["details"].as_str().unwrap().contains("support-pii"));
    let text = browse(&app, &auditor, &[("text", "100% sup-11"), ("customer", "C-2")]).await;
    // SUP-11, 110, 113, 116 and 119 are the C-2 ones; "%" is matched literally, case-insensitively.
    assert_eq!(seqs(&text).len(), 5);
    assert!(
        browse(&app, &auditor, &[("text", "ticket 1_0")]).await["events"]
            .as_array()
            .unwrap()
            .is_empty(),
        "_ is literal too"
    );
    let denied = browse(&app, &auditor, &[("outcome", "denied")]).await;
    assert!(denied["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["outcome"] == "denied"));
    assert_eq!(
        app.call(&auditor, "audit_browse", &[("outcome", "maybe")])
            .await
            .status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.call(&auditor, "audit_browse", &[("from", "yesterday")])
            .await
            .status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let window = browse(
        &app,
        &auditor,
        &[("from", "2026-01-01T00:00"), ("to", "2026-01-01T00:00")],
    )
    .await;
    assert!(window["events"].as_array().unwrap().is_empty());
    // Administrators cannot read the trail.
    assert_eq!(
        app.call(&admin, "audit_browse", &[]).await.status(),
        StatusCode::FORBIDDEN
    );

    // CSV export of the same filters, for audit:export holders only.
    let r = auditor
        .get(app.url("/audit/export.csv?customer=C-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment; filename=\"gatehouse-audit-"));
    let csv = r.text().await.unwrap();
    let mut lines = csv.split("\r\n").filter(|l| !l.is_empty());
    assert_eq!(
        lines.next(),
        Some("seq,time_utc,actor,action,outcome,customer_id,target,reason,details,hash")
    );
    let rows: Vec<&str> = csv.split("\r\n").filter(|l| l.contains("ticket 100%")).collect();
    assert_eq!(rows.len(), 40);
    assert!(rows.iter().all(|l| l.contains(",C-1,")));
    assert_eq!(app.audit_count("audit.exported", "success").await, 1);
    let r = admin.get(app.url("/audit/export.csv")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        client()
            .get(app.url("/audit/export.csv"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        auditor
            .get(app.url("/audit/export.csv?outcome=maybe"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // More than one page of a thousand streams whole, newest first.
    for i in 0..1500 {
        let e = NewEvent::new(Action::DataAccess, Outcome::Success, Actor::default())
            .customer("C-BULK")
            .reason(format!("=cmd|{i}"));
        app.state.recorder.record(app.clock.now(), e).await.unwrap();
    }
    let csv = auditor
        .get(app.url("/audit/export.csv?customer=C-BULK"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let rows: Vec<&str> = csv.split("\r\n").filter(|l| l.contains("C-BULK")).collect();
    assert_eq!(rows.len(), 1500);
    assert!(rows[0].contains("'=cmd|1499"), "formulas are defused: {}", rows[0]);
    assert!(rows[1499].contains("'=cmd|0"));

    // Verification on demand finds tampering and names the event.
    let v: Value = app.call(&auditor, "audit_verify", &[]).await.json().await.unwrap();
    assert_eq!(v["ok"], true, "{v}");
    let victim = s1[10];
    sqlx::query("DROP TRIGGER audit_events_no_update")
        .execute(app.state.db.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE audit_events SET reason = 'nothing to see' WHERE seq = ?")
        .bind(victim)
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let v: Value = app.call(&auditor, "audit_verify", &[]).await.json().await.unwrap();
    assert_eq!(v["ok"], false);
    assert!(
        v["message"].as_str().unwrap().contains(&format!("event {victim}")),
        "{v}"
    );
    app.cleanup().await;
}

async fn report(app: &TestApp, c: &Client, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let r = app.call(c, "audit_report", form).await;
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The reports read what the APIs recorded: checks (with the grant that
/// allowed them) and accesses reported by other systems.
async fn reports_show_who_accessed_what_and_why(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let people = gatehouse::server::seed::seed_demo(&app.state).await.unwrap();
    let who = |role: &str| people.iter().find(|p| p.1 == role).unwrap().clone();
    let (admin, _) = app.sign_in_enrolling(&who("admin").0, &who("admin").2).await;
    let (auditor, _) = app.sign_in_enrolling(&who("auditor").0, &who("auditor").2).await;
    let jonas = app.user_id("jonas.becker@sunridge-solar.example").await;
    let r = app
        .call(
            &admin,
            "grant_role",
            &[
                ("user_id", &jonas.to_string()),
                ("role", "support-pii"),
                ("reason", "SUP-4711 refund"),
                ("expires_in", "1h"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .call(
            &admin,
            "create_service_account",
            &[
                ("name", "customer-api"),
                ("scopes[]", "access:check"),
                ("scopes[]", "events:write"),
            ],
        )
        .await;
    let account: i64 = r.text().await.unwrap().parse().unwrap();
    let r = app
        .call(
            &admin,
            "create_api_token",
            &[("account_id", &account.to_string()), ("label", "prod")],
        )
        .await;
    let token = r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    let api = client();
    let check = |permission: &'static str, customer: &'static str, purpose: &'static str| {
        let api = api.clone();
        let token = token.clone();
        let url = app.url("/api/v1/access-checks");
        async move {
            let body = serde_json::json!({ "employee": "jonas.becker@sunridge-solar.example", "permission": permission,
                "resource": { "type": "customer", "id": customer }, "customer_id": customer, "purpose": purpose });
            let r = api.post(url).bearer_auth(token).json(&body).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
        }
    };
    check("customers:read_pii", "C-1042", "SUP-4711 refund").await;
    check("customers:read", "C-7", "SUP-4712").await;
    check("prod_db:write", "C-1042", "curious").await; // denied
    let r = api
        .post(app.url("/api/v1/audit-events"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "events": [{ "employee": jonas, "action": "customer.view", "customer_id": "C-1042", "fields": ["address"],
            "purpose": "SUP-4711 call back", "source_system": "support-desk", "occurred_at": "2026-01-01T00:00:00Z" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await.unwrap());

    // The trail filters by source: the service that asked or reported, or
    // the system a report named.
    let r = app.call(&auditor, "audit_browse", &[("source", "support-desk")]).await;
    let by_system: Value = r.json().await.unwrap();
    assert_eq!(by_system["events"].as_array().unwrap().len(), 1);
    let r = app.call(&auditor, "audit_browse", &[("source", "customer-api")]).await;
    let by_service: Value = r.json().await.unwrap();
    assert_eq!(
        by_service["events"].as_array().unwrap().len(),
        4,
        "three checks and the reported batch"
    );
    let r = app.call(&auditor, "audit_browse", &[("source", "support_desk")]).await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["events"].as_array().unwrap().len(),
        0,
        "_ is not a wildcard"
    );

    // Who accessed customer C-1042: three accesses, newest first, each with
    // employee, purpose and what allowed it.
    let (status, p) = report(&app, &auditor, &[("kind", "customer"), ("customer", "C-1042")]).await;
    assert_eq!(status, StatusCode::OK, "{p}");
    let rows = p["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{p}");
    assert_eq!(rows[0]["decision"], "reported");
    assert_eq!(rows[0]["what"], "customer.view: address");
    assert_eq!(rows[0]["source"], "support-desk");
    assert_eq!(rows[1]["decision"], "deny");
    assert_eq!(rows[2]["decision"], "allow");
    assert!(
        rows[2]["grant"].as_str().unwrap().starts_with("support-pii (grant "),
        "{}",
        rows[2]
    );
    assert_eq!(rows[2]["purpose"], "SUP-4711 refund");
    assert!(rows.iter().all(|r| r["employee"].as_str().unwrap().contains("Jonas")));
    // What Jonas accessed: all four; denied checks: one.
    let (_, p) = report(
        &app,
        &auditor,
        &[
            ("kind", "employee"),
            ("employee", "jonas.becker@sunridge-solar.example"),
        ],
    )
    .await;
    assert_eq!(p["rows"].as_array().unwrap().len(), 4, "{p}");
    let (_, p) = report(&app, &auditor, &[("kind", "denied")]).await;
    assert_eq!(p["rows"].as_array().unwrap().len(), 1);
    assert_eq!(p["rows"][0]["what"], "prod_db:write on customer C-1042");
    // A period that ends before them holds nothing.
    let (_, p) = report(
        &app,
        &auditor,
        &[
            ("kind", "employee"),
            ("employee", &jonas.to_string()),
            ("to", "2025-12-31T00:00"),
        ],
    )
    .await;
    assert_eq!(p["rows"].as_array().unwrap().len(), 0);
    // Bad questions are refused.
    for form in [
        vec![("kind", "everything")],
        vec![("kind", "customer")],
        vec![("kind", "employee"), ("employee", "nobody@example.com")],
        vec![("kind", "denied"), ("from", "soon")],
    ] {
        let (status, body) = report(&app, &auditor, &form).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{form:?} {body}");
    }

    // As CSV (audit:export), recorded; the page renders for auditors.
    let r = auditor
        .get(app.url("/audit/report.csv?kind=customer&customer=C-1042"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csv = r.text().await.unwrap();
    assert!(
        csv.starts_with("seq,time_utc,employee,access,customer_id,purpose,grant,decision,source\r\n"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 4);
    assert!(csv.contains("support-pii (grant "));
    let r = auditor
        .get(app.url("/audit/report.csv?kind=bogus"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.audit_count("audit.exported", "success").await, 1);
    let r = auditor
        .get(app.url("/audit/reports?kind=customer&customer=C-1042"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("SUP-4711 refund") && html.contains("id=\"report-csv\""),
        "report rendered on the server"
    );
    app.verify_chain().await;
    app.cleanup().await;
}
