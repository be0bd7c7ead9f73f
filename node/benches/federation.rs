//! `cargo bench -p pgext-node --bench federation`: replication of a registry to a fresh mirror
//! over libp2p on loopback (fully verified), side by side in the same run with `rsync -a` of the
//! same registry's `export-pgxn` tree; the same with the blobs already present; and propagation
//! of a publish through a 20-node in-process federation. Without `--bench` (as
//! `cargo test --bench federation` runs it) it does the same at a small scale.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{account, pct, release_with_data};
use pgext_node::config::MirrorConfig;
use pgext_node::origin::Origin;
use pgext_node::{Config, Node};
use pgext_spec::entry::Action;

mod common;

fn config(dir: &Path, origin: &str, peers: Vec<String>, mirror: Option<&str>) -> Config {
    let mut c = Config::for_tests(dir);
    c.origin = Some(origin.to_string());
    c.witness_name = Some(format!("{origin}-witness"));
    c.sequencer.batch_interval_ms = 10;
    c.p2p.enabled = true;
    c.p2p.peers = peers;
    c.p2p.poll_ms = 1000;
    c.mirrors = mirror
        .map(|vkey| {
            vec![MirrorConfig {
                name: "main".into(),
                vkey: vkey.to_string(),
                access: Default::default(),
            }]
        })
        .into_iter()
        .flatten()
        .collect();
    c
}

fn p2p_addr(node: &Node) -> String {
    node.info().p2p_addrs[0].clone()
}

async fn wait_size(s: &Arc<Origin>, size: u64, secs: u64) {
    let mut rx = s.subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while *rx.borrow_and_update() < size {
        if tokio::time::timeout_at(deadline, rx.changed())
            .await
            .is_err()
        {
            panic!("size {} after {secs} s, waiting for {size}", s.size());
        }
    }
}

fn dir_bytes(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        dir_bytes(&e.path())
                    } else {
                        e.metadata().map(|m| m.len()).unwrap_or(0)
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Publishes `n` releases of `kb` KB each to the node, 32 at a time, straight into its publish
/// path (the setup, not what is measured). Returns the log size.
async fn fill(node: &Node, n: u32, kb: usize) -> u64 {
    let shared = node.origin().clone();
    let (id, e) = account(0);
    shared.sequence(e).await.unwrap();
    let sem = Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = Vec::new();
    for i in 0..n {
        let (s, id, sem) = (shared.clone(), id.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire().await.unwrap();
            let (r, zip) = release_with_data(&format!("rep{i}"), kb);
            let entry = id.sign(Action::Release(r));
            pgext_node::origin::publish::submit(s, entry, Some(zip))
                .await
                .unwrap()
                .index
        }));
    }
    let mut size = 0;
    for t in tasks {
        size = size.max(t.await.unwrap() + 1);
    }
    size
}

/// A mirror of `origin` started on `dir`.
async fn mirror_of(origin: &Node, dir: &Path) -> Node {
    let vkey = origin.origin().vkey.to_string();
    Node::spawn(config(
        dir,
        "mirror.bench/log",
        vec![p2p_addr(origin)],
        Some(&vkey),
    ))
    .await
    .unwrap()
}

/// A fresh mirror of `origin` (optionally with `blobs` copied in first); returns the seconds
/// from start until it verified and committed `size` entries.
async fn replicate(origin: &Node, size: u64, blobs: Option<&Path>) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    if let Some(b) = blobs {
        copy_dir(b, &dir.path().join("blobs"));
    }
    let t = Instant::now();
    let m = mirror_of(origin, dir.path()).await;
    wait_size(&m.mirrors()[0], size, 600).await;
    let secs = t.elapsed().as_secs_f64();
    m.shutdown().await;
    secs
}

/// Reads a node's mirrored origin from 16 concurrent clients on a thread of their own until
/// `stop`: its live checkpoint, its log document and a PGXN dist document, round-robin.
/// Returns requests answered and their latencies, sorted.
fn read_load(
    base: String,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<Vec<Duration>> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let http = reqwest::Client::new();
            let mut tasks = Vec::new();
            for k in 0..16usize {
                let (http, base, stop) = (http.clone(), base.clone(), stop.clone());
                tasks.push(tokio::spawn(async move {
                    let paths = ["/log/checkpoint", "/api/v1/log", "/dist/rep0.json"];
                    let mut lat = Vec::new();
                    let mut i = k;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        i += 1;
                        let t = Instant::now();
                        let Ok(r) = http.get(format!("{base}{}", paths[i % 3])).send().await else {
                            continue;
                        };
                        let answered = r.status().is_success() || r.status() == 404;
                        if r.bytes().await.is_ok() && answered {
                            lat.push(t.elapsed());
                        }
                    }
                    lat
                }));
            }
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            all.sort();
            all
        })
    })
}

