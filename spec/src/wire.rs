//! The peer wire's messages: each request-response protocol's request and answer
//! (`spec/federation.md`, Transport). Nodes encode them as CBOR with libp2p's codec; every
//! byte string travels as a CBOR byte string (`serde_bytes`), and every struct refuses unknown
//! fields, so a decoder never walks a value it does not need.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::api::{Receipt, Refusal};

/// A tiles request: a tlog-tiles path (`checkpoint`, `tile/…`) of an origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TileRequest {
    /// Origin.
    pub origin: String,
    /// Path below the log's prefix.
    pub path: String,
}

/// A tiles answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TileResponse {
    /// The bytes, as over HTTP.
    Found(ByteBuf),
    /// Not here, and why.
    NotFound(String),
    /// Too many requests in flight from this peer; ask again later or elsewhere.
    Busy,
}

/// A blobs request: bytes of a blob from `offset`, and more blobs wanted whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobRequest {
    /// SHA-256, hex.
    pub sha256: String,
    /// Where to start.
    pub offset: u64,
    /// More blobs wanted whole in the same answer, as many as fit in one chunk (1 MiB) after the
    /// first, in this order. Small blobs (most release zips) thus cost no round trip each.
    pub more: Vec<String>,
}

/// A blob sent whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WholeBlob {
    /// SHA-256, hex.
    pub sha256: String,
    /// Its bytes.
    pub bytes: ByteBuf,
}

/// A blobs answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlobResponse {
    /// A chunk of the first blob, and whole further blobs (only after a whole first one).
    Found {
        /// The first blob's size.
        total: u64,
        /// Its bytes from the requested offset.
        chunk: ByteBuf,
        /// Further blobs, whole.
        more: Vec<WholeBlob>,
    },
    /// The first blob is not here.
    NotFound,
    /// Too many requests in flight from this peer.
    Busy,
}

/// A submission forwarded to the origin's sequencer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// The origin whose sequencer should take it.
    pub origin: String,
    /// The signed entry, as submitted (JSON).
    pub entry: ByteBuf,
    /// The release archive, for a release.
    pub archive: Option<ByteBuf>,
}

/// The sequencer's answer to a forwarded submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubmitResponse {
    /// Logged: the receipt the author gets.
    Receipt(Receipt),
    /// Refused, as the sequencer's HTTP API would have refused it.
    Refused {
        /// Whose fault.
        kind: Refusal,
        /// Stable code.
        code: String,
        /// For people.
        detail: String,
    },
    /// This peer does not sequence the origin.
    NotSequencer,
    /// Too many requests in flight from this peer.
    Busy,
}

/// A C2SP tlog-witness `add-checkpoint` request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessRequest {
    /// The request body, as over HTTP.
    pub body: ByteBuf,
}

/// The witness's answer: the HTTP status and body C2SP tlog-witness specifies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WitnessResponse {
    /// Status and body.
    Answer {
        /// HTTP status.
        status: u16,
        /// Body.
        body: ByteBuf,
    },
    /// Too many requests in flight from this peer.
    Busy,
}

/// A checkpoint message of a private origin, sent straight to each allowed peer instead of on
/// the origin's gossip topic (`spec/access.md`, Private federation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    /// The origin.
    pub origin: String,
    /// What gossip would have carried: a checkpoint with a cosignature, or evidence (JSON).
    pub message: ByteBuf,
}

/// The answer to a push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PushResponse {
    /// Taken (what it means is checked as any gossip would be).
    Taken,
    /// This peer does not serve the origin to the sender.
    NotServed,
    /// Too many requests in flight from this peer.
    Busy,
}
