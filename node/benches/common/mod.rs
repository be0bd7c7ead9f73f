//! Helpers shared by the node's benchmarks.
#![allow(dead_code)]

use std::process::Command;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use pgext::release::Identity;
use pgext_spec::archive::Files;
use pgext_spec::entry::{Entry, Release};

/// Account `i`: its identity and its signed account entry.
pub(crate) fn account(i: u32) -> (Identity, Entry) {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&i.to_be_bytes());
    seed[4] = 1;
    let id = Identity {
        user: format!("user{i}"),
        key: SigningKey::from_bytes(&seed),
    };
    let e = id.account_entry(Some(&format!("User {i}")), None, None);
    (id, e)
}

/// Release 1.0.0 of dist `name` with a README of about `readme_kb` KB, and its zip.
pub(crate) fn release(name: &str, readme_kb: usize) -> (Release, Vec<u8>) {
    let meta = serde_json::json!({"name": name, "version": "1.0.0", "abstract": format!("{name} for benchmarks"), "maintainer": "B <b@example.org>",
        "license": "postgresql", "provides": {name: {"file": "b.sql", "version": "1.0.0"}}, "tags": ["bench"], "meta-spec": {"version": "1.0.0"}});
    let meta = serde_json::to_vec(&meta).unwrap();
    let mut files = Files::default();
    files
        .files
        .insert("META.json".into(), (meta.clone(), false));
    files
        .files
        .insert("b.sql".into(), (b"SELECT 1;\n".to_vec(), false));
    files.files.insert(
        "README.md".into(),
        (
            "benchmark readme line\n"
                .repeat(readme_kb * 47)
                .into_bytes(),
            false,
        ),
    );
    let p = pgext::release::release_from_files(&files, None).unwrap();
    (p.release, p.zip)
}

/// The `p` percentile of sorted durations.
pub(crate) fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Release 1.0.0 of dist `name` carrying `kb` KB of incompressible data (so the zip is about
/// that size), and its zip.
pub(crate) fn release_with_data(name: &str, kb: usize) -> (Release, Vec<u8>) {
    use sha2::Digest as _;
    let meta = serde_json::json!({"name": name, "version": "1.0.0", "abstract": format!("{name} for benchmarks"), "maintainer": "B <b@example.org>",
        "license": "postgresql", "provides": {name: {"file": "b.sql", "version": "1.0.0"}}, "tags": ["bench"], "meta-spec": {"version": "1.0.0"}});
    let mut data = Vec::with_capacity(kb * 1024);
    let mut block = sha2::Sha256::digest(name.as_bytes());
    while data.len() < kb * 1024 {
        data.extend_from_slice(&block);
        block = sha2::Sha256::digest(block);
    }
    let mut files = Files::default();
    files.files.insert(
        "META.json".into(),
        (serde_json::to_vec(&meta).unwrap(), false),
    );
    files
        .files
        .insert("b.sql".into(), (b"SELECT 1;\n".to_vec(), false));
    files.files.insert("data.bin".into(), (data, false));
    let p = pgext::release::release_from_files(&files, None).unwrap();
    (p.release, p.zip)
}

/// Runs wrk (with `header`, if any) and returns (requests/s, p99 in ms).
pub(crate) fn wrk(url: &str, secs: u32, header: Option<&str>) -> Option<(f64, f64)> {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t2", "-c32", &format!("-d{secs}s"), "--latency"]);
    if let Some(h) = header {
        cmd.args(["-H", h]);
    }
    let out = cmd.arg(url).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())?;
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(|v| v.trim().to_string())?;
    let ms = if let Some(x) = p99.strip_suffix("us") {
        x.parse::<f64>().ok()? / 1000.0
    } else if let Some(x) = p99.strip_suffix("ms") {
        x.parse().ok()?
    } else {
        p99.strip_suffix('s')?.parse::<f64>().ok()? * 1000.0
    };
    // Every answer must have been a 200: a refused read is no measure of reading.
    if text.contains("Non-2xx") {
        eprintln!("wrk saw refusals at {url}:\n{text}");
        return None;
    }
    Some((rps, ms))
}
