//! The libp2p side of a node: TCP + Noise + Yamux, identify, ping, Kademlia, gossipsub and the
//! request-response protocols of `spec/federation.md`. One task owns the swarm ([`run`]); the
//! rest of the node talks to it through bounded channels: [`P2p`] sends commands in, and
//! [`Inbound`] carries what peers send out to the federation logic.
//!
//! This module moves bytes. What they mean, and whether they can be trusted, is decided by
//! `federation.rs`; nothing a peer sends is served before it is verified there.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
pub use libp2p::PeerId;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, TopicHash};
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, StreamProtocol, Swarm, identify, identity, kad, noise, ping, tcp, yamux};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

/// Tiles, entry bundles and checkpoints by their tlog-tiles path.
pub const TILES_PROTOCOL: &str = "/pgext/tiles/1";
/// Blobs by SHA-256, in chunks.
pub const BLOBS_PROTOCOL: &str = "/pgext/blobs/1";
/// Submissions forwarded to an origin's sequencer.
pub const SUBMIT_PROTOCOL: &str = "/pgext/submit/1";
/// C2SP tlog-witness `add-checkpoint`, the same request and answer as over HTTP.
pub const WITNESS_PROTOCOL: &str = "/pgext/witness/1";
/// Identify's protocol version string.
pub const IDENTIFY_VERSION: &str = "/pgext/1";
/// File name of the peer identity in the data folder.
pub const PEER_KEY_FILE: &str = "peer.key";

/// Largest request accepted on every protocol but submissions (requests are small JSON
/// documents, entries or checkpoints).
const MAX_REQUEST: u64 = 1 << 20;
/// Largest response accepted: a full hash tile is 8 KiB, a full bundle at most 16 MiB
/// (256 entries of up to 64 KiB), a blob chunk 1 MiB.
const MAX_RESPONSE: u64 = 17 << 20;

/// The gossipsub topic of an origin: checkpoints with their cosignatures, and evidence.
pub fn topic(origin: &str) -> IdentTopic {
    let digest = sha2::Sha256::digest(origin.as_bytes());
    IdentTopic::new(format!(
        "/pgext/checkpoints/1/{}",
        crate::blobs::hex(&digest)
    ))
}

use sha2::Digest as _;

/// A request-response codec for opaque, length-prefixed byte strings with size bounds; the
/// protocols give them meaning.
#[derive(Debug, Clone, Copy)]
pub struct BytesCodec {
    /// Largest request read, in bytes.
    pub max_request: u64,
}

async fn read_framed<T: AsyncRead + Unpin + Send>(io: &mut T, max: u64) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u64::from(u32::from_be_bytes(len));
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message of {len} bytes is over the {max}-byte limit"),
        ));
    }
    let mut buf = Vec::with_capacity(len as usize);
    io.take(len).read_to_end(&mut buf).await?;
    if buf.len() as u64 != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "message cut short",
        ));
    }
    Ok(buf)
}

async fn write_framed<T: AsyncWrite + Unpin + Send>(io: &mut T, data: &[u8]) -> io::Result<()> {
    let len = u32::try_from(data.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "message too large"))?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(data).await?;
    io.close().await
}

impl request_response::Codec for BytesCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        read_framed(io, self.max_request).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        read_framed(io, MAX_RESPONSE).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()> {
        write_framed(io, &req).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()> {
        write_framed(io, &res).await
    }
}

/// Which request-response protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    /// [`TILES_PROTOCOL`].
    Tiles,
    /// [`BLOBS_PROTOCOL`].
    Blobs,
    /// [`SUBMIT_PROTOCOL`].
    Submit,
    /// [`WITNESS_PROTOCOL`].
    Witness,
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    kad: kad::Behaviour<kad::store::MemoryStore>,
    gossipsub: gossipsub::Behaviour,
    tiles: request_response::Behaviour<BytesCodec>,
    blobs: request_response::Behaviour<BytesCodec>,
    submit: request_response::Behaviour<BytesCodec>,
    witness: request_response::Behaviour<BytesCodec>,
}

impl Behaviour {
    fn rr(&mut self, proto: Proto) -> &mut request_response::Behaviour<BytesCodec> {
        match proto {
            Proto::Tiles => &mut self.tiles,
            Proto::Blobs => &mut self.blobs,
            Proto::Submit => &mut self.submit,
            Proto::Witness => &mut self.witness,
        }
    }
}

/// A request to the swarm task.
#[derive(Debug)]
pub enum Command {
    /// Send a request to a peer; the answer (or why there is none) comes back on `reply`.
    Request {
        /// Protocol.
        proto: Proto,
        /// Peer.
        peer: PeerId,
        /// Request bytes.
        body: Vec<u8>,
        /// Where the response goes.
        reply: oneshot::Sender<Result<Vec<u8>, String>>,
    },
    /// Answer an inbound request.
    Respond {
        /// Protocol it came in on.
        proto: Proto,
        /// The request's channel.
        channel: ResponseChannel<Vec<u8>>,
        /// Response bytes.
        body: Vec<u8>,
    },
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

/// What peers send, for the federation logic.
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
    /// A request to answer with [`Command::Respond`].
    Request {
        /// Protocol.
        proto: Proto,
        /// Requesting peer.
        peer: PeerId,
        /// Request bytes.
        body: Vec<u8>,
        /// Where the answer goes.
        channel: ResponseChannel<Vec<u8>>,
    },
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

