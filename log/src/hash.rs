//! RFC 6962 hashing: SHA-256 with a 0x00 prefix for leaves and 0x01 for interior nodes.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

/// A SHA-256 hash: a leaf hash, an interior node hash or a tree root.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; 32]);

/// Size of a [`Hash`] in bytes.
pub const HASH_SIZE: usize = 32;

impl Hash {
    /// The root of the empty tree: SHA-256 of nothing (RFC 6962 §2.1).
    pub fn empty_root() -> Hash {
        Hash(Sha256::digest([]).into())
    }

    /// Parses exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Hash> {
        bytes.try_into().ok().map(Hash)
    }

    /// Parses standard, padded base64 of exactly 32 bytes, as checkpoints and proofs write it.
    pub fn from_base64(text: &str) -> Option<Hash> {
        let bytes = STANDARD.decode(text).ok()?;
        Hash::from_slice(&bytes)
    }

    /// Standard, padded base64.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl AsRef<[u8]> for Hash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// The hash of a leaf: SHA-256(0x00 ‖ entry).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(entry);
    Hash(h.finalize().into())
}

/// The hash of an interior node: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left.0);
    h.update(right.0);
    Hash(h.finalize().into())
}

/// Lower-case hex of any bytes (digests as entries and file names spell them).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of arbitrary bytes (artifact digests, key ids).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// The RFC 6962 hasher for `rs_merkle`, used only to hash inside one tile (at most 256 leaves),
/// where a small in-memory tree is the right tool. `rs_merkle`'s verifier is never used: it
/// accepts proofs with surplus hashes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rfc6962;

impl rs_merkle::Hasher for Rfc6962 {
    type Hash = [u8; 32];

    fn hash(data: &[u8]) -> [u8; 32] {
        leaf_hash(data).0
    }

    // A lone left child is promoted unchanged, which is exactly RFC 6962's split at the largest
    // power of two below n.
    fn concat_and_hash(left: &[u8; 32], right: Option<&[u8; 32]>) -> [u8; 32] {
        match right {
            Some(r) => node_hash(&Hash(*left), &Hash(*r)).0,
            None => *left,
        }
    }

    fn hash_size() -> usize {
        HASH_SIZE
    }
}

/// The RFC 6962 root of up to one tile's worth of already-hashed leaves (or of stored hashes of
/// one level), computed with `rs_merkle`.
pub(crate) fn small_tree_root(hashes: &[Hash]) -> Hash {
    if hashes.is_empty() {
        return Hash::empty_root();
    }
    let leaves: Vec<[u8; 32]> = hashes.iter().map(|h| h.0).collect();
    let tree = rs_merkle::MerkleTree::<Rfc6962>::from_leaves(&leaves);
    // from_leaves on a non-empty slice always has a root.
    Hash(tree.root().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_tree_matches_recursive_definition() {
        fn mth(h: &[Hash]) -> Hash {
            match h.len() {
                0 => Hash::empty_root(),
                1 => h[0],
                n => {
                    let k = 1 << (usize::BITS - 1 - (n - 1).leading_zeros());
                    node_hash(&mth(&h[..k]), &mth(&h[k..]))
                }
            }
        }
        let leaves: Vec<Hash> = (0..257u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for n in 0..=256 {
            assert_eq!(small_tree_root(&leaves[..n]), mth(&leaves[..n]), "n={n}");
        }
    }
}
