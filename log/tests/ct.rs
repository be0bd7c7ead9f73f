//! Real proofs from Google's argon2020 CT log (size 961,984,011).

use pgext_log::{Error, leaf_hash, verify_consistency, verify_inclusion};
use serde_json::Value;

use crate::{b64, read, read_text};

fn json(rel: &str) -> Value {
    serde_json::from_slice(&read(&format!("ct-argon2020/{rel}"))).unwrap()
}

fn hashes(v: &Value) -> Vec<Vec<u8>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| b64(h.as_str().unwrap()))
        .collect()
}

#[test]
fn argon2020_inclusion_of_leaf_10000() {
    let sth = json("get-sth.json");
    let size = sth["tree_size"].as_u64().unwrap();
    let root = b64(sth["sha256_root_hash"].as_str().unwrap());
    let entry = json("get-entries-start-10000-end-10000.json");
    let leaf_input = b64(entry["entries"][0]["leaf_input"].as_str().unwrap());
    let p = json("get-proof-by-hash-leaf-10000.json");
    let index = p["leaf_index"].as_u64().unwrap();
    let path = hashes(&p["audit_path"]);
    assert_eq!(path.len(), 30);
    let leaf = leaf_hash(&leaf_input);
    verify_inclusion(index, size, leaf.as_ref(), &path, &root).unwrap();
    // Same proof, neighbouring index or one hash dropped: refused.
    assert!(verify_inclusion(index + 1, size, leaf.as_ref(), &path, &root).is_err());
    assert!(matches!(
        verify_inclusion(index, size, leaf.as_ref(), &path[..29], &root),
        Err(Error::InvalidProof(_))
    ));
}

#[test]
fn argon2020_consistency_3654490_to_961984011() {
    let sth = json("get-sth.json");
    let size2 = sth["tree_size"].as_u64().unwrap();
    let root2 = b64(sth["sha256_root_hash"].as_str().unwrap());
    let old = read_text("ct-argon2020/old-root-3654490.txt");
    let mut size1 = 0;
    let mut root1 = Vec::new();
    for line in old.lines() {
        if let Some(s) = line.strip_prefix("tree_size ") {
            size1 = s.trim().parse().unwrap();
        }
        if let Some(r) = line.strip_prefix("sha256_root_hash ") {
            root1 = b64(r.trim());
        }
    }
    assert_eq!(size1, 3_654_490);
    let proof = hashes(&json("get-sth-consistency-3654490-961984011.json")["consistency"]);
    verify_consistency(size1, size2, &proof, &root1, &root2).unwrap();
    let mut extra = proof.clone();
    extra.push(proof[0].clone());
    assert!(verify_consistency(size1, size2, &extra, &root1, &root2).is_err());
    assert!(verify_consistency(size1 + 1, size2, &proof, &root1, &root2).is_err());
}
