//! Streaming the audit trail to SIEM sinks, with real receivers started by
//! the test: a syslog TCP listener reading RFC 6587 octet-counted frames, an
//! HTTP listener answering as Splunk's HEC does, and a rotated file. Every
//! record is checked against the OCSF 1.2.0 class files (docs/ocsf) by the
//! test's own checker; order, no loss across receiver and streamer restarts.

use crate::helpers::*;
use gatehouse::domain::audit::{Action, Actor, NewEvent, Outcome};
use gatehouse::server::{audit as audit_log, audit::siem, jobs};
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::IntoFuture;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;

const ADMIN: &str = "maya.okafor@sunridge-solar.example";
const PW: &str = "violet harbour lantern 42";

#[allow(dead_code)]
#[path = "../../src/domain/siem/conforms.rs"]
mod conforms;

on_both!(
    syslog_gets_every_event_in_order_across_receiver_and_streamer_restarts,
    hec_gets_every_event_once_the_collector_answers_and_the_backlog_shows_meanwhile,
    the_file_sink_rotates_and_keeps_every_event_in_order,
    syslog_over_tls_reaches_a_receiver_whose_certificate_the_ca_vouches_for_and_no_other,
);

/// Events of the four classes, from a person with an address.
async fn append_mixed(app: &TestApp, n: usize) {
    let actor = Actor {
        user_id: Some(1),
        session: Some("s1".into()),
        ip: Some("192.0.2.7".into()),
        user_agent: Some("test".into()),
    };
    let kinds = [
        (Action::SignIn, Outcome::Success, None),
        (Action::GrantCreated, Outcome::Success, Some(("grant", "12"))),
        (Action::AccessCheck, Outcome::Denied, Some(("customer", "c-9"))),
        (Action::Enrolled, Outcome::Success, Some(("user", "1"))),
    ];
    let events = (0..n)
        .map(|i| {
            let (action, outcome, target) = kinds[i % kinds.len()];
            let e = NewEvent::new(action, outcome, actor.clone()).details(serde_json::json!({ "i": i }));
            match target {
                Some((kind, id)) => e.target(kind, id),
                None => e,
            }
        })
        .collect();
    let mut tx = app.state.db.begin_write().await.unwrap();
    audit_log::append(&mut tx, app.clock.now(), events).await.unwrap();
    tx.commit().await.unwrap();
}

async fn head(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT last_seq FROM audit_head WHERE id = 1")
        .fetch_one(app.state.db.pool())
        .await
        .unwrap()
}

async fn hashes(app: &TestApp) -> BTreeMap<i64, String> {
    use sqlx::Row;
    sqlx::query("SELECT seq, hash FROM audit_events")
        .fetch_all(app.state.db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<i64, _>("seq"), r.get::<String, _>("hash")))
        .collect()
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..300 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn status(app: &TestApp) -> siem::Status {
    siem::status(&app.state).await.unwrap().remove(0)
}

/// The sink's standing once its cursor reached `to`.
async fn delivered(app: &TestApp, to: i64) -> siem::Status {
    for _ in 0..300 {
        let s = status(app).await;
        if s.delivered_seq >= to {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the cursor never reached {to}: {:?}", status(app).await);
}

/// Checks records (as received, duplicates allowed) against the chain:
/// each one of its OCSF class, carrying its event's seq and hash; first
/// sightings in order; every event from `from` to `to` seen.
fn check(records: &[Value], chain: &BTreeMap<i64, String>, from: i64, to: i64) {
    let mut last = 0;
    let mut seen = std::collections::BTreeSet::new();
    for r in records {
        let class = r["class_uid"].as_u64().unwrap();
        conforms::conforms(r, &conforms::class_schema(class), "record").unwrap_or_else(|p| panic!("{p}: {r:#}"));
        let seq = r["metadata"]["sequence"].as_i64().unwrap();
        assert_eq!(
            r["metadata"]["uid"].as_str(),
            chain.get(&seq).map(String::as_str),
            "hash of {seq}"
        );
        if seen.insert(seq) {
            assert!(seq > last, "{seq} first seen after {last}");
            last = seq;
        }
    }
    let missing: Vec<i64> = (from..=to).filter(|s| !seen.contains(s)).collect();
    assert!(missing.is_empty(), "never received: {missing:?}");
}

/// A syslog receiver: octet-counted RFC 5424 messages, kept as received.
struct Syslog {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Syslog {
    async fn start(port: u16, got: Arc<Mutex<Vec<String>>>) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            // Aborting the receiver drops this set: every connection closes.
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let (s, _) = listener.accept().await.unwrap();
                conns.spawn(frames(s, got.clone()));
            }
        });
        Syslog { port, task }
    }
}

