//! Every kind of bad upload gets a clear 4xx JSON error and changes nothing: no blob stored, no
//! entry sequenced.

use pgext::release::prepare_release;
use pgext_spec::entry::{Action, Release};
use pgext_tests::{TestNode, fixtures, identity};

async fn post(
    node: &TestNode,
    entry: &pgext_spec::entry::Entry,
    archive: Vec<u8>,
) -> (u16, serde_json::Value) {
    let form = reqwest::multipart::Form::new()
        .part("entry", reqwest::multipart::Part::bytes(entry.to_bytes()))
        .part(
            "archive",
            reqwest::multipart::Part::bytes(archive).file_name("x.tar.gz"),
        );
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/releases", node.url()))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

fn tar_gz_raw(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
    let enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(enc);
    for (path, kind, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_size(if *kind == tar::EntryType::Regular {
            data.len() as u64
        } else {
            0
        });
        h.set_mode(0o644);
        if *kind != tar::EntryType::Regular {
            h.set_link_name("../../etc/passwd").unwrap();
        }
        // Write the name bytes directly so that unsafe names reach the archive.
        let name = path.as_bytes();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        tar.append(
            &h,
            if *kind == tar::EntryType::Regular {
                *data
            } else {
                &[][..]
            },
        )
        .unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

#[tokio::test]
async fn bad_archives_are_refused_and_change_nothing() {
    let node = TestNode::start().await;
    let (alice, bob) = (identity("alice", 1), identity("bob", 2));
    node.register(&alice, None).await;
    node.register(&bob, None).await;
    let good_files = fixtures::dist("pair", "1.0.0", "pair", "stable");
    let good = fixtures::tar_gz("pair-1.0.0", &good_files);
    let release = prepare_release(&good, None).unwrap().release;
    let meta = &good_files[0].1;

    let with = |extra: (&str, tar::EntryType, &[u8])| {
        let mut list: Vec<(String, tar::EntryType, Vec<u8>)> = good_files
            .iter()
            .map(|(p, d)| {
                (
                    format!("pair-1.0.0/{p}"),
                    tar::EntryType::Regular,
                    d.clone(),
                )
            })
            .collect();
        list.push((extra.0.to_string(), extra.1, extra.2.to_vec()));
        let refs: Vec<(&str, tar::EntryType, &[u8])> = list
            .iter()
            .map(|(p, k, d)| (p.as_str(), *k, d.as_slice()))
            .collect();
        tar_gz_raw(&refs)
    };
    let bomb = {
        let zeros = vec![0u8; 150 << 20];
        let mut files = good_files.clone();
        files.push(("zeros.bin".into(), zeros));
        fixtures::tar_gz("pair-1.0.0", &files)
    };
    let many = {
        let mut files = good_files.clone();
        files.extend((0..5001).map(|i| (format!("f/{i}"), Vec::new())));
        fixtures::tar_gz("pair-1.0.0", &files)
    };
    let no_meta = fixtures::tar_gz("pair-1.0.0", &good_files[1..]);
    let bad_meta = {
        let mut files = good_files.clone();
        files[0].1 = br#"{"name":"pair","version":"1.0.0"}"#.to_vec();
        fixtures::tar_gz("pair-1.0.0", &files)
    };
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "path traversal",
            with(("pair-1.0.0/../../evil", tar::EntryType::Regular, b"x")),
            422,
            "bad-archive",
        ),
        (
            "absolute path",
            with(("/etc/evil", tar::EntryType::Regular, b"x")),
            422,
            "bad-archive",
        ),
        (
            "symlink",
            with(("pair-1.0.0/link", tar::EntryType::Symlink, b"")),
            422,
            "bad-archive",
        ),
        (
            "hard link",
            with(("pair-1.0.0/hard", tar::EntryType::Link, b"")),
            422,
            "bad-archive",
        ),
        (
            "duplicate member",
            with(("pair-1.0.0/Makefile", tar::EntryType::Regular, b"all:")),
            422,
            "bad-archive",
        ),
        ("too many members", many, 422, "bad-archive"),
        ("zip bomb", bomb, 422, "bad-archive"),
        ("too large", vec![0x1f; 22 << 20], 413, "archive-too-large"),
        ("not an archive", b"hello".to_vec(), 422, "bad-archive"),
        ("missing META", no_meta, 422, "missing-meta"),
        ("invalid META", bad_meta, 422, "invalid-meta"),
    ];
    for (what, archive, status, code) in cases {
        let blobs = node.blob_count();
        let (got, body) = post(
            &node,
            &alice.sign(Action::Release(release.clone())),
            archive,
        )
        .await;
        assert_eq!(got, status, "{what}: {body}");
        if !code.is_empty() {
            assert_eq!(body["errors"][0]["code"], code, "{what}: {body}");
        }
        assert_eq!(node.blob_count(), blobs, "{what} stored a blob");
    }

    // Statement and archive disagree.
    let mismatches: Vec<(&str, Release, &str)> = vec![
        (
            "version mismatch",
            Release {
                version: "1.0.1".into(),
                ..release.clone()
            },
            "meta-mismatch",
        ),
        (
            "name mismatch",
            Release {
                dist: "other".into(),
                ..release.clone()
            },
            "meta-mismatch",
        ),
        (
            "provides mismatch",
            Release {
                provides: [("nope".to_string(), "1.0.0".to_string())].into(),
                ..release.clone()
            },
            "meta-mismatch",
        ),
        (
            "digest mismatch",
            Release {
                sha256: "0".repeat(64),
                ..release.clone()
            },
            "digest-mismatch",
        ),
        (
            "meta digest mismatch",
            Release {
                meta_sha256: "0".repeat(64),
                ..release.clone()
            },
            "digest-mismatch",
        ),
    ];
    for (what, r, code) in mismatches {
        let (got, body) = post(&node, &alice.sign(Action::Release(r)), good.clone()).await;
        assert_eq!(
            (got, body["errors"][0]["code"].as_str().unwrap()),
            (422, code),
            "{what}: {body}"
        );
    }
    assert_eq!(node.blob_count(), 0);
    let _ = meta;

    // Authority: first publish claims the dist; others cannot publish it; a version's bytes
    // never change.
    let (got, body) = post(
        &node,
        &alice.sign(Action::Release(release.clone())),
        good.clone(),
    )
    .await;
    assert_eq!(got, 201, "{body}");
    let first = body["index"].clone();
    let size = node.json("/api/v1/log").await["size"].clone();
    let blobs = node.blob_count();
    let (got, body) = post(
        &node,
        &bob.sign(Action::Release(release.clone())),
        good.clone(),
    )
    .await;
    assert_eq!(
        (got, body["errors"][0]["code"].as_str().unwrap()),
        (403, "not-owner"),
        "{body}"
    );
    // The same bytes again (re-signed): the first answer, nothing new in the log.
    let (got, body) = post(
        &node,
        &alice.sign(Action::Release(release.clone())),
        good.clone(),
    )
    .await;
    assert_eq!((got, &body["index"]), (201, &first), "{body}");
    // Other bytes for that version: refused.
    let mut other = release.clone();
    other.sha256 = pgext_log::hex(&pgext_log::sha256(b"other bytes"));
    let (got, body) = post(&node, &alice.sign(Action::Release(other)), good.clone()).await;
    assert_eq!(
        (got, body["errors"][0]["code"].as_str().unwrap()),
        (409, "duplicate-version"),
        "{body}"
    );
    // A forged signature.
    let mut forged = alice.sign(Action::Release(release.clone()));
    forged.sig = bob.sign(Action::Release(release.clone())).sig;
    let (got, body) = post(&node, &forged, good.clone()).await;
    assert_eq!(
        (got, body["errors"][0]["code"].as_str().unwrap()),
        (401, "bad-signature"),
        "{body}"
    );
    assert_eq!(node.json("/api/v1/log").await["size"], size);
    assert_eq!(node.blob_count(), blobs);
    node.node.shutdown().await;
}
