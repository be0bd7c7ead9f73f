//! Tests of the entry format.

use super::*;
use crate::signed::{SignedEntry, statement_bytes, verify_signatures};

fn key() -> SigningKey {
    SigningKey::from_bytes(&[3; 32])
}

fn release() -> Statement {
    let k = key();
    Statement {
        v: ENTRY_VERSION,
        actor: "alice".into(),
        key_id: user_key_id(k.verifying_key().as_bytes()),
        time: 1_700_000_000,
        action: Action::Release(Release {
            dist: "pair".into(),
            version: "1.0.0".into(),
            status: Status::Stable,
            sha256: "00".repeat(32),
            sha1: "11".repeat(20),
            size: 10,
            meta_sha256: "22".repeat(32),
            provides: BTreeMap::from([("pair".into(), "1.0.0".into())]),
        }),
    }
}

#[test]
fn canonical_round_trip_and_signature() {
    let e = release().sign(&key());
    let bytes = e.to_bytes();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(
        text.starts_with(r#"{"actor":"alice","dist":"pair","key_id":""#),
        "{text}"
    );
    let parsed = Entry::parse(&bytes).unwrap();
    assert_eq!(parsed, e);
    parsed.verify_signature(&key().verifying_key()).unwrap();
    let other = SigningKey::from_bytes(&[4; 32]);
    assert!(parsed.verify_signature(&other.verifying_key()).is_err());
    // Changing any field breaks the signature.
    let mut tampered = parsed.clone();
    tampered.statement.time += 1;
    assert!(tampered.verify_signature(&key().verifying_key()).is_err());
}

#[test]
fn batch_verification_names_the_first_bad_signature() {
    let keys: Vec<SigningKey> = (0..7u8).map(|i| SigningKey::from_bytes(&[i; 32])).collect();
    let entries: Vec<Entry> = (0..600u64)
        .map(|i| {
            let mut st = release();
            st.time += i;
            st.sign(&keys[i as usize % keys.len()])
        })
        .collect();
    let vks: Vec<VerifyingKey> = keys.iter().map(SigningKey::verifying_key).collect();
    let items = |es: &[Entry]| -> Vec<(Entry, VerifyingKey)> {
        es.iter()
            .enumerate()
            .map(|(i, e)| (e.clone(), vks[i % vks.len()]))
            .collect()
    };
    let check = |v: &[(Entry, VerifyingKey)]| {
        // Through the bytes, as the log holds them; a malformed signature still parses.
        let bytes: Vec<Vec<u8>> = v.iter().map(|(e, _)| e.to_bytes()).collect();
        let signed: Vec<SignedEntry> = SignedEntry::parse_many(&bytes)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        for (s, (e, k)) in signed.iter().zip(v) {
            assert_eq!(
                s.msg[SIGNATURE_DOMAIN.len()..],
                e.statement.canonical_bytes()
            );
            assert_eq!(s.verify_alone(k), e.verify_signature(k).is_ok());
        }
        let refs: Vec<(&SignedEntry, &VerifyingKey)> =
            signed.iter().zip(v).map(|(s, (_, k))| (s, k)).collect();
        verify_signatures(&refs)
    };
    assert_eq!(check(&items(&entries)), Ok(()));

    // Two tampered statements in different batches and a malformed signature: the first.
    let mut bad = items(&entries);
    bad[470].0.statement.time += 1;
    bad[450].0.statement.time += 1;
    bad[520].0.sig = "not base64".into();
    assert_eq!(check(&bad), Err(450));
    let mut bad = items(&entries);
    bad[520].0.sig = "not base64".into();
    bad[599].0.statement.time += 1;
    assert_eq!(check(&bad), Err(520));
    // A signature by another key in the first chunk, one in the second: the first.
    let mut bad = items(&entries);
    bad[3].1 = vks[4];
    bad[590].1 = vks[0];
    assert_eq!(check(&bad), Err(3));

    // A small-order key is never trusted, whatever the signature.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let weak = VerifyingKey::from_bytes(&identity).unwrap();
    assert!(weak.is_weak());
    let mut bad = items(&entries);
    bad[10].1 = weak;
    assert_eq!(check(&bad), Err(10));
}

#[test]
fn the_statement_is_cut_from_the_entry_bytes_only_when_unambiguous() {
    let cut = |b: &str| statement_bytes(b.as_bytes(), "X").map(|v| String::from_utf8(v).unwrap());
    assert_eq!(
        cut(r#"{"a":1,"sig":"X","t":2}"#).as_deref(),
        Some(r#"{"a":1,"t":2}"#)
    );
    assert_eq!(cut(r#"{"sig":"X","t":2}"#).as_deref(), Some(r#"{"t":2}"#));
    assert_eq!(cut(r#"{"a":1,"sig":"X"}"#).as_deref(), Some(r#"{"a":1}"#));
    // A nested member that looks the same: ambiguous, so the caller serializes instead.
    assert_eq!(cut(r#"{"p":{"sig":"X"},"sig":"X"}"#), None);
    assert_eq!(cut(r#"{"a":1}"#), None);
}

#[test]
fn non_canonical_bytes_are_refused() {
    let bytes = release().sign(&key()).to_bytes();
    let text = String::from_utf8(bytes).unwrap();
    let spaced = text.replacen(':', ": ", 1);
    assert!(matches!(
        Entry::parse(spaced.as_bytes()),
        Err(EntryError::NotCanonical)
    ));
    let extra = text.replacen('{', r#"{"zzz":1,"#, 1);
    assert!(Entry::parse(extra.as_bytes()).is_err());
    let null = text.replacen('{', r#"{"reason":null,"#, 1);
    assert!(Entry::parse(null.as_bytes()).is_err());
}
