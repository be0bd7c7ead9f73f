//! Publishing through a node's HTTP API and reading everything back: PGXN documents (shapes kept
//! by insta snapshots), the zip and its digests, the log and the proof files.

use pgext::release::prepare_release;
use pgext_log::{TileHashReader, VerifierKey, open_checkpoint, tree_hash};
use pgext_spec::entry::{Action, Entry};
use pgext_tests::{TestNode, fixtures, identity};
use sha1::Digest;

/// Registers alice and bob, and publishes pair 1.0.0 (stable, as tar.gz), pair 1.1.0 (testing,
/// as zip) and widget 0.2.5 whose extension is named gizmo.
async fn populated() -> TestNode {
    let node = TestNode::start().await;
    let api = node.api();
    let (alice, bob) = (identity("alice", 1), identity("bob", 2));
    api.submit(&alice.account_entry(
        Some("Alice Liddell"),
        Some("alice@example.org"),
        Some("https://alice.example.org/"),
    ))
    .await
    .unwrap();
    api.submit(&bob.account_entry(Some("Bob"), None, None))
        .await
        .unwrap();
    let tgz = fixtures::tar_gz(
        "pair-1.0.0",
        &fixtures::dist("pair", "1.0.0", "pair", "stable"),
    );
    let p = prepare_release(&tgz, None).unwrap();
    api.publish(
        &alice.sign(Action::Release(p.release)),
        tgz,
        "pair-1.0.0.tar.gz",
    )
    .await
    .unwrap();
    let files = fixtures::dist("pair", "1.1.0", "pair", "testing");
    let zip = fixtures::zip_raw(
        &files
            .iter()
            .map(|(p, d)| (format!("pair-1.1.0/{p}"), d.clone()))
            .collect::<Vec<_>>(),
    );
    let p = prepare_release(&zip, None).unwrap();
    api.publish(
        &alice.sign(Action::Release(p.release)),
        zip,
        "pair-1.1.0.zip",
    )
    .await
    .unwrap();
    let tgz = fixtures::tar_gz(
        "widget-0.2.5",
        &fixtures::dist("widget", "0.2.5", "gizmo", "stable"),
    );
    let p = prepare_release(&tgz, None).unwrap();
    api.publish(
        &bob.sign(Action::Release(p.release)),
        tgz,
        "widget-0.2.5.tgz",
    )
    .await
    .unwrap();
    node
}

