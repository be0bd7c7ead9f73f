//! C2SP tlog-witness `add-checkpoint` checks over Tessera's published test log: the roots and
//! signatures of every request come from its checkpoint files, and each refusal gets the status
//! the spec assigns.

use pgext_log::{
    AddCheckpoint, Checkpoint, Hash, Refusal, SignerKey, VerifierKey, check_add_checkpoint,
    consistency_proof, open_checkpoint, sign,
};

use crate::{build_log, read, read_text};

fn key(field: &str) -> String {
    read_text("tessera-testdata-log/KEYS.txt")
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}=")))
        .unwrap()
        .to_string()
}

fn vkey() -> VerifierKey {
    key("LOG_PUBLIC_KEY").parse().unwrap()
}

/// The published checkpoint of `size` entries and its root.
fn published(size: u64) -> (Vec<u8>, Hash) {
    let note = read(&format!("tessera-testdata-log/checkpoint.{size}"));
    let root = open_checkpoint(&note, &vkey(), &[])
        .unwrap()
        .checkpoint
        .root;
    (note, root)
}

/// A consistency proof between two sizes of the published log, from its entries.
fn proof(old: u64, new: u64) -> Vec<Hash> {
    let entries: Vec<String> = key("ENTRIES").split(' ').map(str::to_string).collect();
    let (store, _) = build_log(&entries[..new as usize], 1);
    consistency_proof(old, new, &pgext_log::TileHashReader::new(new, &store)).unwrap()
}

fn request(old: u64, proof: Vec<Hash>, checkpoint: Vec<u8>) -> AddCheckpoint {
    AddCheckpoint {
        old,
        proof,
        checkpoint,
    }
}

#[test]
fn consistent_checkpoints_are_accepted() {
    let (note9, root9) = published(9);
    let (_, root5) = published(5);
    let first = request(0, vec![], published(5).0);
    assert_eq!(
        check_add_checkpoint(&first, &vkey(), (0, Hash::empty_root()))
            .unwrap()
            .checkpoint
            .size,
        5
    );
    let next = request(5, proof(5, 9), note9);
    let opened = check_add_checkpoint(&next, &vkey(), (5, root5)).unwrap();
    assert_eq!(opened.checkpoint.root, root9);
    // The same checkpoint again is consistent with itself.
    let again = request(9, vec![], published(9).0);
    assert!(check_add_checkpoint(&again, &vkey(), (9, root9)).is_ok());
}

#[test]
fn the_body_round_trips_and_malformed_bodies_are_refused() {
    let req = request(5, proof(5, 9), published(9).0);
    let bytes = req.to_bytes();
    assert!(bytes.starts_with(b"old 5\n"));
    assert_eq!(AddCheckpoint::parse(&bytes).unwrap(), req);
    assert_eq!(req.origin().as_deref(), Some(vkey().name()));
    for bad in [
        &b""[..],
        b"old 5\n",
        b"old -1\n\nx",
        b"old 05\n\ncheckpoint",
        b"new 5\n\ncheckpoint",
        b"old 5\nnot base64\n\ncheckpoint",
        b"old 5\n\n",
    ] {
        assert!(AddCheckpoint::parse(bad).is_err(), "{bad:?}");
    }
    let too_long = format!(
        "old 1\n{}\ncheckpoint",
        format!("{}\n", Hash::empty_root().to_base64()).repeat(64)
    );
    assert!(AddCheckpoint::parse(too_long.as_bytes()).is_err());
}

#[test]
fn refusals_carry_the_specified_status() {
    let (note9, root9) = published(9);
    let (_, root5) = published(5);
    let check = |req: &AddCheckpoint, latest| check_add_checkpoint(req, &vkey(), latest);

    // 403: signed by another key.
    let other = SignerKey::from_seed(vkey().name(), pgext_log::KeyType::Ed25519, &[7; 32]).unwrap();
    let forged = sign(
        &Checkpoint::new(vkey().name(), 9, root9).to_text(),
        &[&other],
        0,
    )
    .unwrap();
    let r = check(&request(5, proof(5, 9), forged.into_bytes()), (5, root5)).unwrap_err();
    assert_eq!(r.status(), 403);

    // 400: old larger than the checkpoint.
    let r = check(&request(10, vec![], note9.clone()), (10, root9)).unwrap_err();
    assert_eq!(r.status(), 400);

    // 409: old is not the witness's latest size; the body is that size.
    let r = check(&request(4, proof(4, 9), note9.clone()), (5, root5)).unwrap_err();
    assert_eq!(r, Refusal::Conflict(5));
    assert_eq!((r.status(), r.body().as_str()), (409, "5\n"));

    // 422: a proof that does not lead from the witness's root.
    let mut bent = proof(5, 9);
    bent[0] = Hash::empty_root();
    let r = check(&request(5, bent, note9.clone()), (5, root5)).unwrap_err();
    assert_eq!(r.status(), 422);

    // 422: a non-empty proof from size 0.
    let r = check(
        &request(0, proof(5, 9), note9.clone()),
        (0, Hash::empty_root()),
    )
    .unwrap_err();
    assert_eq!(r.status(), 422);

    // 422: the same size with another root, signed by the log's own key (a fork).
    let signer = SignerKey::from_private_text(&key("LOG_PRIVATE_KEY")).unwrap();
    let fork = sign(
        &Checkpoint::new(vkey().name(), 9, root5).to_text(),
        &[&signer],
        0,
    )
    .unwrap();
    let r = check(&request(9, vec![], fork.into_bytes()), (9, root9)).unwrap_err();
    assert_eq!(r.status(), 422);

    // 422: an empty tree with a root other than the empty root.
    let empty_bad = sign(
        &Checkpoint::new(vkey().name(), 0, root5).to_text(),
        &[&signer],
        0,
    )
    .unwrap();
    let r = check(
        &request(0, vec![], empty_bad.into_bytes()),
        (0, Hash::empty_root()),
    )
    .unwrap_err();
    assert_eq!(r.status(), 422);
}
