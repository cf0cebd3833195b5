//! Witnesses, on SQLite and MySQL: the real `gatehouse witness` command
//! against a running Gatehouse, co-signatures posted and checked, the
//! console's quorum, exports carrying co-signatures checked offline, and
//! the alarm when history is rewritten by someone with database access.
//! Co-signatures are checked here with ed25519-dalek over the documented
//! text, not with Gatehouse's code.

use crate::checkpoints::{append_n, auditor, cli};
use crate::helpers::*;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use gatehouse::domain::{audit::Actor, checkpoint::Checkpoint};
use gatehouse::server::{
    access::service_accounts,
    audit::{checkpoints, witnesses},
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

on_both!(
    a_witness_cosigns_each_extension_and_the_console_counts_a_quorum,
    cosignatures_are_checked_before_they_are_stored,
    a_rewrite_of_history_raises_the_witness_alarm,
    exports_carry_cosignatures_that_verify_offline,
);

/// A service account with `scopes` and a token for it.
async fn token(app: &TestApp, name: &str, scopes: &[&str]) -> (i64, String) {
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    let id = service_accounts::create_account(&app.state, Actor::default(), None, name, &scopes)
        .await
        .unwrap();
    let (token, _) = service_accounts::create_token(&app.state, Actor::default(), None, id, "witness", "")
        .await
        .unwrap();
    (id, token)
}

/// `gatehouse witness --once`: its exit code and what it printed.
async fn witness(app: &TestApp, dir: &std::path::Path, token: &str) -> (i32, String) {
    let args = vec![
        "witness".to_owned(),
        "--url".into(),
        app.url(""),
        "--state".into(),
        dir.to_str().unwrap().to_owned(),
        "--token".into(),
        token.to_owned(),
        "--once".into(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(&args)
            .env("RUST_LOG", "info")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    (out.status.code().unwrap_or(-1), process::said(&out))
}

/// The witness's key, as its state directory holds it.
fn witness_key(dir: &std::path::Path) -> SigningKey {
    let seed = hex::decode(std::fs::read_to_string(dir.join("witness.key")).unwrap().trim()).unwrap();
    SigningKey::from_bytes(&seed.try_into().unwrap())
}

/// The co-signed text, as docs/audit-chain.md gives it.
fn cosigned(cp: &Value) -> String {
    let digest = hex::encode(Sha256::digest(cp["signed_message"].as_str().unwrap().as_bytes()));
    format!(
        "gatehouse-cosignature-v1\nnumber {}\ntree_size {}\nroot {}\ncheckpoint {digest}\n",
        cp["number"],
        cp["tree_size"],
        cp["root"].as_str().unwrap()
    )
}

async fn get(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    client().get(app.url(path)).bearer_auth(token).send().await.unwrap()
}

async fn latest_view(app: &TestApp, aud: &reqwest::Client) -> Value {
    let r = app.call(aud, "audit_latest_checkpoint", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

async fn a_witness_cosigns_each_extension_and_the_console_counts_a_quorum(b: Backend) {
    let app = TestApp::spawn_with(&b, &[("GATEHOUSE_WITNESS_QUORUM", "1")]).await;
    let aud = auditor(&app).await;
    let (account, tok) = token(&app, "witness-a", &["audit:witness"]).await;
    append_n(&app, 12).await;
    checkpoints::sign(&app.state, true).await.unwrap().unwrap();
    append_n(&app, 8).await;
    checkpoints::sign(&app.state, true).await.unwrap().unwrap();
    let dir = app._dir.0.join("witness-a");

    // Not registered yet: it checks, but its co-signature is refused, and
    // it does not move on.
    let (code, out) = witness(&app, &dir, &tok).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no witness with that public key"), "{out}");
    assert!(!dir.join("state.json").exists());
    let key = witness_key(&dir);
    let public = hex::encode(key.verifying_key().as_bytes());
    assert!(out.contains(&format!("witness public key: {public}")), "{out}");
    witnesses::add(
        &app.state.db,
        app.clock.now(),
        Actor::default(),
        "witness-a",
        &public,
        account,
    )
    .await
    .unwrap();
    assert_eq!(app.audit_count("audit.witness_added", "success").await, 1);

    let (code, out) = witness(&app, &dir, &tok).await;
    assert_eq!(code, 0, "{out}");
    let cps = app.count("SELECT COUNT(*) FROM audit_checkpoints").await;
    assert!(
        out.contains(&format!("{cps} new checkpoints accepted and co-signed")),
        "{out}"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_cosignatures").await, cps);

    // The witness's token reads checkpoints; each co-signature verifies
    // over the documented text with the witness's key.
    let list: Value = get(&app, &tok, "/api/v1/audit/checkpoints").await.json().await.unwrap();
    let sigs = list["cosignatures"].as_array().unwrap();
    assert_eq!(sigs.len() as i64, cps);
    for (cp, sig) in list["checkpoints"].as_array().unwrap().iter().zip(sigs) {
        assert_eq!(
            (&sig["checkpoint"], &sig["witness"]),
            (&cp["number"], &json!("witness-a"))
        );
        let raw: [u8; 64] = hex::decode(sig["signature"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        key.verifying_key()
            .verify(cosigned(cp).as_bytes(), &Signature::from_bytes(&raw))
            .expect("a co-signature over the documented text");
    }
    let v = latest_view(&app, &aud).await;
    assert_eq!(v["cosigned_by"], json!(["witness-a"]));
    assert_eq!(v["last_final"], v["number"], "{v}");
    // Per checkpoint, newest first, in the console.
    let r = app.call(&aud, "audit_recent_checkpoints", &[]).await;
    let recent: Vec<Value> = r.json().await.unwrap();
    assert_eq!(recent.len() as i64, cps.min(10));
    assert_eq!(recent[0]["number"], json!(cps));
    assert!(
        recent.iter().all(|c| c["cosigned_by"] == json!(["witness-a"])),
        "{recent:?}"
    );

    // A new checkpoint is not final until the witness has co-signed it.
    append_n(&app, 5).await;
    let newest = checkpoints::sign(&app.state, true).await.unwrap().unwrap();
    let v = latest_view(&app, &aud).await;
    assert_eq!(v["number"], json!(newest.number));
    assert_eq!(v["cosigned_by"], json!([]));
    assert_eq!(v["last_final"], json!(newest.number - 1));
    let (code, out) = witness(&app, &dir, &tok).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "1 new checkpoints accepted and co-signed; last accepted {}",
            newest.number
        )),
        "{out}"
    );
    assert_eq!(latest_view(&app, &aud).await["last_final"], json!(newest.number));
    // Nothing new: nothing posted.
    let (code, out) = witness(&app, &dir, &tok).await;
    assert_eq!((code, out.contains("0 new checkpoints")), (0, true), "{out}");

    // A retired witness no longer counts, and may not co-sign.
    witnesses::retire(&app.state.db, app.clock.now(), Actor::default(), "witness-a")
        .await
        .unwrap();
    let v = latest_view(&app, &aud).await;
    assert_eq!(
        (v["cosigned_by"].clone(), v["last_final"].clone()),
        (json!([]), Value::Null)
    );
    append_n(&app, 1).await;
    checkpoints::sign(&app.state, true).await.unwrap().unwrap();
    let (code, out) = witness(&app, &dir, &tok).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no witness with that public key"), "{out}");
    app.cleanup().await;
}

async fn cosignatures_are_checked_before_they_are_stored(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let aud = auditor(&app).await;
    let (account, tok) = token(&app, "witness-b", &["audit:witness"]).await;
    let (_, other) = token(&app, "checker", &["access:check"]).await;
    append_n(&app, 3).await;
    let cp = checkpoints::sign(&app.state, true).await.unwrap().unwrap();
    let key = SigningKey::from_bytes(&[7; 32]);
    let public = hex::encode(key.verifying_key().as_bytes());
    witnesses::add(
        &app.state.db,
        app.clock.now(),
        Actor::default(),
        "witness-b",
        &public,
        account,
    )
    .await
    .unwrap();
    let listed: Value = get(&app, &tok, "/api/v1/audit/checkpoints").await.json().await.unwrap();
    let good = hex::encode(key.sign(cosigned(&listed["checkpoints"][0]).as_bytes()).to_bytes());
    let post = |token: &str, body: Value| {
        client()
            .post(app.url("/api/v1/audit/cosignatures"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let body = |n: i64, k: &str, s: &str| json!({ "checkpoint": n, "public_key": k, "signature": s });

    // Who may post: a witness token only.
    let r = client()
        .post(app.url("/api/v1/audit/cosignatures"))
        .json(&body(cp.number, &public, &good))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = post(&other, body(cp.number, &public, &good)).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("audit:witness"));
    let r = client()
        .post(app.url("/api/v1/audit/cosignatures"))
        .bearer_auth(&tok)
        .header("content-type", "text/plain")
        .body(body(cp.number, &public, &good).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "not said to be JSON");
    // Witness tokens read proofs; other tokens do not; sessions still do.
    assert_eq!(get(&app, &tok, "/api/v1/audit/proofs/2").await.status(), StatusCode::OK);
    assert_eq!(
        get(&app, &other, "/api/v1/audit/checkpoints").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        aud.get(app.url("/api/v1/audit/checkpoints"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // Refused, storing nothing: a signature over another text, another
    // checkpoint's, an unregistered key, a checkpoint that does not exist,
    // malformed fields.
    let refusals_before = app.audit_count("audit.cosign", "denied").await;
    let forged = hex::encode(key.sign(b"something else").to_bytes());
    let r = post(&tok, body(cp.number, &public, &forged)).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let stranger = SigningKey::from_bytes(&[8; 32]);
    let stranger_hex = hex::encode(stranger.verifying_key().as_bytes());
    let r = post(&tok, body(cp.number, &stranger_hex, &good)).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post(&tok, body(999, &public, &good)).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.audit_count("audit.cosign", "denied").await, refusals_before + 3);
    for bad in [
        body(0, &public, &good),
        body(cp.number, "xyz", &good),
        body(cp.number, &public, &good[..100]),
    ] {
        let r = post(&tok, bad).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let r = post(
        &tok,
        json!({ "checkpoint": cp.number, "public_key": public, "signature": good, "x": 1 }),
    )
    .await
    .unwrap();
    assert!(r.status().is_client_error());
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_cosignatures").await, 0);

    // Accepted once; a repeat is answered, not stored again.
    let r = post(&tok, body(cp.number, &public, &good)).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = post(&tok, body(cp.number, &public.to_uppercase(), &good))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["stored"], json!(false));
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_cosignatures").await, 1);
    // Another service account's token may not post for this witness.
    let (_, intruder) = token(&app, "witness-c", &["audit:witness"]).await;
    let r = post(&intruder, body(cp.number, &public, &good)).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Co-signatures are append-only.
    assert!(sqlx::query("DELETE FROM audit_cosignatures")
        .execute(app.state.db.pool())
        .await
        .is_err());
    app.verify_chain().await;
    app.cleanup().await;
}

async fn drop_checkpoint_triggers(app: &TestApp) {
    for t in [
        "audit_checkpoints_no_update",
        "audit_checkpoints_no_delete",
        "audit_cosignatures_no_delete",
    ] {
        sqlx::query(&format!("DROP TRIGGER {t}"))
            .execute(app.state.db.pool())
            .await
            .unwrap();
    }
}

async fn a_rewrite_of_history_raises_the_witness_alarm(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let (account, tok) = token(&app, "witness-d", &["audit:witness"]).await;
    let dir = app._dir.0.join("witness-d");
    let key = {
        std::fs::create_dir_all(&dir).unwrap();
        let k = SigningKey::from_bytes(&[9; 32]);
        std::fs::write(dir.join("witness.key"), hex::encode(k.to_bytes())).unwrap();
        k
    };
    let public = hex::encode(key.verifying_key().as_bytes());
    witnesses::add(
        &app.state.db,
        app.clock.now(),
        Actor::default(),
        "witness-d",
        &public,
        account,
    )
    .await
    .unwrap();
    for n in [10, 7, 9] {
        append_n(&app, n).await;
        checkpoints::sign(&app.state, true).await.unwrap().unwrap();
    }
    let (code, out) = witness(&app, &dir, &tok).await;
    assert_eq!(code, 0, "{out}");
    let seen = std::fs::read_to_string(dir.join("state.json")).unwrap();

    // Someone with the database and the signing key re-signs the newest
    // checkpoint over a different root: a fork.
    drop_checkpoint_triggers(&app).await;
    let last = checkpoints::latest(app.state.db.pool()).await.unwrap().unwrap();
    let prev = checkpoints::by_number(&app.state.db, last.number - 1)
        .await
        .unwrap()
        .unwrap();
    let forged = Checkpoint::sign(
        &app.state.audit_keys.current().signing,
        Some(&prev),
        last.tree_size,
        &[0xab; 32],
        &last.head_hash,
        last.at,
    );
    sqlx::query("UPDATE audit_checkpoints SET root = ?, signature = ? WHERE number = ?")
        .bind(&forged.root)
        .bind(&forged.signature)
        .bind(last.number)
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let (code, out) = witness(&app, &dir, &tok).await;
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("WITNESS ALARM") && out.contains(&format!("fork: checkpoint {}", last.number)),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("state.json")).unwrap(),
        seen,
        "an alarm moves nothing on"
    );

    // Or removes it, to sign a different history after the one before: a
    // rollback, with its co-signatures. The alarm stays raised however
    // often the witness runs.
    for table in ["audit_cosignatures WHERE checkpoint", "audit_checkpoints WHERE number"] {
        sqlx::query(&format!("DELETE FROM {table} = ?"))
            .bind(last.number)
            .execute(app.state.db.pool())
            .await
            .unwrap();
    }
    for _ in 0..2 {
        let (code, out) = witness(&app, &dir, &tok).await;
        assert_eq!(code, 3, "{out}");
        assert!(out.contains(&format!("rollback: checkpoint {}", last.number)), "{out}");
    }
    app.cleanup().await;
}

async fn exports_carry_cosignatures_that_verify_offline(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let aud = auditor(&app).await;
    let (account, tok) = token(&app, "witness-e", &["audit:witness"]).await;
    let dir = app._dir.0.join("witness-e");
    witness(&app, &dir, &tok).await;
    let key = witness_key(&dir);
    let public = hex::encode(key.verifying_key().as_bytes());
    witnesses::add(
        &app.state.db,
        app.clock.now(),
        Actor::default(),
        "witness-e",
        &public,
        account,
    )
    .await
    .unwrap();
    // Events 20 minutes in, signed and witnessed; the export covers them.
    app.clock.advance(20 * 60_000);
    app.me(&aud).await;
    append_n(&app, 10).await;
    checkpoints::sign(&app.state, true).await.unwrap().unwrap();
    let (code, out) = witness(&app, &dir, &tok).await;
    assert_eq!(code, 0, "{out}");
    app.clock.advance(20 * 60_000);
    let r = aud
        .get(app.url("/audit/export.bundle?from=2026-01-01T00:20&to=2026-01-01T00:30"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.text().await.unwrap();
    assert!(body.lines().any(|l| l.contains("\"type\":\"cosignature\"")), "{body}");
    let file = app._dir.0.join("witnessed.jsonl");
    std::fs::write(&file, &body).unwrap();
    let path = file.to_str().unwrap();
    let (ok, out) = cli(&["audit", "verify", path, "--witness-key", &public]);
    assert!(ok && out.contains("co-signed by witness witness-e"), "{out}");
    let stranger: VerifyingKey = SigningKey::from_bytes(&[5; 32]).verifying_key();
    let stranger = hex::encode(stranger.as_bytes());
    let (ok, out) = cli(&[
        "audit",
        "verify",
        path,
        "--witness-key",
        &format!("{public},{stranger}"),
    ]);
    assert!(
        !ok && out.contains(&format!("no co-signature by witness key {stranger}")),
        "{out}"
    );
    // A changed co-signature is refused.
    let tampered: String = body
        .lines()
        .map(|l| {
            if l.contains("\"type\":\"cosignature\"") {
                let mut v: Value = serde_json::from_str(l).unwrap();
                let sig = v["signature"].as_str().unwrap().to_owned();
                let flipped = if sig.starts_with('0') { "1" } else { "0" };
                v["signature"] = json!(format!("{flipped}{}", &sig[1..]));
                v.to_string()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&file, tampered).unwrap();
    let (ok, out) = cli(&["audit", "verify", path]);
    assert!(!ok && out.contains("does not verify"), "{out}");
    app.cleanup().await;
}
