//! Consistency proofs between signed checkpoints and the stored Merkle
//! tree they are built from, on SQLite and MySQL. Proofs are checked here
//! by an implementation of RFC 9162 section 2.1.4.2 (and 2.1.3.2 for
//! inclusion) written from the RFC for this test, not Gatehouse's.

use crate::checkpoints::{append_n, auditor, cli_verify};
use crate::helpers::*;
use gatehouse::domain::checkpoint::Checkpoint;
use gatehouse::server::audit::{checkpoints, tree};
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

on_both!(
    every_pair_of_small_trees_is_proved_consistent,
    large_trees_are_proved_over_http_from_the_stored_tree,
    the_store_fills_an_older_trail_and_refuses_a_changed_one,
    verification_finds_a_damaged_store,
);

type H = [u8; 32];

fn node(l: &H, r: &H) -> H {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(l);
    h.update(r);
    h.finalize().into()
}

/// RFC 9162 section 2.1.4.2, step by step.
fn rfc_consistent(first: u64, second: u64, first_hash: &H, second_hash: &H, path: &[H]) -> bool {
    // 1. If consistency_path is an empty array, stop and fail the proof
    //    verification. (first == second is only ever proved by an empty path.)
    if first == second {
        return path.is_empty() && first_hash == second_hash;
    }
    if path.is_empty() || first == 0 || first > second {
        return false;
    }
    // 2. If first is an exact power of 2, prepend first_hash.
    let mut path = path.to_vec();
    if first & (first - 1) == 0 {
        path.insert(0, *first_hash);
    }
    // 3. fn = first - 1, sn = second - 1.
    let (mut fnn, mut sn) = (first - 1, second - 1);
    // 4. If LSB(fn) is set, right-shift both until LSB(fn) is not set.
    while fnn & 1 == 1 {
        fnn >>= 1;
        sn >>= 1;
    }
    // 5. fr and sr start as the first value of the path.
    let (mut fr, mut sr) = (path[0], path[0]);
    // 6. For each subsequent value c:
    for c in &path[1..] {
        // a. If sn is 0, stop and fail.
        if sn == 0 {
            return false;
        }
        // b. If LSB(fn) is set, or fn equals sn:
        if fnn & 1 == 1 || fnn == sn {
            fr = node(c, &fr);
            sr = node(c, &sr);
            // If LSB(fn) is not set, right-shift both until either LSB(fn)
            // is set or fn is 0.
            if fnn & 1 == 0 {
                while fnn & 1 == 0 && fnn != 0 {
                    fnn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            // Otherwise set sr to HASH(0x01 || sr || c).
            sr = node(&sr, c);
        }
        // c. Right-shift both one time.
        fnn >>= 1;
        sn >>= 1;
    }
    // 7. Compare fr with first_hash, sr with second_hash, and sn with 0.
    &fr == first_hash && &sr == second_hash && sn == 0
}

/// RFC 9162 section 2.1.3.2.
fn rfc_included(leaf: &H, index: u64, size: u64, path: &[H], root: &H) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnn, mut sn, mut r) = (index, size - 1, *leaf);
    for p in path {
        if sn == 0 {
            return false;
        }
        if fnn & 1 == 1 || fnn == sn {
            r = node(p, &r);
            while fnn & 1 == 0 && fnn != 0 {
                fnn >>= 1;
                sn >>= 1;
            }
        } else {
            r = node(&r, p);
        }
        fnn >>= 1;
        sn >>= 1;
    }
    sn == 0 && &r == root
}

fn h(hex_text: &str) -> H {
    hex::decode(hex_text).unwrap().try_into().unwrap()
}

/// Every way of damaging a proof the issue names is refused: a changed
/// node, a node missing, one extra, the sizes swapped.
fn assert_tampering_refused(first: u64, second: u64, a: &H, b: &H, proof: &[H]) {
    assert!(rfc_consistent(first, second, a, b, proof), "{first} -> {second}");
    if first == second {
        assert!(!rfc_consistent(first, second, a, b, &[[0; 32]]));
        return;
    }
    for i in 0..proof.len() {
        let mut bad = proof.to_vec();
        bad[i][31] ^= 0x80;
        assert!(!rfc_consistent(first, second, a, b, &bad), "changed node {i}");
        let mut short = proof.to_vec();
        short.remove(i);
        assert!(!rfc_consistent(first, second, a, b, &short), "node {i} missing");
    }
    let mut long = proof.to_vec();
    long.push(*b);
    assert!(!rfc_consistent(first, second, a, b, &long), "an extra node");
    assert!(!rfc_consistent(second, first, b, a, proof), "sizes swapped");
}

async fn all_checkpoints(app: &TestApp) -> Vec<Checkpoint> {
    checkpoints::list(app.state.db.pool(), 0, 1000).await.unwrap()
}

