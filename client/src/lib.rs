//! The pgext client and SDK. Every command of the `pgext` binary is a call into this library.
//! The trust configuration ([`trust`]); fetching a release and proving it before anything is
//! written ([`verify`]), online or from a tlog-proof file; choosing releases ([`request`]);
//! building and installing into PostgreSQL ([`build`], [`pg`]) with a record of every file
//! ([`installed`]); the commands themselves ([`ops`]); building and signing registry entries
//! ([`release`]) and talking to a node's API ([`api`]).

pub mod api;
pub mod audit;
pub mod author;
pub mod build;
pub mod installed;
pub mod ops;
pub mod pg;
pub mod project;
pub mod release;
pub mod request;
pub mod trust;
pub mod verify;
pub mod watch;

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
    /// The node refused, or answered what cannot be read.
    #[error("{0}")]
    Api(String),
    /// The node could not be reached.
    #[error("cannot reach the node: {0}")]
    Unreachable(String),
    /// The configuration or the local state cannot be read or written.
    #[error("{0}")]
    Config(String),
    /// PostgreSQL could not be found or answered with an error.
    #[error("PostgreSQL: {0}")]
    Postgres(String),
    /// A build step failed; its log is kept.
    #[error("{step} failed ({detail}); the build log is kept at {}", log.display())]
    Build {
        /// The step (`configure`, `make`, `make install`, …).
        step: String,
        /// The log.
        log: std::path::PathBuf,
        /// Why.
        detail: String,
    },
    /// Installing or removing files is not possible as asked.
    #[error("{0}")]
    Install(String),
}

/// A failure of a client command: a release that did not verify, or anything else.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A check of `spec/client.md` failed: nothing was written.
    #[error(transparent)]
    Verify(#[from] verify::VerifyError),
    /// Anything else.
    #[error(transparent)]
    Client(#[from] ClientError),
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
