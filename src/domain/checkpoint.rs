//! Signed checkpoints of the audit chain. A checkpoint states, under an
//! Ed25519 signature, how many events the chain held (`tree_size`), the
//! Merkle root over all of them, the hash of the last one, and the digest of
//! the previous checkpoint, so checkpoints form a chain of their own.
//!
//! Someone holding a checkpoint (or the public key and a bundle) can prove
//! that no event it covers was changed, removed, reordered or cut off the
//! end, even by someone who can write to the database: they lack the key.
//! The signed text is documented in docs/audit-chain.md; change it only
//! together with `FORMAT`.

use super::{
    audit::GENESIS_HASH,
    merkle::{self, Frontier, Hash},
    Millis,
};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest, Sha256};
use std::fmt;

pub const FORMAT: &str = "gatehouse-checkpoint-v1";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// 1, 2, 3, ... in signing order.
    pub number: i64,
    /// Events covered: 1 through `tree_size`.
    pub tree_size: i64,
    /// Merkle root over those events (hex).
    pub root: String,
    /// Hash of event `tree_size` (hex).
    pub head_hash: String,
    /// Digest of the previous checkpoint; zeros for the first.
    pub prev_hash: String,
    pub at: Millis,
    /// Which key signed: see `key_id`.
    pub key_id: String,
    /// Ed25519 signature over `message()` (hex).
    pub signature: String,
}

/// Short name of a public key: the first 16 hex digits of its SHA-256.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))[..16].to_owned()
}

impl Checkpoint {
    /// The exact text that is signed.
    pub fn message(&self) -> String {
        format!(
            "{FORMAT}\nnumber {}\ntree_size {}\nroot {}\nhead {}\nprev {}\nat {}\nkey {}\n",
            self.number, self.tree_size, self.root, self.head_hash, self.prev_hash, self.at, self.key_id
        )
    }

    /// What the next checkpoint names as `prev_hash`.
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.message().as_bytes()))
    }

    /// A signed checkpoint following `prev` (none for the first).
    pub fn sign(
        key: &SigningKey,
        prev: Option<&Checkpoint>,
        tree_size: i64,
        root: &Hash,
        head_hash: &str,
        at: Millis,
    ) -> Checkpoint {
        let mut cp = Checkpoint {
            number: prev.map_or(1, |p| p.number + 1),
            tree_size,
            root: hex::encode(root),
            head_hash: head_hash.to_owned(),
            prev_hash: prev.map_or_else(|| GENESIS_HASH.to_owned(), Checkpoint::digest),
            at,
            key_id: key_id(&key.verifying_key()),
            signature: String::new(),
        };
        cp.signature = hex::encode(key.sign(cp.message().as_bytes()).to_bytes());
        cp
    }

    /// Signed by the key among `keys` that it names.
    pub fn signature_valid(&self, keys: &[VerifyingKey]) -> bool {
        let mut raw = [0u8; 64];
        if hex::decode_to_slice(&self.signature, &mut raw).is_err() {
            return false;
        }
        let Some(key) = keys.iter().find(|k| key_id(k) == self.key_id) else {
            return false;
        };
        key.verify(self.message().as_bytes(), &Signature::from_bytes(&raw))
            .is_ok()
    }
}

/// A public key from its hex form.
pub fn public_key_from_hex(s: &str) -> Option<VerifyingKey> {
    let mut raw = [0u8; 32];
    hex::decode_to_slice(s.trim(), &mut raw).ok()?;
    VerifyingKey::from_bytes(&raw).ok()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointError {
    /// Not signed by the expected key, or changed after signing.
    BadSignature { number: i64 },
    /// Signed by a key older than the one that signed the checkpoint before
    /// it: a rotated key signs no more.
    RetiredKey { number: i64 },
    /// Numbers must run 1, 2, 3 without gaps.
    Gap { expected: i64, found: i64 },
    /// `prev_hash` is not the digest of the previous checkpoint.
    BrokenLink { number: i64 },
    /// A checkpoint covers fewer events, or is older, than the one before.
    Backwards { number: i64 },
    /// The events do not hash to the signed root.
    RootMismatch { number: i64, tree_size: i64 },
    /// Event `tree_size` is not the one the checkpoint signed.
    HeadMismatch { number: i64, tree_size: i64 },
    /// The checkpoint covers events that are no longer there.
    Truncated { number: i64, tree_size: i64, events: i64 },
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadSignature { number } => write!(f, "checkpoint {number}: signature does not verify with the \
                audit public key (forged or changed)"),
            Self::RetiredKey { number } => write!(f, "checkpoint {number}: signed by an audit key that a newer key \
                had already replaced"),
            Self::Gap { expected, found } => write!(f, "checkpoint {expected} is missing (next checkpoint found is {found})"),
            Self::BrokenLink { number } => write!(f, "checkpoint {number}: does not link to the checkpoint before it"),
            Self::Backwards { number } => write!(f, "checkpoint {number}: covers fewer events or is older than the checkpoint before it"),
            Self::RootMismatch { number, tree_size } => {
                write!(f, "checkpoint {number}: events 1 to {tree_size} do not hash to its signed Merkle root (an \
                    event was changed, removed or reordered)")
            }
            Self::HeadMismatch { number, tree_size } => write!(f, "event {tree_size}: is not the event checkpoint {number} signed"),
            Self::Truncated { number, tree_size, events } => write!(
                f,
                "checkpoint {number} covers {tree_size} events but only {events} are there (events removed from the end)"
            ),
        }
    }
}

