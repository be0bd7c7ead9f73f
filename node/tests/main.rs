//! Tests of the `pgext-node` binary as a separate process.

mod crash;
mod evil;
mod federation;
mod load;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use pgext_spec::archive::Files;
use pgext_spec::entry::Release;

/// Starts `pgext-node` with `args` (options, ending with the subcommand), HTTP and libp2p on
/// loopback ports from the OS; returns the process and the HTTP URL it prints first.
///
/// # Panics
/// When the node does not start or its first line is not its URL.
pub(crate) fn spawn_node<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgext-node"))
        .args([
            "--http",
            "127.0.0.1:0",
            "--p2p-listen",
            "/ip4/127.0.0.1/tcp/0",
        ])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting pgext-node");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("node prints its URL");
    let url = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "unexpected first line {line:?}"
    );
    (child, url)
}

/// A release of dist `name` at `version` (one SQL file) and its zip.
pub(crate) fn release(name: &str, version: &str) -> (Release, Vec<u8>) {
    let meta = serde_json::json!({"name": name, "version": version, "abstract": "a test dist", "maintainer": "T <t@example.org>",
        "license": "postgresql", "provides": {name: {"file": "test.sql", "version": version}}, "meta-spec": {"version": "1.0.0"}});
    let meta = serde_json::to_vec(&meta).unwrap();
    let mut files = Files::default();
    files
        .files
        .insert("META.json".into(), (meta.clone(), false));
    files
        .files
        .insert("test.sql".into(), (b"SELECT 1;\n".to_vec(), false));
    let p = pgext::release::release_from_files(&files, None).unwrap();
    (p.release, p.zip)
}

/// The multipart form of a release upload: the signed entry and the archive.
pub(crate) fn release_form(
    entry: &pgext_spec::entry::Entry,
    zip: Vec<u8>,
) -> reqwest::blocking::multipart::Form {
    reqwest::blocking::multipart::Form::new()
        .part(
            "entry",
            reqwest::blocking::multipart::Part::bytes(entry.to_bytes()),
        )
        .part(
            "archive",
            reqwest::blocking::multipart::Part::bytes(zip).file_name("release.zip"),
        )
}
