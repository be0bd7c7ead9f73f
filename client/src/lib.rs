//! The pgext client and SDK. Every command of the `pgext` binary is a call into this library.
//! Today: the trust configuration ([`trust`]), fetching a release and proving it before
//! anything is written ([`verify`]), offline verification of tlog-proof files, building and
//! signing registry entries (accounts, releases), and talking to a node's API.

pub mod api;
pub mod release;
pub mod trust;
pub mod verify;

use pgext_log::{ProofFile, SignedCheckpoint, VerifierKey, leaf_hash};

/// Client failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A log-level check failed.
    #[error(transparent)]
    Log(#[from] pgext_log::Error),
    /// The archive cannot be released as it is.
    #[error("{0}")]
    Release(String),
    /// The node refused or could not be reached.
    #[error("{0}")]
    Api(String),
    /// The configuration or the local state cannot be read or written.
    #[error("{0}")]
    Config(String),
}

/// Verifies offline that `entry` is in the log signed by `log_key`, using a tlog-proof file.
///
/// # Errors
/// When the proof file is malformed, the checkpoint is not signed by the log key, or the
/// inclusion proof does not lead to the checkpoint's root.
pub fn verify_entry_proof(
    entry: &[u8],
    proof_file: &[u8],
    log_key: &VerifierKey,
) -> Result<SignedCheckpoint, ClientError> {
    let file = ProofFile::parse(proof_file)?;
    Ok(file.verify(&leaf_hash(entry), log_key, &[])?)
}
