//! Subtrees and subtree consistency proofs, as the Merkle Tree Certificates draft defines them
//! (draft-ietf-plants-merkle-tree-certs, "Subtrees") and C2SP tlog-mirror uses them: every
//! `add-entries` package of up to 256 entries carries one, so a mirror authenticates each
//! package against the log's checkpoint before it keeps it.
//!
//! A subtree `[start, end)` is `MTH(D[start:end])` where `start` is a multiple of
//! `BIT_CEIL(end - start)`. Its consistency proof shows that its entries are those at the same
//! positions in the tree of `n` leaves.

use crate::error::{Error, Result};
use crate::hash::{Hash, node_hash, small_tree_root};
use crate::tree::{HashReader, range_hashes, split_point};

/// Whether `[start, end)` is a subtree: `start <= end` and `start` is a multiple of the
/// smallest power of two at least `end - start` (written so that no width overflows).
#[must_use]
pub fn is_valid_subtree(start: u64, end: u64) -> bool {
    if start > end {
        return false;
    }
    let size = end - start;
    if size > 1 << 63 {
        return start == 0;
    }
    start & (size.next_power_of_two() - 1) == 0
}

/// The RFC 6962 hash of a list of leaf hashes taken as a tree of its own: a subtree's hash when
/// the list is that subtree's leaves.
#[must_use]
pub fn subtree_hash(leaves: &[Hash]) -> Hash {
    small_tree_root(leaves)
}

/// Builds `SUBTREE_PROOF(start, end, D_size)`, hashes ordered as the draft lists them.
///
/// # Errors
/// [`Error::BadPosition`] when `[start, end)` is not a subtree of the tree of `size` leaves;
/// otherwise fails when the reader does.
pub fn subtree_consistency_proof(
    start: u64,
    end: u64,
    size: u64,
    reader: &impl HashReader,
) -> Result<Vec<Hash>> {
    if !is_valid_subtree(start, end) || end > size {
        return Err(Error::BadPosition(format!(
            "[{start}, {end}) is not a subtree of a tree of size {size}"
        )));
    }
    if start == end {
        return Ok(Vec::new());
    }
    // Walk from the root down: each step keeps the child holding the subtree and records the
    // other child's range; the proof lists them bottom-up.
    let mut ranges = Vec::new();
    let (mut lo, mut hi, mut from) = (0u64, size, start);
    let mut known = true;
    loop {
        if from == lo && end == hi {
            // The subtree's root is this node, known to the verifier unless a split above
            // made the proof start from a piece of it.
            if !known {
                ranges.push((lo, hi));
            }
            break;
        }
        let k = split_point(hi - lo);
        if end <= lo + k {
            ranges.push((lo + k, hi));
            hi = lo + k;
        } else if lo + k <= from {
            ranges.push((lo, lo + k));
            lo += k;
        } else {
            // The subtree spans both children (so it starts at lo): its left part is the whole
            // left child, and the proof goes on in the right child from its first leaf.
            ranges.push((lo, lo + k));
            lo += k;
            from = lo;
            known = false;
        }
    }
    ranges.reverse();
    range_hashes(&ranges, reader)
}

