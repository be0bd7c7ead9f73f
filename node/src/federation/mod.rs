//! Federation: what a node does with its peers (`spec/federation.md`).
//!
//! - [`serve`]: it answers peers' requests for tiles, bundles, checkpoints and blobs of every
//!   origin it serves, with the same bytes as over HTTP.
//! - [`gossip`]: it gossips each new checkpoint of its own origin, collects the cosignatures
//!   mirrors gossip back, and hears of mirrored origins' checkpoints (gossip, and polls of
//!   connected peers); checkpoints that do not fit one tree are kept as evidence.
//! - [`sync`]: for each mirrored origin it follows the newest checkpoint it heard of: fetches
//!   the missing entry bundles from peers in parallel ([`fetch`]), recomputes the tree on top
//!   of its own verified copy and compares the root, re-checks every entry's signature and
//!   authority, fetches and hash-checks every blob, commits durably, then cosigns and gossips
//!   its cosignature. Nothing is served before that.
//! - [`witness`]: C2SP tlog-witness `add-checkpoint`, over HTTP and libp2p.
//! - [`forward`]: submissions to a mirrored origin go to its sequencer.
//! - [`peers`]: peers lose standing for each fault, so others are asked first.

pub mod fetch;
pub mod forward;
pub mod gossip;
pub mod peers;
pub mod serve;
pub mod sync;
pub mod witness;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use libp2p::PeerId;
use libp2p::gossipsub::TopicHash;
use pgext_log::{SignerKey, VerifierKey};
use tokio::sync::Notify;
use tracing::{Instrument, info_span};

use crate::config::P2pConfig;
use crate::origin::Origin;
use crate::p2p::{Command, Inbound, P2p};

/// A mirrored origin and what is known about who serves it.
#[derive(Debug)]
struct Mirror {
    origin: Arc<Origin>,
    /// Each peer's newest verified checkpoint size of this origin.
    views: Mutex<HashMap<PeerId, u64>>,
    /// The newest verified checkpoint heard of, not yet synced.
    target: Mutex<Option<(u64, String)>>,
    wake: Notify,
}

/// The node's federation state.
#[derive(Debug)]
pub struct Federation {
    p2p: P2p,
    config: P2pConfig,
    mirrors: HashMap<String, Arc<Mirror>>,
    by_origin: HashMap<String, Arc<Origin>>,
    topics: HashMap<TopicHash, String>,
    witness: SignerKey,
    peers: peers::Peers,
}

impl Federation {
    /// Starts the federation tasks for the node's own origin and the mirrored ones.
    pub fn start(
        p2p: P2p,
        inbound: tokio::sync::mpsc::Receiver<Inbound>,
        config: P2pConfig,
        own: Arc<Origin>,
        mirrors: Vec<Arc<Origin>>,
        witness: SignerKey,
    ) -> (Arc<Federation>, Vec<tokio::task::JoinHandle<()>>) {
        let mut by_origin = HashMap::new();
        let mut topics = HashMap::new();
        for o in std::iter::once(&own).chain(mirrors.iter()) {
            by_origin.insert(o.name.clone(), o.clone());
            topics.insert(crate::p2p::topic(&o.name).hash(), o.name.clone());
        }
        let mirrors = mirrors
            .into_iter()
            .map(|origin| {
                (
                    origin.name.clone(),
                    Arc::new(Mirror {
                        origin,
                        views: Mutex::default(),
                        target: Mutex::default(),
                        wake: Notify::new(),
                    }),
                )
            })
            .collect();
        let fed = Arc::new(Federation {
            p2p,
            config,
            mirrors,
            by_origin,
            topics,
            witness,
            peers: peers::Peers::default(),
        });
        let mut tasks = vec![tokio::spawn(fed.clone().inbound_loop(inbound))];
        tasks.push(tokio::spawn(fed.clone().poll_loop()));
        tasks.push(tokio::spawn(fed.clone().announce_loop(own)));
        for m in fed.mirrors.values() {
            let span = info_span!("mirror", origin = %m.origin.name);
            tasks.push(tokio::spawn(
                fed.clone().sync_loop(m.clone()).instrument(span),
            ));
        }
        (fed, tasks)
    }

    /// The cosigner key this node signs verified checkpoints with.
    pub fn witness(&self) -> &VerifierKey {
        self.witness.verifier()
    }

    /// The libp2p handle.
    pub fn p2p(&self) -> &P2p {
        &self.p2p
    }

    /// Peers that were scored, with their scores: below zero for faults, at most -100 once a
    /// peer served bytes that did not verify.
    pub fn scores(&self) -> Vec<(String, i64)> {
        self.peers.scores()
    }

    async fn inbound_loop(self: Arc<Self>, mut inbound: tokio::sync::mpsc::Receiver<Inbound>) {
        for origin in self.by_origin.keys() {
            self.p2p.send(Command::Subscribe(origin.clone())).await;
            self.p2p.send(Command::Provide(origin.clone())).await;
        }
        // Never wait here on anything that needs the swarm task: it may be waiting on us.
        // Requests arrive within the swarm's in-flight bounds, so a task each is bounded too.
        while let Some(msg) = inbound.recv().await {
            let fed = self.clone();
            match msg {
                Inbound::Connected(peer) => {
                    tokio::spawn(async move { fed.poll_peer(peer).await });
                }
                Inbound::Gossip {
                    topic,
                    data,
                    from,
                    source,
                } => {
                    tokio::spawn(fed.gossip(topic, from, source, data));
                }
                Inbound::Request(peer, req) => {
                    let span = info_span!("peer", %peer);
                    tokio::spawn(async move { fed.answer(peer, req).await }.instrument(span));
                }
            }
        }
    }
}
