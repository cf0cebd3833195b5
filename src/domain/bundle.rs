//! Audit export bundles and their offline verification.
//!
//! A bundle is JSON Lines: a header, the signed checkpoints, the events of
//! a contiguous range (`first_seq..=last_seq`), and the roots of the aligned subtrees that cover
//! the events after the range up to the last checkpoint (so that checkpoint's
//! root can be recomputed without the events themselves). The header carries the Merkle frontier of the events before
//! the range for the same reason. Nothing in the bundle is trusted on its
//! own: every event is hashed and linked, every checkpoint signature is
//! checked, and the signed roots must come out of the events.
//!
//! The format is documented in docs/audit-chain.md; change it together with
//! `FORMAT`.

use super::{
    audit::{ChainError, Event, Verifier},
    checkpoint::{self, Checkpoint, CheckpointError, RootChecker, SubtreeError},
    merkle::{Frontier, Hash},
    witness::{self, Cosignature},
};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use std::fmt;

pub const FORMAT: &str = "gatehouse-audit-bundle-v1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKey {
    pub key_id: String,
    pub public_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub format: String,
    pub exported_at: i64,
    /// The time range asked for (milliseconds), when one was.
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub first_seq: i64,
    pub last_seq: i64,
    pub public_keys: Vec<PublicKey>,
    /// Roots of the perfect subtrees over events `1..first_seq`, largest
    /// first, as (leaf count, hex root).
    pub prefix: Vec<(u64, String)>,
}

/// One line of a bundle after the header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    Event(Event),
    /// The root of events `start..start+size` (1-based `start`).
    Subtree {
        start: i64,
        size: u64,
        root: String,
    },
    Checkpoint(Checkpoint),
    /// A witness's co-signature of one of the bundle's checkpoints (among
    /// them, before the events).
    Cosignature(Cosignature),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub first_seq: i64,
    pub last_seq: i64,
    pub events: u64,
    pub checkpoints: u64,
    /// The checkpoint whose signed root covers the last event.
    pub covered_by: i64,
    pub key_ids: Vec<String>,
    /// Verified co-signatures: checkpoint number, witness public key (hex,
    /// lower case), witness name.
    pub cosigned: Vec<(i64, String, String)>,
}

impl Report {
    /// Whether `key` co-signed a checkpoint that covers the last event.
    pub fn witnessed_by(&self, key: &VerifyingKey) -> bool {
        let key = hex::encode(key.as_bytes());
        self.cosigned.iter().any(|(n, k, _)| *n >= self.covered_by && *k == key)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleError {
    /// Not a bundle, or a line that cannot be read.
    Malformed {
        line: usize,
        problem: String,
    },
    /// The events themselves: changed, missing, reordered.
    Chain(ChainError),
    Checkpoint(CheckpointError),
    /// The bundle's keys are not the one the verifier was told to trust.
    UntrustedKey {
        key_id: String,
    },
    /// No signed checkpoint covers the end of the range.
    Uncovered {
        last_seq: i64,
    },
    /// A co-signature that does not verify, or names no checkpoint here.
    BadCosignature {
        checkpoint: i64,
        witness: String,
    },
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed { line, problem } => write!(f, "line {line}: {problem}"),
            Self::Chain(e) => write!(f, "{e}"),
            Self::Checkpoint(e) => write!(f, "{e}"),
            Self::UntrustedKey { key_id } => {
                write!(f, "the bundle is signed with key {key_id}, not the public key given")
            }
            Self::BadCosignature { checkpoint, witness } => write!(
                f,
                "the co-signature of checkpoint {checkpoint} by witness {witness} does not verify"
            ),
            Self::Uncovered { last_seq } => write!(
                f,
                "no signed checkpoint covers event {last_seq}: the range cannot be proven"
            ),
        }
    }
}

fn hash_from_hex(s: &str) -> Option<Hash> {
    let mut h = [0u8; 32];
    hex::decode_to_slice(s, &mut h).ok().map(|_| h)
}

