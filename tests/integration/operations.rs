//! What an operator and a load balancer rely on: liveness and readiness,
//! and SQLite backups taken while the server works, restored elsewhere.

use crate::helpers::{
    process::{said, Process},
    tempdir::Dir,
    *,
};
use reqwest::StatusCode;
use serde_json::json;
use std::future::IntoFuture;

const ADMIN: &str = "maya.okafor@sunridge-solar.example";
const PW: &str = "violet harbour lantern 42";
const JONAS: &str = "jonas.becker@sunridge-solar.example";

/// `gatehouse ARGS` on the SQLite database in `dir`.
fn gatehouse(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let p = Process {
        env: vec![
            ("GATEHOUSE_DATA_DIR".into(), dir.display().to_string()),
            (
                "GATEHOUSE_DATABASE_URL".into(),
                format!("sqlite://{}/gatehouse.db", dir.display()),
            ),
        ],
    };
    p.command(args).output().unwrap()
}

on_both!(ready_only_with_a_current_schema, one_server_at_a_time_leads_the_jobs);

/// /readyz answers 200 on a migrated database and 503, naming the check,
/// once the schema lacks a migration of this version; /healthz stays 200.
async fn ready_only_with_a_current_schema(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let c = client();
    let r = app.get(&c, "/readyz").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["schema"], "current");
    assert_eq!(body["checks"]["signing_key"], "loaded");

    // As if this binary were newer than the database: its last migration
    // is not applied.
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = (SELECT v FROM (SELECT MAX(version) AS v FROM _sqlx_migrations) m)")
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let r = app.get(&c, "/readyz").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "not ready");
    assert_eq!(body["checks"]["schema"], "1 migrations pending");
    let r = app.get(&c, "/healthz").await;
    assert_eq!(r.status(), StatusCode::OK);
    app.cleanup().await;
}

