//! `cargo bench -p pgext-node` (or `scripts/bench-node`, which installs wrk and nginx first):
//! sequencer throughput, end-to-end publish latency, and read throughput of the node side by
//! side with nginx serving the `export-pgxn` tree of the same registry, in one run.

use std::io::Write;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{account, pct, release, wrk};
use pgext_node::{Config, Node};
use pgext_spec::entry::{Action, Entry};

mod common;

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(dir.path());
    config.sequencer.batch_interval_ms = 10;
    let node = rt.block_on(Node::spawn(config)).unwrap();
    let shared = node.origin().clone();
    println!("| benchmark | result | notes |\n|---|---|---|");

    // 1. Sequencer: pre-built, signed account entries straight into the queue.
    let n: u32 = if quick { 500 } else { 20_000 };
    let entries: Vec<Entry> = (0..n).map(|i| account(i).1).collect();
    let t = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for e in entries {
            let s = shared.clone();
            tasks.push(tokio::spawn(async move { s.sequence(e).await.unwrap() }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let el = t.elapsed();
    println!(
        "| sequencer, durable entries/s (signed account entries, rounds of ≤256, one synced write each) | {:.0} entries/s | {n} entries in {:.2} s, signatures checked |",
        f64::from(n) / el.as_secs_f64(),
        el.as_secs_f64()
    );

    // 2. End-to-end publishes over HTTP.
    let publishes: u32 = if quick { 40 } else { 400 };
    let (id, e) = account(1_000_000);
    rt.block_on(pgext::api::Node::new(&node.url()).submit(&e))
        .unwrap();
    let lat = Arc::new(std::sync::Mutex::new(Vec::new()));
    let t = Instant::now();
    rt.block_on(async {
        let sem = Arc::new(tokio::sync::Semaphore::new(16));
        let mut tasks = Vec::new();
        for i in 0..publishes {
            let (api, id, lat, sem) = (
                pgext::api::Node::new(&node.url()),
                id.clone(),
                lat.clone(),
                sem.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let _p = sem.acquire().await.unwrap();
                let (r, zip) = release(&format!("bench{i}"), 2);
                let e = id.sign(Action::Release(r));
                let t = Instant::now();
                api.publish(&e, zip, "b.zip").await.unwrap();
                lat.lock().unwrap().push(t.elapsed());
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let el = t.elapsed();
    let mut l = lat.lock().unwrap().clone();
    l.sort();
    println!(
        "| end-to-end publish of a 2 KB-README release over HTTP, 16 concurrent | {:.0} publishes/s | p50 {:.1} ms, p99 {:.1} ms (batch interval 10 ms) |",
        f64::from(publishes) / el.as_secs_f64(),
        pct(&l, 0.5).as_secs_f64() * 1e3,
        pct(&l, 0.99).as_secs_f64() * 1e3
    );

    // 3. Reads: the node and nginx over the export-pgxn tree of the same registry.
    let tree = dir.path().join("export");
    pgext_node::tools::export::export_origin(&shared, node.http_addr(), &tree).unwrap();
    let has = |p: &str| Command::new(p).arg("-v").output().is_ok();
    if !has("wrk") || !has("nginx") {
        println!("| reads | not measured | wrk or nginx missing: run scripts/bench-node |");
        rt.block_on(node.shutdown());
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ngx = dir.path().join("nginx");
    std::fs::create_dir_all(&ngx).unwrap();
    let conf = ngx.join("nginx.conf");
    let mut f = std::fs::File::create(&conf).unwrap();
    write!(
        f,
        "worker_processes 2; daemon off; pid {0}/nginx.pid; error_log {0}/error.log;\nevents {{ worker_connections 1024; }}\nhttp {{ access_log off; sendfile on; types {{ application/json json; application/zip zip; }} client_body_temp_path {0}; proxy_temp_path {0}; fastcgi_temp_path {0}; uwsgi_temp_path {0}; scgi_temp_path {0};\n server {{ listen 127.0.0.1:{1}; root {2}; }} }}\n",
        ngx.display(),
        port,
        tree.display()
    )
    .unwrap();
    let mut nginx = Command::new("nginx")
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(&ngx)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let secs = if quick { 1 } else { 10 };
    for (what, path) in [
        ("dist/{dist}.json", "/dist/bench7.json"),
        ("release META.json", "/dist/bench7/1.0.0/META.json"),
        ("release zip", "/dist/bench7/1.0.0/bench7-1.0.0.zip"),
    ] {
        let ours = wrk(&format!("{}{path}", node.url()), secs, None);
        let theirs = wrk(&format!("http://127.0.0.1:{port}{path}"), secs, None);
        if let (Some((r1, p1)), Some((r2, p2))) = (ours, theirs) {
            println!(
                "| GET {what}: pgext-node vs nginx | {r1:.0} vs {r2:.0} req/s ({:.2}x) | p99 {p1:.2} ms vs {p2:.2} ms |",
                r1 / r2
            );
        }
    }
    // SIGTERM, not SIGKILL: the master then stops its workers too.
    let _ = Command::new("kill")
        .args(["-TERM", &nginx.id().to_string()])
        .status();
    let _ = nginx.wait();
    rt.block_on(node.shutdown());
}