/// Checks a list of checkpoints on their own: signatures, numbering, links
/// and order. `first_prev` is the digest the first one must link to (the
/// zeros for checkpoint 1; a bundle that starts later names it). `keys` are
/// in the order they were made: once a newer key has signed, an older one
/// may not (whoever still holds a rotated key cannot extend the chain).
pub fn check_list(keys: &[VerifyingKey], list: &[Checkpoint], first_prev: Option<&str>) -> Result<(), CheckpointError> {
    let mut prev: Option<&Checkpoint> = None;
    let mut newest_key = 0;
    for cp in list {
        if !cp.signature_valid(keys) {
            return Err(CheckpointError::BadSignature { number: cp.number });
        }
        let rank = keys.iter().position(|k| key_id(k) == cp.key_id).unwrap_or_default();
        if rank < newest_key {
            return Err(CheckpointError::RetiredKey { number: cp.number });
        }
        newest_key = rank;
        match prev {
            None => {
                if let Some(expected) = first_prev {
                    if cp.prev_hash != expected {
                        return Err(CheckpointError::BrokenLink { number: cp.number });
                    }
                }
                if cp.number == 1 && cp.prev_hash != GENESIS_HASH {
                    return Err(CheckpointError::BrokenLink { number: cp.number });
                }
            }
            Some(p) => {
                if cp.number != p.number + 1 {
                    return Err(CheckpointError::Gap {
                        expected: p.number + 1,
                        found: cp.number,
                    });
                }
                if cp.prev_hash != p.digest() {
                    return Err(CheckpointError::BrokenLink { number: cp.number });
                }
                if cp.tree_size < p.tree_size || cp.at < p.at {
                    return Err(CheckpointError::Backwards { number: cp.number });
                }
            }
        }
        prev = Some(cp);
    }
    Ok(())
}

/// Why a subtree could not be fed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubtreeError {
    Misaligned,
    Checkpoint(CheckpointError),
}

/// Walks events in order alongside checkpoints sorted by number (already
/// passed through `check_list`), comparing each signed root with the root
/// of the events seen so far.
#[derive(Debug)]
pub struct RootChecker {
    frontier: Frontier,
    checkpoints: std::collections::VecDeque<Checkpoint>,
    matched: u64,
}

impl RootChecker {
    /// `frontier` covers the events before the first one pushed (empty when
    /// starting at event 1).
    pub fn new(frontier: Frontier, checkpoints: Vec<Checkpoint>) -> Self {
        let start = frontier.size() as i64;
        let checkpoints = checkpoints.into_iter().filter(|c| c.tree_size > start).collect();
        Self {
            frontier,
            checkpoints,
            matched: 0,
        }
    }

    /// Feeds the event numbered `seq` (the next one) with its stored hash.
    pub fn push(&mut self, seq: i64, event_hash: &str) -> Result<(), CheckpointError> {
        let leaf = merkle::leaf_from_hex(event_hash).unwrap_or([0; 32]);
        self.frontier.push_leaf(leaf);
        while let Some(cp) = self.checkpoints.front() {
            if cp.tree_size != seq {
                break;
            }
            if cp.head_hash != event_hash {
                return Err(CheckpointError::HeadMismatch {
                    number: cp.number,
                    tree_size: cp.tree_size,
                });
            }
            if hex::encode(self.frontier.root()) != cp.root {
                return Err(CheckpointError::RootMismatch {
                    number: cp.number,
                    tree_size: cp.tree_size,
                });
            }
            self.checkpoints.pop_front();
            self.matched += 1;
        }
        Ok(())
    }

