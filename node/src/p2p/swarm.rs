//! The task that owns the swarm: builds it, listens and dials, and turns [`Command`]s into swarm
//! calls and swarm events into [`Inbound`] messages. It never waits on the rest of the node:
//! what the federation cannot take at once is answered "busy" (requests) or dropped (gossip and
//! connection news, which polling makes good).

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use libp2p::gossipsub::{self, MessageAuthenticity};
use libp2p::request_response::{self, InboundRequestId, OutboundRequestId, ProtocolSupport, cbor};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, identify, identity, kad, noise, ping, tcp, yamux,
};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::wire::{
    self, BlobRequest, BlobResponse, Busy, Fault, PushRequest, PushResponse, SubmitRequest,
    SubmitResponse, TileRequest, TileResponse, WitnessRequest, WitnessResponse,
};
use super::{Command, IDENTIFY_VERSION, Inbound, Outbound, P2p, Proto, Request, Response, topic};

/// Requests one peer may have in flight on one protocol; more are answered "busy".
pub const MAX_IN_FLIGHT_PER_PEER: usize = 32;
/// Requests all peers together may have in flight on one protocol.
pub const MAX_IN_FLIGHT_PER_PROTOCOL: usize = 256;

#[derive(NetworkBehaviour)]
struct Behaviour {
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    kad: kad::Behaviour<kad::store::MemoryStore>,
    gossipsub: gossipsub::Behaviour,
    tiles: cbor::Behaviour<TileRequest, TileResponse>,
    blobs: cbor::Behaviour<BlobRequest, BlobResponse>,
    submit: cbor::Behaviour<SubmitRequest, SubmitResponse>,
    witness: cbor::Behaviour<WitnessRequest, WitnessResponse>,
    push: cbor::Behaviour<PushRequest, PushResponse>,
}

