//! SIEM streaming under ingestion (issue 22): up to three sinks at once (syslog
//! over TCP to a local receiver, Splunk HEC to a local HTTP listener, a
//! rotated JSON-lines file) while events are appended at RATE events/s
//! for SECONDS (defaults 20,000 and 30), on SQLite (default) or MariaDB
//! (`BACKEND=mysql`, a database of its own on 127.0.0.1:3306). First a
//! backlog of BACKLOG events (default 200,000) is drained to measure each
//! sink's rate; then the steady phase samples every sink's backlog and lag
//! twice a second and, once appends stop, times the catch-up.
//! Figures: docs/benchmarks.md.
//! Run: cargo bench --no-default-features --features ssr --bench siem

use gatehouse::domain::audit::{Action, Actor, NewEvent, Outcome};
use gatehouse::server::{
    audit::{self as audit_log, siem},
    jobs,
    platform::{clock::Clock, config::Config},
    startup,
    state::AppState,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

// The allocator the server runs with (src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn var(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `n` events as the check API records them: a person, a customer, a reason.
async fn append(st: &AppState, first: u64, n: u64) {
    let actor = Actor {
        user_id: Some(1),
        session: None,
        ip: Some("10.0.3.17".into()),
        user_agent: Some("backend/2.4".into()),
    };
    let events = (first..first + n)
        .map(|i| {
            let (action, outcome) = match i % 10 {
                0 => (Action::SignIn, Outcome::Success),
                1 => (Action::GrantCreated, Outcome::Success),
                2 => (Action::AccessCheck, Outcome::Denied),
                _ => (Action::AccessCheck, Outcome::Success),
            };
            NewEvent::new(action, outcome, actor.clone())
                .target("customer", format!("c-{}", i % 5_000))
                .customer(format!("c-{}", i % 5_000))
                .details(serde_json::json!({ "permission": "customers.read", "reason": "ticket 4711" }))
        })
        .collect();
    let mut tx = st.db.begin_write().await.unwrap();
    audit_log::append(&mut tx, st.clock.now(), events).await.unwrap();
    tx.commit().await.unwrap();
}

async fn head(st: &AppState) -> i64 {
    sqlx::query_scalar("SELECT last_seq FROM audit_head WHERE id = 1")
        .fetch_one(st.db.pool())
        .await
        .unwrap()
}

/// A syslog receiver that counts octet-counted frames and drops them.
async fn syslog_receiver(frames: Arc<AtomicU64>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            let frames = frames.clone();
            tokio::spawn(async move {
                let (mut buf, mut chunk) = (Vec::new(), vec![0u8; 1 << 16]);
                while let Ok(n @ 1..) = s.read(&mut chunk).await {
                    buf.extend_from_slice(&chunk[..n]);
                    let mut at = 0;
                    while let Some(sp) = buf[at..].iter().position(|b| *b == b' ') {
                        let len: usize = std::str::from_utf8(&buf[at..at + sp]).unwrap().parse().unwrap();
                        if buf.len() < at + sp + 1 + len {
                            break;
                        }
                        at += sp + 1 + len;
                        frames.fetch_add(1, Ordering::Relaxed);
                    }
                    buf.drain(..at);
                }
            });
        }
    });
    port
}

