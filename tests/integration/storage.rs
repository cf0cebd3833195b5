use crate::helpers::*;
use gatehouse::domain::audit::{Action, Actor, ChainError, NewEvent, Outcome};
use gatehouse::server::audit as audit_log;

on_both!(
    audit_events_are_append_only_in_the_database,
    concurrent_appends_never_fork_the_chain,
    rolled_back_changes_leave_no_event,
    tampering_is_detected,
    seed_demo_fills_an_empty_database_once,
    appended_events_read_back_exactly,
    events_recorded_at_once_are_each_committed_and_answered,
    an_event_that_cannot_be_stored_does_not_fail_the_others_recorded_with_it,
);

fn ev(i: usize) -> NewEvent {
    let actor = Actor {
        user_id: Some(i as i64),
        ..Default::default()
    };
    let event = NewEvent::new(Action::AccessCheck, Outcome::Success, actor).details(serde_json::json!({ "i": i }));
    // A name of its own, outside `Action`: these events stand for nothing.
    NewEvent {
        action: "test.event".into(),
        ..event
    }
}

async fn append_n(app: &TestApp, n: usize) {
    let mut tx = app.state.db.begin_write().await.unwrap();
    audit_log::append(&mut tx, app.clock.now(), (0..n).map(ev).collect())
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

async fn audit_events_are_append_only_in_the_database(b: Backend) {
    let app = TestApp::spawn(&b).await;
    append_n(&app, 3).await;
    let pool = app.state.db.pool();
    let upd = sqlx::query("UPDATE audit_events SET reason = 'x' WHERE seq = 2")
        .execute(pool)
        .await;
    assert!(upd.unwrap_err().to_string().contains("append-only"));
    let del = sqlx::query("DELETE FROM audit_events WHERE seq = 3")
        .execute(pool)
        .await;
    assert!(del.unwrap_err().to_string().contains("append-only"));
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_events").await, 3);
    app.verify_chain().await;
    app.cleanup().await;
}

async fn concurrent_appends_never_fork_the_chain(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let st = app.state.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let mut tx = st.db.begin_write().await.unwrap();
                audit_log::append(&mut tx, st.clock.now(), vec![ev(t * 100 + i)])
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_events").await, 200);
    assert_eq!(app.count("SELECT MAX(seq) FROM audit_events").await, 200, "gapless");
    let report = audit_log::verify(&app.state.db).await.unwrap();
    assert_eq!(report.error, None);
    assert_eq!(report.checked, 200);
    app.cleanup().await;
}

async fn rolled_back_changes_leave_no_event(b: Backend) {
    let app = TestApp::spawn(&b).await;
    append_n(&app, 2).await;
    let mut tx = app.state.db.begin_write().await.unwrap();
    audit_log::append(&mut tx, app.clock.now(), vec![ev(9)]).await.unwrap();
    drop(tx); // rolled back
    append_n(&app, 1).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_events").await, 3);
    assert_eq!(app.count("SELECT MAX(seq) FROM audit_events").await, 3);
    app.verify_chain().await;
    app.cleanup().await;
}

/// Removes the append-only triggers, as an attacker with database access could.
async fn drop_triggers(app: &TestApp) {
    for t in ["audit_events_no_update", "audit_events_no_delete"] {
        sqlx::query(&format!("DROP TRIGGER {t}"))
            .execute(app.state.db.pool())
            .await
            .unwrap();
    }
}

async fn tampering_is_detected(b: Backend) {
    // A changed field.
    let app = TestApp::spawn(&b).await;
    append_n(&app, 10).await;
    drop_triggers(&app).await;
    sqlx::query("UPDATE audit_events SET outcome = 'denied' WHERE seq = 4")
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let r = audit_log::verify(&app.state.db).await.unwrap();
    assert_eq!(r.error, Some(ChainError::HashMismatch { seq: 4 }));
    assert_eq!(r.checked, 3);
    app.cleanup().await;

    // A deleted event.
    let app = TestApp::spawn(&b).await;
    append_n(&app, 10).await;
    drop_triggers(&app).await;
    sqlx::query("DELETE FROM audit_events WHERE seq = 6")
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let r = audit_log::verify(&app.state.db).await.unwrap();
    assert_eq!(r.error, Some(ChainError::Gap { expected: 6, found: 7 }));
    app.cleanup().await;

    // Two events swapped (sequence numbers exchanged).
    let app = TestApp::spawn(&b).await;
    append_n(&app, 10).await;
    drop_triggers(&app).await;
    let pool = app.state.db.pool();
    sqlx::query("UPDATE audit_events SET seq = 1000 WHERE seq = 2")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_events SET seq = 2 WHERE seq = 3")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_events SET seq = 3 WHERE seq = 1000")
        .execute(pool)
        .await
        .unwrap();
    let r = audit_log::verify(&app.state.db).await.unwrap();
    assert_eq!(r.error, Some(ChainError::HashMismatch { seq: 2 }));
    app.cleanup().await;

    // The tail cut off.
    let app = TestApp::spawn(&b).await;
    append_n(&app, 10).await;
    drop_triggers(&app).await;
    sqlx::query("DELETE FROM audit_events WHERE seq > 8")
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let r = audit_log::verify(&app.state.db).await.unwrap();
    assert_eq!(
        r.error,
        Some(ChainError::Truncated {
            head_seq: 10,
            last_seq: 8
        })
    );
    app.cleanup().await;
}

