//! Subtree hashes and subtree consistency proofs against the accumulated test vectors the
//! Merkle Tree Certificates draft publishes (draft-ietf-plants-merkle-tree-certs, appendix
//! "Subtree Test Vectors"): every valid `[start, end)` over trees of up to 130 leaves
//! `d[i] = i` (one byte), each output line fed to one rolling SHA-256.

use pgext_log::{
    Hash, StoredHashes, is_valid_subtree, leaf_hash, subtree_consistency_proof, subtree_hash,
    tree_hash, verify_subtree_consistency,
};
use sha2::{Digest, Sha256};

/// The draft's published final hashes.
const SUBTREE_HASHES: &str = "b82806ad4265bb151c1119c0f4db437bb4d1a1f887b3a7fba1cd4ebf552e3e81";
const SUBTREE_CONSISTENCY: &str =
    "10fa99b37bf9bf9ffa26b412fbd98bd75363256d0b75d61bc4538b9c9c5a0a74";

fn leaves(n: u64) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&[i as u8])).collect()
}

#[test]
fn subtree_hashes_match_the_drafts_accumulated_vector() {
    let all = leaves(130);
    let mut h = Sha256::new();
    for end in 0..=130u64 {
        for start in 0..=end {
            if is_valid_subtree(start, end) {
                let hash = subtree_hash(&all[start as usize..end as usize]);
                h.update(format!("[{start}, {end}) {}\n", hash.to_hex()));
            }
        }
    }
    assert_eq!(pgext_log::hex(&h.finalize()), SUBTREE_HASHES);
}

#[test]
fn subtree_consistency_proofs_match_the_drafts_accumulated_vector() {
    let all = leaves(130);
    let mut h = Sha256::new();
    let mut checked = 0;
    for n in 0..=130u64 {
        let mut tree = StoredHashes::new();
        all[..n as usize].iter().for_each(|l| tree.append(*l));
        let root = tree_hash(n, &tree).unwrap();
        for end in 0..=n {
            for start in 0..=end {
                if !is_valid_subtree(start, end) {
                    continue;
                }
                let proof = subtree_consistency_proof(start, end, n, &tree).unwrap();
                let mut line = format!("[{start}, {end}) {n}");
                for p in &proof {
                    line.push(' ');
                    line.push_str(&p.to_hex());
                }
                line.push('\n');
                h.update(line);
                // The verifier accepts what the published generator gives.
                let node = subtree_hash(&all[start as usize..end as usize]);
                verify_subtree_consistency(start, end, n, &proof, &node, &root)
                    .unwrap_or_else(|e| panic!("[{start}, {end}) in {n}: {e}"));
                checked += 1;
            }
        }
    }
    assert!(checked > 10_000, "only {checked} proofs");
    assert_eq!(pgext_log::hex(&h.finalize()), SUBTREE_CONSISTENCY);
}
