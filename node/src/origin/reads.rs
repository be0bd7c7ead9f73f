//! Reads of a log's store: entries, tiles as tlog-tiles serves them, receipts and proofs.
//! Everything here blocks on the disk: callers run it on the blocking pool.

use pgext_log::{
    Checkpoint, Hash, ProofFile, Tile, TileHashReader, TileKind, TileReader, tree_hash,
};
use pgext_spec::api::Receipt;

use super::Origin;
use super::error::{Error, Result};
use super::store::Store;

impl Origin {
    /// The entries `from..to` of the log. Blocks.
    ///
    /// # Errors
    /// When a bundle is missing or malformed.
    pub fn entries(&self, from: u64, to: u64) -> Result<Vec<Vec<u8>>> {
        Ok(self.store.entries(from, to)?)
    }

    /// The bytes of a tile or entry bundle at a tlog-tiles path (`tile/…`), exactly as the log
    /// serves them over HTTP and libp2p: only tiles the published checkpoint implies, cut to
    /// the requested width. Blocks.
    ///
    /// # Errors
    /// Not found for paths that do not parse or tiles not in the log; a fault when the store
    /// fails.
    pub fn tile_bytes(&self, path: &str) -> Result<(Tile, Vec<u8>)> {
        let tile = Tile::parse_path(path).map_err(|e| Error::not_found(e.to_string()))?;
        let size = self.size();
        let available = match tile.kind {
            TileKind::Hashes(level) => {
                pgext_log::hash_tile_at(level, tile.index, size).map(|t| t.width)
            }
            TileKind::Entries => {
                let start = tile.index.saturating_mul(pgext_log::TILE_WIDTH);
                (start < size).then(|| (size - start).min(pgext_log::TILE_WIDTH) as u16)
            }
        };
        if available.is_none_or(|w| w < tile.width) {
            return Err(Error::not_found(format!(
                "{} is not in the log",
                tile.path()
            )));
        }
        let data = self
            .store
            .read_tiles(&[tile])?
            .pop()
            .ok_or_else(|| Error::internal("the store answered no tile"))?;
        let bytes = match tile.kind {
            TileKind::Hashes(_) => data
                .get(..usize::from(tile.width) * 32)
                .ok_or_else(|| Error::internal(format!("stored tile {} is short", tile.path())))?
                .to_vec(),
            TileKind::Entries => {
                let entries = pgext_log::bundle_entries(&tile, &data)?;
                let mut out = Vec::new();
                for e in entries {
                    pgext_log::push_entry(&mut out, e)?;
                }
                out
            }
        };
        Ok((tile, bytes))
    }

    /// The receipt of the entry at `index`: a proof of inclusion in the current checkpoint,
    /// with the entry in the proof file (`spec/log.md`). Blocks.
    ///
    /// # Errors
    /// When the index is not in the log, or the store fails.
    pub fn receipt(&self, index: u64) -> Result<Receipt> {
        let snap = self.snapshot();
        if index >= snap.size {
            return Err(Error::not_found(format!(
                "entry {index} is not in the log (size {})",
                snap.size
            )));
        }
        receipt_at(&self.store, index, snap.size, &snap.note, None)
    }

    /// The root of the log at `size`, no larger than the current size. Blocks.
    ///
    /// # Errors
    /// When the tiles cannot be read.
    pub fn root_at(&self, size: u64) -> Result<Hash> {
        let snap = self.snapshot();
        // Peers polled in the steady state hold the size held here: answer from the note,
        // without reading tiles each time.
        if size == snap.size && !snap.note.is_empty() {
            let text = pgext_log::Note::parse(snap.note.as_bytes())?.text;
            return Ok(Checkpoint::parse(&text)?.root);
        }
        if size > snap.size {
            return Err(Error::not_found(format!(
                "size {size} is beyond this log ({})",
                snap.size
            )));
        }
        Ok(tree_hash(
            size,
            &TileHashReader::new(snap.size, &*self.store),
        )?)
    }

    /// An inclusion proof of entry `index` in the tree of `size` leaves. Blocks.
    ///
    /// # Errors
    /// Not found when the tree is larger than this log or the entry is not in it.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>> {
        let ours = self.size();
        if index >= size || size > ours {
            return Err(Error::not_found(format!(
                "no inclusion proof of entry {index} in a tree of size {size} here (size {ours})"
            )));
        }
        Ok(pgext_log::inclusion_proof(
            index,
            size,
            &TileHashReader::new(ours, &*self.store),
        )?)
    }

    /// A consistency proof from the tree of `from` leaves to the tree of `to`. Blocks.
    ///
    /// # Errors
    /// Not found when the sizes are not `0 < from <= to <= size` here.
    pub fn consistency_proof(&self, from: u64, to: u64) -> Result<Vec<Hash>> {
        let ours = self.size();
        if from == 0 {
            return Err(Error::bad_request(
                "a consistency proof starts at a size of at least 1 (every tree extends the empty one)",
            ));
        }
        if from > to || to > ours {
            return Err(Error::not_found(format!(
                "no consistency proof from size {from} to size {to} here (size {ours})"
            )));
        }
        Ok(pgext_log::consistency_proof(
            from,
            to,
            &TileHashReader::new(ours, &*self.store),
        )?)
    }
}

/// The receipt of entry `index` in the tree of `size` whose checkpoint is `note`; `entry` when
/// the caller has its bytes at hand.
pub(super) fn receipt_at(
    store: &Store,
    index: u64,
    size: u64,
    note: &str,
    entry: Option<Vec<u8>>,
) -> Result<Receipt> {
    let proof = pgext_log::inclusion_proof(index, size, &TileHashReader::new(size, store))?;
    let entry = match entry {
        Some(e) => e,
        None => store
            .entries(index, index + 1)?
            .pop()
            .ok_or_else(|| Error::internal(format!("entry {index} is missing")))?,
    };
    let file = ProofFile {
        extra: Some(entry),
        index,
        proof,
        checkpoint: note.as_bytes().to_vec(),
    }
    .to_bytes();
    Ok(Receipt {
        index,
        checkpoint: note.to_string(),
        proof: String::from_utf8(file).map_err(Error::internal)?,
    })
}