async fn seed_demo_fills_an_empty_database_once(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let people = gatehouse::server::seed::seed_demo(&app.state).await.unwrap();
    assert_eq!(people.len(), 18);
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 18);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM grants WHERE role = 'engineer'").await,
        12
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM grants WHERE role = 'support'").await, 3);
    assert_eq!(app.audit_count("demo.seeded", "success").await, 1);
    // No password is stored in clear.
    let (email, _, password) = &people[2];
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM users WHERE password_hash LIKE '%{password}%'"
        ))
        .await,
        0
    );
    assert!(matches!(
        gatehouse::server::seed::seed_demo(&app.state).await,
        Err(gatehouse::server::seed::SeedError::NotEmpty)
    ));
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 18);
    // A seeded person signs in and is sent to enrolment.
    let c = client();
    let r = app
        .call(&c, "sign_in", &[("email", email), ("password", password)])
        .await;
    assert_eq!(r.headers().get("location").unwrap(), "/mfa/enrol");
    let (_, codes) = app.enrol(&c).await;
    assert_eq!(codes.len(), 10);
    assert_eq!(app.me(&c).await["roles"][0], "Engineer");
    app.verify_chain().await;
    app.cleanup().await;
}

/// Every text an event can carry is stored exactly as hashed, whichever way
/// the batch is written (SQLite packs batches into JSON; a NUL sends the
/// batch through bound values instead).
async fn appended_events_read_back_exactly(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let texts = [
        "plain",
        "quotes \" and ' and \\ backslash",
        "line\nbreak\ttab\r",
        "{\"looks\": [\"like\", \"json\"]}",
        "unicode: Zoë Ødegård, 東京, 🔐, \u{200b}zero-width, \u{7f}",
        "\u{1}\u{1f} control",
        "",
        "null",
        "1234",
    ];
    let event = |t: &str, i: usize| {
        let actor = Actor {
            user_id: if i.is_multiple_of(2) { None } else { Some(i as i64) },
            session: Some(t.to_owned()),
            ip: None,
            user_agent: Some(format!("{t} agent")),
        };
        let e = NewEvent::new(Action::AccessCheck, Outcome::Denied, actor)
            .target("customer", t)
            .reason(t)
            .details(serde_json::json!({ "text": t, "n": i, "nested": { "list": [t, null, 1.5] } }));
        // Names of their own, outside `Action`, as before.
        NewEvent {
            action: format!("test.{i}"),
            ..e
        }
    };
    let mut batches: Vec<Vec<NewEvent>> = vec![texts.iter().enumerate().map(|(i, t)| event(t, i)).collect()];
    batches.push(vec![
        event("before", 100),
        event("nul \u{0} inside", 101),
        event("after", 102),
    ]);
    let mut written = Vec::new();
    for batch in batches {
        let mut tx = app.state.db.begin_write().await.unwrap();
        written.extend(audit_log::append(&mut tx, app.clock.now(), batch).await.unwrap());
        tx.commit().await.unwrap();
    }
    let sql = format!("SELECT {} FROM audit_events ORDER BY seq", audit_log::COLUMNS);
    let rows = sqlx::query(&sql).fetch_all(app.state.db.pool()).await.unwrap();
    let stored: Vec<_> = rows.iter().map(|r| audit_log::event_from_row(r).unwrap()).collect();
    let stored: Vec<_> = stored.into_iter().filter(|e| e.action.starts_with("test.")).collect();
    assert_eq!(stored.len(), written.len());
    for (s, w) in stored.iter().zip(&written) {
        assert_eq!(s, w, "event {} changed on its way through the database", w.seq);
    }
    assert!(stored.iter().any(|e| e.reason.as_deref() == Some("nul \u{0} inside")));
    app.verify_chain().await;
    app.cleanup().await;
}