async fn frames(mut s: impl tokio::io::AsyncRead + Unpin, got: Arc<Mutex<Vec<String>>>) {
    let (mut buf, mut chunk) = (Vec::new(), vec![0u8; 1 << 16]);
    while let Ok(n @ 1..) = s.read(&mut chunk).await {
        buf.extend_from_slice(&chunk[..n]);
        while let Some(sp) = buf.iter().position(|b| *b == b' ') {
            let len: usize = std::str::from_utf8(&buf[..sp]).unwrap().parse().expect("octet count");
            if buf.len() < sp + 1 + len {
                break;
            }
            got.lock()
                .unwrap()
                .push(String::from_utf8(buf[sp + 1..sp + 1 + len].to_vec()).unwrap());
            buf.drain(..sp + 1 + len);
        }
    }
}

/// The record of one RFC 5424 message, after checking its header agrees.
fn syslog_record(msg: &str) -> Value {
    let (header, json) = msg.split_once('\u{feff}').expect("a BOM before the UTF-8 message");
    assert!(header.starts_with("<10"), "facility 13 (log audit): {header}");
    let record: Value = serde_json::from_str(json).unwrap();
    let parts: Vec<&str> = header.splitn(7, ' ').collect();
    assert_eq!(parts[1..6].len(), 5, "{header}");
    assert_eq!(parts[3], "gatehouse");
    assert_eq!(parts[5], record["class_uid"].to_string(), "MSGID is the class");
    let sd = format!(
        "[gatehouse@32473 seq=\"{}\" hash=\"{}\"] ",
        record["metadata"]["sequence"],
        record["metadata"]["uid"].as_str().unwrap()
    );
    assert_eq!(parts[6], sd);
    record
}

async fn syslog_gets_every_event_in_order_across_receiver_and_streamer_restarts(b: Backend) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let receiver = Syslog::start(0, got.clone()).await;
    let sinks = format!("soc=syslog+tcp://127.0.0.1:{}", receiver.port);
    let app = TestApp::spawn_with(&b, &[("GATEHOUSE_SIEM_SINKS", &sinks)]).await;
    append_mixed(&app, 40).await;
    let mut streamer = jobs::spawn_siem(app.state.clone());
    let to = head(&app).await;
    let received =
        |got: &Arc<Mutex<Vec<String>>>| got.lock().unwrap().iter().map(|m| syslog_record(m)).collect::<Vec<_>>();
    until("the first events", || {
        received(&got).iter().any(|r| r["metadata"]["sequence"] == to)
    })
    .await;

    // The receiver goes away; events keep coming; nothing blocks.
    receiver.task.abort();
    tokio::time::sleep(Duration::from_millis(300)).await;
    append_mixed(&app, 30).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let down = status(&app).await;
    assert!(down.last_error.is_some(), "{down:?}");
    assert!(down.backlog >= 30, "{down:?}");
    let receiver = Syslog::start(receiver_port(&sinks), got.clone()).await;
    let to = head(&app).await;
    until("the events written while it was down", || {
        received(&got).iter().any(|r| r["metadata"]["sequence"] == to)
    })
    .await;

    // The streamer stops and starts again: it resumes from its cursor.
    streamer.abort();
    append_mixed(&app, 20).await;
    streamer = jobs::spawn_siem(app.state.clone());
    let to = head(&app).await;
    until("the events after the restart", || {
        received(&got).iter().any(|r| r["metadata"]["sequence"] == to)
    })
    .await;
    check(&received(&got), &hashes(&app).await, 1, to);
    // Syslog has no acknowledgement: the cursor follows once the
    // connection stayed open a second after the write.
    let done = delivered(&app, to).await;
    assert_eq!((done.delivered_seq, done.backlog), (to, 0), "{done:?}");
    streamer.abort();
    receiver.task.abort();
}

