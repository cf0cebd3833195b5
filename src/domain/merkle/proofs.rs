//! Proofs for trees of millions of leaves (RFC 9162 section 2.1), built
//! from the roots of the perfect aligned subtrees they need: O(log n)
//! roots, which a store of subtree roots answers without reading every
//! event hash. Inclusion proofs (2.1.3.1), consistency proofs (2.1.4.1)
//! and the RFC's check of a consistency proof (2.1.4.2).

use super::{node_hash, Hash};
use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;

/// Roots of perfect subtrees: `root(start, len)` for `len` a power of two
/// and `start` a multiple of `len`, inside the tree being proved.
pub trait Subtrees {
    type Error;
    fn root(&mut self, start: u64, len: u64) -> Result<Hash, Self::Error>;
}

/// Why no proof can be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError<E> {
    #[error("sizes {0} and {1} do not name two trees, the first no larger than the second")]
    Sizes(u64, u64),
    #[error("leaf {0} is not in a tree of {1} leaves")]
    Index(u64, u64),
    #[error(transparent)]
    Source(E),
}

/// The largest power of two smaller than `n` (n >= 2).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// MTH(D[start..start+size]) for a range the RFC's recursions ask for:
/// `start` is a multiple of a power of two at least `size`, so the range's
/// tree is its perfect subtrees, largest first, folded from the right.
fn range_root<S: Subtrees>(s: &mut S, start: u64, size: u64) -> Result<Hash, S::Error> {
    let mut parts = Vec::with_capacity(64);
    let mut at = start;
    for bit in (0..64).rev() {
        let len = 1u64 << bit;
        if size & len != 0 {
            debug_assert!(at.is_multiple_of(len), "misaligned range {start}+{size}");
            parts.push((at, len));
            at += len;
        }
    }
    let mut iter = parts.into_iter().rev();
    let Some((a, l)) = iter.next() else {
        return Ok(super::empty_root());
    };
    let mut acc = s.root(a, l)?;
    for (a, l) in iter {
        acc = node_hash(&s.root(a, l)?, &acc);
    }
    Ok(acc)
}

/// The audit path of leaf `index` in the tree of `size` leaves, nearest
/// the leaf first (RFC 9162 section 2.1.3.1).
pub fn inclusion<S: Subtrees>(s: &mut S, index: u64, size: u64) -> Result<Vec<Hash>, ProofError<S::Error>> {
    if index >= size {
        return Err(ProofError::Index(index, size));
    }
    // The path from the top down, then reversed.
    let mut top_down = Vec::new();
    let (mut off, mut len, mut i) = (0u64, size, index);
    while len > 1 {
        let k = split(len);
        if i < k {
            top_down.push(range_root(s, off + k, len - k).map_err(ProofError::Source)?);
            len = k;
        } else {
            top_down.push(range_root(s, off, k).map_err(ProofError::Source)?);
            off += k;
            i -= k;
            len -= k;
        }
    }
    top_down.reverse();
    Ok(top_down)
}

/// The proof that the tree of `second` leaves extends the tree of `first`
/// leaves (RFC 9162 section 2.1.4.1): empty when the sizes are equal.
pub fn consistency<S: Subtrees>(s: &mut S, first: u64, second: u64) -> Result<Vec<Hash>, ProofError<S::Error>> {
    if first == 0 || first > second {
        return Err(ProofError::Sizes(first, second));
    }
    // SUBPROOF(m, D[off..off+len], complete), unrolled: the nodes are
    // found top down and the proof lists them bottom up.
    let mut top_down = Vec::new();
    let (mut m, mut off, mut len, mut complete) = (first, 0u64, second, true);
    while m != len {
        let k = split(len);
        if m <= k {
            top_down.push(range_root(s, off + k, len - k).map_err(ProofError::Source)?);
            len = k;
        } else {
            top_down.push(range_root(s, off, k).map_err(ProofError::Source)?);
            m -= k;
            off += k;
            len -= k;
            complete = false;
        }
    }
    if !complete {
        top_down.push(range_root(s, off, len).map_err(ProofError::Source)?);
    }
    top_down.reverse();
    Ok(top_down)
}

