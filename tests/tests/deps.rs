//! Dependencies, as a user installs them: dists whose METAs declare what real ones declare
//! (pg_partman 5.1.0 requires PostgreSQL 14 and recommends pg_jobmon, whose control file
//! requires contrib's dblink; pgTAP requires plpgsql) resolved, verified, planned and installed
//! into PostgreSQL 15 and loaded with `--cascade` (asked first on a terminal, through `script`);
//! and each bad input refused with the chain that caused it and nothing installed: a PostgreSQL
//! older than required, a cycle, conflicting ranges, a dependency only in an untrusted
//! registry, one routed to another registry's private names.

use std::path::PathBuf;
use std::process::Command;

use pgext_tests::pg::{Cluster, pg_config};
use pgext_tests::{Cli, TestNode, fixtures, identity, pgext_bin};
use serde_json::{Value, json};

/// A SQL-only dist providing `ext`, with META `prereqs` and a control file `requires`.
pub(crate) fn dist_with(
    name: &str,
    version: &str,
    ext: &str,
    prereqs: Value,
    requires: Option<&str>,
) -> Vec<(String, Vec<u8>)> {
    let mut files = fixtures::dist(name, version, ext, "stable");
    for (path, data) in &mut files {
        if path == "META.json" {
            let mut meta: Value = serde_json::from_slice(data).unwrap();
            // The META spec refuses an empty `prereqs`.
            if prereqs.as_object().is_some_and(|o| !o.is_empty()) {
                meta["prereqs"] = prereqs.clone();
            }
            *data = serde_json::to_vec_pretty(&meta).unwrap();
        } else if *path == format!("{ext}.control") {
            if let Some(r) = requires {
                data.extend_from_slice(format!("requires = '{r}'\n").as_bytes());
            }
        }
    }
    files
}

