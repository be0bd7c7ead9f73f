//! What the binary packages refuse: a flipped byte, untrusted, revoked or disagreeing builders
//! and a binary for another PostgreSQL install nothing; the node refuses every bad attestation
//! before it stores anything; mirrors replicate, verify and serve packages.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use pgext_spec::api::Builds;
use pgext_tests::pg::{pg15_config, pg18_config};
use pgext_tests::{TestNode, fixtures, identity};

use super::{attest, builds, run_builder, target, user};

/// Flips one byte of every binary package served.
async fn flipping_proxy(target: String) -> String {
    let flip = Arc::new(Mutex::new(true));
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let (target, flip) = (target.clone(), flip.clone());
        async move {
            let path = uri.path().to_string();
            let resp = reqwest::get(format!("{target}{uri}")).await.unwrap();
            let status = axum::http::StatusCode::from_u16(resp.status().as_u16()).unwrap();
            let mut body = resp.bytes().await.unwrap().to_vec();
            let package = path.contains("/builds/") && !path.ends_with("/builds");
            if package && *flip.lock().unwrap() && !body.is_empty() {
                let at = body.len() / 2;
                body[at] ^= 1;
            }
            (status, body)
        }
    });
    pgext_tests::serve(app).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flipped_byte_and_untrustworthy_attestations_install_nothing() {
    for pg in [pg15_config(), pg18_config()] {
        pgext_tests::pg::clear_leftovers(&pg, "pgext_bin_t");
    }
    let pg15 = pg15_config();
    let node = TestNode::start().await;
    let alice = identity("alice", 1);
    let b1 = identity("builder-one", 2);
    for who in [&alice, &b1] {
        node.register(who, None).await;
    }
    node.publish_files(
        &alice,
        &fixtures::c_dist("pgext_bin_t", "1.0.0"),
        "pgext_bin_t-1.0.0",
    )
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let builder = user(&tmp.path().join("b1"), &node.url(), Some(&b1), &[]);
    let out = run_builder(&builder, &[&pg15]);
    assert!(out.contains("attested"), "{out}");
    let ext_dir = PathBuf::from(pgext_tests::pg::pg_config_of(&pg15, "--sharedir"))
        .join("extension/pgext_bin_t.control");

    // Through a proxy that flips a byte of the package: refused, nothing written.
    let proxy = flipping_proxy(node.url()).await;
    let cli = user(
        &tmp.path().join("u1"),
        &proxy,
        None,
        &["--vkey", &node.vkey(), "--builder", "builder-one"],
    );
    let pgc = pg15.display().to_string();
    let install = ["install", "pgext_bin_t", "--binary", "--pg-config", &pgc];
    // A user in `home` trusting `builders` is refused a binary, saying `why`; nothing installed.
    let refused = |home: &str, builders: &[&str], why: &str| {
        let args: Vec<&str> = builders.iter().flat_map(|b| ["--builder", *b]).collect();
        let cli = user(&tmp.path().join(home), &node.url(), None, &args);
        let err = cli.fails(&install);
        assert!(err.contains(why), "{err}");
        assert!(!ext_dir.exists());
    };
    let err = cli.fails(&install);
    assert!(
        err.contains("binary package did not verify") && err.contains("SHA-256"),
        "{err}"
    );
    assert!(!ext_dir.exists(), "nothing installed");

    // Only PostgreSQL 15 was built for: a PostgreSQL 18 gets no PostgreSQL 15 binary.
    let direct = user(
        &tmp.path().join("u0"),
        &node.url(),
        None,
        &["--builder", "builder-one"],
    );
    let pg18 = pgext_tests::pg::pg18_config().display().to_string();
    // Nor one for PostgreSQL 18 on another architecture or C library.
    let index = builds(&node, "pgext_bin_t", "1.0.0").await.release_index;
    let mut arm = target(18);
    arm.arch = "aarch64".into();
    let mut musl = target(18);
    musl.libc = "musl1.2".into();
    for (t, body) in [(arm, "arm"), (musl, "musl")] {
        attest(&node, &b1, ("pgext_bin_t", "1.0.0", index), t, body).await;
    }
    let err = direct.fails(&["install", "pgext_bin_t", "--binary", "--pg-config", &pg18]);
    assert!(
        err.contains("no trusted builder attests") && err.contains("pg18"),
        "{err}"
    );
    // Without --binary it builds from source, saying why (and this machine has a compiler).
    let (ok, out, err) = direct.run(&["install", "pgext_bin_t", "--pg-config", &pg18]);
    assert!(ok, "{out}{err}");
    assert!(
        err.contains("note: building from source: no trusted builder attests"),
        "{err}"
    );
    let list: serde_json::Value =
        serde_json::from_str(&direct.ok(&["list", "--json", "--pg-config", &pg18])).unwrap();
    assert_eq!(list[0]["kind"], "source");
    direct.ok(&["uninstall", "pgext_bin_t", "--pg-config", &pg18]);

    // A builder the user does not trust: no binary (and --binary refuses to build).
    refused("u2", &["somebody-else"], "no trusted builder attests");

    // Builders that disagree: a second trusted builder attests other bytes for the same target.
    let b2 = identity("builder-two", 3);
    node.register(&b2, None).await;
    let doc = builds(&node, "pgext_bin_t", "1.0.0").await;
    let honest = &doc.builds[0];
    let (_, package) = node.get(&format!("/{}", honest.url)).await;
    let mut binary =
        pgext_spec::binary::read_binary(&package, &pgext_spec::archive::Limits::default()).unwrap();
    for (_, (data, _)) in binary.files.iter_mut() {
        data.push(b'\n');
    }
    let other = pgext_spec::binary::pack(&binary.manifest, &binary.files).unwrap();
    let doc = node
        .json(&format!("/api/v1/entries/{}", honest.index))
        .await;
    let logged: pgext_spec::entry::Entry = serde_json::from_value(doc["entry"].clone()).unwrap();
    let pgext_spec::entry::Action::Build(mut build) = logged.statement.action else {
        panic!("entry {} is not a build", honest.index)
    };
    build.sha256 = pgext_log::hex(&pgext_log::sha256(&other));
    build.size = other.len() as u64;
    let entry = b2.sign(pgext_spec::entry::Action::Build(build));
    node.api_as(&b2)
        .attest(&entry, other, "other.trunk")
        .await
        .unwrap();
    refused("u3", &["builder-one", "builder-two"], "disagree");

    // A builder whose key is revoked withdrew what it signed with it: not counted.
    let b1_ci = identity("builder-one", 9);
    node.api_as(&b1)
        .submit(&b1.sign(pgext_spec::entry::Action::KeyAdd {
            key: pgext_spec::authority::encode_public_key(&b1_ci.key.verifying_key()),
        }))
        .await
        .unwrap();
    node.api_as(&b1_ci)
        .submit(&b1_ci.sign(pgext_spec::entry::Action::KeyRevoke {
            revoked: pgext_spec::entry::user_key_id(b1.key.verifying_key().as_bytes()),
        }))
        .await
        .unwrap();
    refused("u4", &["builder-one"], "no trusted builder attests");
}

