//! Federation: what a node does with its peers (`spec/federation.md`).
//!
//! - It answers peers' requests for tiles, bundles, checkpoints and blobs of every origin it
//!   serves, with the same bytes as over HTTP.
//! - It gossips each new checkpoint of its own origin, and collects the cosignatures mirrors
//!   gossip back.
//! - For each mirrored origin it follows the newest checkpoint it hears of (gossip, and polls of
//!   connected peers): checks the log signature, fetches the missing entry bundles from peers in
//!   parallel, recomputes the tree on top of its own verified copy and compares the root,
//!   re-checks every entry's signature and authority, fetches and hash-checks every blob,
//!   commits durably, then cosigns and gossips its cosignature. Nothing is served before that.
//! - Checkpoints of one origin that do not fit one tree are evidence of a split view: both notes
//!   are kept, served and gossiped, and the origin stops advancing here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use libp2p::PeerId;
use libp2p::gossipsub::TopicHash;
use pgext_log::{
    Checkpoint, Hash, Note, SignedCheckpoint, SignerKey, StoredHashes, Tile, TileHashReader,
    VerifierKey, integrate, leaf_hash, open, open_checkpoint, parse_bundle, tree_hash,
};
use pgext_spec::authority::Registry;
use pgext_spec::entry::{Action, Entry, SignedEntry, verify_signatures};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::blobs::Staged;
use crate::config::P2pConfig;
use crate::metrics::Metrics;
use crate::node::Shared;
use crate::p2p::{Command, Inbound, P2p, Proto};

/// Largest blob chunk sent in one answer.
pub const BLOB_CHUNK: usize = 1 << 20;
/// Largest META.json a mirror fetches.
const MAX_META_BYTES: u64 = 4 << 20;
/// Most cosignatures kept on one checkpoint.
const MAX_COSIGNATURES: usize = 16;
/// Bundles fetched at once.
const PARALLEL_FETCHES: usize = 8;
/// Most blobs named in one blobs request.
const MAX_BATCH: usize = 256;
/// What a META.json is assumed to weigh when grouping blobs into requests.
const META_ESTIMATE: u64 = 8 << 10;

/// A tiles-protocol request: a tlog-tiles path (`checkpoint`, `tile/…`) of an origin.
#[derive(Debug, Serialize, Deserialize)]
pub struct TileRequest {
    /// Origin.
    pub origin: String,
    /// Path below the log's prefix.
    pub path: String,
}

/// A blobs-protocol request: bytes of a blob from `offset`.
#[derive(Debug, Serialize, Deserialize)]
pub struct BlobRequest {
    /// SHA-256, hex.
    pub sha256: String,
    /// Where to start.
    pub offset: u64,
    /// More blobs wanted whole in the same answer, as many as fit in [`BLOB_CHUNK`] after the
    /// first, in this order. Small blobs (most release zips) thus cost no round trip each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more: Vec<String>,
}

/// What is gossiped on an origin's topic.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gossip {
    /// A checkpoint (signed note, with whatever cosignatures the sender holds), and the
    /// sender's cosigner key if it cosigned.
    Checkpoint {
        /// The note.
        note: String,
        /// C2SP verifier key of the cosigner whose signature the note carries, if any.
        cosigner: Option<String>,
    },
    /// Evidence of a split view.
    Evidence(Evidence),
}

/// Two signed checkpoints of one origin that do not fit one tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Origin.
    pub origin: String,
    /// What is inconsistent.
    pub reason: String,
    /// Both signed notes, verbatim.
    pub notes: [String; 2],
    /// When this node found it (seconds since the epoch).
    pub detected: u64,
}

impl Evidence {
    /// Evidence against `s`'s origin: two notes, kept with only the log's signature.
    fn of(s: &Shared, reason: String, a: &str, b: &str) -> Evidence {
        Evidence {
            origin: s.origin.clone(),
            reason,
            notes: [
                strip_to_log_signature(a, &s.vkey),
                strip_to_log_signature(b, &s.vkey),
            ],
            detected: crate::sequencer::now(),
        }
    }
}

/// Answer framing shared by the request-response protocols: a status byte, then the body.
const OK: u8 = 0;
const NOT_FOUND: u8 = 1;
const FAILED: u8 = 2;

fn answer(status: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 1);
    out.push(status);
    out.extend_from_slice(body);
    out
}

fn unframe(resp: Vec<u8>) -> Result<Vec<u8>, String> {
    match resp.split_first() {
        Some((&OK, body)) => Ok(body.to_vec()),
        Some((_, body)) => Err(String::from_utf8_lossy(body).into_owned()),
        None => Err("empty answer".into()),
    }
}

/// A mirrored origin and what is known about who serves it.
#[derive(Debug)]
struct Mirror {
    shared: Arc<Shared>,
    /// Each peer's newest verified checkpoint size of this origin.
    views: std::sync::Mutex<HashMap<PeerId, u64>>,
    /// The newest verified checkpoint heard of, not yet synced.
    target: std::sync::Mutex<Option<(u64, String)>>,
    wake: Notify,
}

/// The node's federation state.
#[derive(Debug)]
pub struct Federation {
    p2p: P2p,
    config: P2pConfig,
    mirrors: HashMap<String, Arc<Mirror>>,
    by_origin: HashMap<String, Arc<Shared>>,
    topics: HashMap<TopicHash, String>,
    witness: SignerKey,
    /// Peer scores: lowered for bad bytes and failures, so others are asked first.
    scores: std::sync::Mutex<HashMap<PeerId, i64>>,
    /// Per origin, the peer that signed that origin's own checkpoint gossip (a sequencer
    /// announces without a cosigner): where forwarded submissions go first.
    sequencers: std::sync::Mutex<HashMap<String, PeerId>>,
}

