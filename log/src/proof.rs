//! Strict verification of inclusion and consistency proofs, written from RFC 9162 §2.1.3.2 and
//! §2.1.4.2. Every hash of a proof must be used exactly once: surplus or missing hashes, hashes
//! that are not 32 bytes, and positions outside the tree are all rejected.
//!
//! Roots and leaf hashes are taken as byte strings, as the RFC treats them: a root that is not a
//! 32-byte SHA-256 value simply never matches a computed one.

use crate::error::{Error, Result};
use crate::hash::{Hash, node_hash};

fn bad(reason: impl Into<String>) -> Error {
    Error::InvalidProof(reason.into())
}

fn hash_of(bytes: &[u8], what: &str) -> Result<Hash> {
    Hash::from_slice(bytes).ok_or_else(|| bad(format!("{what} is {} bytes, not 32", bytes.len())))
}

/// Verifies that `leaf_hash` is leaf `index` of the tree of `size` leaves whose root is `root`.
///
/// # Errors
/// [`Error::BadPosition`] when `index >= size`; [`Error::InvalidProof`] when the proof has the
/// wrong length, a malformed hash, or does not lead to `root`.
pub fn verify_inclusion<P: AsRef<[u8]>>(
    index: u64,
    size: u64,
    leaf_hash: &[u8],
    proof: &[P],
    root: &[u8],
) -> Result<()> {
    if index >= size {
        return Err(Error::BadPosition(format!(
            "leaf {index} is not in a tree of size {size}"
        )));
    }
    let mut r = hash_of(leaf_hash, "leaf hash")?;
    let (mut fnode, mut snode) = (index, size - 1);
    for (i, p) in proof.iter().enumerate() {
        let p = hash_of(p.as_ref(), &format!("proof hash {i}"))?;
        if snode == 0 {
            return Err(bad(format!(
                "proof has {} hashes, more than the tree needs",
                proof.len()
            )));
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(&p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, &p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(bad(format!(
            "proof has {} hashes, fewer than the tree needs",
            proof.len()
        )));
    }
    if r.as_ref() != root {
        return Err(bad("computed root does not match"));
    }
    Ok(())
}

/// Verifies that the tree of `size1` leaves with root `root1` is a prefix of the tree of
/// `size2` leaves with root `root2`.
///
/// As in the published RFC 6962 vectors, `size1 = 0` is refused (a proof from the empty tree
/// proves nothing), and equal sizes need an empty proof and byte-equal roots.
///
/// # Errors
/// [`Error::BadPosition`] for `size1 > size2` or `size1 = 0`; [`Error::InvalidProof`] otherwise.
pub fn verify_consistency<P: AsRef<[u8]>>(
    size1: u64,
    size2: u64,
    proof: &[P],
    root1: &[u8],
    root2: &[u8],
) -> Result<()> {
    if size1 > size2 {
        return Err(Error::BadPosition(format!(
            "old size {size1} is larger than new size {size2}"
        )));
    }
    if size1 == 0 {
        return Err(Error::BadPosition(
            "consistency from the empty tree proves nothing".into(),
        ));
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(bad("equal sizes need an empty proof"));
        }
        if root1 != root2 {
            return Err(bad("equal sizes but different roots"));
        }
        return Ok(());
    }
    if proof.is_empty() {
        return Err(bad("empty proof between different sizes"));
    }
    let mut hashes = Vec::with_capacity(proof.len() + 1);
    // A power-of-two old tree is a complete left subtree: its root is the proof's first hash.
    if size1.is_power_of_two() {
        hashes.push(hash_of(root1, "old root")?);
    }
    for (i, p) in proof.iter().enumerate() {
        hashes.push(hash_of(p.as_ref(), &format!("proof hash {i}"))?);
    }
    let (mut fnode, mut snode) = (size1 - 1, size2 - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (hashes[0], hashes[0]);
    for c in &hashes[1..] {
        if snode == 0 {
            return Err(bad(format!(
                "proof has {} hashes, more than the trees need",
                proof.len()
            )));
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(bad(format!(
            "proof has {} hashes, fewer than the trees need",
            proof.len()
        )));
    }
    if fr.as_ref() != root1 {
        return Err(bad("computed old root does not match"));
    }
    if sr.as_ref() != root2 {
        return Err(bad("computed new root does not match"));
    }
    Ok(())
}
