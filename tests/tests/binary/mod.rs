//! Binary packages end to end (`spec/binary.md`): two builders, separate processes in separate
//! folders, build a real C extension for PostgreSQL 15 and 18 from a node and attest identical
//! bytes; a builder killed mid-run resumes without attesting anything twice; a user installs
//! the binaries into both PostgreSQL with `make` and every compiler hidden from `PATH`, and
//! `CREATE EXTENSION` works; a flipped byte, an untrusted, revoked or disagreeing builder, and
//! a binary for another PostgreSQL are each refused with nothing installed (`refusals.rs`,
//! with the node's refusals of bad attestations and mirrors replicating packages).

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use pgext::release::Identity;
use pgext_spec::api::Builds;
use pgext_tests::pg::{Cluster, pg15_config, pg18_config};
use pgext_tests::{Cli, TestNode, fixtures, identity};

mod refusals;

/// A folder of links to every program in `PATH` but `make` and the C compilers: a machine
/// without a compiler.
pub(crate) fn path_without_compilers(dir: &Path) -> String {
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
pub(crate) fn user(home: &Path, url: &str, who: Option<&Identity>, extra: &[&str]) -> Cli {
    let cli = Cli::new(home);
    let mut args = vec!["registry", "add", "main", url, "--yes"];
    args.extend_from_slice(extra);
    cli.ok(&args);
    if let Some(id) = who {
        std::fs::write(home.join("key.txt"), pgext::keys::format_identity(id)).unwrap();
    }
    cli
}

pub(crate) fn builder_cmd(cli: &Cli, pg_configs: &[&Path], once: bool) -> Command {
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

pub(crate) fn run_builder(cli: &Cli, pg_configs: &[&Path]) -> String {
    let out = builder_cmd(cli, pg_configs, true).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "builder failed:\n{text}");
    text
}

pub(crate) async fn builds(node: &TestNode, dist: &str, version: &str) -> Builds {
    serde_json::from_value(
        node.json(&format!("/api/v1/dists/{dist}/{version}/builds"))
            .await,
    )
    .unwrap()
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
