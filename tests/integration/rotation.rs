//! Rotating the keys with the real `gatehouse` binary: the master key,
//! under which every stored secret is sealed, and the key that signs audit
//! checkpoints. Each on SQLite and MySQL.

use crate::checkpoints::{append_n, auditor, cli};
use crate::helpers::{
    process::{said, Process},
    *,
};
use gatehouse::server::{audit, audit::checkpoints, platform::crypto::MasterKey};
use reqwest::StatusCode;
use sqlx::Row;

on_both!(
    the_master_key_rotates_and_sign_in_still_works,
    a_master_key_rotation_that_cannot_open_a_secret_changes_nothing,
    the_signing_key_rotates_and_old_checkpoints_still_verify,
);

const ADMIN: &str = "ada@example.com";
const PW: &str = "correct horse battery staple";

/// `gatehouse` on this app's database and data directory.
fn gatehouse(app: &TestApp, extra: &[(&str, &str)]) -> Process {
    let mut env: Vec<(String, String)> = ["GATEHOUSE_DATABASE_URL", "GATEHOUSE_DATA_DIR"]
        .iter()
        .map(|k| (k.to_string(), app.vars[*k].clone()))
        .collect();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Process { env }
}

async fn sealed_secret(app: &TestApp, user_id: i64) -> String {
    sqlx::query("SELECT totp_secret_enc FROM users WHERE id = ?")
        .bind(user_id)
        .fetch_one(app.state.db.pool())
        .await
        .unwrap()
        .try_get("totp_secret_enc")
        .unwrap()
}

fn key_file(app: &TestApp, name: &str) -> Option<String> {
    std::fs::read_to_string(app._dir.0.join(name)).ok()
}

async fn the_master_key_rotates_and_sign_in_still_works(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (_admin, totp, _) = app.first_admin(ADMIN, PW).await;
    let id = app.user_id(ADMIN).await;
    let before = sealed_secret(&app, id).await;
    let old_key = key_file(&app, "master.key").unwrap();
    let old = MasterKey::from_base64(&old_key).unwrap();
    let plain = old
        .open(&format!("totp:{id}"), &before)
        .expect("sealed under the key file");

    // With the key in the environment, the old one must be named too.
    let out = gatehouse(
        &app,
        &[("GATEHOUSE_MASTER_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")],
    )
    .command(&["rotate-master-key"])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(said(&out).contains("GATEHOUSE_MASTER_KEY_PREVIOUS"), "{}", said(&out));
    assert_eq!(sealed_secret(&app, id).await, before, "nothing written");

    // A database target's connector password, sealed like every secret.
    let connector_pw = b"connector pass 7Hq2";
    let target: i64 = 41;
    sqlx::query(
        "INSERT INTO db_targets (id, name, host, port, tls, username, secret_enc, created_by, created_at) \
         VALUES (?, 'production', '127.0.0.1', 3306, 0, 'gh_connector', ?, ?, 0)",
    )
    .bind(target)
    .bind(old.seal(&format!("db-target:{target}"), connector_pw))
    .bind(id)
    .execute(app.state.db.pool())
    .await
    .unwrap();

    let printed = gatehouse(&app, &[]).run(&["rotate-master-key"]);
    assert!(printed.contains("1 account secrets"), "{printed}");
    assert!(printed.contains("1 database connector passwords"), "{printed}");
    assert!(printed.contains("1 audit signing keys"), "{printed}");
    let new_key = key_file(&app, "master.key").unwrap();
    assert_ne!(new_key, old_key);
    assert_eq!(key_file(&app, "master.key.previous").as_deref(), Some(old_key.as_str()));
    assert_eq!(key_file(&app, "master.key.next"), None);
    let after = sealed_secret(&app, id).await;
    assert_ne!(after, before);
    assert_eq!(
        old.open(&format!("totp:{id}"), &after),
        None,
        "sealed under the new key"
    );
    let new = MasterKey::from_base64(&new_key).unwrap();
    assert_eq!(new.open(&format!("totp:{id}"), &after), Some(plain));
    let row = sqlx::query("SELECT secret_enc FROM db_targets WHERE id = ?")
        .bind(target)
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    let connector = gatehouse::server::platform::db::text(&row, "secret_enc").unwrap();
    let context = format!("db-target:{target}");
    assert_eq!(old.open(&context, &connector), None, "the connector password too");
    assert_eq!(new.open(&context, &connector).as_deref(), Some(&connector_pw[..]));

    // Recorded, without key material.
    let row = sqlx::query("SELECT details FROM audit_events WHERE action = 'system.master_key_rotated'")
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    let details = gatehouse::server::platform::db::text(&row, "details").unwrap();
    assert!(details.contains("\"account_secrets\":1"), "{details}");
    assert!(!details.contains(old_key.trim()) && !details.contains(new_key.trim()));

    // A server with the new key alone signs the administrator in.
    std::fs::remove_file(app._dir.0.join("master.key.previous")).unwrap();
    let restarted = app.another().await;
    assert_eq!(restarted.state.key.previous_keys(), 0);
    restarted.clock.advance(60_000);
    restarted.sign_in(ADMIN, PW, &totp).await;
    restarted.verify_chain().await;
    app.cleanup().await;
}