#[tokio::test]
async fn the_node_refuses_every_bad_attestation_before_storing_anything() {
    use pgext_spec::binary::{FORMAT_VERSION, Manifest, Package, Postgres, Target, pack};
    use pgext_spec::entry::{Action, Build, Installcheck};
    let node = TestNode::start().await;
    let alice = identity("alice", 1);
    let b = identity("builder", 2);
    for who in [&alice, &b] {
        node.register(who, None).await;
    }
    let rel = node
        .publish_files(
            &alice,
            &fixtures::dist("pair", "1.0.0", "pair", "stable"),
            "pair-1.0.0",
        )
        .await;
    let other = node
        .publish_files(
            &alice,
            &fixtures::dist("other", "1.0.0", "other", "stable"),
            "other-1.0.0",
        )
        .await;
    let entry_of = |index: u64| {
        let node = &node;
        async move {
            let doc = node.json(&format!("/api/v1/entries/{index}")).await;
            let e: pgext_spec::entry::Entry = serde_json::from_value(doc["entry"].clone()).unwrap();
            pgext_log::leaf_hash(&e.to_bytes()).to_hex()
        }
    };
    let target = Target {
        os: "linux".into(),
        os_version: "debian12".into(),
        arch: "x86_64".into(),
        libc: "glibc2.36".into(),
        pg: 15,
        abi: "blcksz=8192,float8byval=1".into(),
        toolchain: "gcc-12.2.0".into(),
    };
    let manifest = |dist: &str| Manifest {
        trunk: FORMAT_VERSION.into(),
        package: Package {
            name: dist.into(),
            version: "1.0.0".into(),
        },
        postgres: Postgres {
            major: 15,
            version: "PostgreSQL 15".into(),
        },
        target: target.clone(),
    };
    let files = std::collections::BTreeMap::from([(
        ("share".to_string(), "extension/pair.control".to_string()),
        (b"default_version = '1.0.0'\n".to_vec(), false),
    )]);
    let package = pack(&manifest("pair"), &files).unwrap();
    let good = Build {
        dist: "pair".into(),
        version: "1.0.0".into(),
        release_index: rel.index,
        release_hash: entry_of(rel.index).await,
        target: target.clone(),
        sha256: pgext_log::hex(&pgext_log::sha256(&package)),
        size: package.len() as u64,
        log_sha256: "0".repeat(64),
        installcheck: Installcheck::Passed,
    };
    let size = node.json("/api/v1/log").await["size"].as_u64().unwrap();
    let blobs = node.blob_count();
    let api = node.api_as(&b);
    let refused = |build: Build, bytes: Vec<u8>, why: &'static str| {
        let (api, b) = (&api, &b);
        async move {
            let e = api
                .attest(&b.sign(Action::Build(build)), bytes, "x.trunk")
                .await
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "expected {why}: {e}");
        }
    };
    // Bytes that are not the ones attested.
    let mut flipped = package.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 1;
    refused(good.clone(), flipped, "digest-mismatch").await;
    // A package with a file outside the pg_config folders, or climbing out of them.
    for (dir, rel_path) in [("share", "../../etc/cron.d/x"), ("etc", "passwd")] {
        let files = std::collections::BTreeMap::from([(
            (dir.to_string(), rel_path.to_string()),
            (b"x".to_vec(), false),
        )]);
        assert!(pack(&manifest("pair"), &files).is_err());
    }
    let raw = fixtures::zip_raw(&[
        (
            "p/trunk.json".into(),
            serde_json::to_vec(&manifest("pair")).unwrap(),
        ),
        ("p/../../evil".into(), b"x".to_vec()),
    ]);
    let mut bad = good.clone();
    bad.sha256 = pgext_log::hex(&pgext_log::sha256(&raw));
    bad.size = raw.len() as u64;
    refused(bad, raw, "bad-binary").await;
    // A package holding a link.
    let linked = {
        use std::io::Write as _;
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default();
        w.start_file("p/trunk.json", opts).unwrap();
        w.write_all(&serde_json::to_vec(&manifest("pair")).unwrap())
            .unwrap();
        w.add_symlink("p/pgsql/pkglib/pair.so", "/etc/passwd", opts)
            .unwrap();
        w.finish().unwrap().into_inner()
    };
    let mut bad = good.clone();
    bad.sha256 = pgext_log::hex(&pgext_log::sha256(&linked));
    bad.size = linked.len() as u64;
    refused(bad, linked, "link").await;
    // A file outside the pg_config folders, listed in digests as the format asks.
    let m = serde_json::to_vec(&manifest("pair")).unwrap();
    let sum = |d: &[u8]| pgext_log::hex(&pgext_log::sha256(d));
    let digests = format!(
        "SHA256 (etc/cron.d/x) = {}\nSHA256 (trunk.json) = {}\n",
        sum(b"x"),
        sum(&m)
    );
    let raw = fixtures::zip_raw(&[
        ("p/trunk.json".into(), m.clone()),
        ("p/etc/cron.d/x".into(), b"x".to_vec()),
        ("p/digests".into(), digests.into_bytes()),
    ]);
    let mut bad = good.clone();
    bad.sha256 = sum(&raw);
    bad.size = raw.len() as u64;
    refused(bad, raw, "outside the pg_config directories").await;
    // A package for another dist than its attestation names.
    let theirs = pack(&manifest("other"), &files).unwrap();
    let mut bad = good.clone();
    bad.sha256 = pgext_log::hex(&pgext_log::sha256(&theirs));
    bad.size = theirs.len() as u64;
    refused(bad, theirs, "binary-mismatch").await;
    // A release that does not exist; another dist's entry; a wrong entry hash.
    let mut bad = good.clone();
    bad.version = "9.9.9".into();
    refused(bad, package.clone(), "unknown-release").await;
    let mut bad = good.clone();
    bad.release_index = other.index;
    refused(bad, package.clone(), "release-mismatch").await;
    let mut bad = good.clone();
    bad.release_hash = "0".repeat(64);
    refused(bad, package.clone(), "release-mismatch").await;
    // Larger than a log attests.
    let mut bad = good.clone();
    bad.size = pgext_spec::binary::MAX_BINARY_BYTES + 1;
    refused(bad, package.clone(), "invalid-target").await;
    // A package over the size limit behind a good attestation: 413, in the error shape.
    refused(good.clone(), vec![0u8; 66 << 20], "binary-too-large").await;
    // A statement that breaks the rules is refused before its package is read.
    let mut bad = good.clone();
    bad.release_index = other.index;
    refused(bad, vec![0u8; 66 << 20], "release-mismatch").await;
    assert_eq!(node.blob_count(), blobs, "nothing stored");
    assert_eq!(
        node.json("/api/v1/log").await["size"].as_u64().unwrap(),
        size
    );

    // The good one, then the same attestation replayed: the first answer, nothing new.
    let first = api
        .attest(
            &b.sign(Action::Build(good.clone())),
            package.clone(),
            "x.trunk",
        )
        .await
        .unwrap();
    let replay = api
        .attest(
            &b.sign(Action::Build(good.clone())),
            package.clone(),
            "x.trunk",
        )
        .await
        .unwrap();
    assert_eq!(first.index, replay.index);
    // Other bytes for the same builder and target: a duplicate build.
    let second = pack(
        &manifest("pair"),
        &std::collections::BTreeMap::from([(
            ("share".to_string(), "extension/pair.control".to_string()),
            (b"default_version = '1.0.1'\n".to_vec(), false),
        )]),
    )
    .unwrap();
    let mut dup = good.clone();
    dup.sha256 = pgext_log::hex(&pgext_log::sha256(&second));
    dup.size = second.len() as u64;
    refused(dup, second, "duplicate-build").await;
    // A yanked release is not attested.
    node.api_as(&alice)
        .submit(&alice.sign(Action::Yank {
            dist: "other".into(),
            version: "1.0.0".into(),
            reason: None,
        }))
        .await
        .unwrap();
    let theirs = pack(&manifest("other"), &files).unwrap();
    let yanked = Build {
        dist: "other".into(),
        release_index: other.index,
        release_hash: entry_of(other.index).await,
        sha256: pgext_log::hex(&pgext_log::sha256(&theirs)),
        size: theirs.len() as u64,
        ..good.clone()
    };
    refused(yanked, theirs, "release-yanked").await;
    let doc = builds(&node, "pair", "1.0.0").await;
    assert_eq!(doc.builds.len(), 1);
    // A release's builds are listed, and its packages fetched, only by their digests.
    let (status, _) = node
        .get(&format!(
            "/api/v1/dists/pair/1.0.0/builds/{}",
            "a".repeat(64)
        ))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn mirrors_replicate_verify_and_serve_binary_packages() {
    let (origin, mirror, _vkey, _witness) = TestNode::witnessed("bin.pgext.test/log").await;
    let alice = identity("alice", 1);
    let b = identity("builder", 2);
    origin.register(&alice, None).await;
    origin.register(&b, None).await;
    let rel = origin
        .publish_files(
            &alice,
            &fixtures::dist("pair", "1.0.0", "pair", "stable"),
            "pair-1.0.0",
        )
        .await;
    let sha = attest(&origin, &b, ("pair", "1.0.0", rel.index), target(15), "x").await;
    mirror.wait_size("/origins/main", 4, 60).await;
    let path = format!("/origins/main/api/v1/dists/pair/1.0.0/builds/{sha}");
    let bytes = pgext_tests::eventually(30, || {
        let (mirror, path) = (&mirror, &path);
        async move {
            match mirror.get(path).await {
                (200, bytes) => Ok(bytes),
                (status, _) => Err(format!("{status}")),
            }
        }
    })
    .await;
    assert_eq!(pgext_log::hex(&pgext_log::sha256(&bytes)), sha);
    let doc: Builds = serde_json::from_value(
        mirror
            .json("/origins/main/api/v1/dists/pair/1.0.0/builds")
            .await,
    )
    .unwrap();
    assert_eq!(doc.builds.len(), 1);
    assert_eq!(doc.builds[0].builder, "builder");
}