/// Many events recorded at the same moment (group commit): each caller is
/// answered with its own event, as stored, and the chain stays gapless.
async fn events_recorded_at_once_are_each_committed_and_answered(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let hold = hold_audit_head(&app).await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let st = app.state.clone();
        tasks.push(tokio::spawn(async move {
            (i, st.recorder.record_sealed(1_000 + i as i64, ev(i)).await.unwrap())
        }));
    }
    // All of them queue behind the held head, then go in large groups.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    drop(hold);
    let mut seqs = Vec::new();
    for t in tasks {
        let (i, sealed) = t.await.unwrap();
        assert_eq!(
            sealed.actor.user_id,
            Some(i as i64),
            "each caller gets its own event back"
        );
        assert_eq!(sealed.at, 1_000 + i as i64, "each event keeps its own time");
        let row = sqlx::query(&format!(
            "SELECT {} FROM audit_events WHERE seq = ?",
            audit_log::COLUMNS
        ))
        .bind(sealed.seq)
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
        assert_eq!(
            audit_log::event_from_row(&row).unwrap(),
            sealed,
            "the answer is the stored event"
        );
        seqs.push(sealed.seq);
    }
    seqs.sort();
    assert_eq!(seqs, (1..=200).collect::<Vec<i64>>(), "one place in the chain each");
    app.verify_chain().await;
    app.cleanup().await;
}

/// A database that refuses one event (here a trigger, standing in for any
/// failure tied to one row) fails only that caller, even when its event was
/// committed together with others.
async fn an_event_that_cannot_be_stored_does_not_fail_the_others_recorded_with_it(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let trigger = match b {
        Backend::Sqlite => "CREATE TRIGGER test_refuse_poison BEFORE INSERT ON audit_events WHEN NEW.action = 'test.poison' \
                            BEGIN SELECT RAISE(ABORT, 'poison refused'); END"
            .to_owned(),
        _ => "CREATE TRIGGER test_refuse_poison BEFORE INSERT ON audit_events FOR EACH ROW BEGIN \
              IF NEW.action = 'test.poison' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'poison refused'; END IF; END"
            .to_owned(),
    };
    sqlx::query(&trigger).execute(app.state.db.pool()).await.unwrap();
    let hold = hold_audit_head(&app).await;
    let mut tasks = Vec::new();
    for i in 0..60 {
        let st = app.state.clone();
        let event = if i % 20 == 7 {
            // A name outside `Action`, which the trigger below refuses.
            NewEvent {
                action: "test.poison".into(),
                ..NewEvent::new(Action::AccessCheck, Outcome::Success, Actor::default())
            }
        } else {
            ev(i)
        };
        tasks.push(tokio::spawn(async move {
            (i, st.recorder.record_sealed(st.clock.now(), event).await)
        }));
    }
    // They queue behind the held head, so the refused events share their
    // commits with others.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    drop(hold);
    let (mut stored, mut refused) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            (i, Ok(e)) => {
                assert_ne!(i % 20, 7, "the refused event was reported stored");
                assert_eq!(e.actor.user_id, Some(i as i64));
                stored += 1;
            }
            (i, Err(e)) => {
                assert_eq!(i % 20, 7, "event {i} failed with the refused one: {e}");
                refused += 1;
            }
        }
    }
    assert_eq!((stored, refused), (57, 3));
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_events").await, 57);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'test.poison'")
            .await,
        0
    );
    app.verify_chain().await;
    app.cleanup().await;
}

