//! The 196 transparency-dev/merkle proof vectors and the CT reference tree.

use std::path::Path;

use pgext_log::{
    Hash, StoredHashes, leaf_hash, node_hash, tree_hash, verify_consistency, verify_inclusion,
};
use serde_json::Value;

use crate::{b64, build_log, hex, read, vector_path};

fn json_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            json_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

fn bytes(v: &Value) -> Vec<u8> {
    v.as_str().map(b64).unwrap_or_default()
}

fn proof(v: &Value) -> Vec<Vec<u8>> {
    v.as_array()
        .map(|a| a.iter().map(bytes).collect())
        .unwrap_or_default()
}

fn run(kind: &str) -> (usize, usize) {
    let mut files = Vec::new();
    json_files(&vector_path(&format!("rfc6962/{kind}")), &mut files);
    files.sort();
    let mut errs = 0;
    for f in &files {
        let v: Value = serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
        let want_err = v["wantErr"].as_bool().unwrap();
        let got = if kind == "inclusion" {
            verify_inclusion(
                v["leafIdx"].as_u64().unwrap(),
                v["treeSize"].as_u64().unwrap(),
                &bytes(&v["leafHash"]),
                &proof(&v["proof"]),
                &bytes(&v["root"]),
            )
        } else {
            verify_consistency(
                v["size1"].as_u64().unwrap(),
                v["size2"].as_u64().unwrap(),
                &proof(&v["proof"]),
                &bytes(&v["root1"]),
                &bytes(&v["root2"]),
            )
        };
        assert_eq!(got.is_err(), want_err, "{}: {got:?}", f.display());
        errs += usize::from(want_err);
    }
    (files.len(), errs)
}

#[test]
fn all_proof_vectors_give_their_want_err() {
    let (inc, inc_err) = run("inclusion");
    let (con, con_err) = run("consistency");
    assert_eq!(inc + con, 196, "the suite has 196 vectors");
    // Most vectors are mutations that must fail; a handful are happy paths.
    assert_eq!((inc - inc_err) + (con - con_err), 12);
}

#[test]
fn ct_reference_tree_roots_for_sizes_0_to_8() {
    let v: Value = serde_json::from_slice(&read("rfc6962/leaves-and-roots.json")).unwrap();
    let inputs: Vec<Vec<u8>> = v["leaf_inputs_hex"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| hex(x.as_str().unwrap()))
        .collect();
    for (i, want) in v["leaf_hash_hex"].as_array().unwrap().iter().enumerate() {
        assert_eq!(
            leaf_hash(&inputs[i]).0.to_vec(),
            hex(want.as_str().unwrap())
        );
    }
    let mut stored = StoredHashes::new();
    for size in 0..=8usize {
        let want = hex(v["root_by_size_hex"][size.to_string()].as_str().unwrap());
        let (_, root) = build_log(&inputs[..size], 3);
        assert_eq!(root.0.to_vec(), want, "tiles, size {size}");
        assert_eq!(
            tree_hash(size as u64, &stored).unwrap().0.to_vec(),
            want,
            "stored hashes, size {size}"
        );
        if size < 8 {
            stored.append(leaf_hash(&inputs[size]));
        }
    }
    let u = &v["hasher_unit_vectors_hex"];
    assert_eq!(
        leaf_hash(b"L123456").0.to_vec(),
        hex(u["leaf('L123456')"].as_str().unwrap())
    );
    assert_eq!(
        leaf_hash(b"").0.to_vec(),
        hex(u["leaf('')"].as_str().unwrap())
    );
    // The unit vector hashes the raw strings as children: 0x01 ‖ "N123" ‖ "N456".
    let mut data = vec![0x01];
    data.extend_from_slice(b"N123N456");
    assert_eq!(
        pgext_log::sha256(&data).to_vec(),
        hex(u["node('N123','N456')"].as_str().unwrap())
    );
    assert_eq!(
        Hash::empty_root().0.to_vec(),
        hex(v["root_by_size_hex"]["0"].as_str().unwrap())
    );
    // node_hash is the same construction over 32-byte children.
    let a = leaf_hash(&inputs[0]);
    let b = leaf_hash(&inputs[1]);
    assert_eq!(
        node_hash(&a, &b).0.to_vec(),
        hex(v["root_by_size_hex"]["2"].as_str().unwrap())
    );
}