/// A backup taken while access checks are being recorded verifies, holds
/// every check answered before it started, restores into a new data
/// directory (with the master key), and a server started there signs the
/// administrator in. A tampered copy and an occupied target are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_under_load_restores_and_signs_in() {
    let app = TestApp::spawn(&Backend::Sqlite).await;
    let (admin, key, _) = app.first_admin(ADMIN, PW).await;
    app.employee(&admin, "Jonas Becker", JONAS, "support", &["support"])
        .await;
    let acct = service_account(&app, &admin, "customer-api", &["access:check"]).await;
    let token = api_token(&app, &admin, acct, "").await;
    let data = app.state.config.data_dir.clone();

    // Writers: access checks naming a customer, each one an audit event.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (url, token, stop) = (app.url("/api/v1/access-checks"), token.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let c = client();
            let mut ok = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let body = json!({ "employee": JONAS, "permission": "customers:read",
                    "resource": { "type": "customer", "id": format!("C-{w}-{ok}") }, "customer_id": format!("C-{w}-{ok}"),
                    "purpose": "ticket SUP-77" });
                let r = c.post(&url).bearer_auth(&token).json(&body).send().await.unwrap();
                assert_eq!(r.status(), StatusCode::OK);
                ok += 1;
            }
            ok
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let before = app.audit_count("access.check", "success").await;
    assert!(before > 0, "the writers wrote nothing");

    let out_dir = Dir::new();
    let copy = out_dir.0.join("backup.db");
    let copy_arg = copy.display().to_string();
    let out = tokio::task::spawn_blocking({
        let (data, copy_arg) = (data.clone(), copy_arg.clone());
        move || gatehouse(&data, &["backup", &copy_arg])
    })
    .await
    .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut written = 0;
    for w in writers {
        written += w.await.unwrap();
    }
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(said(&out).starts_with(&format!("OK: {copy_arg}: ")), "{}", said(&out));
    assert!(written > 0);

    // The copy holds at least what was acknowledged before it began.
    let in_copy = rusqlite_count(&copy, "SELECT COUNT(*) FROM audit_events WHERE action = 'access.check'");
    assert!(
        in_copy >= before,
        "the copy lost acknowledged checks: {in_copy} < {before}"
    );

    // The copy is readable by its owner only.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777, 0o600);

    // A second backup into the same file is refused: nothing overwritten.
    let again = gatehouse(&data, &["backup", &copy_arg]);
    assert_eq!(again.status.code(), Some(1));
    assert!(said(&again).contains("exists already"), "{}", said(&again));

    // Restore into a new data directory: without the master key, refused.
    let fresh = Dir::new();
    let out = gatehouse(&fresh.0, &["restore", &copy_arg]);
    assert_eq!(out.status.code(), Some(1));
    assert!(said(&out).contains("master key"), "{}", said(&out));
    assert!(!fresh.0.join("gatehouse.db").exists());
    copy_key(&data, &fresh.0);
    let out = gatehouse(&fresh.0, &["restore", &copy_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    // Restoring over a database that exists is refused.
    let out = gatehouse(&fresh.0, &["restore", &copy_arg]);
    assert_eq!(out.status.code(), Some(1));
    assert!(said(&out).contains("exists"), "{}", said(&out));

    // A server on the restored directory signs the administrator in.
    let db_url = format!("sqlite://{}/gatehouse.db", fresh.0.display());
    let data_dir = fresh.0.display().to_string();
    let restored = TestApp::spawn_with(
        &Backend::Sqlite,
        &[("GATEHOUSE_DATA_DIR", &data_dir), ("GATEHOUSE_DATABASE_URL", &db_url)],
    )
    .await;
    restored.clock.set(app.clock.now() + 60_000);
    let c = restored.sign_in(ADMIN, PW, &key).await;
    assert_eq!(restored.me(&c).await["email"], ADMIN);
    restored.verify_chain().await;

    // A copy whose history was rewritten is refused, and nothing is restored.
    let tampered = out_dir.0.join("tampered.db");
    std::fs::copy(&copy, &tampered).unwrap();
    rusqlite_exec(
        &tampered,
        &[
            "DROP TRIGGER IF EXISTS audit_events_no_update",
            "UPDATE audit_events SET reason = 'nothing to see' WHERE seq = (SELECT MAX(seq) FROM audit_events)",
        ],
    );
    let other = Dir::new();
    copy_key(&data, &other.0);
    let out = gatehouse(&other.0, &["restore", &tampered.display().to_string()]);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(said(&out).contains("REFUSED"), "{}", said(&out));
    assert!(!other.0.join("gatehouse.db").exists());
    assert!(!other.0.join("gatehouse.db.restoring").exists());
}

fn copy_key(from: &std::path::Path, to: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::copy(from.join("master.key"), to.join("master.key")).unwrap();
    std::fs::set_permissions(to.join("master.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn rusqlite_count(path: &std::path::Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn rusqlite_exec(path: &std::path::Path, sql: &[&str]) {
    let conn = rusqlite::Connection::open(path).unwrap();
    for s in sql {
        conn.execute(s, []).unwrap();
    }
}

/// The value of one sample line of a Prometheus text answer.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .map_or(0.0, |v| v.parse().unwrap())
}

/// /metrics answers only on its own listener, in Prometheus text format,
/// counts what happened (failed sign-ins, requests by route template,
/// job passes), reads the audit head, and names nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_their_own_listener_name_nobody() {
    let app = TestApp::spawn(&Backend::Sqlite).await;
    let (admin, _, _) = app.first_admin(ADMIN, PW).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = format!("http://{}/metrics", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, gatehouse::server::http::metrics::router(app.state.clone())).into_future());
    let c = client();
    let scrape = || async { c.get(&metrics).send().await.unwrap().text().await.unwrap() };

    // Not on the public listener.
    assert_eq!(app.get(&c, "/metrics").await.status(), StatusCode::NOT_FOUND);

    let before = scrape().await;
    let failures = "gatehouse_audit_events_committed_total{action=\"auth.signin\",outcome=\"failure\"}";
    for _ in 0..2 {
        let r = app
            .call(
                &client(),
                "sign_in",
                &[("email", JONAS), ("password", "wrong password 1")],
            )
            .await;
        assert!(r.status().is_client_error());
    }
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    let r = c.get(&metrics).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    let after = r.text().await.unwrap();
    assert!(sample(&after, failures) >= sample(&before, failures) + 2.0, "{after}");
    assert!(
        after
            .lines()
            .any(|l| l.starts_with("gatehouse_http_requests_total{route=\"/api/")),
        "{after}"
    );
    assert!(after.contains("# TYPE gatehouse_http_request_duration_seconds histogram"));
    assert!(sample(&after, "gatehouse_job_lag_seconds{job=\"grant_expiry\"}") >= 0.0);
    assert!(after.contains("gatehouse_job_last_success_timestamp_seconds{job=\"checkpoint_signing\"}"));
    let head = app.count("SELECT last_seq FROM audit_head WHERE id = 1").await;
    assert_eq!(sample(&after, "gatehouse_audit_head_sequence"), head as f64);
    // The job signed a checkpoint and extended the stored tree to it; one
    // signed outside the job leaves the tree behind until its next pass.
    assert_eq!(sample(&after, "gatehouse_audit_tree_lag_events"), 0.0, "{after}");
    let r = app
        .call(
            &client(),
            "sign_in",
            &[("email", JONAS), ("password", "wrong password 2")],
        )
        .await;
    assert!(r.status().is_client_error());
    let signed = gatehouse::server::audit::checkpoints::sign(&app.state, true)
        .await
        .unwrap()
        .unwrap();
    let lag = sample(&scrape().await, "gatehouse_audit_tree_lag_events");
    let stored = gatehouse::server::audit::tree::stored_size(&app.state.db)
        .await
        .unwrap();
    assert!(lag >= 1.0 && lag == (signed.tree_size - stored) as f64, "{lag}");
    assert!(
        sample(&after, "gatehouse_sessions_active") >= 1.0,
        "the administrator's session"
    );
    // Every sample belongs to a declared metric; nobody is named.
    for l in after.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let name = l.split(['{', ' ']).next().unwrap();
        let base = name
            .trim_end_matches("_bucket")
            .trim_end_matches("_sum")
            .trim_end_matches("_count");
        assert!(
            after.contains(&format!("# TYPE {base} ")) || after.contains(&format!("# TYPE {name} ")),
            "{l}"
        );
    }
    for who in [ADMIN, JONAS, "127.0.0.1"] {
        assert!(!after.contains(who), "{who} in the metrics");
    }
    drop(admin);
    app.cleanup().await;
}