impl Federation {
    /// Starts the federation tasks for the node's own origin and the mirrored ones.
    pub fn start(
        p2p: P2p,
        inbound: tokio::sync::mpsc::Receiver<Inbound>,
        config: P2pConfig,
        own: Arc<Shared>,
        mirrors: Vec<Arc<Shared>>,
        witness: SignerKey,
    ) -> (Arc<Federation>, Vec<tokio::task::JoinHandle<()>>) {
        let mut by_origin = HashMap::new();
        let mut topics = HashMap::new();
        for s in std::iter::once(&own).chain(mirrors.iter()) {
            by_origin.insert(s.origin.clone(), s.clone());
            topics.insert(crate::p2p::topic(&s.origin).hash(), s.origin.clone());
        }
        let mirrors = mirrors
            .into_iter()
            .map(|shared| {
                (
                    shared.origin.clone(),
                    Arc::new(Mirror {
                        shared,
                        views: Default::default(),
                        target: Default::default(),
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
            scores: Default::default(),
            sequencers: Default::default(),
        });
        let mut tasks = vec![tokio::spawn(fed.clone().inbound_loop(inbound))];
        tasks.push(tokio::spawn(fed.clone().poll_loop()));
        tasks.push(tokio::spawn(fed.clone().announce_loop(own)));
        for m in fed.mirrors.values() {
            let span = info_span!("mirror", origin = %m.shared.origin);
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

    /// Peers that were scored, with their scores: below zero for failures, at most -100 once
    /// a peer served bytes that did not verify.
    pub fn scores(&self) -> Vec<(String, i64)> {
        let mut all: Vec<(String, i64)> = self
            .scores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(p, n)| (p.to_string(), *n))
            .collect();
        all.sort();
        all
    }

    async fn inbound_loop(self: Arc<Self>, mut inbound: tokio::sync::mpsc::Receiver<Inbound>) {
        for origin in self.by_origin.keys() {
            self.p2p.send(Command::Subscribe(origin.clone())).await;
            self.p2p.send(Command::Provide(origin.clone())).await;
        }
        // Never wait here on anything that needs the swarm task: it may be waiting on us.
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
                Inbound::Request {
                    proto,
                    peer,
                    body,
                    channel,
                } => {
                    tokio::spawn(async move {
                        let body = fed.answer_request(proto, body).await;
                        debug!(%peer, ?proto, bytes = body.len(), "answered");
                        fed.p2p
                            .send(Command::Respond {
                                proto,
                                channel,
                                body,
                            })
                            .await;
                    });
                }
            }
        }
    }

    /// Answers one request from a peer: submissions and witnessing wait on the sequencer or a
    /// sync; reads go to a blocking thread.
    async fn answer_request(self: &Arc<Self>, proto: Proto, body: Vec<u8>) -> Vec<u8> {
        match proto {
            Proto::Submit => self.serve_submission(&body).await,
            Proto::Witness => {
                let (status, body) = self.add_checkpoint(&body).await;
                let mut out = status.to_be_bytes().to_vec();
                out.extend_from_slice(&body);
                answer(OK, &out)
            }
            Proto::Tiles | Proto::Blobs => {
                let f = self.clone();
                tokio::task::spawn_blocking(move || f.serve(proto, &body))
                    .await
                    .unwrap_or_else(|e| answer(FAILED, e.to_string().as_bytes()))
            }
        }
    }

    /// Answers a read from a peer.
    fn serve(&self, proto: Proto, body: &[u8]) -> Vec<u8> {
        match proto {
            Proto::Tiles => {
                let Ok(req) = serde_json::from_slice::<TileRequest>(body) else {
                    return answer(FAILED, b"not a tile request");
                };
                let Some(s) = self.by_origin.get(&req.origin) else {
                    return answer(NOT_FOUND, b"origin not served here");
                };
                if req.path == "checkpoint" {
                    let (_, note) = s.checkpoint();
                    return if note.is_empty() {
                        answer(NOT_FOUND, b"no checkpoint yet")
                    } else {
                        answer(OK, note.as_bytes())
                    };
                }
                match crate::http::tile_bytes(s, &req.path) {
                    Ok((_, bytes)) => answer(OK, &bytes),
                    Err(e) => answer(NOT_FOUND, e.detail.as_bytes()),
                }
            }
            Proto::Blobs => {
                let Ok(req) = serde_json::from_slice::<BlobRequest>(body) else {
                    return answer(FAILED, b"not a blob request");
                };
                // Blobs are content-addressed and shared by every origin of the node.
                let Some(s) = self.by_origin.values().next() else {
                    return answer(NOT_FOUND, b"no blobs here");
                };
                let Ok((total, chunk)) = s.blobs.read_chunk(&req.sha256, req.offset, BLOB_CHUNK)
                else {
                    return answer(NOT_FOUND, b"blob not here");
                };
                let mut out = total.to_be_bytes().to_vec();
                out.extend_from_slice(&chunk);
                // Whole further blobs only after a whole first one, so a reader knows where the
                // first ends: `min(total - offset, BLOB_CHUNK)` bytes.
                if req.offset + (chunk.len() as u64) == total {
                    for sha in req.more.iter().take(MAX_BATCH) {
                        let room = (BLOB_CHUNK + 8).saturating_sub(out.len() + 72);
                        if room == 0 {
                            break;
                        }
                        match s.blobs.read_chunk(sha, 0, room) {
                            Ok((n, data)) if n == data.len() as u64 => {
                                out.extend_from_slice(sha.as_bytes());
                                out.extend_from_slice(&n.to_be_bytes());
                                out.extend_from_slice(&data);
                            }
                            _ => {}
                        }
                    }
                }
                answer(OK, &out)
            }
            Proto::Submit | Proto::Witness => answer(FAILED, b"not a read"),
        }
    }

    /// Sends a submission for `origin` to its sequencer and returns the sequencer's answer
    /// (HTTP status and JSON body) unchanged. The peer that signed the origin's own gossip is
    /// asked first, then every connected peer; peers that do not sequence the origin say so
    /// and never forward further, so a submission makes one hop.
    ///
    /// # Errors
    /// 503 when no reachable peer sequences the origin.
    pub async fn forward_submission(
        &self,
        origin: &str,
        entry: &Entry,
        archive: Option<Vec<u8>>,
    ) -> Result<(u16, Vec<u8>), crate::error::ApiError> {
        let header = SubmitHeader {
            origin: origin.to_string(),
            entry: entry.clone(),
            archive: archive.is_some(),
        };
        let header = serde_json::to_vec(&header).map_err(crate::error::ApiError::internal)?;
        let mut req = (header.len() as u32).to_be_bytes().to_vec();
        req.extend_from_slice(&header);
        req.extend_from_slice(archive.as_deref().unwrap_or_default());
        let mut peers = self.p2p.peers().await;
        peers.sort_by_key(|p| std::cmp::Reverse(self.score(p)));
        let hint = self
            .sequencers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(origin)
            .copied();
        if let Some(h) = hint {
            peers.retain(|p| *p != h);
            peers.insert(0, h);
        }
        let mut last = String::from("no peer is connected");
        for peer in peers {
            match self.p2p.request(Proto::Submit, peer, req.clone()).await {
                Ok(resp) => match resp.split_first() {
                    Some((&OK, rest)) if rest.len() >= 2 => {
                        self.sequencers
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(origin.to_string(), peer);
                        info!(%peer, origin, "submission forwarded to the sequencer");
                        let status = u16::from_be_bytes([rest[0], rest[1]]);
                        return Ok((status, rest[2..].to_vec()));
                    }
                    Some((_, why)) => last = String::from_utf8_lossy(why).into_owned(),
                    None => last = "empty answer".into(),
                },
                Err(e) => last = e,
            }
        }
        Err(crate::error::ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "sequencer-unreachable",
            format!(
                "this node mirrors {origin} and could not reach its sequencer through the federation ({last}); try again later"
            ),
        ))
    }

    /// Answers a forwarded submission when this node sequences its origin.
    async fn serve_submission(&self, body: &[u8]) -> Vec<u8> {
        let Some((header, archive)) = parse_submission(body) else {
            return answer(FAILED, b"not a submission");
        };
        let Some(s) = self
            .by_origin
            .get(&header.origin)
            .filter(|s| s.submit.is_some())
        else {
            return answer(NOT_FOUND, b"this node does not sequence that origin");
        };
        let archive = header.archive.then(|| archive.to_vec());
        let (status, json) = match crate::http::parse_submitted(&header.entry.to_bytes()) {
            Ok(entry) => match crate::publish::submit(s.clone(), entry, archive).await {
                Ok(r) => (201, crate::publish::receipt_json(&r)),
                Err(e) => (e.status.as_u16(), e.body()),
            },
            Err(e) => (e.status.as_u16(), e.body()),
        };
        let mut out = status.to_be_bytes().to_vec();
        out.extend_from_slice(&serde_json::to_vec(&json).unwrap_or_default());
        answer(OK, &out)
    }

    /// C2SP tlog-witness `add-checkpoint` for a mirrored origin. A mirror's cosignature means
    /// it verified and stores the tree, so a consistent checkpoint is cosigned once this node
    /// has fetched and verified its entries (from any peer), within [`WITNESS_WAIT`]. Returns the
    /// HTTP status and body (the cosignature line on 200).
    pub async fn add_checkpoint(self: &Arc<Self>, body: &[u8]) -> (u16, Vec<u8>) {
        let refuse = |r: pgext_log::Refusal| (r.status(), r.body().into_bytes());
        let req = match pgext_log::AddCheckpoint::parse(body) {
            Ok(r) => r,
            Err(e) => return refuse(pgext_log::Refusal::BadRequest(e.to_string())),
        };
        let origin = req.origin().unwrap_or_default();
        let Some(m) = self.mirrors.get(&origin) else {
            return refuse(pgext_log::Refusal::UnknownLog(format!(
                "this node does not mirror {origin:?}"
            )));
        };
        let s = &m.shared;
        let (ours, our_note) = s.checkpoint();
        let our_root = if our_note.is_empty() {
            Hash::empty_root()
        } else {
            match root_at(s, ours, &our_note, ours) {
                Ok(r) => r,
                Err(e) => return (500, e.to_string().into_bytes()),
            }
        };
        let signed = match pgext_log::check_add_checkpoint(&req, &s.vkey, (ours, our_root)) {
            Ok(c) => c,
            Err(r) => {
                // A checkpoint the log signed, no larger than the tree verified here, with
                // another root is evidence: `consider` checks and records it as for any
                // checkpoint heard. (A larger one with a bad proof proves nothing.)
                let note = String::from_utf8_lossy(&req.checkpoint);
                if matches!(r, pgext_log::Refusal::Inconsistent(_))
                    && open_checkpoint(note.as_bytes(), &s.vkey, &[])
                        .is_ok_and(|c| c.checkpoint.size <= ours)
                {
                    self.consider(m, &note, None);
                }
                return refuse(r);
            }
        };
        if let Some(why) = s.halted() {
            return refuse(pgext_log::Refusal::Inconsistent(format!(
                "this node no longer cosigns {origin}: {why}"
            )));
        }
        let size = signed.checkpoint.size;
        let note = String::from_utf8_lossy(&req.checkpoint).into_owned();
        if size > ours {
            self.consider(m, &note, None);
            let mut changes = s.changes.subscribe();
            let deadline = tokio::time::Instant::now() + WITNESS_WAIT;
            while s.size() < size && s.halted().is_none() {
                if tokio::time::timeout_at(deadline, changes.changed())
                    .await
                    .is_err()
                {
                    return (
                        503,
                        b"the checkpoint is consistent, but its entries could not be fetched and verified from any peer in time; try again\n".to_vec(),
                    );
                }
            }
        }
        let (now, served) = s.checkpoint();
        if now != size {
            return refuse(pgext_log::Refusal::Conflict(now));
        }
        let me = self.witness.verifier();
        match Note::parse(served.as_bytes()).map(|n| {
            n.signatures
                .into_iter()
                .find(|g| g.name == me.name() && g.key_id == me.key_id())
        }) {
            Ok(Some(sig)) => (200, sig.line().into_bytes()),
            _ => (
                500,
                b"the verified checkpoint carries no cosignature of this node\n".to_vec(),
            ),
        }
    }

    fn demote(&self, peer: PeerId, by: i64, why: &str) {
        warn!(%peer, "demoting peer: {why}");
        *self
            .scores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(peer)
            .or_default() -= by;
    }

    fn score(&self, peer: &PeerId) -> i64 {
        self.scores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(peer)
            .copied()
            .unwrap_or(0)
    }

    async fn fetch_path(&self, peer: PeerId, origin: &str, path: &str) -> Result<Vec<u8>, String> {
        let req = serde_json::to_vec(&TileRequest {
            origin: origin.into(),
            path: path.into(),
        })
        .map_err(|e| e.to_string())?;
        unframe(self.p2p.request(Proto::Tiles, peer, req).await?)
    }

    /// Every `poll_ms`: asks connected peers for the checkpoints of the mirrored origins, and
    /// now and then asks Kademlia who else serves them.
    async fn poll_loop(self: Arc<Self>) {
        if self.mirrors.is_empty() {
            return;
        }
        let mut tick = tokio::time::interval(Duration::from_millis(self.config.poll_ms.max(50)));
        let mut rounds: u64 = 0;
        loop {
            tick.tick().await;
            // Now and then: say again which origins this node serves (the first announcement
            // may have gone out before any peer was connected), and look for their servers.
            if rounds % 20 == 0 {
                for origin in self.by_origin.keys() {
                    self.p2p.send(Command::Provide(origin.clone())).await;
                }
                for origin in self.mirrors.keys() {
                    self.p2p.send(Command::FindProviders(origin.clone())).await;
                }
            }
            rounds += 1;
            for peer in self.p2p.peers().await {
                let fed = self.clone();
                tokio::spawn(async move { fed.poll_peer(peer).await });
            }
        }
    }

    async fn poll_peer(self: Arc<Self>, peer: PeerId) {
        for m in self.mirrors.values() {
            match self.fetch_path(peer, &m.shared.origin, "checkpoint").await {
                Ok(note) => self.consider(m, &String::from_utf8_lossy(&note), Some(peer)),
                Err(e) => debug!(%peer, origin = %m.shared.origin, "no checkpoint: {e}"),
            }
        }
    }

    /// Gossips each new checkpoint of the node's own origin.
    async fn announce_loop(self: Arc<Self>, own: Arc<Shared>) {
        let mut changes = own.changes.subscribe();
        loop {
            let (size, note) = own.checkpoint();
            if size > 0 {
                self.publish(
                    &own.origin,
                    &Gossip::Checkpoint {
                        note,
                        cosigner: None,
                    },
                )
                .await;
            }
            if changes.changed().await.is_err() {
                break;
            }
        }
    }

    async fn publish(&self, origin: &str, g: &Gossip) {
        if let Ok(data) = serde_json::to_vec(g) {
            self.p2p
                .send(Command::Publish {
                    origin: origin.to_string(),
                    data,
                })
                .await;
        }
    }

    async fn gossip(
        self: Arc<Self>,
        topic: TopicHash,
        from: PeerId,
        source: Option<PeerId>,
        data: Vec<u8>,
    ) {
        let Some(origin) = self.topics.get(&topic) else {
            return;
        };
        let Ok(g) = serde_json::from_slice::<Gossip>(&data) else {
            debug!(%from, "unreadable gossip");
            return;
        };
        let Some(shared) = self.by_origin.get(origin) else {
            return;
        };
        match g {
            Gossip::Checkpoint { note, cosigner } => {
                match (&cosigner, source) {
                    (Some(c), _) => collect_cosignature(shared, &note, c),
                    // Only a hint for forwarding: a wrong one costs one refused request.
                    (None, Some(src)) => {
                        self.sequencers
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(origin.clone(), src);
                    }
                    (None, None) => {}
                }
                if let Some(m) = self.mirrors.get(origin) {
                    // The signed author of a checkpoint gossip holds that tree: the sequencer
                    // made it, a mirror gossips only what it committed. So it is a holder to
                    // fetch from at once (and a bad note costs it, as from a poll).
                    self.consider(m, &note, source);
                }
            }
            Gossip::Evidence(ev) => {
                // Evidence must prove itself. Two notes of one size with different roots do on
                // their own; notes of different sizes are checked against this node's copy,
                // as any checkpoint heard would be.
                if ev.origin != shared.origin {
                    return;
                }
                if same_size_conflict(&shared.vkey, &ev) {
                    let shared = shared.clone();
                    self.record_evidence(&shared, ev, false).await;
                } else if let Some(m) = self.mirrors.get(origin) {
                    for note in &ev.notes {
                        self.consider(m, note, None);
                    }
                }
            }
        }
    }

    /// A checkpoint of a mirrored origin, heard from gossip or a poll.
    fn consider(self: &Arc<Self>, m: &Mirror, note: &str, from: Option<PeerId>) {
        let s = &m.shared;
        let signed = match open_checkpoint(note.as_bytes(), &s.vkey, &[]) {
            Ok(c) => c,
            Err(e) => {
                if let Some(p) = from {
                    self.demote(p, 10, &format!("checkpoint does not verify: {e}"));
                }
                return;
            }
        };
        let size = signed.checkpoint.size;
        if let Some(p) = from {
            m.views
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(p, size);
        }
        let (ours, our_note) = s.checkpoint();
        if size <= ours {
            if our_note.is_empty() {
                return;
            }
            match root_at(s, ours, &our_note, size) {
                Ok(root) if root != signed.checkpoint.root => {
                    let ev = Evidence::of(
                        s,
                        format!(
                            "checkpoint of size {size} has a root other than the tree verified here at that size"
                        ),
                        &our_note,
                        note,
                    );
                    let (fed, s) = (self.clone(), s.clone());
                    tokio::spawn(async move { fed.record_evidence(&s, ev, true).await });
                }
                Ok(_) => {}
                Err(e) => warn!("reading the tree at size {size}: {e}"),
            }
            return;
        }
        let mut t = m.target.lock().unwrap_or_else(|e| e.into_inner());
        if t.as_ref().is_none_or(|(n, _)| size > *n) {
            *t = Some((size, note.to_string()));
            m.wake.notify_one();
        } else if let Some((n, other)) = t.as_ref() {
            if *n == size && !same_tree(other, &signed, &s.vkey) {
                let ev = Evidence::of(
                    s,
                    format!("two checkpoints of size {size} with different roots"),
                    other,
                    note,
                );
                let (fed, s) = (self.clone(), s.clone());
                tokio::spawn(async move { fed.record_evidence(&s, ev, true).await });
            }
        }
    }

    /// Keeps evidence (durably, with the origin's log), stops the origin, and gossips it.
    async fn record_evidence(&self, s: &Arc<Shared>, ev: Evidence, found_here: bool) {
        let fresh = s.add_evidence(&ev);
        if !fresh {
            return;
        }
        Metrics::inc(&s.metrics.split_views);
        error!(
            origin = %s.origin,
            reason = %ev.reason,
            "SPLIT VIEW: the origin signed checkpoints that do not fit one tree; it no longer advances here and is not cosigned"
        );
        if found_here || self.mirrors.contains_key(&s.origin) {
            self.publish(&s.origin, &Gossip::Evidence(ev)).await;
        }
    }

    async fn sync_loop(self: Arc<Self>, m: Arc<Mirror>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let target = m.target.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let Some((size, note)) = target else {
                m.wake.notified().await;
                continue;
            };
            if m.shared.halted().is_some() {
                m.wake.notified().await;
                continue;
            }
            if size <= m.shared.size() {
                let mut t = m.target.lock().unwrap_or_else(|e| e.into_inner());
                if t.as_ref().is_some_and(|(n, _)| *n <= m.shared.size()) {
                    *t = None;
                }
                continue;
            }
            match self.sync_to(&m, &note).await {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(e) => {
                    warn!("sync to size {size} failed, will retry: {e}");
                    let _ = tokio::time::timeout(backoff, m.wake.notified()).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Peers that said they hold at least `size` entries, best first.
    fn holders(&self, m: &Mirror, size: u64) -> Vec<PeerId> {
        let mut peers: Vec<PeerId> = m
            .views
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, n)| **n >= size)
            .map(|(p, _)| *p)
            .collect();
        peers.sort_by_key(|p| std::cmp::Reverse(self.score(p)));
        peers
    }

    /// Fetches one tlog-tiles path, trying `peers` in turn from `start`.
    async fn fetch_any(
        &self,
        origin: &str,
        path: &str,
        peers: &[PeerId],
        start: usize,
    ) -> Result<(PeerId, Vec<u8>), String> {
        let mut last = String::from("no peer holds it");
        for k in 0..peers.len() {
            let peer = peers[(start + k) % peers.len()];
            match self.fetch_path(peer, origin, path).await {
                Ok(bytes) => return Ok((peer, bytes)),
                Err(e) => {
                    self.demote(peer, 1, &format!("{path}: {e}"));
                    last = e;
                }
            }
        }
        Err(last)
    }

    /// Brings a mirror from its verified size to the checkpoint `note`.
    async fn sync_to(&self, m: &Mirror, note: &str) -> Result<(), String> {
        let s = &m.shared;
        let signed = open_checkpoint(note.as_bytes(), &s.vkey, &[]).map_err(|e| e.to_string())?;
        let target = signed.checkpoint.size;
        let from = s.size();
        let peers = self.holders(m, target);
        if peers.is_empty() {
            return Err(format!("no connected peer holds size {target} yet"));
        }
        let bundles = bundles_between(from, target);
        // First attempt: every bundle from some holder, in parallel.
        let fetched: Vec<Result<Fetched, String>> =
            futures::stream::iter(bundles.iter().copied().enumerate())
                .map(|(i, t)| {
                    let peers = peers.clone();
                    async move {
                        self.fetch_any(&s.origin, &t.path(), &peers, i)
                            .await
                            .map(|(p, b)| (t, p, b))
                    }
                })
                .buffered(PARALLEL_FETCHES)
                .collect()
                .await;
        let mut got: Vec<(Tile, PeerId, Vec<u8>)> = Vec::with_capacity(fetched.len());
        for f in fetched {
            got.push(f?);
        }
        let verified = match self.check_bundles(s, from, &got, &signed) {
            Ok(v) => v,
            Err(why) => {
                warn!(
                    "bundles from several peers do not make the signed tree ({why}); asking each peer alone"
                );
                match self
                    .sync_from_one(s, from, &bundles, &peers, &signed, &got)
                    .await
                {
                    Ok(v) => v,
                    Err(e) if self.prove_fork(m, &signed, note, &peers).await => {
                        return Err(format!("{e}: the checkpoint is of another tree"));
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        self.finish(s, &signed, note, verified).await
    }

    /// When no peer serves entries that extend the tree verified here to a signed checkpoint,
    /// the checkpoint may be of another tree: a larger size of a fork. Each holder's whole log
    /// is fetched; if it makes the signed root but another root at the size verified here, the
    /// two checkpoints are evidence (found here, recorded and gossiped). Whether they were.
    async fn prove_fork(
        &self,
        m: &Mirror,
        signed: &SignedCheckpoint,
        note: &str,
        peers: &[PeerId],
    ) -> bool {
        let s = &m.shared;
        let (ours, our_note) = s.checkpoint();
        let Ok(our) = open_checkpoint(our_note.as_bytes(), &s.vkey, &[]) else {
            return false;
        };
        let target = signed.checkpoint.size;
        'peers: for &peer in peers {
            let mut tree = StoredHashes::new();
            for t in bundles_between(0, target) {
                let Ok(bytes) = self.fetch_path(peer, &s.origin, &t.path()).await else {
                    continue 'peers;
                };
                match parse_bundle(&bytes) {
                    Ok(list) if list.len() == usize::from(t.width) => {
                        list.into_iter().for_each(|e| tree.append(leaf_hash(e)));
                    }
                    _ => continue 'peers,
                }
            }
            match (tree_hash(target, &tree), tree_hash(ours, &tree)) {
                (Ok(full), Ok(at_ours))
                    if full == signed.checkpoint.root && at_ours != our.checkpoint.root =>
                {
                    let ev = Evidence::of(
                        s,
                        format!(
                            "checkpoint of size {target} is of a tree that does not contain the one verified here at size {ours}"
                        ),
                        &our_note,
                        note,
                    );
                    self.record_evidence(s, ev, true).await;
                    return true;
                }
                _ => {}
            }
        }
        false
    }

    /// When a mixed set of bundles fails, each holder in turn is asked for all of them; the
    /// first whole set that makes the signed tree wins, and every peer that served a bundle
    /// other than that set's is demoted.
    async fn sync_from_one(
        &self,
        s: &Shared,
        from: u64,
        bundles: &[Tile],
        peers: &[PeerId],
        signed: &SignedCheckpoint,
        mixed: &[(Tile, PeerId, Vec<u8>)],
    ) -> Result<Verified, String> {
        for &peer in peers {
            let mut set = Vec::with_capacity(bundles.len());
            let mut ok = true;
            for t in bundles {
                match self.fetch_path(peer, &s.origin, &t.path()).await {
                    Ok(b) => set.push((*t, peer, b)),
                    Err(_) => {
                        ok = false;
                        break;
                    }
                }
            }
            if !ok {
                self.demote(peer, 1, "could not serve every bundle");
                continue;
            }
            match self.check_bundles(s, from, &set, signed) {
                Ok(v) => {
                    for ((_, p, b), (_, _, good)) in mixed.iter().zip(&set) {
                        if b != good {
                            self.demote(
                                *p,
                                100,
                                "served an entry bundle that is not in the signed tree",
                            );
                        }
                    }
                    return Ok(v);
                }
                Err(why) => self.demote(
                    peer,
                    100,
                    &format!("served bundles that do not make the signed tree: {why}"),
                ),
            }
        }
        Err("no peer serves entries that make the signed tree".into())
    }

    /// Parses bundles, recomputes the tree on top of the mirror's verified copy and compares
    /// the root with the signed checkpoint.
    fn check_bundles(
        &self,
        s: &Shared,
        from: u64,
        got: &[(Tile, PeerId, Vec<u8>)],
        signed: &SignedCheckpoint,
    ) -> Result<Verified, String> {
        let mut entries: Vec<Vec<u8>> = Vec::new();
        for (t, peer, bytes) in got {
            let list = parse_bundle(bytes).map_err(|e| format!("{}: {e}", t.path()))?;
            if list.len() != usize::from(t.width) {
                return Err(format!(
                    "{} from {peer} holds {} entries",
                    t.path(),
                    list.len()
                ));
            }
            let first = t.index * 256;
            for (k, e) in list.into_iter().enumerate() {
                if first + k as u64 >= from {
                    entries.push(e.to_vec());
                }
            }
        }
        let out = integrate(from, &entries, &s.store).map_err(|e| e.to_string())?;
        if out.size != signed.checkpoint.size || out.root != signed.checkpoint.root {
            return Err(format!(
                "recomputed root at size {} differs from the checkpoint's",
                out.size
            ));
        }
        Ok(Verified {
            entries,
            tiles: out.tiles,
        })
    }

    /// Re-checks every entry, fetches the blobs, commits, cosigns and gossips.
    async fn finish(
        &self,
        s: &Shared,
        signed: &SignedCheckpoint,
        note: &str,
        v: Verified,
    ) -> Result<(), String> {
        let from = s.size();
        let t0 = std::time::Instant::now();
        // Every entry must parse canonically and pass the rules against the state before it.
        let registry = s.registry.read().unwrap_or_else(|e| e.into_inner()).clone();
        let entries = v.entries.len();
        let batch = v.entries;
        let (registry, mut blobs) =
            tokio::task::spawn_blocking(move || check_entries(registry, from, &batch))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|(index, why)| {
                    let reason = format!("entry {index} breaks the log's rules: {why}");
                    error!(origin = %s.origin, "{reason}; the origin no longer advances here");
                    s.halt(&reason);
                    reason
                })?;
        let verify_ms = t0.elapsed().as_millis();
        // Missing blobs, in groups that fit one answer, fetched in parallel; each group starts
        // at another peer, to spread the load. They become visible only once all are durable.
        let mut seen = std::collections::HashSet::new();
        blobs.retain(|(sha, _)| seen.insert(sha.clone()) && !s.blobs.has(sha));
        let mut peers = self.p2p.peers().await;
        peers.sort_by_key(|p| std::cmp::Reverse(self.score(p)));
        let groups = group_blobs(blobs, peers.len());
        let fetches: Vec<_> = groups
            .iter()
            .enumerate()
            .map(|(i, g)| self.fetch_group(s, g, &peers, i))
            .collect();
        let fetched: Vec<Result<Vec<Staged>, String>> = futures::stream::iter(fetches)
            .buffer_unordered(PARALLEL_FETCHES)
            .collect()
            .await;
        let mut staged = Vec::new();
        for f in fetched {
            staged.extend(f?);
        }
        let store = s.blobs.clone();
        tokio::task::spawn_blocking(move || store.publish(staged))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("making blobs durable: {e}"))?;
        let blobs_ms = t0.elapsed().as_millis() - verify_ms;
        // Cosign: "as of now, this is the largest tree of this origin I verified and store".
        let text = signed.checkpoint.to_text();
        let line = self
            .witness
            .signature_line(&text, crate::sequencer::now())
            .map_err(|e| e.to_string())?;
        let mut served = strip_to_log_signature(note, &s.vkey);
        served.push_str(&line);
        let size = signed.checkpoint.size;
        s.commit_mirrored(&v.tiles, size, &served, registry)
            .map_err(|e| e.to_string())?;
        info!(
            size,
            entries,
            verify_ms,
            blobs_ms,
            total_ms = t0.elapsed().as_millis(),
            "verified, committed and cosigned"
        );
        self.publish(
            &s.origin,
            &Gossip::Checkpoint {
                note: served,
                cosigner: Some(self.witness.verifier().to_string()),
            },
        )
        .await;
        Ok(())
    }

    /// Fetches a group of blobs: all in one request to one peer, then each one that peer did
    /// not serve whole and correct on its own, from the others.
    async fn fetch_group(
        &self,
        s: &Shared,
        group: &[(String, Option<u64>)],
        peers: &[PeerId],
        start: usize,
    ) -> Result<Vec<Staged>, String> {
        let mut staged = Vec::with_capacity(group.len());
        let mut left: Vec<&(String, Option<u64>)> = group.iter().collect();
        if group.len() > 1 && !peers.is_empty() {
            let peer = peers[start % peers.len()];
            let req = serde_json::to_vec(&BlobRequest {
                sha256: group[0].0.clone(),
                offset: 0,
                more: group[1..].iter().map(|(h, _)| h.clone()).collect(),
            })
            .map_err(|e| e.to_string())?;
            if let Ok(body) = self
                .p2p
                .request(Proto::Blobs, peer, req)
                .await
                .and_then(unframe)
            {
                match split_batch(&group[0].0, &body) {
                    Some(got) => {
                        for (sha, data) in got {
                            let Some(k) = left.iter().position(|(h, _)| h.as_str() == sha) else {
                                continue;
                            };
                            if blob_matches(data, sha, left[k].1) {
                                staged.extend(s.blobs.stage(data).map_err(|e| e.to_string())?);
                                left.remove(k);
                            } else {
                                self.demote(peer, 100, "served a blob whose hash does not match");
                                break;
                            }
                        }
                    }
                    None => self.demote(peer, 100, "served a malformed blob batch"),
                }
            }
        }
        for (k, (sha, size)) in left.into_iter().enumerate() {
            let data = self.fetch_blob(sha, *size, peers, start + 1 + k).await?;
            staged.extend(s.blobs.stage(&data).map_err(|e| e.to_string())?);
        }
        Ok(staged)
    }

    /// Fetches a blob in chunks from peers, resuming where a failed peer stopped, and returns
    /// it only if its SHA-256 (and size, when the entry states one) match.
    async fn fetch_blob(
        &self,
        sha: &str,
        size: Option<u64>,
        peers: &[PeerId],
        start: usize,
    ) -> Result<Vec<u8>, String> {
        let limit = size.unwrap_or(MAX_META_BYTES);
        for k in 0..peers.len() {
            let peer = peers[(start + k) % peers.len()];
            let mut data: Vec<u8> = Vec::new();
            let complete = loop {
                let req = serde_json::to_vec(&BlobRequest {
                    sha256: sha.to_string(),
                    offset: data.len() as u64,
                    more: Vec::new(),
                })
                .map_err(|e| e.to_string())?;
                let body = match self
                    .p2p
                    .request(Proto::Blobs, peer, req)
                    .await
                    .and_then(unframe)
                {
                    Ok(b) if b.len() >= 8 => b,
                    _ => break false,
                };
                let total = u64::from_be_bytes(body[..8].try_into().unwrap_or_default());
                let chunk = &body[8..];
                if total > limit || data.len() as u64 + chunk.len() as u64 > total {
                    self.demote(peer, 100, "offered a blob of the wrong size");
                    break false;
                }
                if chunk.is_empty() && (data.len() as u64) < total {
                    break false;
                }
                data.extend_from_slice(chunk);
                if data.len() as u64 == total {
                    break true;
                }
            };
            if !complete {
                continue;
            }
            if !blob_matches(&data, sha, size) {
                self.demote(peer, 100, "served a blob whose hash does not match");
                continue;
            }
            return Ok(data);
        }
        Err(format!("no peer served blob {sha}"))
    }
}

/// The header of a forwarded submission: `u32` big-endian header length, this JSON, then the
/// archive bytes when `archive` is set.
#[derive(Debug, Serialize, Deserialize)]
pub struct SubmitHeader {
    /// The origin whose sequencer should take it.
    pub origin: String,
    /// The signed entry.
    pub entry: Entry,
    /// Whether a release archive follows the header.
    pub archive: bool,
}

fn parse_submission(body: &[u8]) -> Option<(SubmitHeader, &[u8])> {
    let len = u32::from_be_bytes(body.get(..4)?.try_into().ok()?) as usize;
    let header = body.get(4..4usize.checked_add(len)?)?;
    Some((serde_json::from_slice(header).ok()?, &body[4 + len..]))
}

/// How long `add-checkpoint` waits for a consistent checkpoint's entries to be verified.
pub const WITNESS_WAIT: Duration = Duration::from_secs(30);

/// A bundle, who served it, and its bytes.
type Fetched = (Tile, PeerId, Vec<u8>);

/// Entries and tiles that made the signed tree.
#[derive(Debug)]
struct Verified {
    entries: Vec<Vec<u8>>,
    tiles: Vec<(Tile, Vec<u8>)>,
}

/// Checks entries `from..` against the rules, in order, on top of `registry`; signatures are
/// verified in batches afterwards, and the first failure by index is the verdict either way.
/// Returns the state after them and the blobs their releases name (zip with its size, META).
///
/// # Errors
/// The index of the first entry that does not parse canonically or breaks a rule, and why.
#[allow(clippy::type_complexity)]
fn check_entries(
    mut registry: Registry,
    from: u64,
    entries: &[Vec<u8>],
) -> Result<(Registry, Vec<(String, Option<u64>)>), (u64, String)> {
    let t = std::time::Instant::now();
    let mut parsed = Vec::with_capacity(entries.len());
    let mut keys = Vec::with_capacity(entries.len());
    let mut failure = None;
    for (k, verdict) in SignedEntry::parse_many(entries).into_iter().enumerate() {
        let index = from + k as u64;
        let verdict = verdict.map_err(|e| e.to_string()).and_then(|e| {
            let key = registry
                .apply_unsigned(index, &e.entry)
                .map_err(|v| v.to_string())?;
            Ok((e, key))
        });
        match verdict {
            Ok((e, key)) => {
                parsed.push(e);
                keys.push(key);
            }
            Err(why) => {
                failure = Some((index, why));
                break;
            }
        }
    }
    let rules = t.elapsed();
    let items: Vec<_> = parsed.iter().zip(&keys).collect();
    if let Err(k) = verify_signatures(&items) {
        let e = &parsed[k].entry.statement;
        return Err((
            from + k as u64,
            format!(
                "the signature does not verify with key {} of {}",
                e.key_id, e.actor
            ),
        ));
    }
    if let Some(f) = failure {
        return Err(f);
    }
    debug!(?rules, signatures = ?(t.elapsed() - rules), entries = entries.len(), "entries checked");
    let mut blobs = Vec::new();
    for e in &parsed {
        if let Action::Release(r) = &e.entry.statement.action {
            blobs.push((r.sha256.clone(), Some(r.size)));
            blobs.push((r.meta_sha256.clone(), None));
        }
    }
    Ok((registry, blobs))
}

/// The entry bundles, at the widths a tree of size `to` implies, that hold entries `from..to`.
fn bundles_between(from: u64, to: u64) -> Vec<Tile> {
    (from / 256..to.div_ceil(256))
        .map(|n| Tile::entries(n, (to - n * 256).min(256) as u16))
        .collect()
}

/// Whether fetched bytes are the blob an entry names.
fn blob_matches(data: &[u8], sha: &str, size: Option<u64>) -> bool {
    crate::blobs::hex(&pgext_log::sha256(data)) == sha
        && size.is_none_or(|n| n == data.len() as u64)
        && data.len() as u64 <= size.unwrap_or(MAX_META_BYTES)
}

/// Splits missing blobs into groups that should fit one blobs answer (META.json sizes are not
/// in the entries, so they are estimated; what does not fit is fetched alone afterwards), and
/// into at least one group per peer when there are enough blobs, so every peer shares the load.
fn group_blobs(blobs: Vec<(String, Option<u64>)>, peers: usize) -> Vec<Vec<(String, Option<u64>)>> {
    let most = blobs.len().div_ceil(peers.max(1)).clamp(1, MAX_BATCH);
    let mut groups: Vec<Vec<(String, Option<u64>)>> = Vec::new();
    let mut weight = u64::MAX;
    for b in blobs {
        let w = b.1.unwrap_or(META_ESTIMATE) + 72;
        match groups.last_mut() {
            Some(g) if weight + w <= BLOB_CHUNK as u64 && g.len() < most => {
                weight += w;
                g.push(b);
            }
            _ => {
                weight = w;
                groups.push(vec![b]);
            }
        }
    }
    groups
}

/// The blobs of a batched blobs answer for `first`: the first when it came whole, then each
/// `sha256 hex, u64 size, bytes` record. `None` when the records do not parse.
fn split_batch<'a>(first: &'a str, body: &'a [u8]) -> Option<Vec<(&'a str, &'a [u8])>> {
    let total = u64::from_be_bytes(body.get(..8)?.try_into().ok()?);
    let n = usize::try_from(total.min(BLOB_CHUNK as u64)).ok()?;
    let mut out = Vec::new();
    let head = body.get(8..8 + n)?;
    if n as u64 == total {
        out.push((first, head));
    }
    let mut rest = &body[8 + n..];
    while !rest.is_empty() {
        let sha = std::str::from_utf8(rest.get(..64)?).ok()?;
        let len = u64::from_be_bytes(rest.get(64..72)?.try_into().ok()?);
        let len = usize::try_from(len).ok()?;
        out.push((sha, rest.get(72..72usize.checked_add(len)?)?));
        rest = &rest[72 + len..];
    }
    Some(out)
}

/// The root of a mirrored log at `size` (no larger than the verified size `ours`), from its
/// verified checkpoint or tiles.
fn root_at(s: &Shared, ours: u64, our_note: &str, size: u64) -> pgext_log::Result<Hash> {
    // Peers polled in the steady state hold the size held here: answer from the note, without
    // reading tiles each time.
    if size == ours {
        let text = Note::parse(our_note.as_bytes())?.text;
        return Ok(Checkpoint::parse(&text)?.root);
    }
    tree_hash(size, &TileHashReader::new(ours, &s.store))
}

/// Whether a note is a checkpoint of the same tree as `signed`.
fn same_tree(note: &str, signed: &SignedCheckpoint, vkey: &VerifierKey) -> bool {
    open_checkpoint(note.as_bytes(), vkey, &[]).is_ok_and(|c| c.checkpoint == signed.checkpoint)
}

/// The note with only the log's own signature.
fn strip_to_log_signature(note: &str, vkey: &VerifierKey) -> String {
    match Note::parse(note.as_bytes()) {
        Ok(mut n) => {
            n.signatures
                .retain(|s| s.name == vkey.name() && s.key_id == vkey.key_id());
            String::from_utf8(n.to_bytes()).unwrap_or_default()
        }
        Err(_) => note.to_string(),
    }
}

/// Whether evidence proves itself: both notes verify with the log key, have one size and
/// different roots.
fn same_size_conflict(vkey: &VerifierKey, ev: &Evidence) -> bool {
    let (Ok(a), Ok(b)) = (
        open_checkpoint(ev.notes[0].as_bytes(), vkey, &[]),
        open_checkpoint(ev.notes[1].as_bytes(), vkey, &[]),
    ) else {
        return false;
    };
    a.checkpoint.size == b.checkpoint.size && a.checkpoint.root != b.checkpoint.root
}

/// Adds a gossiped cosignature to the checkpoint an origin serves, if it verifies and is on
/// that very checkpoint.
fn collect_cosignature(s: &Shared, note: &str, cosigner: &str) {
    let Ok(key) = cosigner.parse::<VerifierKey>() else {
        return;
    };
    if key.kind() != pgext_log::KeyType::Cosignature
        || open(note.as_bytes(), std::slice::from_ref(&key)).is_err()
    {
        return;
    }
    let Ok(parsed) = Note::parse(note.as_bytes()) else {
        return;
    };
    let Some(sig) = parsed
        .signatures
        .iter()
        .find(|g| g.name == key.name() && g.key_id == key.key_id())
    else {
        return;
    };
    let Ok(cp) = Checkpoint::parse(&parsed.text) else {
        return;
    };
    s.add_cosignature(&cp, sig.clone(), MAX_COSIGNATURES);
}