async fn a_master_key_rotation_that_cannot_open_a_secret_changes_nothing(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (admin, _, _) = app.first_admin(ADMIN, PW).await;
    let id = app.user_id(ADMIN).await;
    let (_, _, other) = app
        .employee(&admin, "Bo Lind", "bo@example.com", "support", &["support"])
        .await;
    let before = sealed_secret(&app, id).await;
    let old_key = key_file(&app, "master.key").unwrap();
    // One secret sealed under a key nobody has any more.
    let stranger = MasterKey::generate().seal(&format!("totp:{other}"), b"0123456789abcdefghij");
    sqlx::query("UPDATE users SET totp_secret_enc = ? WHERE id = ?")
        .bind(&stranger)
        .bind(other)
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let events = app.count("SELECT COUNT(*) FROM audit_events").await;

    let out = gatehouse(&app, &[]).command(&["rotate-master-key"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(
        said(&out).contains(&format!("users.totp_secret_enc of user {other} opens with none")),
        "{}",
        said(&out)
    );
    assert_eq!(sealed_secret(&app, id).await, before, "the transaction rolled back");
    assert_eq!(key_file(&app, "master.key").as_deref(), Some(old_key.as_str()));
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_events").await, events);

    // A server running on the database (it holds a job lease) is not
    // pulled out from under.
    sqlx::query("UPDATE users SET totp_secret_enc = NULL WHERE id = ?")
        .bind(other)
        .execute(app.state.db.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE job_leases SET holder = 'another server', expires_at = ?")
        .bind(gatehouse::server::platform::clock::Clock::system().now() + 60_000)
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let out = gatehouse(&app, &[]).command(&["rotate-master-key"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(said(&out).contains("server is running"), "{}", said(&out));
    assert_eq!(sealed_secret(&app, id).await, before);
    app.cleanup().await;
}

async fn the_signing_key_rotates_and_old_checkpoints_still_verify(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let aud = auditor(&app).await;
    let first = checkpoints::sign(&app.state, true).await.unwrap().unwrap();
    let old_id = app.state.audit_keys.current().key_id.clone();
    let old_signing = app.state.audit_keys.current().signing.clone();
    assert_eq!(first.key_id, old_id);
    // Another replica, started before the rotation, with its own keys.
    let replica = app.another().await;

    let printed = gatehouse(&app, &[]).run(&["audit", "rotate-key"]);
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_signing_keys").await, 2);
    assert!(printed.contains(&format!("Key {old_id} signs no more")), "{printed}");
    assert_eq!(app.audit_count("audit.key_rotated", "success").await, 1);

    // The replica signs its next checkpoint with the new key, not its own.
    append_n(&app, 3).await;
    let second = checkpoints::sign(&replica.state, true).await.unwrap().unwrap();
    assert_ne!(second.key_id, old_id);
    assert_eq!(replica.state.audit_keys.current().key_id, second.key_id);
    // Delivery ids (Message-ID) keep naming the installation by its first key.
    assert_eq!(replica.state.audit_keys.current().installation(), old_id);
    append_n(&app, 2).await;
    let third = checkpoints::sign(&app.state, true).await.unwrap().unwrap();
    assert_eq!(third.key_id, second.key_id);

    // Both keys are published, oldest first; everything verifies.
    let r = client().get(app.url("/api/v1/audit/public-key")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let published: serde_json::Value = r.json().await.unwrap();
    let hexes: Vec<String> = published["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["public_key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(hexes.len(), 2);
    assert_eq!(published["current_key_id"], second.key_id.as_str());
    let report = audit::verify_signed(&app.state.db, &app.state.audit_keys.current().public)
        .await
        .unwrap();
    assert_eq!((report.problem(), report.checkpoints), (None, 3));
    gatehouse(&app, &[]).run(&["audit", "verify"]);

    // An export spanning the rotation verifies offline with both keys, in
    // order, and not with the new one alone.
    let r = aud
        .get(app.url("/audit/export.bundle?from=2025-12-31T00:00&to=2026-01-02T00:00"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let file = app._dir.0.join("rotated.jsonl");
    std::fs::write(&file, r.text().await.unwrap()).unwrap();
    let path = file.to_str().unwrap();
    let (ok, out) = cli(&["audit", "verify", path, "--public-key", &hexes.join(",")]);
    assert!(ok, "{out}");
    let (ok, out) = cli(&["audit", "verify", path, "--public-key", &hexes[1]]);
    assert!(!ok, "{out}");

    // Whoever kept the old key cannot extend the chain with it.
    append_n(&app, 1).await;
    let latest = checkpoints::latest(app.state.db.pool()).await.unwrap().unwrap();
    let head_hash: String = sqlx::query("SELECT last_hash FROM audit_head WHERE id = 1")
        .fetch_one(app.state.db.pool())
        .await
        .unwrap()
        .try_get("last_hash")
        .unwrap();
    let forged = gatehouse::domain::checkpoint::Checkpoint::sign(
        &old_signing,
        Some(&latest),
        latest.tree_size + 1,
        &[7; 32],
        &head_hash,
        latest.at + 1,
    );
    sqlx::query(&format!(
        "INSERT INTO audit_checkpoints ({}) SELECT ?, ?, ?, ?, ?, ?, ?, ?, frontier FROM audit_checkpoints \
         WHERE number = ?",
        checkpoints::CP_COLS
    ))
    .bind(forged.number)
    .bind(forged.tree_size)
    .bind(&forged.root)
    .bind(&forged.head_hash)
    .bind(&forged.prev_hash)
    .bind(forged.at)
    .bind(&forged.key_id)
    .bind(&forged.signature)
    .bind(latest.number)
    .execute(app.state.db.pool())
    .await
    .unwrap();
    let report = audit::verify_signed(&app.state.db, &app.state.audit_keys.current().public)
        .await
        .unwrap();
    assert_eq!(
        report.problem().as_deref(),
        Some(
            format!(
                "checkpoint {}: signed by an audit key that a newer key had already replaced",
                forged.number
            )
            .as_str()
        )
    );
    app.cleanup().await;
}