/// A write transaction holding the chain's head, so appends queue up.
async fn hold_audit_head(app: &TestApp) -> gatehouse::server::platform::db::WriteTx {
    let mut tx = app.state.db.begin_write().await.unwrap();
    let sql = format!("SELECT last_seq FROM audit_head WHERE id = 1{}", tx.for_update());
    sqlx::query(&sql).fetch_one(tx.conn()).await.unwrap();
    tx
}

/// SQLite: commits never copy the write-ahead log back themselves (that
/// costs an fsync of the database file inside the write lock); a thread of
/// the `Db` does, and under writes that never pause the log still starts
/// again from its beginning, so it stays bounded. Writes 1 MB transactions
/// back to back (up to 256 MB) until the log has started again three times;
/// without the checkpoint thread it never does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_wal_is_checkpointed_off_the_commit_path_and_stays_bounded() {
    let dir = tempdir::Dir::new();
    let file = dir.0.join("wal.db");
    let db = gatehouse::server::platform::db::Db::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    let mut conns = Vec::new();
    for _ in 0..3 {
        let mut c = db.pool().acquire().await.unwrap();
        let auto: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
            .fetch_one(&mut *c)
            .await
            .unwrap();
        assert_eq!(auto, 0, "a pool connection checkpoints inside its commits");
        conns.push(c);
    }
    drop(conns);
    let mut tx = db.begin_write().await.unwrap();
    let auto: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    let cache: i64 = sqlx::query_scalar("PRAGMA cache_size")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert_eq!((auto, cache), (0, -16384), "the writing connection's settings");
    drop(tx);
    sqlx::query("CREATE TABLE wal_test (n INTEGER NOT NULL, b BLOB NOT NULL)")
        .execute(db.pool())
        .await
        .unwrap();
    let wal = std::path::PathBuf::from(format!("{}-wal", file.display()));
    // The log's header counts the times it started again (offset 12).
    let restarts = || {
        let bytes = std::fs::read(&wal).unwrap_or_default();
        bytes
            .get(12..16)
            .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
            .unwrap_or(0)
    };
    let first = restarts();
    let (mut largest, mut written) = (0, 0);
    while restarts().wrapping_sub(first) < 3 && written < 256 {
        let mut tx = db.begin_write().await.unwrap();
        sqlx::query(
            "INSERT INTO wal_test (n, b) WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 256) \
             SELECT ? * 1000 + i, randomblob(4000) FROM c",
        )
        .bind(written)
        .execute(tx.conn())
        .await
        .unwrap();
        tx.commit().await.unwrap();
        written += 1;
        largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
    }
    assert!(
        restarts().wrapping_sub(first) >= 3,
        "the log never started again: {} MB written, {} MB of log",
        written,
        largest >> 20
    );
    assert!(
        largest < 128 << 20,
        "the log grew to {} MB of the {written} MB written",
        largest >> 20
    );
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM wal_test")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(rows, written * 256);
    drop(db);
    // Everything committed is there for the next process.
    let db = gatehouse::server::platform::db::Db::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    let sum: i64 = sqlx::query_scalar("SELECT SUM(length(b)) FROM wal_test")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(sum, written * 256 * 4000);
}

/// The SQLite database and its -wal and -shm files are readable by their
/// owner only (0600), like master.key; a file an earlier version created
/// more openly is tightened at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = tempdir::Dir::new();
    let file = dir.0.join("fresh.db");
    let db = gatehouse::server::platform::db::Db::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    // A write, so the log and its index exist.
    let mut tx = db.begin_write().await.unwrap();
    sqlx::query("CREATE TABLE perms_test (n INTEGER)")
        .execute(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let p = std::path::PathBuf::from(format!("{}{suffix}", file.display()));
        assert_eq!(mode(&p), 0o600, "{} is {:o}", p.display(), mode(&p));
    }
    db.close().await;

    let old = dir.0.join("old.db");
    std::fs::write(&old, b"").unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
    let db = gatehouse::server::platform::db::Db::connect(&format!("sqlite://{}", old.display()))
        .await
        .unwrap();
    assert_eq!(mode(&old), 0o600, "an existing database file is tightened");
    db.close().await;
}