/// A fresh mirror of `origin` replicating `size` entries (and indexing them for search) while
/// it serves reads; then the same reads on it idle, for as long. Returns the seconds of the
/// sync and, during it and idle, reads/s, p50 and p99.
async fn replicate_under_reads(origin: &Node, size: u64) -> (f64, [(f64, Duration, Duration); 2]) {
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let m = mirror_of(origin, dir.path()).await;
    let base = format!("{}/origins/main", m.url());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reads = read_load(base.clone(), stop.clone());
    wait_size(&m.mirrors()[0], size, 600).await;
    let secs = t.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let during = reads.join().unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reads = read_load(base, stop.clone());
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let idle = reads.join().unwrap();
    m.shutdown().await;
    let stats = |l: &[Duration]| (l.len() as f64 / secs, pct(l, 0.5), pct(l, 0.99));
    (secs, [stats(&during), stats(&idle)])
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    // `RUST_LOG=pgext_node=info` shows where a mirror's time goes (verify_ms, blobs_ms, …).
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("| benchmark | result | notes |\n|---|---|---|");
    rt.block_on(async {
        // 1. Replication of N releases (20 KB artifacts) to a fresh mirror, and rsync of the
        // export-pgxn tree of the same registry.
        // `PGEXT_BENCH_RELEASES` scales the replication run (for profiling).
        let n: u32 = std::env::var("PGEXT_BENCH_RELEASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if quick { 200 } else { 10_000 });
        let odir = tempfile::tempdir().unwrap();
        let origin = Node::spawn(config(odir.path(), "origin.bench/log", vec![], None))
            .await
            .unwrap();
        let size = fill(&origin, n, 20).await;
        let blob_bytes = dir_bytes(&odir.path().join("blobs"));
        let entry_bytes: u64 = origin
            .origin()
            .store()
            .entries(0, size)
            .unwrap()
            .iter()
            .map(|e| e.len() as u64)
            .sum();
        let mb = (blob_bytes + entry_bytes) as f64 / 1e6;

        let tree = odir.path().join("export");
        pgext_node::tools::export::export_origin(origin.origin(), origin.http_addr(), &tree).unwrap();
        let tree_mb = dir_bytes(&tree) as f64 / 1e6;
        let rsync = Command::new("rsync").arg("--version").output().is_ok().then(|| {
            let to = tempfile::tempdir().unwrap();
            let t = Instant::now();
            let ok = Command::new("rsync")
                .arg("-a")
                .arg(format!("{}/", tree.display()))
                .arg(to.path().join("copy"))
                .status()
                .unwrap()
                .success();
            assert!(ok, "rsync failed");
            t.elapsed().as_secs_f64()
        });

        let secs = replicate(&origin, size, None).await;
        let rate = |s: f64| size as f64 / s;
        match rsync {
            Some(r) => println!(
                "| replication of {n} releases (20 KB artifacts) to a fresh mirror over libp2p, fully verified, vs `rsync -a` of the export-pgxn tree | {secs:.2} s vs {r:.2} s ({:.2}x rsync's time) | mirror: {:.0} entries/s, {:.1} MB/s of entries and blobs ({mb:.1} MB); rsync copies {tree_mb:.1} MB and verifies nothing |",
                secs / r,
                rate(secs),
                mb / secs
            ),
            None => println!(
                "| replication of {n} releases (20 KB artifacts) to a fresh mirror, fully verified | {secs:.2} s | {:.0} entries/s, {:.1} MB/s; rsync not installed, no comparison |",
                rate(secs),
                mb / secs
            ),
        }
        let secs = replicate(&origin, size, Some(&odir.path().join("blobs"))).await;
        println!(
            "| the same with the blobs already present (entries fetched, tree recomputed, every signature and rule re-checked) | {:.0} entries/s | {size} entries in {secs:.2} s |",
            rate(secs)
        );

        let (secs, [during, idle]) = replicate_under_reads(&origin, size).await;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "| reads on a mirror while it replicates {n} releases and indexes them for search (16 clients: live checkpoint, log document, a PGXN dist document), vs the same reads on it idle | {:.0} vs {:.0} req/s; p50 {:.2} vs {:.2} ms; p99 {:.2} vs {:.2} ms | sync took {secs:.2} s; readers never wait on the mirror's commits (an immutable state snapshot swapped after each one) |",
            during.0,
            idle.0,
            ms(during.1),
            ms(idle.1),
            ms(during.2),
            ms(idle.2)
        );

        // 2. Propagation through 20 nodes: the origin and 19 mirrors, each peering with the
        // origin and the mirror before it.
        let nodes: usize = if quick { 5 } else { 20 };
        let rounds: usize = if quick { 3 } else { 30 };
        let pdir = tempfile::tempdir().unwrap();
        let seq = Node::spawn(config(&pdir.path().join("o"), "prop.bench/log", vec![], None))
            .await
            .unwrap();
        let vkey = seq.origin().vkey.to_string();
        let mut mirrors: Vec<Node> = Vec::new();
        for i in 1..nodes {
            let mut peers = vec![p2p_addr(&seq)];
            if let Some(prev) = mirrors.last() {
                peers.push(p2p_addr(prev));
            }
            let m = Node::spawn(config(
                &pdir.path().join(format!("m{i}")),
                &format!("m{i}.bench/log"),
                peers,
                Some(&vkey),
            ))
            .await
            .unwrap();
            mirrors.push(m);
        }
        let (id, e) = account(0);
        let first = seq.origin().sequence(e).await.unwrap().index + 1;
        for m in &mirrors {
            wait_size(&m.mirrors()[0], first, 60).await;
        }
        let mut times = Vec::new();
        for r in 0..rounds {
            let (rel, zip) = release_with_data(&format!("prop{r}"), 20);
            let entry = id.sign(Action::Release(rel));
            let t = Instant::now();
            let size = pgext_node::origin::publish::submit(seq.origin().clone(), entry, Some(zip))
                .await
                .unwrap()
                .index
                + 1;
            for m in &mirrors {
                wait_size(&m.mirrors()[0], size, 60).await;
            }
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "| propagation of a publish through a {nodes}-node in-process federation (until every mirror verified, committed and serves it) | p50 {:.0} ms, p99 {:.0} ms | {rounds} publishes of 20 KB releases; each mirror peers with the origin and the mirror before it; includes the sequencing round |",
            pct(&times, 0.5).as_secs_f64() * 1e3,
            pct(&times, 0.99).as_secs_f64() * 1e3
        );
        for m in mirrors {
            m.shutdown().await;
        }
        seq.shutdown().await;
        origin.shutdown().await;
    });
}
