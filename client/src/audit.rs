//! `pgext audit`: replay a log from nothing but node URLs and the log key. Every node's
//! checkpoint and cosignatures are verified, every node's entry bundles fetched (cached, so an
//! interrupted or a second audit only fetches what it lacks) and its tree recomputed against its
//! own checkpoint, all nodes' checkpoints held against one tree (two signed trees that
//! disagree are a split view, kept as evidence), every entry replayed against the authority
//! rules with batch-verified signatures, and with `artifacts` every release archive and binary package hashed
//! (`spec/audit.md`).

use std::path::PathBuf;

use futures::stream::{self, StreamExt as _};
use pgext_log::{
    Hash, MemoryTiles, Tile, TileHashReader, VerifierKey, bundle_entries, integrate,
    open_checkpoint, tree_hash,
};
use pgext_spec::authority::replay_log;
use serde::Serialize;

use crate::Error;

/// What to audit.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// Node URLs (their own origin, or a mirror's `/origins/NAME` prefix).
    pub urls: Vec<String>,
    /// The log's verifier key.
    pub log_key: VerifierKey,
    /// Witness keys whose cosignatures must verify where present.
    pub witnesses: Vec<VerifierKey>,
    /// Download and hash every release archive.
    pub artifacts: bool,
    /// Where verified bundles are kept between audits.
    pub cache: Option<PathBuf>,
    /// How the nodes are read: anonymously, or with a member's token once a private log asks.
    pub access: crate::auth::Access,
}

/// One node as the audit saw it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeReport {
    /// Its URL.
    pub url: String,
    /// Its checkpoint's size, when the checkpoint verified.
    pub size: Option<u64>,
    /// Its checkpoint's root (base64).
    pub root: Option<String>,
    /// Trusted witnesses whose cosignatures verified.
    pub cosigners: Vec<String>,
    /// Its checkpoint, as served.
    pub checkpoint: String,
}

/// A broken rule, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The log index, for an entry.
    pub index: Option<u64>,
    /// The rule (`spec/audit.md`): an authority rule's name, or `checkpoint-signature`,
    /// `bad-cosignature`, `tampered-tile`, `malformed-entry`, `artifact-hash`, `unreachable`.
    pub rule: String,
    /// The node, when one node is at fault.
    pub node: Option<String>,
    /// What was found.
    pub detail: String,
}

/// The audit's result.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The log's origin.
    pub origin: String,
    /// The largest verified tree.
    pub size: u64,
    /// Entries replayed.
    pub entries: u64,
    /// Release archives hashed.
    pub artifacts: u64,
    /// Bundles read from the cache.
    pub bundles_cached: u64,
    /// Bundles fetched.
    pub bundles_fetched: u64,
    /// Every node.
    pub nodes: Vec<NodeReport>,
    /// Every violation.
    pub violations: Vec<Finding>,
    /// Split views: pairs of signed notes of one log that no single tree explains.
    pub evidence: Vec<[String; 2]>,
}

impl Report {
    /// 0: clean; 1: violations; 2: a split view (with or without other violations).
    pub fn exit_code(&self) -> u8 {
        if !self.evidence.is_empty() {
            2
        } else if !self.violations.is_empty() {
            1
        } else {
            0
        }
    }
}

fn finding(
    index: Option<u64>,
    rule: &str,
    node: Option<&str>,
    detail: impl Into<String>,
) -> Finding {
    Finding {
        index,
        rule: rule.to_string(),
        node: node.map(str::to_string),
        detail: detail.into(),
    }
}

struct Fetcher {
    access: crate::auth::Access,
    cache: Option<PathBuf>,
}

