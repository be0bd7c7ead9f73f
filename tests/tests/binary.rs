//! Binary packages end to end (`spec/binary.md`): two builders, separate processes in separate
//! folders, build a real C extension for PostgreSQL 15 and 18 from a node and attest identical
//! bytes; a builder killed mid-run resumes without attesting anything twice; a user installs
//! the binaries into both PostgreSQL with `make` and every compiler hidden from `PATH`, and
//! `CREATE EXTENSION` works; a flipped byte, an untrusted, revoked or disagreeing builder, and
//! a binary for another PostgreSQL are each refused with nothing installed.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use pgext::release::Identity;
use pgext_spec::api::Builds;
use pgext_tests::pg::{Cluster, pg15_config, pg18_config};
use pgext_tests::{Cli, TestNode, fixtures, identity};

/// A folder of links to every program in `PATH` but `make` and the C compilers: a machine
/// without a compiler.
fn path_without_compilers(dir: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let compiler = |n: &str| {
        n == "make"
            || n == "cc"
            || n == "c++"
            || n == "cpp"
            || n.contains("gcc")
            || n.contains("g++")
            || n.starts_with("clang")
            || n.starts_with("cpp-")
            || n == "ld"
    };
    for d in std::env::split_paths(&std::env::var_os("PATH").unwrap()) {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let to = dir.join(&name);
            if !compiler(&name) && to.symlink_metadata().is_err() {
                std::os::unix::fs::symlink(e.path(), &to).unwrap();
            }
        }
    }
    for tool in ["make", "gcc", "cc", "clang"] {
        assert!(
            !dir.join(tool).exists(),
            "{tool} is still reachable in the test PATH"
        );
    }
    dir.display().to_string()
}

/// A user of the registry at `url` whose key file is `key.txt` in its home.
fn user(home: &Path, url: &str, who: Option<&Identity>, extra: &[&str]) -> Cli {
    let cli = Cli::new(home);
    let mut args = vec!["registry", "add", "main", url, "--yes"];
    args.extend_from_slice(extra);
    cli.ok(&args);
    if let Some(id) = who {
        std::fs::write(home.join("key.txt"), pgext::keys::format_identity(id)).unwrap();
    }
    cli
}

fn builder_cmd(cli: &Cli, pg_configs: &[&Path], once: bool) -> Command {
    let mut c = Command::new(pgext_tests::pgext_bin());
    c.env("PGEXT_CONFIG", cli.home.join("config.toml"))
        .env("PGEXT_STATE_DIR", cli.home.join("state"))
        .env_remove("PGEXT_SIGNING_KEY")
        .arg("--key")
        .arg(cli.home.join("key.txt"))
        .args(["builder", "run", "--interval", "1", "--work-dir"])
        .arg(cli.home.join("work"));
    for p in pg_configs {
        c.arg("--pg-config").arg(p);
    }
    if once {
        c.arg("--once");
    }
    c
}

fn run_builder(cli: &Cli, pg_configs: &[&Path]) -> String {
    let out = builder_cmd(cli, pg_configs, true).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "builder failed:\n{text}");
    text
}

