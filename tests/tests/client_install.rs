//! The `pgext` binary, as a user runs it, against a real node and a real PostgreSQL 15 from
//! Debian: registry add, install (SQL-only, C, a dist whose extension has another name;
//! versions chosen by status, range and pin, a yanked one only when named), check, load,
//! upgrade with `ALTER EXTENSION … UPDATE`, unload, uninstall leaving no file behind, list with
//! provenance, name pinning, search, registry failover, `--sudo` (and its refusal without it
//! for an unprivileged user), a local directory with `./configure` and `--cascade`, psql's
//! connection flags, a failing build with its log kept, and an offline install from an archive
//! and its tlog-proof file.

use std::path::{Path, PathBuf};
use std::process::Command;

use pgext_spec::entry::Action;
use pgext_tests::pg::{Cluster, pg_config};
use pgext_tests::{TestNode, fixtures, identity, pgext_bin};

struct Cli<'a> {
    config: PathBuf,
    state: PathBuf,
    cluster: &'a Cluster,
}

impl Cli<'_> {
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(pgext_bin())
            .args(args)
            .env("PGEXT_CONFIG", &self.config)
            .env("PGEXT_STATE_DIR", &self.state)
            .envs(self.cluster.env())
            .output()
            .expect("running pgext");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(ok, "pgext {args:?} failed:\n{out}\n{err}");
        out
    }

    fn fails(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(!ok, "pgext {args:?} succeeded:\n{out}\n{err}");
        err
    }
}

/// Files in PostgreSQL's extension and library folders whose names start with `prefix`.
fn files_named(prefix: &str) -> Vec<PathBuf> {
    let dirs = [
        PathBuf::from(pg_config("--sharedir")).join("extension"),
        PathBuf::from(pg_config("--pkglibdir")),
    ];
    let mut found: Vec<PathBuf> = dirs
        .iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap().flatten().map(|e| e.path()))
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    found.sort();
    found
}

