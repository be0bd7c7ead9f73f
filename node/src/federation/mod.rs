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
//! - [`mirror`]: C2SP tlog-mirror `add-checkpoint` and `add-entries`, over HTTP: a mirror
//!   client uploads entries, authenticated package by package, and gets the cosignatures.
//! - [`forward`]: submissions to a mirrored origin go to its sequencer.
//! - [`peers`]: peers lose standing for each fault, so others are asked first.
//!
//! A private origin (`spec/access.md`) exists on the wire only for the peers in `[p2p] allow`:
//! others are answered as if it were not served here, it has no gossip topic and no provider
//! record, and what gossip would carry is pushed to each connected allowed peer instead
//! (`/pgext/push/2`, [`gossip`]).

pub mod counts;
pub mod fetch;
pub mod forward;
pub mod gossip;
pub mod mirror;
pub mod peers;
pub mod serve;
pub mod sync;
mod upload;
pub mod witness;

use std::collections::{HashMap, HashSet};
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
    /// What tlog-mirror clients uploaded and is not yet committed.
    pending: Mutex<mirror::Pending>,
    /// Serializes tlog-mirror `add-checkpoint`s: each is checked against the one before.
    updating: tokio::sync::Mutex<()>,
    /// Serializes commits of uploaded entries: each copies and checks what is pending.
    completing: tokio::sync::Mutex<()>,
}

/// The node's federation state.
#[derive(Debug)]
pub struct Federation {
    p2p: P2p,
    config: P2pConfig,
    mirrors: HashMap<String, Arc<Mirror>>,
    by_origin: HashMap<String, Arc<Origin>>,
    topics: HashMap<TopicHash, String>,
    witness: Arc<SignerKey>,
    /// The keys that cosign mirrored checkpoints (`witness_algorithms`, in order).
    cosigners: Vec<Arc<SignerKey>>,
    /// Count statements: the period, and the nodes whose statements are taken (this one's
    /// cosigner first).
    counts: crate::config::CountsConfig,
    count_nodes: Vec<VerifierKey>,
    peers: peers::Peers,
    /// Peers that may see this node's private origins (`[p2p] allow`).
    allow: HashSet<PeerId>,
    /// Blobs named by private origins, as of the sizes they had (`serve`).
    private_blobs: Mutex<(Vec<u64>, Arc<HashSet<String>>)>,
    /// tlog-mirror uploads read at once (each holds a blocking thread while it streams).
    uploads: Arc<tokio::sync::Semaphore>,
    /// Gossiped cosignatures being checked against their signers' bundles (`gossip`).
    checking: Arc<tokio::sync::Semaphore>,
}

impl Federation {
    /// Starts the federation tasks for the node's own origin and the mirrored ones.
    pub fn start(
        p2p: P2p,
        inbound: tokio::sync::mpsc::Receiver<Inbound>,
        config: P2pConfig,
        own: Arc<Origin>,
        mirrors: Vec<Arc<Origin>>,
        (witness, cosigners, counts): (SignerKey, Vec<SignerKey>, crate::config::CountsConfig),
    ) -> (Arc<Federation>, Vec<tokio::task::JoinHandle<()>>) {
        let mut by_origin = HashMap::new();
        let mut topics = HashMap::new();
        for o in std::iter::once(&own).chain(mirrors.iter()) {
            by_origin.insert(o.name.clone(), o.clone());
            // A private origin has no topic: topics are visible to every peer.
            if !o.private {
                topics.insert(crate::p2p::topic(&o.name).hash(), o.name.clone());
            }
        }
        // Checked by `Config::validate`; a bad one could only never match.
        let allow = config.allow.iter().filter_map(|p| p.parse().ok()).collect();
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
                        pending: Mutex::default(),
                        updating: tokio::sync::Mutex::new(()),
                        completing: tokio::sync::Mutex::new(()),
                    }),
                )
            })
            .collect();
        // Checked by `Config::validate`.
        let count_nodes = std::iter::once(witness.verifier().clone())
            .chain(counts.nodes.iter().filter_map(|k| k.parse().ok()))
            .collect();
        let fed = Arc::new(Federation {
            p2p,
            config,
            mirrors,
            by_origin,
            topics,
            witness: Arc::new(witness),
            cosigners: cosigners.into_iter().map(Arc::new).collect(),
            counts,
            count_nodes,
            peers: peers::Peers::default(),
            allow,
            private_blobs: Mutex::default(),
            uploads: Arc::new(tokio::sync::Semaphore::new(mirror::MAX_UPLOADS)),
            checking: Arc::new(tokio::sync::Semaphore::new(gossip::MAX_HOLDS_CHECKS)),
        });
        let mut tasks = vec![tokio::spawn(fed.clone().inbound_loop(inbound))];
        tasks.push(tokio::spawn(fed.clone().poll_loop()));
        tasks.push(tokio::spawn(fed.clone().announce_loop(own)));
        tasks.push(tokio::spawn(fed.clone().counts_loop()));
        for m in fed.mirrors.values() {
            let span = info_span!("mirror", origin = %m.origin.name);
            tasks.push(tokio::spawn(
                fed.clone().sync_loop(m.clone()).instrument(span),
            ));
        }
        (fed, tasks)
    }

    /// The node's Ed25519 cosigner key (its count statements are signed with it).
    pub fn witness(&self) -> &VerifierKey {
        self.witness.verifier()
    }

    /// The keys this node cosigns verified checkpoints with, one per algorithm.
    pub fn cosigners(&self) -> impl Iterator<Item = &VerifierKey> {
        self.cosigners.iter().map(|k| k.verifier())
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

    /// Whether `peer` may see `o`: every peer a public origin, allowed peers a private one. A
    /// refusal is counted (`pgext_p2p_private_refused_total`).
    fn may_see(&self, peer: &PeerId, o: &Origin) -> bool {
        let ok = !o.private || self.allow.contains(peer);
        if !ok {
            crate::metrics::Metrics::inc(&o.metrics().p2p_private_refused);
        }
        ok
    }

    /// The origins every peer may know of.
    fn public_origins(&self) -> impl Iterator<Item = &String> {
        self.by_origin
            .iter()
            .filter(|(_, o)| !o.private)
            .map(|(n, _)| n)
    }

    async fn inbound_loop(self: Arc<Self>, mut inbound: tokio::sync::mpsc::Receiver<Inbound>) {
        // Topics and provider records are visible to every peer: private origins have neither.
        let public: Vec<String> = self.public_origins().cloned().collect();
        for origin in public {
            self.p2p.send(Command::Subscribe(origin.clone())).await;
            self.p2p.send(Command::Provide(origin)).await;
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
