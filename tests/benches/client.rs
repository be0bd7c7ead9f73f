//! `cargo bench -p pgext-tests --bench client` (it builds the `pgext` binary it runs): `pgext install` against `pgxn install`
//! (pgxnclient) of the same dist from the same node into the same PostgreSQL, side by side in
//! one run; and the client's verification alone for a release in a log of 1,000,000 entries.
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

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs a command to success and returns how long it took.
fn timed(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let out = cmd.output().expect("running the command");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    took
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
    rt.block_on(async {
        install_vs_pgxn(if full { 5 } else { 1 }).await;
        verify_in_a_big_log(entries, if full { 21 } else { 3 }).await;
    });
}
