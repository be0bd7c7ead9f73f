//! README's "Install an extension", run exactly as written, line by line, as a newcomer would
//! on a fresh machine: against a fresh (empty) node, the `pgext` of this build first in `PATH`,
//! a home folder of its own, and a throwaway PostgreSQL 15 cluster. Only the node's address
//! differs (the test's node listens on a port the OS chose).

use std::path::PathBuf;
use std::process::Command;

use pgext_tests::pg::Cluster;
use pgext_tests::{TestNode, pgext_bin};

/// The shell lines of README's "Install an extension" block.
fn quick_start() -> Vec<String> {
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let section = readme
        .split("## Install an extension\n")
        .nth(1)
        .expect("README has an \"Install an extension\" section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("a sh block in it");
    block.lines().map(str::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_quick_start_works_as_written() {
    pgext_tests::pg::clear_leftovers(&pgext_tests::pg::pg15_config(), "hello_world");
    let node = TestNode::start().await;
    let url = node.url();
    tokio::task::spawn_blocking(move || {
        let lines = quick_start();
        assert!(
            lines[0].starts_with("cargo install --path client "),
            "{lines:?}"
        );
        let cluster = Cluster::start();
        let home = tempfile::tempdir().unwrap();
        let work = home.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        let bin = pgext_bin();
        let path = std::env::join_paths(
            std::iter::once(bin.parent().unwrap().to_path_buf())
                .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
        )
        .unwrap();
        let run = |line: &str| {
            let mut cmd = Command::new("sh");
            cmd.arg("-c")
                .arg(line.replace("http://127.0.0.1:7070", &url))
                .current_dir(&work)
                .env("HOME", home.path())
                .env("PATH", &path)
                .envs(cluster.env());
            for var in [
                "PGEXT_CONFIG",
                "PGEXT_STATE_DIR",
                "PGEXT_SIGNING_KEY",
                "PGEXT_TOKEN",
                "XDG_CONFIG_HOME",
                "XDG_STATE_HOME",
                "XDG_CACHE_HOME",
            ] {
                cmd.env_remove(var);
            }
            let out = cmd.output().unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.status.success(), "`{line}` failed:\n{text}");
            text
        };
        // `cargo install` is this build's `pgext`, already first in PATH.
        let mut said = String::new();
        for line in &lines[1..] {
            said.push_str(&run(line));
        }
        for expected in [
            "hello_world 0.1.0 installed",
            "CREATE EXTENSION hello_world",
            "wrote pgext.lock (1 dists)",
            "wrote cluster.pack (1 dists",
        ] {
            assert!(said.contains(expected), "{expected:?} not in:\n{said}");
        }
        assert_eq!(
            cluster.psql(
                "postgres",
                "SELECT extversion FROM pg_extension WHERE extname = 'hello_world'"
            ),
            "0.1.0"
        );
        assert!(work.join("cluster.pack").is_file());
        run("pgext uninstall hello_world");
    })
    .await
    .unwrap();
}
