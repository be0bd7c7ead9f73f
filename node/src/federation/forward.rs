//! Submissions to a mirrored origin go to its sequencer over `/pgext/submit/2`, and this node
//! answers submissions forwarded to an origin it sequences. The sequencer's answer (receipt or
//! refusal) reaches the author unchanged; a submission makes one hop.

use libp2p::PeerId;
use pgext_spec::api::Receipt;
use pgext_spec::entry::Entry;
use serde_bytes::ByteBuf;
use tracing::info;

use super::Federation;
use crate::origin::{Error, Refusal, publish};
use crate::p2p::wire::{SubmitRequest, SubmitResponse};

impl Federation {
    /// Sends a submission for `origin` to its sequencer and returns the sequencer's answer.
    /// The peer that signed the origin's own gossip is asked first, then every connected
    /// peer; peers that do not sequence the origin say so and never forward further.
    ///
    /// # Errors
    /// The sequencer's refusal, or 503 when no reachable peer sequences the origin.
    pub async fn forward_submission(
        &self,
        origin: &str,
        entry: &Entry,
        archive: Option<Vec<u8>>,
    ) -> Result<Receipt, Error> {
        let req = SubmitRequest {
            origin: origin.to_string(),
            entry: ByteBuf::from(entry.to_bytes()),
            archive: archive.map(ByteBuf::from),
        };
        let mut peers = self.p2p.peers().await;
        // A private origin's submissions go only where it may be seen.
        if self.by_origin.get(origin).is_some_and(|o| o.private) {
            peers.retain(|p| self.allow.contains(p));
        }
        self.peers.rank(&mut peers);
        if let Some(h) = self.peers.sequencer(origin) {
            peers.retain(|p| *p != h);
            peers.insert(0, h);
        }
        let mut last = String::from("no peer is connected");
        for peer in peers {
            match self.p2p.submit(peer, req.clone()).await {
                Ok(SubmitResponse::Receipt(r)) => {
                    self.peers.set_sequencer(origin, peer);
                    info!(%peer, origin, "submission forwarded to the sequencer");
                    return Ok(r);
                }
                Ok(SubmitResponse::Refused { kind, code, detail }) => {
                    self.peers.set_sequencer(origin, peer);
                    return Err(Error::refused(kind, code, detail));
                }
                Ok(SubmitResponse::NotSequencer) => last = format!("{peer} does not sequence it"),
                Ok(SubmitResponse::Busy) => last = format!("{peer} is busy"),
                Err(f) => {
                    self.peers.fault(peer, &f, "forwarding a submission");
                    last = f.to_string();
                }
            }
        }
        Err(Error::unavailable(
            "sequencer-unreachable",
            format!(
                "this node mirrors {origin} and could not reach its sequencer through the federation ({last}); try again later"
            ),
        ))
    }

    /// Answers a forwarded submission when this node sequences its origin.
    pub(super) async fn serve_submission(
        &self,
        peer: &PeerId,
        req: SubmitRequest,
    ) -> SubmitResponse {
        let Some(o) = self
            .by_origin
            .get(&req.origin)
            .filter(|o| o.is_sequencer() && self.may_see(peer, o))
            .cloned()
        else {
            return SubmitResponse::NotSequencer;
        };
        let answer = match Entry::from_submitted(&req.entry) {
            Ok(entry) => publish::submit(o, entry, req.archive.map(ByteBuf::into_vec)).await,
            Err(e) => Err(Error::from(e)),
        };
        match answer {
            Ok(r) => SubmitResponse::Receipt(r),
            Err(Error::Refused { kind, code, detail }) => SubmitResponse::Refused {
                kind,
                code: code.into_owned(),
                detail,
            },
            Err(e) => SubmitResponse::Refused {
                kind: Refusal::Unavailable,
                code: "sequencer-fault".into(),
                detail: format!("the sequencer could not take it: {e}"),
            },
        }
    }
}
