//! Access reviews over HTTP, on SQLite and MySQL: the snapshot and its
//! scope, who may decide what, revocation on submit, the deadline rule
//! (with the last-administrator rule winning), "Close now", the frozen
//! report and its hash in the closing event, and recurrence created once
//! with two servers running the job.

use crate::helpers::*;
use reqwest::{Client, StatusCode};
use serde_json::Value;
use sqlx::Row;

const ADMIN: &str = "maya.okafor@sunridge-solar.example";
const PW: &str = "violet harbour lantern 42";
const JONAS: &str = "jonas.becker@sunridge-solar.example";
const PRIYA: &str = "priya.raman@sunridge-solar.example";
const LENA: &str = "lena.fischer@sunridge-solar.example";
const AUDITOR: &str = "ada.auditor@sunridge-solar.example";
const DAY: i64 = 24 * 3_600_000;

on_both!(
    a_campaign_snapshots_standing_access_in_its_scope_with_usage_facts,
    reviewers_decide_their_items_and_nobody_reviews_their_own_access,
    the_deadline_revokes_undecided_critical_access_and_keeps_the_last_administrator,
    close_now_applies_the_rule_and_freezes_a_report_whose_hash_is_in_the_chain,
    a_recurring_campaign_is_started_once_with_two_servers_running_the_job,
);

/// The company: Maya (the only administrator), Jonas (support), Priya
/// (engineer, owner of the support role's reviews), Lena (sales, and a
/// standing grant of a custom role carrying customers' PII) and an auditor.
struct Company {
    admin: Client,
    admin_key: String,
    jonas: (Client, i64),
    priya: (Client, i64),
    lena: (Client, i64),
    auditor: Client,
}

