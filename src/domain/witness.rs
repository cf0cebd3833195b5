//! Witnesses: parties outside Gatehouse that check each signed checkpoint
//! extends the last one they saw, and co-sign the ones they accept. A
//! checkpoint co-signed by witnesses who do not share Gatehouse's operators
//! cannot be replaced by a rewritten history without them noticing.
//!
//! A co-signature is an Ed25519 signature, by the witness's own key, over
//! `cosigned_message`: the checkpoint's digest under its own format tag, so
//! it can never be mistaken for a checkpoint signature. docs/audit-chain.md
//! documents the text; change it only together with `COSIGN_FORMAT`.

use super::checkpoint::{self, Checkpoint};
use super::merkle::{proofs, Hash};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::fmt;

pub const COSIGN_FORMAT: &str = "gatehouse-cosignature-v1";

/// The exact text a witness signs for `cp`.
pub fn cosigned_message(cp: &Checkpoint) -> String {
    format!(
        "{COSIGN_FORMAT}\nnumber {}\ntree_size {}\nroot {}\ncheckpoint {}\n",
        cp.number,
        cp.tree_size,
        cp.root,
        cp.digest()
    )
}

/// A co-signature of `cp` by `key` (hex).
pub fn cosign(key: &SigningKey, cp: &Checkpoint) -> String {
    hex::encode(key.sign(cosigned_message(cp).as_bytes()).to_bytes())
}

/// Whether `signature` (hex) is `key`'s co-signature of `cp`.
pub fn cosignature_valid(key: &VerifyingKey, cp: &Checkpoint, signature: &str) -> bool {
    let mut raw = [0u8; 64];
    if signature.len() != 128 || hex::decode_to_slice(signature, &mut raw).is_err() {
        return false;
    }
    key.verify_strict(cosigned_message(cp).as_bytes(), &Signature::from_bytes(&raw))
        .is_ok()
}

/// A co-signature as bundles and the API carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cosignature {
    /// The checkpoint's number.
    pub checkpoint: i64,
    /// The witness's name in Gatehouse.
    pub witness: String,
    /// The witness's Ed25519 public key (hex).
    pub public_key: String,
    pub signature: String,
}

/// With a quorum configured (`quorum > 0`), a checkpoint counts as final
/// once that many distinct registered witnesses co-signed it; without one,
/// every signed checkpoint is final.
pub fn is_final(cosigners: usize, quorum: u32) -> bool {
    cosigners >= quorum as usize
}

/// What a witness remembers of the last checkpoint it accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub checkpoint: Checkpoint,
}

/// Why a witness refuses to go on: each means the published history is not
/// the one it saw, or cannot be shown to extend it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alarm {
    /// A checkpoint it accepted is published differently now.
    Fork { number: i64 },
    /// A checkpoint it accepted is no longer published.
    Rollback { number: i64 },
    /// A new checkpoint does not extend the last accepted one.
    NotExtending { number: i64, problem: String },
    /// A checkpoint whose signature does not verify with the log's keys.
    BadSignature { number: i64 },
    /// A signing key id now names another public key.
    KeyChanged { key_id: String },
}

impl fmt::Display for Alarm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fork { number } => write!(
                f,
                "fork: checkpoint {number}, which this witness accepted, is now published differently"
            ),
            Self::Rollback { number } => {
                write!(
                    f,
                    "rollback: checkpoint {number}, which this witness accepted, is no longer published"
                )
            }
            Self::NotExtending { number, problem } => {
                write!(
                    f,
                    "checkpoint {number} does not extend the last accepted one: {problem}"
                )
            }
            Self::BadSignature { number } => write!(
                f,
                "checkpoint {number}: its signature does not verify with the log's keys"
            ),
            Self::KeyChanged { key_id } => write!(f, "the log's signing key {key_id} now names a different public key"),
        }
    }
}

