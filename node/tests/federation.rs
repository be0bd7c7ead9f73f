//! The federation as separate OS processes: `deploy/local-federation.sh` starts the origin and
//! two mirrors, a third mirror process joins late, 200 releases are published (every fifth
//! through a mirror), and every node converges on one checkpoint with byte-identical tiles,
//! documents and zips and a cosignature that verifies. With the sequencer stopped the mirrors
//! keep serving verified downloads; everything restarted serves the same bytes.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use pgext::release::Identity;
use pgext_log::{VerifierKey, open_checkpoint};
use pgext_spec::entry::{Action, Entry};

use crate::{release, release_form, spawn_node};

/// A process that gets SIGTERM when dropped (so a failing test leaves no node behind).
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `deploy/local-federation.sh RUN` and reads what it prints: node URLs and the vkey.
fn federation(run: &Path) -> (Proc, HashMap<String, String>, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/local-federation.sh");
    let mut child = Command::new("bash")
        .arg(script)
        .arg(run)
        .env("PGEXT_NODE", env!("CARGO_BIN_EXE_pgext-node"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting deploy/local-federation.sh");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let proc = Proc(child);
    let mut urls = HashMap::new();
    loop {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the script stopped before printing the vkey"
        );
        let (name, value) = line.trim().split_once(' ').expect("NAME VALUE");
        if name == "vkey" {
            return (proc, urls, value.to_string());
        }
        assert!(value.starts_with("http://127.0.0.1:"), "{line}");
        urls.insert(name.to_string(), value.to_string());
    }
}

/// A mirror process started directly, the way an operator adds one.
fn late_mirror(data: &Path, peer: &str, vkey: &str) -> (Proc, String) {
    let mirror = format!("main={vkey}");
    let (child, url) = spawn_node([
        "--data".as_ref(),
        data.as_os_str(),
        "--origin".as_ref(),
        "mirror-c.pgext.local/log".as_ref(),
        "--peer".as_ref(),
        peer.as_ref(),
        "--mirror".as_ref(),
        mirror.as_ref(),
        "run".as_ref(),
    ]);
    (Proc(child), url)
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn get(url: &str) -> (u16, Vec<u8>) {
    let resp = client().get(url).send().unwrap();
    (resp.status().as_u16(), resp.bytes().unwrap().to_vec())
}

fn json(url: &str) -> serde_json::Value {
    let (status, body) = get(url);
    assert_eq!(status, 200, "{url}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

fn publish(base: &str, entry: &Entry, zip: Vec<u8>) -> (u16, serde_json::Value) {
    let resp = client()
        .post(format!("{base}/api/v1/releases"))
        .multipart(release_form(entry, zip))
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.json().unwrap())
}

fn wait_size(base: &str, size: u64, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (status, body) = get(&format!("{base}/api/v1/log"));
        if status == 200 {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            if v["size"].as_u64() >= Some(size) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{base} did not reach size {size}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Documents, zips, and every tile and bundle of a log of `size`.
fn paths(size: u64) -> Vec<String> {
    let mut p: Vec<String> = [
        "/index.json",
        "/dist/p3.json",
        "/dist/p3/1.4.0/META.json",
        "/dist/p3/1.4.0/p3-1.4.0.zip",
        "/dist/p0/1.19.0/p0-1.19.0.zip",
        "/extension/p7.json",
        "/user/ann.json",
        "/stats/summary.json",
        "/api/v1/dists/p5",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for t in pgext_log::tiles_for_size(size) {
        p.push(format!("/log/{}", t.path()));
    }
    p
}

fn snapshot(base: &str, paths: &[String]) -> Vec<(u16, Vec<u8>)> {
    paths.iter().map(|p| get(&format!("{base}{p}"))).collect()
}

#[test]
fn a_federation_of_processes_converges_and_survives_restarts() {
    let run = tempfile::tempdir().unwrap();
    let (script, urls, vkey) = federation(run.path());
    let log_key: VerifierKey = vkey.parse().unwrap();
    let origin = urls["origin"].clone();
    let mirrors: Vec<String> = ["mirror-a", "mirror-b"]
        .iter()
        .map(|m| format!("{}/origins/main", urls[*m]))
        .collect();

    let ann = Identity {
        user: "ann".into(),
        key: SigningKey::from_bytes(&[11; 32]),
    };
    let resp = client()
        .post(format!("{origin}/api/v1/entries"))
        .body(ann.account_entry(Some("Ann"), None, None).to_bytes())
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    // 200 releases, ten at a time (one per dist: versions arrive in order); every fifth is
    // sent to mirror A, which forwards it to the origin.
    let mut size = 0;
    for round in 0..20 {
        let handles: Vec<_> = (0..10)
            .map(|d| {
                let i = round * 10 + d;
                let base = if i % 5 == 0 {
                    mirrors[0].clone()
                } else {
                    origin.clone()
                };
                let (rel, zip) = release(&format!("p{d}"), &format!("1.{round}.0"));
                let entry = ann.sign(Action::Release(rel));
                std::thread::spawn(move || publish(&base, &entry, zip))
            })
            .collect();
        for h in handles {
            let (status, receipt) = h.join().unwrap();
            assert_eq!(status, 201, "{receipt}");
            size = size.max(receipt["index"].as_u64().unwrap() + 1);
        }
    }
    assert_eq!(size, 201);

    // A third mirror process, started late, that knows only mirror B.
    let b_info = json(&format!("{}/api/v1/origins", urls["mirror-b"]));
    let b_addr = b_info["p2p_addrs"][0].as_str().unwrap().to_string();
    let c_data = run.path().join("mirror-c");
    let (c, c_url) = late_mirror(&c_data, &b_addr, &vkey);
    let mut all = mirrors.clone();
    all.push(format!("{c_url}/origins/main"));
    for m in &all {
        wait_size(m, size, 120);
    }

    // One checkpoint, the same bytes everywhere, a cosignature from each mirror.
    let paths = paths(size);
    let want = snapshot(&origin, &paths);
    for (p, (status, _)) in paths.iter().zip(&want) {
        assert_eq!(*status, 200, "{p}");
    }
    let (_, origin_note) = get(&format!("{origin}/log/checkpoint"));
    let text = |n: &[u8]| pgext_log::Note::parse(n).unwrap().text;
    let node_urls = [
        urls["mirror-a"].clone(),
        urls["mirror-b"].clone(),
        c_url.clone(),
    ];
    for (m, node) in all.iter().zip(&node_urls) {
        assert!(snapshot(m, &paths) == want, "{m} serves other bytes");
        let (_, note) = get(&format!("{m}/log/checkpoint"));
        assert_eq!(text(&note), text(&origin_note));
        let witness: VerifierKey = json(&format!("{node}/api/v1/origins"))["witness"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let signed = open_checkpoint(&note, &log_key, std::slice::from_ref(&witness)).unwrap();
        assert!(signed.note.verified_by(&witness).is_some(), "{m}");
    }

    // The sequencer stops: the mirrors go on serving verified downloads, and a publish through
    // one says the sequencer cannot be reached.
    let origin_pid = std::fs::read_to_string(run.path().join("origin.pid")).unwrap();
    assert!(
        Command::new("kill")
            .args(["-TERM", origin_pid.trim()])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while client().get(format!("{origin}/api/v1/log")).send().is_ok() {
        assert!(Instant::now() < deadline, "the origin did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }
    for m in &all {
        let (status, zip) = get(&format!("{m}/dist/p3/1.4.0/p3-1.4.0.zip"));
        assert_eq!(status, 200);
        let sha = json(&format!("{m}/api/v1/dists/p3"))["releases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["version"] == "1.4.0")
            .unwrap()["sha256"]
            .clone();
        assert_eq!(
            pgext_log::hex(&pgext_log::sha256(&zip)),
            sha.as_str().unwrap()
        );
    }
    let (rel, zip) = release("p1", "9.0.0");
    let (status, body) = publish(&mirrors[1], &ann.sign(Action::Release(rel)), zip);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["errors"][0]["code"], "sequencer-unreachable");

    // Everything restarted on the same folders serves the same bytes: the script (and with it
    // the mirrors) is stopped and started again whole.
    drop(script);
    drop(c);
    let (_script, urls, vkey2) = federation(run.path());
    assert_eq!(vkey2, vkey);
    let (_c, c_url) = late_mirror(&c_data, &b_addr, &vkey);
    assert!(snapshot(&urls["origin"], &paths) == want, "origin changed");
    for node in [&urls["mirror-a"], &urls["mirror-b"], &c_url] {
        let m = format!("{node}/origins/main");
        assert!(snapshot(&m, &paths) == want, "{m} changed across restarts");
    }
}