    /// Events covered so far (those before the walk included).
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// Feeds the root of the next `len` events (an aligned perfect subtree)
    /// in place of the events. A checkpoint ending inside it cannot be
    /// checked and is passed over (not counted); one ending at its end is
    /// checked by root (its head event is not at hand).
    pub fn push_subtree(&mut self, len: u64, root: Hash) -> Result<(), SubtreeError> {
        self.frontier
            .push_subtree(len, root)
            .map_err(|_| SubtreeError::Misaligned)?;
        let size = self.frontier.size() as i64;
        while let Some(cp) = self.checkpoints.front() {
            if cp.tree_size > size {
                break;
            }
            if cp.tree_size == size {
                if hex::encode(self.frontier.root()) != cp.root {
                    return Err(SubtreeError::Checkpoint(CheckpointError::RootMismatch {
                        number: cp.number,
                        tree_size: cp.tree_size,
                    }));
                }
                self.matched += 1;
            }
            self.checkpoints.pop_front();
        }
        Ok(())
    }

    /// After the last event: a checkpoint still waiting covers events that
    /// are missing. Returns how many checkpoints were matched.
    pub fn finish(self) -> Result<u64, CheckpointError> {
        match self.checkpoints.front() {
            Some(cp) => Err(CheckpointError::Truncated {
                number: cp.number,
                tree_size: cp.tree_size,
                events: self.frontier.size() as i64,
            }),
            None => Ok(self.matched),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::{Action, Actor, Event, NewEvent, Outcome};

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn chain(n: i64) -> Vec<Event> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let e = NewEvent::new(Action::AccessCheck, Outcome::Success, Actor::default())
                    .target("n", seq)
                    .seal(seq, 1_000 + seq, &prev);
                prev.clone_from(&e.hash);
                e
            })
            .collect()
    }

    /// Checkpoints after events `sizes`, signed by `k`.
    fn checkpoints(k: &SigningKey, events: &[Event], sizes: &[usize]) -> Vec<Checkpoint> {
        let mut out: Vec<Checkpoint> = Vec::new();
        for &n in sizes {
            let leaves: Vec<Hash> = events[..n]
                .iter()
                .map(|e| merkle::leaf_from_hex(&e.hash).unwrap())
                .collect();
            let cp = Checkpoint::sign(
                k,
                out.last(),
                n as i64,
                &merkle::root(&leaves),
                &events[n - 1].hash,
                5_000 + n as i64,
            );
            out.push(cp);
        }
        out
    }

    fn walk(events: &[Event], cps: Vec<Checkpoint>) -> Result<u64, CheckpointError> {
        let mut rc = RootChecker::new(Frontier::new(), cps);
        for e in events {
            rc.push(e.seq, &e.hash)?;
        }
        rc.finish()
    }

    #[test]
    fn a_signed_chain_of_checkpoints_verifies() {
        let k = key(7);
        let events = chain(20);
        let cps = checkpoints(&k, &events, &[3, 3, 8, 20]);
        assert_eq!(cps[0].prev_hash, GENESIS_HASH);
        assert_eq!(cps[1].prev_hash, cps[0].digest());
        assert!(cps[0]
            .message()
            .starts_with("gatehouse-checkpoint-v1\nnumber 1\ntree_size 3\n"));
        check_list(&[k.verifying_key()], &cps, None).unwrap();
        assert_eq!(walk(&events, cps), Ok(4));
    }

    /// Checkpoints after events `sizes`, each signed by the key beside it.
    fn signed_by(events: &[Event], plan: &[(&SigningKey, usize)]) -> Vec<Checkpoint> {
        let mut out: Vec<Checkpoint> = Vec::new();
        for &(k, n) in plan {
            let leaves: Vec<Hash> = events[..n]
                .iter()
                .map(|e| merkle::leaf_from_hex(&e.hash).unwrap())
                .collect();
            out.push(Checkpoint::sign(
                k,
                out.last(),
                n as i64,
                &merkle::root(&leaves),
                &events[n - 1].hash,
                5_000 + n as i64,
            ));
        }
        out
    }

    #[test]
    fn after_a_rotation_old_checkpoints_verify_and_the_old_key_signs_no_more() {
        let (old, new) = (key(7), key(9));
        let keys = [old.verifying_key(), new.verifying_key()];
        let events = chain(12);
        let rotated = signed_by(&events, &[(&old, 3), (&old, 6), (&new, 9), (&new, 12)]);
        check_list(&keys, &rotated, None).unwrap();
        assert_eq!(walk(&events, rotated), Ok(4));
        // Whoever kept the old key signs the next checkpoint with it.
        let forged = signed_by(&events, &[(&old, 3), (&new, 6), (&old, 9)]);
        assert_eq!(
            check_list(&keys, &forged, None),
            Err(CheckpointError::RetiredKey { number: 3 })
        );
        // The order of the keys decides which is newer.
        let back = [new.verifying_key(), old.verifying_key()];
        assert_eq!(
            check_list(&back, &signed_by(&events, &[(&old, 3), (&new, 6)]), None),
            Err(CheckpointError::RetiredKey { number: 2 })
        );
    }

    #[test]
    fn a_forged_or_altered_checkpoint_is_refused() {
        let k = key(7);
        let events = chain(10);
        let mut cps = checkpoints(&k, &events, &[4, 10]);
        // Signed by someone else.
        let forged = checkpoints(&key(8), &events, &[4, 10]);
        assert_eq!(
            check_list(&[k.verifying_key()], &forged, None),
            Err(CheckpointError::BadSignature { number: 1 })
        );
        // Any field changed after signing.
        cps[1].tree_size = 9;
        assert_eq!(
            check_list(&[k.verifying_key()], &cps, None),
            Err(CheckpointError::BadSignature { number: 2 })
        );
        let mut cps = checkpoints(&k, &events, &[4, 10]);
        cps[0].signature = "00".repeat(64);
        assert_eq!(
            check_list(&[k.verifying_key()], &cps, None),
            Err(CheckpointError::BadSignature { number: 1 })
        );
        cps[0].signature = "nonsense".into();
        assert_eq!(
            check_list(&[k.verifying_key()], &cps, None),
            Err(CheckpointError::BadSignature { number: 1 })
        );
    }

    #[test]
    fn removed_or_reordered_checkpoints_are_found() {
        let k = key(7);
        let events = chain(10);
        let cps = checkpoints(&k, &events, &[2, 4, 10]);
        let without_middle = vec![cps[0].clone(), cps[2].clone()];
        assert_eq!(
            check_list(&[k.verifying_key()], &without_middle, None),
            Err(CheckpointError::Gap { expected: 2, found: 3 })
        );
        // A properly signed list cannot link to the wrong predecessor.
        assert_eq!(
            check_list(&[k.verifying_key()], &cps[1..], Some(&cps[1].digest())),
            Err(CheckpointError::BrokenLink { number: 2 })
        );
        check_list(&[k.verifying_key()], &cps[1..], Some(&cps[0].digest())).unwrap();
    }

    #[test]
    fn changed_removed_or_cut_events_fail_the_roots() {
        let k = key(7);
        let events = chain(12);
        let cps = checkpoints(&k, &events, &[5, 12]);
        // An event rewritten with a consistent chain after it (an attacker
        // who recomputes every hash) no longer matches the signed root.
        let mut rewritten = chain(12);
        let mut prev = rewritten[2].prev_hash.clone();
        for e in rewritten.iter_mut().skip(2) {
            let mut n = NewEvent::new(Action::AccessCheck, Outcome::Success, Actor::default()).target("n", e.seq);
            if e.seq == 3 {
                n = n.reason("rewritten");
            }
            *e = n.seal(e.seq, e.at, &prev);
            prev.clone_from(&e.hash);
        }
        assert_eq!(
            walk(&rewritten, cps.clone()),
            Err(CheckpointError::HeadMismatch {
                number: 1,
                tree_size: 5
            })
        );
        // The tail cut off (and the head rewritten to match).
        assert_eq!(
            walk(&events[..9], cps.clone()),
            Err(CheckpointError::Truncated {
                number: 2,
                tree_size: 12,
                events: 9
            })
        );
        // Two events swapped: the head of checkpoint 1 still matches but the root does not.
        let mut swapped = events.clone();
        swapped.swap(1, 2);
        assert_eq!(
            walk(&swapped, cps),
            Err(CheckpointError::RootMismatch {
                number: 1,
                tree_size: 5
            })
        );
    }

    #[test]
    fn a_walk_can_start_from_a_frontier() {
        let k = key(7);
        let events = chain(9);
        let cps = checkpoints(&k, &events, &[3, 9]);
        let mut f = Frontier::new();
        for e in &events[..4] {
            f.push_leaf(merkle::leaf_from_hex(&e.hash).unwrap());
        }
        let mut rc = RootChecker::new(Frontier::from_nodes(f.nodes().to_vec()).unwrap(), cps);
        for e in &events[4..] {
            rc.push(e.seq, &e.hash).unwrap();
        }
        assert_eq!(rc.finish(), Ok(1), "checkpoint 1 lies before the walk");
    }

    #[test]
    fn public_keys_round_trip_through_hex() {
        let k = key(3).verifying_key();
        assert_eq!(public_key_from_hex(&hex::encode(k.as_bytes())), Some(k));
        assert_eq!(public_key_from_hex("abc"), None);
        assert_eq!(key_id(&k).len(), 16);
    }
}