/// Checks that `cp`, newly published, can extend `last` (the last accepted
/// checkpoint; none on the first run, when `cp` must be checkpoint 1):
/// signed by one of `keys`, numbered next, linked by digest, no smaller and
/// no older. What remains is the consistency proof (`judge`).
pub fn precheck(last: Option<&Checkpoint>, cp: &Checkpoint, keys: &[VerifyingKey]) -> Result<(), Alarm> {
    if !cp.signature_valid(keys) {
        return Err(Alarm::BadSignature { number: cp.number });
    }
    let Some(last) = last else {
        return match checkpoint::check_list(keys, std::slice::from_ref(cp), None) {
            Ok(()) if cp.number == 1 => Ok(()),
            _ => Err(not(
                cp,
                "the first checkpoint a witness sees must be checkpoint 1, linked to nothing",
            )),
        };
    };
    if cp.number != last.number + 1 {
        return Err(not(cp, &format!("it is not numbered {}", last.number + 1)));
    }
    if cp.prev_hash != last.digest() {
        return Err(not(cp, "it does not link to the last accepted checkpoint"));
    }
    if cp.tree_size < last.tree_size || cp.at < last.at {
        return Err(not(cp, "it covers fewer events, or is older"));
    }
    Ok(())
}

fn not(cp: &Checkpoint, problem: &str) -> Alarm {
    Alarm::NotExtending {
        number: cp.number,
        problem: problem.to_owned(),
    }
}

/// `precheck`, then `proof` must be an RFC 9162 consistency proof from
/// `last`'s tree to `cp`'s (empty when the sizes are equal).
pub fn judge(last: Option<&Checkpoint>, cp: &Checkpoint, keys: &[VerifyingKey], proof: &[Hash]) -> Result<(), Alarm> {
    precheck(last, cp, keys)?;
    let Some(last) = last else { return Ok(()) };
    let (Some(first_root), Some(second_root)) = (hash(&last.root), hash(&cp.root)) else {
        return Err(not(cp, "a root is not 64 hex digits"));
    };
    if !proofs::verify_consistency(
        last.tree_size as u64,
        cp.tree_size as u64,
        &first_root,
        &second_root,
        proof,
    ) {
        return Err(not(
            cp,
            "the consistency proof does not verify: the older events were rewritten",
        ));
    }
    Ok(())
}

fn hash(s: &str) -> Option<Hash> {
    let mut h = [0u8; 32];
    hex::decode_to_slice(s, &mut h).ok().map(|_| h)
}

