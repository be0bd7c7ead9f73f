//! `pgext-node fsck`: the audit's checks on a node's own stores, with the node stopped. For
//! its own log and each mirror: the stored checkpoint opens with the log's key; the tree
//! recomputed from the stored entries gives its root, and every stored hash tile and entry
//! bundle is the one the entries imply; every entry is replayed against the rules
//! (`pgext_spec::authority::replay_log`); every release's archive and META are in the blob
//! store and hash to what their entry names (`spec/audit.md`).

use std::path::Path;

use anyhow::Context as _;
use pgext_log::{MemoryTiles, VerifierKey, integrate, open_checkpoint};
use pgext_spec::authority::replay_log;
use serde::Serialize;

use crate::config::Config;
use crate::origin::blobs::{BlobError, Blobs};
use crate::origin::keys::load_log_key;
use crate::origin::store::Store;

/// Something wrong in a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The log's origin.
    pub origin: String,
    /// The log index, for an entry.
    pub index: Option<u64>,
    /// The rule (as `pgext audit` names them).
    pub rule: String,
    /// What was found.
    pub detail: String,
}

/// What fsck found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Each log checked, with its size.
    pub logs: Vec<(String, u64)>,
    /// Entries replayed.
    pub entries: u64,
    /// Blobs hashed.
    pub blobs: u64,
    /// Every violation.
    pub violations: Vec<Finding>,
}

/// Checks the node's own log and every mirrored one. Read-only: stores are opened read-only,
/// no key is created, nothing is deleted (not even what a crash left in the blob store's
/// staging folder).
///
/// # Errors
/// When the folder is not a data folder, or a store cannot be read.
pub fn fsck(config: &Config) -> anyhow::Result<Report> {
    let key = load_log_key(config)?;
    let blobs =
        Blobs::open_read_only(&config.data.join("blobs")).context("opening the blob store")?;
    let mut report = Report::default();
    check_log(&config.data.join("db"), key.verifier(), &blobs, &mut report)?;
    for m in &config.mirrors {
        let vkey: VerifierKey = m
            .vkey
            .parse()
            .with_context(|| format!("mirror {}: the verifier key does not parse", m.name))?;
        let dir = config.data.join("mirrors").join(&m.name).join("db");
        if dir.exists() {
            check_log(&dir, &vkey, &blobs, &mut report)?;
        }
    }
    Ok(report)
}

fn check_log(
    dir: &Path,
    vkey: &VerifierKey,
    blobs: &Blobs,
    report: &mut Report,
) -> anyhow::Result<()> {
    let origin = vkey.name().to_string();
    let store = Store::open_read_only(dir)
        .with_context(|| format!("opening {} read-only", dir.display()))?;
    let mut find = |index: Option<u64>, rule: &str, detail: String| {
        report.violations.push(Finding {
            origin: origin.clone(),
            index,
            rule: rule.to_string(),
            detail,
        });
    };
    let Some(note) = store.checkpoint()? else {
        report.logs.push((origin.clone(), 0));
        return Ok(());
    };
    let signed = match open_checkpoint(&note, vkey, &[]) {
        Ok(s) => s,
        Err(e) => {
            find(None, "checkpoint-signature", e.to_string());
            return Ok(());
        }
    };
    let size = signed.checkpoint.size;
    let entries = match store.entries(0, size) {
        Ok(e) => e,
        Err(e) => {
            find(
                None,
                "tampered-tile",
                format!("the entry bundles cannot be read: {e}"),
            );
            return Ok(());
        }
    };
    let out = integrate(0, &entries, &MemoryTiles::new())?;
    if out.root != signed.checkpoint.root {
        find(
            None,
            "tampered-tile",
            format!(
                "the stored entries give root {}, the checkpoint {}",
                out.root.to_base64(),
                signed.checkpoint.root.to_base64()
            ),
        );
    }
    for (tile, bytes) in &out.tiles {
        let stored = store.tile(tile.kind, tile.index)?;
        if stored.as_deref() != Some(bytes.as_slice()) {
            find(
                Some(tile.index * 256),
                "tampered-tile",
                format!("{} is not the tile its entries imply", tile.path()),
            );
        }
    }
    let (registry, broken) = replay_log(pgext_spec::authority::Registry::for_log(vkey), &entries);
    for v in broken {
        find(Some(v.index), &v.rule, v.detail);
    }
    let mut hashed = 0;
    for d in registry.dists() {
        for r in d.releases.values() {
            for (sha, what) in r.blobs() {
                report_blob(
                    blobs,
                    sha,
                    what,
                    r.index,
                    &d.name,
                    &r.release.version,
                    &mut find,
                );
                hashed += 1;
            }
        }
    }
    report.blobs += hashed;
    report.entries += entries.len() as u64;
    report.logs.push((origin, size));
    Ok(())
}

fn report_blob(
    blobs: &Blobs,
    sha: &str,
    what: &str,
    index: u64,
    dist: &str,
    version: &str,
    find: &mut impl FnMut(Option<u64>, &str, String),
) {
    match blobs.get(sha) {
        Ok(_) => {}
        Err(BlobError::Damaged(_, got)) => find(
            Some(index),
            "artifact-hash",
            format!("the {what} of {dist} {version} hashes to {got}, its entry names {sha}"),
        ),
        Err(e) => find(
            Some(index),
            "artifact-missing",
            format!("the {what} of {dist} {version} ({sha}): {e}"),
        ),
    }
}