/// Checks a bundle line by line, in constant memory but for the
/// checkpoints (few). `trusted`: the public keys obtained from Gatehouse
/// out of band, oldest first (more than one after a key rotation); without
/// them the bundle's own keys are used and the report names them, to be
/// compared with the published keys.
pub fn verify<I, S>(lines: I, trusted: Option<&[VerifyingKey]>) -> Result<Report, BundleError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut lines = lines
        .into_iter()
        .enumerate()
        .filter(|(_, l)| !l.as_ref().trim().is_empty());
    let malformed = |line: usize, problem: String| BundleError::Malformed {
        line: line + 1,
        problem,
    };
    let (n, first) = lines.next().ok_or_else(|| malformed(0, "the file is empty".into()))?;
    let header: Header =
        serde_json::from_str(first.as_ref()).map_err(|e| malformed(n, format!("not a bundle header: {e}")))?;
    if header.format != FORMAT {
        return Err(malformed(n, format!("unknown format {:?}", header.format)));
    }
    let mut keys = Vec::new();
    for k in &header.public_keys {
        let key = checkpoint::public_key_from_hex(&k.public_key)
            .ok_or_else(|| malformed(n, format!("public key {} is not a valid Ed25519 key", k.key_id)))?;
        keys.push(key);
    }
    if let Some(t) = trusted {
        if !t.iter().any(|k| keys.contains(k)) {
            return Err(BundleError::UntrustedKey {
                key_id: header.public_keys.first().map(|k| k.key_id.clone()).unwrap_or_default(),
            });
        }
        keys = t.to_vec();
    }
    let prefix = header
        .prefix
        .iter()
        .map(|(size, root)| hash_from_hex(root).map(|h| (*size, h)))
        .collect::<Option<Vec<_>>>()
        .and_then(Frontier::from_nodes)
        .filter(|f| f.size() as i64 == header.first_seq - 1)
        .ok_or_else(|| malformed(n, "the prefix does not describe the events before the range".into()))?;

    // Checkpoints come first (they are few), then the events, streamed
    // through the chain and root checks one at a time, then the subtrees.
    let mut checkpoints = Vec::new();
    let mut cosignatures: Vec<Cosignature> = Vec::new();
    let mut cosigned = Vec::new();
    let mut walk: Option<(Verifier, RootChecker)> = None;
    let mut last = header.first_seq - 1;
    let mut covered = None;
    for (i, line) in lines {
        match serde_json::from_str::<Line>(line.as_ref()).map_err(|e| malformed(i, e.to_string()))? {
            Line::Checkpoint(c) => {
                if walk.is_some() {
                    return Err(malformed(i, "a checkpoint after the events".into()));
                }
                checkpoints.push(c);
            }
            Line::Cosignature(c) => {
                if walk.is_some() {
                    return Err(malformed(i, "a co-signature after the events".into()));
                }
                cosignatures.push(c);
            }
            Line::Event(e) => {
                if walk.is_none() {
                    checkpoint::check_list(&keys, &checkpoints, None).map_err(BundleError::Checkpoint)?;
                    cosigned = check_cosignatures(&checkpoints, std::mem::take(&mut cosignatures))?;
                    covered = checkpoints
                        .iter()
                        .filter(|c| c.tree_size >= header.last_seq)
                        .map(|c| c.number)
                        .min();
                    let roots = RootChecker::new(prefix.clone(), std::mem::take(&mut checkpoints));
                    walk = Some((Verifier::resume(header.first_seq - 1, &e.prev_hash), roots));
                }
                let (chain, roots) = walk.as_mut().expect("set above");
                if roots.size() as i64 != last {
                    return Err(malformed(i, "an event after the subtrees".into()));
                }
                chain.push(&e).map_err(BundleError::Chain)?;
                roots.push(e.seq, &e.hash).map_err(BundleError::Checkpoint)?;
                last = e.seq;
            }
            Line::Subtree { start, size, root } => {
                let Some((_, roots)) = walk.as_mut() else {
                    return Err(malformed(i, "a subtree before the events".into()));
                };
                if last != header.last_seq {
                    return Err(BundleError::Chain(ChainError::Truncated {
                        head_seq: header.last_seq,
                        last_seq: last,
                    }));
                }
                let root =
                    hash_from_hex(&root).ok_or_else(|| malformed(i, "a subtree root is not 64 hex digits".into()))?;
                if start != roots.size() as i64 + 1 {
                    return Err(malformed(
                        i,
                        format!(
                            "a subtree starting at event {start} does not follow event {}",
                            roots.size()
                        ),
                    ));
                }
                roots.push_subtree(size, root).map_err(|e| match e {
                    SubtreeError::Misaligned => {
                        malformed(i, format!("a subtree of {size} events cannot start at event {start}"))
                    }
                    SubtreeError::Checkpoint(c) => BundleError::Checkpoint(c),
                })?;
            }
        }
    }
    let Some((chain, roots)) = walk else {
        return Err(malformed(n, "the bundle holds no events".into()));
    };
    if last != header.last_seq {
        return Err(BundleError::Chain(ChainError::Truncated {
            head_seq: header.last_seq,
            last_seq: last,
        }));
    }
    let matched = roots.finish().map_err(BundleError::Checkpoint)?;
    let covered_by = covered.ok_or(BundleError::Uncovered {
        last_seq: header.last_seq,
    })?;
    Ok(Report {
        first_seq: header.first_seq,
        last_seq: header.last_seq,
        events: chain.count(),
        checkpoints: matched,
        covered_by,
        key_ids: keys.iter().map(checkpoint::key_id).collect(),
        cosigned,
    })
}