/// A C dist whose Makefile adds `extra` (compiler flags) to the build.
fn tuned_dist(name: &str, extra: &str) -> Vec<(String, Vec<u8>)> {
    let mut files = fixtures::c_dist(name, "1.0.0");
    for (path, data) in &mut files {
        if path == "Makefile" {
            *data = format!("{extra}\n{}", String::from_utf8_lossy(data)).into_bytes();
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread")]
async fn builds_tied_to_the_builders_cpu_are_made_portable_or_refused() {
    let pg15 = pg15_config();
    let node = TestNode::start().await;
    let alice = identity("alice", 1);
    let b = identity("builder", 2);
    node.register(&alice, None).await;
    node.register(&b, None).await;
    // pgvector's way: OPTFLAGS, which the builder empties.
    let portable = tuned_dist(
        "pgext_opt_c",
        "OPTFLAGS = -march=native\nPG_CFLAGS = $(OPTFLAGS)",
    );
    node.publish_files(&alice, &portable, "pgext_opt_c-1.0.0")
        .await;
    // Hard-wired: refused, never attested.
    let native = tuned_dist("pgext_native_c", "PG_CFLAGS = -march=native");
    node.publish_files(&alice, &native, "pgext_native_c-1.0.0")
        .await;
    let tmp = tempfile::tempdir().unwrap();
    let builder = user(&tmp.path().join("b"), &node.url(), Some(&b), &[]);
    let out = run_builder(&builder, &[&pg15]);
    assert!(
        out.contains("pgext_opt_c 1.0.0 pg15-linux-debian12-x86_64: attested"),
        "{out}"
    );
    assert!(
        out.contains("pgext_native_c 1.0.0 pg15-linux-debian12-x86_64: failed")
            && out.contains("-march=native"),
        "{out}"
    );
    assert_eq!(
        builds(&node, "pgext_native_c", "1.0.0").await.builds.len(),
        0
    );
    // A failed build is not tried again.
    let again = run_builder(&builder, &[&pg15]);
    assert!(!again.contains("pgext_native_c"), "{again}");
}