/// Checks that a log's published keys do not rename one the witness knows
/// (`known`: key id and hex public key); answers the keys to use, known
/// first, then new ones (a rotation) in the order published.
pub fn merge_keys(known: &[(String, String)], published: &[(String, String)]) -> Result<Vec<(String, String)>, Alarm> {
    let mut out = known.to_vec();
    for (id, key) in published {
        let Some(vk) = checkpoint::public_key_from_hex(key) else {
            return Err(Alarm::KeyChanged { key_id: id.clone() });
        };
        if checkpoint::key_id(&vk) != *id {
            return Err(Alarm::KeyChanged { key_id: id.clone() });
        }
        match known.iter().find(|(k, _)| k == id) {
            Some((_, old)) if !old.eq_ignore_ascii_case(key) => return Err(Alarm::KeyChanged { key_id: id.clone() }),
            Some(_) => {}
            None => out.push((id.clone(), key.to_lowercase())),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::merkle::{self, leaf_hash};

    fn key(b: u8) -> SigningKey {
        SigningKey::from_bytes(&[b; 32])
    }

    fn leaves(n: usize, salt: u8) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&[i as u8 ^ salt; 32])).collect()
    }

    /// Checkpoints over growing prefixes of `leaves`.
    fn chain(k: &SigningKey, leaves: &[Hash], sizes: &[usize]) -> Vec<Checkpoint> {
        let mut out: Vec<Checkpoint> = Vec::new();
        for (i, &n) in sizes.iter().enumerate() {
            let root = merkle::root(&leaves[..n]);
            let cp = Checkpoint::sign(k, out.last(), n as i64, &root, "ab", 1_000 + i as i64);
            out.push(cp);
        }
        out
    }

    struct Leaves<'a>(&'a [Hash]);

    impl proofs::Subtrees for Leaves<'_> {
        type Error = ();
        fn root(&mut self, start: u64, len: u64) -> Result<Hash, ()> {
            Ok(merkle::root(&self.0[start as usize..(start + len) as usize]))
        }
    }

    fn proof(leaves: &[Hash], a: usize, b: usize) -> Vec<Hash> {
        proofs::consistency(&mut Leaves(leaves), a as u64, b as u64).unwrap()
    }

    #[test]
    fn a_cosignature_verifies_only_for_its_checkpoint_and_key() {
        let (log, w) = (key(1), key(2));
        let l = leaves(10, 0);
        let cps = chain(&log, &l, &[4, 10]);
        let sig = cosign(&w, &cps[0]);
        assert!(cosignature_valid(&w.verifying_key(), &cps[0], &sig));
        assert!(!cosignature_valid(&w.verifying_key(), &cps[1], &sig));
        assert!(!cosignature_valid(&key(3).verifying_key(), &cps[0], &sig));
        assert!(!cosignature_valid(&w.verifying_key(), &cps[0], &sig[..126]));
        // A checkpoint signature is not a co-signature, and the other way round.
        assert!(!cosignature_valid(&log.verifying_key(), &cps[0], &cps[0].signature));
        assert!(cosigned_message(&cps[0]).starts_with("gatehouse-cosignature-v1\n"));
    }

    #[test]
    fn an_extension_is_accepted_and_a_rewrite_raises_the_alarm() {
        let log = key(1);
        let keys = [log.verifying_key()];
        let l = leaves(40, 0);
        let cps = chain(&log, &l, &[5, 5, 17, 40]);
        assert_eq!(judge(None, &cps[0], &keys, &[]), Ok(()));
        assert_eq!(judge(Some(&cps[0]), &cps[1], &keys, &[]), Ok(()));
        assert_eq!(judge(Some(&cps[1]), &cps[2], &keys, &proof(&l, 5, 17)), Ok(()));
        assert_eq!(judge(Some(&cps[2]), &cps[3], &keys, &proof(&l, 17, 40)), Ok(()));
        // The same key signs a history whose event 3 was rewritten.
        let mut forged = l.clone();
        forged[2] = leaf_hash(&[0xee; 32]);
        let other = chain(&log, &forged, &[5, 5, 17, 40]);
        let next = Checkpoint::sign(&log, Some(&cps[2]), 40, &merkle::root(&forged), "ab", 9_999);
        assert_eq!(next.prev_hash, cps[2].digest());
        let bad = judge(Some(&cps[2]), &next, &keys, &proof(&forged, 17, 40));
        assert!(matches!(bad, Err(Alarm::NotExtending { number: 4, .. })), "{bad:?}");
        // Not numbered next, not linked, smaller, unsigned.
        assert!(matches!(
            judge(Some(&cps[0]), &cps[2], &keys, &[]),
            Err(Alarm::NotExtending { .. })
        ));
        assert!(matches!(
            judge(Some(&cps[1]), &other[2], &keys, &proof(&forged, 5, 17)),
            Err(Alarm::NotExtending { .. })
        ));
        let small = Checkpoint::sign(&log, Some(&cps[2]), 16, &merkle::root(&l[..16]), "ab", 9_999);
        assert!(matches!(
            judge(Some(&cps[2]), &small, &keys, &[]),
            Err(Alarm::NotExtending { .. })
        ));
        assert_eq!(
            judge(Some(&cps[2]), &cps[3], &[key(9).verifying_key()], &proof(&l, 17, 40)),
            Err(Alarm::BadSignature { number: 4 })
        );
        // A first sight that is not checkpoint 1.
        assert!(matches!(
            judge(None, &cps[1], &keys, &[]),
            Err(Alarm::NotExtending { number: 2, .. })
        ));
    }

    #[test]
    fn keys_may_be_added_but_never_renamed() {
        let (a, b) = (key(1).verifying_key(), key(2).verifying_key());
        let entry = |k: &VerifyingKey| (checkpoint::key_id(k), hex::encode(k.as_bytes()));
        let known = vec![entry(&a)];
        assert_eq!(
            merge_keys(&known, &[entry(&a), entry(&b)]),
            Ok(vec![entry(&a), entry(&b)])
        );
        let renamed = (entry(&a).0, entry(&b).1);
        assert!(matches!(merge_keys(&known, &[renamed]), Err(Alarm::KeyChanged { .. })));
        assert!(matches!(
            merge_keys(&[], &[(entry(&a).0, "zz".into())]),
            Err(Alarm::KeyChanged { .. })
        ));
    }

    #[test]
    fn a_quorum_counts_distinct_cosigners() {
        assert!(is_final(0, 0));
        assert!(!is_final(1, 2));
        assert!(is_final(2, 2));
    }
}