/// One checkpoint per size 1..=64 (the trail starts empty), then every
/// pair proved from the events alone (store not filled) and again from the
/// store: the same proofs, each checked by the RFC's algorithm.
async fn every_pair_of_small_trees_is_proved_consistent(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let start = app.count("SELECT last_seq FROM audit_head WHERE id = 1").await;
    assert_eq!(start, 0, "the test needs an empty trail");
    for _ in 0..64 {
        append_n(&app, 1).await;
        checkpoints::sign(&app.state, true).await.unwrap().unwrap();
    }
    let cps = all_checkpoints(&app).await;
    assert_eq!(
        cps.iter().map(|c| c.tree_size).collect::<Vec<_>>(),
        (1..=64).collect::<Vec<_>>()
    );
    let mut before = Vec::new();
    for (i, a) in cps.iter().enumerate() {
        for b in &cps[i..] {
            let proof = checkpoints::consistency(&app.state.db, a, b).await.unwrap();
            let (ra, rb) = (h(&a.root), h(&b.root));
            assert_tampering_refused(a.tree_size as u64, b.tree_size as u64, &ra, &rb, &proof);
            before.push(proof);
        }
    }
    assert_eq!(tree::stored_size(&app.state.db).await.unwrap(), 0);
    assert_eq!(tree::extend(&app.state.db).await.unwrap(), 64);
    assert_eq!(tree::stored_size(&app.state.db).await.unwrap(), 64);
    // 64 leaves hold four perfect subtrees of 16 (height 4); nothing else
    // is kept below 256 leaves.
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_tree_nodes").await, 4);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_tree_nodes WHERE height = 4")
            .await,
        4
    );
    let mut after = Vec::new();
    for (i, a) in cps.iter().enumerate() {
        for b in &cps[i..] {
            after.push(checkpoints::consistency(&app.state.db, a, b).await.unwrap());
        }
    }
    assert_eq!(before, after, "the store gives the proofs the events give");
}

