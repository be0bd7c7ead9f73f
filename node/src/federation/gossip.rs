//! What a node hears and tells about checkpoints: it gossips each new checkpoint of its own
//! origin, collects the cosignatures mirrors gossip back, polls connected peers for the
//! checkpoints of mirrored origins, and keeps as evidence any two checkpoints of one origin
//! that do not fit one tree (the origin then stops advancing here).

use std::sync::Arc;
use std::time::Duration;

use libp2p::PeerId;
use libp2p::gossipsub::TopicHash;
use pgext_log::{Checkpoint, Note, SignedCheckpoint, VerifierKey, open, open_checkpoint};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use tracing::{debug, error, warn};

use super::{Federation, Mirror};
use crate::metrics::Metrics;
use crate::origin::sequencer::now;
use crate::origin::{self, Evidence, Origin, evidence};
use crate::p2p::Command;
use crate::p2p::wire::{PushRequest, PushResponse, TileRequest, TileResponse};

/// Most cosignatures kept on one checkpoint.
pub const MAX_COSIGNATURES: usize = 16;
/// Largest gossip message (gossipsub refuses larger ones before they get here).
pub const MAX_GOSSIP: usize = 256 << 10;

/// What is gossiped on an origin's topic (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
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
    /// A download count statement (`spec/counts.md`), as its canonical JSON.
    Counts(String),
}

impl Gossip {
    /// Decodes a gossip message.
    ///
    /// # Errors
    /// When it is too large or not a gossip message.
    pub fn decode(data: &[u8]) -> Result<Gossip, String> {
        if data.len() > MAX_GOSSIP {
            return Err(format!("{} bytes of gossip", data.len()));
        }
        serde_json::from_slice(data).map_err(|e| e.to_string())
    }
}

