//! A PGXN mirror tree to import from: a folder (what `rsync://master.pgxn.org/pgxn` leaves) or
//! the same layout over HTTP. Every name read from it is checked before it becomes a path, and
//! every file is read under a size bound: the tree is outside input.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use pgext_spec::authority::{pgxn_version, valid_term};
use serde_json::Value;

/// Largest JSON document read from a tree.
pub const MAX_JSON_BYTES: u64 = 4 << 20;

/// Where the tree is.
#[derive(Debug, Clone)]
pub enum Source {
    /// A folder.
    Folder(PathBuf),
    /// A base URL.
    Http {
        /// Without a trailing slash.
        base: String,
        /// The client.
        client: reqwest::Client,
    },
}

/// One release a distribution document lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Version, as listed.
    pub version: String,
    /// The status it is listed under.
    pub status: String,
    /// Its date, as listed.
    pub date: String,
}

/// The paths of a tree's `index.json` the import reads.
#[derive(Debug, Clone)]
pub struct Templates {
    dist: String,
    meta: String,
    download: String,
}

impl Default for Templates {
    fn default() -> Templates {
        Templates {
            dist: "/dist/{dist}.json".into(),
            meta: "/dist/{dist}/{version}/META.json".into(),
            download: "/dist/{dist}/{version}/{dist}-{version}.zip".into(),
        }
    }
}

fn expand(template: &str, dist: &str, version: &str) -> String {
    // PGXN writes every path in lowercase.
    template
        .replace("{dist}", &dist.to_lowercase())
        .replace("{version}", &version.to_lowercase())
}

/// A name from the tree that may become part of a path.
fn safe_name(name: &str) -> bool {
    valid_term(name) && !name.starts_with('.')
}