/// `pgext ARGS` as `cli` on a terminal (`script` gives it one), typing `answer`; what it showed.
fn on_a_terminal(cli: &Cli, cluster: &Cluster, args: &str, answer: &str) -> String {
    use std::io::Write as _;
    let mut child = Command::new("script")
        .args([
            "-qec",
            &format!("{} {args}", pgext_bin().display()),
            "/dev/null",
        ])
        .env("PGEXT_CONFIG", cli.home.join("config.toml"))
        .env("PGEXT_STATE_DIR", cli.home.join("state"))
        .envs(cluster.env())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running script");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(answer.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Files of the extension folder whose names start with one of `prefixes`.
pub(crate) fn ours(prefixes: &[&str]) -> Vec<PathBuf> {
    let dir = PathBuf::from(pg_config("--sharedir")).join("extension");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            prefixes.iter().any(|x| n.starts_with(x))
        })
        .collect();
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependencies_resolve_verify_install_and_load() {
    let names = ["pg_partman", "pg_jobmon", "pgtap", "pgext_dep_"];
    for n in names {
        pgext_tests::pg::clear_leftovers(&pgext_tests::pg::pg15_config(), n);
    }
    let node = TestNode::start().await;
    let other = TestNode::start().await;
    let alice = identity("alice", 1);
    node.register(&alice, None).await;
    other.register(&alice, None).await;
    let publish = |files: Vec<(String, Vec<u8>)>, prefix: String| {
        let node = &node;
        let alice = &alice;
        async move {
            node.publish_files(alice, &files, &prefix).await;
        }
    };
    // As their real METAs declare them.
    publish(
        dist_with(
            "pg_jobmon",
            "1.4.1",
            "pg_jobmon",
            json!({"runtime": {"requires": {"PostgreSQL": "9.4.0"}}}),
            Some("dblink"),
        ),
        "pg_jobmon-1.4.1".into(),
    )
    .await;
    publish(
        dist_with(
            "pg_partman",
            "5.1.0",
            "pg_partman",
            json!({"runtime": {"requires": {"PostgreSQL": "14.0.0"}, "recommends": {"pg_jobmon": "1.4.1"}}}),
            None,
        ),
        "pg_partman-5.1.0".into(),
    )
    .await;
    publish(
        dist_with(
            "pgTAP",
            "1.3.5",
            "pgtap",
            json!({"runtime": {"requires": {"plpgsql": 0, "PostgreSQL": "9.1.0"}, "recommends": {"PostgreSQL": "9.4.0"}}}),
            None,
        ),
        "pgTAP-1.3.5".into(),
    )
    .await;
    // Bad inputs.
    let req = |deps: Value| json!({"runtime": {"requires": deps}});
    let bad: Vec<(&str, &str, Value)> = vec![
        (
            "pgext_dep_future",
            "1.0.0",
            req(json!({"PostgreSQL": "99.0.0"})),
        ),
        ("pgext_dep_a", "1.0.0", req(json!({"pgext_dep_b": 0}))),
        ("pgext_dep_b", "1.0.0", req(json!({"pgext_dep_a": "1.0.0"}))),
        (
            "pgext_dep_root",
            "1.0.0",
            req(json!({"pgext_dep_x": ">= 2.0.0", "pgext_dep_y": 0})),
        ),
        (
            "pgext_dep_y",
            "1.0.0",
            req(json!({"pgext_dep_x": "< 2.0.0"})),
        ),
        ("pgext_dep_x", "1.0.0", json!({})),
        ("pgext_dep_x", "2.0.0", json!({})),
        (
            "pgext_dep_far",
            "1.0.0",
            req(json!({"pgext_dep_faraway": 0})),
        ),
        (
            "pgext_dep_conf",
            "1.0.0",
            req(json!({"pgext_dep_acme_tool": 0})),
        ),
        ("pgext_dep_acme_tool", "1.0.0", json!({})),
        ("pgext_dep_user", "1.0.0", req(json!({"pgext_dep_shim": 0}))),
        (
            "pgext_dep_conflict",
            "1.0.0",
            json!({"runtime": {"conflicts": {"plpgsql": "< 99.0.0"}}}),
        ),
    ];
    for (name, version, prereqs) in bad {
        publish(
            dist_with(name, version, name, prereqs, None),
            format!("{name}-{version}"),
        )
        .await;
    }
    // A public dist named like the private registry's names, providing an extension a public
    // dist requires: never taken from the public registry.
    publish(
        dist_with(
            "pgext_dep_acme_core",
            "1.0.0",
            "pgext_dep_shim",
            json!({}),
            None,
        ),
        "pgext_dep_acme_core-1.0.0".into(),
    )
    .await;
    // Only in a registry the client does not trust.
    other
        .publish_files(
            &alice,
            &dist_with(
                "pgext_dep_faraway",
                "1.0.0",
                "pgext_dep_faraway",
                json!({}),
                None,
            ),
            "pgext_dep_faraway-1.0.0",
        )
        .await;
    let (url, other_url, other_vkey) = (node.url(), other.url(), other.vkey());

    tokio::task::spawn_blocking(move || {
        let cluster = Cluster::start();
        let home = tempfile::tempdir().unwrap();
        let cli = Cli::new(home.path()).with_env(cluster.env());
        cluster.psql("postgres", "CREATE DATABASE app");
        cli.ok(&["registry", "add", "main", &url, "--yes"]);
        // A private registry owning acme_* names (the other node, which has no pgext_dep_acme_tool).
        cli.ok(&[
            "registry", "add", "acme", &other_url, "--vkey", &other_vkey, "--names", "pgext_dep_acme_*",
        ]);

        // The plan, and nothing installed by a dry run.
        let plan: Value = serde_json::from_str(&cli.ok(&[
            "install",
            "pg_partman",
            "--with-recommends",
            "--dry-run",
            "--json",
        ]))
        .unwrap();
        let order: Vec<&str> = plan["install"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["dist"].as_str().unwrap())
            .collect();
        assert_eq!(order, ["pg_jobmon", "pg_partman"], "{plan}");
        assert_eq!(plan["install"][0]["registry"], "main");
        assert!(
            plan["install"][0]["why"][0]
                .as_str()
                .unwrap()
                .contains("recommended >= 1.4.1 by pg_partman 5.1.0"),
            "{plan}"
        );
        // dblink, which pg_jobmon's control file requires, ships with PostgreSQL.
        let kept = &plan["kept"][0];
        assert_eq!(kept["name"], "dblink", "{plan}");
        assert_eq!(kept["how"], "ships with PostgreSQL", "{plan}");
        assert!(ours(&["pg_partman", "pg_jobmon"]).is_empty());
        // Without --with-recommends, a note says what was left out.
        let out = cli.ok(&["install", "pg_partman", "--dry-run"]);
        assert!(
            out.contains("install pg_partman 5.1.0 from main (source): requested")
                && !out.contains("install pg_jobmon")
                && out.contains("recommends pg_jobmon (>= 1.4.1): add --with-recommends"),
            "{out}"
        );

        // On a terminal pgext asks first: "n" installs nothing.
        let shown = on_a_terminal(&cli, &cluster, "install pg_partman --with-recommends", "n\n");
        assert!(
            shown.contains("install pg_jobmon 1.4.1 from main (source)")
                && shown.contains("Install? [y/N]")
                && shown.contains("nothing was installed"),
            "{shown}"
        );
        assert!(ours(&["pg_partman", "pg_jobmon"]).is_empty());

        // Installed with its recommendation, then loaded with what they require.
        let out = cli.ok(&["install", "pg_partman", "--with-recommends", "--yes"]);
        assert!(
            out.contains("pg_jobmon 1.4.1 installed") && out.contains("pg_partman 5.1.0 installed"),
            "{out}"
        );
        let list: Value = serde_json::from_str(&cli.ok(&["list", "--json"])).unwrap();
        let partman = list
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["dist"] == "pg_partman")
            .unwrap();
        assert_eq!(partman["requires"], json!(["pg_jobmon"]), "{list}");
        let out = cli.ok(&["load", "pg_partman", "--cascade", "-d", "app"]);
        assert!(
            out.find("CREATE EXTENSION pg_jobmon").unwrap()
                < out.find("CREATE EXTENSION pg_partman").unwrap(),
            "{out}"
        );
        let exts = cluster.psql(
            "app",
            "SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension",
        );
        assert!(
            exts.contains("dblink") && exts.contains("pg_jobmon") && exts.contains("pg_partman"),
            "{exts}"
        );
        // Installed dependencies are kept by the next plan, not installed again.
        let out = cli.ok(&["install", "pg_partman", "--with-recommends", "--dry-run"]);
        assert!(
            out.contains("keep pg_jobmon 1.4.1: installed by pgext (pg_jobmon 1.4.1)"),
            "{out}"
        );

        // pgTAP's plpgsql is PostgreSQL's own.
        let out = cli.ok(&["install", "pgTAP", "--yes"]);
        assert!(
            out.contains("keep plpgsql 1.0: ships with PostgreSQL, required by pgTAP 1.3.5"),
            "{out}"
        );
        cli.ok(&["load", "pgtap", "--cascade", "-d", "app"]);

        // Bad inputs: each a clear error, nothing installed.
        let before = ours(&["pgext_dep_"]);
        assert!(before.is_empty(), "{before:?}");
        let err = cli.fails(&["install", "pgext_dep_future", "--yes"]);
        assert!(
            err.contains("pgext_dep_future 1.0.0 requires PostgreSQL >= 99.0.0")
                && err.contains("is PostgreSQL 15."),
            "{err}"
        );
        let err = cli.fails(&["install", "pgext_dep_a", "--yes"]);
        assert!(
            err.contains(
                "a dependency cycle: pgext_dep_a 1.0.0 requires pgext_dep_b 1.0.0 requires pgext_dep_a 1.0.0"
            ),
            "{err}"
        );
        let err = cli.fails(&["install", "pgext_dep_root", "--yes"]);
        assert!(
            err.contains("no release of pgext_dep_x")
                && err.contains("required >= 2.0.0 by pgext_dep_root 1.0.0")
                && err.contains("required < 2.0.0 by pgext_dep_y 1.0.0 (via pgext_dep_root 1.0.0)"),
            "{err}"
        );
        let err = cli.fails(&["install", "pgext_dep_far", "--yes"]);
        assert!(
            err.contains("pgext_dep_faraway (required by pgext_dep_far 1.0.0) is not in PostgreSQL's installation nor in any trusted registry (asked: main)"),
            "{err}"
        );
        let err = cli.fails(&["install", "pgext_dep_conf", "--yes"]);
        assert!(
            err.contains("routed to registry acme alone"),
            "{err}"
        );
        let err = cli.fails(&["install", "pgext_dep_user", "--yes"]);
        assert!(
            err.contains("was found in registry main as pgext_dep_acme_core 1.0.0, but registry acme owns the name pgext_dep_acme_core"),
            "{err}"
        );
        let err = cli.fails(&["install", "pgext_dep_conflict", "--yes"]);
        assert!(
            err.contains("pgext_dep_conflict 1.0.0 conflicts with plpgsql < 99.0.0 (1.0.0, from ships with PostgreSQL)"),
            "{err}"
        );
        assert_eq!(ours(&["pgext_dep_"]), before);
        // --no-deps installs only what is named.
        let out = cli.ok(&["install", "pgext_dep_far", "--no-deps", "--yes"]);
        assert!(out.contains("pgext_dep_far 1.0.0 installed"), "{out}");
        assert!(ours(&["pgext_dep_faraway"]).is_empty());
        // Removing a dependency first says what needed it.
        let (ok, _, err) = cli.run(&["uninstall", "pg_jobmon"]);
        assert!(
            ok && err.contains("pg_partman 5.1.0 requires pg_jobmon"),
            "{err}"
        );
        for d in ["pgext_dep_far", "pgTAP", "pg_partman"] {
            cli.ok(&["uninstall", d]);
        }
        assert!(ours(&["pg_partman", "pg_jobmon", "pgtap", "pgext_dep_"]).is_empty());
    })
    .await
    .unwrap();
}

