//! The SDK's one error type, [`Error`], and the verification failures it carries
//! ([`VerifyError`]): each says what failed and what it means.

/// The one error of the SDK: a release that did not verify, or what else went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A check of `spec/client.md` failed: nothing was written.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// A log-level check failed.
    #[error(transparent)]
    Log(#[from] pgext_log::Error),
    /// The archive cannot be released as it is.
    #[error("{0}")]
    Release(String),
    /// The node refused, or answered what cannot be read.
    #[error("{0}")]
    Api(String),
    /// The node answered a submission with an error in its JSON shape.
    #[error("{text}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The error's stable code (`duplicate-build`, `release-yanked`, …).
        code: String,
        /// Status, code and detail, for people.
        text: String,
    },
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
    /// A request (a release spec, a command's arguments) that cannot be read.
    #[error("{0}")]
    Request(String),
    /// The dependencies cannot be resolved as asked: a cycle, conflicting or unsatisfiable
    /// ranges, a PostgreSQL older than required, a name no trusted registry has. Nothing was
    /// installed.
    #[error("{0}; nothing was installed")]
    Plan(String),
}

/// Why a release was not believed. Each says what failed and what it means.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// No node of the registry answered.
    #[error("no node of registry {registry} answered {path}: {why}")]
    Unreachable {
        /// Registry name.
        registry: String,
        /// What was asked.
        path: String,
        /// The last failure.
        why: String,
    },
    /// The registry has no such release.
    #[error("{0}")]
    NotFound(String),
    /// The downloaded archive is not the one the log names.
    #[error(
        "the archive's SHA-256 is {got} but the log entry names {expected}: the bytes were changed on the way or on the server; nothing was installed"
    )]
    Digest {
        /// The entry's SHA-256.
        expected: String,
        /// The archive's.
        got: String,
    },
    /// The log entry is not what was asked for.
    #[error(
        "log entry {index} is not a release of {wanted}: the server answered with another entry"
    )]
    WrongEntry {
        /// Index.
        index: u64,
        /// `dist@version`.
        wanted: String,
    },
    /// The publisher's signature does not verify.
    #[error(
        "the publisher's signature on log entry {index} does not verify ({detail}): the release statement was forged or altered"
    )]
    Signature {
        /// Index.
        index: u64,
        /// Why.
        detail: String,
    },
    /// The signer may not publish this distribution.
    #[error(
        "the publisher had no authority for log entry {index}: {detail}. The release was signed by a key that does not own the distribution"
    )]
    Authority {
        /// Index.
        index: u64,
        /// Why.
        detail: String,
    },
    /// The checkpoint is not signed by the trusted log key.
    #[error(
        "the checkpoint is not signed by the trusted log key {vkey}: {detail}. The server is not the registry you trust, or it was tampered with"
    )]
    LogSignature {
        /// The trusted key.
        vkey: String,
        /// Why.
        detail: String,
    },
    /// An entry is not in the signed tree.
    #[error(
        "log entry {index} is not in the signed tree of size {size}: its inclusion proof fails ({detail}). The server showed an entry the log does not hold"
    )]
    Inclusion {
        /// Index.
        index: u64,
        /// Checkpoint size.
        size: u64,
        /// Why.
        detail: String,
    },
    /// Too few trusted witnesses cosigned.
    #[error(
        "only {have} of the {need} witness cosignatures required are on the checkpoint: the log's view is not confirmed by enough independent witnesses"
    )]
    Quorum {
        /// Verified cosignatures by trusted witnesses.
        have: usize,
        /// The quorum.
        need: usize,
    },
    /// The cosigners do not satisfy the tlog-policy's quorum.
    #[error(
        "the {have} verified witness cosignature(s) on the checkpoint do not satisfy the policy's quorum {quorum}: the log's view is not confirmed by enough independent witnesses"
    )]
    PolicyQuorum {
        /// Verified cosignatures by the policy's witnesses.
        have: usize,
        /// The policy's quorum rule.
        quorum: String,
    },
    /// The checkpoint does not extend the one remembered.
    #[error(
        "the checkpoint of size {size} is not consistent with the one remembered at size {remembered} ({detail}): the log was rewritten or this server shows a split view; refusing it"
    )]
    Inconsistent {
        /// Served size.
        size: u64,
        /// Remembered size.
        remembered: u64,
        /// Why.
        detail: String,
    },
    /// A binary package or its attestations did not verify.
    #[error("the binary package did not verify: {0}; nothing was installed")]
    Binary(String),
    /// The answer could not be read.
    #[error("{0}")]
    Malformed(String),
}