impl Source {
    /// A folder, or an `http://`/`https://` base URL.
    ///
    /// # Errors
    /// When the HTTP client cannot be made.
    pub fn parse(s: &str) -> anyhow::Result<Source> {
        if s.starts_with("http://") || s.starts_with("https://") {
            let client = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(120))
                .build()?;
            return Ok(Source::Http {
                base: s.trim_end_matches('/').to_string(),
                client,
            });
        }
        Ok(Source::Folder(PathBuf::from(s)))
    }

    /// The file at `rel` (a path from the tree's root, starting with `/`), at most `limit`
    /// bytes; `None` when the tree has no such file.
    ///
    /// # Errors
    /// When it is larger than `limit` or cannot be read.
    pub async fn get(&self, rel: &str, limit: u64) -> anyhow::Result<Option<Vec<u8>>> {
        match self {
            Source::Folder(root) => {
                let path = root.join(rel.trim_start_matches('/'));
                let meta = match tokio::fs::metadata(&path).await {
                    Ok(m) => m,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
                };
                if !meta.is_file() {
                    return Ok(None);
                }
                if meta.len() > limit {
                    bail!("{rel} is {} bytes; at most {limit} are read", meta.len());
                }
                let bytes = tokio::fs::read(&path)
                    .await
                    .with_context(|| format!("reading {}", path.display()))?;
                if bytes.len() as u64 > limit {
                    bail!("{rel} grew past {limit} bytes while read");
                }
                Ok(Some(bytes))
            }
            Source::Http { base, client } => {
                let url = format!("{base}{rel}");
                let r = client
                    .get(&url)
                    .send()
                    .await
                    .with_context(|| format!("GET {url}"))?;
                if r.status() == reqwest::StatusCode::NOT_FOUND {
                    return Ok(None);
                }
                let r = r.error_for_status().with_context(|| format!("GET {url}"))?;
                if r.content_length().is_some_and(|n| n > limit) {
                    bail!("{rel} is larger than {limit} bytes");
                }
                let mut r = r;
                let mut out = Vec::new();
                while let Some(chunk) = r.chunk().await.with_context(|| format!("GET {url}"))? {
                    out.extend_from_slice(&chunk);
                    if out.len() as u64 > limit {
                        bail!("{rel} is larger than {limit} bytes");
                    }
                }
                Ok(Some(out))
            }
        }
    }

    async fn json(&self, rel: &str) -> anyhow::Result<Option<Value>> {
        match self.get(rel, MAX_JSON_BYTES).await? {
            None => Ok(None),
            Some(b) => Ok(Some(
                serde_json::from_slice(&b).with_context(|| format!("{rel} is not JSON"))?,
            )),
        }
    }

    /// The tree's templates (PGXN's defaults when it has no `index.json`).
    ///
    /// # Errors
    /// When `index.json` cannot be read.
    pub async fn templates(&self) -> anyhow::Result<Templates> {
        let mut t = Templates::default();
        if let Some(doc) = self.json("/index.json").await? {
            let take = |k: &str, into: &mut String| {
                if let Some(v) = doc[k].as_str().filter(|v| v.starts_with('/')) {
                    *into = v.to_string();
                }
            };
            take("dist", &mut t.dist);
            take("meta", &mut t.meta);
            take("download", &mut t.download);
        }
        Ok(t)
    }

    /// The distributions of the tree: the `dist/*.json` files of a folder; over HTTP, the
    /// directory listing of `dist/`, or else the user lists (`/users/{a-z}.json`) and each
    /// user's releases.
    ///
    /// # Errors
    /// When the tree cannot be listed.
    pub async fn dists(&self) -> anyhow::Result<Vec<String>> {
        let mut names = Vec::new();
        match self {
            Source::Folder(root) => {
                let dir = root.join("dist");
                let mut rd = tokio::fs::read_dir(&dir).await.with_context(|| {
                    format!("listing {}: is it a PGXN mirror tree?", dir.display())
                })?;
                while let Some(e) = rd.next_entry().await? {
                    let name = e.file_name().to_string_lossy().to_string();
                    if let Some(d) = name.strip_suffix(".json") {
                        names.push(d.to_string());
                    }
                }
            }
            Source::Http { .. } => {
                if let Some(html) = self.get("/dist/", MAX_JSON_BYTES).await? {
                    let text = String::from_utf8_lossy(&html);
                    for part in text.split("href=\"").skip(1) {
                        let target = part.split('"').next().unwrap_or_default();
                        if let Some(d) = target.strip_suffix(".json") {
                            names.push(percent_decode(d));
                        }
                    }
                }
                if names.is_empty() {
                    for c in 'a'..='z' {
                        let Some(users) = self.json(&format!("/users/{c}.json")).await? else {
                            continue;
                        };
                        for u in users.as_array().into_iter().flatten() {
                            let Some(u) = u["user"].as_str().filter(|u| safe_name(u)) else {
                                continue;
                            };
                            if let Some(doc) = self.json(&format!("/user/{u}.json")).await? {
                                names.extend(
                                    doc["releases"]
                                        .as_object()
                                        .into_iter()
                                        .flatten()
                                        .map(|(k, _)| k.clone()),
                                );
                            }
                        }
                    }
                }
            }
        }
        names.retain(|n| safe_name(n));
        names.sort();
        names.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        Ok(names)
    }

    /// A distribution's document: its name and the releases it lists, oldest first.
    ///
    /// # Errors
    /// When it cannot be read or is not a PGXN distribution document.
    pub async fn dist(&self, t: &Templates, name: &str) -> anyhow::Result<(String, Vec<Listed>)> {
        let rel = expand(&t.dist, name, "");
        let doc = self
            .json(&rel)
            .await?
            .with_context(|| format!("{rel} is missing"))?;
        let shown = doc["name"].as_str().unwrap_or(name).to_string();
        if !shown.eq_ignore_ascii_case(name) {
            bail!("{rel} names distribution {shown:?}");
        }
        let mut listed = Vec::new();
        let releases = doc["releases"]
            .as_object()
            .with_context(|| format!("{rel} has no releases"))?;
        for (status, list) in releases {
            for r in list.as_array().into_iter().flatten() {
                let version = r["version"].as_str().unwrap_or_default().to_string();
                let date = r["date"].as_str().unwrap_or_default().to_string();
                listed.push(Listed {
                    version,
                    status: status.clone(),
                    date,
                });
            }
        }
        // Oldest first; PGXN's dates order its releases, the version breaks ties.
        listed.sort_by(|a, b| {
            a.date.cmp(&b.date).then_with(|| {
                match (pgxn_version(&a.version), pgxn_version(&b.version)) {
                    (Ok(x), Ok(y)) => x.cmp_precedence(&y),
                    _ => a.version.cmp(&b.version),
                }
            })
        });
        Ok((shown, listed))
    }

    /// A release's META as the tree serves it (PGXN's release META: `user`, `sha1`, `date`).
    ///
    /// # Errors
    /// When it is missing or not a JSON object.
    pub async fn release_meta(
        &self,
        t: &Templates,
        dist: &str,
        version: &str,
    ) -> anyhow::Result<BTreeMap<String, Value>> {
        let rel = expand(&t.meta, dist, version);
        let doc = self
            .json(&rel)
            .await?
            .with_context(|| format!("the tree lists {dist} {version} but has no {rel}"))?;
        match doc {
            Value::Object(o) => Ok(o.into_iter().collect()),
            _ => bail!("{rel} is not a JSON object"),
        }
    }

    /// A release's zip, at most `limit` bytes.
    ///
    /// # Errors
    /// When it is missing, too large or unreadable.
    pub async fn zip(
        &self,
        t: &Templates,
        dist: &str,
        version: &str,
        limit: u64,
    ) -> anyhow::Result<Vec<u8>> {
        let rel = expand(&t.download, dist, version);
        self.get(&rel, limit)
            .await?
            .with_context(|| format!("the tree lists {dist} {version} but has no {rel}"))
    }

    /// Whether a version read from the tree may become part of a path.
    pub fn safe_version(version: &str) -> bool {
        safe_name(version) && pgxn_version(version).is_ok()
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}
