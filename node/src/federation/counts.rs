//! Download counts between nodes (`spec/counts.md`): every period each node signs what it
//! served of each origin with its cosigner key, takes the statement itself and gossips it on
//! the origin's topic; a node takes the statements of the nodes it knows (`[counts] nodes`), in
//! each node's order, asking the peer that told it for any it missed.

use std::sync::Arc;
use std::time::Duration;

use libp2p::PeerId;
use pgext_spec::counts::{Statement, node_id};
use pgext_spec::wire::{TileRequest, TileResponse};
use tracing::{debug, warn};

use super::Federation;
use super::gossip::Gossip;
use crate::origin::{self, Origin};

/// Most missed statements asked of a peer at once.
const MAX_CATCH_UP: u64 = 64;

impl Federation {
    /// Every `period_secs`: a statement per origin of what was served since the last one.
    pub(super) async fn counts_loop(self: Arc<Self>) {
        let period = Duration::from_secs(self.counts.period_secs.max(1));
        let mut tick = tokio::time::interval(period);
        tick.tick().await;
        loop {
            tick.tick().await;
            let origins: Vec<Arc<Origin>> = self.by_origin.values().cloned().collect();
            for o in origins {
                self.state_counts(&o, period.as_secs()).await;
            }
        }
    }

    async fn state_counts(&self, o: &Arc<Origin>, period: u64) {
        let (oo, known, key) = (o.clone(), self.count_nodes.clone(), self.witness.clone());
        match origin::blocking(move || oo.state_counts(&key, period, &known)).await {
            Ok(Some(bytes)) => {
                let text = String::from_utf8_lossy(&bytes).to_string();
                self.publish(&o.name, &Gossip::Counts(text)).await;
            }
            Ok(None) => {}
            Err(e) => warn!(origin = %o.name, "this node's count statement was not taken: {e}"),
        }
    }

    /// A count statement heard of an origin: taken when its node is known, after the ones of
    /// that node it missed (asked of the peer that sent it).
    pub(super) async fn heard_counts(&self, o: &Arc<Origin>, text: String, source: Option<PeerId>) {
        let Ok(s) = Statement::parse(text.as_bytes()) else {
            debug!(origin = %o.name, "an unreadable count statement");
            return;
        };
        let node = s.counted.node.clone();
        if !self.count_nodes.iter().any(|k| k.to_string() == node) {
            debug!(origin = %o.name, %node, "count statement of a node not known here: refused");
            return;
        }
        let (seq, _) = o.last_counted(&node);
        if let Some(peer) = source.filter(|_| s.counted.seq > seq + 1) {
            let id = node_id(&node);
            for n in (seq + 1)..s.counted.seq.min(seq + 1 + MAX_CATCH_UP) {
                let req = TileRequest {
                    origin: o.name.clone(),
                    path: format!("counts/{id}/{n}"),
                };
                let Ok(TileResponse::Found(bytes)) = self.p2p.tiles(peer, req).await else {
                    break;
                };
                if !self.take_counts(o, bytes.to_vec()).await {
                    break;
                }
            }
        }
        self.take_counts(o, text.into_bytes()).await;
    }

    async fn take_counts(&self, o: &Arc<Origin>, bytes: Vec<u8>) -> bool {
        let (oo, known) = (o.clone(), self.count_nodes.clone());
        match origin::blocking(move || oo.record_counts(&bytes, &known)).await {
            Ok(_) => true,
            Err(e) => {
                debug!(origin = %o.name, "count statement refused: {e}");
                false
            }
        }
    }
}

/// A stored statement for a peer: `counts/{node id}/{seq}`.
pub(super) fn serve_counts(o: &Origin, path: &str) -> Option<Vec<u8>> {
    let (id, seq) = path.strip_prefix("counts/")?.split_once('/')?;
    if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    o.counts_statement(id, seq.parse().ok()?).ok().flatten()
}
