//! Audit chain throughput on SQLite: batched appends and verification.
//! Run: cargo bench --features ssr --bench audit   (figures in docs/benchmarks.md)

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use gatehouse::domain::actions::Action;
use gatehouse::domain::audit::{self, Actor, NewEvent, Outcome};
use gatehouse::server::{audit as audit_log, platform::db::Db};

fn event(i: usize) -> NewEvent {
    NewEvent::new(
        Action::AccessCheck,
        Outcome::Success,
        Actor {
            user_id: Some((i % 18) as i64 + 1),
            session: Some("3f2a9c0d1e4b5a68".into()),
            ip: Some("10.20.30.40".into()),
            user_agent: Some("customer-api/1.4 (python-httpx)".into()),
        },
    )
    .target("customer", 10_000 + i % 5_000)
    .reason("SUP-1234 address change")
    .details(serde_json::json!({ "permission": "customers:read_pii", "fields": ["address", "phone"], "i": i }))
}

fn temp_db(rt: &tokio::runtime::Runtime) -> (Db, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "gh-bench-{}",
        gatehouse::server::platform::crypto::random_token(6)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/bench.db", dir.display());
    (rt.block_on(Db::connect(&url)).unwrap(), dir)
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // Appends in batches of 1,000 events, one transaction per batch.
    let (db, dir) = temp_db(&rt);
    let mut g = c.benchmark_group("audit_append");
    g.throughput(Throughput::Elements(1_000));
    g.sample_size(20);
    g.bench_function("sqlite_batch_1000", |b| {
        b.iter_batched(
            || (0..1_000).map(event).collect::<Vec<_>>(),
            |events| {
                rt.block_on(async {
                    let mut tx = db.begin_write().await.unwrap();
                    audit_log::append(&mut tx, 1_767_225_600_000, events).await.unwrap();
                    tx.commit().await.unwrap();
                })
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
    drop(db);
    let _ = std::fs::remove_dir_all(dir);

    // Verification of a 200,000-event chain, from the database and in memory.
    let (db, dir) = temp_db(&rt);
    const N: usize = 200_000;
    rt.block_on(async {
        for chunk in 0..N / 10_000 {
            let mut tx = db.begin_write().await.unwrap();
            audit_log::append(
                &mut tx,
                1_767_225_600_000,
                (chunk * 10_000..(chunk + 1) * 10_000).map(event).collect(),
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
        }
    });
    let mut g = c.benchmark_group("audit_verify");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    g.bench_function("sqlite_200k", |b| {
        b.iter(|| {
            let report = rt.block_on(audit_log::verify(&db)).unwrap();
            assert_eq!(report.error, None);
            assert_eq!(report.checked, N as u64);
        })
    });
    // What `gatehouse audit verify` does: the chain and, leaf by leaf, the
    // Merkle tree every signed checkpoint is compared with (no checkpoints
    // stored here, so the cost is the tree's, not the signatures').
    g.bench_function("sqlite_200k_with_merkle", |b| {
        b.iter(|| {
            let report = rt.block_on(audit_log::verify_signed(&db, &[])).unwrap();
            assert!(report.ok());
            assert_eq!(report.checked, N as u64);
        })
    });
    let mut prev = audit::GENESIS_HASH.to_owned();
    let chain: Vec<audit::Event> = (0..N)
        .map(|i| {
            let e = event(i).seal(i as i64 + 1, 1_767_225_600_000, &prev);
            prev = e.hash.clone();
            e
        })
        .collect();
    g.bench_function("in_memory_200k", |b| {
        b.iter(|| audit::verify_chain(&chain, N as i64, &prev).unwrap())
    });
    g.finish();
    drop(db);
    let _ = std::fs::remove_dir_all(dir);
}

criterion_group!(audit_benches, benches);
criterion_main!(audit_benches);
