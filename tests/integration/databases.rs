//! Database access provisioned by grants, against the real MariaDB: a
//! target database and a least-privileged connector account made by each
//! test, an employee's account opened by an approved elevation, its
//! expiry killing a held connection, offboarding, and a target that fails
//! during a revocation. Gatehouse's own store is SQLite or MySQL.

use crate::helpers::*;
use gatehouse::server::jobs;
use reqwest::{Client, StatusCode};
use serde_json::Value;
use sqlx::{mysql::MySqlConnectOptions, ConnectOptions, Connection, MySqlConnection, Row};

mod tls;

const ADMIN: &str = "maya.okafor@sunridge-solar.example";
const PW: &str = "violet harbour lantern 42";
const JONAS: &str = "jonas.becker@sunridge-solar.example";
const WHY: &str = "customer 1042 asks to correct the delivery address";

on_both!(
    an_approved_elevation_opens_the_database_and_its_expiry_kills_the_held_connection,
    offboarding_locks_the_account_and_kills_its_connections,
    scim_deactivation_locks_the_account_and_kills_its_connections,
    a_target_that_fails_during_a_revocation_keeps_it_pending_alerts_and_completes_later,
    drift_scans_report_hand_made_grants_and_unknown_accounts_and_correct_their_own,
    a_database_privilege_waits_for_a_second_administrator_once_two_exist,
    a_burst_of_ends_is_confirmed_in_one_pass_and_an_unanswering_target_holds_up_no_other,
);

/// A target database with the company's tables, a connector account with
/// the least privileges the README lists for MariaDB, and the prefix for
/// the accounts Gatehouse makes there; all dropped by `drop`.
struct Target {
    root: String,
    schema: String,
    connector: String,
    prefix: String,
}

const CONNECTOR_PW: &str = "connector pass 7Hq2";

impl Target {
    async fn create() -> Self {
        let tag = gatehouse::server::platform::crypto::random_token(4)
            .to_lowercase()
            .replace(['-', '_'], "x");
        let root =
            std::env::var("GATEHOUSE_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
        let t = Target {
            schema: format!("ghtarget_{tag}"),
            connector: format!("ghconn_{tag}"),
            prefix: format!("gt{tag}_"),
            root,
        };
        let c = &t.connector;
        let s = &t.schema;
        t.root_exec(&[
            &format!("DROP DATABASE IF EXISTS `{s}`"),
            &format!("CREATE DATABASE `{s}`"),
            &format!("CREATE TABLE `{s}`.customers (id INT PRIMARY KEY, name TEXT)"),
            &format!("CREATE TABLE `{s}`.customer_contacts (id INT PRIMARY KEY, email TEXT)"),
            &format!("INSERT INTO `{s}`.customer_contacts VALUES (1042, 'ada@example.com')"),
            &format!("DROP USER IF EXISTS '{c}'@'%'"),
            &format!("CREATE USER '{c}'@'%' IDENTIFIED BY '{CONNECTOR_PW}'"),
            // The README's least privileges for MariaDB.
            &format!("GRANT CREATE USER, PROCESS, CONNECTION ADMIN ON *.* TO '{c}'@'%'"),
            &format!("GRANT SELECT, UPDATE ON `mysql`.* TO '{c}'@'%'"),
            &format!("GRANT SELECT, INSERT, UPDATE, DELETE ON `{s}`.* TO '{c}'@'%' WITH GRANT OPTION"),
        ])
        .await;
        t
    }

    async fn root(&self) -> MySqlConnection {
        MySqlConnection::connect(&self.root).await.unwrap()
    }

    async fn root_exec(&self, sql: &[&str]) {
        let mut c = self.root().await;
        for s in sql {
            sqlx::raw_sql(s).execute(&mut c).await.unwrap();
        }
        c.close().await.unwrap();
    }

    fn vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("GATEHOUSE_DB_TARGET_ALLOWED_HOSTS", "127.0.0.1".into()),
            ("GATEHOUSE_DB_ACCOUNT_PREFIX", self.prefix.clone()),
        ]
    }

    /// An account nobody told Gatehouse about.
    fn stranger(&self) -> String {
        format!("ghstranger_{}", &self.schema["ghtarget_".len()..])
    }

    /// Signs in as `account` over the MySQL protocol.
    async fn login(&self, account: &str, password: &str) -> Result<MySqlConnection, sqlx::Error> {
        MySqlConnectOptions::new()
            .host("127.0.0.1")
            .port(3306)
            .username(account)
            .password(password)
            .database(&self.schema)
            .connect()
            .await
    }

    async fn drop(self) {
        let mut c = self.root().await;
        let rows = sqlx::query("SELECT User, Host FROM mysql.user WHERE User LIKE ?")
            .bind(format!("{}%", self.prefix))
            .fetch_all(&mut c)
            .await
            .unwrap();
        for r in rows {
            let text = |i: usize| String::from_utf8(r.get::<Vec<u8>, _>(i)).unwrap();
            let (u, h) = (text(0), text(1));
            let what = if h.is_empty() {
                format!("ROLE `{u}`")
            } else {
                format!("USER '{u}'@'{h}'")
            };
            sqlx::raw_sql(&format!("DROP {what}")).execute(&mut c).await.unwrap();
        }
        for s in [
            format!("DROP USER IF EXISTS '{}'@'%'", self.connector),
            format!("DROP USER IF EXISTS '{}'@'%'", self.stranger()),
            format!("DROP DATABASE IF EXISTS `{}`", self.schema),
        ] {
            sqlx::raw_sql(&s).execute(&mut c).await.unwrap();
        }
    }
}

