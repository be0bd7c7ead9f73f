//! `pgext-node export-pgxn DIR`: the registry as a static PGXN mirror tree (the layout PGXN's
//! master mirror rsyncs), with the same bytes the node serves over HTTP, so any static web server
//! can serve it to PGXN clients.

use std::fs;
use std::path::Path;

use anyhow::Context;
use serde_json::Value;

use crate::node::Shared;
use crate::pgxn;

fn write(root: &Path, rel: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let path = root.join(rel);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn json(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// Writes the tree; returns the number of files written.
///
/// # Errors
/// When a file cannot be written or a blob is missing.
pub fn export_pgxn(shared: &Shared, root: &Path) -> anyhow::Result<usize> {
    let reg = shared.registry.read().unwrap_or_else(|p| p.into_inner());
    let mut n = 0;
    let mut put = |rel: &str, bytes: &[u8]| -> anyhow::Result<()> {
        n += 1;
        write(root, rel, bytes)
    };
    put("index.json", &json(&pgxn::index_doc()))?;
    let mut extensions = std::collections::BTreeSet::new();
    let mut tags = std::collections::BTreeSet::new();
    for d in reg.dists() {
        let name = d.name.to_ascii_lowercase();
        if let Some(doc) = pgxn::dist_doc(shared, d) {
            put(&format!("dist/{name}.json"), &json(&doc))?;
        }
        for r in d.releases.values() {
            let version = r.release.version.to_ascii_lowercase();
            let base = format!("dist/{name}/{version}");
            if let Some(meta) = pgxn::release_meta(shared, d, r) {
                put(&format!("{base}/META.json"), &json(&meta))?;
            }
            let zip = shared
                .blobs
                .get(&r.release.sha256)
                .with_context(|| format!("blob of {name} {version}"))?;
            if let Some(readme) =
                crate::docs::readme_of(&zip, &crate::docs::base_name(&name, &version))
            {
                put(&format!("{base}/README.txt"), &readme)?;
            }
            put(&format!("{base}/{name}-{version}.zip"), &zip)?;
            extensions.extend(r.release.provides.keys().map(|e| e.to_ascii_lowercase()));
        }
        if let Some(m) = pgxn::headline(d).and_then(|r| shared.meta(&r.release.meta_sha256)) {
            tags.extend(m.tags.iter().map(|t| t.to_lowercase()));
        }
    }
    for e in &extensions {
        if let Some(doc) = pgxn::extension_doc(shared, &reg, e) {
            put(&format!("extension/{e}.json"), &json(&doc))?;
        }
    }
    for t in &tags {
        if let Some(doc) = pgxn::tag_doc(shared, &reg, t) {
            put(&format!("tag/{t}.json"), &json(&doc))?;
        }
    }
    let mut letters = std::collections::BTreeSet::new();
    for a in reg.accounts() {
        if let Some(doc) = pgxn::user_doc(shared, &reg, &a.user) {
            put(&format!("user/{}.json", a.user), &json(&doc))?;
        }
        letters.extend(a.user.chars().next());
    }
    for c in letters {
        if let Some(doc) = pgxn::userlist_doc(&reg, &c.to_string()) {
            put(&format!("users/{c}.json"), &json(&doc))?;
        }
    }
    for kind in ["summary", "dist", "extension", "user", "tag"] {
        if let Some(doc) = pgxn::stats_doc(shared, &reg, kind) {
            put(&format!("stats/{kind}.json"), &json(&doc))?;
        }
    }
    put("meta/mirrors.json", &json(&pgxn::mirrors_doc(shared)))?;
    put("meta/spec.txt", pgxn::SPEC_TXT.as_bytes())?;
    Ok(n)
}
