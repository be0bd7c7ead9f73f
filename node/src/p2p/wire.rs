//! The peer wire: each request-response protocol's request and response as Rust types, encoded
//! as CBOR by libp2p's request-response codec, with a size bound per protocol and direction.
//! A message over its bound, or bytes that do not decode as the protocol's type, is a typed
//! [`Fault`] the federation demotes the peer for; nothing is parsed by hand.
//!
//! The messages are the types of `pgext_spec::wire`; this module adds the protocol names,
//! the codecs with their bounds, and the faults.

use std::io;

use libp2p::request_response::{self, cbor};
pub use pgext_spec::api::{Receipt, Refusal};
pub use pgext_spec::wire::{
    BlobRequest, BlobResponse, PushRequest, PushResponse, SubmitRequest, SubmitResponse,
    TileRequest, TileResponse, WholeBlob, WitnessRequest, WitnessResponse,
};
use serde::Serialize;

/// Tiles, entry bundles and checkpoints by their tlog-tiles path.
pub const TILES_PROTOCOL: &str = "/pgext/tiles/2";
/// Blobs by SHA-256, in chunks.
pub const BLOBS_PROTOCOL: &str = "/pgext/blobs/2";
/// Submissions forwarded to an origin's sequencer.
pub const SUBMIT_PROTOCOL: &str = "/pgext/submit/2";
/// C2SP tlog-witness `add-checkpoint`, the same request and answer as over HTTP.
pub const WITNESS_PROTOCOL: &str = "/pgext/witness/2";
/// A private origin's checkpoints and evidence, sent to each allowed peer instead of gossiped.
pub const PUSH_PROTOCOL: &str = "/pgext/push/2";

/// Largest blob chunk sent in one answer.
pub const BLOB_CHUNK: usize = 1 << 20;
/// Most further blobs named in one blobs request.
pub const MAX_MORE: usize = 256;

/// Largest tiles or blobs request: an origin and a path, or 257 blob names.
pub const MAX_READ_REQUEST: u64 = 64 << 10;
/// Largest tiles answer: a full entry bundle (256 entries of up to 64 KiB, each with its
/// length) and framing.
pub const MAX_TILE_RESPONSE: u64 = (256 * (65_535 + 2)) + (64 << 10);
/// Largest blobs answer: one chunk's worth of blob bytes, their names and framing.
pub const MAX_BLOB_RESPONSE: u64 = BLOB_CHUNK as u64 + (MAX_MORE as u64 + 1) * 128 + (64 << 10);
/// Largest witness request or answer: a checkpoint note with its cosignatures and a
/// consistency proof.
pub const MAX_WITNESS_MESSAGE: u64 = 256 << 10;
/// Largest submission answer: a receipt (the tlog-proof file carries the entry).
pub const MAX_SUBMIT_RESPONSE: u64 = 1 << 20;

/// The least time a witness request is given: the witness may wait for the entries to be
/// fetched and verified before it cosigns.
pub const WITNESS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(40);
/// The least time a forwarded submission is given: its archive travels whole, and the
/// sequencer checks it before it answers.
pub const SUBMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The largest forwarded submission: an entry and an archive of at most `max_archive` bytes.
pub fn max_submit_request(max_archive: u64) -> u64 {
    max_archive + (1 << 20)
}

/// The answer a protocol gives when a peer has too many requests in flight.
pub trait Busy {
    /// The protocol's "busy" answer.
    fn busy() -> Self;
    /// Whether this answer is "busy".
    fn is_busy(&self) -> bool;
}

macro_rules! busy {
    ($($t:ty),*) => {$(
        impl Busy for $t {
            fn busy() -> Self {
                <$t>::Busy
            }
            fn is_busy(&self) -> bool {
                matches!(self, <$t>::Busy)
            }
        }
    )*};
}
busy!(
    TileResponse,
    BlobResponse,
    SubmitResponse,
    WitnessResponse,
    PushResponse
);

/// The codec of one protocol.
pub type Codec<Req, Resp> = cbor::codec::Codec<Req, Resp>;

/// A codec with the protocol's bounds.
pub fn codec<Req, Resp>(max_request: u64, max_response: u64) -> Codec<Req, Resp> {
    Codec::default()
        .set_request_size_maximum(max_request)
        .set_response_size_maximum(max_response)
}

/// The tiles codec.
pub fn tiles_codec() -> Codec<TileRequest, TileResponse> {
    codec(MAX_READ_REQUEST, MAX_TILE_RESPONSE)
}