impl Fetcher {
    async fn get(&self, url: &str) -> Result<Vec<u8>, String> {
        let r = self.access.get(url).await.map_err(|e| e.to_string())?;
        if !r.status().is_success() {
            return Err(format!("{url}: HTTP {}", r.status()));
        }
        r.bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| e.to_string())
    }

    fn cache_path(&self, base: &str, tile: &Tile) -> Option<PathBuf> {
        let key = pgext_log::hex(&pgext_log::sha256(base.as_bytes())[..8]);
        self.cache.as_ref().map(|c| c.join(key).join(tile.path()))
    }

    /// A node's bundles for a tree of `size`, from the cache when kept before; whether each
    /// came from the cache.
    async fn bundles(&self, base: &str, size: u64) -> Vec<(Tile, Result<Vec<u8>, String>, bool)> {
        let tiles: Vec<Tile> = (0..size.div_ceil(256))
            .map(|n| Tile::entries(n, (size - n * 256).min(256) as u16))
            .collect();
        stream::iter(tiles)
            .map(|t| async move {
                if let Some(bytes) = self
                    .cache_path(base, &t)
                    .and_then(|p| std::fs::read(p).ok())
                {
                    return (t, Ok(bytes), true);
                }
                let got = self.get(&format!("{base}/log/{}", t.path())).await;
                // Kept as soon as fetched, so an interrupted audit resumes where it stopped;
                // the tree is recomputed from every bundle each time, and a node whose tree
                // does not verify loses its cache (`forget`).
                if let Ok(bytes) = &got {
                    self.keep(base, &t, bytes);
                }
                (t, got, false)
            })
            .buffered(8)
            .collect()
            .await
    }

    /// Keeps a full bundle of a node.
    fn keep(&self, base: &str, t: &Tile, bytes: &[u8]) {
        if let Some(p) = self.cache_path(base, t).filter(|_| t.is_full()) {
            // A cache: a bundle that cannot be kept is fetched again next time.
            let _ = crate::trust::write_atomically(&p, bytes);
        }
    }

    /// Drops everything kept of a node.
    fn forget(&self, base: &str) {
        if let (Some(c), key) = (
            &self.cache,
            pgext_log::hex(&pgext_log::sha256(base.as_bytes())[..8]),
        ) {
            let _ = std::fs::remove_dir_all(c.join(key));
        }
    }
}

/// A node's entries, its bundles, and the tree they make.
struct NodeLog {
    url: String,
    note: String,
    size: u64,
    /// The root its checkpoint signs.
    root: Hash,
    entries: Vec<Vec<u8>>,
    bundles: Vec<(Tile, Vec<u8>)>,
    /// The tree, when it gave the signed root.
    tree: Option<MemoryTiles>,
}

fn root_of(entries: &[Vec<u8>]) -> Result<(MemoryTiles, Hash), String> {
    let mut store = MemoryTiles::new();
    let out = integrate(0, entries, &store).map_err(|e| e.to_string())?;
    for (t, b) in out.tiles {
        store.put(t, b);
    }
    Ok((store, out.root))
}