/// Registers `name` at `host`:3306 with the test's connector and
/// `password`, as `who`; `tls` asks for TLS.
async fn register(
    app: &TestApp,
    who: &Client,
    t: &Target,
    name: &str,
    host: &str,
    password: &str,
    tls: bool,
) -> reqwest::Response {
    let mut form = vec![
        ("name", name),
        ("host", host),
        ("port", "3306"),
        ("username", t.connector.as_str()),
        ("password", password),
    ];
    if tls {
        form.push(("tls", "on"));
    }
    app.call(who, "register_db_target", &form).await
}

/// "Test connection" on `target` names no privilege the connector lacks.
async fn connector_lacks_nothing(app: &TestApp, who: &Client, target: i64) {
    let report: Value = app
        .call(who, "test_db_target", &[("id", &target.to_string())])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["missing"], serde_json::json!([]), "{report}");
}

/// Gives `role` SELECT on `schema.table` at `target`, as `who`.
async fn map(app: &TestApp, who: &Client, target: i64, role: &str, schema: &str, table: &str) -> reqwest::Response {
    let target = target.to_string();
    let form = [
        ("target", target.as_str()),
        ("role", role),
        ("privilege", "SELECT"),
        ("schema", schema),
        ("table", table),
    ];
    app.call(who, "map_db_privilege", &form).await
}

/// An app with a registered target and `support-pii` carrying SELECT on
/// the contacts table; the administrator's client and key.
async fn with_target(b: &Backend, t: &Target) -> (TestApp, Client, String, i64) {
    let vars = t.vars();
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::spawn_with(b, &vars).await;
    let (maya, maya_key, _) = app.first_admin(ADMIN, PW).await;
    let r = register(&app, &maya, t, "production", "db.example.com", CONNECTOR_PW, false).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "not on the allow-list");
    assert!(error_message(&r.text().await.unwrap()).contains("GATEHOUSE_DB_TARGET_ALLOWED_HOSTS"));
    let r = register(&app, &maya, t, "production", "127.0.0.1", "wrong password", false).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "refused by the target");
    let body = r.text().await.unwrap();
    assert!(error_message(&body).contains("Access denied"), "{body}");
    assert!(!body.contains("wrong password"));
    // TLS on: the server here offers none, so the connection is refused
    // rather than made in clear.
    let r = register(&app, &maya, t, "production", "127.0.0.1", CONNECTOR_PW, true).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_message(&r.text().await.unwrap()).contains("TLS"));
    assert_eq!(app.count("SELECT COUNT(*) FROM db_targets").await, 0, "nothing stored");
    let r = register(&app, &maya, t, "production", "127.0.0.1", CONNECTOR_PW, false).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let target: i64 = r.json().await.unwrap();
    // The password is sealed: not stored, logged or audited in clear.
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM db_targets WHERE secret_enc LIKE '%{CONNECTOR_PW}%'"
        ))
        .await,
        0
    );
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM audit_events WHERE details LIKE '%{CONNECTOR_PW}%'"
        ))
        .await,
        0
    );
    connector_lacks_nothing(&app, &maya, target).await;

    let r = map(&app, &maya, target, "support-pii", &t.schema, "no_such_table").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_message(&r.text().await.unwrap()).contains("checked in its catalogue"));
    let r = map(&app, &maya, target, "support-pii", &t.schema, "customer_contacts").await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    (app, maya, maya_key, target)
}

