//! Peer standing: each fault costs a peer points, by kind, so healthy peers are asked first
//! and peers that served bad bytes last. Scores only order peers; nothing a peer says is taken
//! on its score.

use std::collections::HashMap;
use std::sync::Mutex;

use libp2p::PeerId;
use tracing::warn;

use crate::p2p::wire::Fault;

/// What a fault costs.
pub fn cost(f: &Fault) -> i64 {
    match f {
        // Bytes that do not decode, or cannot be right: a broken or hostile peer.
        Fault::Malformed(_) | Fault::Wrong(_) => 100,
        // A peer that holds requests until they time out slows every sync that asks it; an
        // answer that stops may be a peer that went down mid-answer, or one that cuts frames.
        Fault::Timeout | Fault::Cut(_) => 10,
        Fault::Unreachable(_) => 1,
        // A busy peer is healthy and loaded; this node is stopping.
        Fault::Busy | Fault::Stopped => 0,
    }
}

/// Peer scores, and per origin the peer that sequences it (learned from gossip).
#[derive(Debug, Default)]
pub struct Peers {
    scores: Mutex<HashMap<PeerId, i64>>,
    sequencers: Mutex<HashMap<String, PeerId>>,
}

impl Peers {
    /// Lowers a peer's score.
    pub fn demote(&self, peer: PeerId, by: i64, why: &str) {
        if by == 0 {
            return;
        }
        warn!(%peer, by, "demoting peer: {why}");
        *self
            .scores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(peer)
            .or_default() -= by;
    }

    /// Lowers a peer's score for a fault.
    pub fn fault(&self, peer: PeerId, f: &Fault, what: &str) {
        self.demote(peer, cost(f), &format!("{what}: {f}"));
    }

    /// A peer answered well: a demoted peer earns one point back (one bad blob takes a hundred
    /// good answers to forget).
    pub fn reward(&self, peer: PeerId) {
        let mut scores = self.scores.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = scores.get_mut(&peer).filter(|s| **s < 0) {
            *s += 1;
        }
    }

    /// A peer's score (0 when never demoted).
    pub fn score(&self, peer: &PeerId) -> i64 {
        self.scores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(peer)
            .copied()
            .unwrap_or(0)
    }

    /// Peers best first.
    pub fn rank(&self, peers: &mut [PeerId]) {
        peers.sort_by_key(|p| std::cmp::Reverse(self.score(p)));
    }

    /// The order to ask `peers` in for the `start`-th of many requests: peers in good
    /// standing first, rotated by `start` so parallel requests spread over them, then demoted
    /// peers, best first (asked only when no peer in good standing could answer).
    pub fn rotation(&self, peers: &[PeerId], start: usize) -> Vec<PeerId> {
        let (mut good, mut bad): (Vec<PeerId>, Vec<PeerId>) =
            peers.iter().partition(|p| self.score(p) >= 0);
        if !good.is_empty() {
            let n = start % good.len();
            good.rotate_left(n);
        }
        self.rank(&mut bad);
        good.extend(bad);
        good
    }

    /// Every scored peer, by peer id.
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

    /// The peer last known to sequence `origin`.
    pub fn sequencer(&self, origin: &str) -> Option<PeerId> {
        self.sequencers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(origin)
            .copied()
    }

    /// Remembers the peer that sequences `origin` (a hint: a wrong one costs a refused request).
    pub fn set_sequencer(&self, origin: &str, peer: PeerId) {
        self.sequencers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(origin.to_string(), peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_bytes_cost_most_and_busy_costs_nothing() {
        let peers = Peers::default();
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        peers.fault(a, &Fault::Malformed("x".into()), "tile");
        peers.fault(b, &Fault::Timeout, "tile");
        peers.fault(c, &Fault::Busy, "tile");
        let mut order = vec![a, b, c];
        peers.rank(&mut order);
        assert_eq!(order, vec![c, b, a]);
        assert_eq!(peers.score(&a), -100);
        peers.reward(a);
        assert_eq!(peers.score(&a), -99);
        peers.reward(c);
        assert_eq!(peers.score(&c), 0, "a peer in good standing stays at 0");
        assert_eq!(peers.scores().len(), 2, "a busy peer is not scored");
        // Demoted peers come last whatever the rotation; peers in good standing take turns.
        let d = PeerId::random();
        for start in 0..4 {
            let order = peers.rotation(&[a, c, b, d], start);
            assert_eq!(&order[2..], &[b, a]);
            assert_eq!(order[0], if start % 2 == 0 { c } else { d });
        }
    }
}