/// Builds the swarm, starts listening and dialing, and spawns the task that owns it. Returns
/// the handle and the stream of what peers send.
///
/// # Errors
/// When the transport cannot be built or a listen address is invalid.
pub async fn spawn(
    key: identity::Keypair,
    config: &crate::config::P2pConfig,
    max_archive: u64,
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
            fn rr<Req, Resp>(
                name: &'static str,
                codec: wire::Codec<Req, Resp>,
                timeout: Duration,
            ) -> cbor::Behaviour<Req, Resp>
            where
                Req: Send + Clone + serde::Serialize + serde::de::DeserializeOwned + 'static,
                Resp: Send + Clone + serde::Serialize + serde::de::DeserializeOwned + 'static,
            {
                request_response::Behaviour::with_codec(
                    codec,
                    [(StreamProtocol::new(name), ProtocolSupport::Full)],
                    request_response::Config::default()
                        .with_request_timeout(timeout)
                        .with_max_concurrent_streams(256),
                )
            }
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
                tiles: rr(wire::TILES_PROTOCOL, wire::tiles_codec(), timeout),
                blobs: rr(wire::BLOBS_PROTOCOL, wire::blobs_codec(), timeout),
                // A forwarded publish carries its archive whole.
                submit: rr(
                    wire::SUBMIT_PROTOCOL,
                    wire::submit_codec(max_archive),
                    timeout.max(wire::SUBMIT_TIMEOUT),
                ),
                witness: rr(
                    wire::WITNESS_PROTOCOL,
                    wire::witness_codec(),
                    timeout.max(wire::WITNESS_TIMEOUT),
                ),
                push: rr(wire::PUSH_PROTOCOL, wire::push_codec(), timeout),
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
    for addr in &bootstrap {
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
            answering: HashMap::new(),
            in_flight: HashMap::new(),
            listening,
            bootstrap,
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

/// Where the answer to one of our requests goes.
enum Pending {
    Tiles(oneshot::Sender<Result<TileResponse, Fault>>),
    Blobs(oneshot::Sender<Result<BlobResponse, Fault>>),
    Submit(oneshot::Sender<Result<SubmitResponse, Fault>>),
    Witness(oneshot::Sender<Result<WitnessResponse, Fault>>),
    Push(oneshot::Sender<Result<PushResponse, Fault>>),
}

impl Pending {
    fn fail(self, f: Fault) {
        match self {
            Pending::Tiles(tx) => drop(tx.send(Err(f))),
            Pending::Blobs(tx) => drop(tx.send(Err(f))),
            Pending::Submit(tx) => drop(tx.send(Err(f))),
            Pending::Witness(tx) => drop(tx.send(Err(f))),
            Pending::Push(tx) => drop(tx.send(Err(f))),
        }
    }
}

/// A response that arrived: each protocol's, typed.
enum Answer {
    Tiles(TileResponse),
    Blobs(BlobResponse),
    Submit(SubmitResponse),
    Witness(WitnessResponse),
    Push(PushResponse),
}

impl Pending {
    fn answer(self, a: Answer) {
        let mismatch = || Fault::Malformed("an answer of another protocol".into());
        match (self, a) {
            (Pending::Tiles(tx), Answer::Tiles(r)) => drop(tx.send(Ok(r))),
            (Pending::Blobs(tx), Answer::Blobs(r)) => drop(tx.send(Ok(r))),
            (Pending::Submit(tx), Answer::Submit(r)) => drop(tx.send(Ok(r))),
            (Pending::Witness(tx), Answer::Witness(r)) => drop(tx.send(Ok(r))),
            (Pending::Push(tx), Answer::Push(r)) => drop(tx.send(Ok(r))),
            (p, _) => p.fail(mismatch()),
        }
    }
}

struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    inbound: mpsc::Sender<Inbound>,
    pending: HashMap<(Proto, OutboundRequestId), Pending>,
    /// Peers' requests handed to the federation and not answered yet.
    answering: HashMap<(Proto, InboundRequestId), PeerId>,
    /// How many of those per peer and protocol.
    in_flight: HashMap<(PeerId, Proto), usize>,
    listening: Vec<Multiaddr>,
    /// The configured peers, dialed again whenever they are not connected (a peer that
    /// restarted is back within [`REDIAL`]).
    bootstrap: Vec<Multiaddr>,
}

/// How often configured peers that are not connected are dialed again.
const REDIAL: Duration = Duration::from_secs(2);

/// One request-response event, whatever its protocol's types.
enum RrEvent<Req, Resp> {
    Request(
        PeerId,
        InboundRequestId,
        Req,
        request_response::ResponseChannel<Resp>,
    ),
    Response(OutboundRequestId, Resp),
    OutboundFailure(OutboundRequestId, Fault),
    Done(InboundRequestId),
}

fn rr_event<Req, Resp>(e: request_response::Event<Req, Resp>) -> RrEvent<Req, Resp> {
    match e {
        request_response::Event::Message { peer, message, .. } => match message {
            request_response::Message::Request {
                request_id,
                request,
                channel,
            } => RrEvent::Request(peer, request_id, request, channel),
            request_response::Message::Response {
                request_id,
                response,
            } => RrEvent::Response(request_id, response),
        },
        request_response::Event::OutboundFailure {
            request_id, error, ..
        } => RrEvent::OutboundFailure(request_id, error.into()),
        request_response::Event::InboundFailure {
            peer,
            request_id,
            error,
            ..
        } => {
            debug!(%peer, "inbound request failed: {error}");
            RrEvent::Done(request_id)
        }
        request_response::Event::ResponseSent { request_id, .. } => RrEvent::Done(request_id),
    }
}

impl EventLoop {
    async fn run(mut self) {
        let mut redial = tokio::time::interval(REDIAL);
        loop {
            tokio::select! {
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.command(cmd),
                    // Every handle is gone: the node is shutting down.
                    None => break,
                },
                event = self.swarm.select_next_some() => self.event(event),
                _ = redial.tick() => self.redial(),
            }
        }
    }

    fn redial(&mut self) {
        for addr in &self.bootstrap {
            let peer = addr.iter().last().and_then(|p| match p {
                libp2p::multiaddr::Protocol::P2p(id) => Some(id),
                _ => None,
            });
            if peer.is_some_and(|p| !self.swarm.is_connected(&p)) {
                if let Err(e) = self.swarm.dial(addr.clone()) {
                    debug!(%addr, "dialing a configured peer again: {e}");
                }
            }
        }
    }

    fn command(&mut self, cmd: Command) {
        let b = self.swarm.behaviour_mut();
        match cmd {
            Command::Request(peer, out) => {
                let (proto, id, pending) = match out {
                    Outbound::Tiles(r, tx) => (
                        Proto::Tiles,
                        b.tiles.send_request(&peer, r),
                        Pending::Tiles(tx),
                    ),
                    Outbound::Blobs(r, tx) => (
                        Proto::Blobs,
                        b.blobs.send_request(&peer, r),
                        Pending::Blobs(tx),
                    ),
                    Outbound::Submit(r, tx) => (
                        Proto::Submit,
                        b.submit.send_request(&peer, r),
                        Pending::Submit(tx),
                    ),
                    Outbound::Witness(r, tx) => (
                        Proto::Witness,
                        b.witness.send_request(&peer, r),
                        Pending::Witness(tx),
                    ),
                    Outbound::Push(r, tx) => (
                        Proto::Push,
                        b.push.send_request(&peer, r),
                        Pending::Push(tx),
                    ),
                };
                self.pending.insert((proto, id), pending);
            }
            Command::Respond(resp) => {
                let sent = match resp {
                    Response::Tiles(ch, r) => b.tiles.send_response(ch, r).is_ok(),
                    Response::Blobs(ch, r) => b.blobs.send_response(ch, r).is_ok(),
                    Response::Submit(ch, r) => b.submit.send_response(ch, r).is_ok(),
                    Response::Witness(ch, r) => b.witness.send_response(ch, r).is_ok(),
                    Response::Push(ch, r) => b.push.send_response(ch, r).is_ok(),
                };
                if !sent {
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

    /// Hands a peer's request to the federation if its peer and protocol have room and the
    /// federation can take it now; otherwise gives it back, to be answered "busy".
    fn admit(
        &mut self,
        proto: Proto,
        peer: PeerId,
        id: InboundRequestId,
        req: Request,
    ) -> Option<Request> {
        let mine = self.in_flight.get(&(peer, proto)).copied().unwrap_or(0);
        let all: usize = self
            .in_flight
            .iter()
            .filter(|((_, p), _)| *p == proto)
            .map(|(_, n)| n)
            .sum();
        if mine >= MAX_IN_FLIGHT_PER_PEER || all >= MAX_IN_FLIGHT_PER_PROTOCOL {
            return Some(req);
        }
        match self.inbound.try_send(Inbound::Request(peer, req)) {
            Ok(()) => {
                *self.in_flight.entry((peer, proto)).or_default() += 1;
                self.answering.insert((proto, id), peer);
                None
            }
            Err(mpsc::error::TrySendError::Full(Inbound::Request(_, req))) => Some(req),
            // The federation is gone (shutting down): the request's channel drops with it.
            Err(_) => None,
        }
    }

    fn done(&mut self, proto: Proto, id: InboundRequestId) {
        if let Some(peer) = self.answering.remove(&(proto, id)) {
            if let Some(n) = self.in_flight.get_mut(&(peer, proto)) {
                *n -= 1;
                if *n == 0 {
                    self.in_flight.remove(&(peer, proto));
                }
            }
        }
    }

    fn request_response<Req, Resp>(
        &mut self,
        proto: Proto,
        e: RrEvent<Req, Resp>,
        wrap: impl FnOnce(Req, request_response::ResponseChannel<Resp>) -> Request,
        answer: impl FnOnce(Resp) -> Answer,
    ) where
        Resp: Busy,
    {
        match e {
            RrEvent::Request(peer, id, req, channel) => {
                if let Some(req) = self.admit(proto, peer, id, wrap(req, channel)) {
                    debug!(%peer, ?proto, "busy: too many requests in flight");
                    busy(self.swarm.behaviour_mut(), req);
                }
            }
            RrEvent::Response(id, r) => {
                if let Some(p) = self.pending.remove(&(proto, id)) {
                    p.answer(answer(r));
                }
            }
            RrEvent::OutboundFailure(id, fault) => {
                if let Some(p) = self.pending.remove(&(proto, id)) {
                    p.fail(fault);
                }
            }
            RrEvent::Done(id) => self.done(proto, id),
        }
    }

    fn forward(&mut self, msg: Inbound) {
        // Gossip and connection news are hints: when the federation is behind, drop them
        // (polling makes good) rather than stall the swarm.
        if let Err(mpsc::error::TrySendError::Full(_)) = self.inbound.try_send(msg) {
            debug!("the federation is behind; a hint was dropped");
        }
    }

    fn event(&mut self, event: SwarmEvent<BehaviourEvent>) {
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
                self.forward(Inbound::Connected(peer_id));
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
                });
            }
            SwarmEvent::Behaviour(BehaviourEvent::Tiles(e)) => {
                self.request_response(Proto::Tiles, rr_event(e), Request::Tiles, Answer::Tiles);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Blobs(e)) => {
                self.request_response(Proto::Blobs, rr_event(e), Request::Blobs, Answer::Blobs);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Submit(e)) => {
                self.request_response(Proto::Submit, rr_event(e), Request::Submit, Answer::Submit);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Witness(e)) => {
                self.request_response(
                    Proto::Witness,
                    rr_event(e),
                    Request::Witness,
                    Answer::Witness,
                );
            }
            SwarmEvent::Behaviour(BehaviourEvent::Push(e)) => {
                self.request_response(Proto::Push, rr_event(e), Request::Push, Answer::Push);
            }
            _ => {}
        }
    }
}

/// Answers a request that was not admitted with its protocol's "busy".
fn busy(b: &mut Behaviour, req: Request) {
    let _ = match req {
        Request::Tiles(_, ch) => b.tiles.send_response(ch, TileResponse::busy()).is_ok(),
        Request::Blobs(_, ch) => b.blobs.send_response(ch, BlobResponse::busy()).is_ok(),
        Request::Submit(_, ch) => b.submit.send_response(ch, SubmitResponse::busy()).is_ok(),
        Request::Witness(_, ch) => b.witness.send_response(ch, WitnessResponse::busy()).is_ok(),
        Request::Push(_, ch) => b.push.send_response(ch, PushResponse::busy()).is_ok(),
    };
}