/// `check` of a dist whose tests need another extension (as pgTAP is for many): the test
/// requirement is resolved, verified, built and staged into a throwaway PostgreSQL where the
/// tests run; the user's installation never gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_stages_test_requirements_in_a_throwaway_postgres() {
    pgext_tests::pg::clear_leftovers(&pgext_tests::pg::pg15_config(), "pgext_ck_");
    let node = TestNode::start().await;
    let alice = identity("alice", 1);
    node.register(&alice, None).await;
    node.publish_files(
        &alice,
        &dist_with("pgext_ck_tap", "1.0.0", "pgext_ck_tap", json!({}), None),
        "pgext_ck_tap-1.0.0",
    )
    .await;
    let mut files = dist_with(
        "pgext_ck_dist",
        "1.0.0",
        "pgext_ck_dist",
        json!({"test": {"requires": {"pgext_ck_tap": "1.0.0"}}}),
        None,
    );
    let col = "pgext_ck_tap_answer";
    let sql = format!(
        "CREATE EXTENSION pgext_ck_tap;\nCREATE EXTENSION pgext_ck_dist;\nSELECT {col}();\n"
    );
    for (path, data) in &mut files {
        if path == "test/sql/basic.sql" {
            *data = sql.clone().into_bytes();
        } else if path == "test/expected/basic.out" {
            *data = format!(
                "{sql} {col} \n{}\n {:>w$}\n(1 row)\n\n",
                "-".repeat(col.len() + 2),
                42,
                w = col.len()
            )
            .into_bytes();
        }
    }
    node.publish_files(&alice, &files, "pgext_ck_dist-1.0.0")
        .await;
    let url = node.url();

    tokio::task::spawn_blocking(move || {
        let cluster = Cluster::start();
        let home = tempfile::tempdir().unwrap();
        let cli = Cli::new(home.path()).with_env(cluster.env());
        cli.ok(&["registry", "add", "main", &url, "--yes"]);
        let out = cli.ok(&["install", "pgext_ck_dist", "--yes"]);
        assert!(
            !out.contains("pgext_ck_tap"),
            "a test requirement is not installed: {out}"
        );
        let out = cli.ok(&["check", "pgext_ck_dist"]);
        assert!(
            out.contains("all tests passed (in a throwaway PostgreSQL with pgext_ck_tap 1.0.0)"),
            "{out}"
        );
        assert!(
            ours(&["pgext_ck_tap"]).is_empty(),
            "nothing of it in the installation"
        );
        let list = cli.ok(&["list"]);
        assert!(!list.contains("pgext_ck_tap"), "{list}");
        cli.ok(&["uninstall", "pgext_ck_dist"]);
    })
    .await
    .unwrap();
}
