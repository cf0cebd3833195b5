//! Signed checkpoints, inclusion proofs and the tampering they expose, on
//! SQLite and MySQL. Roots, proofs and signatures are checked here with a
//! small RFC 6962 implementation of the test's own and ed25519-dalek
//! directly, not with Gatehouse's verifier.

use crate::helpers::*;
use gatehouse::domain::audit::{Action, Actor, NewEvent, Outcome};
use gatehouse::server::{
    audit::{self as audit_log, checkpoints},
    jobs, startup,
};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

on_both!(
    checkpoints_are_signed_chained_and_prove_inclusion,
    tampering_that_keeps_the_hash_chain_is_caught_by_checkpoints,
    bundles_export_a_time_range_that_verifies_offline,
);

pub(crate) async fn append_n(app: &TestApp, n: usize) {
    let mut tx = app.state.db.begin_write().await.unwrap();
    let events = (0..n)
        .map(|i| NewEvent {
            action: "test.event".into(),
            ..NewEvent::new(Action::AccessCheck, Outcome::Success, Actor::default())
                .details(serde_json::json!({ "i": i }))
        })
        .collect();
    audit_log::append(&mut tx, app.clock.now(), events).await.unwrap();
    tx.commit().await.unwrap();
}

fn leaf(event_hash_hex: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(hex::decode(event_hash_hex).unwrap());
    h.finalize().into()
}

fn node(l: &[u8], r: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(l);
    h.update(r);
    h.finalize().into()
}

