//! The pgext client and SDK. Every command of the `pgext` binary is a call into this library.
//! The trust configuration ([`trust`]); fetching a release and proving it before anything is
//! written ([`verify`]), online or from a tlog-proof file; choosing releases ([`request`]);
//! building and installing into PostgreSQL ([`build`], [`pg`]) with a record of every file
//! ([`installed`]); the commands themselves ([`ops`]); building and signing registry entries
//! ([`release`]) and talking to a node's API ([`api`]).

pub mod advisories;
pub mod api;
pub mod audit;
pub mod auth;
pub mod author;
pub mod binary;
pub mod build;
pub mod builder;
pub mod check;
pub mod cmd;
pub mod error;
pub mod http;
pub mod installed;
pub mod keys;
pub mod loading;
pub mod lock;
pub mod ops;
pub mod pg;
pub mod plan;
pub mod prefix;
pub mod preload;
pub mod progress;
pub mod project;
pub mod proven;
pub mod provenance;
pub mod release;
pub mod request;
pub mod scratch;
pub mod search;
pub mod sysdeps;
pub mod target;
pub mod trust;
pub mod trusted;
pub mod upgrade;
pub mod verify;
pub mod watch;

pub use error::{Error, VerifyError};
use pgext_log::{ProofFile, SignedCheckpoint, VerifierKey, leaf_hash};

/// Verifies offline that `entry` is in the log signed by `log_key`, using a tlog-proof file.
///
/// # Errors
/// When the proof file is malformed, the checkpoint is not signed by the log key, or the
/// inclusion proof does not lead to the checkpoint's root.
pub fn verify_entry_proof(
    entry: &[u8],
    proof_file: &[u8],
    log_key: &VerifierKey,
) -> Result<SignedCheckpoint, Error> {
    let file = ProofFile::parse(proof_file)?;
    Ok(file.verify(&leaf_hash(entry), log_key, &[])?)
}
