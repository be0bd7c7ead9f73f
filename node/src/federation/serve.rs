//! Answers peers' reads (tiles, bundles, checkpoints, blobs) from the origins this node serves,
//! with the same bytes as over HTTP; disk reads run on the blocking pool.

use std::collections::HashSet;
use std::sync::Arc;

use libp2p::PeerId;
use serde_bytes::ByteBuf;
use tracing::debug;

use super::Federation;
use crate::origin::{self, Error};
use crate::p2p::wire::{
    BLOB_CHUNK, BlobRequest, BlobResponse, MAX_MORE, TileRequest, TileResponse, WholeBlob,
};
use crate::p2p::{Command, Request, Response};

impl Federation {
    /// Answers one request from a peer.
    pub(super) async fn answer(self: Arc<Self>, peer: PeerId, req: Request) {
        let resp = match req {
            Request::Tiles(r, ch) => Response::Tiles(ch, self.serve_tiles(&peer, r).await),
            Request::Blobs(r, ch) => Response::Blobs(ch, self.serve_blobs(&peer, r).await),
            Request::Submit(r, ch) => Response::Submit(ch, self.serve_submission(&peer, r).await),
            Request::Witness(r, ch) => Response::Witness(ch, self.serve_witness(&peer, r).await),
            Request::Push(r, ch) => Response::Push(ch, self.serve_push(&peer, r)),
        };
        debug!(%peer, "answered");
        self.p2p.send(Command::Respond(resp)).await;
    }

    async fn serve_tiles(&self, peer: &PeerId, req: TileRequest) -> TileResponse {
        let Some(o) = self
            .by_origin
            .get(&req.origin)
            .filter(|o| self.may_see(peer, o))
            .cloned()
        else {
            return TileResponse::NotFound("origin not served here".into());
        };
        if req.path == "checkpoint" {
            let snap = o.snapshot();
            return if snap.note.is_empty() {
                TileResponse::NotFound("no checkpoint yet".into())
            } else {
                TileResponse::Found(ByteBuf::from(snap.note.as_bytes().to_vec()))
            };
        }
        if req.path.starts_with("counts/") {
            let path = req.path.clone();
            return match origin::blocking(move || {
                Ok::<_, Error>(super::counts::serve_counts(&o, &path))
            })
            .await
            {
                Ok(Some(bytes)) => TileResponse::Found(ByteBuf::from(bytes)),
                _ => TileResponse::NotFound("no such count statement".into()),
            };
        }
        match origin::blocking(move || o.tile_bytes(&req.path)).await {
            Ok((_, bytes)) => TileResponse::Found(ByteBuf::from(bytes)),
            Err(Error::Refused { detail, .. }) => TileResponse::NotFound(detail),
            Err(e) => TileResponse::NotFound(format!("not served: {e}")),
        }
    }

    async fn serve_blobs(&self, peer: &PeerId, mut req: BlobRequest) -> BlobResponse {
        // Blobs are content-addressed and shared by every origin of the node.
        let Some(o) = self.by_origin.values().next().cloned() else {
            return BlobResponse::NotFound;
        };
        if !self.allow.contains(peer) && self.by_origin.values().any(|o| o.private) {
            let hidden = self.private_blobs();
            let visible = |sha: &String| !hidden.contains(sha) || self.public_blob(sha);
            if !visible(&req.sha256) {
                crate::metrics::Metrics::inc(&o.metrics().p2p_private_refused);
                return BlobResponse::NotFound;
            }
            req.more.retain(|sha| visible(sha));
        }
        let read = origin::blocking(move || {
            let blobs = o.content().blobs();
            let (total, chunk) = blobs.read_chunk(&req.sha256, req.offset, BLOB_CHUNK)?;
            let mut more = Vec::new();
            // Whole further blobs only after a whole first one, so a reader knows where the
            // first ends.
            if req.offset + (chunk.len() as u64) == total {
                let mut room = BLOB_CHUNK.saturating_sub(chunk.len());
                for sha in req.more.iter().take(MAX_MORE) {
                    if room == 0 {
                        break;
                    }
                    match blobs.read_chunk(sha, 0, room) {
                        Ok((n, data)) if n == data.len() as u64 => {
                            room -= data.len();
                            more.push(WholeBlob {
                                sha256: sha.clone(),
                                bytes: ByteBuf::from(data),
                            });
                        }
                        _ => {}
                    }
                }
            }
            Ok::<_, Error>(BlobResponse::Found {
                total,
                chunk: ByteBuf::from(chunk),
                more,
            })
        });
        read.await.unwrap_or(BlobResponse::NotFound)
    }
}

impl Federation {
    /// The blobs the private origins name (release zips, METAs, binary packages), recomputed when one of them
    /// grew.
    fn private_blobs(&self) -> Arc<HashSet<String>> {
        let private: Vec<&Arc<crate::origin::Origin>> =
            self.by_origin.values().filter(|o| o.private).collect();
        let sizes: Vec<u64> = private.iter().map(|o| o.size()).collect();
        let mut g = self.private_blobs.lock().unwrap_or_else(|e| e.into_inner());
        if g.0 != sizes {
            let mut set = HashSet::new();
            for o in &private {
                let snap = o.snapshot();
                for d in snap.registry.dists() {
                    for r in d.releases.values() {
                        set.extend(r.blobs().map(|(sha, _)| sha.to_string()));
                    }
                }
            }
            *g = (sizes, Arc::new(set));
        }
        g.1.clone()
    }

    /// Whether a public origin names the blob too (the same bytes released in public).
    fn public_blob(&self, sha: &str) -> bool {
        self.by_origin.values().filter(|o| !o.private).any(|o| {
            o.snapshot().registry.dists().any(|d| {
                d.releases
                    .values()
                    .any(|r| r.blobs().any(|(b, _)| b == sha))
            })
        })
    }
}
