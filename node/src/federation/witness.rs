//! C2SP tlog-witness `add-checkpoint` for the origins this node mirrors, over HTTP and
//! `/pgext/witness/2`. A mirror's cosignature means it verified and stores the tree, so a
//! consistent checkpoint is cosigned once this node has fetched and verified its entries (from
//! any peer), within [`WITNESS_WAIT`].

use std::sync::Arc;
use std::time::Duration;

use libp2p::PeerId;
use pgext_log::{Hash, Note, Refusal, open_checkpoint};
use serde_bytes::ByteBuf;

use super::Federation;
use crate::origin;
use crate::p2p::wire::{WitnessRequest, WitnessResponse};

/// How long `add-checkpoint` waits for a consistent checkpoint's entries to be verified (less
/// than the peer wire gives a witness request, `p2p::wire::WITNESS_TIMEOUT`).
pub const WITNESS_WAIT: Duration = Duration::from_secs(30);

/// An `add-checkpoint` answer: HTTP status and body.
pub type Answer = (u16, Vec<u8>);

impl Federation {
    pub(super) async fn serve_witness(
        self: &Arc<Self>,
        peer: &PeerId,
        req: WitnessRequest,
    ) -> WitnessResponse {
        let (status, body) = self
            .add_checkpoint(&req.body, self.allow.contains(peer))
            .await;
        WitnessResponse::Answer {
            status,
            body: ByteBuf::from(body),
        }
    }

    /// Answers an `add-checkpoint` request: the cosignature line on 200. A private origin is
    /// witnessed only for allowed peers (`private_ok`); for anyone else it is a log this node
    /// does not know.
    pub async fn add_checkpoint(self: &Arc<Self>, body: &[u8], private_ok: bool) -> Answer {
        let refuse = |r: Refusal| (r.status(), r.body().into_bytes());
        let req = match pgext_log::AddCheckpoint::parse(body) {
            Ok(r) => r,
            Err(e) => return refuse(Refusal::BadRequest(e.to_string())),
        };
        let origin = req.origin().unwrap_or_default();
        let Some(m) = self
            .mirrors
            .get(&origin)
            .filter(|m| {
                let ok = !m.origin.private || private_ok;
                if !ok {
                    crate::metrics::Metrics::inc(&m.origin.metrics().p2p_private_refused);
                }
                ok
            })
            .cloned()
        else {
            return refuse(Refusal::UnknownLog(format!(
                "this node does not mirror {origin:?}"
            )));
        };
        let o = m.origin.clone();
        let snap = o.snapshot();
        let ours = snap.size;
        let our_root = if snap.note.is_empty() {
            Hash::empty_root()
        } else {
            let o = o.clone();
            match origin::blocking(move || o.root_at(ours)).await {
                Ok(r) => r,
                Err(e) => return (500, format!("{e}\n").into_bytes()),
            }
        };
        let signed = match pgext_log::check_add_checkpoint(&req, &o.vkey, (ours, our_root)) {
            Ok(c) => c,
            Err(r) => {
                // A checkpoint the log signed, no larger than the tree verified here, with
                // another root is evidence: `consider` checks and records it as for any
                // checkpoint heard. (A larger one with a bad proof proves nothing.)
                let note = String::from_utf8_lossy(&req.checkpoint).into_owned();
                if matches!(r, Refusal::Inconsistent(_))
                    && open_checkpoint(note.as_bytes(), &o.vkey, &[])
                        .is_ok_and(|c| c.checkpoint.size <= ours)
                {
                    self.consider(&m, &note, None).await;
                }
                return refuse(r);
            }
        };
        if let Some(why) = o.halted() {
            return refuse(Refusal::Inconsistent(format!(
                "this node no longer cosigns {origin}: {why}"
            )));
        }
        let size = signed.checkpoint.size;
        let note = String::from_utf8_lossy(&req.checkpoint).into_owned();
        if size > ours {
            self.consider(&m, &note, None).await;
            let mut changes = o.subscribe();
            let deadline = tokio::time::Instant::now() + WITNESS_WAIT;
            while o.size() < size && o.halted().is_none() {
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
        let snap = o.snapshot();
        if let Some(why) = &snap.halted {
            return refuse(Refusal::Inconsistent(format!(
                "this node no longer cosigns {origin}: {why}"
            )));
        }
        if snap.size != size {
            return refuse(Refusal::Conflict(snap.size));
        }
        let lines = self.own_lines(&snap.note);
        if lines.is_empty() {
            return (
                500,
                b"the verified checkpoint carries no cosignature of this node\n".to_vec(),
            );
        }
        (200, lines.into_bytes())
    }

    /// Every cosignature line of this node's keys on `note` (one per algorithm), in its keys'
    /// order.
    pub(super) fn own_lines(&self, note: &str) -> String {
        Note::parse(note.as_bytes())
            .map(|n| {
                self.cosigners()
                    .filter_map(|me| {
                        n.signatures
                            .iter()
                            .find(|g| g.name == me.name() && g.key_id == me.key_id())
                            .map(|g| g.line())
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}
