//! Fetching what a mirror needs from peers: tlog-tiles paths (entry bundles) and blobs, trying
//! peers in turn and demoting each for the fault it showed. Every fetched blob is checked
//! against the hash (and size) its entry names before it is staged on disk.

use std::sync::Arc;

use libp2p::PeerId;
use pgext_log::Tile;

use super::Federation;
use crate::origin::blobs::Staged;
use crate::origin::{self, Origin};
use crate::p2p::wire::{
    BLOB_CHUNK, BlobRequest, BlobResponse, Fault, MAX_MORE, TileRequest, TileResponse,
};

/// Largest META.json a mirror fetches.
pub const MAX_META_BYTES: u64 = 4 << 20;
/// What a META.json is assumed to weigh when grouping blobs into requests.
const META_ESTIMATE: u64 = 8 << 10;

/// A blob an entry names: its SHA-256 and, for an archive, its size.
pub type Wanted = (String, Option<u64>);

impl Federation {
    /// Fetches one tlog-tiles path of `origin` from `peer`.
    pub(super) async fn fetch_path(
        &self,
        peer: PeerId,
        origin: &str,
        path: &str,
    ) -> Result<Vec<u8>, Fault> {
        let req = TileRequest {
            origin: origin.into(),
            path: path.into(),
        };
        match self.p2p.tiles(peer, req).await? {
            TileResponse::Found(b) => Ok(b.into_vec()),
            TileResponse::NotFound(why) => Err(Fault::Unreachable(format!("not found: {why}"))),
            TileResponse::Busy => Err(Fault::Busy),
        }
    }

    /// Fetches one tlog-tiles path, trying `peers` in turn from `start`.
    pub(super) async fn fetch_any(
        &self,
        origin: &str,
        path: &str,
        peers: &[PeerId],
        start: usize,
    ) -> Result<(PeerId, Vec<u8>), String> {
        let mut last = String::from("no peer holds it");
        for peer in self.peers.rotation(peers, start) {
            match self.fetch_path(peer, origin, path).await {
                Ok(bytes) => return Ok((peer, bytes)),
                Err(f) => {
                    self.peers.fault(peer, &f, path);
                    last = f.to_string();
                }
            }
        }
        Err(last)
    }

