//! `cargo bench -p pgext-tests --bench client` (it builds the `pgext` binary it runs): `pgext install` against `pgxn install`
//! (pgxnclient) of the same dist from the same node into the same PostgreSQL, side by side in
//! one run; a builder's releases per hour, and installs of a C extension from its binary, from
//! source and by pgxn, side by side; and the client's verification alone for a release in a log
//! of 1,000,000 entries; and a dependency plan of 20 dists resolved and verified against a node
//! holding 10,000 releases (`plan/mod.rs`); and `pgext-node import-pgxn` of a 10,000-release
//! PGXN mirror tree against `rsync -a` of it (`import/mod.rs`).
//! Without `--bench` (as `cargo test --bench client` runs it) it does the same at a small scale.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::fill;
use pgext::request::Select;
use pgext::trust::{RegistryConfig, State};
use pgext_tests::pg::Cluster;
use pgext_tests::{TestNode, fixtures, identity, pgext_bin, pgxn_bin};

mod common;
mod import;
mod plan;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs a command to success and returns how long it took.
fn timed(cmd: &mut Command) -> Duration {
    timed_output(cmd).0
}

/// Runs a command to success and returns how long it took and what it printed.
fn timed_output(cmd: &mut Command) -> (Duration, String) {
    let start = Instant::now();
    let out = cmd.output().expect("running the command");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (took, String::from_utf8_lossy(&out.stdout).to_string())
}

async fn install_vs_pgxn(rounds: usize) {
    let node = TestNode::start().await;
    let bob = identity("bob", 2);
    node.api()
        .submit(&bob.account_entry(None, None, None))
        .await
        .unwrap();
    let dists = [
        ("pgext_bench_c", fixtures::c_dist("pgext_bench_c", "1.0.0")),
        (
            "pgext_bench_sql",
            fixtures::dist("pgext_bench_sql", "1.0.0", "pgext_bench_sql", "stable"),
        ),
    ];
    for (name, files) in &dists {
        node.publish_files(&bob, files, &format!("{name}-1.0.0"))
            .await;
    }
    let url = node.url();
    tokio::task::spawn_blocking(move || {
        let cluster = Cluster::start();
        let home = tempfile::tempdir().unwrap();
        let env = |cmd: &mut Command| {
            cmd.env("PGEXT_CONFIG", home.path().join("config.toml"))
                .env("PGEXT_STATE_DIR", home.path().join("state"))
                .envs(cluster.env())
                .current_dir(home.path());
        };
        let pgext = |args: &[&str]| {
            let mut c = Command::new(pgext_bin());
            c.args(args);
            env(&mut c);
            c
        };
        let mirror = format!("{url}/");
        let pgxn = |cmd: &str, name: &str| {
            let mut c = Command::new(pgxn_bin());
            c.args([cmd, "--mirror", &mirror, name]);
            env(&mut c);
            c
        };
        timed(&mut pgext(&["registry", "add", "main", &url, "--yes"]));
        for (name, _) in dists {
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            for _ in 0..rounds {
                theirs.push(timed(&mut pgxn("install", name)));
                timed(&mut pgxn("uninstall", name));
                ours.push(timed(&mut pgext(&["install", name])));
                timed(&mut pgext(&["uninstall", name]));
            }
            let (a, b) = (median(ours), median(theirs));
            println!(
                "| install {name} (median of {rounds}) | pgext install {:.0} ms | pgxn install {:.0} ms | ratio {:.2}× |",
                ms(a),
                ms(b),
                a.as_secs_f64() / b.as_secs_f64()
            );
        }
    })
    .await
    .unwrap();
    node.node.shutdown().await;
}

