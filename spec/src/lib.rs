//! Wire types shared by the pgext node and client. The prose specs live next to this crate:
//! `spec/log.md` (the transparency log) and, as they land, the entry format and the APIs.
//! Published test vectors live in `spec/vectors/`.

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