    /// Sends a request and waits for the answer.
    ///
    /// # Errors
    /// A message when the peer cannot be reached, fails, or the swarm stopped.
    pub async fn request(
        &self,
        proto: Proto,
        peer: PeerId,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Request {
            proto,
            peer,
            body,
            reply,
        })
        .await;
        rx.await.map_err(|_| "the swarm task stopped".to_string())?
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
    crate::node::write_secret(&path, &bytes)?;
    Ok(key)
}

/// Builds the swarm, starts listening and dialing, and spawns the task that owns it. Returns
/// the handle and the stream of what peers send.
///
/// # Errors
/// When the transport cannot be built or a listen address is invalid.
pub async fn spawn(
    key: identity::Keypair,
    config: &crate::config::P2pConfig,
    max_submission: u64,
) -> anyhow::Result<(P2p, mpsc::Receiver<Inbound>, tokio::task::JoinHandle<()>)> {
    let peer_id = key.public().to_peer_id();
    let timeout = Duration::from_millis(config.request_timeout_ms);
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_behaviour(|key| {
            let rr = |name: &'static str, max_request: u64| {
                request_response::Behaviour::with_codec(
                    BytesCodec { max_request },
                    [(StreamProtocol::new(name), ProtocolSupport::Full)],
                    request_response::Config::default()
                        .with_request_timeout(timeout)
                        .with_max_concurrent_streams(256),
                )
            };
            let gossip_config = gossipsub::ConfigBuilder::default()
                .heartbeat_interval(Duration::from_millis(500))
                .mesh_n_low(1)
                .mesh_outbound_min(0)
                .max_transmit_size(256 << 10)
                .validation_mode(gossipsub::ValidationMode::Strict)
                .build()
                .map_err(|e| anyhow::anyhow!("gossipsub config: {e}"))?;
            let gossipsub =
                gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), gossip_config)
                    .map_err(|e| anyhow::anyhow!("gossipsub: {e}"))?;
            let mut kad_config = kad::Config::new(StreamProtocol::new("/pgext/kad/1"));
            kad_config.set_query_timeout(Duration::from_secs(30));
            let mut kad = kad::Behaviour::with_config(
                key.public().to_peer_id(),
                kad::store::MemoryStore::new(key.public().to_peer_id()),
                kad_config,
            );
            kad.set_mode(Some(kad::Mode::Server));
            Ok(Behaviour {
                identify: identify::Behaviour::new(identify::Config::new(
                    IDENTIFY_VERSION.into(),
                    key.public(),
                )),
                ping: ping::Behaviour::default(),
                kad,
                gossipsub,
                tiles: rr(TILES_PROTOCOL, MAX_REQUEST),
                blobs: rr(BLOBS_PROTOCOL, MAX_REQUEST),
                // A forwarded publish carries its archive whole.
                submit: rr(SUBMIT_PROTOCOL, max_submission),
                witness: rr(WITNESS_PROTOCOL, MAX_REQUEST),
            })
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();
    for addr in &config.listen {
        let addr: Multiaddr = addr
            .parse()
            .with_context(|| format!("p2p listen address {addr:?}"))?;
        swarm
            .listen_on(addr.clone())
            .with_context(|| format!("listening on {addr}"))?;
    }
    let mut bootstrap = Vec::new();
    for p in &config.peers {
        let addr: Multiaddr = p.parse().with_context(|| format!("peer address {p:?}"))?;
        if let Some(libp2p::multiaddr::Protocol::P2p(id)) = addr.iter().last() {
            swarm.behaviour_mut().kad.add_address(&id, addr.clone());
        }
        bootstrap.push(addr);
    }
    // Wait for the listeners, so callers can print and share real addresses at once.
    let mut listening = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while listening.len() < config.listen.len() {
        match tokio::time::timeout_at(deadline, swarm.select_next_some()).await {
            Ok(SwarmEvent::NewListenAddr { address, .. }) => listening.push(address),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    info!(%peer_id, addrs = ?listening, "p2p listening");
    for addr in bootstrap {
        if let Err(e) = swarm.dial(addr.clone()) {
            warn!(%addr, "dialing a configured peer: {e}");
        }
    }
    let (cmd_tx, cmd_rx) = mpsc::channel(1024);
    let (in_tx, in_rx) = mpsc::channel(1024);
    let task = tokio::spawn(
        EventLoop {
            swarm,
            commands: cmd_rx,
            inbound: in_tx,
            pending: HashMap::new(),
            listening,
        }
        .run(),
    );
    Ok((
        P2p {
            peer_id,
            commands: cmd_tx,
        },
        in_rx,
        task,
    ))
}

type Pending = HashMap<(Proto, OutboundRequestId), oneshot::Sender<Result<Vec<u8>, String>>>;

struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    inbound: mpsc::Sender<Inbound>,
    pending: Pending,
    listening: Vec<Multiaddr>,
}

