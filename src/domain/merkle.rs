//! A Merkle tree over the audit chain, as in RFC 6962 (Certificate
//! Transparency) section 2.1: leaf `i` is the hash of event `i + 1`, a leaf
//! hashes as SHA-256(0x00 || event hash) and an inner node as
//! SHA-256(0x01 || left || right). A signed checkpoint names the root over
//! every event so far; an inclusion proof shows that one event is under a
//! root without the other events.
//!
//! `Frontier` builds roots incrementally: it keeps the roots of the perfect
//! subtrees covering the leaves pushed so far (at most one per bit of the
//! count), so a root over millions of events needs memory for about 64
//! hashes. Whole aligned subtrees can be pushed in place of their leaves,
//! which is how an export names the events outside its range.
//!
//! `proofs` builds inclusion and consistency proofs from stored subtree
//! roots, for trees too large to read leaf by leaf.

use sha2::{Digest, Sha256};

pub mod proofs;

pub type Hash = [u8; 32];

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// A leaf: the event's 32-byte hash, prefixed 0x00.
pub fn leaf_hash(event_hash: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(event_hash);
    h.finalize().into()
}

/// A leaf from the hex form the chain stores; `None` when it is not 64 hex
/// digits (a damaged event).
pub fn leaf_from_hex(event_hash: &str) -> Option<Hash> {
    let mut raw = [0u8; 32];
    hex::decode_to_slice(event_hash, &mut raw).ok()?;
    Some(leaf_hash(&raw))
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Perfect subtrees covering leaves `0..size`, largest (leftmost) first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<(u64, Hash)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrontierError {
    #[error("a subtree of {len} leaves cannot start at leaf {at}")]
    Misaligned { at: u64, len: u64 },
}

impl Frontier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Leaves covered so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The subtrees as (leaf count, root), to resume from elsewhere.
    pub fn nodes(&self) -> &[(u64, Hash)] {
        &self.nodes
    }

    pub fn push_leaf(&mut self, leaf: Hash) {
        self.push_aligned(1, leaf);
    }

    /// Pushes the root of a perfect subtree of `len` leaves (a power of
    /// two) that starts at the current size, as if its leaves were pushed.
    pub fn push_subtree(&mut self, len: u64, root: Hash) -> Result<(), FrontierError> {
        if !len.is_power_of_two() || !self.size.is_multiple_of(len) {
            return Err(FrontierError::Misaligned { at: self.size, len });
        }
        self.push_aligned(len, root);
        Ok(())
    }

    /// Like `push_leaf`, and tells `done` of every perfect subtree the
    /// leaf completes, as (first leaf, leaf count, root), smallest first
    /// (the leaf itself included): how a store of interior nodes is kept.
    pub fn push_leaf_reporting(&mut self, leaf: Hash, done: impl FnMut(u64, u64, &Hash)) {
        self.push_reporting(1, leaf, done);
    }

    fn push_aligned(&mut self, len: u64, root: Hash) {
        self.push_reporting(len, root, |_, _, _| {});
    }

    fn push_reporting(&mut self, len: u64, root: Hash, mut done: impl FnMut(u64, u64, &Hash)) {
        self.size += len;
        let mut node = (len, root);
        done(self.size - len, len, &root);
        while let Some(&(top_len, top)) = self.nodes.last() {
            if top_len != node.0 {
                break;
            }
            self.nodes.pop();
            node = (top_len * 2, node_hash(&top, &node.1));
            done(self.size - node.0, node.0, &node.1);
        }
        self.nodes.push(node);
    }

    /// Resumes from subtrees as `nodes` returned them; `None` when they do
    /// not describe a frontier (sizes not strictly decreasing powers of two).
    pub fn from_nodes(nodes: Vec<(u64, Hash)>) -> Option<Self> {
        let ok = nodes.iter().all(|(n, _)| n.is_power_of_two()) && nodes.windows(2).all(|w| w[0].0 > w[1].0);
        ok.then(|| Self {
            size: nodes.iter().map(|(n, _)| n).sum(),
            nodes,
        })
    }

    /// The subtrees as (first leaf, leaf count, root), left to right.
    pub fn positioned(&self) -> Vec<(u64, u64, Hash)> {
        let mut at = 0;
        self.nodes
            .iter()
            .map(|&(len, h)| {
                at += len;
                (at - len, len, h)
            })
            .collect()
    }

    /// The RFC 6962 root of the leaves covered so far.
    pub fn root(&self) -> Hash {
        let mut iter = self.nodes.iter().rev();
        let Some(&(_, mut acc)) = iter.next() else {
            return empty_root();
        };
        for (_, left) in iter {
            acc = node_hash(left, &acc);
        }
        acc
    }
}