/// An HEC endpoint that counts the events it accepts.
async fn hec_receiver(events: Arc<AtomicU64>) -> String {
    let app = axum::Router::new().route(
        "/services/collector/event",
        axum::routing::post(move |body: axum::body::Bytes| {
            let events = events.clone();
            async move {
                let n = body.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count();
                events.fetch_add(n as u64, Ordering::Relaxed);
                r#"{"text":"Success","code":0}"#
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("hec+http://{}/services/collector/event", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

async fn database(backend: &str, dir: &std::path::Path) -> String {
    if backend != "mysql" {
        return format!("sqlite://{}/bench.db", dir.display());
    }
    use sqlx::Connection;
    let mut c = sqlx::MySqlConnection::connect("mysql://root@127.0.0.1:3306/test")
        .await
        .unwrap();
    for sql in ["DROP DATABASE IF EXISTS gh_bench_siem", "CREATE DATABASE gh_bench_siem"] {
        sqlx::query(sql).execute(&mut c).await.unwrap();
    }
    "mysql://root@127.0.0.1:3306/gh_bench_siem".into()
}

/// Waits until every sink delivered `to`; how long it took.
async fn caught_up(st: &AppState, to: i64) -> Duration {
    let t = Instant::now();
    loop {
        let all = siem::status(st).await.unwrap();
        if all.iter().all(|s| s.delivered_seq >= to) {
            return t.elapsed();
        }
        assert!(t.elapsed() < Duration::from_secs(900), "sinks never caught up: {all:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn pct(mut v: Vec<i64>, p: f64) -> i64 {
    v.sort_unstable();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    sqlx::any::install_default_drivers();
    let (rate, seconds, backlog) = (var("RATE", 20_000), var("SECONDS", 30), var("BACKLOG", 200_000));
    let backend = std::env::var("BACKEND").unwrap_or_else(|_| "sqlite".into());
    let dir = std::env::temp_dir().join(format!(
        "gh-bench-siem-{}",
        gatehouse::server::platform::crypto::random_token(6)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (frames, posted) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let port = syslog_receiver(frames.clone()).await;
    let hec = hec_receiver(posted.clone()).await;
    // SINKS=soc,splunk,disk (the default) or fewer.
    let chosen = std::env::var("SINKS").unwrap_or_else(|_| "soc,splunk,disk".into());
    let sinks = [
        ("soc", format!("soc=syslog+tcp://127.0.0.1:{port}")),
        ("splunk", format!("splunk={hec}")),
        (
            "disk",
            format!(
                "disk=file://{}/audit.jsonl?rotate_bytes=268435456&keep=2",
                dir.display()
            ),
        ),
    ]
    .into_iter()
    .filter(|(name, _)| chosen.split(',').any(|c| c.trim() == *name))
    .map(|(_, s)| s)
    .collect::<Vec<_>>();
    let count = sinks.len();
    let sinks = sinks.join(", ");
    let vars = [
        ("GATEHOUSE_DATABASE_URL", database(&backend, &dir).await),
        ("GATEHOUSE_DATA_DIR", dir.display().to_string()),
        ("GATEHOUSE_SIEM_SINKS", sinks),
        ("GATEHOUSE_SIEM_SPLUNK_TOKEN", "bench-token".into()),
    ];
    let config = Config::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap();
    let st = startup::state(config, Clock::system()).await.unwrap();

    // Phase 1: a backlog, then every sink at once drains it.
    let mut appended = 0;
    while appended < backlog {
        let n = (backlog - appended).min(1_000);
        append(&st, appended, n).await;
        appended += n;
    }
    let to = head(&st).await;
    let streamer = jobs::spawn_siem(st.clone());
    let t = Instant::now();
    let mut done = Vec::new();
    while done.len() < count {
        for s in siem::status(&st).await.unwrap() {
            if s.delivered_seq >= to && !done.iter().any(|(n, _)| n == &s.name) {
                done.push((s.name.clone(), t.elapsed()));
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("backend {backend}: backlog of {to} events drained by {count} sinks at once ({chosen})");
    for (name, took) in &done {
        println!(
            "  {name}: {:.1} s, {:.0} events/s",
            took.as_secs_f64(),
            to as f64 / took.as_secs_f64()
        );
    }

    // Phase 2: RATE events/s for SECONDS, in batches every 10 ms.
    let per_tick = rate / 100;
    let stop = Instant::now() + Duration::from_secs(seconds);
    let writer = {
        let st = st.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let (mut n, t) = (0u64, Instant::now());
            while Instant::now() < stop {
                tick.tick().await;
                append(&st, n, per_tick).await;
                n += per_tick;
            }
            n as f64 / t.elapsed().as_secs_f64()
        })
    };
    let mut samples: std::collections::BTreeMap<String, (Vec<i64>, Vec<i64>)> = Default::default();
    while !writer.is_finished() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        for s in siem::status(&st).await.unwrap() {
            let e = samples.entry(s.name.clone()).or_default();
            e.0.push(s.backlog);
            e.1.push(s.lag_ms);
        }
    }
    let achieved = writer.await.unwrap();
    let to = head(&st).await;
    let catch_up = caught_up(&st, to).await;
    println!(
        "steady: {achieved:.0} events/s appended for {seconds} s ({rate} asked), {} samples per sink",
        samples.values().next().map_or(0, |s| s.0.len())
    );
    for (name, (backlogs, lags)) in samples {
        println!(
            "  {name}: backlog p50 {} p95 {} max {} events; lag p50 {} p95 {} max {} ms",
            pct(backlogs.clone(), 0.5),
            pct(backlogs.clone(), 0.95),
            pct(backlogs, 1.0),
            pct(lags.clone(), 0.5),
            pct(lags.clone(), 0.95),
            pct(lags, 1.0)
        );
    }
    println!(
        "  every sink at the head {:.2} s after the last append; receivers counted {} syslog frames, {} HEC events",
        catch_up.as_secs_f64(),
        frames.load(Ordering::Relaxed),
        posted.load(Ordering::Relaxed)
    );
    streamer.abort();
    let _ = std::fs::remove_dir_all(&dir);
}
