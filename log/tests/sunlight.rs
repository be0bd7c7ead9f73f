//! Sunlight's witness cosignature reproduced byte for byte, and its 300-leaf mirror.

use pgext_log::{
    Checkpoint, KeyType, Note, SignerKey, VerifierKey, integrate_hashes, leaf_hash, open, sha256,
    tiles_for_size,
};
use serde_json::Value;

use crate::{read, read_text};

const ORIGIN_DIR: &str = "000de184301123b9278c086a7d9f68c9577e83872224c197058fd90784ea9706";

fn vkey_of(rel: &str) -> VerifierKey {
    let v: Value = serde_json::from_slice(&read(rel)).unwrap();
    v["verifier_keys"][0].as_str().unwrap().parse().unwrap()
}

/// Re-signs the cosignature line of `signer` in the note at `rel` and compares bytes.
fn check_cosignature(rel: &str, signer: &SignerKey, vkey: &VerifierKey) -> Checkpoint {
    let msg = read(rel);
    let note = Note::parse(&msg).unwrap();
    let ours = note
        .signatures
        .iter()
        .find(|s| s.name == vkey.name())
        .unwrap();
    let time = u64::from_be_bytes(ours.sig[..8].try_into().unwrap());
    assert_eq!(time, 1_767_139_200);
    assert_eq!(
        signer.signature_line(&note.text, time).unwrap(),
        ours.line()
    );
    // It verifies as a cosignature and carries its time; the log's own (ECDSA) line is ignored.
    let opened = open(&msg, std::slice::from_ref(vkey)).unwrap();
    assert_eq!(opened.verified_by(vkey).unwrap().time, Some(time));
    // The origin directory is named after SHA-256 of the origin.
    let c = Checkpoint::parse(&note.text).unwrap();
    let hex: String = sha256(c.origin.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(hex, ORIGIN_DIR);
    c
}

#[test]
fn witness_cosignature_byte_for_byte() {
    let vkey = vkey_of("sunlight-skylight-witness/witness.v0.json");
    assert_eq!(vkey.kind(), KeyType::Cosignature);
    let signer = SignerKey::from_seed(
        "witness.example.org",
        KeyType::Cosignature,
        &sha256(b"skylight test witness key"),
    )
    .unwrap();
    assert_eq!(signer.verifier(), &vkey);
    check_cosignature(
        &format!("sunlight-skylight-witness/{ORIGIN_DIR}/checkpoint"),
        &signer,
        &vkey,
    );
}

#[test]
fn mirror_tiles_and_cosignature_reproduced() {
    let vkey = vkey_of("sunlight-skylight-witness/mirror/mirror.v0.json");
    let signer = SignerKey::from_seed(
        "mirror.example.org",
        KeyType::Cosignature,
        &sha256(b"skylight test mirror key"),
    )
    .unwrap();
    assert_eq!(signer.verifier(), &vkey);
    let dir = format!("sunlight-skylight-witness/mirror/{ORIGIN_DIR}");
    let checkpoint = check_cosignature(&format!("{dir}/checkpoint"), &signer, &vkey);
    assert_eq!(checkpoint.size, 300);

    let leaves: Vec<_> = (0..300)
        .map(|i| leaf_hash(format!("record {i}").as_bytes()))
        .collect();
    let out = integrate_hashes(0, &leaves, &pgext_log::MemoryTiles::new()).unwrap();
    assert_eq!(out.root, checkpoint.root);
    let produced: Vec<String> = out.tiles.iter().map(|(t, _)| t.path()).collect();
    assert_eq!(
        produced,
        ["tile/0/000", "tile/0/001.p/44", "tile/1/000.p/1"]
    );
    let implied: Vec<String> = tiles_for_size(300)
        .iter()
        .filter(|t| t.kind != pgext_log::TileKind::Entries)
        .map(|t| t.path())
        .collect();
    assert_eq!(implied, produced);
    for (tile, data) in &out.tiles {
        assert_eq!(data, &read(&format!("{dir}/{}", tile.path())), "{tile}");
    }
    // The top-level checkpoint is a decoy, not a note.
    assert!(Note::parse(read_text("sunlight-skylight-witness/checkpoint").as_bytes()).is_err());
}
