use super::*;
use crate::domain::{
    audit::{Actor, NewEvent, Outcome, GENESIS_HASH},
    bundle::PublicKey,
};
use ed25519_dalek::SigningKey;
use serde_json::json;

const REPORT: &str = "campaign_id,item_id\r\n7,1\r\n";

fn key() -> SigningKey {
    SigningKey::from_bytes(&[9; 32])
}

/// A trail of 30 events; campaign 7's are at 4 (start), 9, 15 and 22
/// (close), the rest are other things (campaign 8 at 12).
fn trail() -> Vec<Event> {
    let sha = hex::encode(Sha256::digest(REPORT.as_bytes()));
    let mut prev = GENESIS_HASH.to_owned();
    (1..=30)
        .map(|seq| {
            let e = match seq {
                4 => NewEvent::new(Action::ReviewStarted, Outcome::Success, Actor::default())
                    .details(json!({ "campaign_id": 7 })),
                9 | 15 => NewEvent::new(Action::ReviewDecided, Outcome::Success, Actor::default())
                    .details(json!({ "campaign_id": 7, "decision": "keep" })),
                12 => NewEvent::new(Action::ReviewDecided, Outcome::Success, Actor::default())
                    .details(json!({ "campaign_id": 8 })),
                22 => NewEvent::new(Action::ReviewClosed, Outcome::Success, Actor::default())
                    .details(json!({ "campaign_id": 7, "report_sha256": sha })),
                _ => NewEvent::new(Action::DataAccess, Outcome::Success, Actor::default()).customer(format!("C-{seq}")),
            }
            .seal(seq, 1_000 * seq, &prev);
            prev.clone_from(&e.hash);
            e
        })
        .collect()
}

fn bundle(signer: &SigningKey, seqs: &[i64], report: &str) -> Vec<String> {
    let events = trail();
    let leaves: Vec<_> = events.iter().map(|e| merkle::leaf_from_hex(&e.hash).unwrap()).collect();
    let cp = Checkpoint::sign(signer, None, 30, &merkle::root(&leaves), &events[29].hash, 99_000);
    let header = Header {
        format: FORMAT.into(),
        exported_at: 100_000,
        campaign_id: 7,
        report_sha256: hex::encode(Sha256::digest(REPORT.as_bytes())),
        public_keys: vec![PublicKey {
            key_id: checkpoint::key_id(&signer.verifying_key()),
            public_key: hex::encode(signer.verifying_key().as_bytes()),
        }],
        checkpoint: cp,
    };
    let mut out = vec![serde_json::to_string(&header).unwrap()];
    out.push(serde_json::to_string(&Line::Report { csv: report.into() }).unwrap());
    for &s in seqs {
        let path = merkle::inclusion_proof(&leaves, (s - 1) as usize).unwrap();
        let line = Line::Event {
            event: Box::new(events[(s - 1) as usize].clone()),
            path: path.iter().map(hex::encode).collect(),
        };
        out.push(serde_json::to_string(&line).unwrap());
    }
    out
}

const OURS: [i64; 4] = [4, 9, 15, 22];

#[test]
fn a_campaigns_evidence_verifies_offline_event_by_event() {
    let b = bundle(&key(), &OURS, REPORT);
    let r = verify(&b, None).unwrap();
    assert_eq!((r.campaign_id, r.events, r.checkpoint, r.tree_size), (7, 4, 1, 30));
    assert_eq!(verify(&b, Some(&[key().verifying_key()])).unwrap(), r);
}

#[test]
fn an_edited_report_is_refused() {
    let b = bundle(&key(), &OURS, "campaign_id,item_id\r\n7,2\r\n");
    assert_eq!(verify(&b, None), Err(EvidenceError::ReportChanged));
    // Edited in the file as shipped, too.
    let mut b = bundle(&key(), &OURS, REPORT);
    b[1] = b[1].replace("7,1", "7,3");
    assert_eq!(verify(&b, None), Err(EvidenceError::ReportChanged));
}

#[test]
fn an_edited_foreign_or_unproven_event_is_refused() {
    let mut b = bundle(&key(), &OURS, REPORT);
    b[3] = b[3].replace("keep", "revoke");
    assert_eq!(verify(&b, None), Err(EvidenceError::EventChanged { seq: 9 }));
    // Another campaign's event slipped in.
    assert_eq!(
        verify(bundle(&key(), &[4, 9, 12, 22], REPORT), None),
        Err(EvidenceError::Foreign { seq: 12 })
    );
    // Out of order, or twice.
    assert_eq!(
        verify(bundle(&key(), &[4, 15, 9, 22], REPORT), None),
        Err(EvidenceError::Foreign { seq: 9 })
    );
    assert_eq!(
        verify(bundle(&key(), &[4, 9, 9, 22], REPORT), None),
        Err(EvidenceError::Foreign { seq: 9 })
    );
    // A proof that does not lead to the signed root.
    let mut b = bundle(&key(), &OURS, REPORT);
    let other = bundle(&key(), &[15], REPORT);
    let path_of_15 = other[2].split("\"path\":").nth(1).unwrap().to_owned();
    let head = b[3].split("\"path\":").next().unwrap().to_owned();
    b[3] = format!("{head}\"path\":{path_of_15}");
    assert_eq!(verify(&b, None), Err(EvidenceError::NotIncluded { seq: 9 }));
}

#[test]
fn the_start_and_the_close_must_be_there() {
    assert_eq!(
        verify(bundle(&key(), &[9, 15, 22], REPORT), None),
        Err(EvidenceError::Incomplete("start"))
    );
    assert_eq!(
        verify(bundle(&key(), &[4, 9, 15], REPORT), None),
        Err(EvidenceError::Incomplete("closing"))
    );
}

#[test]
fn a_rebuilt_bundle_needs_the_trusted_key() {
    let forged = bundle(&SigningKey::from_bytes(&[3; 32]), &OURS, REPORT);
    assert!(verify(&forged, None).is_ok(), "consistent in itself");
    assert_eq!(
        verify(&forged, Some(&[key().verifying_key()])),
        Err(EvidenceError::Signature)
    );
    let mut b = bundle(&key(), &OURS, REPORT);
    b[0] = b[0].replace("\"tree_size\":30", "\"tree_size\":31");
    assert_eq!(verify(&b, None), Err(EvidenceError::Signature));
    assert!(matches!(verify(["{}"], None), Err(EvidenceError::Malformed { .. })));
}