/// Checks a consistency proof between the trees of `first` and `second`
/// leaves with those roots (RFC 9162 section 2.1.4.2).
pub fn verify_consistency(first: u64, second: u64, first_root: &Hash, second_root: &Hash, proof: &[Hash]) -> bool {
    if first == 0 || first > second {
        return false;
    }
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    if proof.is_empty() {
        return false;
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let (mut fn_, mut sn) = (first - 1, second - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    &fr == first_root && &sr == second_root && sn == 0
}

/// A proof to build: what a server is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// The audit path of leaf `index` in the tree of `size` leaves.
    Inclusion { index: u64, size: u64 },
    /// The proof that the tree of `second` leaves extends that of `first`.
    Consistency { first: u64, second: u64 },
}

impl Ask {
    pub fn run<S: Subtrees>(self, s: &mut S) -> Result<Vec<Hash>, ProofError<S::Error>> {
        match self {
            Ask::Inclusion { index, size } => inclusion(s, index, size),
            Ask::Consistency { first, second } => consistency(s, first, second),
        }
    }

    /// The subtrees its proof reads, as (first leaf, leaf count): a store
    /// fetches them together, then the proof runs on `Known`. (Which
    /// subtrees a proof reads never depends on their roots.)
    pub fn wanted(self) -> Result<BTreeSet<(u64, u64)>, ProofError<Infallible>> {
        let mut w = Wanted(BTreeSet::new());
        self.run(&mut w)?;
        Ok(w.0)
    }
}

/// Records what is read, answering zeros.
struct Wanted(BTreeSet<(u64, u64)>);

impl Subtrees for Wanted {
    type Error = Infallible;
    fn root(&mut self, start: u64, len: u64) -> Result<Hash, Infallible> {
        self.0.insert((start, len));
        Ok([0; 32])
    }
}

/// Subtree roots already fetched, by (first leaf, leaf count).
#[derive(Debug, Default, Clone)]
pub struct Known(pub HashMap<(u64, u64), Hash>);

/// A subtree a proof needed that was not fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the root of leaves {0}..{0}+{1} is not at hand")]
pub struct Missing(pub u64, pub u64);

impl Subtrees for Known {
    type Error = Missing;
    fn root(&mut self, start: u64, len: u64) -> Result<Hash, Missing> {
        self.0.get(&(start, len)).copied().ok_or(Missing(start, len))
    }
}

/// Heights of the interior nodes a store keeps: multiples of this.
pub const STRIDE: u32 = 4;

/// Where the root of the perfect subtree `start..start+len` comes from in
/// a store that keeps nodes of heights 0 (the leaves), STRIDE, 2*STRIDE,
/// ...: (height, first index at that height, how many), at most
/// 2^(STRIDE-1) nodes whose root over them (`super::root`) is the answer.
pub fn stored_parts(start: u64, len: u64) -> (u32, u64, u64) {
    debug_assert!(len.is_power_of_two() && start.is_multiple_of(len));
    let h = len.trailing_zeros();
    let stored = h - h % STRIDE;
    (stored, start >> stored, 1 << (h - stored))
}

/// Whether a store keeps the node of this perfect subtree (height a
/// positive multiple of STRIDE; the leaves are kept elsewhere).
pub fn kept(len: u64) -> bool {
    let h = len.trailing_zeros();
    len.is_power_of_two() && h > 0 && h.is_multiple_of(STRIDE)
}

#[cfg(test)]
mod tests {
    use super::super::{inclusion_proof, leaf_hash, root, verify_inclusion};
    use super::*;

    /// Subtree roots computed from the leaves, counting the reads.
    struct Leaves<'a> {
        leaves: &'a [Hash],
        asked: usize,
    }

    impl Subtrees for Leaves<'_> {
        type Error = ();
        fn root(&mut self, start: u64, len: u64) -> Result<Hash, ()> {
            assert!(
                len.is_power_of_two() && start.is_multiple_of(len),
                "asked for {start}+{len}"
            );
            self.asked += 1;
            Ok(root(&self.leaves[start as usize..(start + len) as usize]))
        }
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&[i as u8 ^ 0x5a; 32])).collect()
    }

    #[test]
    fn consistency_proofs_verify_for_every_pair_of_sizes_up_to_64() {
        let all = leaves(64);
        for second in 1..=64u64 {
            let l = &all[..second as usize];
            let second_root = root(l);
            for first in 1..=second {
                let first_root = root(&l[..first as usize]);
                let mut src = Leaves { leaves: l, asked: 0 };
                let proof = consistency(&mut src, first, second).unwrap();
                assert!(
                    verify_consistency(first, second, &first_root, &second_root, &proof),
                    "{first} -> {second}"
                );
                assert!(src.asked <= 2 * 64, "logarithmic in reads: {}", src.asked);
                if first < second {
                    // Any change is refused: a node, one missing or extra,
                    // the sizes swapped, the roots swapped. (The sizes
                    // themselves are bound by the checkpoints' signatures.)
                    let mut bad = proof.clone();
                    bad[0][0] ^= 1;
                    assert!(!verify_consistency(first, second, &first_root, &second_root, &bad));
                    assert!(!verify_consistency(
                        first,
                        second,
                        &first_root,
                        &second_root,
                        &proof[1..]
                    ));
                    let mut longer = proof.clone();
                    longer.push([7; 32]);
                    assert!(!verify_consistency(first, second, &first_root, &second_root, &longer));
                    assert!(!verify_consistency(second, first, &second_root, &first_root, &proof));
                    assert!(!verify_consistency(first, second, &second_root, &first_root, &proof));
                } else {
                    assert!(proof.is_empty());
                }
            }
        }
    }

    #[test]
    fn inclusion_proofs_from_subtrees_match_the_reference() {
        let all = leaves(70);
        for size in 1..=70u64 {
            let l = &all[..size as usize];
            let r = root(l);
            for i in 0..size {
                let mut src = Leaves { leaves: l, asked: 0 };
                let path = inclusion(&mut src, i, size).unwrap();
                assert_eq!(Some(path.clone()), inclusion_proof(l, i as usize), "{i} of {size}");
                assert!(verify_inclusion(&l[i as usize], i, size, &path, &r));
            }
        }
        let mut src = Leaves { leaves: &all, asked: 0 };
        assert_eq!(inclusion(&mut src, 70, 70), Err(ProofError::Index(70, 70)));
        assert_eq!(consistency(&mut src, 0, 3), Err(ProofError::Sizes(0, 3)));
        assert_eq!(consistency(&mut src, 4, 3), Err(ProofError::Sizes(4, 3)));
    }

    #[test]
    fn proofs_run_on_the_subtrees_they_said_they_want() {
        let all = leaves(50);
        for ask in [
            Ask::Inclusion { index: 7, size: 50 },
            Ask::Consistency { first: 13, second: 50 },
            Ask::Consistency { first: 32, second: 50 },
        ] {
            let mut known = Known::default();
            for (start, len) in ask.wanted().unwrap() {
                known
                    .0
                    .insert((start, len), root(&all[start as usize..(start + len) as usize]));
            }
            let mut direct = Leaves { leaves: &all, asked: 0 };
            assert_eq!(ask.run(&mut known).unwrap(), ask.run(&mut direct).unwrap(), "{ask:?}");
            // One subtree fewer and the proof cannot be made.
            let some = *known.0.keys().next().unwrap();
            known.0.remove(&some);
            assert_eq!(ask.run(&mut known), Err(ProofError::Source(Missing(some.0, some.1))));
        }
        assert!(Ask::Inclusion { index: 3, size: 3 }.wanted().is_err());
    }

    #[test]
    fn a_store_of_every_fourth_height_answers_any_subtree_with_few_nodes() {
        assert_eq!(stored_parts(5, 1), (0, 5, 1));
        assert_eq!(stored_parts(8, 8), (0, 8, 8));
        assert_eq!(stored_parts(16, 16), (4, 1, 1));
        assert_eq!(stored_parts(64, 64), (4, 4, 4));
        assert_eq!(stored_parts(1 << 22, 1 << 22), (20, 4, 4));
        // The parts cover the subtree exactly, and each is kept.
        let all = leaves(256);
        for bits in 0..=8 {
            let len = 1u64 << bits;
            for start in (0..256).step_by(len as usize) {
                let (h, first, n) = stored_parts(start, len);
                assert!(n <= 8 && (first << h) == start && (n << h) == len);
                assert!(h == 0 || kept(1 << h));
                let parts: Vec<Hash> = (first..first + n)
                    .map(|i| root(&all[(i << h) as usize..((i + 1) << h) as usize]))
                    .collect();
                assert_eq!(root(&parts), root(&all[start as usize..(start + len) as usize]));
            }
        }
        assert!(kept(16) && kept(256) && kept(1 << 20));
        assert!(!kept(1) && !kept(8) && !kept(32) && !kept(48));
    }

    #[test]
    fn large_trees_need_few_subtree_roots() {
        /// Any subtree's root, made up: only the count of reads matters.
        struct Counting(usize);
        impl Subtrees for Counting {
            type Error = ();
            fn root(&mut self, start: u64, len: u64) -> Result<Hash, ()> {
                assert!(start.is_multiple_of(len));
                self.0 += 1;
                Ok([(start % 251) as u8; 32])
            }
        }
        for (first, second) in [(1_000_000, 5_000_000), (4_999_999, 5_000_000), (1 << 20, (1 << 22) + 3)] {
            let mut c = Counting(0);
            let proof = consistency(&mut c, first, second).unwrap();
            assert!(proof.len() <= 2 * 23, "{}", proof.len());
            assert!(c.0 <= 23 * 23, "{} reads", c.0);
            let mut c = Counting(0);
            let path = inclusion(&mut c, first - 1, second).unwrap();
            assert!(path.len() <= 23 && c.0 <= 23 * 23, "{} reads", c.0);
        }
    }
}
