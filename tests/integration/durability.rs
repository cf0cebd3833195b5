//! The real server process under load: `kill -9` loses no acknowledged
//! event or recorded access check, and SIGTERM drains (requests in flight
//! finish, the process exits 0 within its grace period). SQLite and MySQL.

use crate::helpers::{load::write_load, process::*, tempdir::Dir, *};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

on_both!(acknowledged_writes_survive_kill_and_sigterm_drains);

async fn stored(db_url: &str, run: &str) -> std::collections::HashSet<String> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(db_url).await.unwrap();
    let rows: Vec<String> = sqlx::query_scalar("SELECT customer_id FROM audit_events WHERE customer_id LIKE ?")
        .bind(format!("{run}-%"))
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows.into_iter().collect()
}

async fn acknowledged_writes_survive_kill_and_sigterm_drains(b: Backend) {
    let dir = Dir::new();
    let (db_url, mysql) = match &b {
        Backend::Sqlite => (format!("sqlite://{}/gatehouse.db", dir.0.display()), None),
        Backend::MySql { root_url } => {
            let name = format!("gh_t_dur{}", std::process::id());
            let (pool, url) = new_mysql_database(root_url, &name).await;
            (url, Some((pool, name)))
        }
    };
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let p = Process {
        env: vec![
            ("GATEHOUSE_DATA_DIR".into(), dir.0.display().to_string()),
            ("GATEHOUSE_DATABASE_URL".into(), db_url.clone()),
            ("GATEHOUSE_LISTEN".into(), format!("127.0.0.1:{port}")),
            ("GATEHOUSE_SHUTDOWN_GRACE_SECONDS".into(), "20".into()),
        ],
    };
    let people = p.run(&["seed-demo"]);
    let employee = people
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("support"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    let token = p
        .run(&["service-token", "loader", "events:write,access:check"])
        .trim()
        .to_owned();

    // kill -9 in the middle of the load.
    let mut server = p.serve();
    let writers = tokio::spawn(write_load(
        vec![base.clone()],
        token.clone(),
        employee.clone(),
        "K",
        Arc::default(),
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill().unwrap();
    server.wait().unwrap();
    let acked = writers.await.unwrap();
    assert!(acked.len() > 20, "too little load to mean anything: {}", acked.len());
    let kept = stored(&db_url, "K").await;
    let lost: Vec<_> = acked.iter().filter(|id| !kept.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged writes lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    assert!(p.run(&["audit", "verify"]).starts_with("OK: "));

    // Restarted: ready again; SIGTERM under load drains and exits 0.
    let mut server = p.serve();
    let r = client().get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let writers = tokio::spawn(write_load(vec![base.clone()], token, employee, "T", Arc::default()));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // SAFETY: sends SIGTERM to the child this test started.
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    let signalled = Instant::now();
    let status = server.wait().unwrap();
    let took = signalled.elapsed();
    let acked = writers.await.unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM must end in a clean exit");
    assert!(
        took < Duration::from_secs(20),
        "drained in {took:?}, past the grace period"
    );
    let kept = stored(&db_url, "T").await;
    assert!(
        acked.iter().all(|id| kept.contains(id)),
        "an acknowledged write was lost at SIGTERM"
    );
    assert!(p.run(&["audit", "verify"]).starts_with("OK: "));

    if let Some((pool, name)) = mysql {
        sqlx::query(&format!("DROP DATABASE `{name}`"))
            .execute(&pool)
            .await
            .unwrap();
    }
}