/// RFC 6962 Merkle tree hash, straight from the definition.
fn mth(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = n.next_power_of_two() / 2;
            node(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

async fn event_hashes(app: &TestApp, upto: i64) -> Vec<String> {
    let rows = sqlx::query("SELECT hash FROM audit_events WHERE seq <= ? ORDER BY seq")
        .bind(upto)
        .fetch_all(app.state.db.pool())
        .await
        .unwrap();
    rows.iter()
        .map(|r| gatehouse::server::platform::db::text(r, "hash").unwrap())
        .collect()
}

fn signature_ok(public_hex: &str, cp: &Value) -> bool {
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};
    let key = VerifyingKey::from_bytes(&hex::decode(public_hex).unwrap().try_into().unwrap()).unwrap();
    let sig = Signature::from_bytes(
        &hex::decode(cp["signature"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
    );
    key.verify(cp["signed_message"].as_str().unwrap().as_bytes(), &sig)
        .is_ok()
}

pub(crate) async fn auditor(app: &TestApp) -> reqwest::Client {
    let people = gatehouse::server::seed::seed_demo(&app.state).await.unwrap();
    let (email, _, pw) = people.iter().find(|p| p.1 == "auditor").unwrap();
    app.sign_in_enrolling(email, pw).await.0
}

async fn checkpoints_are_signed_chained_and_prove_inclusion(b: Backend) {
    let app = TestApp::spawn(&b).await;
    // The public key is published to anyone, and is the one the server holds.
    let r = client().get(app.url("/api/v1/audit/public-key")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let published: Value = r.json().await.unwrap();
    let public_hex = published["keys"][0]["public_key"].as_str().unwrap().to_owned();
    assert_eq!(
        public_hex,
        hex::encode(app.state.audit_keys.current().public[0].as_bytes())
    );
    assert_eq!(published["algorithm"], "Ed25519");
    // Checkpoints and proofs are for auditors.
    let anon = client();
    assert_eq!(
        anon.get(app.url("/api/v1/audit/checkpoints"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        anon.get(app.url("/api/v1/audit/proofs/1"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );

    let aud = auditor(&app).await;
    let r = app.call(&aud, "audit_sign_checkpoint", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let first: Value = r.json().await.unwrap();
    let head = app.count("SELECT last_seq FROM audit_head WHERE id = 1").await;
    assert_eq!(
        (first["number"].as_i64(), first["tree_size"].as_i64()),
        (Some(1), Some(head))
    );

    // The job signs only when one is due: new events and a minute passed.
    append_n(&app, 7).await;
    jobs::run_access_jobs(&app.state).await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_checkpoints").await,
        1,
        "not yet a minute"
    );
    app.clock.advance(61_000);
    jobs::run_access_jobs(&app.state).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_checkpoints").await, 2);
    app.clock.advance(61_000);
    let size_2 = app
        .count("SELECT tree_size FROM audit_checkpoints WHERE number = 2")
        .await;
    let head = app.count("SELECT last_seq FROM audit_head WHERE id = 1").await;
    if head == size_2 {
        jobs::run_access_jobs(&app.state).await;
        assert_eq!(
            app.count("SELECT COUNT(*) FROM audit_checkpoints").await,
            2,
            "nothing new, nothing signed"
        );
    }

    // Listed in order, each signed, each naming the one before, each root
    // the Merkle root of the events it covers.
    let r = aud.get(app.url("/api/v1/audit/checkpoints")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let list: Value = r.json().await.unwrap();
    let list = list["checkpoints"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2);
    for (i, cp) in list.iter().enumerate() {
        assert!(signature_ok(&public_hex, cp), "checkpoint {i} signature");
        let size = cp["tree_size"].as_i64().unwrap();
        let hashes = event_hashes(&app, size).await;
        let leaves: Vec<[u8; 32]> = hashes.iter().map(|h| leaf(h)).collect();
        assert_eq!(cp["root"].as_str().unwrap(), hex::encode(mth(&leaves)));
        assert_eq!(cp["head_hash"].as_str().unwrap(), hashes.last().unwrap());
    }
    let digest = hex::encode(Sha256::digest(list[0]["signed_message"].as_str().unwrap().as_bytes()));
    assert_eq!(list[1]["prev_hash"].as_str().unwrap(), digest);
    let r = aud
        .get(app.url("/api/v1/audit/checkpoints?after=1&limit=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["checkpoints"][0]["number"], 2);
    assert_eq!(
        aud.get(app.url("/api/v1/audit/checkpoints?limit=0"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        aud.get(app.url("/api/v1/audit/checkpoints?limit=x"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_REQUEST
    );

    // Every event's proof leads to the signed root (RFC 9162 2.1.3.2).
    let size = list[1]["tree_size"].as_i64().unwrap();
    for seq in [1, 2, size / 2, size - 1, size] {
        let r = aud
            .get(app.url(&format!("/api/v1/audit/proofs/{seq}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "proof of {seq}");
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["checkpoint"]["number"], 2);
        let mut r = leaf(p["event_hash"].as_str().unwrap());
        let (mut fn_, mut sn) = (seq as u64 - 1, size as u64 - 1);
        for step in p["audit_path"].as_array().unwrap() {
            let s = hex::decode(step.as_str().unwrap()).unwrap();
            if fn_ & 1 == 1 || fn_ == sn {
                r = node(&s, &r);
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            } else {
                r = node(&r, &s);
            }
            fn_ >>= 1;
            sn >>= 1;
        }
        assert_eq!(sn, 0);
        assert_eq!(hex::encode(r), list[1]["root"].as_str().unwrap(), "proof of {seq}");
    }
    // Against an older checkpoint, and the refusals.
    let p: Value = aud
        .get(app.url("/api/v1/audit/proofs/1?checkpoint=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(p["tree_size"], list[0]["tree_size"]);
    assert_eq!(
        aud.get(app.url(&format!("/api/v1/audit/proofs/{}", size + 1)))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        aud.get(app.url("/api/v1/audit/proofs/1?checkpoint=99"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        aud.get(app.url("/api/v1/audit/proofs/first"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_REQUEST
    );

    // The console's check covers the checkpoints.
    let v: Value = app.call(&aud, "audit_verify", &[]).await.json().await.unwrap();
    assert_eq!(v["ok"], true);
    assert!(
        v["message"].as_str().unwrap().contains("2 signed checkpoints match"),
        "{v}"
    );
    // Checkpoints are append-only in the database too.
    let upd = sqlx::query("UPDATE audit_checkpoints SET tree_size = 1 WHERE number = 1")
        .execute(app.state.db.pool())
        .await;
    assert!(upd.unwrap_err().to_string().contains("append-only"));
    app.cleanup().await;
}

/// Runs `gatehouse audit verify --database URL` with the app's master key.
pub(crate) fn cli_verify(app: &TestApp) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["audit", "verify", "--database", &app.state.config.database_url])
        .env("GATEHOUSE_DATA_DIR", &app._dir.0)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

async fn drop_triggers(app: &TestApp) {
    for t in [
        "audit_events_no_update",
        "audit_events_no_delete",
        "audit_checkpoints_no_update",
        "audit_checkpoints_no_delete",
    ] {
        sqlx::query(&format!("DROP TRIGGER {t}"))
            .execute(app.state.db.pool())
            .await
            .unwrap();
    }
}

/// A fresh app with 20 events, a checkpoint after 12 and another after 20.
async fn signed_app(b: &Backend) -> TestApp {
    let app = TestApp::spawn(b).await;
    append_n(&app, 12).await;
    checkpoints::sign(&app.state, true).await.unwrap().unwrap();
    append_n(&app, 8).await;
    checkpoints::sign(&app.state, true).await.unwrap().unwrap();
    let (ok, out) = cli_verify(&app);
    assert!(
        ok && out.contains("OK: 20 events verified") && out.contains("2 signed checkpoints match"),
        "{out}"
    );
    drop_triggers(&app).await;
    app
}

async fn tampering_that_keeps_the_hash_chain_is_caught_by_checkpoints(b: Backend) {
    // The tail cut off, and the head row rewritten to match: the hash chain
    // alone is consistent, the signed checkpoint is not.
    let app = signed_app(&b).await;
    let pool = app.state.db.pool();
    let h17 = event_hashes(&app, 17).await.pop().unwrap();
    sqlx::query("DELETE FROM audit_events WHERE seq > 17")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_head SET last_seq = 17, last_hash = ? WHERE id = 1")
        .bind(&h17)
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(
        audit_log::verify(&app.state.db).await.unwrap().error,
        None,
        "the hash chain cannot see it"
    );
    let (ok, out) = cli_verify(&app);
    assert!(!ok);
    assert!(
        out.contains("checkpoint 2 covers 20 events but only 17 are there"),
        "{out}"
    );
    app.cleanup().await;

    // An event rewritten and every later hash recomputed (as an attacker
    // who knows the format would): event 20 is no longer the signed head.
    let app = signed_app(&b).await;
    let pool = app.state.db.pool();
    let rows = sqlx::query(&format!(
        "SELECT {} FROM audit_events WHERE seq >= 15 ORDER BY seq",
        audit_log::COLUMNS
    ))
    .fetch_all(pool)
    .await
    .unwrap();
    let mut prev = event_hashes(&app, 14).await.pop().unwrap();
    for row in &rows {
        let mut e = audit_log::event_from_row(row).unwrap();
        if e.seq == 15 {
            e.reason = Some("nothing to see".into());
        }
        let fresh = NewEvent {
            actor: e.actor.clone(),
            action: e.action.clone(),
            target_type: e.target_type.clone(),
            target_id: e.target_id.clone(),
            customer_id: e.customer_id.clone(),
            outcome: e.outcome,
            reason: e.reason.clone(),
            details: serde_json::from_str(&e.details).unwrap(),
        }
        .seal(e.seq, e.at, &prev);
        sqlx::query("UPDATE audit_events SET reason = ?, details = ?, prev_hash = ?, hash = ? WHERE seq = ?")
            .bind(&fresh.reason)
            .bind(&fresh.details)
            .bind(&fresh.prev_hash)
            .bind(&fresh.hash)
            .bind(e.seq)
            .execute(pool)
            .await
            .unwrap();
        prev = fresh.hash;
    }
    sqlx::query("UPDATE audit_head SET last_hash = ? WHERE id = 1")
        .bind(&prev)
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(
        audit_log::verify(&app.state.db).await.unwrap().error,
        None,
        "the hash chain cannot see it"
    );
    let (ok, out) = cli_verify(&app);
    assert!(!ok);
    assert!(out.contains("event 20: is not the event checkpoint 2 signed"), "{out}");
    app.cleanup().await;

    // A checkpoint changed after signing, or forged with another key.
    let app = signed_app(&b).await;
    sqlx::query("UPDATE audit_checkpoints SET tree_size = 19 WHERE number = 2")
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let (ok, out) = cli_verify(&app);
    assert!(!ok);
    assert!(out.contains("checkpoint 2: signature does not verify"), "{out}");
    app.cleanup().await;
    let app = signed_app(&b).await;
    let forger = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let cp1 = checkpoints::list(app.state.db.pool(), 0, 1).await.unwrap().remove(0);
    let mut forged =
        gatehouse::domain::checkpoint::Checkpoint::sign(&forger, None, cp1.tree_size, &[0; 32], &cp1.head_hash, cp1.at);
    forged.key_id = cp1.key_id.clone();
    sqlx::query("UPDATE audit_checkpoints SET root = ?, signature = ? WHERE number = 1")
        .bind(&forged.root)
        .bind(&forged.signature)
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let (ok, out) = cli_verify(&app);
    assert!(!ok && out.contains("checkpoint 1: signature does not verify"), "{out}");

    // Replacing the published key with one's own stops the server from
    // starting: the stored key must open with the master key and match.
    let forger_public = hex::encode(forger.verifying_key().as_bytes());
    sqlx::query("UPDATE audit_signing_keys SET public_key = ?")
        .bind(&forger_public)
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let again = startup::state(app.state.config.as_ref().clone(), app.clock.clone()).await;
    let message = again.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("does not match its published public key"), "{message}");
    let (ok, out) = cli_verify(&app);
    assert!(!ok && out.contains("does not match its published public key"), "{out}");
    let row = sqlx::query("SELECT secret_enc FROM audit_signing_keys")
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    let sealed = gatehouse::server::platform::db::text(&row, "secret_enc").unwrap();
    assert!(
        !sealed.contains(&hex::encode(app.state.audit_keys.current().signing.as_bytes())),
        "the private key is stored sealed"
    );
    app.cleanup().await;
}

pub(crate) fn cli(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

async fn bundles_export_a_time_range_that_verifies_offline(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let aud = auditor(&app).await;
    checkpoints::sign(&app.state, true).await.unwrap();
    // Ten events 20 minutes later (the range), five more 20 minutes after
    // that (the session is used in between, so it stays alive).
    app.clock.advance(20 * 60_000);
    app.me(&aud).await;
    let first_in_range = app.count("SELECT last_seq FROM audit_head WHERE id = 1").await + 1;
    append_n(&app, 10).await;
    app.clock.advance(20 * 60_000);
    append_n(&app, 5).await;

    let url = |q: &str| app.url(&format!("/audit/export.bundle?{q}"));
    // 2026-01-01 00:20 to 00:30 UTC.
    let r = aud
        .get(url("from=2026-01-01T00:20&to=2026-01-01T00:30"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/jsonl");
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .ends_with(".jsonl\""));
    let body = r.text().await.unwrap();
    let lines: Vec<&str> = body.lines().collect();
    let header: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(header["format"], "gatehouse-audit-bundle-v1");
    assert_eq!(
        (header["first_seq"].as_i64(), header["last_seq"].as_i64()),
        (Some(first_in_range), Some(first_in_range + 9))
    );
    assert_eq!(lines.iter().filter(|l| l.contains("\"type\":\"event\"")).count(), 10);
    assert_eq!(
        app.audit_count("audit.exported", "success").await,
        1,
        "the export is recorded"
    );

    // Verified offline, with and without the published key.
    let file = app._dir.0.join("export.jsonl");
    std::fs::write(&file, &body).unwrap();
    let path = file.to_str().unwrap();
    let (ok, out) = cli(&["audit", "verify", path]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!(
            "OK: events {} to {} (10 events) verified",
            first_in_range,
            first_in_range + 9
        )),
        "{out}"
    );
    let key = hex::encode(app.state.audit_keys.current().public[0].as_bytes());
    let (ok, out) = cli(&["audit", "verify", path, "--public-key", &key]);
    assert!(ok, "{out}");
    let other = hex::encode(
        ed25519_dalek::SigningKey::from_bytes(&[4; 32])
            .verifying_key()
            .as_bytes(),
    );
    let (ok, out) = cli(&["audit", "verify", path, "--public-key", &other]);
    assert!(!ok && out.contains("not the public key given"), "{out}");

    // An edited copy is rejected, naming the event.
    let target = first_in_range + 4;
    let edited: String = body
        .lines()
        .map(|l| {
            if l.contains(&format!("\"seq\":{target},")) {
                l.replace("\"outcome\":\"success\"", "\"outcome\":\"denied\"")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(edited, body.trim_end());
    std::fs::write(&file, &edited).unwrap();
    let (ok, out) = cli(&["audit", "verify", path]);
    assert!(!ok);
    assert!(
        out.contains(&format!(
            "bundle REJECTED: event {target}: content does not match its hash"
        )),
        "{out}"
    );
    // One event dropped.
    let dropped: String = body
        .lines()
        .filter(|l| !l.contains(&format!("\"seq\":{target},")))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&file, &dropped).unwrap();
    let (ok, out) = cli(&["audit", "verify", path]);
    assert!(!ok && out.contains(&format!("event {target} is missing")), "{out}");

    // The whole trail when no range is given; refusals for bad ranges.
    let r = aud.get(url("")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    std::fs::write(&file, r.text().await.unwrap()).unwrap();
    let (ok, out) = cli(&["audit", "verify", path]);
    assert!(ok && out.contains("OK: events 1 to"), "{out}");
    for q in [
        "from=yesterday",
        "from=2026-01-01T00:30&to=2026-01-01T00:20",
        "from=2027-01-01T00:00",
    ] {
        let r = aud.get(url(q)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{q}");
        assert!(r.text().await.unwrap().contains("request_id"));
    }
    app.cleanup().await;
}