/// The root over `leaves`, by the RFC's recursive definition (reference for
/// tests and small trees).
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The largest power of two smaller than `n` (n >= 2).
fn split(n: usize) -> usize {
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The audit path of leaf `index` in the tree over `leaves` (RFC 6962
/// section 2.1.1), nearest the leaf first.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    path_into(leaves, index, &mut path);
    Some(path)
}

fn path_into(leaves: &[Hash], index: usize, out: &mut Vec<Hash>) {
    if leaves.len() <= 1 {
        return;
    }
    let k = split(leaves.len());
    if index < k {
        path_into(&leaves[..k], index, out);
        out.push(root(&leaves[k..]));
    } else {
        path_into(&leaves[k..], index - k, out);
        out.push(root(&leaves[..k]));
    }
}

/// Checks an audit path (RFC 9162 section 2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, tree_size: u64, path: &[Hash], expected_root: &Hash) -> bool {
    if index >= tree_size {
        return false;
    }
    let (mut fn_, mut sn) = (index, tree_size - 1);
    let mut r = *leaf;
    for p in path {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && &r == expected_root
}

/// Splits leaves `start..end` into the aligned perfect subtrees a
/// `Frontier` at `start` accepts, as (first leaf, leaf count), left to right.
pub fn aligned_ranges(start: u64, end: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        let mut len = if at == 0 {
            1u64 << 62
        } else {
            1u64 << at.trailing_zeros()
        };
        while at + len > end {
            len >>= 1;
        }
        out.push((at, len));
        at += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(&Sha256::digest(i.to_le_bytes()).into()))
            .collect()
    }

    #[test]
    fn matches_the_rfc_6962_reference_vectors() {
        // Certificate Transparency's test vectors: leaves are the hashes of
        // these inputs, roots as published in the reference implementation.
        let inputs: [&[u8]; 8] = [
            b"",
            &[0x00],
            &[0x10],
            &[0x20, 0x21],
            &[0x30, 0x31],
            &[0x40, 0x41, 0x42, 0x43],
            &[0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            &[
                0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f,
            ],
        ];
        let ls: Vec<Hash> = inputs
            .iter()
            .map(|d| {
                let mut h = Sha256::new();
                h.update([0u8]);
                h.update(d);
                h.finalize().into()
            })
            .collect();
        let expected = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let mut f = Frontier::new();
        for (i, l) in ls.iter().enumerate() {
            f.push_leaf(*l);
            assert_eq!(hex::encode(f.root()), expected[i], "root of {} leaves", i + 1);
            assert_eq!(hex::encode(root(&ls[..=i])), expected[i]);
        }
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn the_frontier_agrees_with_the_definition_for_every_size() {
        let ls = leaves(70);
        let mut f = Frontier::new();
        for n in 1..=70 {
            f.push_leaf(ls[n - 1]);
            assert_eq!(f.root(), root(&ls[..n]), "size {n}");
            assert!(f.nodes().len() <= 7);
        }
    }

    #[test]
    fn every_proof_verifies_and_a_wrong_one_does_not() {
        for n in 1..=33usize {
            let ls = leaves(n);
            let r = root(&ls);
            for i in 0..n {
                let p = inclusion_proof(&ls, i).unwrap();
                assert!(verify_inclusion(&ls[i], i as u64, n as u64, &p, &r), "leaf {i} of {n}");
                // Another leaf, another index or another root fail. (The tree
                // size is bound by the signed checkpoint, not by the path.)
                assert!(!verify_inclusion(&ls[(i + 1) % n], i as u64, n as u64, &p, &r) || n == 1);
                if n > 1 {
                    assert!(!verify_inclusion(&ls[i], ((i + 1) % n) as u64, n as u64, &p, &r));
                }
                assert!(!verify_inclusion(&ls[i], i as u64, n as u64, &p, &empty_root()));
                if let Some(first) = p.first() {
                    let mut bad = p.clone();
                    bad[0] = node_hash(first, first);
                    assert!(!verify_inclusion(&ls[i], i as u64, n as u64, &bad, &r));
                }
            }
            assert!(inclusion_proof(&ls, n).is_none());
        }
    }

    #[test]
    fn subtrees_stand_in_for_their_leaves() {
        let ls = leaves(45);
        for start in 0..45u64 {
            for end in start..=45u64 {
                let mut f = Frontier::new();
                for l in &ls[..start as usize] {
                    f.push_leaf(*l);
                }
                for (at, len) in aligned_ranges(start, end) {
                    let sub = root(&ls[at as usize..(at + len) as usize]);
                    f.push_subtree(len, sub).unwrap();
                }
                assert_eq!(f.size(), end);
                assert_eq!(f.root(), root(&ls[..end as usize]), "{start}..{end}");
                // And a frontier resumes from its nodes.
                assert_eq!(Frontier::from_nodes(f.nodes().to_vec()).unwrap(), f);
            }
        }
        let mut f = Frontier::new();
        f.push_leaf(ls[0]);
        assert_eq!(
            f.push_subtree(2, ls[1]),
            Err(FrontierError::Misaligned { at: 1, len: 2 })
        );
        assert_eq!(
            f.push_subtree(3, ls[1]),
            Err(FrontierError::Misaligned { at: 1, len: 3 })
        );
        assert!(Frontier::from_nodes(vec![(1, ls[0]), (2, ls[1])]).is_none());
        assert!(Frontier::from_nodes(vec![(3, ls[0])]).is_none());
    }

    #[test]
    fn pushing_reports_every_perfect_subtree_once_with_its_root() {
        let ls = leaves(37);
        let mut f = Frontier::new();
        let mut seen = Vec::new();
        for l in &ls {
            f.push_leaf_reporting(*l, |at, len, h| seen.push((at, len, *h)));
        }
        // Every aligned perfect subtree inside 37 leaves, and nothing else.
        let mut expected = Vec::new();
        for bits in 0..6 {
            let len = 1u64 << bits;
            for at in (0..37u64).step_by(len as usize).filter(|at| at + len <= 37) {
                expected.push((at, len, root(&ls[at as usize..(at + len) as usize])));
            }
        }
        seen.sort_by_key(|(at, len, _)| (*len, *at));
        assert_eq!(seen, expected);
        assert_eq!(f.root(), root(&ls));
        assert_eq!(
            f.positioned(),
            vec![(0, 32, root(&ls[..32])), (32, 4, root(&ls[32..36])), (36, 1, ls[36])]
        );
    }

    #[test]
    fn leaves_come_from_stored_hex() {
        let h = "ab".repeat(32);
        assert_eq!(leaf_from_hex(&h), Some(leaf_hash(&[0xab; 32])));
        assert_eq!(leaf_from_hex("zz"), None);
        assert_eq!(leaf_from_hex(&"ab".repeat(31)), None);
    }
}