    /// Fetches a group of blobs: all in one request to one peer, then each one that peer did
    /// not serve whole and correct on its own, from the others. Stages them on disk.
    pub(super) async fn fetch_group(
        &self,
        o: &Arc<Origin>,
        group: &[Wanted],
        peers: &[PeerId],
        start: usize,
    ) -> Result<Vec<Staged>, String> {
        let mut got: Vec<Vec<u8>> = Vec::with_capacity(group.len());
        let mut left: Vec<&Wanted> = group.iter().collect();
        if let Some(&peer) = self
            .peers
            .rotation(peers, start)
            .first()
            .filter(|_| group.len() > 1)
        {
            let req = BlobRequest {
                sha256: group[0].0.clone(),
                offset: 0,
                more: group[1..]
                    .iter()
                    .take(MAX_MORE)
                    .map(|(h, _)| h.clone())
                    .collect(),
            };
            match self.p2p.blobs(peer, req).await {
                Ok(BlobResponse::Found { total, chunk, more }) => {
                    let first = (chunk.len() as u64 == total)
                        .then(|| (group[0].0.clone(), chunk.into_vec()));
                    let whole = first
                        .into_iter()
                        .chain(more.into_iter().map(|b| (b.sha256, b.bytes.into_vec())));
                    for (sha, data) in whole {
                        let Some(k) = left.iter().position(|(h, _)| *h == sha) else {
                            continue;
                        };
                        if blob_matches(&data, &sha, left[k].1) {
                            self.peers.reward(peer);
                            got.push(data);
                            left.remove(k);
                        } else {
                            self.peers.fault(
                                peer,
                                &Fault::Wrong(format!("blob {sha} does not hash to its name")),
                                "blobs",
                            );
                            break;
                        }
                    }
                }
                Ok(_) => {}
                Err(f) => self.peers.fault(peer, &f, "blobs"),
            }
        }
        for (k, (sha, size)) in left.into_iter().enumerate() {
            got.push(self.fetch_blob(sha, *size, peers, start + 1 + k).await?);
        }
        // Staging writes files: on the blocking pool.
        let blobs = o.content().blobs().clone();
        origin::blocking(move || {
            let mut staged = Vec::with_capacity(got.len());
            for data in got {
                staged.extend(blobs.stage(&data)?);
            }
            Ok::<_, origin::Error>(staged)
        })
        .await
        .map_err(|e| format!("staging blobs: {e}"))
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
        for peer in self.peers.rotation(peers, start) {
            let mut data: Vec<u8> = Vec::new();
            let complete = loop {
                let req = BlobRequest {
                    sha256: sha.to_string(),
                    offset: data.len() as u64,
                    more: Vec::new(),
                };
                let (total, chunk) = match self.p2p.blobs(peer, req).await {
                    Ok(BlobResponse::Found { total, chunk, .. }) => (total, chunk),
                    Ok(_) => break false,
                    Err(f) => {
                        self.peers.fault(peer, &f, "blob");
                        break false;
                    }
                };
                if total > limit
                    || data.len() as u64 + chunk.len() as u64 > total
                    || chunk.len() > BLOB_CHUNK
                {
                    self.peers.fault(
                        peer,
                        &Fault::Wrong(format!("offered blob {sha} at the wrong size")),
                        "blob",
                    );
                    break false;
                }
                if chunk.is_empty() && (data.len() as u64) < total {
                    break false;
                }
                data.extend_from_slice(&chunk);
                if data.len() as u64 == total {
                    break true;
                }
            };
            if !complete {
                continue;
            }
            if !blob_matches(&data, sha, size) {
                self.peers.fault(
                    peer,
                    &Fault::Wrong(format!("blob {sha} does not hash to its name")),
                    "blob",
                );
                continue;
            }
            self.peers.reward(peer);
            return Ok(data);
        }
        Err(format!("no peer served blob {sha}"))
    }
}

/// The entry bundles, at the widths a tree of size `to` implies, that hold entries `from..to`.
pub fn bundles_between(from: u64, to: u64) -> Vec<Tile> {
    (from / 256..to.div_ceil(256))
        .map(|n| Tile::entries(n, (to - n * 256).min(256) as u16))
        .collect()
}

/// Whether fetched bytes are the blob an entry names.
pub fn blob_matches(data: &[u8], sha: &str, size: Option<u64>) -> bool {
    pgext_log::hex(&pgext_log::sha256(data)) == sha
        && size.is_none_or(|n| n == data.len() as u64)
        && data.len() as u64 <= size.unwrap_or(MAX_META_BYTES)
}

/// Splits missing blobs into groups that should fit one blobs answer (META.json sizes are not
/// in the entries, so they are estimated; what does not fit is fetched alone afterwards), and
/// into at least one group per peer when there are enough blobs, so every peer shares the load.
pub fn group_blobs(blobs: Vec<Wanted>, peers: usize) -> Vec<Vec<Wanted>> {
    let most = blobs.len().div_ceil(peers.max(1)).clamp(1, MAX_MORE + 1);
    let mut groups: Vec<Vec<Wanted>> = Vec::new();
    let mut weight = u64::MAX;
    for b in blobs {
        let w = b.1.unwrap_or(META_ESTIMATE) + 72;
        match groups.last_mut() {
            Some(g) if weight.saturating_add(w) <= BLOB_CHUNK as u64 && g.len() < most => {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_fit_one_answer_and_spread_over_peers() {
        let small: Vec<Wanted> = (0..10).map(|i| (format!("{i}"), Some(1000))).collect();
        let g = group_blobs(small.clone(), 2);
        assert_eq!(g.iter().map(Vec::len).collect::<Vec<_>>(), [5, 5]);
        let big: Vec<Wanted> = (0..3).map(|i| (format!("{i}"), Some(900 << 10))).collect();
        assert_eq!(group_blobs(big, 1).len(), 3, "one large blob per answer");
        assert_eq!(bundles_between(250, 600).len(), 3);
        assert_eq!(bundles_between(250, 600)[2].width, 88);
    }
}
