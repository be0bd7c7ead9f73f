//! The real `pgxnclient` (PyPI, installed by scripts/bootstrap) against a node, installing into a
//! real PostgreSQL 15 built from Debian's packages: info, versions, download, install, check, load,
//! unload, uninstall, for a SQL-only dist, a dist whose extension has another name, and a C
//! extension.

use std::path::PathBuf;
use std::process::Command;

use pgext_tests::pg::{Cluster, pg_config};
use pgext_tests::{TestNode, fixtures, identity, pgxn_bin};
use sha1::Digest;

struct Pgxn<'a> {
    bin: PathBuf,
    mirror: String,
    cluster: &'a Cluster,
    cwd: PathBuf,
}

impl Pgxn<'_> {
    /// Runs `pgxn <cmd> --mirror URL args…` and returns (success, stdout+stderr).
    fn run(&self, cmd: &str, args: &[&str]) -> (bool, String) {
        let out = Command::new(&self.bin)
            .arg(cmd)
            .args(["--mirror", &self.mirror])
            .args(args)
            .envs(self.cluster.env())
            .current_dir(&self.cwd)
            .output()
            .expect("running pgxn");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Runs a command until its output contains `want` (at most 30 s).
    fn eventually(&self, cmd: &str, args: &[&str], want: &str) -> String {
        pgext_tests::eventually_blocking(30, || {
            let out = self.ok(cmd, args);
            if out.contains(want) {
                Ok(out)
            } else {
                Err(format!("pgxn {cmd} {args:?} never showed {want}:\n{out}"))
            }
        })
    }

    fn ok(&self, cmd: &str, args: &[&str]) -> String {
        let (ok, text) = self.run(cmd, args);
        assert!(ok, "pgxn {cmd} {args:?} failed:\n{text}");
        text
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgxnclient_end_to_end() {
    let node = TestNode::start().await;
    let (alice, bob) = (identity("alice", 1), identity("bob", 2));
    node.register(&alice, Some("Alice")).await;
    node.register(&bob, Some("Bob")).await;
    node.publish_dist(&alice, "pgext_pair", "1.0.0", "pgext_pair", "stable")
        .await;
    node.publish_dist(&alice, "pgext_pair", "1.1.0", "pgext_pair", "testing")
        .await;
    node.publish_dist(&bob, "pgext_widget", "0.2.5", "pgext_gizmo", "stable")
        .await;
    node.publish_files(
        &bob,
        &fixtures::c_dist("pgext_hello_c", "1.0.0"),
        "pgext_hello_c-1.0.0",
    )
    .await;
    let mirror = format!("{}/", node.url());
    let zip_sha1 = {
        let (_, zip) = node
            .get("/dist/pgext_pair/1.0.0/pgext_pair-1.0.0.zip")
            .await;
        pgext_log::hex(&sha1::Sha1::digest(&zip))
    };

    // pgxnclient and PostgreSQL are blocking programs: run them off the runtime serving the node.
    tokio::task::spawn_blocking(move || {
        let cluster = Cluster::start();
        let work = tempfile::tempdir().unwrap();
        let pgxn = Pgxn {
            bin: pgxn_bin(),
            mirror,
            cluster: &cluster,
            cwd: work.path().to_path_buf(),
        };
        let sharedir = PathBuf::from(pg_config("--sharedir")).join("extension");
        let pkglibdir = PathBuf::from(pg_config("--pkglibdir"));
        cluster.psql("postgres", "CREATE DATABASE app");

        let info = pgxn.ok("info", &["pgext_pair"]);
        assert!(
            info.contains("name: pgext_pair")
                && info.contains("version: 1.0.0")
                && info.contains(&format!("sha1: {zip_sha1}")),
            "{info}"
        );
        let info = pgxn.ok("info", &["--testing", "pgext_pair"]);
        assert!(
            info.contains("version: 1.1.0") && info.contains("release_status: testing"),
            "{info}"
        );
        let versions = pgxn.ok("info", &["--versions", "pgext_pair"]);
        assert!(
            versions.contains("pgext_pair 1.1.0 testing")
                && versions.contains("pgext_pair 1.0.0 stable"),
            "{versions}"
        );
        // `pgxn search` through the node's search API (indexed right after each commit).
        // The newest stable release stands for the dist; pgxnclient shows highlights as *…*.
        let found = pgxn.eventually("search", &["--dist", "pgext_pair"], "pgext_pair 1.0.0");
        assert!(found.contains("*pair*"), "{found}");
        pgxn.eventually("search", &["--ext", "pgext_gizmo"], "pgext_widget 0.2.5");
        pgxn.eventually("search", &["--docs", "pgext_pair"], "pgext_pair");
        let readme = pgxn.ok("info", &["--readme", "pgext_pair"]);
        assert!(readme.contains("A test distribution."), "{readme}");

        pgxn.ok("download", &["pgext_pair"]);
        let zip = std::fs::read(work.path().join("pgext_pair-1.0.0.zip"))
            .expect("pgxn download saved the zip");
        assert_eq!(pgext_log::hex(&sha1::Sha1::digest(&zip)), zip_sha1);
        // Named by its extension, the widget dist is found through /extension/.
        pgxn.ok("download", &["pgext_gizmo"]);
        assert!(work.path().join("pgext_widget-0.2.5.zip").exists());

        for (spec, ext, check_sql, want) in [
            (
                "pgext_pair",
                "pgext_pair",
                "SELECT pgext_pair_answer()",
                "42",
            ),
            (
                "pgext_gizmo",
                "pgext_gizmo",
                "SELECT pgext_gizmo_answer()",
                "42",
            ),
            ("pgext_hello_c", "pgext_hello_c", "SELECT add_one(41)", "42"),
        ] {
            let control = sharedir.join(format!("{ext}.control"));
            pgxn.ok("install", &[spec]);
            assert!(
                control.exists(),
                "{spec}: no {} after install",
                control.display()
            );
            let check = pgxn.ok("check", &[spec]);
            assert!(
                check.contains("passed") || check.contains("ok"),
                "{spec} check:\n{check}"
            );
            pgxn.ok("load", &["-d", "app", spec]);
            assert_eq!(cluster.psql("app", check_sql), want, "{spec}");
            assert_eq!(
                cluster.psql(
                    "app",
                    &format!("SELECT count(*) FROM pg_extension WHERE extname = '{ext}'")
                ),
                "1"
            );
            pgxn.ok("unload", &["-d", "app", spec]);
            assert_eq!(
                cluster.psql(
                    "app",
                    &format!("SELECT count(*) FROM pg_extension WHERE extname = '{ext}'")
                ),
                "0"
            );
            pgxn.ok("uninstall", &[spec]);
            assert!(
                !control.exists(),
                "{spec}: {} left after uninstall",
                control.display()
            );
        }
        assert!(
            !pkglibdir.join("pgext_hello_c.so").exists(),
            "the C module was not uninstalled"
        );

        // Unknown names fail cleanly.
        let (ok, text) = pgxn.run("info", &["pgext_nosuch"]);
        assert!(!ok, "{text}");
    })
    .await
    .unwrap();
    node.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgxnclient_installs_from_a_mirror_with_the_sequencer_stopped() {
    let origin = TestNode::federated("origin.pgext.test/log", &[], &[]).await;
    let mirror = TestNode::federated(
        "mirror.pgext.test/log",
        &[origin.p2p_addr()],
        &[("main", origin.vkey())],
    )
    .await;
    let carol = identity("carol", 3);
    let receipt = origin.register(&carol, Some("Carol")).await;
    assert_eq!(receipt.index, 0);
    origin
        .publish_dist(
            &carol,
            "pgext_mirrored",
            "1.2.0",
            "pgext_mirrored",
            "stable",
        )
        .await;
    mirror.wait_size("/origins/main", 2, 60).await;
    origin.node.shutdown().await;
    let base = format!("{}/origins/main/", mirror.url());

    tokio::task::spawn_blocking(move || {
        let cluster = Cluster::start();
        let work = tempfile::tempdir().unwrap();
        let pgxn = Pgxn {
            bin: pgxn_bin(),
            mirror: base,
            cluster: &cluster,
            cwd: work.path().to_path_buf(),
        };
        let control = PathBuf::from(pg_config("--sharedir"))
            .join("extension")
            .join("pgext_mirrored.control");
        // A mirror indexes what it mirrors.
        pgxn.eventually("search", &["pgext_mirrored"], "pgext_mirrored 1.2.0");
        let info = pgxn.ok("info", &["pgext_mirrored"]);
        assert!(info.contains("version: 1.2.0"), "{info}");
        pgxn.ok("install", &["pgext_mirrored"]);
        assert!(control.exists());
        cluster.psql("postgres", "CREATE DATABASE mirrored");
        pgxn.ok("load", &["-d", "mirrored", "pgext_mirrored"]);
        assert_eq!(
            cluster.psql("mirrored", "SELECT pgext_mirrored_answer()"),
            "42"
        );
        pgxn.ok("unload", &["-d", "mirrored", "pgext_mirrored"]);
        pgxn.ok("uninstall", &["pgext_mirrored"]);
        assert!(!control.exists());
    })
    .await
    .unwrap();
    mirror.node.shutdown().await;
}
