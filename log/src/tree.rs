//! The tree as C2SP tlog-tiles stores it: stored-hash indexing, hash readers, tree hashes and
//! proof construction.
//!
//! A *stored hash* is the root of a perfect subtree: hash `(level, n)` covers leaves
//! `[n·2^level, (n+1)·2^level)`. Stored hashes are numbered in the order an append-only log
//! creates them (leaf 0, leaf 1, their parent, leaf 2, …), so a tree of `n` leaves has exactly
//! [`stored_hash_count`]`(n)` of them and appending never renumbers one.

use crate::error::{Error, Result};
use crate::hash::{Hash, node_hash};

/// The stored-hash index of hash `(level, n)`.
pub fn stored_hash_index(level: u8, n: u64) -> u64 {
    // The hash is created right after the last leaf it covers, `nl`; before that leaf's own
    // hash there are 2·nl − popcount(nl) stored hashes, and the leaf's own hash is followed by
    // the `level` parents it completes.
    let nl = ((n + 1) << level) - 1;
    2 * nl - u64::from(nl.count_ones()) + u64::from(level)
}

/// The number of stored hashes in a tree of `n` leaves.
pub fn stored_hash_count(n: u64) -> u64 {
    2 * n - u64::from(n.count_ones())
}

/// The inverse of [`stored_hash_index`]: `(level, n)` of a stored-hash index.
pub fn split_stored_hash_index(index: u64) -> (u8, u64) {
    // Find the last leaf `m` whose own hash comes at or before `index`: leaf m's hash sits at
    // 2m − popcount(m), which is within log2(index) of index/2.
    let leaf_index = |m: u64| 2 * m - u64::from(m.count_ones());
    let mut m = index / 2;
    while leaf_index(m + 1) <= index {
        m += 1;
    }
    let level = (index - leaf_index(m)) as u8;
    (level, m >> level)
}

/// Reads stored hashes by index. A node implements it over its tile store; tests over memory.
pub trait HashReader {
    /// Returns the hashes at `indexes`, in the same order.
    ///
    /// # Errors
    /// Fails when a hash is not available or the underlying store fails.
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>>;
}

/// Appends the stored-hash indexes of the perfect subtrees that make up leaves `[lo, hi)`,
/// left to right. The range must be one RFC 6962 subtree (as every range in a proof is).
fn subtree_indexes(mut lo: u64, hi: u64, out: &mut Vec<u64>) {
    while lo < hi {
        let level = 63 - (hi - lo).leading_zeros();
        let k = 1u64 << level;
        debug_assert_eq!(lo & (k - 1), 0, "subtree [{lo}, {hi}) is not aligned");
        out.push(stored_hash_index(level as u8, lo >> level));
        lo += k;
    }
}

/// Folds perfect-subtree hashes (left to right) into the RFC 6962 hash of their union: the
/// rightmost pieces are the deepest.
fn fold_subtrees(hashes: &[Hash]) -> Hash {
    let mut iter = hashes.iter().rev();
    let Some(&last) = iter.next() else {
        return Hash::empty_root();
    };
    iter.fold(last, |acc, h| node_hash(h, &acc))
}

/// Largest power of two strictly below `n` (n ≥ 2): where RFC 6962 splits a tree of n leaves.
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// Reads the ranges' hashes in one batch and folds each range into its subtree hash.
pub(crate) fn range_hashes(ranges: &[(u64, u64)], reader: &impl HashReader) -> Result<Vec<Hash>> {
    let mut indexes = Vec::new();
    let mut counts = Vec::with_capacity(ranges.len());
    for &(lo, hi) in ranges {
        let before = indexes.len();
        subtree_indexes(lo, hi, &mut indexes);
        counts.push(indexes.len() - before);
    }
    let hashes = reader.read_hashes(&indexes)?;
    if hashes.len() != indexes.len() {
        return Err(Error::Read(
            format!("asked for {} hashes, got {}", indexes.len(), hashes.len()).into(),
        ));
    }
    let mut out = Vec::with_capacity(ranges.len());
    let mut at = 0;
    for c in counts {
        out.push(fold_subtrees(&hashes[at..at + c]));
        at += c;
    }
    Ok(out)
}

/// The root hash of the tree of the first `size` leaves.
///
/// # Errors
/// Fails when the reader does.
pub fn tree_hash(size: u64, reader: &impl HashReader) -> Result<Hash> {
    if size == 0 {
        return Ok(Hash::empty_root());
    }
    Ok(range_hashes(&[(0, size)], reader)?[0])
}