fn redact(mut v: serde_json::Value) -> serde_json::Value {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    if k == "date" {
                        *x = serde_json::json!("[date]");
                    } else {
                        walk(x);
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

#[tokio::test]
async fn pgxn_documents() {
    let node = populated().await;
    for path in [
        "/index.json",
        "/dist/pair.json",
        "/dist/PAIR/1.0.0/META.json",
        "/dist/pair/1.1.0/META.json",
        "/extension/pair.json",
        "/extension/gizmo.json",
        "/user/alice.json",
        "/tag/key value.json",
        "/stats/summary.json",
        "/stats/dist.json",
        "/stats/extension.json",
        "/stats/user.json",
        "/stats/tag.json",
        "/users/a.json",
        "/meta/mirrors.json",
    ] {
        let mut doc = node.json(path).await;
        if path == "/meta/mirrors.json" {
            doc[0]["uri"] = serde_json::json!("[uri]");
        }
        insta::assert_json_snapshot!(
            path.trim_start_matches('/').replace(['/', ' '], "_"),
            redact(doc)
        );
    }
    for missing in [
        "/dist/nosuch.json",
        "/extension/nosuch.json",
        "/user/nosuch.json",
        "/stats/nosuch.json",
        "/dist/pair/9.9.9/META.json",
    ] {
        let (status, body) = node.get(missing).await;
        assert_eq!(status, 404, "{missing}");
        let err: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(err["errors"][0]["code"], "not-found");
    }
    node.node.shutdown().await;
}

#[tokio::test]
async fn release_documentation() {
    let node = populated().await;
    // PGXN's API extras in the release META: special files, docs with titles, docpaths.
    let meta = node.json("/dist/pair/1.0.0/META.json").await;
    assert_eq!(
        meta["special_files"],
        serde_json::json!(["META.json", "Makefile", "README.md", "pair.control"])
    );
    assert_eq!(
        meta["docs"],
        serde_json::json!({"README": {"title": "README"}, "doc/howto": {"title": "Howto for testers"}, "doc/pair": {"title": "pair 1.0.0"}})
    );
    assert_eq!(meta["provides"]["pair"]["docpath"], "doc/pair");
    let ext = node.json("/extension/gizmo.json").await;
    assert_eq!(ext["stable"]["docpath"], "doc/gizmo");

    let list = node.json("/api/v1/dists/pair/1.1.0/docs").await;
    let files: Vec<&str> = list["docs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["file"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["README.md", "doc/howto.txt", "doc/pair.md"]);
    assert_eq!(list["docs"][2]["extension"], "pair");

    let resp = reqwest::get(format!(
        "{}/api/v1/dists/PAIR/1.1.0/docs/doc/pair",
        node.url()
    ))
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/markdown")
    );
    assert_eq!(
        resp.bytes().await.unwrap().as_ref(),
        b"pair 1.1.0\n=====\n\nHow to use pair.\n"
    );
    let (status, readme) = node.get("/api/v1/dists/pair/1.0.0/docs/README").await;
    assert_eq!(
        (status, readme.as_slice()),
        (200, b"# pair\n\nA test distribution.\n".as_slice())
    );
    // Only listed documents are served: no other members, no escapes from the release.
    for path in [
        "/api/v1/dists/pair/1.0.0/docs/META",
        "/api/v1/dists/pair/1.0.0/docs/doc/nosuch",
        "/api/v1/dists/pair/1.0.0/docs/..%2F..%2F..%2Fwidget%2F0.2.5%2Fdocs%2FREADME",
        "/api/v1/dists/pair/9.9.9/docs/README",
    ] {
        let (status, body) = node.get(path).await;
        assert_eq!(status, 404, "{path}");
        let err: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(err["errors"][0]["code"], "not-found", "{path}");
    }
    node.node.shutdown().await;
}

#[tokio::test]
async fn zip_readme_proofs_and_log() {
    let node = populated().await;
    let meta = node.json("/dist/pair/1.0.0/META.json").await;
    let (status, zip) = node.get("/dist/pair/1.0.0/pair-1.0.0.zip").await;
    assert_eq!(status, 200);
    let sha1 = pgext_log::hex(&sha1::Sha1::digest(&zip));
    assert_eq!(meta["sha1"], sha1.as_str());
    let names: Vec<String> = zip::ZipArchive::new(std::io::Cursor::new(&zip))
        .unwrap()
        .file_names()
        .map(str::to_string)
        .collect();
    assert!(
        names.iter().all(|n| n.starts_with("pair-1.0.0/")),
        "{names:?}"
    );
    let (status, readme) = node.get("/dist/pair/1.0.0/README.txt").await;
    assert_eq!(
        (status, readme.as_slice()),
        (200, b"# pair\n\nA test distribution.\n".as_slice())
    );

    // The log: signed by the node's key, tiles recompute to the root, every entry's proof verifies.
    let info = node.json("/api/v1/log").await;
    let vkey: VerifierKey = info["vkey"].as_str().unwrap().parse().unwrap();
    let (_, cp) = node.get("/log/checkpoint").await;
    let signed = open_checkpoint(&cp, &vkey, &[]).unwrap();
    assert_eq!(signed.checkpoint.size, 5);
    let store = node.node.origin().store().as_ref();
    assert_eq!(
        tree_hash(5, &TileHashReader::new(5, store)).unwrap(),
        signed.checkpoint.root
    );
    let (status, tile) = node.get("/log/tile/0/000.p/5").await;
    assert_eq!((status, tile.len()), (200, 5 * 32));
    assert_eq!(node.get("/log/tile/0/000.p/6").await.0, 404);
    assert_eq!(node.get("/log/tile/0/000").await.0, 404);
    let (_, bundle) = node.get("/log/tile/entries/000.p/5").await;
    let entries = pgext_log::parse_bundle(&bundle).unwrap();
    assert_eq!(entries.len(), 5);
    let release = Entry::parse(entries[2]).unwrap();
    assert!(
        matches!(release.statement.action, Action::Release(ref r) if r.dist == "pair" && r.version == "1.0.0")
    );
    let (_, proof) = node.get("/dist/pair/1.0.0/pair-1.0.0.zip.tlog-proof").await;
    let verified = pgext::verify_entry_proof(entries[2], &proof, &vkey).unwrap();
    assert_eq!(verified.checkpoint.size, 5);
    assert!(pgext::verify_entry_proof(entries[3], &proof, &vkey).is_err());
    let e = node.json("/api/v1/entries/2").await;
    assert_eq!(e["entry"]["dist"], "pair");
    assert_eq!(
        node.json("/api/v1/dists/pair").await["owners"],
        serde_json::json!(["alice"])
    );
    let metrics = String::from_utf8(node.get("/metrics").await.1).unwrap();
    assert!(metrics.contains("pgext_log_size 5"), "{metrics}");
    node.node.shutdown().await;
}

#[tokio::test]
async fn restart_replays_the_log() {
    let node = populated().await;
    let before = node.get("/log/checkpoint").await.1;
    let dist = node.json("/dist/pair.json").await;
    let node = node.restart().await;
    assert_eq!(node.get("/log/checkpoint").await.1, before);
    assert_eq!(node.json("/dist/pair.json").await, dist);
    // And it keeps sequencing after the restart.
    let carol = identity("carol", 3);
    let r = node.register(&carol, None).await;
    assert_eq!(r.index, 5);
    node.node.shutdown().await;
}

#[tokio::test]
async fn export_pgxn_tree_matches_http() {
    let node = populated().await;
    let out = tempfile::tempdir().unwrap();
    let n = pgext_node::tools::export::export_origin(
        node.node.origin(),
        node.node.http_addr(),
        out.path(),
    )
    .unwrap()
    .files;
    let mut files = Vec::new();
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.path().is_dir() {
                walk(&e.path(), out);
            } else {
                out.push(e.path());
            }
        }
    }
    walk(out.path(), &mut files);
    assert_eq!(files.len(), n);
    for f in [
        "index.json",
        "dist/pair.json",
        "dist/pair/1.0.0/pair-1.0.0.zip",
        "dist/widget/0.2.5/README.txt",
        "extension/gizmo.json",
        "tag/key value.json",
        "users/a.json",
        "stats/summary.json",
    ] {
        assert!(out.path().join(f).exists(), "{f} not exported");
    }
    for f in files {
        let rel = f
            .strip_prefix(out.path())
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let (status, body) = node.get(&format!("/{rel}")).await;
        assert_eq!(status, 200, "{rel}");
        assert_eq!(
            body,
            std::fs::read(&f).unwrap(),
            "{rel} differs from what the node serves"
        );
    }

    // Again, from the data folder of the running node (read-only): nothing to write, and a
    // file the registry does not produce goes.
    let config = pgext_node::config::Config::for_tests(node.dir.path());
    let zip = out.path().join("dist/pair/1.0.0/pair-1.0.0.zip");
    let mtime = std::fs::metadata(&zip).unwrap().modified().unwrap();
    // (The configured address, not the live one, names the mirror: one file differs.)
    let first = pgext_node::tools::export::export_pgxn(&config, out.path()).unwrap();
    assert_eq!((first.files, first.written, first.removed), (n, 1, 0));
    std::fs::write(out.path().join("dist/stray.json"), b"{}").unwrap();
    let again = pgext_node::tools::export::export_pgxn(&config, out.path()).unwrap();
    assert_eq!((again.files, again.written, again.removed), (n, 0, 1));
    assert!(!out.path().join("dist/stray.json").exists());
    // A new release: only what changed is written; an unchanged zip keeps its mtime (rsync
    // skips it).
    let alice = identity("alice", 1);
    node.publish_dist(&alice, "pair", "1.3.0", "pair", "stable")
        .await;
    let after = pgext_node::tools::export::export_pgxn(&config, out.path()).unwrap();
    assert!(after.files > n, "{after:?}");
    assert!(
        after.written > 0 && after.written < after.files / 2,
        "{after:?}"
    );
    assert!(out.path().join("dist/pair/1.3.0/pair-1.3.0.zip").is_file());
    assert_eq!(std::fs::metadata(&zip).unwrap().modified().unwrap(), mtime);
    node.node.shutdown().await;
}

