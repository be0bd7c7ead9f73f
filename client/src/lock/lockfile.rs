//! `pgext.lock`: a manifest resolved to exact releases, each pinned by its log index, entry
//! hash and artifact digests, with the signed checkpoint of each registry it was resolved at
//! (`spec/client.md`, Manifests and locks). Written for people to review.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Error;

/// The lock format's version.
pub const FORMAT: u32 = 1;
/// The largest lock read.
const MAX_LOCK: u64 = 16 << 20;

/// A registry a lock takes dists from, and the checkpoint every entry is proven in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedRegistry {
    /// Its name in the client configuration.
    pub name: String,
    /// Its log's origin (the verifier key's name).
    pub origin: String,
    /// The signed checkpoint (with its cosignatures) every entry of it was proven in.
    pub checkpoint: String,
}

/// A binary package a lock installs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedBinary {
    /// The package's SHA-256.
    pub sha256: String,
    /// Its size.
    pub size: u64,
    /// The target it was built for (`spec/binary.md`).
    pub target: String,
    /// The builders whose attestations were counted.
    pub builders: Vec<String>,
    /// Those attestations' log indexes.
    pub attestations: Vec<u64>,
}

/// One dist of a lock, in install order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedDist {
    /// Dist name.
    pub name: String,
    /// Exact version.
    pub version: String,
    /// Registry name.
    pub registry: String,
    /// Its release entry's log index.
    pub index: u64,
    /// The release entry's RFC 6962 leaf hash, hex.
    pub entry_hash: String,
    /// The release archive's SHA-256.
    pub sha256: String,
    /// The archive's size.
    pub size: u64,
    /// META.json's SHA-256.
    pub meta_sha256: String,
    /// `binary` or `source`.
    pub kind: String,
    /// The binary package, when `kind` is `binary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<LockedBinary>,
    /// The lock's dists it needs first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    /// Why it is in the lock.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub why: Vec<String>,
}

/// A lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    /// [`FORMAT`].
    pub format: u32,
    /// The SHA-256 of the manifest it was made from.
    pub manifest_sha256: String,
    /// The manifest's `[postgres] pg_config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pg_config: Option<PathBuf>,
    /// The PostgreSQL it was resolved against (`pg_config --version`).
    pub postgres: String,
    /// The registries, with their checkpoints.
    #[serde(rename = "registry", default)]
    pub registries: Vec<LockedRegistry>,
    /// The dists, in install order.
    #[serde(rename = "dist", default)]
    pub dists: Vec<LockedDist>,
}

fn bad(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::Request(format!("{}: {what}", path.display()))
}

fn hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Lock {
    /// Reads a lock from its bytes (`path` names it in errors), checking its shape: the format,
    /// digests of 64 hex digits, each dist's registry listed, a binary exactly for `binary`.
    ///
    /// # Errors
    /// [`Error::Request`] naming what is wrong.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Lock, Error> {
        if bytes.len() as u64 > MAX_LOCK {
            return Err(bad(path, format!("larger than {MAX_LOCK} bytes")));
        }
        let text = std::str::from_utf8(bytes).map_err(|e| bad(path, e))?;
        let lock: Lock = toml::from_str(text).map_err(|e| bad(path, e))?;
        if lock.format != FORMAT {
            return Err(bad(
                path,
                format!(
                    "lock format {} (this pgext reads {FORMAT}): lock again",
                    lock.format
                ),
            ));
        }
        for d in &lock.dists {
            let what = format!("dist {} {}", d.name, d.version);
            if !lock.registries.iter().any(|r| r.name == d.registry) {
                return Err(bad(
                    path,
                    format!(
                        "{what} names registry {}, which the lock does not list",
                        d.registry
                    ),
                ));
            }
            let digests = [&d.entry_hash, &d.sha256, &d.meta_sha256];
            if !digests.iter().all(|h| hex64(h)) {
                return Err(bad(path, format!("{what}: a digest is not 64 hex digits")));
            }
            match (d.kind.as_str(), &d.binary) {
                ("source", None) => {}
                ("binary", Some(b)) if hex64(&b.sha256) && !b.attestations.is_empty() => {}
                _ => {
                    return Err(bad(
                        path,
                        format!("{what}: kind {:?} and its binary do not agree", d.kind),
                    ));
                }
            }
        }
        Ok(lock)
    }

    /// Reads a lock file.
    ///
    /// # Errors
    /// As [`Lock::parse`], or when it cannot be read.
    pub fn read(path: &Path) -> Result<Lock, Error> {
        let len = std::fs::metadata(path)
            .map_err(|e| bad(path, format!("{e} (run `pgext lock` first)")))?
            .len();
        if len > MAX_LOCK {
            return Err(bad(path, format!("larger than {MAX_LOCK} bytes")));
        }
        let bytes = std::fs::read(path).map_err(|e| bad(path, e))?;
        Lock::parse(path, &bytes)
    }

    /// The lock as written: a comment, then TOML.
    ///
    /// # Errors
    /// When it cannot be serialized.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let body = toml::to_string_pretty(self).map_err(|e| Error::Config(e.to_string()))?;
        Ok(format!(
            "# Written by `pgext lock` from pgext.toml: review it, commit it, and apply it with\n# `pgext sync` (or `pgext pack` it for a host with no network). Edits are refused.\n\n{body}"
        )
        .into_bytes())
    }

    /// The registry `name` as locked.
    pub fn registry(&self, name: &str) -> Option<&LockedRegistry> {
        self.registries.iter().find(|r| r.name == name)
    }
}