/// The blobs codec.
pub fn blobs_codec() -> Codec<BlobRequest, BlobResponse> {
    codec(MAX_READ_REQUEST, MAX_BLOB_RESPONSE)
}

/// The submissions codec, for archives of at most `max_archive` bytes.
pub fn submit_codec(max_archive: u64) -> Codec<SubmitRequest, SubmitResponse> {
    codec(max_submit_request(max_archive), MAX_SUBMIT_RESPONSE)
}

/// The witness codec.
pub fn witness_codec() -> Codec<WitnessRequest, WitnessResponse> {
    codec(MAX_WITNESS_MESSAGE, MAX_WITNESS_MESSAGE)
}

/// The push codec: a gossip message and an origin, as large as gossip allows.
pub fn push_codec() -> Codec<PushRequest, PushResponse> {
    codec(MAX_WITNESS_MESSAGE + 1024, 1024)
}

/// What a wire message is: encodable and decodable by serde, sendable between tasks.
pub trait Message: Serialize + serde::de::DeserializeOwned + Send {}

impl<T: Serialize + serde::de::DeserializeOwned + Send> Message for T {}

/// Encodes a request as the swarm writes it to a stream (tests, fuzzers).
///
/// # Errors
/// When the message cannot be encoded.
pub fn encode_request<Req, Resp>(codec: &mut Codec<Req, Resp>, msg: Req) -> io::Result<Vec<u8>>
where
    Req: Message,
    Resp: Message,
{
    use request_response::Codec as _;
    let mut w = futures::io::Cursor::new(Vec::new());
    futures::executor::block_on(codec.write_request(&protocol(), &mut w, msg))?;
    Ok(w.into_inner())
}

/// Encodes a response as the swarm writes it to a stream (tests, fuzzers).
///
/// # Errors
/// When the message cannot be encoded.
pub fn encode_response<Req, Resp>(codec: &mut Codec<Req, Resp>, msg: Resp) -> io::Result<Vec<u8>>
where
    Req: Message,
    Resp: Message,
{
    use request_response::Codec as _;
    let mut w = futures::io::Cursor::new(Vec::new());
    futures::executor::block_on(codec.write_response(&protocol(), &mut w, msg))?;
    Ok(w.into_inner())
}

/// Decodes the bytes of a stream as a request, exactly as the swarm does (tests, fuzzers).
///
/// # Errors
/// When they are over the bound or not the protocol's request.
pub fn decode_request<Req, Resp>(codec: &mut Codec<Req, Resp>, bytes: &[u8]) -> io::Result<Req>
where
    Req: Message,
    Resp: Message,
{
    use request_response::Codec as _;
    futures::executor::block_on(
        codec.read_request(&protocol(), &mut futures::io::Cursor::new(bytes)),
    )
}

/// Decodes the bytes of a stream as a response, exactly as the swarm does (tests, fuzzers).
///
/// # Errors
/// When they are over the bound or not the protocol's response.
pub fn decode_response<Req, Resp>(codec: &mut Codec<Req, Resp>, bytes: &[u8]) -> io::Result<Resp>
where
    Req: Message,
    Resp: Message,
{
    use request_response::Codec as _;
    futures::executor::block_on(
        codec.read_response(&protocol(), &mut futures::io::Cursor::new(bytes)),
    )
}

/// The codec ignores the protocol name; any will do outside a swarm.
fn protocol() -> libp2p::StreamProtocol {
    libp2p::StreamProtocol::new(TILES_PROTOCOL)
}

/// Why a request to a peer got no usable answer. Each kind costs the peer a different amount
/// of standing (`federation::peers`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    /// The peer could not be reached, or the connection closed.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// No answer in time: the peer stalls.
    #[error("no answer in time")]
    Timeout,
    /// The answer was over the protocol's bound or did not decode.
    #[error("malformed answer: {0}")]
    Malformed(String),
    /// The answer ended before it was whole (the peer may have gone down mid-answer).
    #[error("answer cut short: {0}")]
    Cut(String),
    /// The peer has too many of our requests in flight.
    #[error("busy")]
    Busy,
    /// The answer decoded but cannot be right (a blob of another size, a refusal to serve what
    /// it announced).
    #[error("wrong answer: {0}")]
    Wrong(String),
    /// This node is shutting down.
    #[error("the swarm task stopped")]
    Stopped,
}