impl EventLoop {
    async fn run(mut self) {
        loop {
            tokio::select! {
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.command(cmd),
                    // Every handle is gone: the node is shutting down.
                    None => break,
                },
                event = self.swarm.select_next_some() => self.event(event).await,
            }
        }
    }

    fn command(&mut self, cmd: Command) {
        let b = self.swarm.behaviour_mut();
        match cmd {
            Command::Request {
                proto,
                peer,
                body,
                reply,
            } => {
                let id = b.rr(proto).send_request(&peer, body);
                self.pending.insert((proto, id), reply);
            }
            Command::Respond {
                proto,
                channel,
                body,
            } => {
                if b.rr(proto).send_response(channel, body).is_err() {
                    debug!("a peer left before its answer");
                }
            }
            Command::Subscribe(origin) => {
                if let Err(e) = b.gossipsub.subscribe(&topic(&origin)) {
                    warn!(origin, "subscribing: {e}");
                }
            }
            Command::Publish { origin, data } => {
                // No subscribed peer yet is normal at start; polling covers it.
                if let Err(e) = b.gossipsub.publish(topic(&origin), data) {
                    debug!(origin, "gossip not sent: {e}");
                }
            }
            Command::Provide(origin) => {
                let key = kad::RecordKey::new(&topic(&origin).hash().as_str());
                if let Err(e) = b.kad.start_providing(key) {
                    debug!(origin, "providing: {e}");
                }
            }
            Command::FindProviders(origin) => {
                let key = kad::RecordKey::new(&topic(&origin).hash().as_str());
                b.kad.get_providers(key);
            }
            Command::Peers(reply) => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            Command::Dial(addr) => {
                if let Err(e) = self.swarm.dial(addr.clone()) {
                    warn!(%addr, "dialing: {e}");
                }
            }
            Command::ListenAddrs(reply) => {
                let me = *self.swarm.local_peer_id();
                let addrs = self
                    .listening
                    .iter()
                    .map(|a| a.clone().with(libp2p::multiaddr::Protocol::P2p(me)))
                    .collect();
                let _ = reply.send(addrs);
            }
        }
    }

    async fn forward(&mut self, msg: Inbound) {
        // Bounded: when the node falls behind, the swarm waits rather than dropping requests.
        if self.inbound.send(msg).await.is_err() {
            debug!("nobody listens to inbound p2p messages");
        }
    }

    async fn request_response(
        &mut self,
        proto: Proto,
        event: request_response::Event<Vec<u8>, Vec<u8>>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    self.forward(Inbound::Request {
                        proto,
                        peer,
                        body: request,
                        channel,
                    })
                    .await;
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(reply) = self.pending.remove(&(proto, request_id)) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some(reply) = self.pending.remove(&(proto, request_id)) {
                    let _ = reply.send(Err(format!("{peer}: {error}")));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, "inbound request failed: {error}");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    async fn event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } if !self.listening.contains(&address) => {
                self.listening.push(address);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                ..
            } if num_established.get() == 1 => {
                info!(%peer_id, "peer connected");
                self.forward(Inbound::Connected(peer_id)).await;
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                info!(%peer_id, "peer disconnected");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) if info.protocol_version == IDENTIFY_VERSION => {
                for addr in info.listen_addrs {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                result:
                    kad::QueryResult::GetProviders(Ok(kad::GetProvidersOk::FoundProviders {
                        providers,
                        ..
                    })),
                ..
            })) => {
                let me = *self.swarm.local_peer_id();
                for p in providers {
                    if p != me && !self.swarm.is_connected(&p) {
                        let _ = self.swarm.dial(p);
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message,
                ..
            })) => {
                self.forward(Inbound::Gossip {
                    topic: message.topic,
                    from: propagation_source,
                    source: message.source,
                    data: message.data,
                })
                .await;
            }
            SwarmEvent::Behaviour(BehaviourEvent::Tiles(e)) => {
                self.request_response(Proto::Tiles, e).await;
            }
            SwarmEvent::Behaviour(BehaviourEvent::Blobs(e)) => {
                self.request_response(Proto::Blobs, e).await;
            }
            SwarmEvent::Behaviour(BehaviourEvent::Submit(e)) => {
                self.request_response(Proto::Submit, e).await;
            }
            SwarmEvent::Behaviour(BehaviourEvent::Witness(e)) => {
                self.request_response(Proto::Witness, e).await;
            }
            _ => {}
        }
    }
}
