//! Anomaly alerts from real traffic: access checks and reported accesses
//! through the API, failed sign-ins, a breakglass grant. The job judges each
//! event once; administrators and auditors acknowledge with a comment.
//! SQLite and MySQL.

use crate::helpers::*;
use gatehouse::domain::actions::Action;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

on_both!(
    anomalies_raise_alerts_once_and_are_acknowledged,
    nobody_acknowledges_an_alert_about_themselves,
    alerts_are_posted_signed_to_the_webhook,
    customer_counts_survive_a_restart_and_slide_with_the_hour,
    a_burst_raises_one_alert_that_counts,
);

const JONAS: &str = "jonas.becker@sunridge-solar.example";

async fn open_rules(app: &TestApp, c: &Client) -> Vec<String> {
    let r = app.call(c, "alerts", &[]).await;
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    let all: Vec<Value> = serde_json::from_str(&body).unwrap();
    let mut rules: Vec<String> = all
        .iter()
        .filter(|a| a["acknowledged_at"].is_null())
        .map(|a| a["rule"].as_str().unwrap().to_owned())
        .collect();
    rules.sort();
    rules
}

async fn anomalies_raise_alerts_once_and_are_acknowledged(b: Backend) {
    // Three customers an hour at most; night is 23:00 to midnight UTC; three
    // failed sign-ins. Tests start at 00:00:10 UTC.
    let app = TestApp::spawn_with(
        &b,
        &[
            ("GATEHOUSE_ALERT_CUSTOMERS_PER_HOUR", "3"),
            ("GATEHOUSE_ALERT_NIGHT", "23-0"),
            ("GATEHOUSE_ALERT_FAILED_SIGNINS", "3"),
        ],
    )
    .await;
    let people = gatehouse::server::seed::seed_demo(&app.state).await.unwrap();
    let who = |role: &str| people.iter().find(|p| p.1 == role).unwrap().clone();
    let (admin, _) = app.sign_in_enrolling(&who("admin").0, &who("admin").2).await;
    let (auditor, _) = app.sign_in_enrolling(&who("auditor").0, &who("auditor").2).await;
    let (engineer, _) = app.sign_in_enrolling(&who("engineer").0, &who("engineer").2).await;
    // Nothing unusual yet.
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    assert_eq!(open_rules(&app, &auditor).await, Vec::<String>::new());

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
    let check = |permission: &'static str, customer: String| {
        let (url, token) = (app.url("/api/v1/access-checks"), token.clone());
        async move {
            let body = json!({ "employee": JONAS, "permission": permission, "resource": { "type": "customer", "id": customer }, "customer_id": customer });
            let r = client().post(url).bearer_auth(token).json(&body).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
        }
    };
    // Four distinct customers in an hour (the same one twice in between).
    for c in ["C-1", "C-2", "C-2", "C-3", "C-4", "C-4", "C-5"] {
        check("customers:read", c.to_owned()).await;
    }
    // A denied PII check.
    check("customers:read_pii", "C-9".into()).await;
    // Three wrong passwords for Jonas.
    for _ in 0..3 {
        let r = app
            .call(
                &client(),
                "sign_in",
                &[("email", JONAS), ("password", "not the password at all")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // A breakglass grant.
    let priya = app.user_id("priya.raman@sunridge-solar.example").await;
    let r = app
        .call(
            &admin,
            "grant_role",
            &[
                ("user_id", &priya.to_string()),
                ("role", "breakglass"),
                ("reason", "INC-7 outage"),
                ("expires_in", "1h"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // A reported access that happened at 23:30 the evening before (night).
    let jonas = app.user_id(JONAS).await;
    let r = client()
        .post(app.url("/api/v1/audit-events"))
        .bearer_auth(&token)
        .json(&json!({ "events": [{ "employee": jonas, "action": "customer.view", "customer_id": "C-1", "source_system": "support-desk",
                                   "occurred_at": "2025-12-31T23:30:00Z" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    let expected = vec![
        "after_hours",
        "breakglass",
        "failed_signins",
        "many_customers",
        "pii_denied",
    ];
    assert_eq!(open_rules(&app, &auditor).await, expected);
    assert_eq!(open_rules(&app, &admin).await, expected, "administrators see them too");
    assert_eq!(
        app.audit_count("alert.raised", "success").await,
        5,
        "each alert is in the audit chain"
    );
    // Judged once: running the job again raises nothing new.
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM alerts").await, 5);

    // Acknowledged with a comment; recorded; not twice; not by others.
    let all: Vec<Value> = app.call(&auditor, "alerts", &[]).await.json().await.unwrap();
    let id = all.iter().find(|a| a["rule"] == "many_customers").unwrap()["id"].to_string();
    assert_eq!(
        all.iter().find(|a| a["rule"] == "many_customers").unwrap()["employee"]
            .as_str()
            .map(|s| s.contains("Jonas")),
        Some(true)
    );
    let r = app
        .call(&auditor, "acknowledge_alert", &[("id", &id), ("comment", "")])
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .call(
            &engineer,
            "acknowledge_alert",
            &[("id", &id), ("comment", "looks fine")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .call(
            &auditor,
            "acknowledge_alert",
            &[("id", &id), ("comment", "Ticket SUP-88: bulk callback list, expected")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .call(&admin, "acknowledge_alert", &[("id", &id), ("comment", "again")])
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = app
        .call(
            &auditor,
            "acknowledge_alert",
            &[("id", "999999"), ("comment", "nothing")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        open_rules(&app, &auditor).await,
        vec!["after_hours", "breakglass", "failed_signins", "pii_denied"]
    );
    assert_eq!(app.audit_count("alert.acknowledged", "success").await, 1);
    // Both pages carry the panel (its list loads in the browser; the
    // Chromium test acknowledges an alert there).
    for (c, path) in [(&admin, "/admin"), (&auditor, "/audit")] {
        let html = app.get(c, path).await.text().await.unwrap();
        assert!(html.contains("id=\"alerts\""), "{path}");
    }
    app.verify_chain().await;
    app.cleanup().await;
}

/// What a receiver got: the signature header, the body, the delivery id header.
pub(crate) type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>>;

/// A receiver on a free local port that records what it is sent; answers
/// 500 to the first request when `fail_first`.
pub(crate) async fn receiver(fail_first: bool) -> (String, Received) {
    let got: Received = Default::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                let header = |k: &str| {
                    headers
                        .get(k)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let mut list = seen.lock().unwrap();
                list.push((header("x-gatehouse-signature"), body, header("x-gatehouse-delivery")));
                if fail_first && list.len() == 1 {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/hook", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

async fn alerts_are_posted_signed_to_the_webhook(b: Backend) {
    use hmac::{Hmac, Mac};
    const SECRET: &str = "webhook-secret-0123456789";
    let (url, got) = receiver(true).await;
    let app = TestApp::spawn_with(
        &b,
        &[
            ("GATEHOUSE_ALERT_WEBHOOK_URL", &url),
            ("GATEHOUSE_ALERT_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1"),
            ("GATEHOUSE_ALERT_WEBHOOK_SECRET", SECRET),
        ],
    )
    .await;
    let people = gatehouse::server::seed::seed_demo(&app.state).await.unwrap();
    let admin_who = people.iter().find(|p| p.1 == "admin").unwrap().clone();
    let (admin, _) = app.sign_in_enrolling(&admin_who.0, &admin_who.2).await;
    let priya = app.user_id("priya.raman@sunridge-solar.example").await;
    let r = app
        .call(
            &admin,
            "grant_role",
            &[
                ("user_id", &priya.to_string()),
                ("role", "breakglass"),
                ("reason", "INC-9"),
                ("expires_in", "1h"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    // First attempt answered 500: not delivered, retried on the next run.
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    assert_eq!(got.lock().unwrap().len(), 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM alerts WHERE webhook_delivered_at IS NULL")
            .await,
        1
    );
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM alerts WHERE webhook_delivered_at IS NOT NULL")
            .await,
        1
    );
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "delivered once, never again");
    // The retry carries the same delivery id as the failed attempt.
    assert!(got[0].2.starts_with("alert-") && !got[0].2.is_empty(), "{:?}", got[0].2);
    assert_eq!(got[0].2, got[1].2, "a retry is the same delivery");

    // The body names the alert; the signature is HMAC-SHA256 over "t.body".
    let (sig, body, _) = &got[1];
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        (v["rule"].as_str(), v["employee_id"].as_i64()),
        (Some("breakglass"), Some(priya))
    );
    let (t, mac) = sig.strip_prefix("t=").unwrap().split_once(",v1=").unwrap();
    let mut expected = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    expected.update(format!("{t}.{body}").as_bytes());
    assert_eq!(mac, hex::encode(expected.finalize().into_bytes()));
    assert!(!body.contains(SECRET) && !sig.contains(SECRET));
    app.cleanup().await;
}

/// The many-customers rule counts from windows kept in memory: a new
/// process (no windows) rebuilds them from the trail and keeps counting,
/// and accesses older than an hour stop counting.
async fn customer_counts_survive_a_restart_and_slide_with_the_hour(b: Backend) {
    use gatehouse::domain::audit::{Actor, NewEvent, Outcome};
    let app = TestApp::spawn_with(
        &b,
        &[
            ("GATEHOUSE_ALERT_CUSTOMERS_PER_HOUR", "3"),
            ("GATEHOUSE_ALERT_NIGHT", "23-0"),
        ],
    )
    .await;
    gatehouse::server::seed::seed_demo(&app.state).await.unwrap();
    let jonas = app.user_id(JONAS).await;
    let access = |customer: &str| {
        let event = NewEvent::new(
            Action::DataAccess,
            Outcome::Success,
            Actor {
                user_id: Some(jonas),
                ..Default::default()
            },
        )
        .target("customer", customer)
        .customer(customer)
        .details(json!({ "action": "customer.view", "source_system": "support-desk" }));
        app.state.recorder.record(app.clock.now(), event)
    };
    let judge = || gatehouse::server::jobs::run_access_jobs(&app.state);
    let many = || app.count("SELECT COUNT(*) FROM alerts WHERE rule = 'many_customers'");
    for c in ["C-1", "C-2", "C-3", "C-2"] {
        access(c).await.unwrap();
        app.clock.advance(1_000);
    }
    judge().await;
    assert_eq!(many().await, 0, "three customers are allowed");
    // As in a new process: nothing in memory, the trail has to tell.
    *app.state.alert_windows.lock().await = None;
    access("C-4").await.unwrap();
    judge().await;
    assert_eq!(many().await, 1, "the fourth customer crosses the threshold");
    access("C-5").await.unwrap();
    judge().await;
    assert_eq!(many().await, 1, "raised once per crossing");

    // More than an hour later only the new hour counts.
    app.clock.advance(66 * 60_000);
    for c in ["C-1", "C-2", "C-3"] {
        access(c).await.unwrap();
        app.clock.advance(1_000);
    }
    judge().await;
    assert_eq!(many().await, 1, "three customers in the new hour");
    access("C-6").await.unwrap();
    judge().await;
    assert_eq!(many().await, 1, "the first is still open: it counts the new crossing");
    let count = "SELECT occurrences FROM alerts WHERE rule = 'many_customers'";
    assert_eq!(app.count(count).await, 2, "the fourth of the new hour crosses it again");
    app.cleanup().await;
}

async fn nobody_acknowledges_an_alert_about_themselves(b: Backend) {
    let app = TestApp::spawn_with(&b, &[("GATEHOUSE_ALERT_FAILED_SIGNINS", "3")]).await;
    let people = gatehouse::server::seed::seed_demo(&app.state).await.unwrap();
    let who = |role: &str| people.iter().find(|p| p.1 == role).unwrap().clone();
    let (admin, _) = app.sign_in_enrolling(&who("admin").0, &who("admin").2).await;
    let (auditor, _) = app.sign_in_enrolling(&who("auditor").0, &who("auditor").2).await;
    // Three wrong passwords on the auditor's own account.
    for _ in 0..3 {
        let r = app
            .call(
                &client(),
                "sign_in",
                &[("email", &who("auditor").0), ("password", "not the password at all")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    let all: Vec<Value> = app.call(&auditor, "alerts", &[]).await.json().await.unwrap();
    let alert = all
        .iter()
        .find(|a| a["rule"] == "failed_signins")
        .expect("an alert about the auditor");
    let id = alert["id"].to_string();
    let r = app
        .call(
            &auditor,
            "acknowledge_alert",
            &[("id", &id), ("comment", "that was me, typo")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(error_message(&r.text().await.unwrap()).contains("about you"));
    assert_eq!(open_rules(&app, &admin).await, vec!["failed_signins"]);
    assert_eq!(app.audit_count(Action::AlertAcknowledged.id(), "denied").await, 1);
    // Someone else may.
    let r = app
        .call(
            &admin,
            "acknowledge_alert",
            &[("id", &id), ("comment", "Called her: a typo after the holiday")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(open_rules(&app, &admin).await, Vec::<String>::new());
    app.verify_chain().await;
    app.cleanup().await;
}

/// A burst of night-time customer accesses raises one alert that counts
/// them, not one alert each: while it is open, each further match raises
/// its count and last-seen time and joins its list of events. The webhook
/// hears of it when raised and again only as the count crosses 10, 100 and
/// 1,000; once acknowledged, the next match raises a new alert.
async fn a_burst_raises_one_alert_that_counts(b: Backend) {
    use gatehouse::domain::audit::{Actor, NewEvent, Outcome};
    let (url, got) = receiver(false).await;
    let app = TestApp::spawn_with(
        &b,
        &[
            // Tests start at 00:00:10 UTC: night.
            ("GATEHOUSE_ALERT_NIGHT", "0-6"),
            ("GATEHOUSE_ALERT_WEBHOOK_URL", &url),
            ("GATEHOUSE_ALERT_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1"),
            ("GATEHOUSE_ALERT_WEBHOOK_SECRET", "webhook-secret-0123456789"),
        ],
    )
    .await;
    let people = gatehouse::server::seed::seed_demo(&app.state).await.unwrap();
    let who = |role: &str| people.iter().find(|p| p.1 == role).unwrap().clone();
    let (auditor, _) = app.sign_in_enrolling(&who("auditor").0, &who("auditor").2).await;
    let jonas = app.user_id(JONAS).await;
    // The same customer each time (the many-customers rule stays quiet).
    let burst = |n: usize| {
        let events: Vec<NewEvent> = (0..n)
            .map(|_| {
                let actor = Actor {
                    user_id: Some(jonas),
                    ..Default::default()
                };
                NewEvent::new(Action::DataAccess, Outcome::Success, actor)
                    .target("customer", "C-1")
                    .customer("C-1")
                    .details(json!({ "action": "customer.view", "source_system": "support-desk" }))
            })
            .collect();
        let app = &app;
        async move {
            app.clock.advance(1_000);
            let mut tx = app.state.db.begin_write().await.unwrap();
            gatehouse::server::audit::append(&mut tx, app.clock.now(), events)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            gatehouse::server::jobs::run_access_jobs(&app.state).await;
        }
    };
    let counts = || {
        got.lock()
            .unwrap()
            .iter()
            .map(|(_, body, _)| serde_json::from_str::<Value>(body).unwrap()["count"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    burst(1).await;
    assert_eq!(counts(), [1], "posted when raised");
    burst(8).await;
    assert_eq!(counts(), [1], "nine: no new call");
    burst(1).await;
    assert_eq!(counts(), [1, 10]);
    burst(89).await;
    assert_eq!(counts(), [1, 10]);
    burst(7_901).await;
    assert_eq!(counts(), [1, 10, 8_000], "100 and 1,000 crossed in one run: one call");

    assert_eq!(app.count("SELECT COUNT(*) FROM alerts").await, 1);
    assert_eq!(app.audit_count("alert.raised", "success").await, 1);
    let all: Vec<Value> = app.call(&auditor, "alerts", &[]).await.json().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["count"], 8_000, "{}", all[0]);
    assert_ne!(all[0]["last_seen_at"], all[0]["raised_at"], "{}", all[0]);
    let id = all[0]["id"].as_i64().unwrap();
    assert_eq!(
        app.count(&format!("SELECT COUNT(*) FROM alert_events WHERE alert_id = {id}"))
            .await,
        8_000
    );
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    assert_eq!(counts().len(), 3, "nothing new, nothing sent");

    // Acknowledged: the next match is a new case.
    let r = app
        .call(
            &auditor,
            "acknowledge_alert",
            &[
                ("id", &id.to_string()),
                ("comment", "night shift export, ticket SUP-91"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    burst(1).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM alerts").await, 2);
    assert_eq!(counts(), [1, 10, 8_000, 1]);
    app.verify_chain().await;
    app.cleanup().await;
}