/// Two servers on one database: one holds the access-jobs lease, the other
/// is refused while it is renewed and takes it once it lapses (the holder
/// stopped renewing); the old holder is then refused. A clean stop gives
/// the lease up at once.
async fn one_server_at_a_time_leads_the_jobs(b: Backend) {
    use gatehouse::server::{jobs, platform::leases};
    let a = TestApp::spawn(&b).await;
    let url = a.state.config.database_url.clone();
    let dir = a.state.config.data_dir.display().to_string();
    let other = TestApp::spawn_with(&b, &[("GATEHOUSE_DATABASE_URL", &url), ("GATEHOUSE_DATA_DIR", &dir)]).await;
    let (db_a, db_b) = (&a.state.db, &other.state.db);
    let t0 = a.clock.now();
    assert!(leases::hold(db_a, "access_jobs", "server-a", t0).await.unwrap());
    assert!(!leases::hold(db_b, "access_jobs", "server-b", t0 + 1_000).await.unwrap());
    // Renewed by its holder, still refused to the other.
    assert!(leases::hold(db_a, "access_jobs", "server-a", t0 + 8_000).await.unwrap());
    assert!(!leases::hold(db_b, "access_jobs", "server-b", t0 + 17_000)
        .await
        .unwrap());
    // The holder stops renewing: the other takes over once it lapses.
    assert!(
        leases::hold(db_b, "access_jobs", "server-b", t0 + 8_000 + leases::TTL + 1)
            .await
            .unwrap()
    );
    assert!(
        !leases::hold(db_a, "access_jobs", "server-a", t0 + 8_000 + leases::TTL + 2)
            .await
            .unwrap()
    );
    // Leases are separate: the janitor's is free.
    assert!(leases::hold(db_a, "janitor", "server-a", t0).await.unwrap());
    // Given up on a clean stop: the other need not wait.
    leases::release(db_b, "access_jobs", "server-b").await.unwrap();
    assert!(
        leases::hold(db_a, "access_jobs", "server-a", t0 + 8_000 + leases::TTL + 3)
            .await
            .unwrap()
    );

    // This process's own holder name leads through `jobs::leads`, unless
    // another holds the lease.
    assert!(
        !jobs::leads(&a.state, "access_jobs").await,
        "server-a holds it, not this process"
    );
    leases::release(db_a, "access_jobs", "server-a").await.unwrap();
    assert!(jobs::leads(&a.state, "access_jobs").await);
    other.cleanup().await;
    a.cleanup().await;
}
