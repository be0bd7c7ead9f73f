//! The libp2p side of a node: TCP + Noise + Yamux, identify, ping, Kademlia, gossipsub and the
//! typed request-response protocols of `spec/federation.md` ([`wire`]). One task owns the swarm
//! ([`swarm`]); the rest of the node talks to it through bounded channels: [`P2p`] sends
//! commands in, and [`Inbound`] carries what peers send out to the federation.
//!
//! This layer moves typed messages and bounds them: message sizes per protocol, and requests in
//! flight per peer and per protocol (excess answered "busy" at once). What messages mean, and
//! whether their contents can be trusted, is the federation's business.

pub mod swarm;
pub mod wire;

use std::path::Path;

use anyhow::Context;
pub use libp2p::PeerId;
use libp2p::gossipsub::{IdentTopic, TopicHash};
use libp2p::request_response::ResponseChannel;
use libp2p::{Multiaddr, identity};
use sha2::Digest as _;
use tokio::sync::{mpsc, oneshot};
use tracing::debug;
use wire::{
    BlobRequest, BlobResponse, Busy, Fault, PushRequest, PushResponse, SubmitRequest,
    SubmitResponse, TileRequest, TileResponse, WitnessRequest, WitnessResponse,
};

/// Identify's protocol version string.
pub const IDENTIFY_VERSION: &str = "/pgext/2";
/// File name of the peer identity in the data folder.
pub const PEER_KEY_FILE: &str = "peer.key";

/// The gossipsub topic of an origin: checkpoints with their cosignatures, and evidence.
pub fn topic(origin: &str) -> IdentTopic {
    let digest = sha2::Sha256::digest(origin.as_bytes());
    IdentTopic::new(format!("/pgext/checkpoints/1/{}", pgext_log::hex(&digest)))
}

/// Which request-response protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    /// [`wire::TILES_PROTOCOL`].
    Tiles,
    /// [`wire::BLOBS_PROTOCOL`].
    Blobs,
    /// [`wire::SUBMIT_PROTOCOL`].
    Submit,
    /// [`wire::WITNESS_PROTOCOL`].
    Witness,
    /// [`wire::PUSH_PROTOCOL`].
    Push,
}

/// A request to send, with where its answer goes.
#[derive(Debug)]
pub enum Outbound {
    /// Tiles.
    Tiles(TileRequest, oneshot::Sender<Result<TileResponse, Fault>>),
    /// Blobs.
    Blobs(BlobRequest, oneshot::Sender<Result<BlobResponse, Fault>>),
    /// A submission.
    Submit(
        SubmitRequest,
        oneshot::Sender<Result<SubmitResponse, Fault>>,
    ),
    /// A checkpoint to witness.
    Witness(
        WitnessRequest,
        oneshot::Sender<Result<WitnessResponse, Fault>>,
    ),
    /// A private origin's checkpoint or evidence.
    Push(PushRequest, oneshot::Sender<Result<PushResponse, Fault>>),
}

/// A peer's request, with the channel its answer goes back on.
#[derive(Debug)]
pub enum Request {
    /// Tiles.
    Tiles(TileRequest, ResponseChannel<TileResponse>),
    /// Blobs.
    Blobs(BlobRequest, ResponseChannel<BlobResponse>),
    /// A submission.
    Submit(SubmitRequest, ResponseChannel<SubmitResponse>),
    /// A checkpoint to witness.
    Witness(WitnessRequest, ResponseChannel<WitnessResponse>),
    /// A private origin's checkpoint or evidence.
    Push(PushRequest, ResponseChannel<PushResponse>),
}

/// An answer to a peer's request.
#[derive(Debug)]
pub enum Response {
    /// Tiles.
    Tiles(ResponseChannel<TileResponse>, TileResponse),
    /// Blobs.
    Blobs(ResponseChannel<BlobResponse>, BlobResponse),
    /// A submission.
    Submit(ResponseChannel<SubmitResponse>, SubmitResponse),
    /// A checkpoint to witness.
    Witness(ResponseChannel<WitnessResponse>, WitnessResponse),
    /// A private origin's checkpoint or evidence.
    Push(ResponseChannel<PushResponse>, PushResponse),
}

/// A request to the swarm task.
#[derive(Debug)]
pub enum Command {
    /// Send a request to a peer.
    Request(PeerId, Outbound),
    /// Answer a peer's request.
    Respond(Response),
    /// Subscribe to an origin's topic.
    Subscribe(String),
    /// Publish on an origin's topic.
    Publish {
        /// Origin.
        origin: String,
        /// Message bytes.
        data: Vec<u8>,
    },
    /// Announce, in Kademlia, that this node serves an origin.
    Provide(String),
    /// Ask Kademlia for nodes that serve an origin, and dial them.
    FindProviders(String),
    /// Connected peers.
    Peers(oneshot::Sender<Vec<PeerId>>),
    /// Dial a peer not in the configuration (an address learned elsewhere).
    Dial(Multiaddr),
    /// Addresses the swarm listens on.
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
}