async fn builds(node: &TestNode, dist: &str, version: &str) -> Builds {
    serde_json::from_value(
        node.json(&format!("/api/v1/dists/{dist}/{version}/builds"))
            .await,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_builders_attest_the_same_bytes_and_binaries_install_without_a_compiler() {
    for pg in [pg15_config(), pg18_config()] {
        pgext_tests::pg::clear_leftovers(&pg, "pgext_bin_c");
    }
    let (pg15, pg18) = (pg15_config(), pg18_config());
    let node = TestNode::start().await;
    let url = node.url();
    let alice = identity("alice", 1);
    let (b1, b2) = (identity("builder-one", 2), identity("builder-two", 3));
    for who in [&alice, &b1, &b2] {
        node.register(who, None).await;
    }
    node.publish_files(
        &alice,
        &fixtures::c_dist("pgext_bin_c", "1.0.0"),
        "pgext_bin_c-1.0.0",
    )
    .await;

    // Two builders, separate processes and folders, at once.
    let tmp = tempfile::tempdir().unwrap();
    let homes: Vec<PathBuf> = ["b1", "b2"].iter().map(|h| tmp.path().join(h)).collect();
    let builders: Vec<Cli> = homes
        .iter()
        .zip([&b1, &b2])
        .map(|(h, id)| user(h, &url, Some(id), &[]))
        .collect();
    let outputs: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = builders
            .iter()
            .map(|b| s.spawn(|| run_builder(b, &[&pg15, &pg18])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for out in &outputs {
        assert_eq!(out.matches("attested at entry").count(), 2, "{out}");
        assert!(out.contains("installcheck passed"), "{out}");
    }
    let doc = builds(&node, "pgext_bin_c", "1.0.0").await;
    assert_eq!(doc.builds.len(), 4, "{doc:?}");
    assert_eq!(doc.matrix.len(), 2, "one row per PostgreSQL major");
    for (row, major) in doc.matrix.iter().zip([15, 18]) {
        assert_eq!(row.target.pg, major);
        assert_eq!(
            row.packages.len(),
            1,
            "both builders made the same bytes for PostgreSQL {major}: {row:?}"
        );
        assert_eq!(row.packages[0].builders.len(), 2);
        assert!(row.packages[0].tests_pass);
    }
    assert_ne!(
        doc.matrix[0].packages[0].sha256, doc.matrix[1].packages[0].sha256,
        "a PostgreSQL 15 binary is not a PostgreSQL 18 binary"
    );
    // The package served is the one attested.
    let b = &doc.builds[0];
    let (status, bytes) = node.get(&format!("/{}", b.url)).await;
    assert_eq!(status, 200);
    assert_eq!(pgext_log::hex(&pgext_log::sha256(&bytes)), b.sha256);

    // A builder killed mid-run resumes where it stopped, attesting nothing twice.
    node.publish_files(
        &alice,
        &fixtures::c_dist("pgext_bin_c", "1.0.1"),
        "pgext_bin_c-1.0.1",
    )
    .await;
    node.publish_files(
        &alice,
        &fixtures::c_dist("pgext_bin_c", "1.0.2"),
        "pgext_bin_c-1.0.2",
    )
    .await;
    let mut child = builder_cmd(&builders[0], &[&pg15], false)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(
        first.contains("1.0.1") && first.contains("attested"),
        "{first}"
    );
    // SIGKILL: no chance to save anything more.
    child.kill().unwrap();
    child.wait().unwrap();
    let again = run_builder(&builders[0], &[&pg15]);
    assert!(
        !again.contains("1.0.1 pg15"),
        "1.0.1 was handled before: {again}"
    );
    assert!(
        again.contains("1.0.2 pg15") || first.contains("1.0.2"),
        "{again}"
    );
    let again = run_builder(&builders[0], &[&pg15]);
    assert!(!again.contains("attested"), "nothing left to do: {again}");
    for v in ["1.0.1", "1.0.2"] {
        let doc = builds(&node, "pgext_bin_c", v).await;
        assert_eq!(doc.builds.len(), 1, "{v} attested once: {doc:?}");
    }
    // A PostgreSQL added later is built for from the first release on, and only it.
    let added = run_builder(&builders[0], &[&pg15, &pg18]);
    assert_eq!(added.matches("pg18-linux").count(), 2, "{added}");
    assert!(!added.contains("pg15"), "{added}");
    for v in ["1.0.1", "1.0.2"] {
        let doc = builds(&node, "pgext_bin_c", v).await;
        let mut majors: Vec<u64> = doc.builds.iter().map(|b| b.target.pg).collect();
        majors.sort_unstable();
        assert_eq!(majors, [15, 18], "{v}: {doc:?}");
    }

    // A user trusting both builders installs without make or any compiler, into each.
    let home = tmp.path().join("user");
    let cli = user(
        &home,
        &url,
        None,
        &[
            "--builder",
            "builder-one",
            "--builder",
            "builder-two",
            "--builder-quorum",
            "2",
        ],
    );
    let path = path_without_compilers(&tmp.path().join("bin"));
    for pg_config in [&pg15, &pg18] {
        let cluster = Cluster::start_of(pg_config);
        let mut env = cluster.env();
        env.push(("PATH".into(), path.clone()));
        let pgc = pg_config.display().to_string();
        let install = [
            "install",
            "pgext_bin_c@1.0.0",
            "--binary",
            "--pg-config",
            &pgc,
        ];
        let (ok, out, err) = cli.run_with(&install, &env);
        assert!(ok, "install from binary failed:\n{out}{err}");
        assert!(
            out.contains("binary package attested by builder-one, builder-two"),
            "{out}"
        );
        cluster.psql("postgres", "CREATE EXTENSION pgext_bin_c");
        assert_eq!(cluster.psql("postgres", "SELECT add_one(41)"), "42");
        let (ok, list, err) = cli.run_with(&["list", "--json", "--pg-config", &pgc], &env);
        assert!(ok, "{err}");
        let list: serde_json::Value = serde_json::from_str(&list).unwrap();
        assert_eq!(list[0]["kind"], "binary");
        assert_eq!(
            list[0]["builders"],
            serde_json::json!(["builder-one", "builder-two"])
        );
        // --source needs the compiler this machine does not have.
        let (ok, _, err) = cli.run_with(
            &[
                "install",
                "pgext_bin_c@1.0.0",
                "--source",
                "--pg-config",
                &pgc,
            ],
            &env,
        );
        assert!(!ok && err.contains("make"), "{err}");
        cluster.psql("postgres", "DROP EXTENSION pgext_bin_c;");
        let (ok, _, err) = cli.run_with(&["uninstall", "pgext_bin_c", "--pg-config", &pgc], &env);
        assert!(ok, "{err}");
    }
    // 1.0.1 is attested by one builder only: not enough for a quorum of 2.
    let pgc = pg15.display().to_string();
    let err = cli.fails(&[
        "install",
        "pgext_bin_c@1.0.1",
        "--binary",
        "--pg-config",
        &pgc,
    ]);
    assert!(err.contains("1 of the 2 trusted builders"), "{err}");
}

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
    let err = cli.fails(&["install", "pgext_bin_t", "--binary", "--pg-config", &pgc]);
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
    let cli = user(
        &tmp.path().join("u2"),
        &node.url(),
        None,
        &["--builder", "somebody-else"],
    );
    let err = cli.fails(&["install", "pgext_bin_t", "--binary", "--pg-config", &pgc]);
    assert!(err.contains("no trusted builder attests"), "{err}");
    assert!(!ext_dir.exists());

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
    let cli = user(
        &tmp.path().join("u3"),
        &node.url(),
        None,
        &["--builder", "builder-one", "--builder", "builder-two"],
    );
    let err = cli.fails(&["install", "pgext_bin_t", "--binary", "--pg-config", &pgc]);
    assert!(err.contains("disagree"), "{err}");
    assert!(!ext_dir.exists());

    // A builder whose key is revoked withdrew what it signed with it.
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
    let cli = user(
        &tmp.path().join("u4"),
        &node.url(),
        None,
        &["--builder", "builder-one"],
    );
    let err = cli.fails(&["install", "pgext_bin_t", "--binary", "--pg-config", &pgc]);
    assert!(err.contains("not an active key"), "{err}");
    assert!(!ext_dir.exists());
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

/// A target like this machine's, for PostgreSQL `pg`.
pub(crate) fn target(pg: u64) -> pgext_spec::binary::Target {
    pgext_spec::binary::Target {
        os: "linux".into(),
        os_version: "debian12".into(),
        arch: "x86_64".into(),
        libc: "glibc2.36".into(),
        pg,
        abi: "blcksz=8192,float8byval=1".into(),
        toolchain: "gcc-12.2.0".into(),
    }
}

/// `who` attests a package of one control file saying `body` as the build of `dist@version`
/// (log entry `index`) for `target`; returns the package's SHA-256.
pub(crate) async fn attest(
    node: &TestNode,
    who: &Identity,
    (dist, version, index): (&str, &str, u64),
    target: pgext_spec::binary::Target,
    body: &str,
) -> String {
    use pgext_spec::binary::{FORMAT_VERSION, Manifest, Package, Postgres, pack};
    use pgext_spec::entry::{Action, Build, Installcheck};
    let doc = node.json(&format!("/api/v1/entries/{index}")).await;
    let release: pgext_spec::entry::Entry = serde_json::from_value(doc["entry"].clone()).unwrap();
    let manifest = Manifest {
        trunk: FORMAT_VERSION.into(),
        package: Package {
            name: dist.into(),
            version: version.into(),
        },
        postgres: Postgres {
            major: target.pg,
            version: format!("PostgreSQL {}", target.pg),
        },
        target: target.clone(),
    };
    let files = std::collections::BTreeMap::from([(
        ("share".to_string(), format!("extension/{dist}.control")),
        (body.as_bytes().to_vec(), false),
    )]);
    let package = pack(&manifest, &files).unwrap();
    let sha256 = pgext_log::hex(&pgext_log::sha256(&package));
    let build = Build {
        dist: dist.into(),
        version: version.into(),
        release_index: index,
        release_hash: pgext_log::leaf_hash(&release.to_bytes()).to_hex(),
        target,
        sha256: sha256.clone(),
        size: package.len() as u64,
        log_sha256: "0".repeat(64),
        installcheck: Installcheck::Passed,
    };
    node.api_as(who)
        .attest(&who.sign(Action::Build(build)), package, "p.trunk")
        .await
        .unwrap();
    sha256
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
