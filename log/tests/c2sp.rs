//! Examples from the C2SP texts: the issue-99 checkpoint re-signed byte for byte and the
//! tlog-proof example file.

use pgext_log::{Checkpoint, KeyType, ProofFile, SignerKey, open_checkpoint, sign};

use crate::{b64, hex, read, read_text};

#[test]
fn issue99_checkpoint_resigned_byte_for_byte() {
    let keys = read_text("c2sp-examples/issue99-checkpoint.keys");
    let field = |k: &str| {
        keys.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap()
            .to_string()
    };
    let seed: [u8; 32] = hex(&field("ed25519_seed_hex")).try_into().unwrap();
    let note = read_text("c2sp-examples/issue99-checkpoint.note");
    let origin = note.lines().next().unwrap();
    let signer = SignerKey::from_seed(origin, KeyType::Ed25519, &seed).unwrap();
    assert_eq!(
        signer.verifier().public_key().to_vec(),
        hex(&field("ed25519_pubkey_hex"))
    );
    assert_eq!(signer.verifier().key_id(), 0x809da1a3);
    let text = &note[..note.find("\n\n").unwrap() + 1];
    let c = Checkpoint::parse(text).unwrap();
    assert_eq!(c.to_text(), text);
    assert_eq!(sign(text, &[&signer], 0).unwrap(), note);
    open_checkpoint(note.as_bytes(), signer.verifier(), &[]).unwrap();
}

#[test]
fn tlog_proof_example_parses_and_round_trips() {
    let data = read("c2sp-examples/tlog-proof-example.txt");
    let file = ProofFile::parse(&data).unwrap();
    assert_eq!(file.index, 73894);
    assert_eq!(file.proof.len(), 5);
    assert_eq!(
        file.proof[0].0.to_vec(),
        b64("gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=")
    );
    assert_eq!(
        file.extra.as_deref(),
        Some(b64("YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ").as_slice())
    );
    assert!(
        file.checkpoint
            .starts_with(b"example.com/fancylog\n109482\n")
    );
    assert_eq!(file.to_bytes(), data);
    // Truncations and a wrong header are refused.
    assert!(ProofFile::parse(&data[..40]).is_err());
    let mut wrong = data.clone();
    wrong[0] = b'C';
    assert!(ProofFile::parse(&wrong).is_err());
}
