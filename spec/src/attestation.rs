//! A builder's attestation of a binary package, as `build` entries carry it (`spec/binary.md`).

use serde::{Deserialize, Serialize};

/// What `make installcheck` said on a build's target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Installcheck {
    /// Every regression test passed.
    Passed,
    /// Some failed.
    Failed,
    /// The release has no regression tests (`REGRESS` is empty).
    None,
}

impl Installcheck {
    /// The spelling in entries.
    pub fn as_str(self) -> &'static str {
        match self {
            Installcheck::Passed => "passed",
            Installcheck::Failed => "failed",
            Installcheck::None => "none",
        }
    }
}

/// A builder's attestation: the release at `release_index` (whose entry's RFC 6962 leaf hash is
/// `release_hash`), built for `target`, produced the binary package `sha256` (`spec/binary.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build {
    /// Distribution.
    pub dist: String,
    /// Version.
    pub version: String,
    /// Log index of the release entry.
    pub release_index: u64,
    /// Hex RFC 6962 leaf hash of the release entry.
    pub release_hash: String,
    /// What it was built for.
    pub target: crate::binary::Target,
    /// Hex SHA-256 of the binary package.
    pub sha256: String,
    /// Size of the binary package in bytes.
    pub size: u64,
    /// Hex SHA-256 of the build's log.
    pub log_sha256: String,
    /// What `make installcheck` said.
    pub installcheck: Installcheck,
}