/// Two things of binary packages (`spec/binary.md`): a builder's throughput, releases per hour
/// for one target (one PostgreSQL, 15), and the install of a C extension from its binary
/// against the same from source, by pgext and by pgxn, side by side.
async fn binary_vs_source(releases: usize, rounds: usize) {
    let node = TestNode::start().await;
    let bob = identity("bob", 2);
    let builder = identity("builder", 3);
    for who in [&bob, &builder] {
        node.register(who, None).await;
    }
    let name = "pgext_bench_bin";
    for v in 0..releases {
        let version = format!("1.0.{v}");
        node.publish_files(
            &bob,
            &fixtures::c_dist(name, &version),
            &format!("{name}-{version}"),
        )
        .await;
    }
    let url = node.url();
    tokio::task::spawn_blocking(move || {
        let pg15 = pgext_tests::pg::pg15_config();
        let home = tempfile::tempdir().unwrap();
        let env = |cmd: &mut Command, who: &str| {
            cmd.env("PGEXT_CONFIG", home.path().join(who).join("config.toml"))
                .env("PGEXT_STATE_DIR", home.path().join(who).join("state"))
                .current_dir(home.path());
        };
        let pgext = |who: &str, args: &[&str]| {
            let mut c = Command::new(pgext_bin());
            c.args(args);
            env(&mut c, who);
            c
        };
        let key = home.path().join("builder.key");
        std::fs::write(&key, pgext::keys::format_identity(&builder)).unwrap();
        timed(&mut pgext("builder", &["registry", "add", "main", &url, "--yes"]));
        let work = home.path().join("work").display().to_string();
        let built = timed(&mut pgext(
            "builder",
            &[
                "--key",
                &key.display().to_string(),
                "builder",
                "run",
                "--once",
                "--pg-config",
                &pg15.display().to_string(),
                "--work-dir",
                &work,
            ],
        ));
        println!(
            "| builder, {releases} releases of a C extension for PostgreSQL 15 (build, installcheck in a throwaway cluster, pack, attest) | {:.1} s | {:.0} releases/hour |",
            built.as_secs_f64(),
            releases as f64 * 3600.0 / built.as_secs_f64()
        );
        let cluster = Cluster::start();
        timed(&mut pgext(
            "user",
            &["registry", "add", "main", &url, "--yes", "--builder", "builder"],
        ));
        let mirror = format!("{url}/");
        let (mut binary, mut source, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let mut c = pgext("user", &["install", name, "--binary"]);
            binary.push(timed(c.envs(cluster.env())));
            timed(&mut pgext("user", &["uninstall", name]));
            let mut c = pgext("user", &["install", name, "--source"]);
            source.push(timed(c.envs(cluster.env())));
            timed(&mut pgext("user", &["uninstall", name]));
            let mut c = Command::new(pgxn_bin());
            c.args(["install", "--mirror", &mirror, name]).envs(cluster.env());
            env(&mut c, "user");
            theirs.push(timed(&mut c));
            let mut c = Command::new(pgxn_bin());
            c.args(["uninstall", "--mirror", &mirror, name]).envs(cluster.env());
            env(&mut c, "user");
            timed(&mut c);
        }
        let (b, s, p) = (median(binary), median(source), median(theirs));
        println!(
            "| install {name} (C; median of {rounds}) | pgext from binary {:.0} ms | pgext from source {:.0} ms | pgxn install {:.0} ms | binary/source {:.2}× | binary/pgxn {:.2}× |",
            ms(b),
            ms(s),
            ms(p),
            b.as_secs_f64() / s.as_secs_f64(),
            b.as_secs_f64() / p.as_secs_f64()
        );
    })
    .await
    .unwrap();
    node.node.shutdown().await;
}

async fn verify_in_a_big_log(n: u32, rounds: usize) {
    let node = TestNode::start_with(|c| {
        c.sequencer.batch_max = 8192;
        c.sequencer.batch_interval_ms = 5;
    })
    .await;
    let start = Instant::now();
    let size = fill(&node, n).await;
    let filled = start.elapsed();
    let reg = RegistryConfig {
        name: "main".into(),
        urls: vec![node.url()],
        vkey: node.vkey(),
        witnesses: Vec::new(),
        quorum: 0,
        policy: None,
        ..RegistryConfig::default()
    };
    let (mut first, mut again) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let dir = tempfile::tempdir().unwrap();
        let state = State::at(dir.path());
        let select = Select::version(None);
        let t = Instant::now();
        pgext::verify::fetch_verified(&reg, &state, "pgext_big", &select)
            .await
            .unwrap();
        first.push(t.elapsed());
        let t = Instant::now();
        pgext::verify::fetch_verified(&reg, &state, "pgext_big", &select)
            .await
            .unwrap();
        again.push(t.elapsed());
        remembered_size(dir.path(), size);
    }
    println!(
        "| verify a release in a log of {size} entries (median of {rounds}; loopback HTTP to a local node) | first time {:.1} ms | with a remembered checkpoint {:.1} ms | log filled in {:.1} s |",
        ms(median(first)),
        ms(median(again)),
        filled.as_secs_f64()
    );
    node.node.shutdown().await;
}

/// The remembered checkpoint is the one verified (the measurement did the whole job).
fn remembered_size(state: &Path, size: u64) {
    let dir = state.join("checkpoints");
    let note = std::fs::read_dir(&dir).unwrap().flatten().next().unwrap();
    let text = std::fs::read_to_string(note.path()).unwrap();
    assert_eq!(text.lines().nth(1), Some(size.to_string().as_str()));
}

fn main() {
    let full = common::full();
    let entries = common::entries(1_000_000, 2_000);
    let rt = common::runtime();
    pgext_tests::pg::clear_leftovers(&pgext_tests::pg::pg15_config(), "pgext_bench_");
    // PGEXT_BENCH_ONLY=install|binary|verify|plan|import runs one part.
    let only = std::env::var("PGEXT_BENCH_ONLY").ok();
    let part = |name: &str| only.as_deref().is_none_or(|o| o == name);
    rt.block_on(async {
        if part("install") {
            install_vs_pgxn(if full { 5 } else { 1 }).await;
        }
        if part("binary") {
            binary_vs_source(if full { 10 } else { 1 }, if full { 5 } else { 1 }).await;
        }
        if part("verify") {
            verify_in_a_big_log(entries, if full { 21 } else { 3 }).await;
        }
        if part("plan") {
            let releases = common::entries(10_000, 200);
            plan::plan_of_twenty(releases, if full { 11 } else { 1 }).await;
        }
        if part("import") {
            let releases = common::entries(10_000, 100);
            import::import_vs_rsync(releases, if full { 3 } else { 1 }).await;
        }
    });
}
