//! A log built by the node's store gives tlog-proof files the client verifies offline.

use pgext_log::{
    Checkpoint, KeyType, ProofFile, SignerKey, TileHashReader, inclusion_proof, integrate, sha256,
    sign,
};
use pgext_node::origin::store::Store;

#[test]
fn node_store_proofs_verify_in_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let entries: Vec<Vec<u8>> = (0..300u32)
        .map(|i| format!("release {i}").into_bytes())
        .collect();
    let batch = integrate(0, &entries, &store).unwrap();
    store.commit(&batch.tiles, &[]).unwrap();
    let key = SignerKey::from_seed(
        "registry.test/log",
        KeyType::Ed25519,
        &sha256(b"test log key"),
    )
    .unwrap();
    let note = sign(
        &Checkpoint::new("registry.test/log", batch.size, batch.root).to_text(),
        &[&key],
        0,
    )
    .unwrap();
    let proof = inclusion_proof(123, batch.size, &TileHashReader::new(batch.size, &store)).unwrap();
    let file = ProofFile {
        extra: None,
        index: 123,
        proof,
        checkpoint: note.into_bytes(),
    }
    .to_bytes();

    let signed = pgext::verify_entry_proof(&entries[123], &file, key.verifier()).unwrap();
    assert_eq!(signed.checkpoint.size, 300);
    // Another entry at that index, or another log key, is refused.
    assert!(pgext::verify_entry_proof(&entries[124], &file, key.verifier()).is_err());
    let other =
        SignerKey::from_seed("registry.test/log", KeyType::Ed25519, &sha256(b"other")).unwrap();
    assert!(pgext::verify_entry_proof(&entries[123], &file, other.verifier()).is_err());
}