impl From<request_response::OutboundFailure> for Fault {
    fn from(e: request_response::OutboundFailure) -> Fault {
        use request_response::OutboundFailure as F;
        match e {
            F::Timeout => Fault::Timeout,
            F::Io(e) => match e.kind() {
                // The codec's decode errors: bytes that are not the protocol's type.
                io::ErrorKind::InvalidData | io::ErrorKind::Unsupported | io::ErrorKind::Other => {
                    Fault::Malformed(e.to_string())
                }
                // An answer that stopped (or went past the bound and was cut there).
                io::ErrorKind::UnexpectedEof => Fault::Cut(e.to_string()),
                _ => Fault::Unreachable(e.to_string()),
            },
            e => Fault::Unreachable(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::io::Cursor;
    use libp2p::StreamProtocol;
    use libp2p::request_response::Codec as _;
    use serde_bytes::ByteBuf;

    use super::*;

    async fn round_trip<Req, Resp>(mut c: Codec<Req, Resp>, req: Req, resp: Resp)
    where
        Req: Serialize + serde::de::DeserializeOwned + Send + PartialEq + std::fmt::Debug + Clone,
        Resp: Serialize + serde::de::DeserializeOwned + Send + PartialEq + std::fmt::Debug + Clone,
    {
        let p = StreamProtocol::new("/t");
        let mut buf = Cursor::new(Vec::new());
        c.write_request(&p, &mut buf, req.clone()).await.unwrap();
        let bytes = buf.into_inner();
        let got = c
            .read_request(&p, &mut Cursor::new(bytes.clone()))
            .await
            .unwrap();
        assert_eq!(got, req);
        // Cut short: a typed error, not a panic.
        let cut = &bytes[..bytes.len() - 1];
        assert!(
            c.read_request(&p, &mut Cursor::new(cut.to_vec()))
                .await
                .is_err()
        );
        let mut buf = Cursor::new(Vec::new());
        c.write_response(&p, &mut buf, resp.clone()).await.unwrap();
        let got = c
            .read_response(&p, &mut Cursor::new(buf.into_inner()))
            .await
            .unwrap();
        assert_eq!(got, resp);
    }

    #[tokio::test]
    async fn every_message_round_trips_and_a_cut_one_is_an_error() {
        round_trip(
            tiles_codec(),
            TileRequest {
                origin: "o".into(),
                path: "tile/0/000".into(),
            },
            TileResponse::Found(ByteBuf::from(vec![1, 2, 3])),
        )
        .await;
        round_trip(
            blobs_codec(),
            BlobRequest {
                sha256: "a".repeat(64),
                offset: 5,
                more: vec!["b".repeat(64)],
            },
            BlobResponse::Found {
                total: 9,
                chunk: ByteBuf::from(vec![0; 4]),
                more: vec![WholeBlob {
                    sha256: "b".repeat(64),
                    bytes: ByteBuf::from(vec![7]),
                }],
            },
        )
        .await;
        round_trip(
            submit_codec(1 << 20),
            SubmitRequest {
                origin: "o".into(),
                entry: ByteBuf::from(b"{}".to_vec()),
                archive: Some(ByteBuf::from(vec![9; 100])),
            },
            SubmitResponse::Refused {
                kind: Refusal::Conflict,
                code: "duplicate-version".into(),
                detail: "x".into(),
            },
        )
        .await;
        round_trip(
            witness_codec(),
            WitnessRequest {
                body: ByteBuf::from(b"old 0\n".to_vec()),
            },
            WitnessResponse::Answer {
                status: 200,
                body: ByteBuf::from(b"sig".to_vec()),
            },
        )
        .await;
    }

    #[tokio::test]
    async fn a_message_over_its_bound_is_refused() {
        let mut c = codec::<TileRequest, TileResponse>(32, 32);
        let p = StreamProtocol::new("/t");
        let mut buf = Cursor::new(Vec::new());
        let long = TileRequest {
            origin: "o".repeat(100),
            path: "p".into(),
        };
        c.write_request(&p, &mut buf, long).await.unwrap();
        let e = c
            .read_request(&p, &mut Cursor::new(buf.into_inner()))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
    }

    #[tokio::test]
    async fn unknown_fields_are_refused() {
        let p = StreamProtocol::new("/t");
        // Any serde value writes as CBOR through a codec of its own.
        let mut json = codec::<serde_json::Value, ()>(1 << 20, 1);
        let mut w = Cursor::new(Vec::new());
        let extra = serde_json::json!({"origin": "o", "path": "p", "more": [1]});
        json.write_request(&p, &mut w, extra).await.unwrap();
        let e = tiles_codec()
            .read_request(&p, &mut Cursor::new(w.into_inner()))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
    }
}
