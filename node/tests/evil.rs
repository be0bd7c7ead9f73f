//! Peers that break the rules of the wire, for the fault and load test: each claims to hold the
//! origin's newest checkpoint (it relays the origin's real one, so mirrors count it a holder and
//! ask it for entries and blobs), then either answers with corrupted or cut frames, or never
//! answers at all. They speak the real protocols over a real libp2p swarm, below the typed codec:
//! what they write is raw bytes.

use std::io;
use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::request_response::{self, ProtocolSupport, ResponseChannel};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, noise, tcp, yamux};
use pgext_node::p2p::wire::{self, TileRequest, TileResponse};

/// How a peer breaks the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Misbehaviour {
    /// Answers every read with a frame cut short, or a well-formed frame of wrong bytes.
    Corrupt,
    /// Never answers a read (the request times out at the asker).
    Stall,
}

/// Raw bytes in both directions: what the peer writes is not checked against any type.
#[derive(Debug, Clone, Default)]
struct Raw;

impl request_response::Codec for Raw {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        io.take(wire::MAX_READ_REQUEST)
            .read_to_end(&mut buf)
            .await?;
        Ok(buf)
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        io.take(wire::MAX_TILE_RESPONSE)
            .read_to_end(&mut buf)
            .await?;
        Ok(buf)
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()> {
        io.write_all(&req).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()> {
        io.write_all(&res).await
    }
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    tiles: request_response::Behaviour<Raw>,
    blobs: request_response::Behaviour<Raw>,
}

/// A running misbehaving peer.
pub(crate) struct EvilPeer {
    /// Its peer id.
    pub peer_id: PeerId,
    /// Its address, with `/p2p/<peer id>`.
    pub addr: String,
}

/// Starts a misbehaving peer on `rt` that relays the checkpoint of the origin at `origin_url`
/// (HTTP).
pub(crate) fn start(
    rt: &tokio::runtime::Runtime,
    how: Misbehaviour,
    origin_url: String,
) -> EvilPeer {
    rt.block_on(async move {
        let mut swarm = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .expect("tcp")
            .with_behaviour(|_| {
                let rr = |name: &'static str| {
                    request_response::Behaviour::with_codec(
                        Raw,
                        [(StreamProtocol::new(name), ProtocolSupport::Inbound)],
                        request_response::Config::default()
                            .with_request_timeout(Duration::from_secs(3600)),
                    )
                };
                Ok(Behaviour {
                    tiles: rr(wire::TILES_PROTOCOL),
                    blobs: rr(wire::BLOBS_PROTOCOL),
                })
            })
            .expect("behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
            .build();
        swarm
            .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .unwrap();
        let addr: Multiaddr = loop {
            if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                break address;
            }
        };
        let peer_id = *swarm.local_peer_id();
        let addr = format!("{addr}/p2p/{peer_id}");
        tokio::spawn(run(swarm, how, origin_url));
        EvilPeer { peer_id, addr }
    })
}

async fn run(mut swarm: libp2p::Swarm<Behaviour>, how: Misbehaviour, origin_url: String) {
    let http = reqwest::Client::new();
    // Channels of requests never answered: held, so the askers wait until they time out.
    let mut held: Vec<ResponseChannel<Vec<u8>>> = Vec::new();
    let mut answered = 0u64;
    while let Some(event) = swarm.next().await {
        let (is_tiles, request, channel) = match event {
            SwarmEvent::Behaviour(BehaviourEvent::Tiles(request_response::Event::Message {
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            })) => (true, request, channel),
            SwarmEvent::Behaviour(BehaviourEvent::Blobs(request_response::Event::Message {
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            })) => (false, request, channel),
            _ => continue,
        };
        let mut codec = wire::tiles_codec();
        let asked = if is_tiles {
            wire::decode_request(&mut codec, &request).ok()
        } else {
            None
        };
        let answer = match asked {
            // A holder of the newest tree, as far as anyone can tell.
            Some(TileRequest { path, .. }) if path == "checkpoint" => {
                let note = match http
                    .get(format!("{origin_url}/log/checkpoint"))
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => r.bytes().await.unwrap_or_default(),
                    _ => continue,
                };
                wire::encode_response(&mut codec, TileResponse::Found(note.to_vec().into()))
                    .unwrap_or_default()
            }
            _ if how == Misbehaviour::Stall => {
                held.push(channel);
                continue;
            }
            Some(TileRequest { path, .. }) => {
                answered += 1;
                let real = http
                    .get(format!("{origin_url}/log/{path}"))
                    .send()
                    .await
                    .ok();
                let mut bytes = match real {
                    Some(r) if r.status().is_success() => {
                        r.bytes().await.map(|b| b.to_vec()).unwrap_or_default()
                    }
                    _ => vec![0; 64],
                };
                if answered % 2 == 0 {
                    // Well-formed, wrong bytes.
                    if let Some(b) = bytes.get_mut(10) {
                        *b ^= 0xff;
                    }
                    wire::encode_response(&mut codec, TileResponse::Found(bytes.into()))
                        .unwrap_or_default()
                } else {
                    // A frame cut in the middle.
                    let whole =
                        wire::encode_response(&mut codec, TileResponse::Found(bytes.into()))
                            .unwrap_or_default();
                    whole[..whole.len() / 2].to_vec()
                }
            }
            // Blobs, or a request that does not decode: garbage.
            None => vec![0xa1, 0x65, b'F', b'o', b'u'],
        };
        let b = swarm.behaviour_mut();
        let sent = if is_tiles {
            b.tiles.send_response(channel, answer)
        } else {
            b.blobs.send_response(channel, answer)
        };
        let _ = sent;
    }
}