/// Each co-signature must verify against its checkpoint in the bundle.
fn check_cosignatures(cps: &[Checkpoint], list: Vec<Cosignature>) -> Result<Vec<(i64, String, String)>, BundleError> {
    list.into_iter()
        .map(|c| {
            let cp = cps.iter().find(|cp| cp.number == c.checkpoint);
            match (cp, checkpoint::public_key_from_hex(&c.public_key)) {
                (Some(cp), Some(k)) if witness::cosignature_valid(&k, cp, &c.signature) => {
                    Ok((c.checkpoint, hex::encode(k.as_bytes()), c.witness))
                }
                _ => Err(BundleError::BadCosignature {
                    checkpoint: c.checkpoint,
                    witness: c.witness.chars().take(64).collect(),
                }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        actions::Action,
        audit::{Actor, NewEvent, Outcome, GENESIS_HASH},
        merkle::{self, aligned_ranges},
    };
    use ed25519_dalek::SigningKey;

    fn chain(n: i64) -> Vec<Event> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let e = NewEvent::new(Action::DataAccess, Outcome::Success, Actor::default())
                    .customer(format!("C-{seq}"))
                    .seal(seq, 1_000 * seq, &prev);
                prev.clone_from(&e.hash);
                e
            })
            .collect()
    }

    fn leaves(events: &[Event]) -> Vec<Hash> {
        events.iter().map(|e| merkle::leaf_from_hex(&e.hash).unwrap()).collect()
    }

    /// A bundle of events a..=b from a chain of `total` with checkpoints
    /// after `sizes`, built the way the server builds it.
    fn bundle(key: &SigningKey, total: i64, sizes: &[i64], a: i64, b: i64) -> Vec<String> {
        let events = chain(total);
        let mut cps: Vec<Checkpoint> = Vec::new();
        for &n in sizes {
            let ls = leaves(&events[..n as usize]);
            let cp = Checkpoint::sign(
                key,
                cps.last(),
                n,
                &merkle::root(&ls),
                &events[n as usize - 1].hash,
                9_000 + n,
            );
            cps.push(cp);
        }
        let cover = cps.iter().find(|c| c.tree_size >= b).unwrap().tree_size;
        let mut prefix = Frontier::new();
        for l in leaves(&events[..(a - 1) as usize]) {
            prefix.push_leaf(l);
        }
        let header = Header {
            format: FORMAT.into(),
            exported_at: 0,
            from: None,
            to: None,
            first_seq: a,
            last_seq: b,
            public_keys: vec![PublicKey {
                key_id: checkpoint::key_id(&key.verifying_key()),
                public_key: hex::encode(key.verifying_key().as_bytes()),
            }],
            prefix: prefix.nodes().iter().map(|(n, h)| (*n, hex::encode(h))).collect(),
        };
        let mut out = vec![serde_json::to_string(&header).unwrap()];
        for c in cps.iter().filter(|c| c.tree_size >= a && c.tree_size <= cover) {
            out.push(serde_json::to_string(&Line::Checkpoint(c.clone())).unwrap());
        }
        for e in &events[(a - 1) as usize..b as usize] {
            out.push(serde_json::to_string(&Line::Event(e.clone())).unwrap());
        }
        let all = leaves(&events);
        for (at, len) in aligned_ranges(b as u64, cover as u64) {
            let root = merkle::root(&all[at as usize..(at + len) as usize]);
            out.push(
                serde_json::to_string(&Line::Subtree {
                    start: at as i64 + 1,
                    size: len,
                    root: hex::encode(root),
                })
                .unwrap(),
            );
        }
        out
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[5; 32])
    }

    #[test]
    fn a_bundle_verifies_offline() {
        let b = bundle(&key(), 40, &[10, 25, 40], 12, 30);
        let r = verify(&b, None).unwrap();
        assert_eq!((r.first_seq, r.last_seq, r.events), (12, 30, 19));
        assert_eq!(
            r.checkpoints, 2,
            "checkpoint 25 from the events, 40 through the subtrees"
        );
        assert_eq!(r.covered_by, 3);
        assert_eq!(verify(&b, Some(&[key().verifying_key()])).unwrap(), r);
        // The whole chain, and a range ending exactly on a checkpoint.
        assert_eq!(verify(bundle(&key(), 17, &[17], 1, 17), None).unwrap().events, 17);
        assert_eq!(verify(bundle(&key(), 17, &[9, 17], 3, 9), None).unwrap().covered_by, 1);
    }

    #[test]
    fn an_edited_event_is_named() {
        let at = |b: &[String], seq: i64| b.iter().position(|l| l.contains(&format!("\"seq\":{seq},"))).unwrap();
        let mut b = bundle(&key(), 40, &[10, 40], 12, 30);
        let i = at(&b, 16);
        b[i] = b[i].replace("C-16", "C-99");
        assert_eq!(
            verify(&b, None),
            Err(BundleError::Chain(ChainError::HashMismatch { seq: 16 }))
        );
        // Removed, or two swapped.
        let mut removed = bundle(&key(), 40, &[10, 40], 12, 30);
        removed.remove(at(&removed, 16));
        assert_eq!(
            verify(&removed, None),
            Err(BundleError::Chain(ChainError::Gap {
                expected: 16,
                found: 17
            }))
        );
        let mut swapped = bundle(&key(), 40, &[10, 40], 12, 30);
        let (i, j) = (at(&swapped, 16), at(&swapped, 17));
        swapped.swap(i, j);
        assert_eq!(
            verify(&swapped, None),
            Err(BundleError::Chain(ChainError::Gap {
                expected: 16,
                found: 17
            }))
        );
        // The tail dropped (header edited to match): the signed root fails.
        let mut cut = bundle(&key(), 40, &[10, 40], 12, 30);
        cut.remove(at(&cut, 30));
        cut[0] = cut[0].replace("\"last_seq\":30", "\"last_seq\":29");
        assert!(
            matches!(
                verify(&cut, None),
                Err(BundleError::Malformed { .. }) | Err(BundleError::Checkpoint(_))
            ),
            "{:?}",
            verify(&cut, None)
        );
    }

    #[test]
    fn a_rewritten_bundle_needs_the_key() {
        // Someone rebuilds the whole bundle with their own key: it is
        // internally consistent, so only the trusted key catches it.
        let forged = bundle(&SigningKey::from_bytes(&[6; 32]), 40, &[10, 40], 12, 30);
        assert!(verify(&forged, None).is_ok());
        assert!(matches!(
            verify(&forged, Some(&[key().verifying_key()])),
            Err(BundleError::UntrustedKey { .. })
        ));
        // A changed checkpoint or subtree fails its signature or root.
        let mut b = bundle(&key(), 40, &[10, 40], 12, 30);
        let last = b.iter().position(|l| l.contains("\"tree_size\":40")).unwrap();
        b[last] = b[last].replace("\"at\":9040", "\"at\":9041");
        assert_eq!(
            verify(&b, None),
            Err(BundleError::Checkpoint(CheckpointError::BadSignature { number: 2 }))
        );
        let mut b = bundle(&key(), 40, &[10, 40], 12, 30);
        let sub = b.iter().position(|l| l.contains("\"subtree\"")).unwrap();
        let line: Line = serde_json::from_str(&b[sub]).unwrap();
        if let Line::Subtree { start, size, .. } = line {
            b[sub] = serde_json::to_string(&Line::Subtree {
                start,
                size,
                root: "ab".repeat(32),
            })
            .unwrap();
        }
        assert_eq!(
            verify(&b, None),
            Err(BundleError::Checkpoint(CheckpointError::RootMismatch {
                number: 2,
                tree_size: 40
            }))
        );
    }

    #[test]
    fn malformed_and_unproven_bundles_are_refused() {
        assert!(matches!(
            verify(Vec::<String>::new(), None),
            Err(BundleError::Malformed { line: 1, .. })
        ));
        assert!(matches!(
            verify(["{\"format\":\"zip\"}"], None),
            Err(BundleError::Malformed { line: 1, .. })
        ));
        let mut b = bundle(&key(), 40, &[10, 40], 12, 30);
        b[3] = "{\"type\":\"event\",\"seq\":\"x\"}".into();
        assert!(matches!(verify(&b, None), Err(BundleError::Malformed { line: 4, .. })));
        // Without its covering checkpoint, nothing proves the range.
        let mut b = bundle(&key(), 40, &[10, 40], 12, 30);
        b.retain(|l| !l.contains("\"subtree\"") && !l.contains("\"tree_size\":40"));
        assert_eq!(verify(&b, None), Err(BundleError::Uncovered { last_seq: 30 }));
    }
}
