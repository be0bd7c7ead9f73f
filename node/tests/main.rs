//! Tests of the `pgext-node` binary as a separate process.

mod crash;
mod federation;

use pgext_spec::archive::Files;
use pgext_spec::entry::Release;

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
