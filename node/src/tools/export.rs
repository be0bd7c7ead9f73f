//! `pgext-node export-pgxn DIR`: the registry as a static PGXN mirror tree (the layout PGXN's
//! master mirror rsyncs), with the same bytes the node serves over HTTP, so any static web server
//! can serve it to PGXN clients. It reads the data folder read-only, so it runs beside a running
//! node; and incrementally: a file whose bytes did not change is not written again (its mtime
//! stays, so rsync skips it), each file written is renamed into place whole, and files of the
//! tree's layout the registry no longer produces are removed.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

use crate::config::Config;
use crate::origin::blobs::Blobs;
use crate::origin::keys::load_log_key;
use crate::origin::releases::headline;
use crate::origin::store::Store;
use crate::origin::{Content, docs, replay};
use crate::serve::pgxn::documents as pgxn;

/// What an export did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exported {
    /// Files the tree holds.
    pub files: usize,
    /// Files written (new or changed).
    pub written: usize,
    /// Files removed (no longer in the registry's tree).
    pub removed: usize,
}

/// The folders of the layout: only files below these are pruned.
const LAYOUT: [&str; 7] = ["dist", "extension", "user", "users", "tag", "stats", "meta"];

/// Writes `bytes` at `rel` unless the file holds them already; whether it wrote.
fn write(root: &Path, rel: &str, bytes: &[u8]) -> anyhow::Result<bool> {
    let path = root.join(rel);
    let same = fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64)
        && fs::read(&path).is_ok_and(|old| old == bytes);
    if same {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // Whole or not at all: a mirror pulling the tree meanwhile never sees half a file.
    let mut tmp = path.clone().into_os_string();
    tmp.push(".export-tmp");
    let tmp = PathBuf::from(tmp);
    fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(true)
}

/// Removes the files below the layout's folders of `root` that are not in `keep`; how many.
fn prune(root: &Path, keep: &BTreeSet<PathBuf>) -> anyhow::Result<usize> {
    let mut removed = 0;
    let mut dirs: Vec<PathBuf> = LAYOUT.iter().map(|d| root.join(d)).collect();
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(path);
            } else if !keep.contains(&path) {
                fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

fn json(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// Writes the tree of the node's own log, reading the data folder read-only (a running node's
/// too).
///
/// # Errors
/// When the folder is not a data folder, a file cannot be written or a blob is missing.
pub fn export_pgxn(config: &Config, root: &Path) -> anyhow::Result<Exported> {
    let key = load_log_key(config)?;
    let store = Store::open_read_only(&config.data.join("db"))?;
    let (reg, _, _) = replay(&store, key.verifier())?;
    let content = Content::new(
        Blobs::open_read_only(&config.data.join("blobs"))?,
        std::sync::Arc::default(),
    );
    let counts = crate::origin::counts::Tally::load(&store);
    let downloads = |d: &str, v: &str| counts.downloads(d, v).total;
    export_registry(&reg, (&content, &downloads), config.http, key.name(), root)
}

/// Writes the tree of a running node's origin, from its current snapshot. Blocks.
///
/// # Errors
/// When a file cannot be written or a blob is missing.
pub fn export_origin(
    origin: &crate::origin::Origin,
    http: std::net::SocketAddr,
    root: &Path,
) -> anyhow::Result<Exported> {
    let snap = origin.snapshot();
    let downloads = |d: &str, v: &str| origin.downloads(d, v).total;
    export_registry(
        &snap.registry,
        (origin.content(), &downloads),
        http,
        &origin.name,
        root,
    )
}

/// How many downloads of `dist`, `version` the nodes counted.
pub type Downloads<'a> = dyn Fn(&str, &str) -> u64 + 'a;

/// Writes the tree of a registry state, incrementally, with the downloads `downloads` says
/// each release had.
///
/// # Errors
/// When a file cannot be written or a blob is missing.
pub fn export_registry(
    reg: &pgext_spec::authority::Registry,
    (content, downloads): (&Content, &Downloads<'_>),
    http: std::net::SocketAddr,
    origin: &str,
    root: &Path,
) -> anyhow::Result<Exported> {
    let shared = content;
    let mut done = Exported::default();
    let mut keep = BTreeSet::new();
    let mut put = |rel: &str, bytes: &[u8]| -> anyhow::Result<()> {
        done.files += 1;
        keep.insert(root.join(rel));
        done.written += usize::from(write(root, rel, bytes)?);
        Ok(())
    };
    put("index.json", &json(&pgxn::index_doc()))?;
    let mut extensions = std::collections::BTreeSet::new();
    let mut tags = std::collections::BTreeSet::new();
    for d in reg.dists() {
        let name = d.name.to_ascii_lowercase();
        if let Some(doc) = pgxn::dist_doc(shared, d)? {
            put(&format!("dist/{name}.json"), &json(&doc))?;
        }
        for r in d.releases.values() {
            let version = r.release.version.to_ascii_lowercase();
            let base = format!("dist/{name}/{version}");
            put(
                &format!("{base}/META.json"),
                &json(&pgxn::release_meta(shared, d, r)?),
            )?;
            let zip = shared
                .get(&r.release.sha256)
                .with_context(|| format!("blob of {name} {version}"))?;
            if let Some(readme) = docs::readme_of(&zip, &docs::base_name(&name, &version)) {
                put(&format!("{base}/README.txt"), &readme)?;
            }
            put(&format!("{base}/{name}-{version}.zip"), &zip)?;
            extensions.extend(r.release.provides.keys().map(|e| e.to_ascii_lowercase()));
        }
        if let Some(r) = headline(d) {
            let m = shared.meta(&r.release.meta_sha256)?;
            tags.extend(m.tags.iter().map(|t| t.to_lowercase()));
        }
    }
    for e in &extensions {
        if let Some(doc) = pgxn::extension_doc(shared, reg, e)? {
            put(&format!("extension/{e}.json"), &json(&doc))?;
        }
    }
    for t in &tags {
        if let Some(doc) = pgxn::tag_doc(shared, reg, t)? {
            put(&format!("tag/{t}.json"), &json(&doc))?;
        }
    }
    let mut letters = std::collections::BTreeSet::new();
    for a in reg.accounts() {
        if let Some(doc) = pgxn::user_doc(shared, reg, &a.user)? {
            put(&format!("user/{}.json", a.user), &json(&doc))?;
        }
        letters.extend(a.user.chars().next());
    }
    for c in letters {
        if let Some(doc) = pgxn::userlist_doc(reg, &c.to_string()) {
            put(&format!("users/{c}.json"), &json(&doc))?;
        }
    }
    for kind in ["summary", "dist", "extension", "user", "tag"] {
        if let Some(doc) = pgxn::stats_doc(shared, reg, downloads, kind)? {
            put(&format!("stats/{kind}.json"), &json(&doc))?;
        }
    }
    put("meta/mirrors.json", &json(&pgxn::mirrors_doc(http, origin)))?;
    put("meta/spec.txt", pgxn::SPEC_TXT.as_bytes())?;
    done.removed = prune(root, &keep)?;
    Ok(done)
}