/// What peers send, for the federation.
#[derive(Debug)]
pub enum Inbound {
    /// A peer connected.
    Connected(PeerId),
    /// A gossip message on an origin's topic.
    Gossip {
        /// The topic.
        topic: TopicHash,
        /// The peer that forwarded it.
        from: PeerId,
        /// The peer that signed and first sent it.
        source: Option<PeerId>,
        /// Message bytes.
        data: Vec<u8>,
    },
    /// A request, within the in-flight bounds, to answer with [`Command::Respond`].
    Request(PeerId, Request),
}

/// The handle the rest of the node holds.
#[derive(Debug, Clone)]
pub struct P2p {
    /// This node's peer id.
    pub peer_id: PeerId,
    commands: mpsc::Sender<Command>,
}

impl P2p {
    /// Sends a command to the swarm task.
    pub async fn send(&self, cmd: Command) {
        if self.commands.send(cmd).await.is_err() {
            debug!("the swarm task has stopped");
        }
    }

    async fn ask<R: Busy>(
        &self,
        peer: PeerId,
        make: impl FnOnce(oneshot::Sender<Result<R, Fault>>) -> Outbound,
    ) -> Result<R, Fault> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Request(peer, make(tx))).await;
        let answer = rx.await.map_err(|_| Fault::Stopped)??;
        if answer.is_busy() {
            return Err(Fault::Busy);
        }
        Ok(answer)
    }

    /// Asks a peer for a tile, bundle or checkpoint.
    ///
    /// # Errors
    /// The [`Fault`], or `Busy`.
    pub async fn tiles(&self, peer: PeerId, req: TileRequest) -> Result<TileResponse, Fault> {
        self.ask(peer, |tx| Outbound::Tiles(req, tx)).await
    }

    /// Asks a peer for blobs.
    ///
    /// # Errors
    /// The [`Fault`], or `Busy`.
    pub async fn blobs(&self, peer: PeerId, req: BlobRequest) -> Result<BlobResponse, Fault> {
        self.ask(peer, |tx| Outbound::Blobs(req, tx)).await
    }

    /// Forwards a submission to a peer.
    ///
    /// # Errors
    /// The [`Fault`], or `Busy`.
    pub async fn submit(&self, peer: PeerId, req: SubmitRequest) -> Result<SubmitResponse, Fault> {
        self.ask(peer, |tx| Outbound::Submit(req, tx)).await
    }

    /// Asks a peer to witness a checkpoint.
    ///
    /// # Errors
    /// The [`Fault`], or `Busy`.
    pub async fn witness(
        &self,
        peer: PeerId,
        req: WitnessRequest,
    ) -> Result<WitnessResponse, Fault> {
        self.ask(peer, |tx| Outbound::Witness(req, tx)).await
    }

    /// Sends a private origin's checkpoint or evidence to a peer.
    ///
    /// # Errors
    /// The [`Fault`], or `Busy`.
    pub async fn push(&self, peer: PeerId, req: PushRequest) -> Result<PushResponse, Fault> {
        self.ask(peer, |tx| Outbound::Push(req, tx)).await
    }

    /// Connected peers.
    pub async fn peers(&self) -> Vec<PeerId> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Peers(tx)).await;
        rx.await.unwrap_or_default()
    }

    /// Addresses the swarm listens on, each ending in `/p2p/<peer id>`.
    pub async fn listen_addrs(&self) -> Vec<Multiaddr> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::ListenAddrs(tx)).await;
        rx.await.unwrap_or_default()
    }
}

/// Loads the peer identity from the data folder, creating it (mode 0600) on first start.
///
/// # Errors
/// When the file cannot be read, parsed or written.
pub fn load_or_create_identity(data: &Path) -> anyhow::Result<identity::Keypair> {
    let path = data.join(PEER_KEY_FILE);
    if path.exists() {
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        return identity::Keypair::from_protobuf_encoding(&bytes)
            .with_context(|| format!("parsing {}", path.display()));
    }
    let key = identity::Keypair::generate_ed25519();
    let bytes = key
        .to_protobuf_encoding()
        .context("encoding the peer key")?;
    crate::durable::write_secret(&path, &bytes)?;
    Ok(key)
}