/// Verifies that `proof` shows the subtree `[start, end)` with hash `node` sits at those
/// positions in the tree of `size` leaves whose root is `root` (the draft's procedure).
///
/// # Errors
/// [`Error::BadPosition`] when `[start, end)` is not a subtree of that tree;
/// [`Error::InvalidProof`] when the proof is malformed or does not verify.
pub fn verify_subtree_consistency<P: AsRef<[u8]>>(
    start: u64,
    end: u64,
    size: u64,
    proof: &[P],
    node: &Hash,
    root: &Hash,
) -> Result<()> {
    let bad = |why: &str| Err(Error::InvalidProof(why.into()));
    if !is_valid_subtree(start, end) || end > size {
        return Err(Error::BadPosition(format!(
            "[{start}, {end}) is not a subtree of a tree of size {size}"
        )));
    }
    if start == end {
        if !proof.is_empty() {
            return bad("an empty subtree needs an empty proof");
        }
        if *node != Hash::empty_root() {
            return bad("an empty subtree's hash is the hash of the empty string");
        }
        return Ok(());
    }
    let mut hashes = Vec::with_capacity(proof.len());
    for (i, p) in proof.iter().enumerate() {
        match Hash::from_slice(p.as_ref()) {
            Some(h) => hashes.push(h),
            None => return bad(&format!("proof hash {i} is not 32 bytes")),
        }
    }
    let (mut f, mut s, mut t) = (start, end - 1, size - 1);
    if s == t {
        while f != s {
            (f, s, t) = (f >> 1, s >> 1, t >> 1);
        }
    } else {
        while f != s && s & 1 == 1 {
            (f, s, t) = (f >> 1, s >> 1, t >> 1);
        }
    }
    let mut rest = hashes.iter();
    let (mut fr, mut sr) = if f == s {
        (*node, *node)
    } else {
        match rest.next() {
            Some(h) => (*h, *h),
            None => return bad("the proof is empty but the subtree is not a node of the tree"),
        }
    };
    for c in rest {
        if t == 0 {
            return bad("the proof has more hashes than the tree needs");
        }
        if s & 1 == 1 || s == t {
            if f < s {
                fr = node_hash(c, &fr);
            }
            sr = node_hash(c, &sr);
            while s & 1 == 0 {
                (f, s, t) = (f >> 1, s >> 1, t >> 1);
            }
        } else {
            sr = node_hash(&sr, c);
        }
        (f, s, t) = (f >> 1, s >> 1, t >> 1);
    }
    if t != 0 {
        return bad("the proof has fewer hashes than the tree needs");
    }
    if fr != *node {
        return bad("the proof does not rebuild the subtree's hash");
    }
    if sr != *root {
        return bad("the proof does not rebuild the tree's root");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;
    use crate::tree::{StoredHashes, tree_hash};

    fn tree(n: u64) -> (StoredHashes, Vec<Hash>) {
        let mut t = StoredHashes::new();
        let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        leaves.iter().for_each(|h| t.append(*h));
        (t, leaves)
    }

    #[test]
    fn validity_follows_alignment() {
        assert!(is_valid_subtree(0, 7));
        assert!(is_valid_subtree(8, 13));
        assert!(is_valid_subtree(4, 8));
        assert!(!is_valid_subtree(4, 9));
        assert!(!is_valid_subtree(2, 7));
        assert!(is_valid_subtree(5, 5));
        assert!(!is_valid_subtree(6, 5));
        assert!(is_valid_subtree(0, (1 << 63) + 1));
        assert!(is_valid_subtree(1 << 63, u64::MAX));
        assert!(!is_valid_subtree(1, (1 << 63) + 2));
    }

    #[test]
    fn every_proof_verifies_and_a_changed_one_does_not() {
        for n in 1..40u64 {
            let (t, leaves) = tree(n);
            let root = tree_hash(n, &t).unwrap();
            for end in 1..=n {
                for start in 0..end {
                    if !is_valid_subtree(start, end) {
                        continue;
                    }
                    let node = subtree_hash(&leaves[start as usize..end as usize]);
                    let proof = subtree_consistency_proof(start, end, n, &t).unwrap();
                    verify_subtree_consistency(start, end, n, &proof, &node, &root)
                        .unwrap_or_else(|e| panic!("[{start}, {end}) in {n}: {e}"));
                    let other = leaf_hash(b"other");
                    assert!(
                        verify_subtree_consistency(start, end, n, &proof, &other, &root).is_err()
                    );
                    let mut longer = proof.clone();
                    longer.push(other);
                    assert!(
                        verify_subtree_consistency(start, end, n, &longer, &node, &root).is_err()
                    );
                    if let Some((_, shorter)) = proof.split_last() {
                        assert!(
                            verify_subtree_consistency(start, end, n, shorter, &node, &root)
                                .is_err()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn refuses_what_is_not_a_subtree() {
        let (t, _) = tree(10);
        assert!(subtree_consistency_proof(2, 7, 10, &t).is_err());
        assert!(subtree_consistency_proof(8, 12, 10, &t).is_err());
        let empty: [Hash; 0] = [];
        let root = tree_hash(10, &t).unwrap();
        assert!(verify_subtree_consistency(2, 7, 10, &empty, &root, &root).is_err());
        assert!(verify_subtree_consistency(3, 3, 10, &empty, &Hash::empty_root(), &root).is_ok());
    }
}
