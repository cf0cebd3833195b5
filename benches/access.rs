//! Authorization speed on SQLite: an effective-permission check for one
//! employee, and offboarding an employee with 50 grants and 10 sessions.
//! Run: cargo bench --no-default-features --features ssr --bench access
//! (figures in docs/benchmarks.md)

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use gatehouse::domain::{audit::Actor, grants, permissions::Permission, roles};
use gatehouse::server::{
    access::{authz as access, grants as grant_store, people, AccessCache},
    identity::accounts as users,
    platform::db::Db,
};
use sqlx::Row;

const NOW: i64 = 1_767_225_600_000;

fn temp_db(rt: &tokio::runtime::Runtime) -> (Db, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "gh-bench-{}",
        gatehouse::server::platform::crypto::random_token(6)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/bench.db", dir.display());
    (rt.block_on(Db::connect(&url)).unwrap(), dir)
}

async fn new_user(db: &Db, email: &str) -> i64 {
    let mut tx = db.begin_write().await.unwrap();
    let id = users::insert(
        &mut tx,
        users::NewUser {
            email,
            display_name: "Bench Person",
            department: "support",
            password_hash: None,
            status: "active",
            provisioned_by: users::Provisioning::Gatehouse,
        },
        NOW,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (db, dir) = temp_db(&rt);

    // 50 custom roles, so one employee can hold 50 grants.
    rt.block_on(async {
        for i in 0..50 {
            sqlx::query("INSERT INTO roles (role_key, name, description, permissions, requestable, created_at, updated_at) VALUES (?, ?, '', 'leads:read', 0, ?, ?)")
                .bind(format!("bench-{i}"))
                .bind(format!("Bench {i}"))
                .bind(NOW)
                .bind(NOW)
                .execute(db.pool())
                .await
                .unwrap();
        }
    });

    // A support employee with the usual grants: support (standing),
    // support-pii (time-boxed) and an expired and a revoked one.
    let uid = rt.block_on(async {
        let uid = new_user(&db, "check@bench.example").await;
        for (role, exp, revoked) in [("support", None, None), ("support-pii", Some(NOW + 3_600_000), None), ("sales", Some(NOW - 1), None), ("engineer", None, Some(NOW - 5))] {
            sqlx::query("INSERT INTO grants (user_id, role, reason, starts_at, expires_at, revoked_at, created_at) VALUES (?, ?, 'bench', ?, ?, ?, ?)")
                .bind(uid)
                .bind(role)
                .bind(NOW - 10_000)
                .bind(exp)
                .bind(revoked)
                .bind(NOW)
                .execute(db.pool())
                .await
                .unwrap();
        }
        uid
    });
    let held = rt.block_on(access::permissions_at(db.pool(), uid, NOW)).unwrap();
    assert!(held.contains(Permission::CustomersReadPii) && !held.contains(Permission::LeadsRead));

    let mut g = c.benchmark_group("permission_check");
    g.bench_function("sqlite_one_employee", |b| {
        b.iter(|| {
            let held = rt.block_on(access::permissions_at(db.pool(), uid, NOW)).unwrap();
            assert!(held.contains(Permission::OrdersWrite));
        })
    });
    // As a request handler sees it: already on the runtime, no hop in and out.
    g.bench_function("sqlite_one_employee_in_runtime", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = std::time::Instant::now();
                for _ in 0..iters {
                    let held = access::permissions_at(db.pool(), uid, NOW).await.unwrap();
                    assert!(held.contains(Permission::OrdersWrite));
                }
                start.elapsed()
            })
        })
    });
    // What a request's check costs now: the employee's facts kept in memory,
    // used when their access version (read with the employee's row, which
    // every request reads anyway) is unchanged.
    let cache = AccessCache::default();
    let version = rt
        .block_on(users::by_id(db.pool(), uid))
        .unwrap()
        .unwrap()
        .access_version;
    g.bench_function("cached_one_employee_in_runtime", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = std::time::Instant::now();
                for _ in 0..iters {
                    let facts = cache.facts(db.pool(), uid, Some(version), NOW).await.unwrap();
                    assert!(facts.permissions(NOW).contains(Permission::OrdersWrite));
                }
                start.elapsed()
            })
        })
    });
    g.bench_function("cached_one_employee_decision", |b| {
        b.iter(|| {
            let facts = cache.fresh(uid, version, NOW).unwrap();
            assert!(facts.decide(Permission::CustomersReadPii, None, NOW).allow);
        })
    });
    // The whole per-request authorisation, before and after: the employee's
    // row (status, access version) and then the check.
    g.bench_function("request_user_row_then_uncached_check", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = std::time::Instant::now();
                for _ in 0..iters {
                    let u = users::by_id(db.pool(), uid).await.unwrap().unwrap();
                    assert!(access::permissions_at(db.pool(), u.id, NOW)
                        .await
                        .unwrap()
                        .contains(Permission::OrdersWrite));
                }
                start.elapsed()
            })
        })
    });
    g.bench_function("request_user_row_then_cached_check", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = std::time::Instant::now();
                for _ in 0..iters {
                    let u = users::by_id(db.pool(), uid).await.unwrap().unwrap();
                    let facts = cache.facts(db.pool(), u.id, Some(u.access_version), NOW).await.unwrap();
                    assert!(facts.permissions(NOW).contains(Permission::OrdersWrite));
                }
                start.elapsed()
            })
        })
    });
    g.bench_function("sqlite_select_1_in_runtime_reference", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = std::time::Instant::now();
                for _ in 0..iters {
                    sqlx::query("SELECT 1 AS one").fetch_one(db.pool()).await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    // The same check with a custom role among the grants (reads the roles table too).
    rt.block_on(async {
        sqlx::query(
            "INSERT INTO grants (user_id, role, reason, starts_at, created_at) VALUES (?, 'bench-0', 'bench', ?, ?)",
        )
        .bind(uid)
        .bind(NOW - 10_000)
        .bind(NOW)
        .execute(db.pool())
        .await
        .unwrap();
    });
    g.bench_function("sqlite_one_employee_custom_role", |b| {
        b.iter(|| {
            let held = rt.block_on(access::permissions_at(db.pool(), uid, NOW)).unwrap();
            assert!(held.contains(Permission::LeadsRead));
        })
    });
    // The floor: the cheapest query through the same pool.
    g.bench_function("sqlite_select_1_reference", |b| {
        b.iter(|| {
            rt.block_on(sqlx::query("SELECT 1 AS one").fetch_one(db.pool()))
                .unwrap()
        })
    });
    let builtins = roles::builtin_roles();
    let gs: Vec<grants::Grant> = (0..4)
        .map(|i| grants::Grant {
            id: i,
            user_id: 1,
            role: ["support", "support-pii", "sales", "engineer"][i as usize].into(),
            starts_at: NOW - 1,
            expires_at: Some(NOW + 1),
            revoked_at: None,
            pending: false,
            customers: None,
        })
        .collect();
    g.bench_function("domain_only", |b| {
        b.iter(|| grants::permission_set(grants::Status::Active, &gs, &builtins, NOW))
    });
    g.finish();

    // Offboarding: a fresh employee with 50 grants and 10 sessions each time.
    let mut g = c.benchmark_group("offboarding");
    g.sample_size(30);
    let mut n = 0;
    g.bench_function("sqlite_50_grants_10_sessions", |b| {
        b.iter_batched(
            || {
                n += 1;
                rt.block_on(async {
                    let uid = new_user(&db, &format!("leaver{n}@bench.example")).await;
                    for i in 0..50 {
                        sqlx::query("INSERT INTO grants (user_id, role, reason, starts_at, created_at) VALUES (?, ?, 'bench', ?, ?)")
                            .bind(uid)
                            .bind(format!("bench-{i}"))
                            .bind(NOW)
                            .bind(NOW)
                            .execute(db.pool())
                            .await
                            .unwrap();
                    }
                    for s in 0..10 {
                        sqlx::query("INSERT INTO sessions (id_hash, user_id, data, created_at, last_seen, expires_at) VALUES (?, ?, '{}', ?, ?, ?)")
                            .bind(format!("{uid:08}{s:056}"))
                            .bind(uid)
                            .bind(NOW)
                            .bind(NOW)
                            .bind(NOW + 3_600_000)
                            .execute(db.pool())
                            .await
                            .unwrap();
                    }
                    uid
                })
            },
            |uid| {
                rt.block_on(async {
                    let mut tx = db.begin_write().await.unwrap();
                    let leaver = people::Leaver {
                        user_id: uid,
                        status_before: "active",
                        reason: "offboarding",
                        revoke_tokens: true,
                    };
                    people::offboard_in(&mut tx, &Actor::default(), None, leaver, NOW).await.unwrap();
                    tx.commit().await.unwrap();
                });
                uid
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
    // The expiry job: 10,000 grants (100 employees, 100 each) that all
    // expired at the same instant, recorded in the audit chain.
    let st = rt.block_on(async {
        let vars = [
            ("GATEHOUSE_DATABASE_URL", format!("sqlite://{}/bench.db", dir.display())),
            ("GATEHOUSE_DATA_DIR", dir.display().to_string()),
        ];
        let config = gatehouse::server::platform::config::Config::from_lookup(|k| {
            vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
        })
        .unwrap();
        gatehouse::server::startup::state(config, gatehouse::server::platform::clock::Clock::manual(NOW))
            .await
            .unwrap()
    });
    // Expiries left from the setup above are recorded first.
    rt.block_on(grant_store::sweep_expired(&st)).unwrap();
    let holders: Vec<i64> = rt.block_on(async {
        let mut ids = Vec::new();
        for i in 0..100 {
            ids.push(new_user(&db, &format!("expiring{i}@bench.example")).await);
        }
        ids
    });
    let mut g = c.benchmark_group("grant_expiry");
    g.sample_size(10);
    g.bench_function("sqlite_10k_simultaneous", |b| {
        b.iter_batched(
            || {
                rt.block_on(async {
                    let mut tx = db.begin_write().await.unwrap();
                    for u in &holders {
                        let rows = vec!["(?, 'support', 'bench', ?, ?, ?)"; 100].join(",");
                        let sql = format!("INSERT INTO grants (user_id, role, reason, starts_at, expires_at, created_at) VALUES {rows}");
                        let mut q = sqlx::query(&sql);
                        for _ in 0..100 {
                            q = q.bind(*u).bind(NOW - 3_600_000).bind(NOW - 1).bind(NOW - 3_600_000);
                        }
                        q.execute(tx.conn()).await.unwrap();
                    }
                    tx.commit().await.unwrap();
                })
            },
            |_| {
                let n = rt.block_on(grant_store::sweep_expired(&st)).unwrap();
                assert_eq!(n, 10_000);
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();

    let left: i64 = rt
        .block_on(
            sqlx::query(
                "SELECT COUNT(*) AS n FROM grants WHERE revoked_at IS NULL AND expires_at IS NULL AND user_id <> ?",
            )
            .bind(uid)
            .fetch_one(db.pool()),
        )
        .unwrap()
        .try_get("n")
        .unwrap();
    assert_eq!(left, 0, "every offboarded grant revoked");
    drop(db);
    let _ = std::fs::remove_dir_all(dir);
}

criterion_group!(access_benches, benches);
criterion_main!(access_benches);
