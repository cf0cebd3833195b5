//! Access reviews on the embedded SQLite store: starting a campaign over
//! 10,000 standing grants (the snapshot with its usage facts: last sign-in
//! and last access check under each grant, read from an audit trail of
//! 60,000 events), and a reviewer's open items (500 of them, in that
//! open campaign of 10,000) as the `/reviews` page loads them
//! (`my_reviews`: the items, then their JSON), then closing that campaign.
//! Run: cargo bench --no-default-features --features ssr --bench reviews
//! (figures in docs/benchmarks.md)

use gatehouse::domain::{
    actions::Action,
    audit::{Actor, NewEvent, Outcome},
    permissions::{Permission, PermissionSet},
    reviews::{DeadlineRule, Scope},
};
use gatehouse::server::{
    access::{authz::Principal, grants, reviews},
    audit,
    identity::accounts as users,
    platform::{
        clock::Clock,
        config::Config,
        request::{AuthState, RequestCtx, Stage},
    },
    startup,
    state::AppState,
};
use serde_json::json;
use std::time::Instant;

const GRANTS: usize = 10_000;
const OWNED: usize = 500;
const PAGE_ROUNDS: usize = 60;

fn auth(user_id: i64) -> AuthState {
    AuthState {
        user_id,
        stage: Stage::Full,
        created_at: 0,
        last_seen: 0,
        mfa_at: None,
        passkey_at: None,
    }
}

fn ctx(user_id: i64) -> RequestCtx {
    RequestCtx {
        request_id: "bench".into(),
        ip: None,
        user_agent: None,
        session_tag: None,
        auth: Some(auth(user_id)),
        access_version: None,
        device_cookie: None,
        passkey_required: false,
    }
}

fn principal(user_id: i64, perms: &[Permission]) -> Principal {
    Principal {
        auth: auth(user_id),
        user_id,
        perms: PermissionSet::of(perms),
    }
}

fn p95(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[v.len() / 2], v[(v.len() * 95).div_ceil(100) - 1])
}

/// 10,000 employees with one standing grant each (500 support, the rest
/// engineer), a sign-in each and five access checks under each grant.
async fn company(st: &AppState) -> i64 {
    let now = st.clock.now();
    let mut ids = Vec::new();
    for chunk in 0..(GRANTS / 1_000) {
        let mut tx = st.db.begin_write().await.unwrap();
        for i in chunk * 1_000..(chunk + 1) * 1_000 {
            let email = format!("person{i}@example.com");
            let user = users::NewUser {
                email: &email,
                display_name: "Bench Person",
                department: if i < OWNED { "support" } else { "engineering" },
                password_hash: None,
                status: "active",
                provisioned_by: users::Provisioning::Gatehouse,
            };
            let id = users::insert(&mut tx, user, now).await.unwrap();
            let role = if i < OWNED { "support" } else { "engineer" };
            let g = grants::insert_standing(&mut tx, id, role, None, "bench", now)
                .await
                .unwrap();
            ids.push((id, g));
        }
        tx.commit().await.unwrap();
    }
    for chunk in ids.chunks(1_000) {
        let mut tx = st.db.begin_write().await.unwrap();
        let mut events = Vec::new();
        for (user, g) in chunk {
            events.push(NewEvent::new(
                Action::SignIn,
                Outcome::Success,
                Actor {
                    user_id: Some(*user),
                    ..Actor::default()
                },
            ));
            for c in 0..5 {
                events.push(
                    NewEvent::new(Action::AccessCheck, Outcome::Success, Actor::default())
                        .target("user", user)
                        .customer(format!("C-{c}"))
                        .details(json!({ "grant_id": g, "decision": "allow" })),
                );
            }
        }
        audit::append(&mut tx, now, events).await.unwrap();
        tx.commit().await.unwrap();
    }
    // The administrator (who starts campaigns) and the support role's owner.
    let mut tx = st.db.begin_write().await.unwrap();
    let admin = users::insert(
        &mut tx,
        users::NewUser {
            email: "admin@example.com",
            display_name: "Admin",
            department: "administration",
            password_hash: None,
            status: "active",
            provisioned_by: users::Provisioning::Gatehouse,
        },
        now,
    )
    .await
    .unwrap();
    grants::insert_standing(&mut tx, admin, "admin", None, "bench", now)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    admin
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    sqlx::any::install_default_drivers();
    let dir = std::env::temp_dir().join(format!("gh-bench-reviews-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let vars = [
        ("GATEHOUSE_DATABASE_URL", format!("sqlite://{}/bench.db", dir.display())),
        ("GATEHOUSE_DATA_DIR", dir.display().to_string()),
    ];
    let config = Config::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap();
    let st = startup::state(config, Clock::system()).await.unwrap();
    let t = Instant::now();
    let admin = company(&st).await;
    println!(
        "company of {GRANTS} grants and {} audit events: {:.1} s",
        GRANTS * 6,
        t.elapsed().as_secs_f64()
    );
    let owner = 1; // person0, who holds a support grant: never reviews it
    let boss = principal(admin, &[Permission::AccessGrant, Permission::EmployeesManage]);
    reviews::set_owners(&st, &ctx(admin), &boss, "support", &[owner, 2])
        .await
        .unwrap();

    let mut starts = Vec::new();
    let mut last = 0;
    for round in 0..3 {
        let input = reviews::CampaignInput {
            name: format!("bench {round}"),
            scope: Scope::AllStanding,
            due_in_days: 14,
            rule: DeadlineRule::default(),
            every_months: None,
        };
        let t = Instant::now();
        let (id, items) = reviews::start(&st, &ctx(admin), &boss, input).await.unwrap();
        starts.push(t.elapsed().as_secs_f64());
        assert_eq!(items, GRANTS + 1);
        // One campaign open at a time, as in use.
        if last > 0 {
            sqlx::query("UPDATE review_campaigns SET closed_at = 1 WHERE id = ?")
                .bind(last)
                .execute(st.db.pool())
                .await
                .unwrap();
        }
        last = id;
    }
    println!("start a campaign over {GRANTS} grants (snapshot with usage facts): {starts:.2?} s");

    let reviewer = principal(owner, &[]);
    let mut page = Vec::new();
    let mut n = 0;
    for _ in 0..PAGE_ROUNDS {
        let t = Instant::now();
        let mine = reviews::mine(&st, &reviewer).await.unwrap();
        let body = serde_json::to_string(&mine).unwrap();
        page.push(t.elapsed().as_secs_f64() * 1_000.0);
        n = mine.len();
        assert!(body.len() > 1_000);
    }
    let (median, p) = p95(page);
    println!(
        "reviewer's open items ({n} of {} in the open campaign): median {median:.0} ms, p95 {p:.0} ms",
        GRANTS + 1
    );
    // Close the open campaign now: every item undecided, kept and flagged
    // (nothing here is critical), each recorded, the report frozen.
    let t = Instant::now();
    reviews::close_now(&st, &ctx(admin), &boss, last).await.unwrap();
    println!(
        "close a campaign of {} undecided items: {:.2} s",
        GRANTS + 1,
        t.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
