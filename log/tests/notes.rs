//! C2SP signed-note: the Go example re-signed byte for byte, the spec example, real
//! sum.golang.org tree heads, and refusals.

use pgext_log::{Checkpoint, Error, KeyType, Note, SignerKey, VerifierKey, open, sign};

use crate::read_text;

fn go_key() -> (SignerKey, VerifierKey) {
    let signer =
        SignerKey::from_private_text(&read_text("signed-note/go-note-peterneumann.skey")).unwrap();
    let vkey: VerifierKey = read_text("signed-note/go-note-peterneumann.vkey")
        .trim()
        .parse()
        .unwrap();
    (signer, vkey)
}

#[test]
fn go_example_resigned_byte_for_byte() {
    let (signer, vkey) = go_key();
    assert_eq!(signer.verifier(), &vkey);
    assert_eq!(
        vkey.to_string(),
        read_text("signed-note/go-note-peterneumann.vkey").trim()
    );
    assert_eq!(
        signer.to_private_text(),
        read_text("signed-note/go-note-peterneumann.skey").trim()
    );
    let text = read_text("signed-note/go-note-peterneumann.text");
    let note = sign(&text, &[&signer], 0).unwrap();
    assert_eq!(note, read_text("signed-note/go-note-peterneumann.note"));
    let opened = open(note.as_bytes(), &[vkey]).unwrap();
    assert_eq!(opened.note.text, text);
    assert_eq!(opened.verified.len(), 1);
}

#[test]
fn c2sp_example_and_sum_golang_org_heads_verify() {
    let vkey: VerifierKey = read_text("signed-note/c2sp-example-foo.vkey")
        .trim()
        .parse()
        .unwrap();
    open(
        read_text("signed-note/c2sp-example-foo.note").as_bytes(),
        &[vkey],
    )
    .unwrap();

    let sumdb: VerifierKey = read_text("sumdb/sum.golang.org.vkey")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(sumdb.key_id(), 0x033de0ae);
    let mut n = 0;
    for e in std::fs::read_dir(crate::vector_path("sumdb")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "note") {
            let msg = std::fs::read(&p).unwrap();
            let opened = open(&msg, std::slice::from_ref(&sumdb))
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let c = Checkpoint::parse(&opened.note.text).unwrap();
            assert_eq!(c.origin, "go.sum database tree");
            let name = p.file_stem().unwrap().to_str().unwrap();
            assert_eq!(name, format!("sth-{}", c.size));
            n += 1;
        }
    }
    assert_eq!(n, 7);
}

#[test]
fn any_mutated_byte_is_refused() {
    let (_, vkey) = go_key();
    let note = read_text("signed-note/go-note-peterneumann.note").into_bytes();
    for i in 0..note.len() {
        for bit in [0x01u8, 0x20, 0x80] {
            let mut m = note.clone();
            m[i] ^= bit;
            assert!(
                open(&m, std::slice::from_ref(&vkey)).is_err(),
                "byte {i} ^ {bit:#x} accepted"
            );
        }
    }
}

#[test]
fn wrong_key_id_unknown_keys_and_duplicates() {
    let (signer, vkey) = go_key();
    let text = read_text("signed-note/go-note-peterneumann.text");
    let good = Note::parse(sign(&text, &[&signer], 0).unwrap().as_bytes()).unwrap();

    // A signature line under another key id is an unknown key: the note has no trusted signature.
    let mut wrong_id = good.clone();
    wrong_id.signatures[0].key_id ^= 1;
    assert!(matches!(
        open(&wrong_id.to_bytes(), std::slice::from_ref(&vkey)),
        Err(Error::UnverifiedNote)
    ));
    // A verifier key whose id does not match its key is refused when parsed.
    let vtext = vkey.to_string();
    let (name, rest) = vtext.split_once('+').unwrap();
    let forged = format!("{name}+00000000+{}", rest.split_once('+').unwrap().1);
    assert!(matches!(
        forged.parse::<VerifierKey>(),
        Err(Error::MalformedKey(_))
    ));

    // Unknown signers are ignored.
    let other = SignerKey::from_seed("other.example", KeyType::Ed25519, &[9; 32]).unwrap();
    let with_unknown = sign(&text, &[&other, &signer], 0).unwrap();
    assert_eq!(
        open(with_unknown.as_bytes(), std::slice::from_ref(&vkey))
            .unwrap()
            .verified
            .len(),
        1
    );

    // The known key twice, the second with a bad value: refused whichever comes first.
    let mut bad = good.signatures[0].clone();
    bad.sig[10] ^= 0xff;
    for sigs in [
        vec![good.signatures[0].clone(), bad.clone()],
        vec![bad.clone(), good.signatures[0].clone()],
    ] {
        let n = Note {
            text: text.clone(),
            signatures: sigs,
        };
        assert!(open(&n.to_bytes(), std::slice::from_ref(&vkey)).is_err());
    }
    // Even the same valid signature twice is refused.
    let twice = Note {
        text: text.clone(),
        signatures: vec![good.signatures[0].clone(); 2],
    };
    assert!(open(&twice.to_bytes(), std::slice::from_ref(&vkey)).is_err());
    // A known key's bad signature rejects the note even when another trusted key signed.
    let other_v = other.verifier().clone();
    let n = Note {
        text,
        signatures: vec![
            Note::parse(with_unknown.as_bytes()).unwrap().signatures[0].clone(),
            bad,
        ],
    };
    assert!(matches!(
        open(&n.to_bytes(), &[vkey, other_v]),
        Err(Error::InvalidSignature { .. })
    ));
}

#[test]
fn key_text_with_plus_in_base64() {
    // The sum.golang.org key's base64 contains '+': naive splitting would break it.
    let text = read_text("sumdb/sum.golang.org.vkey");
    let text = text.trim();
    assert!(text.matches('+').count() > 2);
    let key: VerifierKey = text.parse().unwrap();
    assert_eq!(key.name(), "sum.golang.org");
    assert_eq!(key.to_string(), text);
}