/// Audits the log the nodes serve.
///
/// # Errors
/// Only when no node gives a checkpoint the log key signed (everything else is a finding).
pub async fn audit(cfg: &AuditConfig) -> Result<Report, Error> {
    let fetch = Fetcher {
        access: cfg.access.clone(),
        cache: cfg.cache.clone(),
    };
    let mut violations = Vec::new();
    let mut nodes = Vec::new();
    let mut logs: Vec<NodeLog> = Vec::new();
    let (mut cached, mut fetched) = (0, 0);
    for url in &cfg.urls {
        let base = url.trim_end_matches('/').to_string();
        let note = match fetch.get(&format!("{base}/log/checkpoint")).await {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => {
                violations.push(finding(None, "unreachable", Some(&base), e));
                continue;
            }
        };
        let mut report = NodeReport {
            url: base.clone(),
            size: None,
            root: None,
            cosigners: Vec::new(),
            checkpoint: note.clone(),
        };
        // With the witnesses, a present cosignature that does not verify is an error.
        let with_witnesses = open_checkpoint(note.as_bytes(), &cfg.log_key, &cfg.witnesses);
        let signed = match with_witnesses {
            Ok(s) => s,
            Err(e) => {
                let log_only = open_checkpoint(note.as_bytes(), &cfg.log_key, &[]);
                let rule = if log_only.is_ok() {
                    "bad-cosignature"
                } else {
                    "checkpoint-signature"
                };
                violations.push(finding(None, rule, Some(&base), e.to_string()));
                // A bad cosignature does not stop the audit of the log itself.
                let Ok(s) = log_only else {
                    nodes.push(report);
                    continue;
                };
                s
            }
        };
        report.cosigners = cfg
            .witnesses
            .iter()
            .filter(|w| signed.note.verified_by(w).is_some())
            .map(VerifierKey::to_string)
            .collect();
        let (size, root) = (signed.checkpoint.size, signed.checkpoint.root);
        report.size = Some(size);
        report.root = Some(root.to_base64());
        nodes.push(report);
        let mut entries = Vec::new();
        let mut bundles = Vec::new();
        let mut broken = false;
        for (tile, got, from_cache) in fetch.bundles(&base, size).await {
            if from_cache {
                cached += 1;
            } else {
                fetched += 1;
            }
            let got = match got {
                Ok(b) => b,
                Err(e) => {
                    violations.push(finding(
                        Some(tile.index * 256),
                        "unreachable",
                        Some(&base),
                        e,
                    ));
                    broken = true;
                    continue;
                }
            };
            match Ok::<_, String>(got).and_then(|b| {
                let list: Vec<Vec<u8>> = bundle_entries(&tile, &b)
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .map(<[u8]>::to_vec)
                    .collect();
                Ok((b, list))
            }) {
                Ok((b, list)) => {
                    entries.extend(list);
                    bundles.push((tile, b));
                }
                Err(e) => {
                    violations.push(finding(
                        Some(tile.index * 256),
                        "tampered-tile",
                        Some(&base),
                        format!("{}: {e}", tile.path()),
                    ));
                    broken = true;
                }
            }
        }
        if broken {
            continue;
        }
        match root_of(&entries) {
            Ok((tree, r)) if r == root => {
                logs.push(NodeLog {
                    url: base,
                    note,
                    size,
                    root,
                    entries,
                    bundles,
                    tree: Some(tree),
                });
            }
            _ => {
                // Which bundle differs is named below, against a node whose tree verified.
                fetch.forget(&base);
                logs.push(NodeLog {
                    url: base,
                    note,
                    size,
                    root,
                    entries: Vec::new(),
                    bundles,
                    tree: None,
                });
            }
        }
    }
    let Some((reference, tree)) = logs
        .iter()
        .filter_map(|l| l.tree.as_ref().map(|t| (l, t)))
        .max_by_key(|(l, _)| l.size)
    else {
        return Err(Error::Api(format!(
            "no node served a log that matches a checkpoint signed by {}: {}",
            cfg.log_key,
            violations
                .iter()
                .map(|f| format!("{}: {}", f.rule, f.detail))
                .collect::<Vec<_>>()
                .join("; ")
        )));
    };
    let reader = TileHashReader::new(reference.size, tree);

    // Every node's signed tree must be a prefix of the reference tree, and its bundles the
    // reference's bytes.
    let mut evidence = Vec::new();
    for l in logs.iter().filter(|l| l.url != reference.url) {
        let same_tree = l.size > reference.size || tree_hash(l.size, &reader).ok() == Some(l.root);
        if !same_tree {
            evidence.push([reference.note.clone(), l.note.clone()]);
            violations.push(finding(
                None,
                "split-view",
                Some(&l.url),
                format!(
                    "its checkpoint of size {} is not a prefix of the tree of size {} that {} serves: the log key signed two different trees",
                    l.size, reference.size, reference.url
                ),
            ));
            continue;
        }
        if l.tree.is_none() {
            for (tile, bytes) in &l.bundles {
                let theirs = reference
                    .bundles
                    .iter()
                    .find(|(t, _)| t.index == tile.index);
                let differs = match theirs {
                    Some((t, b)) if t.width == tile.width => b != bytes,
                    _ => true,
                };
                if differs {
                    violations.push(finding(
                        Some(tile.index * 256),
                        "tampered-tile",
                        Some(&l.url),
                        format!(
                            "{} does not hold the entries of the signed tree",
                            tile.path()
                        ),
                    ));
                }
            }
        }
    }

    // Every entry against the rules, signatures in batches.
    let (registry, broken) = replay_log(
        pgext_spec::authority::Registry::for_log(&cfg.log_key),
        &reference.entries,
    );
    violations.extend(
        broken
            .into_iter()
            .map(|v| finding(Some(v.index), &v.rule, None, v.detail)),
    );

    let mut artifacts = 0;
    if cfg.artifacts {
        let releases: Vec<(u64, pgext_spec::entry::Release)> = registry
            .dists()
            .flat_map(|d| d.releases.values())
            .map(|r| (r.index, r.release.clone()))
            .collect();
        let base = reference.url.clone();
        let results: Vec<_> = stream::iter(releases)
            .map(|(i, r)| {
                let url = format!("{base}/dist/{0}/{1}/{0}-{1}.zip", r.dist, r.version);
                let fetch = &fetch;
                async move { (i, r, fetch.get(&url).await) }
            })
            .buffered(8)
            .collect()
            .await;
        for (i, r, got) in results {
            artifacts += 1;
            match got {
                Ok(zip) => {
                    let sha = pgext_log::hex(&pgext_log::sha256(&zip));
                    if sha != r.sha256 || zip.len() as u64 != r.size {
                        violations.push(finding(Some(i), "artifact-hash", Some(&base), format!(
                            "{} {}: the archive's SHA-256 is {sha} ({} bytes), the entry names {} ({} bytes)",
                            r.dist, r.version, zip.len(), r.sha256, r.size
                        )));
                        continue;
                    }
                    // The META blob is the archive's META.json: it must be the one the entry names.
                    let meta = pgext_spec::archive::read_archive(&zip, &Default::default())
                        .ok()
                        .and_then(|f| f.get("META.json").map(pgext_log::sha256));
                    if meta.map(|m| pgext_log::hex(&m)) != Some(r.meta_sha256.clone()) {
                        violations.push(finding(
                            Some(i),
                            "meta-hash",
                            Some(&base),
                            format!(
                                "{} {}: the archive's META.json is not the META {} the entry names",
                                r.dist, r.version, r.meta_sha256
                            ),
                        ));
                    }
                }
                Err(e) => violations.push(finding(Some(i), "artifact-missing", Some(&base), e)),
            }
        }
        // Every binary package an attestation names, by its digest.
        let packages: Vec<(u64, pgext_spec::entry::Build)> = registry
            .dists()
            .flat_map(|d| d.releases.values())
            .flat_map(|r| r.builds.iter())
            .map(|b| (b.index, b.build.clone()))
            .collect();
        let results: Vec<_> = stream::iter(packages)
            .map(|(i, b)| {
                let url = format!(
                    "{base}/api/v1/dists/{}/{}/builds/{}",
                    b.dist.to_ascii_lowercase(),
                    b.version.to_ascii_lowercase(),
                    b.sha256
                );
                let fetch = &fetch;
                async move { (i, b, fetch.get(&url).await) }
            })
            .buffered(8)
            .collect()
            .await;
        for (i, b, got) in results {
            artifacts += 1;
            match got {
                Ok(bytes) => {
                    let sha = pgext_log::hex(&pgext_log::sha256(&bytes));
                    if sha != b.sha256 || bytes.len() as u64 != b.size {
                        violations.push(finding(Some(i), "artifact-hash", Some(&base), format!(
                            "{} {} for {}: the package's SHA-256 is {sha} ({} bytes), the attestation names {} ({} bytes)",
                            b.dist, b.version, b.target.slug(), bytes.len(), b.sha256, b.size
                        )));
                    }
                }
                Err(e) => violations.push(finding(Some(i), "artifact-missing", Some(&base), e)),
            }
        }
    }
    Ok(Report {
        origin: cfg.log_key.name().to_string(),
        size: reference.size,
        entries: reference.entries.len() as u64,
        artifacts,
        bundles_cached: cached,
        bundles_fetched: fetched,
        nodes,
        violations,
        evidence,
    })
}