/// Builds the inclusion proof of leaf `index` in the tree of `size` leaves (RFC 6962 PATH),
/// hashes ordered from the leaf's sibling up to the root's child.
///
/// # Errors
/// Fails when `index >= size` or the reader fails.
pub fn inclusion_proof(index: u64, size: u64, reader: &impl HashReader) -> Result<Vec<Hash>> {
    if index >= size {
        return Err(Error::BadPosition(format!(
            "leaf {index} is not in a tree of size {size}"
        )));
    }
    // Walk from the root down, remembering the sibling range at each step; the proof lists
    // them bottom-up.
    let mut ranges = Vec::new();
    let (mut lo, mut hi) = (0, size);
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if index < lo + k {
            ranges.push((lo + k, hi));
            hi = lo + k;
        } else {
            ranges.push((lo, lo + k));
            lo += k;
        }
    }
    ranges.reverse();
    range_hashes(&ranges, reader)
}

/// Builds the consistency proof from the tree of `size1` leaves to the tree of `size2`
/// (RFC 6962 SUBPROOF(m, D[n], true)). Equal sizes give an empty proof.
///
/// # Errors
/// Fails when `size1` is 0 or greater than `size2`, or the reader fails.
pub fn consistency_proof(size1: u64, size2: u64, reader: &impl HashReader) -> Result<Vec<Hash>> {
    if size1 == 0 || size1 > size2 {
        return Err(Error::BadPosition(format!(
            "no consistency proof from size {size1} to size {size2}"
        )));
    }
    let mut ranges = Vec::new();
    let (mut lo, mut hi, mut m) = (0u64, size2, size1);
    let mut complete = true;
    // Iterative SUBPROOF: at each level either descend left (the old tree lies within the left
    // subtree) or right (the left subtree is complete in both trees).
    while m != hi - lo {
        let k = split_point(hi - lo);
        if m <= k {
            ranges.push((lo + k, hi));
            hi = lo + k;
        } else {
            ranges.push((lo, lo + k));
            lo += k;
            m -= k;
            complete = false;
        }
    }
    if !complete {
        ranges.push((lo, hi));
    }
    ranges.reverse();
    range_hashes(&ranges, reader)
}

/// A [`HashReader`] over a plain list of every stored hash, in index order. For tests and small
/// in-memory trees.
#[derive(Debug, Default, Clone)]
pub struct StoredHashes {
    hashes: Vec<Hash>,
}

impl StoredHashes {
    /// An empty tree.
    pub fn new() -> StoredHashes {
        StoredHashes::default()
    }

    /// Appends a leaf hash and the parent hashes it completes.
    pub fn append(&mut self, leaf: Hash) {
        let n = self.leaves();
        self.hashes.push(leaf);
        let mut h = leaf;
        let mut level = 0u8;
        let mut m = n;
        while m & 1 == 1 {
            let left = self.hashes[stored_hash_index(level, m - 1) as usize];
            h = node_hash(&left, &h);
            self.hashes.push(h);
            level += 1;
            m >>= 1;
        }
    }

    /// The number of leaves.
    pub fn leaves(&self) -> u64 {
        // Inverse of stored_hash_count over the sizes reachable by `append`.
        let total = self.hashes.len() as u64;
        let mut n = total / 2;
        while stored_hash_count(n + 1) <= total {
            n += 1;
        }
        n
    }
}

impl HashReader for StoredHashes {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>> {
        indexes
            .iter()
            .map(|&i| {
                self.hashes
                    .get(i as usize)
                    .copied()
                    .ok_or_else(|| Error::Read(format!("no stored hash {i}").into()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    #[test]
    fn index_order_matches_append_order() {
        // Leaves 0,1 then their parent, leaf 2, leaf 3, parent (1,1), parent (2,0), ...
        let expect = [
            (0, 0),
            (0, 1),
            (1, 0),
            (0, 2),
            (0, 3),
            (1, 1),
            (2, 0),
            (0, 4),
        ];
        for (i, &(level, n)) in expect.iter().enumerate() {
            assert_eq!(stored_hash_index(level, n), i as u64, "({level},{n})");
            assert_eq!(split_stored_hash_index(i as u64), (level, n), "index {i}");
        }
        for i in 0..100_000u64 {
            let (level, n) = split_stored_hash_index(i);
            assert_eq!(stored_hash_index(level, n), i);
        }
    }

    #[test]
    fn counts() {
        let mut t = StoredHashes::new();
        for i in 0..1000u32 {
            t.append(leaf_hash(&i.to_le_bytes()));
            assert_eq!(t.hashes.len() as u64, stored_hash_count(u64::from(i) + 1));
            assert_eq!(t.leaves(), u64::from(i) + 1);
        }
        let mut pieces = Vec::new();
        subtree_indexes(0, 7, &mut pieces);
        assert_eq!(
            pieces,
            [
                stored_hash_index(2, 0),
                stored_hash_index(1, 2),
                stored_hash_index(0, 6)
            ]
        );
    }
}