async fn my_account(app: &TestApp, c: &Client) -> Value {
    let r = app.call(c, "my_db_accounts", &[]).await;
    let (status, body) = (r.status(), r.text().await.unwrap());
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: Vec<Value> = serde_json::from_str(&body).unwrap();
    v.into_iter().next().unwrap_or(Value::Null)
}

/// Jonas asks for `support-pii` for an hour and Maya approves it; returns
/// Jonas's client and key.
async fn elevated(app: &TestApp, maya: &Client, maya_key: &str, t: &Target) -> (Client, String, i64) {
    let (jonas, jonas_key, jonas_id) = app.employee(maya, "Jonas Becker", JONAS, "support", &["support"]).await;
    let r = app
        .call(
            &jonas,
            "request_elevation",
            &[
                ("role", "support-pii"),
                ("duration", "1h"),
                ("justification", WHY),
                ("ticket", "SUP-1042"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let id = r.text().await.unwrap();
    jobs::run_db_provisioning(&app.state).await;
    assert_ne!(my_account(app, &jonas).await["open"], true, "nothing before approval");
    let account = format!("{}{jonas_id}", t.prefix);
    assert!(
        t.login(&account, "").await.is_err(),
        "no working account before approval"
    );
    app.clock.advance(6 * 60_000);
    let r = app
        .call(
            maya,
            "decide_elevation",
            &[("id", &id), ("decision", "approve"), ("code", &app.code(maya_key))],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    (jonas, jonas_key, jonas_id)
}

async fn password(app: &TestApp, c: &Client, key: &str, target: i64) -> String {
    let r = app
        .call(
            c,
            "new_db_password",
            &[("target", &target.to_string()), ("code", &app.code(key))],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    r.json().await.unwrap()
}

async fn details(app: &TestApp, action: &str) -> Vec<Value> {
    sqlx::query("SELECT details FROM audit_events WHERE action = ? ORDER BY seq")
        .bind(action)
        .fetch_all(app.state.db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let raw = r
                .try_get::<String, _>(0)
                .unwrap_or_else(|_| String::from_utf8(r.get::<Vec<u8>, _>(0)).unwrap());
            serde_json::from_str(&raw).unwrap()
        })
        .collect()
}

async fn connection_id(c: &mut MySqlConnection) -> u64 {
    sqlx::query_scalar("SELECT CONNECTION_ID()").fetch_one(c).await.unwrap()
}

async fn an_approved_elevation_opens_the_database_and_its_expiry_kills_the_held_connection(b: Backend) {
    let t = Target::create().await;
    let (app, maya, maya_key, target) = with_target(&b, &t).await;
    let (jonas, jonas_key, jonas_id) = elevated(&app, &maya, &maya_key, &t).await;
    let account = format!("{}{jonas_id}", t.prefix);
    // Nothing reconciled yet: shown as not provisioned.
    jobs::run_db_provisioning(&app.state).await;
    let mine = my_account(&app, &jonas).await;
    assert_eq!(mine["account"], account.as_str(), "{mine}");
    assert_eq!(
        (mine["provisioned"].as_bool(), mine["open"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(app.audit_count("database.access_provisioned", "success").await, 1);

    // A password needs a fresh code, and works over the MySQL protocol.
    app.clock.advance(6 * 60_000);
    let r = app
        .call(&jonas, "new_db_password", &[("target", &target.to_string())])
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let pw = password(&app, &jonas, &jonas_key, target).await;
    let mut held = t.login(&account, &pw).await.expect("the elevation opens the account");
    let email: String = sqlx::query_scalar("SELECT email FROM customer_contacts WHERE id = 1042")
        .fetch_one(&mut held)
        .await
        .unwrap();
    assert_eq!(email, "ada@example.com");
    let refused = sqlx::query("UPDATE customer_contacts SET email = 'x@example.com'")
        .execute(&mut held)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("1142"), "{refused}");
    assert!(
        sqlx::query("SELECT name FROM customers")
            .fetch_all(&mut held)
            .await
            .is_err(),
        "an unmapped table stays closed"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM audit_events WHERE details LIKE '%{pw}%'"
        ))
        .await,
        0,
        "the password is never audited"
    );
    let held_id = connection_id(&mut held).await;

    // The hour ends: the next pass revokes, locks, kills and reads back.
    app.clock.advance(60 * 60_000);
    jobs::run_db_provisioning(&app.state).await;
    assert!(
        sqlx::query("SELECT 1").execute(&mut held).await.is_err(),
        "the held connection was killed"
    );
    let err = t.login(&account, &pw).await.unwrap_err().to_string();
    assert!(err.contains("locked") || err.contains("4151"), "{err}");
    let receipts = details(&app, "database.revocation_receipt").await;
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    let r = &receipts[0];
    assert_eq!(r["account"], account.as_str());
    assert!(
        r["connections_killed"]
            .as_array()
            .unwrap()
            .contains(&Value::from(held_id)),
        "{r}"
    );
    assert_eq!(r["revoked"], serde_json::json!([format!("{}support_pii", t.prefix)]));
    assert_eq!(
        (r["locked"].as_bool(), r["read_back"]["locked"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(r["read_back"]["connections"], serde_json::json!([]));
    let jonas = app.sign_in(JONAS, "quiet meadow lantern 7", &jonas_key).await;
    let mine = my_account(&app, &jonas).await;
    assert_eq!(mine["open"], false);
    // A password is no longer given out.
    app.clock.advance(60_000);
    let r = app
        .call(
            &jonas,
            "new_db_password",
            &[("target", &target.to_string()), ("code", &app.code(&jonas_key))],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Nothing left to do: another pass changes nothing.
    jobs::run_db_provisioning(&app.state).await;
    assert_eq!(details(&app, "database.revocation_receipt").await.len(), 1);

    // Someone drops the personal role by hand; the next window makes it
    // again (and sets it as the default role), so the account works.
    t.root_exec(&[&format!("DROP ROLE `{account}_roles`")]).await;
    // A new window opens the account with a new unknown password: the
    // earlier window's password does not work in it.
    let r = app
        .call(
            &jonas,
            "request_elevation",
            &[
                ("role", "support-pii"),
                ("duration", "1h"),
                ("justification", WHY),
                ("ticket", "SUP-1043"),
            ],
        )
        .await;
    let id = r.text().await.unwrap();
    let maya = app.sign_in(ADMIN, PW, &maya_key).await;
    let r = app
        .call(&maya, "decide_elevation", &[("id", &id), ("decision", "approve")])
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    jobs::run_db_provisioning(&app.state).await;
    assert_eq!(my_account(&app, &jonas).await["open"], true);
    let err = t.login(&account, &pw).await.unwrap_err().to_string();
    assert!(err.contains("Access denied"), "{err}");
    app.clock.advance(60_000);
    let pw = password(&app, &jonas, &jonas_key, target).await;
    let mut c = t.login(&account, &pw).await.expect("the new window's password works");
    let email: String = sqlx::query_scalar("SELECT email FROM customer_contacts WHERE id = 1042")
        .fetch_one(&mut c)
        .await
        .expect("the personal role was made again");
    assert_eq!(email, "ada@example.com");
    c.close().await.unwrap();
    app.verify_chain().await;
    app.cleanup().await;
    t.drop().await;
}

async fn offboarding_locks_the_account_and_kills_its_connections(b: Backend) {
    ended_by(b, false).await
}

async fn scim_deactivation_locks_the_account_and_kills_its_connections(b: Backend) {
    ended_by(b, true).await
}

/// Jonas, holding a live connection, is offboarded by an administrator or
/// deactivated by the identity provider (SCIM): the next pass locks his
/// account and kills the connection, and the receipt names it.
async fn ended_by(b: Backend, scim: bool) {
    let t = Target::create().await;
    let (app, maya, maya_key, target) = with_target(&b, &t).await;
    let idp_token = if scim {
        let id = service_account(&app, &maya, "okta-scim", &["scim"]).await;
        Some(api_token(&app, &maya, id, "").await)
    } else {
        None
    };
    let (jonas, jonas_key, jonas_id) = elevated(&app, &maya, &maya_key, &t).await;
    jobs::run_db_provisioning(&app.state).await;
    app.clock.advance(60_000);
    let pw = password(&app, &jonas, &jonas_key, target).await;
    let account = format!("{}{jonas_id}", t.prefix);
    let mut held = t.login(&account, &pw).await.unwrap();
    let held_id = connection_id(&mut held).await;
    match idp_token {
        Some(token) => {
            let r = client()
                .patch(app.url(&format!("/scim/v2/Users/{jonas_id}")))
                .bearer_auth(token)
                .header("content-type", "application/scim+json")
                .body(
                    serde_json::json!({
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{ "op": "replace", "path": "active", "value": false }],
                    })
                    .to_string(),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        }
        None => {
            app.clock.advance(6 * 60_000);
            let r = app
                .call(
                    &maya,
                    "offboard_employee",
                    &[
                        ("user_id", &jonas_id.to_string()),
                        ("confirm_email", JONAS),
                        ("code", &app.code(&maya_key)),
                    ],
                )
                .await;
            assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        }
    }
    jobs::run_db_provisioning(&app.state).await;
    assert!(sqlx::query("SELECT 1").execute(&mut held).await.is_err());
    let err = t.login(&account, &pw).await.unwrap_err().to_string();
    assert!(err.contains("locked") || err.contains("4151"), "{err}");
    let r = &details(&app, "database.revocation_receipt").await[0];
    assert!(
        r["connections_killed"]
            .as_array()
            .unwrap()
            .contains(&Value::from(held_id)),
        "{r}"
    );
    assert_eq!(r["read_back"]["locked"], true);
    app.verify_chain().await;
    app.cleanup().await;
    t.drop().await;
}

async fn a_target_that_fails_during_a_revocation_keeps_it_pending_alerts_and_completes_later(b: Backend) {
    let t = Target::create().await;
    let (app, maya, maya_key, target) = with_target(&b, &t).await;
    let (jonas, jonas_key, jonas_id) = elevated(&app, &maya, &maya_key, &t).await;
    jobs::run_db_provisioning(&app.state).await;
    app.clock.advance(60_000);
    let pw = password(&app, &jonas, &jonas_key, target).await;
    let account = format!("{}{jonas_id}", t.prefix);
    // The connector's own account is locked: the target refuses Gatehouse.
    t.root_exec(&[&format!("ALTER USER '{}'@'%' ACCOUNT LOCK", t.connector)])
        .await;
    app.clock.advance(60 * 60_000);
    jobs::run_db_provisioning(&app.state).await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM db_accounts WHERE status = 'pending'")
            .await,
        1,
        "left pending"
    );
    assert_eq!(app.audit_count("database.change_pending", "failure").await, 1);
    assert_eq!(app.audit_count("database.revocation_receipt", "success").await, 0);
    let jonas = app.sign_in(JONAS, "quiet meadow lantern 7", &jonas_key).await;
    let mine = my_account(&app, &jonas).await;
    assert_eq!(mine["provisioned"], false, "{mine}");
    // Retried with growing delays; a minute on, an anomaly alert.
    for _ in 0..8 {
        app.clock.advance(10_000);
        jobs::run_db_provisioning(&app.state).await;
    }
    assert_eq!(
        app.audit_count("database.change_pending", "failure").await,
        1,
        "recorded once"
    );
    assert_eq!(app.audit_count("database.revocation_unconfirmed", "failure").await, 1);
    gatehouse::server::audit::alerts::scan(&app.state).await.unwrap();
    assert_eq!(
        app.count("SELECT COUNT(*) FROM alerts WHERE rule = 'db_revocation'")
            .await,
        1
    );
    // The account still works meanwhile: that is what the alert is for.
    assert!(t.login(&account, &pw).await.is_ok());

    // The target comes back: the revocation completes at the next retry.
    t.root_exec(&[&format!("ALTER USER '{}'@'%' ACCOUNT UNLOCK", t.connector)])
        .await;
    app.clock.advance(60_000);
    jobs::run_db_provisioning(&app.state).await;
    assert!(t.login(&account, &pw).await.is_err());
    assert_eq!(app.audit_count("database.revocation_receipt", "success").await, 1);
    assert_eq!(
        details(&app, "database.revocation_receipt").await[0]["closes_alert"],
        true
    );
    // Confirmed: the alert closes by itself, naming the receipt.
    gatehouse::server::audit::alerts::scan(&app.state).await.unwrap();
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM alerts WHERE rule = 'db_revocation' AND acknowledged_at IS NOT NULL \
             AND acknowledged_by IS NULL AND ack_comment LIKE 'Closed by Gatehouse: the end of access was confirmed%'"
        )
        .await,
        1
    );
    assert_eq!(app.audit_count("alert.acknowledged", "success").await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM db_accounts WHERE status = 'provisioned' AND locked = 1")
            .await,
        1
    );
    app.verify_chain().await;
    app.cleanup().await;
    t.drop().await;
}

async fn drift_scans_report_hand_made_grants_and_unknown_accounts_and_correct_their_own(b: Backend) {
    let t = Target::create().await;
    let (app, maya, maya_key, target) = with_target(&b, &t).await;
    let (_, jonas_key, jonas_id) = elevated(&app, &maya, &maya_key, &t).await;
    jobs::run_db_provisioning(&app.state).await;
    let scan = || async {
        let r = app.call(&maya, "scan_db_drift", &[("id", &target.to_string())]).await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json::<Value>().await.unwrap()
    };
    assert_eq!(scan().await["findings"], serde_json::json!([]), "as intended");
    assert_eq!(app.audit_count("database.drift_found", "failure").await, 0);

    // By hand: UPDATE for Jonas's account, and a stranger on the schema.
    let account = format!("{}{jonas_id}", t.prefix);
    let stranger = t.stranger();
    t.root_exec(&[
        &format!("GRANT UPDATE ON `{}`.customer_contacts TO '{account}'@'%'", t.schema),
        &format!("CREATE USER '{stranger}'@'%' IDENTIFIED BY 'x'"),
        &format!("GRANT SELECT ON `{}`.* TO '{stranger}'@'%'", t.schema),
    ])
    .await;
    // The minute's scan finds both, exactly.
    app.clock.advance(61_000);
    jobs::run_db_provisioning(&app.state).await;
    let found = details(&app, "database.drift_found").await;
    assert_eq!(found.len(), 1);
    let findings = found[0]["findings"].as_array().unwrap();
    assert!(
        findings.iter().any(|f| f["kind"] == "ExtraPrivilege"
            && f["subject"] == account.as_str()
            && f["detail"] == format!("UPDATE on {}.customer_contacts granted by hand", t.schema)),
        "{findings:?}"
    );
    assert!(
        findings
            .iter()
            .any(|f| f["kind"] == "UnknownAccount" && f["subject"] == format!("{stranger}@%")),
        "{findings:?}"
    );
    assert_eq!(findings.len(), 2, "{findings:?}");
    gatehouse::server::audit::alerts::scan(&app.state).await.unwrap();
    assert_eq!(
        app.count("SELECT COUNT(*) FROM alerts WHERE rule = 'db_drift'").await,
        1
    );
    // The same drift is not recorded again.
    assert_eq!(scan().await["findings"].as_array().unwrap().len(), 2);
    assert_eq!(app.audit_count("database.drift_found", "failure").await, 1);

    // Correction on: Gatehouse's own drift is undone, the stranger only reported.
    app.clock.advance(6 * 60_000);
    let r = app
        .call(
            &maya,
            "set_db_drift_correction",
            &[("id", &target.to_string()), ("on", "on")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "needs a fresh code");
    let r = app
        .call(
            &maya,
            "set_db_drift_correction",
            &[
                ("id", &target.to_string()),
                ("on", "on"),
                ("code", &app.code(&maya_key)),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let v = scan().await;
    assert_eq!(v["corrected"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["findings"].as_array().unwrap().len(), 1, "{v}");
    assert!(v["findings"][0].as_str().unwrap().starts_with(&stranger), "{v}");
    let corrected = details(&app, "database.drift_corrected").await;
    assert_eq!(corrected[0]["corrected"][0]["subject"], account.as_str());
    let jonas = app.sign_in(JONAS, "quiet meadow lantern 7", &jonas_key).await;
    let pw = password(&app, &jonas, &jonas_key, target).await;
    let mut c = t.login(&account, &pw).await.unwrap();
    let refused = sqlx::query("UPDATE customer_contacts SET email = 'x@example.com'")
        .execute(&mut c)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("1142"),
        "the hand-made UPDATE is gone: {refused}"
    );
    c.close().await.unwrap();
    app.verify_chain().await;
    app.cleanup().await;
    t.drop().await;
}

async fn a_database_privilege_waits_for_a_second_administrator_once_two_exist(b: Backend) {
    let t = Target::create().await;
    let (app, maya, _, target) = with_target(&b, &t).await;
    let (lena, _, _) = app
        .employee(
            &maya,
            "Lena Fischer",
            "lena.fischer@sunridge-solar.example",
            "engineering",
            &["admin"],
        )
        .await;
    let (jonas, jonas_key, jonas_id) = app
        .employee(&maya, "Jonas Becker", JONAS, "support", &["support"])
        .await;
    // Two administrators now: Maya's proposal waits, and reaches nothing.
    let r = map(&app, &maya, target, "support", &t.schema, "customers").await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert_eq!(r.text().await.unwrap(), "true", "waits");
    assert_eq!(app.audit_count("database.privilege_proposed", "success").await, 1);
    jobs::run_db_provisioning(&app.state).await;
    assert_ne!(my_account(&app, &jonas).await["open"], true);
    let id: i64 = app
        .count("SELECT id FROM db_role_privileges WHERE state = 'proposed'")
        .await;
    let r = app
        .call(&maya, "approve_db_privilege", &[("id", &id.to_string())])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "not by the proposer");
    assert!(error_message(&r.text().await.unwrap()).contains("Another administrator"));
    let r = app
        .call(&lena, "approve_db_privilege", &[("id", &id.to_string())])
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let approved = details(&app, "database.privilege_mapped").await;
    assert_eq!(approved.last().unwrap()["proposed_by"], app.user_id(ADMIN).await);
    // Jonas's standing support role now opens his account.
    jobs::run_db_provisioning(&app.state).await;
    assert_eq!(my_account(&app, &jonas).await["open"], true);
    let pw = password(&app, &jonas, &jonas_key, target).await;
    let mut c = t.login(&format!("{}{jonas_id}", t.prefix), &pw).await.unwrap();
    sqlx::query("SELECT name FROM customers")
        .fetch_all(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    app.verify_chain().await;
    app.cleanup().await;
    t.drop().await;
}

/// Employees holding `support-pii` for an hour, made directly (many at once).
async fn holders(app: &TestApp, n: usize) -> Vec<i64> {
    use gatehouse::server::{access::grants, identity::accounts as users};
    let mut ids = Vec::new();
    for i in 0..n {
        let now = app.state.clock.now();
        let mut tx = app.state.db.begin_write().await.unwrap();
        let email = format!("holder{i}@sunridge-solar.example");
        let user = users::NewUser {
            email: &email,
            display_name: "Holder",
            department: "support",
            password_hash: None,
            status: "active",
            provisioned_by: users::Provisioning::Gatehouse,
        };
        let id = users::insert(&mut tx, user, now).await.unwrap();
        let grant = grants::NewGrant {
            user_id: id,
            role: "support-pii",
            granted_by: None,
            reason: "standing access under review",
            starts_at: now,
            expires_at: Some(now + 3_600_000),
            pending: false,
            customers: &[],
        };
        grants::insert(&mut tx, grant, now).await.unwrap();
        tx.commit().await.unwrap();
        ids.push(id);
    }
    ids
}

/// Twelve grants end at one instant: the job ends all twelve accounts and
/// kills each held connection, its receipts naming them; meanwhile a target
/// that accepts connections but never answers (registered first, so it
/// comes first) is left pending without holding the other up.
async fn a_burst_of_ends_is_confirmed_in_one_pass_and_an_unanswering_target_holds_up_no_other(b: Backend) {
    let t = Target::create().await;
    // The first target (lower id, so first in every pass) is later pointed
    // at a listener that accepts connections and never says a word.
    let (app, maya, _, silent) = with_target(&b, &t).await;
    let people = holders(&app, 12).await;
    jobs::run_db_provisioning(&app.state).await;
    let open = |target: i64| {
        format!("SELECT COUNT(*) FROM db_accounts WHERE target_id = {target} AND status = 'provisioned' AND locked = 0")
    };
    assert_eq!(app.count(&open(silent)).await, 12, "all twelve opened in one pass");
    // The second target: the same server under another name.
    let r = register(&app, &maya, &t, "replica", "127.0.0.1", CONNECTOR_PW, false).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let good: i64 = r.json().await.unwrap();
    let r = map(&app, &maya, good, "support-pii", &t.schema, "customer_contacts").await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    jobs::run_db_provisioning(&app.state).await;
    assert_eq!(app.count(&open(good)).await, 12);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mute = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    sqlx::query("UPDATE db_targets SET port = ? WHERE id = ?")
        .bind(port as i64)
        .bind(silent)
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let mut held = Vec::new();
    for id in &people {
        let account = format!("{}{id}", t.prefix);
        t.root_exec(&[&format!("ALTER USER '{account}'@'%' IDENTIFIED BY 'held pw 1'")])
            .await;
        let mut c = t.login(&account, "held pw 1").await.unwrap();
        held.push((connection_id(&mut c).await, c));
    }

    // The hour ends for all twelve at once, with the job running as in production.
    app.clock.advance(3_600_000);
    let job = jobs::spawn_db_provisioning(app.state.clone(), std::time::Duration::from_millis(100));
    let receipts = format!(
        "SELECT COUNT(*) FROM audit_events WHERE action = 'database.revocation_receipt' AND details LIKE '%\"target_id\":{good}%'"
    );
    let pending_silent = format!("SELECT COUNT(*) FROM db_accounts WHERE target_id = {silent} AND status = 'pending'");
    while app.count(&receipts).await < 12 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        app.count(&pending_silent).await,
        0,
        "the good target's receipts came in while the silent one was still waiting for an answer"
    );
    for (id, c) in &mut held {
        assert!(
            sqlx::query("SELECT 1").execute(&mut *c).await.is_err(),
            "connection {id} killed"
        );
    }
    let all = details(&app, "database.revocation_receipt").await;
    let killed: Vec<u64> = all
        .iter()
        .filter(|r| r["target_id"] == good)
        .flat_map(|r| {
            r["connections_killed"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
        })
        .collect();
    for (id, _) in &held {
        assert!(killed.contains(id), "receipt names connection {id}: {killed:?}");
    }
    // The silent target times out: its changes are left pending, each recorded.
    while app.count(&pending_silent).await < 12 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    job.abort();
    mute.abort();
    let pending = details(&app, "database.change_pending").await;
    assert_eq!(
        pending.iter().filter(|p| p["target_id"] == silent).count(),
        12,
        "{pending:?}"
    );
    assert!(
        pending
            .iter()
            .all(|p| p["error"].as_str().unwrap_or("").contains("did not answer")),
        "{pending:?}"
    );
    app.verify_chain().await;
    app.cleanup().await;
    t.drop().await;
}
