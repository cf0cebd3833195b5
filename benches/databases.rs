//! Database access against the real MariaDB (127.0.0.1:3306, root): the
//! time from a grant's approval until the employee's account works (the
//! background job at its production interval, then a new password and a
//! MySQL login), from a grant's expiry until its held connection is
//! killed and the revocation receipt is recorded, and a drift scan over
//! 1,000 accounts on one target. Gatehouse's own store is SQLite.
//! Run: cargo bench --no-default-features --features ssr --bench databases
//! (figures in docs/benchmarks.md)

use gatehouse::server::{
    access::{databases, grants},
    identity::accounts as users,
    jobs,
    platform::{clock::Clock, config::Config, request::RequestCtx},
    startup,
    state::AppState,
};
use sqlx::{mysql::MySqlConnectOptions, ConnectOptions, Connection, MySqlConnection};
use std::time::{Duration, Instant};

const ROOT: &str = "mysql://root@127.0.0.1:3306/test";
const CONNECTOR_PW: &str = "bench connector pw 9";
const ROUNDS: usize = 30;
const DRIFT_ACCOUNTS: usize = 1_000;

fn ctx(user_id: i64) -> RequestCtx {
    RequestCtx {
        request_id: "bench".into(),
        ip: None,
        user_agent: None,
        session_tag: None,
        auth: Some(gatehouse::server::platform::request::AuthState {
            user_id,
            stage: gatehouse::server::platform::request::Stage::Full,
            created_at: 0,
            last_seen: 0,
            mfa_at: None,
            passkey_at: None,
        }),
        access_version: None,
        device_cookie: None,
        passkey_required: false,
    }
}

async fn root(sql: &str) {
    let mut c = MySqlConnection::connect(ROOT).await.unwrap();
    sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
    c.close().await.unwrap();
}