/// A SQL-only dist whose Makefile installs every script, with an upgrade script from `from`.
fn upgradable(version: &str, from: Option<&str>, status: &str) -> Vec<(String, Vec<u8>)> {
    let ext = "pgext_cli_sql";
    let mut files = fixtures::dist(ext, version, ext, status);
    for (path, data) in &mut files {
        if path == "Makefile" {
            *data = String::from_utf8(data.clone())
                .unwrap()
                .replace(
                    &format!("DATA = sql/{ext}--{version}.sql"),
                    "DATA = $(wildcard sql/*--*.sql)",
                )
                .into_bytes();
        }
    }
    if let Some(from) = from {
        files.push((
            format!("sql/{ext}--{from}--{version}.sql"),
            format!(
                "CREATE FUNCTION {ext}_version() RETURNS text LANGUAGE sql AS $$SELECT '{version}'$$;\n"
            )
            .into_bytes(),
        ));
    }
    files
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgext_installs_verified_releases_into_postgres() {
    pgext_tests::pg::clear_leftovers(&pgext_tests::pg::pg15_config(), "pgext_cli_");
    let node = TestNode::start().await;
    let api = node.api();
    let (alice, bob) = (identity("alice", 1), identity("bob", 2));
    for who in [&alice, &bob] {
        node.register(who, None).await;
    }
    let sql = "pgext_cli_sql";
    for (version, from, status) in [
        ("1.0.0", None, "stable"),
        ("1.1.0", Some("1.0.0"), "stable"),
        ("1.2.0", Some("1.1.0"), "testing"),
        ("1.3.0", Some("1.2.0"), "stable"),
    ] {
        node.publish_files(
            &alice,
            &upgradable(version, from, status),
            &format!("{sql}-{version}"),
        )
        .await;
    }
    api.submit(&alice.sign(Action::Yank {
        dist: sql.into(),
        version: "1.3.0".into(),
        reason: Some("drops tables".into()),
    }))
    .await
    .unwrap();
    node.publish_dist(
        &bob,
        "pgext_cli_named",
        "0.2.5",
        "pgext_cli_other",
        "stable",
    )
    .await;
    node.publish_files(
        &bob,
        &fixtures::c_dist("pgext_cli_c", "1.0.0"),
        "pgext_cli_c-1.0.0",
    )
    .await;
    // A dist whose build fails.
    let mut broken = fixtures::dist("pgext_cli_broken", "1.0.0", "pgext_cli_broken", "stable");
    for (path, data) in &mut broken {
        if path == "Makefile" {
            data.extend_from_slice(b"all: missing-prerequisite-file\n");
        }
    }
    node.publish_files(&bob, &broken, "pgext_cli_broken-1.0.0")
        .await;
    let url = node.url();
    let (_, zip) = node
        .get("/dist/pgext_cli_c/1.0.0/pgext_cli_c-1.0.0.zip")
        .await;
    let (status, proof) = node
        .get("/dist/pgext_cli_c/1.0.0/pgext_cli_c-1.0.0.zip.tlog-proof")
        .await;
    assert_eq!(status, 200);
    let vkey = node.vkey();

    tokio::task::spawn_blocking(move || {
        let cluster = Cluster::start();
        let home = tempfile::tempdir().unwrap();
        let cli = Cli {
            config: home.path().join("config.toml"),
            state: home.path().join("state"),
            cluster: &cluster,
        };
        cluster.psql("postgres", "CREATE DATABASE app");
        // The first node is down: every request fails over to the second.
        let dead = pgext_tests::unreachable_url();
        cli.ok(&["registry", "add", "main", &dead, &url, "--yes"]);
        // A second name for the same node, to see pinning at work.
        cli.ok(&["registry", "add", "other", &url, "--vkey", &vkey]);
        let regs = json(&cli.ok(&["registry", "list", "--json"]));
        assert_eq!(regs[0]["urls"], serde_json::json!([dead, url]));
        assert_eq!(regs[1]["vkey"], vkey.as_str());

        // Search finds the dist from a word of its name with a typo (the index may lag a commit).
        pgext_tests::eventually_blocking(30, || {
            let out = cli.ok(&["search", "pgext_cli_nmed"]);
            if out.contains("pgext_cli_named 0.2.5") {
                Ok(())
            } else {
                Err(out)
            }
        });
        let hits = json(&cli.ok(&["search", "--in", "extensions", "pgext_cli_other", "--json"]));
        assert_eq!(hits["hits"][0]["dist"], "pgext_cli_named", "{hits}");

        // The newest stable release that is not yanked is 1.1.0; an exact version comes first.
        let out = cli.ok(&["install", &format!("{sql}@1.0.0")]);
        assert!(out.contains("pgext_cli_sql 1.0.0 installed"), "{out}");
        cli.ok(&["check", sql]);
        assert_eq!(
            cli.ok(&["load", sql, "-d", "app"]).trim(),
            format!("CREATE EXTENSION {sql}")
        );
        assert_eq!(cluster.psql("app", &format!("SELECT {sql}_answer()")), "42");
        let out = cli.ok(&["upgrade", sql, "-d", "app"]);
        assert!(
            out.contains("1.0.0 -> 1.1.0") && out.contains("ALTER EXTENSION"),
            "{out}"
        );
        assert_eq!(
            cluster.psql(
                "app",
                &format!("SELECT extversion FROM pg_extension WHERE extname = '{sql}'")
            ),
            "1.1.0"
        );
        assert_eq!(
            cluster.psql("app", &format!("SELECT {sql}_version()")),
            "1.1.0"
        );
        let out = cli.ok(&["upgrade", sql]);
        assert!(out.contains("1.1.0 is the newest allowed"), "{out}");
        // Ranges and statuses: 1.2.0 is testing, 1.3.0 yanked.
        let err = cli.fails(&["install", &format!("{sql}>=1.2")]);
        assert!(err.contains("1.2.0 is testing: add --testing"), "{err}");
        let out = cli.ok(&["install", &format!("{sql}>=1.2"), "--testing", "--json"]);
        assert_eq!(json(&out)["version"], "1.2.0");
        let (ok, out, err) = cli.run(&["install", &format!("{sql}@1.3.0")]);
        assert!(ok, "{out}{err}");
        assert!(err.contains("yanked (drops tables)"), "{err}");
        // Pinned to `main`: another registry is refused unless asked to move the pin.
        let err = cli.fails(&["--registry", "other", "install", sql]);
        assert!(err.contains("pinned to registry main"), "{err}");
        cli.ok(&["unload", sql, "-d", "app"]);
        assert_eq!(
            cluster.psql(
                "app",
                &format!("SELECT count(*) FROM pg_extension WHERE extname = '{sql}'")
            ),
            "0"
        );
        assert!(!files_named(sql).is_empty());
        cli.ok(&["uninstall", sql]);
        assert_eq!(files_named(sql), Vec::<PathBuf>::new(), "files left behind");

        // As a user who may not write PostgreSQL's folders: refused before anything is written,
        // with the way out named; through sudo (as root here, the real sudo), installed.
        let err = as_nobody(&url, &vkey, &["install", "pgext_cli_named"]);
        assert!(
            err.contains("is not writable by you: run again with --sudo"),
            "{err}"
        );
        assert_eq!(files_named("pgext_cli_other"), Vec::<PathBuf>::new());
        cli.ok(&["install", "pgext_cli_named", "--sudo"]);
        cli.ok(&["uninstall", "pgext_cli_named", "--sudo"]);
        assert_eq!(files_named("pgext_cli_other"), Vec::<PathBuf>::new());

        // The extension's name is not the dist's: load finds it from the control file installed.
        cli.ok(&["install", "pgext_cli_named"]);
        let list = json(&cli.ok(&["list", "--json"]));
        let item = &list.as_array().unwrap()[0];
        assert_eq!(item["dist"], "pgext_cli_named");
        assert_eq!(item["extensions"], serde_json::json!(["pgext_cli_other"]));
        assert_eq!(item["provenance"]["publisher"], "bob");
        assert!(item["provenance"]["index"].as_u64().is_some(), "{item}");
        let text = cli.ok(&["list"]);
        assert!(
            text.contains("pgext_cli_named 0.2.5 [pgext_cli_other] from"),
            "{text}"
        );
        cli.ok(&["load", "pgext_cli_named", "-d", "app"]);
        assert_eq!(cluster.psql("app", "SELECT pgext_cli_other_answer()"), "42");
        cli.ok(&["unload", "pgext_cli_other", "-d", "app"]);
        cli.ok(&["uninstall", "pgext_cli_named"]);
        assert_eq!(files_named("pgext_cli_other"), Vec::<PathBuf>::new());

        // A C extension: built, tested, loaded, and its library removed with the rest.
        cli.ok(&["install", "pgext_cli_c", "--verbose"]);
        assert!(
            files_named("pgext_cli_c")
                .iter()
                .any(|p| p.extension().is_some_and(|e| e == "so"))
        );
        cli.ok(&["check", "pgext_cli_c"]);
        cli.ok(&["load", "pgext_cli_c", "-d", "app"]);
        assert_eq!(cluster.psql("app", "SELECT add_one(41)"), "42");
        cli.ok(&["unload", "pgext_cli_c", "-d", "app"]);
        cli.ok(&["uninstall", "pgext_cli_c"]);
        assert_eq!(files_named("pgext_cli_c"), Vec::<PathBuf>::new());

        // A failing build: a clear error, its log kept, nothing installed.
        let err = cli.fails(&["install", "pgext_cli_broken"]);
        assert!(
            err.contains("make failed") && err.contains("build log is kept at"),
            "{err}"
        );
        let log = err.split("kept at ").nth(1).unwrap().trim();
        let log_text = std::fs::read_to_string(log).unwrap();
        assert!(log_text.contains("missing-prerequisite-file"), "{log_text}");
        assert_eq!(files_named("pgext_cli_broken"), Vec::<PathBuf>::new());
        assert_eq!(json(&cli.ok(&["list", "--json"])), serde_json::json!([]));

        local_directory(&cli, &cluster);
        offline_install(&cluster, &vkey, &zip, &proof);
    })
    .await
    .unwrap();
    node.node.shutdown().await;
}

/// With no node reachable, an archive and its tlog-proof file install; the same proof with a
/// changed archive is refused before anything is written.
fn offline_install(cluster: &Cluster, vkey: &str, zip: &[u8], proof: &[u8]) {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path();
    // Nothing listens on a port the OS just gave back.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    std::fs::write(
        dir.join("config.toml"),
        format!("[[registry]]\nname = \"main\"\nurls = [\"http://{dead}\"]\nvkey = \"{vkey}\"\n"),
    )
    .unwrap();
    let cli = Cli {
        config: dir.join("config.toml"),
        state: dir.join("state"),
        cluster,
    };
    let write = |name: &str, bytes: &[u8]| -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let proof_path = write("pgext_cli_c-1.0.0.zip.tlog-proof", proof);
    let mut bad = zip.to_vec();
    let at = bad.len() / 2;
    bad[at] ^= 1;
    let bad_path = write("bad-pgext_cli_c-1.0.0.zip", &bad);
    let err = cli.fails(&[
        "install",
        bad_path.to_str().unwrap(),
        "--proof",
        proof_path.to_str().unwrap(),
    ]);
    assert!(err.contains("SHA-256"), "{err}");
    assert_eq!(files_named("pgext_cli_c"), Vec::<PathBuf>::new());

    let zip_path = write("pgext_cli_c-1.0.0.zip", zip);
    let args = |cmd: &'static str| -> Vec<String> {
        vec![
            cmd.into(),
            zip_path.display().to_string(),
            "--proof".into(),
            proof_path.display().to_string(),
        ]
    };
    let verify: Vec<String> = args("verify");
    let out = cli.ok(&verify.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.contains("pgext_cli_c 1.0.0 (stable) verified"), "{out}");
    let install = args("install");
    let out = cli.ok(&install.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.contains("pgext_cli_c 1.0.0 installed"), "{out}");
    assert!(out.contains("published by bob"), "{out}");
    cli.ok(&["uninstall", "pgext_cli_c"]);
    assert_eq!(files_named("pgext_cli_c"), Vec::<PathBuf>::new());
    assert!(Path::new(&zip_path).exists());
}