/// The /metrics page, served on a listener of its own as in production.
async fn scrape(app: &TestApp) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    let server =
        tokio::spawn(axum::serve(listener, gatehouse::server::http::metrics::router(app.state.clone())).into_future());
    let text = client().get(&url).send().await.unwrap().text().await.unwrap();
    server.abort();
    text
}

fn receiver_port(sinks: &str) -> u16 {
    sinks.rsplit(':').next().unwrap().parse().unwrap()
}

async fn hec_gets_every_event_once_the_collector_answers_and_the_backlog_shows_meanwhile(b: Backend) {
    use axum::{http::HeaderMap, http::StatusCode, routing::post};
    use std::sync::atomic::{AtomicBool, Ordering};
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let down = Arc::new(AtomicBool::new(true));
    let (g, d) = (got.clone(), down.clone());
    let collector = axum::Router::new().route(
        "/services/collector/event",
        post(move |headers: HeaderMap, body: String| {
            let (g, d) = (g.clone(), d.clone());
            async move {
                if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Splunk hec-token-1") {
                    return (StatusCode::UNAUTHORIZED, r#"{"text":"Invalid token","code":4}"#);
                }
                if d.load(Ordering::SeqCst) {
                    return (StatusCode::SERVICE_UNAVAILABLE, r#"{"text":"Server is busy","code":9}"#);
                }
                let mut g = g.lock().unwrap();
                for line in body.lines() {
                    g.push(serde_json::from_str(line).unwrap());
                }
                (StatusCode::OK, r#"{"text":"Success","code":0}"#)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("hec+http://{}/services/collector/event", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, collector).await.unwrap() });
    let sinks = format!("splunk={url}");
    let app = TestApp::spawn_with(
        &b,
        &[
            ("GATEHOUSE_SIEM_SINKS", &sinks),
            ("GATEHOUSE_SIEM_SPLUNK_TOKEN", "hec-token-1"),
        ],
    )
    .await;
    let (admin, _, _) = app.first_admin(ADMIN, PW).await;
    append_mixed(&app, 25).await;
    let streamer = jobs::spawn_siem(app.state.clone());
    let to = head(&app).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    app.clock.advance(5_000);
    let waiting = status(&app).await;
    assert_eq!(waiting.delivered_seq, 0);
    assert_eq!(waiting.backlog, to);
    assert!(waiting.failures > 0 && waiting.lag_ms >= 5_000, "{waiting:?}");
    let error = waiting.last_error.clone().unwrap();
    assert!(error.contains("503") && !error.contains("hec-token-1"), "{error}");
    assert!(got.lock().unwrap().is_empty());

    // What /admin and /metrics show meanwhile.
    let shown: Vec<Value> = app.call(&admin, "siem_sinks", &[]).await.json().await.unwrap();
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert_eq!(
        (shown[0]["name"].as_str(), shown[0]["kind"].as_str()),
        (Some("splunk"), Some("hec"))
    );
    assert_eq!(shown[0]["backlog"], to);
    assert_eq!(shown[0]["delivered_seq"], 0);
    assert!(shown[0]["lag"].as_str().unwrap().ends_with(" s"), "{shown:?}");
    assert!(shown[0]["last_error"].as_str().unwrap().contains("503"), "{shown:?}");
    let figures = scrape(&app).await;
    let series = |name: &str| format!("{name}{{sink=\"splunk\",kind=\"hec\"}} ");
    let value = |name: &str| -> f64 {
        let prefix = series(name);
        let line = figures
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("{prefix}: {figures}"));
        line[prefix.len()..].parse().unwrap()
    };
    assert_eq!(value("gatehouse_siem_backlog_events"), to as f64);
    assert_eq!(value("gatehouse_siem_delivered_sequence"), 0.0);
    assert!(value("gatehouse_siem_lag_seconds") >= 5.0, "{figures}");
    assert!(value("gatehouse_siem_failures") >= 1.0, "{figures}");
    assert!(!figures.contains("hec-token-1"));

    down.store(false, Ordering::SeqCst);
    until("every event at the collector", || {
        got.lock().unwrap().len() as i64 >= to
    })
    .await;
    let events: Vec<Value> = got.lock().unwrap().clone();
    for e in &events {
        assert_eq!(e["source"], "gatehouse");
        assert_eq!(e["sourcetype"], format!("ocsf:{}", e["event"]["class_uid"]));
        assert_eq!(
            e["time"].as_f64().unwrap(),
            e["event"]["time"].as_i64().unwrap() as f64 / 1000.0
        );
    }
    let records: Vec<Value> = events.into_iter().map(|e| e["event"].clone()).collect();
    check(&records, &hashes(&app).await, 1, to);
    let classes: std::collections::BTreeSet<u64> = records.iter().map(|r| r["class_uid"].as_u64().unwrap()).collect();
    assert!(
        [3001, 3002, 3004, 6003].iter().all(|c| classes.contains(c)),
        "{classes:?}"
    );
    let done = delivered(&app, to).await;
    assert_eq!((done.backlog, done.failures, done.lag_ms), (0, 0, 0), "{done:?}");
    let shown: Vec<Value> = app.call(&admin, "siem_sinks", &[]).await.json().await.unwrap();
    assert_eq!(
        (&shown[0]["backlog"], &shown[0]["lag"], &shown[0]["failures"]),
        (&Value::from(0), &Value::from(""), &Value::from(0))
    );
    streamer.abort();
    server.abort();
}

async fn the_file_sink_rotates_and_keeps_every_event_in_order(b: Backend) {
    let dir = tempdir::Dir::new();
    let path = dir.0.join("audit.jsonl");
    let missing = dir.0.join("no-such-directory").join("audit.jsonl");
    let sinks = format!(
        "disk=file://{}?rotate_bytes=4000&keep=3, lost=file://{}",
        path.display(),
        missing.display()
    );
    let app = TestApp::spawn_with(&b, &[("GATEHOUSE_SIEM_SINKS", &sinks)]).await;
    let streamer = jobs::spawn_siem(app.state.clone());
    let mut firsts = Vec::new();
    for _ in 0..5 {
        firsts.push(head(&app).await + 1);
        append_mixed(&app, 6).await;
        delivered(&app, head(&app).await).await;
    }
    let read = |p: std::path::PathBuf| -> Vec<Value> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let nth = |n: u32| std::path::PathBuf::from(format!("{}.{n}", path.display()));
    assert!(!nth(4).exists(), "only 3 rotated files are kept");
    let mut records = Vec::new();
    for p in [nth(3), nth(2), nth(1), path.clone()] {
        records.extend(read(p));
    }
    // Each round rotated the file (6 records pass 4000 bytes); the first
    // round's file was dropped as the fourth rotation's oldest.
    let from = firsts[1];
    assert_eq!(records[0]["metadata"]["sequence"], from);
    check(&records, &hashes(&app).await, from, head(&app).await);
    let seqs: Vec<i64> = records
        .iter()
        .map(|r| r["metadata"]["sequence"].as_i64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "a file receives each event once: {seqs:?}"
    );
    // A file that cannot be written: the reason, shown on /admin, names no path.
    let lost = siem::status(&app.state).await.unwrap().remove(1);
    let error = lost.last_error.clone().unwrap_or_default();
    assert!(error.starts_with("cannot write the file"), "{lost:?}");
    assert!(!error.contains("no-such-directory") && !error.contains('/'), "{error}");
    assert_eq!(lost.delivered_seq, 0);
    streamer.abort();
}

/// A TLS syslog receiver (RFC 5425) with the certificate and key given.
async fn tls_receiver(
    cert: &std::path::Path,
    key: &std::path::Path,
    got: Arc<Mutex<Vec<String>>>,
) -> (u16, tokio::task::JoinHandle<()>) {
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let (s, _) = listener.accept().await.unwrap();
            let (acceptor, got) = (acceptor.clone(), got.clone());
            conns.spawn(async move {
                // A client that refuses the certificate ends the handshake.
                if let Ok(tls) = acceptor.accept(s).await {
                    frames(tls, got).await;
                }
            });
        }
    });
    (port, task)
}

async fn syslog_over_tls_reaches_a_receiver_whose_certificate_the_ca_vouches_for_and_no_other(b: Backend) {
    let dir = tempdir::Dir::new();
    let (ca, cert, key) = crate::tls::certificate(&dir.0, "syslog");
    let (other_ca, _, _) = crate::tls::certificate(&dir.0, "other");
    let got = Arc::new(Mutex::new(Vec::new()));
    let (port, receiver) = tls_receiver(&cert, &key, got.clone()).await;
    let sinks = format!(
        "vault=syslog+tls://127.0.0.1:{port}?ca={}, stranger=syslog+tls://127.0.0.1:{port}?ca={}",
        ca.display(),
        other_ca.display()
    );
    let app = TestApp::spawn_with(&b, &[("GATEHOUSE_SIEM_SINKS", &sinks)]).await;
    append_mixed(&app, 12).await;
    let streamer = jobs::spawn_siem(app.state.clone());
    let to = head(&app).await;
    let received =
        |got: &Arc<Mutex<Vec<String>>>| got.lock().unwrap().iter().map(|m| syslog_record(m)).collect::<Vec<_>>();
    until("the events over TLS", || {
        received(&got).iter().any(|r| r["metadata"]["sequence"] == to)
    })
    .await;
    let records = received(&got);
    check(&records, &hashes(&app).await, 1, to);
    let mut stranger = None;
    for _ in 0..300 {
        let all = siem::status(&app.state).await.unwrap();
        stranger = all.into_iter().find(|s| s.name == "stranger" && s.last_error.is_some());
        if stranger.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stranger = stranger.expect("the untrusted sink reports its error");
    assert_eq!(
        (stranger.kind, stranger.delivered_seq),
        ("syslog+tls", 0),
        "{stranger:?}"
    );
    let error = stranger.last_error.as_deref().unwrap_or_default();
    assert!(error.contains("TLS handshake"), "{stranger:?}");
    // Only the trusted sink's stream arrived: each event once so far.
    assert_eq!(records.len() as i64, to, "the untrusted connection delivered nothing");
    let vault = delivered(&app, to).await;
    assert_eq!(vault.name, "vault");
    streamer.abort();
    receiver.abort();
}

/// The real server process: killed (-9) while streaming, events recorded
/// while it is down, started again: the receiver has every event, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_restarted_server_resumes_syslog_from_its_cursor() {
    use crate::helpers::process::{free_port, Process};
    let dir = tempdir::Dir::new();
    let db_url = format!("sqlite://{}/gatehouse.db", dir.0.display());
    let got = Arc::new(Mutex::new(Vec::new()));
    let receiver = Syslog::start(0, got.clone()).await;
    let p = Process {
        env: vec![
            ("GATEHOUSE_DATA_DIR".into(), dir.0.display().to_string()),
            ("GATEHOUSE_DATABASE_URL".into(), db_url.clone()),
            ("GATEHOUSE_LISTEN".into(), format!("127.0.0.1:{}", free_port())),
            (
                "GATEHOUSE_SIEM_SINKS".into(),
                format!("soc=syslog+tcp://127.0.0.1:{}", receiver.port),
            ),
        ],
    };
    p.run(&["seed-demo"]);
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db_url).await.unwrap();
    let head = || async {
        sqlx::query_scalar::<_, i64>("SELECT last_seq FROM audit_head WHERE id = 1")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let received = || -> Vec<Value> { got.lock().unwrap().iter().map(|m| syslog_record(m)).collect() };
    let reached = |to: i64| move |r: &Vec<Value>| r.iter().any(|r| r["metadata"]["sequence"] == to);

    let mut server = p.serve();
    let to = head().await;
    until("the seeded trail", || reached(to)(&received())).await;
    server.kill().unwrap();
    server.wait().unwrap();

    // Recorded while no server runs: nobody streams them yet.
    p.run(&["service-token", "reporting", "access:check"]);
    let to = head().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!reached(to)(&received()), "nothing streamed while the server was down");

    let _server = p.serve();
    until("the events recorded while it was down", || reached(to)(&received())).await;
    let chain: BTreeMap<i64, String> = sqlx::query_as::<_, (i64, String)>("SELECT seq, hash FROM audit_events")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    check(&received(), &chain, 1, to);
    pool.close().await;
    receiver.task.abort();
}
