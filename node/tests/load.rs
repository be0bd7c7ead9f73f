//! Faults under load: an origin and three mirrors as `pgext-node` processes on loopback, with a
//! steady stream of publishes (50 a second) and reads (about a thousand a second, spread over
//! the mirrors), while a random mirror is killed with SIGKILL and restarted every few seconds,
//! the origin is killed twice, and two misbehaving peers (`evil.rs`) answer the mirrors with
//! corrupted and cut frames, or not at all.
//!
//! At the end every acknowledged release is on every node with the bytes its entry names, every
//! node serves one checkpoint, no read ever returned bytes other than the log names, both
//! misbehaving peers are demoted by every mirror, and reads of the mirrors that were up and
//! caught up answered with a p99 under 50 ms.
//!
//! `PGEXT_LOAD_SECS` sets the load phase: 15 s by default (CI), 60 s in the long run of
//! `docs/benchmarks.md`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use pgext::release::Identity;
use pgext_log::{VerifierKey, open_checkpoint};
use pgext_spec::entry::Action;

use crate::evil::{self, Misbehaviour};
use crate::{release, release_form};

/// A `pgext-node` process with its data folder and fixed ports, so it comes back where it was.
struct Proc {
    data: PathBuf,
    http: u16,
    p2p: u16,
    args: Vec<String>,
    child: Option<Child>,
    up: Arc<AtomicBool>,
    /// When it last started (for "caught up": up for two seconds).
    since: Arc<Mutex<Instant>>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Proc {
    fn new(data: PathBuf, args: Vec<String>) -> Proc {
        Proc {
            data,
            http: free_port(),
            p2p: free_port(),
            args,
            child: None,
            up: Arc::default(),
            since: Arc::new(Mutex::new(Instant::now())),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }

    fn start(&mut self) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pgext-node"))
            .arg("--data")
            .arg(&self.data)
            .args(["--http", &format!("127.0.0.1:{}", self.http)])
            .args(["--p2p-listen", &format!("/ip4/127.0.0.1/tcp/{}", self.p2p)])
            .args(&self.args)
            .arg("run")
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting pgext-node");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert!(line.contains(&self.url()), "{line}");
        *self.since.lock().unwrap() = Instant::now();
        self.up.store(true, Ordering::SeqCst);
        self.child = Some(child);
    }

    fn kill(&mut self) {
        self.up.store(false, Ordering::SeqCst);
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap(); // SIGKILL
            c.wait().unwrap();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn json(http: &reqwest::blocking::Client, url: &str) -> Option<serde_json::Value> {
    http.get(url)
        .send()
        .ok()
        .filter(|r| r.status().is_success())?
        .json()
        .ok()
}

/// A release the origin acknowledged: dist, its SHA-256 and SHA-1, its log index.
#[derive(Debug, Clone)]
struct Acked {
    dist: String,
    sha256: String,
    index: u64,
}

fn sha256_hex(b: &[u8]) -> String {
    pgext_log::hex(&pgext_log::sha256(b))
}

/// Publishes dist `name` 1.0.0; the acknowledgement, if the origin gave one.
fn publish(
    http: &reqwest::blocking::Client,
    url: &str,
    who: &Identity,
    name: &str,
) -> Option<Acked> {
    let (r, zip) = release(name, "1.0.0");
    let sha256 = r.sha256.clone();
    let entry = who.sign(Action::Release(r));
    let resp = http
        .post(format!("{url}/api/v1/releases"))
        .multipart(release_form(&entry, zip))
        .send()
        .ok()?;
    if resp.status().as_u16() != 201 {
        return None;
    }
    let receipt: pgext_spec::api::Receipt = resp.json().ok()?;
    Some(Acked {
        dist: name.to_string(),
        sha256,
        index: receipt.index,
    })
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted
        .get(((sorted.len() as f64 - 1.0) * p) as usize)
        .copied()
        .unwrap_or_default()
}

#[test]
fn federation_under_load_and_faults() {
    let secs: u64 = std::env::var("PGEXT_LOAD_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        "[sequencer]\nbatch_interval_ms = 50\nbatch_max = 256\n\n[p2p]\npoll_ms = 200\nrequest_timeout_ms = 1000\n",
    )
    .unwrap();
    let cfg = config.display().to_string();
    let http = http();

    let mut origin = Proc::new(
        dir.path().join("origin"),
        vec![
            "--config".into(),
            cfg.clone(),
            "--origin".into(),
            "load.pgext.test/log".into(),
        ],
    );
    origin.start();
    let info = json(&http, &format!("{}/api/v1/origins", origin.url())).unwrap();
    let vkey = info["origins"][0]["vkey"].as_str().unwrap().to_string();
    let log_key: VerifierKey = vkey.parse().unwrap();
    let origin_p2p = format!(
        "/ip4/127.0.0.1/tcp/{}/p2p/{}",
        origin.p2p,
        info["peer_id"].as_str().unwrap()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let corrupt = evil::start(&rt, Misbehaviour::Corrupt, origin.url());
    let stall = evil::start(&rt, Misbehaviour::Stall, origin.url());
    let mut mirrors: Vec<Proc> = (0..3)
        .map(|i| {
            let mut args: Vec<String> = vec![
                "--config".into(),
                cfg.clone(),
                "--origin".into(),
                format!("m{i}.load.pgext.test/log"),
                "--mirror".into(),
                format!("main={vkey}"),
            ];
            for p in [&origin_p2p, &corrupt.addr, &stall.addr] {
                args.extend(["--peer".into(), p.clone()]);
            }
            let mut m = Proc::new(dir.path().join(format!("mirror{i}")), args);
            m.start();
            m
        })
        .collect();

    let loader = Identity {
        user: "loader".into(),
        key: SigningKey::from_bytes(&[11; 32]),
    };
    let r = http
        .post(format!("{}/api/v1/entries", origin.url()))
        .body(loader.account_entry(None, None, None).to_bytes())
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);

    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<Acked>>> = Arc::default();
    let wrong_bytes = Arc::new(AtomicU64::new(0));
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let reads = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut threads = Vec::new();
    // Publishers: six of them, 12.5 a second each.
    for t in 0..6u32 {
        let (stop, acked, url, who) = (stop.clone(), acked.clone(), origin.url(), loader.clone());
        threads.push(std::thread::spawn(move || {
            let http = self::http();
            let mut n = 0u32;
            let mut next = Instant::now();
            while !stop.load(Ordering::SeqCst) {
                next += Duration::from_millis(80);
                if let Some(a) = publish(&http, &url, &who, &format!("load{t}x{n}")) {
                    acked.lock().unwrap().push(a);
                    n += 1;
                }
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        }));
    }
    // Readers: three of them, over the mirrors, checking every release they get.
    let targets: Vec<(String, Arc<AtomicBool>, Arc<Mutex<Instant>>)> = mirrors
        .iter()
        .map(|m| {
            (
                format!("{}/origins/main", m.url()),
                m.up.clone(),
                m.since.clone(),
            )
        })
        .collect();
    for t in 0..3usize {
        let (stop, acked, wrong, lat, reads, targets) = (
            stop.clone(),
            acked.clone(),
            wrong_bytes.clone(),
            latencies.clone(),
            reads.clone(),
            targets.clone(),
        );
        threads.push(std::thread::spawn(move || {
            let http = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .unwrap();
            let mut k = t;
            while !stop.load(Ordering::SeqCst) {
                k += 1;
                let (base, up, since) = &targets[k % targets.len()];
                let healthy = up.load(Ordering::SeqCst)
                    && since.lock().unwrap().elapsed() > Duration::from_secs(2);
                let pick = acked.lock().unwrap().get(k * 7919 % 1000).cloned();
                let (path, expect) = match (k % 4, pick) {
                    (0, Some(a)) => (
                        format!("/dist/{0}/1.0.0/{0}-1.0.0.zip", a.dist),
                        Some(a.sha256),
                    ),
                    (1, Some(a)) => (format!("/dist/{}.json", a.dist), None),
                    (2, _) => ("/log/checkpoint".to_string(), None),
                    _ => ("/index.json".to_string(), None),
                };
                let t0 = Instant::now();
                let Ok(resp) = http.get(format!("{base}{path}")).send() else {
                    continue;
                };
                let ok = resp.status().is_success();
                let body = resp.bytes().unwrap_or_default();
                let took = t0.elapsed();
                reads.fetch_add(1, Ordering::Relaxed);
                if ok && healthy {
                    lat.lock().unwrap().push(took);
                }
                if let (true, Some(sha)) = (ok, expect) {
                    if sha256_hex(&body) != sha {
                        wrong.fetch_add(1, Ordering::SeqCst);
                    }
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        }));
    }

    // Chaos: a random mirror killed and restarted every three seconds; the origin twice.
    let mut origin_kills = 0;
    let mut mirror_kills = 0;
    let mut seed = 0x9e37_79b9_u64;
    let mut next_mirror = Instant::now() + Duration::from_secs(3);
    while started.elapsed() < Duration::from_secs(secs) {
        let at = started.elapsed().as_secs_f64() / secs as f64;
        if origin_kills < 2 && at > (origin_kills + 1) as f64 / 3.0 {
            origin.kill();
            std::thread::sleep(Duration::from_millis(500));
            origin.start();
            origin_kills += 1;
        }
        if Instant::now() >= next_mirror {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let m = &mut mirrors[(seed % 3) as usize];
            m.kill();
            std::thread::sleep(Duration::from_millis(300));
            m.start();
            mirror_kills += 1;
            next_mirror = Instant::now() + Duration::from_secs(3);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    let load_secs = started.elapsed().as_secs_f64();
    let settle = Instant::now();

    // Every mirror demotes both misbehaving peers: while one has not yet, publish one more
    // release a second so every mirror keeps syncing (and asking them).
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut extra = 0;
    loop {
        let demoted = mirrors.iter().all(|m| {
            let Some(info) = json(&http, &format!("{}/api/v1/origins", m.url())) else {
                return false;
            };
            let score = |p: &str| {
                info["peer_scores"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|s| s["peer_id"] == p)
                    .and_then(|s| s["score"].as_i64())
                    .unwrap_or(0)
            };
            // Demoted: below every peer in good standing, asked last.
            score(&corrupt.peer_id.to_string()) < 0 && score(&stall.peer_id.to_string()) < 0
        });
        if demoted {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every mirror demoted the corrupting ({}) and the stalling ({}) peer: {:?}",
            corrupt.peer_id,
            stall.peer_id,
            mirrors
                .iter()
                .map(|m| json(&http, &format!("{}/api/v1/origins", m.url()))
                    .map(|i| i["peer_scores"].clone()))
                .collect::<Vec<_>>()
        );
        if let Some(a) = publish(&http, &origin.url(), &loader, &format!("late{extra}")) {
            acked.lock().unwrap().push(a);
            extra += 1;
        }
        std::thread::sleep(Duration::from_secs(1));
    }

    let demoted_after = settle.elapsed();
    // One checkpoint everywhere, at the origin's size.
    let size = json(&http, &format!("{}/api/v1/log", origin.url())).unwrap()["size"]
        .as_u64()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let checkpoint = |base: &str| -> Option<(u64, pgext_log::Hash)> {
        let note = http
            .get(format!("{base}/log/checkpoint"))
            .send()
            .ok()?
            .bytes()
            .ok()?;
        let c = open_checkpoint(&note, &log_key, &[]).ok()?.checkpoint;
        Some((c.size, c.root))
    };
    let want = checkpoint(&origin.url()).unwrap();
    assert_eq!(want.0, size);
    for m in &mirrors {
        let base = format!("{}/origins/main", m.url());
        while checkpoint(&base) != Some(want) {
            assert!(
                Instant::now() < deadline,
                "{base} serves {:?}, the origin {want:?}",
                checkpoint(&base)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    let converged_after = settle.elapsed();
    // Every acknowledged release, on every node, with the bytes its entry names.
    let acked = acked.lock().unwrap().clone();
    let nodes: Vec<String> = std::iter::once(origin.url())
        .chain(mirrors.iter().map(|m| format!("{}/origins/main", m.url())))
        .collect();
    for a in &acked {
        for base in &nodes {
            let doc = json(&http, &format!("{base}/api/v1/dists/{}", a.dist))
                .unwrap_or_else(|| panic!("{base}: {} is missing", a.dist));
            assert_eq!(doc["releases"][0]["index"], a.index, "{base}: {}", a.dist);
            assert_eq!(doc["releases"][0]["sha256"], a.sha256.as_str());
        }
        let base = &nodes[1 + a.index as usize % 3];
        let zip = http
            .get(format!("{base}/dist/{0}/1.0.0/{0}-1.0.0.zip", a.dist))
            .send()
            .unwrap()
            .bytes()
            .unwrap();
        assert_eq!(sha256_hex(&zip), a.sha256, "{base}: {}", a.dist);
    }
    assert_eq!(
        wrong_bytes.load(Ordering::SeqCst),
        0,
        "a read got other bytes than the log names"
    );

    let mut lat = latencies.lock().unwrap().clone();
    lat.sort();
    let (p50, p99) = (pct(&lat, 0.5), pct(&lat, 0.99));
    let published = acked.len() - extra;
    println!(
        "| fault and load, {load_secs:.0} s: origin + 3 mirrors, {origin_kills} origin and {mirror_kills} mirror SIGKILLs, a corrupting and a stalling peer | {:.0} publishes/s acknowledged, {:.0} reads/s | healthy mirror reads p50 {:.1} ms, p99 {:.1} ms ({} reads); every acknowledged release on every node |",
        published as f64 / load_secs,
        reads.load(Ordering::Relaxed) as f64 / load_secs,
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        lat.len()
    );
    println!(
        "settled: demoted after {demoted_after:?} ({extra} more releases), one checkpoint after {converged_after:?}, checked after {:?}",
        settle.elapsed()
    );
    assert!(
        published as f64 / load_secs >= 50.0,
        "only {published} publishes acknowledged in {load_secs:.0} s"
    );
    assert!(p99 < Duration::from_millis(50), "read p99 {p99:?}");
    drop(rt);
}
