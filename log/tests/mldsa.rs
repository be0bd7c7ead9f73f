//! ML-DSA-44 cosignatures (tlog-cosignature type 0x06) against vectors a second implementation
//! made (pyca/cryptography, `tests/tools/mldsa44.py`): the same public key and key id from the
//! same seed, the same `subtree/v1` message, its cosignatures verified here, and a flipped byte
//! anywhere in a signature refused.

use pgext_log::{Checkpoint, Error, KeyType, Note, SignerKey, VerifierKey, open, subtree_message};
use serde_json::Value;

use crate::{b64, hex, read};

fn vectors() -> Value {
    serde_json::from_slice(&read("ml-dsa-44/cosignatures.json")).unwrap()
}

#[test]
fn same_key_from_the_same_seed() {
    let v = vectors();
    let seed: [u8; 32] = hex(v["seed_hex"].as_str().unwrap()).try_into().unwrap();
    let ours = SignerKey::from_seed(v["name"].as_str().unwrap(), KeyType::MlDsa44, &seed).unwrap();
    assert_eq!(
        ours.verifier().public_key(),
        b64(v["public_key"].as_str().unwrap())
    );
    assert_eq!(
        format!("{:08x}", ours.verifier().key_id()),
        v["key_id"].as_str().unwrap()
    );
    assert_eq!(ours.verifier().to_string(), v["vkey"].as_str().unwrap());
    let parsed: VerifierKey = v["vkey"].as_str().unwrap().parse().unwrap();
    assert_eq!(parsed.kind(), KeyType::MlDsa44);
}

#[test]
fn same_message_and_their_cosignatures_verify() {
    let v = vectors();
    let vkey: VerifierKey = v["vkey"].as_str().unwrap().parse().unwrap();
    for case in v["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let time = case["time"].as_u64().unwrap();
        let cp = Checkpoint::parse(text).unwrap();
        let msg = subtree_message(vkey.name(), time, &cp.origin, (0, cp.size), &cp.root).unwrap();
        assert_eq!(msg, hex(case["message_hex"].as_str().unwrap()));
        let note = case["note"].as_str().unwrap();
        let opened = open(note.as_bytes(), std::slice::from_ref(&vkey)).unwrap();
        assert_eq!(opened.verified_by(&vkey).unwrap().time, Some(time));
    }
}

#[test]
fn a_flipped_byte_is_refused() {
    let v = vectors();
    let vkey: VerifierKey = v["vkey"].as_str().unwrap().parse().unwrap();
    let note = v["cases"][1]["note"].as_str().unwrap();
    let parsed = Note::parse(note.as_bytes()).unwrap();
    let sig = &parsed.signatures[0].sig;
    // The timestamp, the first, a middle and the last byte of the ML-DSA signature.
    for i in [0, 7, 8, 8 + 1210, sig.len() - 1] {
        let mut bad = parsed.clone();
        bad.signatures[0].sig[i] ^= 0x01;
        let e = open(&bad.to_bytes(), std::slice::from_ref(&vkey)).unwrap_err();
        assert!(matches!(e, Error::InvalidSignature { .. }), "byte {i}: {e}");
    }
    // The same signature on another tree, or by a name it was not made for, does not verify.
    let other = note.replacen("20852163", "20852164", 1);
    assert!(open(other.as_bytes(), std::slice::from_ref(&vkey)).is_err());
}

#[test]
fn our_cosignatures_verify_with_the_vector_key() {
    // Signing is checked against the second implementation in tests/tests/cosign.rs; here,
    // that what we sign opens under the key the vectors name.
    let v = vectors();
    let seed: [u8; 32] = hex(v["seed_hex"].as_str().unwrap()).try_into().unwrap();
    let ours = SignerKey::from_seed(v["name"].as_str().unwrap(), KeyType::MlDsa44, &seed).unwrap();
    let vkey: VerifierKey = v["vkey"].as_str().unwrap().parse().unwrap();
    let text = v["cases"][1]["text"].as_str().unwrap();
    let note = pgext_log::sign(text, &[&ours], 1_796_083_200).unwrap();
    let opened = open(note.as_bytes(), std::slice::from_ref(&vkey)).unwrap();
    assert_eq!(opened.verified_by(&vkey).unwrap().time, Some(1_796_083_200));
}
