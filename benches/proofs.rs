//! Inclusion and consistency proofs at 5 million events (issue 22), on
//! SQLite (default) or MariaDB (`BACKEND=mysql`, a database of its own on
//! 127.0.0.1:3306). Seeds the events table with random hashes and
//! checkpoints every 250,000 events straight into the database (what is
//! measured reads only hashes), fills the stored tree as an upgraded
//! server's job would, then times 1,000 proofs of each kind against random
//! checkpoints and prints p50/p95/p99. Figures: docs/benchmarks.md.
//! Run: cargo bench --no-default-features --features ssr --bench proofs
//! (EVENTS=200000 for a quick run).

use gatehouse::domain::merkle::{self, Frontier};
use gatehouse::server::{audit::checkpoints, audit::tree, platform::db::Db};
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

const STEP: u64 = 250_000;

async fn database(backend: &str) -> (Db, Option<std::path::PathBuf>) {
    if backend == "mysql" {
        use sqlx::Connection;
        let mut c = sqlx::MySqlConnection::connect("mysql://root@127.0.0.1:3306/test")
            .await
            .unwrap();
        for sql in [
            "DROP DATABASE IF EXISTS gh_bench_proofs",
            "CREATE DATABASE gh_bench_proofs",
        ] {
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
        return (
            Db::connect("mysql://root@127.0.0.1:3306/gh_bench_proofs")
                .await
                .unwrap(),
            None,
        );
    }
    let dir = std::env::temp_dir().join(format!(
        "gh-bench-proofs-{}",
        gatehouse::server::platform::crypto::random_token(6)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/bench.db", dir.display());
    (Db::connect(&url).await.unwrap(), Some(dir))
}

/// `events` events with random hashes, in chunks of a million.
async fn seed_events(db: &Db, backend: &str, events: u64) {
    let mut at = 0;
    while at < events {
        let upto = (at + 1_000_000).min(events);
        let sql = if backend == "mysql" {
            format!(
                "INSERT INTO audit_events (seq, at, action, outcome, details, prev_hash, hash) \
                 SELECT seq, seq, 'bench.event', 'success', '{{}}', '', SHA2(CONCAT(RAND(), seq), 256) \
                 FROM seq_{}_to_{upto}",
                at + 1
            )
        } else {
            format!(
                "WITH RECURSIVE n(x) AS (SELECT {} UNION ALL SELECT x + 1 FROM n WHERE x < {upto}) \
                 INSERT INTO audit_events (seq, at, action, outcome, details, prev_hash, hash) \
                 SELECT x, x, 'bench.event', 'success', '{{}}', '', lower(hex(randomblob(32))) FROM n",
                at + 1
            )
        };
        sqlx::query(&sql).execute(db.pool()).await.unwrap();
        at = upto;
    }
}

/// Checkpoint rows every STEP events and at the end, with the roots and
/// frontiers of the seeded hashes (signatures are not checked here).
async fn seed_checkpoints(db: &Db, events: u64) -> usize {
    use futures::TryStreamExt;
    let mut f = Frontier::new();
    let mut number = 0;
    let mut rows = sqlx::query("SELECT hash FROM audit_events ORDER BY seq").fetch(db.pool());
    let mut cps = Vec::new();
    while let Some(r) = rows.try_next().await.unwrap() {
        let hash = gatehouse::server::platform::db::text(&r, "hash").unwrap();
        f.push_leaf(merkle::leaf_from_hex(&hash).unwrap());
        if f.size().is_multiple_of(STEP) || f.size() == events {
            number += 1;
            let text: Vec<String> = f
                .nodes()
                .iter()
                .map(|(n, h)| format!("{n}:{}", hex::encode(h)))
                .collect();
            cps.push((number, f.size(), hex::encode(f.root()), hash, text.join(",")));
        }
    }
    drop(rows);
    for (number, size, root, head, frontier) in &cps {
        sqlx::query(&format!(
            "INSERT INTO audit_checkpoints ({}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            checkpoints::CP_COLS
        ))
        .bind(number)
        .bind(*size as i64)
        .bind(root)
        .bind(head)
        .bind("0".repeat(64))
        .bind(0i64)
        .bind("bench")
        .bind("0".repeat(128))
        .bind(frontier)
        .execute(db.pool())
        .await
        .unwrap();
    }
    cps.len()
}

fn percentiles(mut d: Vec<Duration>) -> String {
    d.sort();
    let p = |q: f64| d[((d.len() as f64 * q) as usize).min(d.len() - 1)].as_secs_f64() * 1e3;
    format!(
        "p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        p(0.5),
        p(0.95),
        p(0.99),
        p(1.0)
    )
}

fn main() {
    let events: u64 = std::env::var("EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000_000);
    let backend = std::env::var("BACKEND").unwrap_or_else(|_| "sqlite".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (db, dir) = database(&backend).await;
        let t = Instant::now();
        seed_events(&db, &backend, events).await;
        let n = seed_checkpoints(&db, events).await;
        println!(
            "{backend}: seeded {events} events and {n} checkpoints in {:.1} s",
            t.elapsed().as_secs_f64()
        );

        let t = Instant::now();
        assert_eq!(tree::extend(&db).await.unwrap(), events as i64);
        let s = t.elapsed().as_secs_f64();
        println!(
            "stored tree filled for {events} events in {s:.1} s ({:.0} events/s)",
            events as f64 / s
        );

        let cps = checkpoints::list(db.pool(), 0, 1000).await.unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(22);
        let (mut incl, mut cons) = (Vec::new(), Vec::new());
        for _ in 0..1_000 {
            let cp = &cps[rng.gen_range(0..cps.len())];
            let seq = rng.gen_range(1..=cp.tree_size);
            let t = Instant::now();
            let p = checkpoints::proof(&db, cp, seq).await.unwrap().unwrap();
            incl.push(t.elapsed());
            assert_eq!(p.seq, seq);

            let i = rng.gen_range(0..cps.len());
            let j = rng.gen_range(i..cps.len());
            let t = Instant::now();
            checkpoints::consistency(&db, &cps[i], &cps[j]).await.unwrap();
            cons.push(t.elapsed());
        }
        println!(
            "inclusion proof (checked against the root), 1,000 at random: {}",
            percentiles(incl)
        );
        println!(
            "consistency proof (checked against both roots), 1,000 at random: {}",
            percentiles(cons)
        );
        db.close().await;
        if let Some(dir) = dir {
            std::fs::remove_dir_all(dir).ok();
        }
    });
}