/// A few thousand events under checkpoints at random sizes; the store
/// filled by the checkpoint job; proofs over HTTP checked with the RFC's
/// algorithms and the checkpoints' signatures.
async fn large_trees_are_proved_over_http_from_the_stored_tree(b: Backend) {
    let app = TestApp::spawn(&b).await;
    let aud = auditor(&app).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(9162);
    for _ in 0..14 {
        append_n(&app, rng.gen_range(1..700)).await;
        checkpoints::sign(&app.state, true).await.unwrap().unwrap();
    }
    app.clock.advance(gatehouse::domain::MINUTE);
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    let cps = all_checkpoints(&app).await;
    let last = cps.last().unwrap().tree_size;
    assert_eq!(
        tree::stored_size(&app.state.db).await.unwrap(),
        last,
        "the job fills the store"
    );
    assert!(
        app.count("SELECT COUNT(*) FROM audit_tree_nodes WHERE height = 8")
            .await
            >= 10
    );

    let key = hex::encode(app.state.audit_keys.current().public[0].as_bytes());
    for _ in 0..25 {
        let i = rng.gen_range(0..cps.len());
        let j = rng.gen_range(i..cps.len());
        let (m, n) = (cps[i].tree_size, cps[j].tree_size);
        let r = app
            .get(&aud, &format!("/api/v1/audit/consistency?from={m}&to={n}"))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            (body["from"]["tree_size"].as_i64(), body["to"]["tree_size"].as_i64()),
            (Some(m), Some(n))
        );
        for side in ["from", "to"] {
            assert!(signed_by(&key, &body[side]), "{side} signature");
        }
        let proof: Vec<H> = body["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| h(p.as_str().unwrap()))
            .collect();
        let (ra, rb) = (
            h(body["from"]["root"].as_str().unwrap()),
            h(body["to"]["root"].as_str().unwrap()),
        );
        assert_eq!(ra, h(&cps[i].root));
        assert_tampering_refused(m as u64, n as u64, &ra, &rb, &proof);
        // Logarithmic: at most two nodes per level.
        assert!(proof.len() <= 2 * (64 - (n as u64).leading_zeros() as usize));

        let seq = rng.gen_range(1..=n);
        let r = app
            .get(
                &aud,
                &format!("/api/v1/audit/proofs/{seq}?checkpoint={}", cps[j].number),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let p: Value = r.json().await.unwrap();
        let path: Vec<H> = p["audit_path"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| h(x.as_str().unwrap()))
            .collect();
        let mut leaf = Sha256::new();
        leaf.update([0u8]);
        leaf.update(hex::decode(p["event_hash"].as_str().unwrap()).unwrap());
        let leaf: H = leaf.finalize().into();
        assert!(
            rfc_included(&leaf, seq as u64 - 1, n as u64, &path, &rb),
            "event {seq} of {n}"
        );
    }

    // Bad requests write nothing and say what is wrong.
    let (m, n) = (cps[3].tree_size, cps[5].tree_size);
    for (query, status) in [
        (format!("from={n}&to={m}"), StatusCode::UNPROCESSABLE_ENTITY),
        (format!("from=0&to={m}"), StatusCode::UNPROCESSABLE_ENTITY),
        (format!("from={m}&to={}", n + 1), StatusCode::NOT_FOUND),
        (format!("from={m}"), StatusCode::BAD_REQUEST),
        ("from=x&to=2".to_owned(), StatusCode::BAD_REQUEST),
        (format!("from={m}&to={n}&extra=1"), StatusCode::BAD_REQUEST),
    ] {
        let r = app.get(&aud, &format!("/api/v1/audit/consistency?{query}")).await;
        assert_eq!(r.status(), status, "{query}");
        let body: Value = r.json().await.unwrap();
        assert!(body["request_id"].is_string() && body["error"].is_string(), "{body}");
    }
    let r = client()
        .get(app.url(&format!("/api/v1/audit/consistency?from={m}&to={n}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Stored nodes changed (an attacker with the database): the server
    // checks every proof against the signed roots and answers nothing.
    drop_tree_triggers(&app).await;
    sqlx::query("UPDATE audit_tree_nodes SET hash = ?")
        .bind("00".repeat(32))
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let r = app
        .get(&aud, &format!("/api/v1/audit/consistency?from={m}&to={n}"))
        .await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let text = r.text().await.unwrap();
    assert!(text.contains("request_id") && !text.contains("audit_tree"), "{text}");
    let r = app
        .get(&aud, &format!("/api/v1/audit/proofs/3?checkpoint={}", cps[5].number))
        .await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

fn signed_by(public_hex: &str, cp: &Value) -> bool {
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};
    let key = VerifyingKey::from_bytes(&h(public_hex)).unwrap();
    let sig: [u8; 64] = hex::decode(cp["signature"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    key.verify(
        cp["signed_message"].as_str().unwrap().as_bytes(),
        &Signature::from_bytes(&sig),
    )
    .is_ok()
}

async fn drop_tree_triggers(app: &TestApp) {
    for t in ["audit_tree_nodes_no_update", "audit_tree_nodes_no_delete"] {
        sqlx::query(&format!("DROP TRIGGER {t}"))
            .execute(app.state.db.pool())
            .await
            .unwrap();
    }
}

/// A trail from before the store (nodes empty, state at 0) is filled by
/// the job up to its latest checkpoint, with the nodes the store would have
/// had; events changed after signing stop the filling.
async fn the_store_fills_an_older_trail_and_refuses_a_changed_one(b: Backend) {
    let app = TestApp::spawn(&b).await;
    append_n(&app, 300).await;
    checkpoints::sign(&app.state, true).await.unwrap().unwrap();
    append_n(&app, 260).await;
    checkpoints::sign(&app.state, true).await.unwrap().unwrap();
    assert_eq!(tree::extend(&app.state.db).await.unwrap(), 560);
    let nodes = "SELECT height, idx, hash FROM audit_tree_nodes ORDER BY height, idx";
    let expected = rows(&app, nodes).await;
    assert_eq!(expected.len(), 560 / 16 + 560 / 256);
    // Appends are append-only.
    assert!(sqlx::query("DELETE FROM audit_tree_nodes")
        .execute(app.state.db.pool())
        .await
        .is_err());

    // As before the migration's table existed.
    drop_tree_triggers(&app).await;
    sqlx::query("DELETE FROM audit_tree_nodes")
        .execute(app.state.db.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE audit_tree_state SET size = 0, frontier = '' WHERE id = 1")
        .execute(app.state.db.pool())
        .await
        .unwrap();
    app.clock.advance(gatehouse::domain::MINUTE);
    gatehouse::server::jobs::run_access_jobs(&app.state).await;
    assert_eq!(rows(&app, nodes).await, expected, "the job refills the same nodes");
    assert_eq!(tree::stored_size(&app.state.db).await.unwrap(), 560);

    // An event after the store's end is rewritten (with its hash) once
    // signed: the next extension refuses to store anything.
    append_n(&app, 40).await;
    checkpoints::sign(&app.state, true).await.unwrap().unwrap();
    for t in ["audit_events_no_update", "audit_events_no_delete"] {
        sqlx::query(&format!("DROP TRIGGER {t}"))
            .execute(app.state.db.pool())
            .await
            .unwrap();
    }
    sqlx::query("UPDATE audit_events SET hash = ? WHERE seq = 570")
        .bind("ab".repeat(32))
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let err = tree::extend(&app.state.db).await.unwrap_err();
    assert!(matches!(err, tree::TreeError::Mismatch { size: 600, .. }), "{err}");
    assert_eq!(tree::stored_size(&app.state.db).await.unwrap(), 560);
    assert!(!checkpoints::sign_due(&app.state).await, "the job reports the failure");
}

/// `gatehouse audit verify` checks the stored tree against the events:
/// a node changed, removed or added, or a frontier changed, is named.
async fn verification_finds_a_damaged_store(b: Backend) {
    let app = TestApp::spawn(&b).await;
    append_n(&app, 300).await;
    checkpoints::sign(&app.state, true).await.unwrap().unwrap();
    assert_eq!(tree::extend(&app.state.db).await.unwrap(), 300);
    // 18 nodes of height 4 and 1 of height 8.
    assert_eq!(tree::check(&app.state.db).await.unwrap(), 19);
    let (ok, out) = cli_verify(&app);
    assert!(ok && out.contains("19 stored tree nodes match"), "{out}");
    let seen = gatehouse::server::audit::console::verify_now(&app.state).await.unwrap();
    assert!(
        seen.ok && seen.message.contains("19 stored tree nodes match"),
        "{}",
        seen.message
    );

    drop_tree_triggers(&app).await;
    let sql = |q: &'static str| sqlx::query(q).execute(app.state.db.pool());
    let named = |e: tree::TreeError| match e {
        tree::TreeError::Node { height, idx } => (height, idx),
        other => panic!("{other}"),
    };
    sqlx::query("UPDATE audit_tree_nodes SET hash = ? WHERE height = 4 AND idx = 7")
        .bind("ab".repeat(32))
        .execute(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(named(tree::check(&app.state.db).await.unwrap_err()), (4, 7), "changed");
    let (ok, out) = cli_verify(&app);
    assert!(
        !ok && out.contains("DAMAGED") && out.contains("height 4, index 7"),
        "{out}"
    );
    let seen = gatehouse::server::audit::console::verify_now(&app.state).await.unwrap();
    assert!(
        !seen.ok && seen.message.contains("height 4, index 7"),
        "{}",
        seen.message
    );
    sql("DELETE FROM audit_tree_nodes WHERE height = 4 AND idx = 7")
        .await
        .unwrap();
    assert_eq!(named(tree::check(&app.state.db).await.unwrap_err()), (4, 7), "missing");
    sql("DELETE FROM audit_tree_nodes WHERE height = 8").await.unwrap();
    assert_eq!(
        named(tree::check(&app.state.db).await.unwrap_err()),
        (4, 7),
        "the first named"
    );
    sql("INSERT INTO audit_tree_nodes (height, idx, hash) SELECT height, 7, hash FROM audit_tree_nodes WHERE height = 4 AND idx = 6")
        .await
        .unwrap();
    assert_eq!(named(tree::check(&app.state.db).await.unwrap_err()), (4, 7), "a copy");
    sql("DELETE FROM audit_tree_nodes WHERE height = 4 AND idx = 7")
        .await
        .unwrap();
    sql("INSERT INTO audit_tree_nodes (height, idx, hash) SELECT 8, 0, hash FROM audit_tree_nodes WHERE height = 4 AND idx = 0")
        .await
        .unwrap();
    sql("INSERT INTO audit_tree_nodes (height, idx, hash) SELECT 12, 0, hash FROM audit_tree_nodes WHERE height = 4 AND idx = 0")
        .await
        .unwrap();
    assert_eq!(
        named(tree::check(&app.state.db).await.unwrap_err()),
        (4, 7),
        "a gap before extras"
    );

    // A store rebuilt from the events matches again; a frontier changed does not.
    sql("DELETE FROM audit_tree_nodes").await.unwrap();
    sql("UPDATE audit_tree_state SET size = 0, frontier = '' WHERE id = 1")
        .await
        .unwrap();
    tree::extend(&app.state.db).await.unwrap();
    assert_eq!(tree::check(&app.state.db).await.unwrap(), 19);
    sql("INSERT INTO audit_tree_nodes (height, idx, hash) SELECT 12, 0, hash FROM audit_tree_nodes WHERE height = 8")
        .await
        .unwrap();
    assert_eq!(named(tree::check(&app.state.db).await.unwrap_err()), (12, 0), "extra");
    sql("DELETE FROM audit_tree_nodes WHERE height = 12").await.unwrap();
    sql("UPDATE audit_tree_state SET frontier = substr(frontier, 2) WHERE id = 1")
        .await
        .unwrap();
    assert!(matches!(
        tree::check(&app.state.db).await.unwrap_err(),
        tree::TreeError::Damaged
    ));
}

async fn rows(app: &TestApp, sql: &str) -> Vec<(i64, i64, String)> {
    use sqlx::Row;
    sqlx::query(sql)
        .fetch_all(app.state.db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.try_get("height").unwrap(),
                r.try_get("idx").unwrap(),
                gatehouse::server::platform::db::text(r, "hash").unwrap(),
            )
        })
        .collect()
}
