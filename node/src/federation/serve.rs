//! Answers peers' reads (tiles, bundles, checkpoints, blobs) from the origins this node serves,
//! with the same bytes as over HTTP; disk reads run on the blocking pool.

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
            Request::Tiles(r, ch) => Response::Tiles(ch, self.serve_tiles(r).await),
            Request::Blobs(r, ch) => Response::Blobs(ch, self.serve_blobs(r).await),
            Request::Submit(r, ch) => Response::Submit(ch, self.serve_submission(r).await),
            Request::Witness(r, ch) => Response::Witness(ch, self.serve_witness(r).await),
        };
        debug!(%peer, "answered");
        self.p2p.send(Command::Respond(resp)).await;
    }

    async fn serve_tiles(&self, req: TileRequest) -> TileResponse {
        let Some(o) = self.by_origin.get(&req.origin).cloned() else {
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
        match origin::blocking(move || o.tile_bytes(&req.path)).await {
            Ok((_, bytes)) => TileResponse::Found(ByteBuf::from(bytes)),
            Err(Error::Refused { detail, .. }) => TileResponse::NotFound(detail),
            Err(e) => TileResponse::NotFound(format!("not served: {e}")),
        }
    }

    async fn serve_blobs(&self, req: BlobRequest) -> BlobResponse {
        // Blobs are content-addressed and shared by every origin of the node.
        let Some(o) = self.by_origin.values().next().cloned() else {
            return BlobResponse::NotFound;
        };
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
