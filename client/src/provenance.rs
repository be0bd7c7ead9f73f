//! Who published a release, when, and what proves it: what `pgext verify` prints and install
//! records keep.

use pgext_log::{SignedCheckpoint, VerifierKey};
use pgext_spec::entry::{Action, Entry};
use serde::{Deserialize, Serialize};

use crate::trust::RegistryConfig;

/// Who published what, when, and what proves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// Registry name.
    pub registry: String,
    /// Log origin.
    pub origin: String,
    /// Distribution.
    pub dist: String,
    /// Version.
    pub version: String,
    /// Release status.
    pub status: String,
    /// Publisher (account).
    pub publisher: String,
    /// Publisher's key id.
    pub key_id: String,
    /// Statement time (seconds since the epoch).
    pub time: u64,
    /// Log index.
    pub index: u64,
    /// Archive SHA-256.
    pub sha256: String,
    /// Checkpoint size the proof leads to.
    pub checkpoint_size: u64,
    /// The checkpoint, as a signed note.
    pub checkpoint: String,
    /// Trusted witnesses whose cosignatures verified.
    pub cosigners: Vec<String>,
    /// Yanked, with the reason.
    pub yanked: Option<String>,
    /// Published from CI by trusted publishing: the run its CI key was given for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<pgext_spec::trusted::Claims>,
}

impl Provenance {
    /// The report for a release `entry` at `index`, proven by the checkpoint `note`.
    pub(crate) fn of(
        reg: &RegistryConfig,
        entry: &Entry,
        index: u64,
        note: String,
        signed: &SignedCheckpoint,
        cosigners: Vec<VerifierKey>,
        yanked: Option<String>,
    ) -> Provenance {
        let (dist, version, status, sha256) = match entry.statement.action.release() {
            Some(r) => (
                r.dist.clone(),
                r.version.clone(),
                r.status.as_str().to_string(),
                r.sha256.clone(),
            ),
            None => Default::default(),
        };
        // An imported release names its PGXN user; the operator only carried it over.
        let publisher = match &entry.statement.action {
            Action::Import(i) => format!("pgxn:{}", i.user),
            _ => entry.statement.actor.clone(),
        };
        Provenance {
            registry: reg.name.clone(),
            origin: signed.checkpoint.origin.clone(),
            dist,
            version,
            status,
            publisher,
            key_id: entry.statement.key_id.clone(),
            time: entry.statement.time,
            index,
            sha256,
            checkpoint_size: signed.checkpoint.size,
            checkpoint: note,
            cosigners: cosigners.iter().map(VerifierKey::to_string).collect(),
            yanked,
            ci: None,
        }
    }
}
