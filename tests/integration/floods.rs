//! Anonymous floods: requests to `/api/v1` and `/scim/v2` without a valid
//! token are throttled per client address (60 a minute, then 429 with
//! Retry-After) and recorded as one summary event per address and minute,
//! with the count and the first and last time, never one row each.
//! Refusals of a valid token stay individual. SQLite and MySQL.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const ADMIN: &str = "maya.okafor@sunridge-solar.example";
const PW: &str = "violet harbour lantern 42";

on_both!(anonymous_floods_are_summed_not_logged_one_by_one);

async fn anonymous_floods_are_summed_not_logged_one_by_one(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (admin, _, _) = app.first_admin(ADMIN, PW).await;
    let events = "SELECT COUNT(*) FROM audit_events";
    let before = app.count(events).await;

    // 10,000 requests without a valid token, 100 at a time: no token, a
    // malformed one, a well-formed unknown one; the API and SCIM.
    let c = client();
    let (mut unauthorized, mut throttled) = (0, 0);
    for round in 0..100 {
        let calls = (0..100).map(|i| {
            let req = match (round + i) % 3 {
                0 => c.post(app.url("/api/v1/access-checks")).json(&json!({})),
                1 => c.get(app.url("/scim/v2/Users")).bearer_auth("not-a-token"),
                _ => c
                    .post(app.url("/api/v1/audit-events"))
                    .bearer_auth("ghs_1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
                    .json(&json!({ "events": [] })),
            };
            async move { req.send().await.unwrap() }
        });
        for r in futures::future::join_all(calls).await {
            match r.status() {
                StatusCode::UNAUTHORIZED => unauthorized += 1,
                StatusCode::TOO_MANY_REQUESTS => {
                    let wait: i64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
                    assert!((1..=60).contains(&wait), "{wait}");
                    throttled += 1;
                }
                other => panic!("{other}: {}", r.text().await.unwrap()),
            }
        }
    }
    assert_eq!((unauthorized, throttled), (60, 9_940), "60 a minute, then 429");
    assert_eq!(app.count(events).await, before, "nothing written per request");

    // A refused valid token (wrong scope) stays an event of its own.
    let account = service_account(&app, &admin, "event-shipper", &["events:write"]).await;
    let token = api_token(&app, &admin, account, "").await;
    let r = client()
        .post(app.url("/api/v1/access-checks"))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let scoped = "SELECT COUNT(*) FROM audit_events WHERE action = 'api.auth' AND target_type = 'service_account'";
    assert_eq!(app.count(scoped).await, 1);

    // The minute over, the job folds it into one summary for the address.
    app.clock.advance(61_000);
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    let summaries = "SELECT COUNT(*) FROM audit_events WHERE action = 'api.auth' AND target_type = 'ip'";
    assert_eq!(app.count(summaries).await, 1);
    let row = sqlx::query("SELECT details FROM audit_events WHERE action = 'api.auth' AND target_type = 'ip'")
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    let details = gatehouse::server::platform::db::text(&row, "details").unwrap();
    let d: Value = serde_json::from_str(&details).unwrap();
    assert_eq!(d["count"], 10_000, "{d}");
    assert_eq!(d["throttled"], 9_940, "{d}");
    assert!(d["first_at"].as_i64().unwrap() <= d["last_at"].as_i64().unwrap());
    assert_eq!(
        d["reasons"]["no bearer token"].as_i64().unwrap()
            + d["reasons"]["malformed token"].as_i64().unwrap()
            + d["reasons"]["unknown, revoked or expired token"].as_i64().unwrap(),
        10_000,
        "{d}"
    );
    assert!(app.count(events).await - before <= 10, "a handful of rows in all");
    // A new minute: the address may try again.
    let r = client().get(app.url("/scim/v2/Users")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    app.verify_chain().await;
    app.cleanup().await;
}
