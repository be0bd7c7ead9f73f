//! What node and client must agree on, byte for byte: the log entry format and its canonical
//! JSON, the registry's authority rules (replayed identically by sequencer, mirrors, clients and
//! auditors), and shared wire types. The prose specs live next to this crate (`spec/*.md`);
//! published test vectors live in `spec/vectors/`.

pub mod advisory;
pub mod api;
pub mod archive;
pub mod attestation;
pub mod authority;
pub mod binary;
pub mod canonical;
pub mod counts;
pub mod entry;
pub mod meta;
pub mod names;
pub mod osv;
pub mod packages;
pub mod prereqs;
pub mod requirements;
pub mod signed;
pub mod token;
pub mod trusted;
pub mod wire;

#[cfg(test)]
mod authority_tests;

use serde::{Deserialize, Serialize};

/// Where a node serves one origin's log, relative to the node's base URL: the tlog-tiles
/// `checkpoint` and `tile/…` paths hang below it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLocation {
    /// The origin line of the log's checkpoints.
    pub origin: String,
    /// The log's verifier key (C2SP vkey text).
    pub vkey: String,
    /// URL prefix of the tlog-tiles layout.
    pub prefix: String,
}