impl Federation {
    /// Every `poll_ms`: asks connected peers for the checkpoints of the mirrored origins, and
    /// now and then asks Kademlia who else serves them.
    pub(super) async fn poll_loop(self: Arc<Self>) {
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
                for origin in self.public_origins() {
                    self.p2p.send(Command::Provide(origin.clone())).await;
                }
                for (origin, _) in self.mirrors.iter().filter(|(_, m)| !m.origin.private) {
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

    pub(super) async fn poll_peer(self: Arc<Self>, peer: PeerId) {
        // A private origin's name is asked of allowed peers only.
        for m in self
            .mirrors
            .values()
            .filter(|m| !m.origin.private || self.allow.contains(&peer))
        {
            let req = TileRequest {
                origin: m.origin.name.clone(),
                path: "checkpoint".into(),
            };
            match self.p2p.tiles(peer, req).await {
                Ok(TileResponse::Found(note)) => {
                    self.consider(m, &String::from_utf8_lossy(&note), Some(peer))
                        .await;
                }
                Ok(_) => debug!(%peer, origin = %m.origin.name, "no checkpoint"),
                Err(f) => self.peers.fault(peer, &f, "checkpoint poll"),
            }
        }
    }

    /// Gossips each new checkpoint of the node's own origin.
    pub(super) async fn announce_loop(self: Arc<Self>, own: Arc<Origin>) {
        let mut changes = own.subscribe();
        loop {
            let snap = own.snapshot();
            if snap.size > 0 {
                self.publish(
                    &own.name,
                    &Gossip::Checkpoint {
                        note: snap.note.clone(),
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

    /// Tells peers of a checkpoint or evidence: on the origin's gossip topic, or for a private
    /// origin, straight to each connected allowed peer.
    pub(super) async fn publish(&self, origin: &str, g: &Gossip) {
        let Ok(data) = serde_json::to_vec(g) else {
            return;
        };
        if !self.by_origin.get(origin).is_some_and(|o| o.private) {
            self.p2p
                .send(Command::Publish {
                    origin: origin.to_string(),
                    data,
                })
                .await;
            return;
        }
        for peer in self.p2p.peers().await {
            if !self.allow.contains(&peer) {
                continue;
            }
            let req = PushRequest {
                origin: origin.to_string(),
                message: ByteBuf::from(data.clone()),
            };
            let p2p = self.p2p.clone();
            // Like gossip, a push is a hint: one not taken is made good by polling.
            tokio::spawn(async move {
                match p2p.push(peer, req).await {
                    Ok(PushResponse::Taken) => {}
                    Ok(other) => debug!(%peer, "push not taken: {other:?}"),
                    Err(f) => debug!(%peer, "push failed: {f}"),
                }
            });
        }
    }

    /// A push from a peer: a private origin's gossip, taken from allowed peers only.
    pub(super) fn serve_push(self: &Arc<Self>, peer: &PeerId, req: PushRequest) -> PushResponse {
        let served = self
            .by_origin
            .get(&req.origin)
            .is_some_and(|o| o.private && self.may_see(peer, o));
        if !served {
            return PushResponse::NotServed;
        }
        let g = match Gossip::decode(&req.message) {
            Ok(g) => g,
            Err(e) => {
                self.peers
                    .demote(*peer, 10, &format!("unreadable push: {e}"));
                return PushResponse::Taken;
            }
        };
        let fed = self.clone();
        let peer = *peer;
        tokio::spawn(async move { fed.heard(&req.origin, Some(peer), g).await });
        PushResponse::Taken
    }

    pub(super) async fn gossip(
        self: Arc<Self>,
        topic: TopicHash,
        from: PeerId,
        source: Option<PeerId>,
        data: Vec<u8>,
    ) {
        let Some(name) = self.topics.get(&topic) else {
            return;
        };
        let g = match Gossip::decode(&data) {
            Ok(g) => g,
            Err(e) => {
                debug!(%from, "unreadable gossip: {e}");
                return;
            }
        };
        self.heard(name, source, g).await;
    }

    /// What a checkpoint or evidence heard of an origin means here.
    async fn heard(&self, name: &str, source: Option<PeerId>, g: Gossip) {
        let Some(o) = self.by_origin.get(name).cloned() else {
            return;
        };
        match g {
            Gossip::Checkpoint { note, cosigner } => {
                match (&cosigner, source) {
                    (Some(c), _) => self.collect_cosignature(&o, &note, c, source).await,
                    // Only a hint for forwarding: a wrong one costs one refused request.
                    (None, Some(src)) => self.peers.set_sequencer(name, src),
                    (None, None) => {}
                }
                if let Some(m) = self.mirrors.get(name) {
                    // The signed author of a checkpoint gossip holds that tree: the sequencer
                    // made it, a mirror gossips only what it committed. So it is a holder to
                    // fetch from at once (and a bad note costs it, as from a poll).
                    self.consider(m, &note, source).await;
                }
            }
            Gossip::Counts(text) => self.heard_counts(&o, text, source).await,
            Gossip::Evidence(ev) => {
                // Evidence must prove itself. Two notes of one size with different roots do on
                // their own; notes of different sizes are checked against this node's copy,
                // as any checkpoint heard would be.
                if ev.origin != o.name {
                    return;
                }
                if evidence::proves_itself(&ev, &o.vkey) {
                    self.record_evidence(&o, ev, false).await;
                } else if let Some(m) = self.mirrors.get(name) {
                    for note in &ev.notes {
                        self.consider(m, note, None).await;
                    }
                }
            }
        }
    }

    /// A checkpoint of a mirrored origin, heard from gossip or a poll.
    pub(super) async fn consider(&self, m: &Mirror, note: &str, from: Option<PeerId>) {
        let o = &m.origin;
        let signed = match open_checkpoint(note.as_bytes(), &o.vkey, &[]) {
            Ok(c) => c,
            Err(e) => {
                if let Some(p) = from {
                    self.peers
                        .demote(p, 10, &format!("checkpoint does not verify: {e}"));
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
        let snap = o.snapshot();
        if size <= snap.size {
            if snap.note.is_empty() {
                return;
            }
            let reader = o.clone();
            match origin::blocking(move || reader.root_at(size)).await {
                Ok(root) if root != signed.checkpoint.root => {
                    let ev = evidence::new(
                        &o.vkey,
                        format!(
                            "checkpoint of size {size} has a root other than the tree verified here at that size"
                        ),
                        &snap.note,
                        note,
                        now(),
                    );
                    self.record_evidence(o, ev, true).await;
                }
                Ok(_) => {}
                Err(e) => warn!("reading the tree at size {size}: {e}"),
            }
            return;
        }
        let conflict = {
            let mut t = m.target.lock().unwrap_or_else(|e| e.into_inner());
            if t.as_ref().is_none_or(|(n, _)| size > *n) {
                *t = Some((size, note.to_string()));
                m.wake.notify_one();
                None
            } else {
                t.as_ref()
                    .filter(|(n, other)| *n == size && !same_tree(other, &signed, &o.vkey))
                    .map(|(_, other)| other.clone())
            }
        };
        if let Some(other) = conflict {
            let ev = evidence::new(
                &o.vkey,
                format!("two checkpoints of size {size} with different roots"),
                &other,
                note,
                now(),
            );
            self.record_evidence(o, ev, true).await;
        }
    }

    /// Keeps evidence (durably, with the origin's log), stops the origin, and gossips it.
    pub(super) async fn record_evidence(&self, o: &Arc<Origin>, ev: Evidence, found_here: bool) {
        let (keeper, kept) = (o.clone(), ev.clone());
        let fresh = match origin::blocking(move || keeper.add_evidence(&kept)).await {
            Ok(fresh) => fresh,
            Err(e) => {
                // Halted all the same; the alarm is raised below.
                error!(origin = %o.name, "storing evidence: {e}");
                true
            }
        };
        if !fresh {
            return;
        }
        Metrics::inc(&o.metrics().split_views);
        error!(
            origin = %o.name,
            reason = %ev.reason,
            "SPLIT VIEW: the origin signed checkpoints that do not fit one tree; it no longer advances here and is not cosigned"
        );
        if found_here || self.mirrors.contains_key(&o.name) {
            self.publish(&o.name, &Gossip::Evidence(ev)).await;
        }
    }
}

/// Whether a note is a checkpoint of the same tree as `signed`.
fn same_tree(note: &str, signed: &SignedCheckpoint, vkey: &VerifierKey) -> bool {
    open_checkpoint(note.as_bytes(), vkey, &[]).is_ok_and(|c| c.checkpoint == signed.checkpoint)
}

/// Cosigners checked at once for holding the tree they signed.
pub const MAX_HOLDS_CHECKS: usize = 16;
/// How often a cosigner that did not answer whether it holds the tree is asked again.
const HOLDS_TREE_TRIES: u32 = 3;

impl Federation {
    /// Adds a gossiped cosignature to the checkpoint an origin serves, if it verifies, is on
    /// that very checkpoint, and its signer holds the tree: every cosignature here is a
    /// mirror's ("durably stored and served", C2SP tlog-mirror), so the peer that signed the
    /// gossip must serve the tree's last entry bundle and one other, picked at random, byte
    /// for byte as this node holds them. A peer that serves other bytes loses standing.
    async fn collect_cosignature(
        &self,
        o: &Arc<Origin>,
        note: &str,
        cosigner: &str,
        source: Option<PeerId>,
    ) {
        let Ok(key) = cosigner.parse::<VerifierKey>() else {
            return;
        };
        if !key.kind().is_cosigner() || open(note.as_bytes(), std::slice::from_ref(&key)).is_err() {
            return;
        }
        let Ok(parsed) = Note::parse(note.as_bytes()) else {
            return;
        };
        let Some(sig) = parsed
            .signatures
            .iter()
            .find(|g| g.name == key.name() && g.key_id == key.key_id())
            .cloned()
        else {
            return;
        };
        let Ok(cp) = Checkpoint::parse(&parsed.text) else {
            return;
        };
        // Only a cosignature this node would keep is worth asking about.
        let served = Note::parse(o.snapshot().note.as_bytes());
        if !served.is_ok_and(|n| {
            n.text == parsed.text
                && n.signatures.len() <= MAX_COSIGNATURES
                && !n
                    .signatures
                    .iter()
                    .any(|g| g.name == sig.name && g.key_id == sig.key_id)
        }) {
            return;
        }
        // Checks ask peers: a bounded number run at once, and a cosignature that finds none
        // free waits for the mirror's next one.
        let Ok(_checking) = self.checking.clone().try_acquire_owned() else {
            debug!(origin = %o.name, "too many cosigners being checked; dropping one");
            return;
        };
        if let Err(why) = self.holds_tree(o, cp.size, source).await {
            warn!(
                origin = %o.name,
                cosigner = %key,
                "not keeping a cosignature of size {}: {why}",
                cp.size
            );
            return;
        }
        let o = o.clone();
        if let Err(e) =
            origin::blocking(move || o.add_cosignature(&cp, sig, MAX_COSIGNATURES)).await
        {
            error!("storing a cosignature: {e}");
        }
    }

    /// Whether `peer` serves the tree of `size` entries of `o`: its last entry bundle and one
    /// other, compared with this node's bytes.
    async fn holds_tree(
        &self,
        o: &Arc<Origin>,
        size: u64,
        peer: Option<PeerId>,
    ) -> Result<(), String> {
        if size == 0 {
            return Ok(());
        }
        let peer = peer.ok_or("the gossip names no signer to ask")?;
        let last = (size - 1) / pgext_log::TILE_WIDTH;
        let other = rand::Rng::gen_range(&mut rand::thread_rng(), 0..=last);
        let mut bundles = vec![last];
        if other != last {
            bundles.push(other);
        }
        for index in bundles {
            let width = (size - index * pgext_log::TILE_WIDTH).min(pgext_log::TILE_WIDTH) as u16;
            let path = pgext_log::Tile::entries(index, width).path();
            let (reader, p) = (o.clone(), path.clone());
            let ours = origin::blocking(move || reader.tile_bytes(&p))
                .await
                .map_err(|e| format!("{path} is not here to compare: {e}"))?
                .1;
            let mut tries = 0;
            let theirs = loop {
                match self.fetch_path(peer, &o.name, &path).await {
                    Ok(b) => break b,
                    Err(f) => {
                        tries += 1;
                        if tries >= HOLDS_TREE_TRIES {
                            return Err(format!("{peer} does not serve {path}: {f}"));
                        }
                        tokio::time::sleep(Duration::from_millis(200 * u64::from(tries))).await;
                    }
                }
            };
            if theirs != ours {
                self.peers.demote(
                    peer,
                    100,
                    &format!("cosigned a tree but serves another {path}"),
                );
                return Err(format!("{peer} serves another {path}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gossip_decodes_what_it_encodes_and_refuses_the_rest() {
        let g = Gossip::Checkpoint {
            note: "n".into(),
            cosigner: None,
        };
        assert_eq!(Gossip::decode(&serde_json::to_vec(&g).unwrap()), Ok(g));
        assert!(Gossip::decode(br#"{"checkpoint":{"note":"n","cosigner":null,"x":1}}"#).is_err());
        assert!(Gossip::decode(&vec![b' '; MAX_GOSSIP + 1]).is_err());
    }
}