async fn company(app: &TestApp) -> Company {
    let (admin, admin_key, _) = app.first_admin(ADMIN, PW).await;
    let r = admin
        .post(app.url("/api/save_role"))
        .form(&[
            ("key", "billing-pii"),
            ("name", "Billing with PII"),
            ("permissions[]", "customers:read_pii"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let (jonas, _, jonas_id) = app
        .employee(&admin, "Jonas Becker", JONAS, "support", &["support"])
        .await;
    let (priya, _, priya_id) = app
        .employee(&admin, "Priya Raman", PRIYA, "engineering", &["engineer"])
        .await;
    let (lena, _, lena_id) = app
        .employee(&admin, "Lena Fischer", LENA, "sales", &["sales", "billing-pii"])
        .await;
    let (auditor, _, _) = app
        .employee(&admin, "Ada Auditor", AUDITOR, "audit", &["auditor"])
        .await;
    Company {
        admin,
        admin_key,
        jonas: (jonas, jonas_id),
        priya: (priya, priya_id),
        lena: (lena, lena_id),
        auditor,
    }
}

async fn ok(r: reqwest::Response) -> Value {
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

async fn start(app: &TestApp, admin: &Client, form: &[(&str, &str)]) -> i64 {
    let mut f: Vec<(&str, &str)> = [("name", "Q4 access review"), ("due_in_days", "14")]
        .into_iter()
        .filter(|(k, _)| !form.iter().any(|(f, _)| f == k))
        .collect();
    f.extend_from_slice(form);
    ok(app.call(admin, "start_review", &f).await).await.as_i64().unwrap()
}

async fn items(app: &TestApp, c: &Client, id: i64) -> Vec<Value> {
    let v = ok(app.call(c, "review_campaign", &[("id", &id.to_string())]).await).await;
    v["items"].as_array().unwrap().clone()
}

fn item<'a>(items: &'a [Value], holder: &str, role: &str) -> &'a Value {
    items
        .iter()
        .find(|i| i["holder"] == holder && i["role"] == role)
        .unwrap_or_else(|| panic!("no item {holder} {role} in {items:?}"))
}

async fn decide(app: &TestApp, c: &Client, item: &Value, decision: &str, comment: &str) -> reqwest::Response {
    let id = item["id"].to_string();
    app.call(
        c,
        "decide_review",
        &[("items[]", &id), ("decision", decision), ("comment", comment)],
    )
    .await
}

async fn revoked(app: &TestApp, grant_user: i64, role: &str) -> bool {
    let row = sqlx::query("SELECT revoked_at FROM grants WHERE user_id = ? AND role = ? ORDER BY id DESC LIMIT 1")
        .bind(grant_user)
        .bind(role)
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    row.try_get::<Option<i64>, _>("revoked_at").unwrap().is_some()
}

async fn a_campaign_snapshots_standing_access_in_its_scope_with_usage_facts(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let co = company(&app).await;
    // Jonas's support grant is used: an access check under it.
    let api = service_account(&app, &co.admin, "customer-api", &["access:check"]).await;
    let token = api_token(&app, &co.admin, api, "").await;
    let r = client()
        .post(app.url("/api/v1/access-checks"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "employee": JONAS, "permission": "customers:read", "customer_id": "C-1", "resource": { "type": "customer", "id": "C-1" }, "purpose": "SUP-1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // A grant that ends before the deadline is not standing access.
    let r = app
        .call(
            &co.admin,
            "grant_role",
            &[
                ("user_id", &co.priya.1.to_string()),
                ("role", "sales"),
                ("reason", "trade fair week"),
                ("expires_in", "3d"),
            ],
        )
        .await;
    ok(r).await;

    let all = start(&app, &co.admin, &[("scope_kind", "all")]).await;
    let got = items(&app, &co.admin, all).await;
    let mut pairs: Vec<(String, String)> = got
        .iter()
        .map(|i| {
            (
                i["holder"].as_str().unwrap().to_owned(),
                i["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    pairs.sort();
    let want = [
        ("Ada Auditor", "auditor"),
        ("Jonas Becker", "support"),
        ("Lena Fischer", "billing-pii"),
        ("Lena Fischer", "sales"),
        ("Maya Okafor", "admin"),
        ("Priya Raman", "engineer"),
    ];
    assert_eq!(
        pairs,
        want.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    );
    let support = item(&got, "Jonas Becker", "support");
    assert!(support["last_used"].is_string(), "{support}");
    assert!(support["last_sign_in"].is_string(), "{support}");
    assert_eq!(support["unused_30_days"], false);
    assert!(item(&got, "Priya Raman", "engineer")["last_used"].is_null());
    assert_eq!(item(&got, "Lena Fischer", "billing-pii")["critical"], true);
    assert_eq!(support["critical"], false);
    assert_eq!(support["granted_by"], "Maya Okafor");
    // The only administrator has nobody to review her own access.
    assert_eq!(
        item(&got, "Maya Okafor", "admin")["reviewers"],
        "no independent reviewer"
    );

    let critical = start(&app, &co.admin, &[("scope_kind", "critical")]).await;
    let got = items(&app, &co.admin, critical).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["role"], "billing-pii");
    let roles = start(
        &app,
        &co.admin,
        &[("scope_kind", "roles"), ("roles[]", "support"), ("roles[]", "sales")],
    )
    .await;
    assert_eq!(items(&app, &co.admin, roles).await.len(), 2);
    let dept = start(
        &app,
        &co.admin,
        &[("scope_kind", "department"), ("department", "Sales")],
    )
    .await;
    assert_eq!(items(&app, &co.admin, dept).await.len(), 2);
    let tokens = start(&app, &co.admin, &[("scope_kind", "tokens")]).await;
    let got = items(&app, &co.admin, tokens).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["kind"], "token");
    assert!(got[0]["last_used"].is_string());

    // Bad input: a clear 4xx, and nothing written.
    let before = app.count("SELECT COUNT(*) FROM review_campaigns").await;
    for bad in [
        vec![("scope_kind", "all"), ("due_in_days", "0")],
        vec![("scope_kind", "all"), ("due_in_days", "91")],
        vec![
            ("scope_kind", "roles"),
            ("roles[]", "no-such-role"),
            ("due_in_days", "14"),
        ],
        vec![("scope_kind", "everything"), ("due_in_days", "14")],
        vec![
            ("scope_kind", "department"),
            ("department", "marketing"),
            ("due_in_days", "14"),
        ],
        vec![("scope_kind", "all"), ("due_in_days", "14"), ("every_months", "13")],
    ] {
        let mut f = vec![("name", "bad")];
        f.extend(bad);
        let r = app.call(&co.admin, "start_review", &f).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{f:?}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM review_campaigns").await, before);
    // Only administrators start campaigns; the auditor reads them.
    let r = app
        .call(
            &co.auditor,
            "start_review",
            &[("name", "x"), ("scope_kind", "all"), ("due_in_days", "14")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Starting one needs a fresh second factor.
    app.clock.advance(6 * 60_000);
    let form = [("name", "late"), ("scope_kind", "all"), ("due_in_days", "14")];
    let r = app.call(&co.admin, "start_review", &form).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let code = app.code(&co.admin_key);
    let mut with_code = form.to_vec();
    with_code.push(("code", &code));
    ok(app.call(&co.admin, "start_review", &with_code).await).await;
    assert_eq!(items(&app, &co.auditor, all).await.len(), 6);
    let r = app
        .call(&co.jonas.0, "review_campaign", &[("id", &all.to_string())])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The campaign's page likewise: gated on the server, the refusal recorded.
    let denied = app.audit_count("authz.denied", "denied").await;
    let r = app.get(&co.jonas.0, &format!("/reviews/{all}")).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.audit_count("authz.denied", "denied").await, denied + 1);
    let page = app.get(&co.auditor, &format!("/reviews/{all}")).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("Q4 access review"));
    let mine = app.get(&co.jonas.0, "/reviews").await;
    assert_eq!(mine.status(), StatusCode::OK);
    assert_eq!(app.audit_count("review.campaign_started", "success").await, 6);
    app.verify_chain().await;
    app.cleanup().await;
}

async fn reviewers_decide_their_items_and_nobody_reviews_their_own_access(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let co = company(&app).await;
    // Priya owns the support role's reviews; Jonas owns the engineer role's.
    let owners = |role: &'static str, ids: Vec<i64>| {
        let (app, admin) = (&app, co.admin.clone());
        async move {
            let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
            let mut form = vec![("role", role)];
            form.extend(ids.iter().map(|i| ("owners[]", i.as_str())));
            app.call(&admin, "set_role_owners", &form).await
        }
    };
    // Two owners for support: each finds the item, first or second named.
    ok(owners("support", vec![co.lena.1, co.priya.1]).await).await;
    ok(owners("engineer", vec![co.jonas.1]).await).await;
    // An auditor is never an owner, and the form does not offer one.
    let auditor_id = app.user_id(AUDITOR).await;
    let r = owners("sales", vec![auditor_id]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let setup = ok(app.call(&co.admin, "review_setup", &[]).await).await;
    let offered: Vec<i64> = setup["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert!(offered.contains(&co.priya.1) && offered.contains(&co.jonas.1));
    assert!(!offered.contains(&auditor_id), "{offered:?}");
    let support = setup["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"] == "support")
        .unwrap();
    let names: Vec<&str> = support["owners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Lena Fischer", "Priya Raman"]);
    // The roles page shows who reviews each role.
    let cat = ok(app.call(&co.admin, "catalogue", &[]).await).await;
    let reviewers = |key: &str| {
        cat["roles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"] == key)
            .unwrap()["reviewers"]
            .clone()
    };
    assert_eq!(reviewers("support"), serde_json::json!(["Lena Fischer", "Priya Raman"]));
    assert_eq!(reviewers("sales"), serde_json::json!([]));
    let id = start(&app, &co.admin, &[("scope_kind", "all")]).await;
    let all = items(&app, &co.admin, id).await;

    // Priya sees the support item (she owns it), not her own engineer grant.
    let mine = ok(app.call(&co.priya.0, "my_reviews", &[]).await).await;
    let mine: Vec<&str> = mine
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["role"].as_str().unwrap())
        .collect();
    assert_eq!(mine, ["support"]);
    let lenas = ok(app.call(&co.lena.0, "my_reviews", &[]).await).await;
    assert_eq!(lenas.as_array().unwrap().len(), 1);
    assert_eq!(lenas[0]["role"], "support");
    // Jonas reviews Priya's engineer grant; nobody reviews their own.
    let priya_eng = item(&all, "Priya Raman", "engineer");
    let jonas_sup = item(&all, "Jonas Becker", "support");
    let r = decide(&app, &co.jonas.0, jonas_sup, "keep", "").await;
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "own access: {}",
        r.text().await.unwrap()
    );
    let r = decide(&app, &co.priya.0, priya_eng, "keep", "").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(error_message(&r.text().await.unwrap()).contains("own access"));
    // Not an owner of the sales role, not an administrator: not hers.
    let r = decide(&app, &co.priya.0, item(&all, "Lena Fischer", "sales"), "keep", "").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The auditor never decides.
    let r = decide(&app, &co.auditor, item(&all, "Lena Fischer", "sales"), "keep", "").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(error_message(&r.text().await.unwrap()).contains("read-only"));
    // The only administrator cannot review her own grant: nobody can.
    let r = decide(&app, &co.admin, item(&all, "Maya Okafor", "admin"), "keep", "fine").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(app.audit_count("review.decide", "denied").await >= 5);

    // Keep, then change to revoke: the grant ends at once, and for good.
    ok(decide(&app, &co.priya.0, jonas_sup, "keep", "").await).await;
    assert!(!revoked(&app, co.jonas.1, "support").await);
    ok(decide(&app, &co.priya.0, jonas_sup, "revoke", "moved to sales").await).await;
    assert!(revoked(&app, co.jonas.1, "support").await);
    assert!(!app.perms(&co.jonas.0).await.contains(&"customers:read".to_owned()));
    let r = decide(&app, &co.priya.0, jonas_sup, "keep", "").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(error_message(&r.text().await.unwrap()).contains("granted again only"));
    let d = last_details(&app, "grant.revoked").await;
    assert_eq!(d["role"], "support");
    let d = last_details(&app, "review.decided").await;
    assert_eq!(d["decision"], "revoke");
    assert_eq!(d["before"]["decision"], "keep");
    assert_eq!(d["comment"], "moved to sales");

    // A critical keep needs a comment; the administrator decides it.
    let pii = item(&all, "Lena Fischer", "billing-pii");
    let r = decide(&app, &co.admin, pii, "keep", "").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_message(&r.text().await.unwrap()).contains("comment"));
    ok(decide(&app, &co.admin, pii, "keep", "handles chargebacks").await).await;
    // Convert: an expiry in the future, within a year.
    let sales = item(&all, "Lena Fischer", "sales");
    let r = app
        .call(
            &co.admin,
            "decide_review",
            &[
                ("items[]", &sales["id"].to_string()),
                ("decision", "convert"),
                ("until", "2020-01-01T00:00"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Reassignment: Lena's sales item goes to Priya.
    ok(app
        .call(
            &co.admin,
            "reassign_review_item",
            &[("id", &sales["id"].to_string()), ("to", &co.priya.1.to_string())],
        )
        .await)
    .await;
    ok(decide(&app, &co.priya.0, sales, "keep", "").await).await;
    let r = app
        .call(
            &co.admin,
            "reassign_review_item",
            &[("id", &sales["id"].to_string()), ("to", &co.lena.1.to_string())],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "never to the holder");
    // The campaign offers administrators who to reassign to (not the
    // auditor), and offers the auditor nobody.
    let detail = ok(app.call(&co.admin, "review_campaign", &[("id", &id.to_string())]).await).await;
    let to: Vec<i64> = detail["reassign_to"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert!(to.contains(&co.priya.1) && !to.contains(&auditor_id), "{to:?}");
    let seen = ok(app
        .call(&co.auditor, "review_campaign", &[("id", &id.to_string())])
        .await)
    .await;
    assert_eq!(seen["reassign_to"], serde_json::json!([]));
    // In bulk: the administrator keeps two items in one submit, each its
    // own decision and event (Lena's sales item is Priya's now, not hers).
    let ada = item(&all, "Ada Auditor", "auditor")["id"].to_string();
    let decided = app.audit_count("review.decided", "success").await;
    let n = ok(app
        .call(
            &co.admin,
            "decide_review",
            &[
                ("items[]", &ada),
                ("items[]", &pii["id"].to_string()),
                ("decision", "keep"),
                ("comment", "quarterly check"),
            ],
        )
        .await)
    .await;
    assert_eq!(n, 2);
    assert_eq!(app.audit_count("review.decided", "success").await, decided + 2);
    let now = items(&app, &co.admin, id).await;
    assert_eq!(item(&now, "Ada Auditor", "auditor")["decided_by"], "Maya Okafor");
    assert_eq!(item(&now, "Lena Fischer", "billing-pii")["comment"], "quarterly check");
    let r = app
        .call(
            &co.admin,
            "decide_review",
            &[
                ("items[]", &ada),
                ("items[]", &sales["id"].to_string()),
                ("decision", "keep"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "one item is not hers");
    // A suspended owner reviews nothing, and is not shown as reviewing.
    let code = app.code(&co.admin_key);
    ok(app
        .call(
            &co.admin,
            "suspend_employee",
            &[
                ("user_id", &co.lena.1.to_string()),
                ("reason", "leave"),
                ("code", &code),
            ],
        )
        .await)
    .await;
    let setup = ok(app.call(&co.admin, "review_setup", &[]).await).await;
    let support = setup["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"] == "support")
        .unwrap()
        .clone();
    assert_eq!(support["owners"].as_array().unwrap().len(), 1);
    assert_eq!(support["owners"][0]["name"], "Priya Raman");
    let cat = ok(app.call(&co.admin, "catalogue", &[]).await).await;
    let support = cat["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "support")
        .unwrap()
        .clone();
    assert_eq!(support["reviewers"], serde_json::json!(["Priya Raman"]));
    app.verify_chain().await;
    app.cleanup().await;
}

async fn the_deadline_revokes_undecided_critical_access_and_keeps_the_last_administrator(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let co = company(&app).await;
    // Revoke everything undecided: the last administrator's grant still stays.
    let id = start(
        &app,
        &co.admin,
        &[
            ("scope_kind", "all"),
            ("due_in_days", "7"),
            ("critical_rule", "revoke"),
            ("other_rule", "keep_and_flag"),
        ],
    )
    .await;
    let all = items(&app, &co.admin, id).await;
    ok(decide(&app, &co.admin, item(&all, "Jonas Becker", "support"), "keep", "").await).await;
    let a = start(
        &app,
        &co.admin,
        &[
            ("name", "admins"),
            ("scope_kind", "roles"),
            ("roles[]", "admin"),
            ("due_in_days", "7"),
            ("other_rule", "revoke"),
        ],
    )
    .await;
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    assert!(
        !revoked(&app, co.lena.1, "billing-pii").await,
        "not before the deadline"
    );
    app.clock.advance(7 * DAY + 1_000);
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    assert!(
        revoked(&app, co.lena.1, "billing-pii").await,
        "critical, undecided: revoked"
    );
    let perms = gatehouse::server::access::authz::permissions_at(app.state.db.pool(), co.lena.1, app.clock.now())
        .await
        .unwrap();
    assert!(!perms.contains(gatehouse::domain::permissions::Permission::CustomersReadPii));
    // The sessions of a week ago have timed out: sign in again.
    let admin = app.sign_in(ADMIN, PW, &co.admin_key).await;
    assert!(
        !revoked(&app, co.lena.1, "sales").await,
        "undecided, not critical: kept"
    );
    assert!(!revoked(&app, co.jonas.1, "support").await);
    let closed = items(&app, &admin, id).await;
    assert_eq!(item(&closed, "Lena Fischer", "billing-pii")["outcome"], "revoked");
    assert_eq!(item(&closed, "Lena Fischer", "sales")["outcome"], "kept_flagged");
    assert_eq!(item(&closed, "Lena Fischer", "sales")["flags"], "undecided");
    assert_eq!(item(&closed, "Jonas Becker", "support")["outcome"], "kept");
    // The rule that an organisation keeps an administrator wins.
    let admins = items(&app, &admin, a).await;
    assert_eq!(admins.len(), 1);
    assert_eq!(admins[0]["outcome"], "kept_flagged");
    assert_eq!(admins[0]["flags"], "no independent reviewer,last administrator");
    assert!(!revoked(&app, app.user_id(ADMIN).await, "admin").await);
    // Closed by the deadline, each once, with every undecided item recorded.
    assert_eq!(app.audit_count("review.campaign_closed", "success").await, 2);
    let d = last_details(&app, "review.campaign_closed").await;
    assert_eq!(d["by_deadline"], true);
    assert!(app.audit_count("review.item_closed", "success").await >= 6);
    // Decisions are final once closed.
    let r = decide(&app, &admin, item(&closed, "Lena Fischer", "sales"), "revoke", "").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    assert_eq!(app.audit_count("review.campaign_closed", "success").await, 2);
    app.verify_chain().await;
    app.cleanup().await;
}

async fn close_now_applies_the_rule_and_freezes_a_report_whose_hash_is_in_the_chain(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let co = company(&app).await;
    let id = start(&app, &co.admin, &[("scope_kind", "all")]).await;
    let all = items(&app, &co.admin, id).await;
    ok(decide(
        &app,
        &co.admin,
        item(&all, "Priya Raman", "engineer"),
        "revoke",
        "left the platform team",
    )
    .await)
    .await;
    let sales = item(&all, "Lena Fischer", "sales")["id"].to_string();
    let r = app
        .call(
            &co.admin,
            "decide_review",
            &[
                ("items[]", &sales),
                ("decision", "convert"),
                ("until", "2099-01-01T00:00"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "more than a year ahead");
    let until = gatehouse::server::platform::time::format_time(app.clock.now() + 30 * DAY);
    let until = until[..16].replace(' ', "T");
    ok(app
        .call(
            &co.admin,
            "decide_review",
            &[("items[]", &sales), ("decision", "convert"), ("until", &until)],
        )
        .await)
    .await;
    // Close now needs a fresh second factor, and only an administrator.
    app.clock.advance(6 * 60_000);
    let r = app.call(&co.admin, "close_review", &[("id", &id.to_string())]).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "step-up");
    let r = app.call(&co.auditor, "close_review", &[("id", &id.to_string())]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let code = app.code(&co.admin_key);
    let sha = ok(app
        .call(&co.admin, "close_review", &[("id", &id.to_string()), ("code", &code)])
        .await)
    .await;
    let sha = sha.as_str().unwrap().to_owned();
    assert!(
        revoked(&app, co.lena.1, "billing-pii").await,
        "undecided critical: revoked"
    );
    let expires: Option<i64> = sqlx::query("SELECT expires_at FROM grants WHERE user_id = ? AND role = 'sales'")
        .bind(co.lena.1)
        .fetch_one(app.state.db.pool())
        .await
        .unwrap()
        .try_get("expires_at")
        .unwrap();
    assert!(expires.is_some_and(|e| e > app.clock.now()), "converted to time-boxed");
    assert_eq!(
        last_details(&app, "grant.shortened").await["after"]["expires_at"],
        expires.unwrap()
    );
    let d = last_details(&app, "review.campaign_closed").await;
    assert_eq!(d["report_sha256"], sha);
    assert_eq!(d["by_deadline"], false);
    assert_eq!(d["outcomes"]["revoked"], 2);
    assert_eq!(d["outcomes"]["converted"], 1);
    // The frozen report hashes to what the chain holds.
    let report = gatehouse::server::access::reviews::report_csv(&app.state, id)
        .await
        .unwrap();
    assert_eq!(
        gatehouse::server::platform::crypto::sha256_hex(report.csv.as_bytes()),
        sha
    );
    assert_eq!(report.sha256.as_deref(), Some(sha.as_str()));
    assert_eq!(report.csv.lines().count(), 1 + all.len());
    assert!(report.csv.contains("left the platform team"), "{}", report.csv);
    // The auditor downloads it with its hash; an employee is refused.
    let r = app.get(&co.auditor, &format!("/reviews/{id}/report.csv")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-report-sha256"], sha.as_str());
    assert_eq!(r.text().await.unwrap(), report.csv);
    let r = app.get(&co.lena.0, &format!("/reviews/{id}/report.csv")).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.get(&co.auditor, "/reviews/999999/report.csv").await.status(),
        StatusCode::NOT_FOUND
    );
    // The evidence bundle: each event proven under a signed checkpoint,
    // checked offline; an edited report is refused.
    let r = app.get(&co.auditor, &format!("/reviews/{id}/evidence.jsonl")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let bundle = r.text().await.unwrap();
    assert!(bundle.lines().count() > 5, "{bundle}");
    let file = app._dir.0.join("evidence.jsonl");
    std::fs::write(&file, &bundle).unwrap();
    let path = file.to_str().unwrap();
    let key = hex::encode(app.state.audit_keys.current().public[0].as_bytes());
    let (ok, out) = crate::checkpoints::cli(&["audit", "verify", path, "--public-key", &key]);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("OK: access review {id}:")), "{out}");
    let edited: Vec<String> = bundle
        .lines()
        .map(|l| match l.starts_with("{\"type\":\"report\"") {
            true => l.replace("left the platform team", "left the platform tean"),
            false => l.to_owned(),
        })
        .collect();
    assert_ne!(edited.join("\n"), bundle.trim_end());
    std::fs::write(&file, edited.join("\n")).unwrap();
    let (ok, out) = crate::checkpoints::cli(&["audit", "verify", path]);
    assert!(!ok && out.contains("evidence REJECTED"), "{out}");
    assert!(out.contains("the report does not match"), "{out}");
    let r = app.get(&co.lena.0, &format!("/reviews/{id}/evidence.jsonl")).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A second close is refused and changes nothing.
    app.clock.advance(31_000);
    let code = app.code(&co.admin_key);
    let r = app
        .call(&co.admin, "close_review", &[("id", &id.to_string()), ("code", &code)])
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(app.audit_count("review.campaign_closed", "success").await, 1);
    app.verify_chain().await;
    app.cleanup().await;
}

async fn a_recurring_campaign_is_started_once_with_two_servers_running_the_job(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let co = company(&app).await;
    let first = start(
        &app,
        &co.admin,
        &[
            ("scope_kind", "roles"),
            ("roles[]", "support"),
            ("due_in_days", "7"),
            ("every_months", "1"),
        ],
    )
    .await;
    let other = app.another().await;
    // Before its day, nothing.
    app.clock.advance(27 * DAY);
    tokio::join!(
        gatehouse::server::jobs::run_access_jobs(&app.state),
        gatehouse::server::jobs::run_access_jobs(&other.state)
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM review_campaigns").await, 1);
    // On its day both servers run the job at once: one successor.
    app.clock.advance(5 * DAY);
    tokio::join!(
        gatehouse::server::jobs::run_access_jobs(&app.state),
        gatehouse::server::jobs::run_access_jobs(&other.state)
    );
    tokio::join!(
        gatehouse::server::jobs::run_access_jobs(&app.state),
        gatehouse::server::jobs::run_access_jobs(&other.state)
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM review_campaigns").await, 2);
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM review_campaigns WHERE parent_id = {first}"
        ))
        .await,
        1
    );
    assert_eq!(app.audit_count("review.campaign_started", "success").await, 2);
    assert_eq!(
        app.audit_count("review.campaign_closed", "success").await,
        1,
        "the first closed once"
    );
    let d = last_details(&app, "review.campaign_started").await;
    assert_eq!(d["recurs_from"], first);
    assert_eq!(d["items"], 1);
    // Reminders: the successor's reviewers (administrators) are told once.
    let n = app
        .count("SELECT COUNT(*) FROM notifications WHERE subject LIKE 'Access review%'")
        .await;
    assert_eq!(n, 1, "the week's reminder went out as it started");
    let due = app
        .count(&format!(
            "SELECT due_at FROM review_campaigns WHERE parent_id = {first}"
        ))
        .await;
    app.clock.advance(due - app.clock.now() - 3_600_000);
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    gatehouse::server::jobs::run_access_jobs(&other.state).await;
    let after = app
        .count("SELECT COUNT(*) FROM notifications WHERE subject LIKE 'Access review%'")
        .await;
    assert_eq!(after, n + 1, "one reminder to the one administrator");
    drop(other);
    app.cleanup().await;
}