async fn user(st: &AppState, i: usize) -> i64 {
    let mut tx = st.db.begin_write().await.unwrap();
    let email = format!("bench{i}@example.com");
    let id = users::insert(
        &mut tx,
        users::NewUser {
            email: &email,
            display_name: "Bench Person",
            department: "support",
            password_hash: None,
            status: "active",
            provisioned_by: users::Provisioning::Gatehouse,
        },
        st.clock.now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

async fn grant(st: &AppState, user_id: i64, lasts: i64) -> i64 {
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await.unwrap();
    let id = grants::insert(
        &mut tx,
        grants::NewGrant {
            user_id,
            role: "support-pii",
            granted_by: None,
            reason: "bench",
            starts_at: now,
            expires_at: Some(now + lasts),
            pending: false,
            customers: &[],
        },
        now,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

async fn count(st: &AppState, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(st.db.pool()).await.unwrap()
}

fn p(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1]
}

fn report(what: &str, v: Vec<f64>) {
    println!(
        "{what}: n={} p50={:.0} ms p95={:.0} ms max={:.0} ms",
        v.len(),
        p(v.clone(), 0.5),
        p(v.clone(), 0.95),
        p(v, 1.0)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    sqlx::any::install_default_drivers();
    let tag = gatehouse::server::platform::crypto::random_token(4)
        .to_lowercase()
        .replace(['-', '_'], "x");
    let (schema, connector, prefix) = (format!("ghbench_{tag}"), format!("ghbenchc_{tag}"), format!("gb{tag}_"));
    root(&format!(
        "CREATE DATABASE `{schema}`; CREATE TABLE `{schema}`.customer_contacts (id INT PRIMARY KEY, email TEXT);
         CREATE USER '{connector}'@'%' IDENTIFIED BY '{CONNECTOR_PW}';
         GRANT CREATE USER, PROCESS, CONNECTION ADMIN ON *.* TO '{connector}'@'%';
         GRANT SELECT, UPDATE ON mysql.* TO '{connector}'@'%';
         GRANT SELECT, INSERT, UPDATE, DELETE ON `{schema}`.* TO '{connector}'@'%' WITH GRANT OPTION;"
    ))
    .await;
    let dir = std::env::temp_dir().join(format!("gh-bench-db-{tag}"));
    std::fs::create_dir_all(&dir).unwrap();
    let vars = [
        ("GATEHOUSE_DATABASE_URL", format!("sqlite://{}/bench.db", dir.display())),
        ("GATEHOUSE_DATA_DIR", dir.display().to_string()),
        ("GATEHOUSE_DB_TARGET_ALLOWED_HOSTS", "127.0.0.1".into()),
        ("GATEHOUSE_DB_ACCOUNT_PREFIX", prefix.clone()),
    ];
    let config = Config::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap();
    let st = startup::state(config, Clock::system()).await.unwrap();
    let admin = user(&st, 0).await;
    let target = databases::register(
        &st,
        &ctx(admin),
        databases::TargetInput {
            name: "bench".into(),
            host: "127.0.0.1".into(),
            port: "3306".into(),
            tls: false,
            tls_ca: String::new(),
            username: connector.clone(),
            password: CONNECTOR_PW.into(),
        },
    )
    .await
    .unwrap();
    let input = databases::MappingInput {
        target,
        role: "support-pii".into(),
        privilege: "SELECT".into(),
        schema: schema.clone(),
        table: "customer_contacts".into(),
        column: String::new(),
    };
    databases::map(&st, &ctx(admin), input).await.unwrap();
    // The background job, as every server runs it.
    jobs::spawn_db_provisioning(st.clone(), Duration::from_millis(500));

    let mut open_ms = Vec::new();
    let mut login_ms = Vec::new();
    let mut killed_ms = Vec::new();
    let mut receipt_ms = Vec::new();
    for i in 1..=ROUNDS {
        let uid = user(&st, i).await;
        let account = format!("{prefix}{uid}");
        let t0 = Instant::now();
        let g = grant(&st, uid, 3_600_000).await;
        let open =
            format!("SELECT COUNT(*) FROM db_accounts WHERE user_id = {uid} AND status = 'provisioned' AND locked = 0");
        while count(&st, &open).await == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        open_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        let pw = databases::new_password(&st, &ctx(uid), uid, target).await.unwrap();
        let mut held = MySqlConnectOptions::new()
            .host("127.0.0.1")
            .username(&account)
            .password(&pw)
            .connect()
            .await
            .unwrap();
        login_ms.push(t0.elapsed().as_secs_f64() * 1e3);

        // The grant ends 300 ms from now, at an exact instant.
        let ends = st.clock.now() + 300;
        sqlx::query("UPDATE grants SET expires_at = ? WHERE id = ?")
            .bind(ends)
            .bind(g)
            .execute(st.db.pool())
            .await
            .unwrap();
        let since_end = || (st.clock.now() - ends) as f64;
        while sqlx::query("SELECT 1").execute(&mut held).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        killed_ms.push(since_end());
        let receipt = format!(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'database.revocation_receipt' AND target_id = '{uid}'"
        );
        while count(&st, &receipt).await == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        receipt_ms.push(since_end());
    }
    report("approval to account open (job every 500 ms)", open_ms);
    report(
        "approval to working login (open + new password + MySQL login)",
        login_ms,
    );
    report("expiry to held connection killed", killed_ms);
    report("expiry to read-back confirmed and receipt recorded", receipt_ms);

    // 1,000 accounts on the target, made by reconciliation.
    let t0 = Instant::now();
    for i in 0..DRIFT_ACCOUNTS {
        let uid = user(&st, 1_000 + i).await;
        grant(&st, uid, 3_600_000).await;
    }
    let provisioned = "SELECT COUNT(*) FROM db_accounts WHERE status = 'provisioned' AND locked = 0";
    while count(&st, provisioned).await < DRIFT_ACCOUNTS as i64 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "{DRIFT_ACCOUNTS} accounts provisioned in {:.1} s ({:.1} ms each)",
        t0.elapsed().as_secs_f64(),
        t0.elapsed().as_secs_f64() * 1e3 / DRIFT_ACCOUNTS as f64
    );
    let mut scans = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let v = databases::scan_drift(&st, &ctx(admin), target).await.unwrap();
        scans.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(v.findings.is_empty(), "{:?}", v.findings);
    }
    report(&format!("drift scan over {} accounts", DRIFT_ACCOUNTS + ROUNDS), scans);

    // A burst: the 1,000 grants end at one instant.
    let ends = st.clock.now() + 300;
    sqlx::query("UPDATE grants SET expires_at = ? WHERE reason = 'bench' AND revoked_at IS NULL AND expires_at > ?")
        .bind(ends)
        .bind(ends)
        .execute(st.db.pool())
        .await
        .unwrap();
    let locked = "SELECT COUNT(*) FROM db_accounts WHERE status = 'provisioned' AND locked = 1";
    let receipts = "SELECT COUNT(*) FROM audit_events WHERE action = 'database.revocation_receipt'";
    let before = count(&st, receipts).await;
    let mut first = None;
    while count(&st, receipts).await < before + DRIFT_ACCOUNTS as i64 {
        if first.is_none() && count(&st, receipts).await > before {
            first = Some(st.clock.now() - ends);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all = st.clock.now() - ends;
    assert!(count(&st, locked).await >= DRIFT_ACCOUNTS as i64);
    println!(
        "burst of {DRIFT_ACCOUNTS} expiries at one instant ({} connections per target): first receipt {} ms, \
         all confirmed {} ms after the instant",
        databases::WORKERS,
        first.unwrap_or(all),
        all
    );

    // Cleanup: every account and role with the bench's prefix, the connector, the schema.
    let mut c = MySqlConnection::connect(ROOT).await.unwrap();
    let rows: Vec<(Vec<u8>, Vec<u8>)> = sqlx::query_as("SELECT User, Host FROM mysql.user WHERE LEFT(User, ?) = ?")
        .bind(prefix.len() as i64)
        .bind(&prefix)
        .fetch_all(&mut c)
        .await
        .unwrap();
    for (u, h) in rows {
        let (u, h) = (String::from_utf8(u).unwrap(), String::from_utf8(h).unwrap());
        let what = if h.is_empty() {
            format!("ROLE `{u}`")
        } else {
            format!("USER '{u}'@'{h}'")
        };
        sqlx::raw_sql(&format!("DROP {what}")).execute(&mut c).await.unwrap();
    }
    sqlx::raw_sql(&format!("DROP USER '{connector}'@'%'; DROP DATABASE `{schema}`"))
        .execute(&mut c)
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