#[tokio::test]
async fn compat_view_hides_yanked_and_semver2_versions_and_bz2_is_accepted() {
    let node = populated().await;
    let api = node.api();
    let alice = identity("alice", 1);
    // A SemVer-2 prerelease that pgxnclient cannot parse, uploaded as .tar.bz2.
    let files = fixtures::dist("pair", "1.2.0-rc.1", "pair", "testing");
    let mut tar = tar::Builder::new(bzip2::write::BzEncoder::new(
        Vec::new(),
        bzip2::Compression::default(),
    ));
    for (p, d) in &files {
        let mut h = tar::Header::new_gnu();
        h.set_size(d.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, format!("pair-1.2.0-rc.1/{p}"), d.as_slice())
            .unwrap();
    }
    let tbz = tar.into_inner().unwrap().finish().unwrap();
    let p = prepare_release(&tbz, None).unwrap();
    api.publish(
        &alice.sign(Action::Release(p.release)),
        tbz,
        "pair-1.2.0-rc.1.tar.bz2",
    )
    .await
    .unwrap();
    assert_eq!(
        node.json("/api/v1/dists/pair").await["releases"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let listed = |doc: serde_json::Value| doc["releases"].to_string();
    assert!(!listed(node.json("/dist/pair.json").await).contains("rc.1"));
    assert!(
        !node
            .json("/extension/pair.json")
            .await
            .to_string()
            .contains("rc.1")
    );
    // Still downloadable by its exact URL.
    assert_eq!(node.get("/dist/pair/1.2.0-rc.1/META.json").await.0, 200);

    // Yanking 1.1.0 takes it out of the lists; unyanking brings it back.
    api.submit(&alice.sign(Action::Yank {
        dist: "pair".into(),
        version: "1.1.0".into(),
        reason: Some("broken".into()),
    }))
    .await
    .unwrap();
    assert!(!listed(node.json("/dist/pair.json").await).contains("1.1.0"));
    assert_eq!(
        node.json("/api/v1/dists/pair").await["releases"][1]["yank_reason"],
        "broken"
    );
    let bob = identity("bob", 2);
    let err = api
        .submit(&bob.sign(Action::Unyank {
            dist: "pair".into(),
            version: "1.1.0".into(),
        }))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not-owner"), "{err}");
    api.submit(&alice.sign(Action::Unyank {
        dist: "pair".into(),
        version: "1.1.0".into(),
    }))
    .await
    .unwrap();
    assert!(listed(node.json("/dist/pair.json").await).contains("1.1.0"));
    node.node.shutdown().await;
}

#[tokio::test]
async fn registration_policies() {
    use pgext_node::config::Registration;
    for (policy, invited, ok) in [
        (Registration::Closed, false, false),
        (Registration::Invite, false, false),
        (Registration::Invite, true, true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let admin = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
        let mut config = pgext_node::Config::for_tests(dir.path());
        config.registration = policy;
        config.admin_keys = vec![pgext_spec::authority::encode_public_key(
            &admin.verifying_key(),
        )];
        let node = pgext_node::Node::spawn(config).await.unwrap();
        let carol = identity("carol", 3);
        let key = pgext_spec::authority::encode_public_key(&carol.key.verifying_key());
        let invite = invited.then(|| {
            use base64::Engine as _;
            use ed25519_dalek::Signer as _;
            base64::engine::general_purpose::STANDARD.encode(
                admin
                    .sign(&pgext_spec::entry::invite_message("carol", &key))
                    .to_bytes(),
            )
        });
        let entry = carol.sign(Action::Account {
            user: "carol".into(),
            key,
            name: None,
            email: None,
            uri: None,
            invite,
        });
        let got = pgext::api::Node::new(&node.url()).submit(&entry).await;
        assert_eq!(got.is_ok(), ok, "{policy:?} invited={invited}: {got:?}");
        node.shutdown().await;
    }
}