/// A project in a local directory: built from a copy (its `./configure` run first, the
/// checkout left untouched), loaded with `--cascade` for the extension it requires, and reached
/// through `-h/-p/-U/-d` instead of the `PG*` variables.
fn local_directory(cli: &Cli, cluster: &Cluster) {
    let ext = "pgext_cli_local";
    let src = tempfile::tempdir().unwrap();
    let mut files = fixtures::dist(ext, "0.1.0", ext, "stable");
    for (path, data) in &mut files {
        if path == "Makefile" {
            // Without configure's output the build fails.
            data.splice(0..0, b"include configured.mk\n".iter().copied());
        } else if path.ends_with(".control") {
            data.extend_from_slice(b"requires = 'hstore'\n");
        }
    }
    files.push((
        "configure".into(),
        b"#!/bin/sh\necho \"EXTRA_CLEAN = configured.mk\" > configured.mk\n".to_vec(),
    ));
    for (path, data) in &files {
        let p = src.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
    }
    let (ok, out, err) = cli.run(&["install", src.path().to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert!(err.contains("without any log verification"), "{err}");
    assert!(
        !src.path().join("configured.mk").exists(),
        "the build wrote into the source directory"
    );
    let list = json(&cli.ok(&["list", "--json"]));
    assert_eq!(list[0]["dist"], ext);
    assert!(list[0]["provenance"].is_null(), "{list}");

    let by_flags = |args: &[&str]| {
        let port = cluster.port.to_string();
        let host = cluster.host().display().to_string();
        let out = Command::new(pgext_bin())
            .args(args)
            .args(["-h", &host, "-p", &port, "-U", "postgres", "-d", "app"])
            .env("PGEXT_CONFIG", &cli.config)
            .env("PGEXT_STATE_DIR", &cli.state)
            .env_remove("PGHOST")
            .env_remove("PGPORT")
            .env_remove("PGUSER")
            .env_remove("PGDATABASE")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = by_flags(&["load", ext]);
    assert!(!ok && err.contains("hstore"), "{err}");
    let (ok, err) = by_flags(&["load", ext, "--cascade"]);
    assert!(ok, "{err}");
    assert_eq!(
        cluster.psql(
            "app",
            "SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension WHERE extname <> 'plpgsql'"
        ),
        format!("hstore,{ext}")
    );
    let (ok, err) = by_flags(&["unload", ext]);
    assert!(ok, "{err}");
    cluster.psql("app", "DROP EXTENSION hstore");
    cli.ok(&["uninstall", ext]);
    assert_eq!(files_named(ext), Vec::<PathBuf>::new());
}

/// Runs pgext as the unprivileged `nobody` (the tests run as root in CI) with a configuration
/// and state of its own; returns stderr of the failure expected.
fn as_nobody(url: &str, vkey: &str, args: &[&str]) -> String {
    use std::os::unix::fs::PermissionsExt as _;
    let home = tempfile::tempdir().unwrap();
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let config = home.path().join("config.toml");
    std::fs::write(
        &config,
        format!("[[registry]]\nname = \"main\"\nurls = [\"{url}\"]\nvkey = \"{vkey}\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    // The build folder may sit where nobody cannot reach (under /root in CI): run a copy.
    let bin = home.path().join("pgext");
    std::fs::copy(pgext_bin(), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .arg(&bin)
        .args(args)
        .env("PGEXT_CONFIG", &config)
        .env("PGEXT_STATE_DIR", home.path().join("state"))
        .env("HOME", home.path())
        .current_dir(home.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{err}");
    err
}
