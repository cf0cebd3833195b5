//! The backend services' API: service accounts, bearer tokens with scopes,
//! and access checks recorded in the audit chain. SQLite and MySQL.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const ADMIN: &str = "maya.okafor@sunridge-solar.example";
const PW: &str = "violet harbour lantern 42";
const JONAS: &str = "jonas.becker@sunridge-solar.example";

on_both!(
    tokens_are_shown_once_scoped_and_revocable,
    access_checks_answer_and_record,
    bad_requests_are_refused_and_write_nothing,
    event_batches_are_stored_whole_once,
    changes_made_elsewhere_count_on_the_next_request,
);

async fn check(app: &TestApp, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
    let mut req = client().post(app.url("/api/v1/access-checks")).json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn read(customer: Option<&str>, permission: &str) -> Value {
    let mut v = json!({ "employee": JONAS, "permission": permission, "resource": { "type": "customer", "id": "C-1042" }, "purpose": "ticket SUP-77" });
    if let Some(c) = customer {
        v["customer_id"] = json!(c);
    }
    v
}

async fn tokens_are_shown_once_scoped_and_revocable(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (admin, admin_key, _) = app.first_admin(ADMIN, PW).await;
    app.employee(&admin, "Jonas Becker", JONAS, "support", &["support"])
        .await;
    let api = service_account(&app, &admin, "customer-api", &["access:check"]).await;
    let t = api_token(&app, &admin, api, "").await;
    assert!(t.starts_with("ghs_"), "{t}");
    // Only a hash is stored.
    // The whole secret: it may itself hold '_' (URL-safe base64).
    let secret = gatehouse::domain::service::parse_token(&t).unwrap().1;
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM api_tokens WHERE secret_hash = '{secret}'"
        ))
        .await,
        0
    );
    let listed: Value = app.call(&admin, "service_accounts", &[]).await.json().await.unwrap();
    assert!(!listed.to_string().contains(secret), "the list never shows a token");
    assert_eq!(listed[0]["tokens"][0]["last_used_at"], Value::Null);

    assert_eq!(
        check(&app, Some(&t), &read(None, "customers:read")).await.0,
        StatusCode::OK
    );
    let listed: Value = app.call(&admin, "service_accounts", &[]).await.json().await.unwrap();
    assert!(listed[0]["tokens"][0]["last_used_at"]
        .as_str()
        .unwrap()
        .ends_with("UTC"));

    // No token, a malformed one, a wrong secret: 401, counted for the
    // address's summary (folded into the trail once the minute is over).
    let denied = app.audit_count("api.auth", "denied").await;
    let r = client()
        .post(app.url("/api/v1/access-checks"))
        .json(&read(None, "customers:read"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers().get("www-authenticate").unwrap(), "Bearer");
    assert_eq!(
        check(&app, Some("ghs_nonsense"), &read(None, "customers:read")).await.0,
        StatusCode::UNAUTHORIZED
    );
    let forged = format!("{}{}", &t[..t.len() - 4], "AAAA");
    assert_eq!(
        check(&app, Some(&forged), &read(None, "customers:read")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.audit_count("api.auth", "denied").await, denied);

    // A token without the scope: 403, recorded on its own.
    let events = service_account(&app, &admin, "event-shipper", &["events:write"]).await;
    let et = api_token(&app, &admin, events, "").await;
    let (status, body) = check(&app, Some(&et), &read(None, "customers:read")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["error"].as_str().unwrap().contains("access:check"));
    assert_eq!(app.audit_count("api.auth", "denied").await, denied + 1);
    // The three anonymous refusals: one summary at the end of the minute.
    app.clock.advance(60_000);
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    assert_eq!(app.audit_count("api.auth", "denied").await, denied + 2);
    let row = sqlx::query("SELECT details FROM audit_events WHERE target_type = 'ip'")
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    let summary = gatehouse::server::platform::db::text(&row, "details").unwrap();
    assert_eq!(serde_json::from_str::<Value>(&summary).unwrap()["count"], 3);

    // Expiry and revocation take effect at once.
    let short = api_token(&app, &admin, api, "30m").await;
    assert_eq!(
        check(&app, Some(&short), &read(None, "customers:read")).await.0,
        StatusCode::OK
    );
    app.clock.advance(30 * 60_000);
    assert_eq!(
        check(&app, Some(&short), &read(None, "customers:read")).await.0,
        StatusCode::UNAUTHORIZED
    );
    let admin = app.sign_in(ADMIN, PW, &admin_key).await;
    let tid = t.split('_').nth(1).unwrap();
    assert_eq!(
        app.call(&admin, "revoke_api_token", &[("token_id", tid)])
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        check(&app, Some(&t), &read(None, "customers:read")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.audit_count("api_token.revoked", "success").await, 1);
    // Names and scopes are checked.
    let r = app
        .call(
            &admin,
            "create_service_account",
            &[("name", "Customer API"), ("scopes[]", "access:check")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .call(
            &admin,
            "create_service_account",
            &[("name", "x-api"), ("scopes[]", "root")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .call(
            &admin,
            "create_service_account",
            &[("name", "customer-api"), ("scopes[]", "access:check")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    app.verify_chain().await;
    app.cleanup().await;
}

async fn last_event(app: &TestApp, action: &str) -> (Option<String>, Option<String>, Value) {
    use sqlx::Row;
    let row = sqlx::query(
        "SELECT customer_id, actor_session, details FROM audit_events WHERE action = ? ORDER BY seq DESC LIMIT 1",
    )
    .bind(action)
    .fetch_one(app.state.db.pool())
    .await
    .unwrap();
    let details = gatehouse::server::platform::db::text(&row, "details").unwrap();
    (
        row.try_get("customer_id").unwrap(),
        row.try_get("actor_session").unwrap(),
        serde_json::from_str(&details).unwrap(),
    )
}

async fn access_checks_answer_and_record(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (admin, admin_key, _) = app.first_admin(ADMIN, PW).await;
    let (_, _, jonas_id) = app
        .employee(&admin, "Jonas Becker", JONAS, "support", &["support"])
        .await;
    let t = api_token(
        &app,
        &admin,
        service_account(&app, &admin, "customer-api", &["access:check"]).await,
        "",
    )
    .await;
    let checks = app.audit_count("access.check", "success").await;

    // Allowed, no customer named: answered, not recorded.
    let (status, d) = check(&app, Some(&t), &read(None, "orders:write")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(d["decision"], "allow");
    assert_eq!(d["grant"]["role"], "support");
    assert_eq!(d["employee_id"], jonas_id);
    assert_eq!(d["audit_seq"], Value::Null);
    assert_eq!(app.audit_count("access.check", "success").await, checks);

    // Allowed for a customer: recorded before the answer, with the grant.
    let (_, d) = check(&app, Some(&t), &read(Some("C-1042"), "customers:read")).await;
    assert_eq!(d["decision"], "allow");
    assert!(d["audit_seq"].as_i64().unwrap() > 0);
    let (customer, actor, details) = last_event(&app, "access.check").await;
    assert_eq!(customer.as_deref(), Some("C-1042"));
    assert_eq!(actor.as_deref(), Some("svc:customer-api"));
    assert_eq!(details["grant_id"], d["grant"]["id"]);
    assert_eq!(details["purpose"], "ticket SUP-77");

    // Denied: recorded, with the reason.
    let (_, d) = check(&app, Some(&t), &read(Some("C-1042"), "customers:read_pii")).await;
    assert_eq!(d["decision"], "deny");
    assert_eq!(d["reason"], "no active grant gives customers:read_pii");
    assert_eq!(d["grant"], Value::Null);
    assert_eq!(app.audit_count("access.check", "denied").await, 1);
    // By id as well as by email; an unknown employee is denied.
    let (_, d) = check(&app, Some(&t), &json!({ "employee": jonas_id, "permission": "accounts:write", "resource": { "type": "account", "id": "A-7" } })).await;
    assert_eq!(d["decision"], "allow");
    let (_, d) = check(&app, Some(&t), &json!({ "employee": "nobody@sunridge-solar.example", "permission": "customers:read", "resource": { "type": "customer", "id": "C-1" } })).await;
    assert_eq!(
        (d["decision"].as_str(), d["reason"].as_str()),
        (Some("deny"), Some("unknown employee"))
    );

    // A time-boxed grant allows until its expiry instant, then denies.
    let r = app
        .call(
            &admin,
            "grant_role",
            &[
                ("user_id", &jonas_id.to_string()),
                ("role", "support-pii"),
                ("reason", "SUP-77"),
                ("expires_in", "1h"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (_, d) = check(&app, Some(&t), &read(Some("C-1042"), "customers:read_pii")).await;
    assert_eq!(
        (d["decision"].as_str(), d["grant"]["role"].as_str()),
        (Some("allow"), Some("support-pii"))
    );
    app.clock.advance(3_600_000);
    let (_, d) = check(&app, Some(&t), &read(Some("C-1042"), "customers:read_pii")).await;
    assert_eq!(d["decision"], "deny", "no job needed");

    // A revoked grant denies on the very next check.
    let admin = app.sign_in(ADMIN, PW, &admin_key).await;
    let detail: Value = app
        .call(&admin, "employee", &[("id", &jonas_id.to_string())])
        .await
        .json()
        .await
        .unwrap();
    let gid = detail["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["role"] == "support")
        .unwrap()["id"]
        .to_string();
    assert_eq!(
        app.call(&admin, "revoke_grant", &[("grant_id", &gid), ("reason", "moved team")])
            .await
            .status(),
        StatusCode::OK
    );
    let (_, d) = check(&app, Some(&t), &read(None, "orders:write")).await;
    assert_eq!(d["decision"], "deny");
    app.verify_chain().await;
    app.cleanup().await;
}

async fn bad_requests_are_refused_and_write_nothing(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (admin, _, _) = app.first_admin(ADMIN, PW).await;
    app.employee(&admin, "Jonas Becker", JONAS, "support", &["support"])
        .await;
    let t = api_token(
        &app,
        &admin,
        service_account(&app, &admin, "customer-api", &["access:check"]).await,
        "",
    )
    .await;
    check(&app, Some(&t), &read(None, "customers:read")).await; // sets "last used"
    let events = app.count("SELECT COUNT(*) FROM audit_events").await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({ "employee": JONAS, "permission": "customers:read", "resource": { "type": "customer", "id": "C-1" }, "role": "admin" }),
            "unknown field `role`",
        ),
        (
            json!({ "employee": JONAS, "permission": "customers:read" }),
            "missing field `resource`",
        ),
        (
            json!({ "employee": JONAS, "permission": 7, "resource": { "type": "customer", "id": "C-1" } }),
            "permission",
        ),
        (
            json!({ "employee": JONAS, "permission": "customers:write_all", "resource": { "type": "customer", "id": "C-1" } }),
            "permission: unknown",
        ),
        (
            json!({ "employee": "not an email", "permission": "customers:read", "resource": { "type": "customer", "id": "C-1" } }),
            "employee:",
        ),
        (
            json!({ "employee": -3, "permission": "customers:read", "resource": { "type": "customer", "id": "C-1" } }),
            "employee:",
        ),
        (
            json!({ "employee": JONAS, "permission": "customers:read", "resource": { "type": "Customer Record", "id": "C-1" } }),
            "resource.type",
        ),
        (
            json!({ "employee": JONAS, "permission": "customers:read", "resource": { "type": "customer", "id": "" } }),
            "resource.id",
        ),
        (
            json!({ "employee": JONAS, "permission": "customers:read", "resource": { "type": "customer", "id": "C-1" }, "customer_id": "x".repeat(129) }),
            "customer_id",
        ),
        (
            json!({ "employee": JONAS, "permission": "customers:read", "resource": { "type": "customer", "id": "C-1" }, "purpose": "a\u{0}b" }),
            "purpose",
        ),
    ];
    for (body, names) in cases {
        let (status, v) = check(&app, Some(&t), &body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let msg = v["error"].as_str().unwrap();
        assert!(msg.contains(names), "{body}: {msg}");
        assert!(v["request_id"].as_str().is_some_and(|r| !r.is_empty()));
    }
    // Not JSON, the wrong content type, a body over the limit.
    let post = |body: reqwest::Body, ct: &'static str| {
        let t = t.clone();
        let app = &app;
        async move {
            client()
                .post(app.url("/api/v1/access-checks"))
                .bearer_auth(t)
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        post("{\"employee\":".into(), "application/json").await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post("employee=1".into(), "application/x-www-form-urlencoded").await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let big = format!("{{\"employee\":\"{}\"}}", "a".repeat(2 * 1024 * 1024));
    assert_eq!(
        post(big.into(), "application/json").await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events").await,
        events,
        "nothing written"
    );

    // The API describes itself.
    let r = client().get(app.url("/api/v1/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/v1/access-checks"]["post"].is_object());
    for path in [
        "/api/v1/audit/public-key",
        "/api/v1/audit/checkpoints",
        "/api/v1/audit/proofs/{seq}",
        "/api/v1/audit/consistency",
    ] {
        assert!(doc["paths"][path]["get"].is_object(), "{path} documented");
    }
    assert!(doc["paths"]["/api/v1/audit/cosignatures"]["post"].is_object());
    assert_eq!(
        doc["components"]["schemas"]["AccessCheck"]["properties"]["permission"]["enum"]
            .as_array()
            .unwrap()
            .len(),
        14
    );
    app.cleanup().await;
}

fn event(employee: Value, customer: &str, minute: u32) -> Value {
    json!({
        "employee": employee,
        "action": "customer.view",
        "customer_id": customer,
        "fields": ["address", "phone"],
        "record_types": ["customer"],
        "purpose": "SUP-77 delivery address",
        "source_system": "support-desk",
        "occurred_at": format!("2026-01-01T00:{minute:02}:00Z"),
    })
}

async fn post_events(app: &TestApp, token: &str, key: Option<&str>, body: &Value) -> (StatusCode, Value) {
    let mut req = client()
        .post(app.url("/api/v1/audit-events"))
        .bearer_auth(token)
        .json(body);
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn event_batches_are_stored_whole_once(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (admin, _, _) = app.first_admin(ADMIN, PW).await;
    let (_, _, jonas_id) = app
        .employee(&admin, "Jonas Becker", JONAS, "support", &["support"])
        .await;
    let acct = service_account(&app, &admin, "support-desk", &["events:write"]).await;
    let t = api_token(&app, &admin, acct, "").await;
    let checker = api_token(
        &app,
        &admin,
        service_account(&app, &admin, "customer-api", &["access:check"]).await,
        "",
    )
    .await;
    let before = app.count("SELECT COUNT(*) FROM audit_events").await;

    // The wrong scope is refused.
    let batch = json!({ "events": [event(json!(JONAS), "C-1", 0), event(json!(jonas_id), "C-2", 1)] });
    assert_eq!(post_events(&app, &checker, None, &batch).await.0, StatusCode::FORBIDDEN);

    // One bad event refuses the whole batch, naming index and field.
    let mut bad = batch.clone();
    bad["events"][1]["occurred_at"] = json!("2030-01-01T00:00:00Z");
    let (status, v) = post_events(&app, &t, None, &bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(v["error"].as_str().unwrap().starts_with("events[1].occurred_at"), "{v}");
    let mut bad = batch.clone();
    bad["events"][0]["ssn"] = json!("123");
    let (status, v) = post_events(&app, &t, None, &bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"].as_str().unwrap().contains("events[0]") && v["error"].as_str().unwrap().contains("ssn"),
        "{v}"
    );
    let mut bad = batch.clone();
    bad["events"][1]["employee"] = json!("ghost@sunridge-solar.example");
    let (status, v) = post_events(&app, &t, None, &bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"], "events[1].employee: no such employee");
    let too_many =
        json!({ "events": (0..1001).map(|i| event(json!(jonas_id), &format!("C-{i}"), 0)).collect::<Vec<_>>() });
    assert_eq!(
        post_events(&app, &t, None, &too_many).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        post_events(&app, &t, None, &json!({ "events": [] })).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let r = client()
        .post(app.url("/api/v1/audit-events"))
        .bearer_auth(&t)
        .header("content-type", "text/plain")
        .body(batch.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "not said to be JSON");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events").await,
        before + 1,
        "only the scope refusal was recorded"
    );

    // Stored whole, in the chain, attributed to the employee and the customer.
    let (status, v) = post_events(&app, &t, Some("batch-0001"), &batch).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["accepted"], 2);
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'data.access' AND actor_user_id = {jonas_id}"
        ))
        .await,
        2
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events WHERE customer_id = 'C-2'")
            .await,
        1
    );
    // A retry with the same key is not stored again; another batch under that key is refused.
    let (status, again) = post_events(&app, &t, Some("batch-0001"), &batch).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (again["replayed"].as_bool(), again["first_seq"].clone()),
        (Some(true), v["first_seq"].clone())
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'data.access'")
            .await,
        2
    );
    let other = json!({ "events": [event(json!(JONAS), "C-9", 2)] });
    assert_eq!(
        post_events(&app, &t, Some("batch-0001"), &other).await.0,
        StatusCode::CONFLICT
    );
    // A 1,000-event batch fits.
    let full = json!({ "events": (0..1000).map(|i| event(json!(jonas_id), &format!("C-{i}"), (i % 2) as u32)).collect::<Vec<_>>() });
    let (status, v) = post_events(&app, &t, Some("batch-0002"), &full).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["accepted"], 1000);
    app.verify_chain().await;
    app.cleanup().await;
}

/// Permission checks may be answered from memory, so a change made outside
/// this process (another Gatehouse process on the same database, the command
/// line, plain SQL) must still count on the very next request: the database
/// triggers move the employee's access version, which every request reads.
async fn changes_made_elsewhere_count_on_the_next_request(b: Backend) {
    use sqlx::Row;
    let app = TestApp::spawn(&b).await;
    let (admin, _, _) = app.first_admin(ADMIN, PW).await;
    let (jonas, _, jonas_id) = app
        .employee(&admin, "Jonas Becker", JONAS, "support", &["support"])
        .await;
    let r = admin
        .post(app.url("/api/save_role"))
        .form(&[
            ("key", "people-ops"),
            ("name", "People operations"),
            ("permissions[]", "employees:manage"),
            ("max_duration", "8h"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let r = app
        .call(
            &admin,
            "grant_role",
            &[
                ("user_id", &jonas_id.to_string()),
                ("role", "people-ops"),
                ("reason", "hiring week"),
                ("expires_in", "8h"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let t = api_token(
        &app,
        &admin,
        service_account(&app, &admin, "customer-api", &["access:check"]).await,
        "",
    )
    .await;

    // Each path is used once, so the answers below could come from memory.
    let orders = || read(None, "orders:write");
    assert!(app.perms(&jonas).await.contains(&"orders:write".to_owned()));
    assert_eq!(check(&app, Some(&t), &orders()).await.1["decision"], "allow");
    assert_eq!(app.call(&jonas, "list_employees", &[]).await.status(), StatusCode::OK);
    assert_eq!(app.get(&jonas, "/employees").await.status(), StatusCode::OK);
    let version = |app: &TestApp| {
        let pool = app.state.db.pool().clone();
        async move {
            sqlx::query("SELECT access_version FROM users WHERE id = ?")
                .bind(jonas_id)
                .fetch_one(&pool)
                .await
                .unwrap()
                .try_get::<i64, _>(0)
                .unwrap()
        }
    };
    let before = version(&app).await;

    // Another connection, as another process would have.
    let other = sqlx::AnyPool::connect(&app.state.config.database_url).await.unwrap();
    // A custom role loses a permission: its holder loses it at once.
    sqlx::query("UPDATE roles SET permissions = 'leads:read' WHERE role_key = 'people-ops'")
        .execute(&other)
        .await
        .unwrap();
    assert!(version(&app).await > before);
    let r = app.call(&jonas, "list_employees", &[]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.get(&jonas, "/employees").await.status(), StatusCode::FORBIDDEN);
    assert!(app.perms(&jonas).await.contains(&"leads:read".to_owned()));

    // A grant revoked elsewhere stops counting for pages, functions and the API.
    sqlx::query("UPDATE grants SET revoked_at = 1, revoke_reason = 'elsewhere' WHERE user_id = ? AND role = 'support'")
        .bind(jonas_id)
        .execute(&other)
        .await
        .unwrap();
    assert!(!app.perms(&jonas).await.contains(&"orders:write".to_owned()));
    let (_, d) = check(&app, Some(&t), &orders()).await;
    assert_eq!(
        (d["decision"].as_str(), d["reason"].as_str()),
        (Some("deny"), Some("no active grant gives orders:write"))
    );

    // A grant added elsewhere counts at once too.
    sqlx::query(
        "INSERT INTO grants (user_id, role, reason, starts_at, created_at) VALUES (?, 'support', 'elsewhere', 0, 0)",
    )
    .bind(jonas_id)
    .execute(&other)
    .await
    .unwrap();
    assert_eq!(check(&app, Some(&t), &orders()).await.1["decision"], "allow");
    assert!(app.perms(&jonas).await.contains(&"orders:write".to_owned()));

    // Suspended elsewhere: the API denies on the next check.
    sqlx::query("UPDATE users SET status = 'suspended' WHERE id = ?")
        .bind(jonas_id)
        .execute(&other)
        .await
        .unwrap();
    let (_, d) = check(&app, Some(&t), &orders()).await;
    assert_eq!(
        (d["decision"].as_str(), d["reason"].as_str()),
        (Some("deny"), Some("employee is suspended"))
    );
    // Other columns of the employee's row leave the version alone.
    let v = version(&app).await;
    sqlx::query("UPDATE users SET display_name = 'Jonas B.' WHERE id = ?")
        .bind(jonas_id)
        .execute(&other)
        .await
        .unwrap();
    assert_eq!(version(&app).await, v);
    other.close().await;
    app.cleanup().await;
}
