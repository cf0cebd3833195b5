//! Three `gatehouse serve` processes on one MariaDB database behave as one
//! Gatehouse: sign-ins, grants, access checks and event batches spread over
//! all three while one is killed with SIGKILL; then the chain verifies,
//! every acknowledged event is there, nothing was decided twice, and the
//! background jobs went on on a survivor. MySQL only (SQLite is one server).

use crate::alerts::receiver;
use crate::helpers::{load::write_load, process::*, tempdir::Dir, *};
use reqwest::{Client, StatusCode};
use serde_json::json;
use sqlx::Row;
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

on_both!(
    every_server_delivers_and_each_message_goes_out_once,
    a_due_offboarding_is_decided_once_by_two_servers,
    every_server_sweeps_what_is_due_and_one_writer_work_waits_for_the_lease,
);

const KEY: &str = "cmVwbGljYXMtc2hhcmUtb25lLW1hc3Rlci1rZXkhISE=";

fn now_ms() -> i64 {
    gatehouse::server::platform::clock::Clock::system().now()
}

async fn call(c: &Client, base: &str, name: &str, form: &[(&str, &str)]) -> reqwest::Response {
    c.post(format!("{base}/api/{name}")).form(form).send().await.unwrap()
}

/// Signs in for the first time at `base` and sets up the authenticator,
/// with codes from the test's own TOTP implementation.
async fn first_sign_in(base: &str, email: &str, password: &str) -> Client {
    let c = client();
    let r = call(&c, base, "sign_in", &[("email", email), ("password", password)]).await;
    assert_eq!(r.status(), StatusCode::OK, "{email}: {}", r.text().await.unwrap());
    let r = call(&c, base, "enrolment", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let e: serde_json::Value = r.json().await.unwrap();
    let key = e["key"].as_str().unwrap().replace(' ', "");
    let r = call(&c, base, "confirm_enrolment", &[("code", &totp_now(&key, now_ms()))]).await;
    assert_eq!(r.status(), StatusCode::OK, "{email}: {}", r.text().await.unwrap());
    assert_eq!(
        call(&c, base, "take_recovery_codes", &[]).await.status(),
        StatusCode::OK
    );
    c
}

async fn scalar(pool: &sqlx::AnyPool, sql: &str) -> i64 {
    sqlx::query(sql).fetch_one(pool).await.unwrap().try_get(0).unwrap()
}

async fn lease(pool: &sqlx::AnyPool) -> (String, i64) {
    let r = sqlx::query("SELECT holder, expires_at FROM job_leases WHERE name = 'access_jobs'")
        .fetch_one(pool)
        .await
        .unwrap();
    (r.try_get("holder").unwrap(), r.try_get("expires_at").unwrap())
}

/// Polls `check` every 200 ms for up to `secs` seconds.
async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < until, "not within {secs} s: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_servers_on_one_database_act_as_one_when_one_is_killed() {
    let Some(Backend::MySql { root_url }) = Backend::mysql().await else {
        return;
    };
    let name = format!("gh_t_rep{}", std::process::id());
    let (root, db_url) = new_mysql_database(&root_url, &name).await;
    let (hook, received) = receiver(false).await;
    let dirs: Vec<Dir> = (0..3).map(|_| Dir::new()).collect();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let bases: Vec<String> = ports.iter().map(|p| format!("http://127.0.0.1:{p}")).collect();
    let server = |i: usize| Process {
        env: [
            ("GATEHOUSE_DATA_DIR", dirs[i].0.display().to_string()),
            ("GATEHOUSE_DATABASE_URL", db_url.clone()),
            ("GATEHOUSE_MASTER_KEY", KEY.to_owned()),
            ("GATEHOUSE_LISTEN", format!("127.0.0.1:{}", ports[i])),
            ("GATEHOUSE_ALERT_CUSTOMERS_PER_HOUR", "50".to_owned()),
            // Company daytime whenever the test runs: the servers use the
            // real clock, and at company night every access would also raise
            // an after-hours alert (a run after 20:00 UTC failed on it).
            ("GATEHOUSE_COMPANY_UTC_OFFSET_MINUTES", daytime_offset()),
            ("GATEHOUSE_ALERT_WEBHOOK_URL", hook.clone()),
            ("GATEHOUSE_ALERT_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1".to_owned()),
            ("GATEHOUSE_ALERT_WEBHOOK_SECRET", "webhook-secret-0123456789".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
    };
    let people = server(0).run(&["seed-demo"]);
    let person = |role: &str, nth: usize| {
        let l = people
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some(role))
            .nth(nth)
            .unwrap();
        let mut words = l.split_whitespace();
        (words.next().unwrap().to_owned(), words.nth(1).unwrap().to_owned())
    };
    let token = server(0)
        .run(&["service-token", "loader", "events:write,access:check"])
        .trim()
        .to_owned();
    let pool = sqlx::AnyPool::connect(&db_url).await.unwrap();
    let p = &pool;

    // The first server takes the job lease; then two more start.
    let mut first = server(0).serve();
    eventually(15, "the first server leads the jobs", move || async move {
        lease(p).await.1 > now_ms()
    })
    .await;
    let (killed_holder, _) = lease(&pool).await;
    let _others: Vec<Running> = (1..3).map(|i| server(i).serve()).collect();

    // Load over all three; meanwhile people sign in, each at another server,
    // and the administrator grants roles through the other two.
    let stop = Arc::new(AtomicBool::new(false));
    let (support, _) = person("support", 0);
    let writers = tokio::spawn(write_load(bases.clone(), token, support.clone(), "R", stop.clone()));
    let signers: Vec<_> = [("admin", 0, 0), ("support", 1, 1), ("support", 2, 2), ("auditor", 0, 1)]
        .into_iter()
        .map(|(role, nth, at)| {
            let (email, pw) = person(role, nth);
            let base = bases[at].clone();
            tokio::spawn(async move { first_sign_in(&base, &email, &pw).await })
        })
        .collect();
    let mut clients = Vec::new();
    for s in signers {
        clients.push(s.await.unwrap());
    }
    let admin = &clients[0];
    let user_id = |email: String| {
        let pool = pool.clone();
        async move {
            let r = sqlx::query("SELECT id FROM users WHERE email = ?")
                .bind(email)
                .fetch_one(&pool)
                .await
                .unwrap();
            r.try_get::<i64, _>("id").unwrap().to_string()
        }
    };
    for (nth, at) in [(1, 1), (2, 2)] {
        let id = user_id(person("support", nth).0).await;
        let r = call(
            admin,
            &bases[at],
            "grant_role",
            &[
                ("user_id", &id),
                ("role", "support-pii"),
                ("reason", "case 4711"),
                ("expires_in", "1h"),
            ],
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    }

    // SIGKILL the server that leads the jobs, in the middle of it all.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    first.kill().unwrap();
    first.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.store(true, Ordering::SeqCst);
    let acked = writers.await.unwrap();
    assert!(acked.len() > 100, "too little load to mean anything: {}", acked.len());

    // A survivor took the jobs over and judged every event, including
    // those written after the kill.
    let killed = &killed_holder;
    eventually(30, "a survivor leads the jobs", move || async move {
        let (holder, until) = lease(p).await;
        holder != *killed && until > now_ms()
    })
    .await;
    eventually(30, "the alert rules caught up with the trail", move || async move {
        scalar(
            p,
            "SELECT (SELECT last_seq FROM audit_head WHERE id = 1) - (SELECT last_seq FROM alert_cursor WHERE id = 1)",
        )
        .await
            == 0
    })
    .await;

    // Every acknowledged write is stored, once.
    let rows: Vec<(String, i64)> = sqlx::query(
        "SELECT customer_id, COUNT(*) AS n FROM audit_events WHERE customer_id LIKE 'R-%' GROUP BY customer_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.try_get("customer_id").unwrap(), r.try_get("n").unwrap()))
    .collect();
    let stored: std::collections::HashMap<String, i64> = rows.into_iter().collect();
    let lost: Vec<_> = acked.iter().filter(|id| !stored.contains_key(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged writes lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    assert!(stored.values().all(|n| *n == 1), "a write stored twice");
    assert_eq!(
        scalar(&pool, "SELECT COUNT(*) FROM audit_events WHERE action = 'mfa.enrolled'").await,
        4
    );
    assert_eq!(
        scalar(
            &pool,
            "SELECT COUNT(*) FROM audit_events WHERE action = 'grant.created' AND outcome = 'success'"
        )
        .await,
        2
    );

    // Decided once: one alert for the employee's many customers, counting
    // each matching event once; no notification twice.
    assert_eq!(
        scalar(&pool, "SELECT COUNT(*) FROM alerts WHERE rule = 'many_customers'").await,
        1
    );
    assert_eq!(
        scalar(
            &pool,
            "SELECT occurrences - (SELECT COUNT(*) FROM alert_events WHERE alert_id = alerts.id) \
                       FROM alerts WHERE rule = 'many_customers'"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(
            &pool,
            "SELECT COUNT(*) FROM (SELECT user_id, subject, link FROM notifications \
                       GROUP BY user_id, subject, link HAVING COUNT(*) > 1) twice"
        )
        .await,
        0
    );
    // The webhook heard of it (at least once, by a stable delivery id).
    let alert_id = scalar(&pool, "SELECT id FROM alerts WHERE rule = 'many_customers'").await;
    let got = &received;
    eventually(30, "the alert webhook was called", move || async move {
        !got.lock().unwrap().is_empty()
    })
    .await;
    let ids: std::collections::BTreeSet<String> = received.lock().unwrap().iter().map(|r| r.2.clone()).collect();
    // One id per call: raised (1), then each mark crossed.
    let calls: Vec<String> = ["1", "10", "100", "1000"]
        .iter()
        .map(|m| format!("alert-{alert_id}-{m}."))
        .collect();
    assert!(
        ids.iter().all(|id| calls.iter().any(|c| id.starts_with(c.as_str()))),
        "{ids:?}"
    );

    // The chain verifies, checkpoints included (never two with one number).
    let out = server(1).run(&["audit", "verify"]);
    assert!(out.starts_with("OK: "), "{out}");
    assert_eq!(
        scalar(&pool, "SELECT COUNT(*) - COUNT(DISTINCT number) FROM audit_checkpoints").await,
        0
    );
    pool.close().await;
    sqlx::query(&format!("DROP DATABASE `{name}`"))
        .execute(&root)
        .await
        .unwrap();
}

/// Two servers deliver at the same moment: each outbox message and each
/// alert call is claimed by one of them and sent once.
async fn every_server_delivers_and_each_message_goes_out_once(b: Backend) {
    use gatehouse::server::{access::notify, audit::alerts};
    let (notify_hook, notified) = receiver(false).await;
    let (alert_hook, alerted) = receiver(false).await;
    let app = TestApp::spawn_with(
        &b,
        &[
            ("GATEHOUSE_NOTIFY_WEBHOOK_URL", &notify_hook),
            ("GATEHOUSE_NOTIFY_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1"),
            ("GATEHOUSE_ALERT_WEBHOOK_URL", &alert_hook),
            ("GATEHOUSE_ALERT_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1"),
            ("GATEHOUSE_ALERT_WEBHOOK_SECRET", "webhook-secret-0123456789"),
        ],
    )
    .await;
    let other = app.another().await;
    let now = app.clock.now();
    for i in 0..12 {
        sqlx::query(
            "INSERT INTO notification_outbox (channel, recipient, subject, body, created_at, next_attempt_at) \
             VALUES ('webhook', '', ?, ?, ?, ?)",
        )
        .bind(format!("message {i}"))
        .bind(json!({ "text": format!("message {i}") }).to_string())
        .bind(now)
        .bind(now)
        .execute(app.state.db.pool())
        .await
        .unwrap();
    }
    for i in 0..6 {
        sqlx::query("INSERT INTO alerts (rule, event_seq, summary, raised_at) VALUES ('night_access', ?, ?, ?)")
            .bind(i + 1)
            .bind(format!("alert {i}"))
            .bind(now)
            .execute(app.state.db.pool())
            .await
            .unwrap();
    }
    let (a, b2) = tokio::join!(notify::deliver(&app.state), notify::deliver(&other.state));
    assert_eq!(a.unwrap() + b2.unwrap(), 12);
    let (a, b2) = tokio::join!(alerts::deliver(&app.state), alerts::deliver(&other.state));
    assert_eq!(a.unwrap() + b2.unwrap(), 6);
    // Once more on both: nothing is left to send.
    let (a, b2) = tokio::join!(notify::deliver(&app.state), notify::deliver(&other.state));
    assert_eq!(a.unwrap() + b2.unwrap(), 0);
    let (a, b2) = tokio::join!(alerts::deliver(&app.state), alerts::deliver(&other.state));
    assert_eq!(a.unwrap() + b2.unwrap(), 0);
    for (got, n) in [(&notified, 12), (&alerted, 6)] {
        let got = got.lock().unwrap().clone();
        let ids: std::collections::BTreeSet<&String> = got.iter().map(|r| &r.2).collect();
        assert_eq!((got.len(), ids.len()), (n, n), "each sent once: {ids:?}");
    }
    app.cleanup().await;
}

/// Two servers find the same scheduled offboarding due at once (a leader
/// that stalled past its lease, and the one that took over): the decision
/// (here: refused, the last administrator) is made and recorded once.
async fn a_due_offboarding_is_decided_once_by_two_servers(b: Backend) {
    use gatehouse::server::access::people;
    let app = TestApp::spawn(&b).await;
    app.first_admin("ada@example.com", "correct horse battery staple").await;
    let id = app.user_id("ada@example.com").await;
    let other = app.another().await;
    sqlx::query("UPDATE users SET offboard_at = ? WHERE id = ?")
        .bind(app.clock.now() - 1)
        .bind(id)
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let (a, b2) = tokio::join!(
        people::sweep_scheduled(&app.state),
        people::sweep_scheduled(&other.state)
    );
    assert_eq!(a.unwrap() + b2.unwrap(), 0, "the last administrator stays");
    assert_eq!(app.audit_count("employee.offboard", "denied").await, 1);
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM users WHERE id = {id} AND offboard_at IS NULL AND status = 'active'"
        ))
        .await,
        1
    );
    app.cleanup().await;
}

/// Inserts `n` grants of `user_id` that expired a moment ago; their ids.
async fn expired_grants(app: &TestApp, user_id: i64, n: usize) -> Vec<i64> {
    let now = app.clock.now();
    for _ in 0..n {
        sqlx::query(
            "INSERT INTO grants (user_id, role, reason, starts_at, expires_at, created_at) \
             VALUES (?, 'support', 'case 4711', ?, ?, ?)",
        )
        .bind(user_id)
        .bind(now - 60_000)
        .bind(now - 1)
        .bind(now - 60_000)
        .execute(app.state.db.pool())
        .await
        .unwrap();
    }
    sqlx::query("SELECT id FROM grants WHERE expires_at IS NOT NULL ORDER BY id")
        .fetch_all(app.state.db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get("id").unwrap())
        .collect()
}

/// A server that does not hold the job lease still sweeps due items at its
/// own 2-second cadence (a grant expiry here), so nothing waits for a lease
/// to move after a crash; the work with one writer (alert judging,
/// checkpoint signing) waits for the lease, and runs once it is free.
async fn every_server_sweeps_what_is_due_and_one_writer_work_waits_for_the_lease(b: Backend) {
    use gatehouse::server::jobs;
    let app = TestApp::spawn(&b).await;
    app.first_admin("ada@example.com", "correct horse battery staple").await;
    let ada = app.user_id("ada@example.com").await;
    expired_grants(&app, ada, 1).await;
    let hold = |until: i64| {
        sqlx::query("UPDATE job_leases SET holder = 'elsewhere', expires_at = ? WHERE name = 'access_jobs'")
            .bind(until)
            .execute(app.state.db.pool())
    };
    hold(app.clock.now() + 3_600_000).await.unwrap();
    let cursor = "SELECT last_seq FROM alert_cursor WHERE id = 1";
    let checkpoints = "SELECT COUNT(*) FROM audit_checkpoints";
    let (judged, signed) = (app.count(cursor).await, app.count(checkpoints).await);
    let run = |every| {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        (
            stop,
            jobs::spawn_stoppable_access_jobs(app.state.clone(), every, stopped),
        )
    };
    let (stop, running) = run(Duration::from_millis(50));
    let a = &app;
    eventually(30, "the expiry is recorded", move || async move {
        a.audit_count("grant.expired", "success").await == 1
    })
    .await;
    stop.send(true).unwrap();
    running.await.unwrap();
    assert_eq!(app.count(cursor).await, judged, "alerts judged without the lease");
    assert_eq!(
        app.count(checkpoints).await,
        signed,
        "a checkpoint signed without the lease"
    );

    // The other server is gone: this one takes the lease and judges.
    hold(0).await.unwrap();
    let (stop, running) = run(Duration::from_millis(50));
    eventually(30, "the alert rules caught up with the trail", move || async move {
        a.count(cursor).await == a.count("SELECT last_seq FROM audit_head WHERE id = 1").await
    })
    .await;
    stop.send(true).unwrap();
    running.await.unwrap();
    assert_eq!(app.audit_count("grant.expired", "success").await, 1);
    app.cleanup().await;
}

/// While another server is recording some due expiries (its transaction
/// holds their rows: busy, or stuck), a server records the others without
/// waiting for those rows, and records the held ones once they are let go;
/// each expiry once. MySQL only: `FOR UPDATE SKIP LOCKED` (SQLite has one
/// writer at a time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_skips_the_expiries_another_holds_and_waits_for_none() {
    use gatehouse::server::access::grants;
    let Some(b) = Backend::mysql().await else {
        return;
    };
    let app = TestApp::spawn(&b).await;
    app.first_admin("ada@example.com", "correct horse battery staple").await;
    let ada = app.user_id("ada@example.com").await;
    let ids = expired_grants(&app, ada, 3).await;
    let other = app.another().await;
    let mut busy = app.state.db.pool().begin().await.unwrap();
    sqlx::query("SELECT id FROM grants WHERE id = ? FOR UPDATE")
        .bind(ids[0])
        .fetch_one(&mut *busy)
        .await
        .unwrap();
    // Without SKIP LOCKED this waits for the row (50 s, MariaDB's default).
    let swept = tokio::time::timeout(Duration::from_secs(20), grants::sweep_expired(&other.state))
        .await
        .expect("the sweep waited for a row another server holds")
        .unwrap();
    assert_eq!(swept, 2);
    let recorded = |id: i64| {
        let a = &app;
        async move {
            a.count(&format!(
                "SELECT COUNT(*) FROM grants WHERE id = {id} AND expiry_recorded_at IS NOT NULL"
            ))
            .await
        }
    };
    assert_eq!(
        (recorded(ids[0]).await, recorded(ids[1]).await, recorded(ids[2]).await),
        (0, 1, 1)
    );
    busy.rollback().await.unwrap();
    assert_eq!(grants::sweep_expired(&app.state).await.unwrap(), 1);
    assert_eq!(grants::sweep_expired(&other.state).await.unwrap(), 0);
    assert_eq!(app.audit_count("grant.expired", "success").await, 3);
    app.cleanup().await;
}

/// The company's offset from UTC (minutes) that puts both 10:00 UTC (when
/// the loaded events say they happened) and now well inside company hours
/// (07:00 to 20:00): their midpoint becomes 13:30, each at most six hours
/// from it.
fn daytime_offset() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let now = ((secs / 60) % 1_440) as i64;
    let ten = 600;
    let mut d = (now - ten).rem_euclid(1_440);
    if d > 720 {
        d -= 1_440;
    }
    (810 - (ten + d / 2)).to_string()
}
