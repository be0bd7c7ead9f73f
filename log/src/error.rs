use std::error::Error as StdError;

/// Everything the log core can refuse. Messages say what was wrong with the input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A proof did not verify, or was malformed (wrong length, wrong hash size).
    #[error("invalid proof: {0}")]
    InvalidProof(String),
    /// Arguments that do not describe a tree position (index past the size, size1 > size2).
    #[error("invalid tree position: {0}")]
    BadPosition(String),
    /// A signed note that does not follow C2SP signed-note.
    #[error("malformed note: {0}")]
    MalformedNote(String),
    /// No signature on the note is from a trusted key.
    #[error("note has no signature from a trusted key")]
    UnverifiedNote,
    /// A trusted key's signature on the note does not verify.
    #[error("invalid signature by key {name}+{key_id:08x}")]
    InvalidSignature {
        /// The key name.
        name: String,
        /// The key id.
        key_id: u32,
    },
    /// A verifier or signer key that does not parse.
    #[error("malformed key: {0}")]
    MalformedKey(String),
    /// A checkpoint body that does not follow C2SP tlog-checkpoint.
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(String),
    /// A tile path that does not follow C2SP tlog-tiles.
    #[error("malformed tile path {0:?}")]
    MalformedTilePath(String),
    /// Tile or bundle bytes that are too short or not well-formed.
    #[error("malformed tile {path}: {reason}")]
    MalformedTile {
        /// The tile's path.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An entry longer than the 65,535 bytes a bundle's u16 length prefix can express.
    #[error("entry of {0} bytes exceeds the 65535-byte limit")]
    EntryTooLarge(usize),
    /// A tlog-proof file that does not follow C2SP tlog-proof.
    #[error("malformed tlog-proof: {0}")]
    MalformedProofFile(String),
    /// A tlog-policy file that does not follow C2SP tlog-policy.
    #[error("malformed tlog-policy: {0}")]
    MalformedPolicy(String),
    /// A tlog-witness request that does not follow C2SP tlog-witness.
    #[error("malformed add-checkpoint request: {0}")]
    MalformedWitnessRequest(String),
    /// The reader that supplies hashes or tiles failed.
    #[error("reading tiles: {0}")]
    Read(#[source] Box<dyn StdError + Send + Sync>),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
