//! Property tests: for random sizes up to 100,000, every proof built from tiles verifies, and
//! any bit flip, truncation or extra hash is refused.

use std::sync::OnceLock;

use pgext_log::{
    Hash, MemoryTiles, TileHashReader, consistency_proof, inclusion_proof, integrate_hashes,
    leaf_hash, node_hash, tree_hash, verify_consistency, verify_inclusion,
};
use proptest::prelude::*;

const MAX: u64 = 100_000;

fn leaves() -> &'static Vec<Hash> {
    static L: OnceLock<Vec<Hash>> = OnceLock::new();
    L.get_or_init(|| (0..MAX).map(|i| leaf_hash(&i.to_le_bytes())).collect())
}

/// One 100,000-leaf log, integrated in uneven batches. Its tiles serve every smaller tree too.
fn store() -> &'static MemoryTiles {
    static S: OnceLock<MemoryTiles> = OnceLock::new();
    S.get_or_init(|| {
        let mut store = MemoryTiles::new();
        let mut size = 0;
        for chunk in leaves().chunks(7_777) {
            let out = integrate_hashes(size, chunk, &store).unwrap();
            for (t, d) in out.tiles {
                store.put(t, d);
            }
            size = out.size;
        }
        store
    })
}

/// RFC 6962 MTH straight from its definition, for cross-checking roots.
fn mth(h: &[Hash]) -> Hash {
    match h.len() {
        0 => Hash::empty_root(),
        1 => h[0],
        n => {
            let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            node_hash(&mth(&h[..k]), &mth(&h[k..]))
        }
    }
}

fn root(size: u64) -> Hash {
    tree_hash(size, &TileHashReader::new(size, store())).unwrap()
}

fn mutations(proof: &[Hash], pick: usize, bit: u8) -> Vec<Vec<Hash>> {
    let mut out = Vec::new();
    if !proof.is_empty() {
        let mut flipped = proof.to_vec();
        let i = pick % proof.len();
        flipped[i].0[(pick / 7) % 32] ^= 1 << (bit % 8);
        out.push(flipped);
        out.push(proof[..proof.len() - 1].to_vec());
        out.push(proof[1..].to_vec());
    }
    let mut extra = proof.to_vec();
    extra.push(leaves()[pick % 1000]);
    out.push(extra);
    let mut front = vec![leaves()[pick % 1000]];
    front.extend_from_slice(proof);
    out.push(front);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn inclusion_proofs_verify_and_mutations_fail(size in 1..=MAX, at in any::<u64>(), pick in any::<usize>(), bit in any::<u8>()) {
        let index = at % size;
        let r = root(size);
        let proof = inclusion_proof(index, size, &TileHashReader::new(size, store())).unwrap();
        let leaf = leaves()[index as usize];
        prop_assert!(verify_inclusion(index, size, leaf.as_ref(), &proof, r.as_ref()).is_ok());
        for bad in mutations(&proof, pick, bit) {
            prop_assert!(verify_inclusion(index, size, leaf.as_ref(), &bad, r.as_ref()).is_err());
        }
        if size > 1 {
            let other = (index + 1 + (pick as u64 % (size - 1))) % size;
            prop_assert!(verify_inclusion(other, size, leaf.as_ref(), &proof, r.as_ref()).is_err());
        }
    }

    #[test]
    fn consistency_proofs_verify_and_mutations_fail(size2 in 1..=MAX, at in any::<u64>(), pick in any::<usize>(), bit in any::<u8>()) {
        let size1 = 1 + at % size2;
        let (r1, r2) = (root(size1), root(size2));
        let proof = consistency_proof(size1, size2, &TileHashReader::new(size2, store())).unwrap();
        prop_assert!(verify_consistency(size1, size2, &proof, r1.as_ref(), r2.as_ref()).is_ok());
        for bad in mutations(&proof, pick, bit) {
            prop_assert!(verify_consistency(size1, size2, &bad, r1.as_ref(), r2.as_ref()).is_err());
        }
        if size1 < size2 {
            prop_assert!(verify_consistency(size1, size2, &proof, r2.as_ref(), r2.as_ref()).is_err());
        }
    }

    #[test]
    fn roots_match_the_rfc_definition(size in 0..=4_000u64) {
        prop_assert_eq!(root(size), mth(&leaves()[..size as usize]));
    }
}
