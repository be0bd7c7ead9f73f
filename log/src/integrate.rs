//! Appending to the tree: integrate a batch of new entries from the right edge and yield
//! exactly the tiles that are new or changed, plus the new root.
//!
//! Only the right edge is read: at most one partial tile per level (and the partial entry
//! bundle). The rest of the tree is never touched, so memory is the batch plus one row of 256
//! hashes per level.

use std::collections::HashMap;

use crate::bundle::{bundle_entries, push_entry};
use crate::error::{Error, Result};
use crate::hash::{HASH_SIZE, Hash, leaf_hash, small_tree_root};
use crate::tile::{TILE_WIDTH, Tile, TileHashReader, TileKind, TileReader, tile_hashes};
use crate::tree::tree_hash;

/// What one integration produced.
#[derive(Debug, Clone)]
pub struct Integration {
    /// Tree size before.
    pub old_size: u64,
    /// Tree size after.
    pub size: u64,
    /// Root of the new tree.
    pub root: Hash,
    /// Every new or changed tile with its bytes: hash tiles of each level, then entry bundles
    /// (only when entries were integrated). A tile appears at most once, at its new width.
    pub tiles: Vec<(Tile, Vec<u8>)>,
}

/// Integrates already-hashed leaves into the tree of `old_size` leaves whose tiles `reader`
/// serves. Yields hash tiles only.
///
/// # Errors
/// Fails when the right-edge tiles cannot be read or are malformed.
pub fn integrate_hashes(
    old_size: u64,
    leaves: &[Hash],
    reader: &impl TileReader,
) -> Result<Integration> {
    let mut tiles = Vec::new();
    let mut new_row: Vec<Hash> = leaves.to_vec();
    let mut old_row = old_size;
    let mut level = 0u8;
    while !new_row.is_empty() {
        let first_tile = old_row / TILE_WIDTH;
        let kept = (old_row % TILE_WIDTH) as usize;
        let mut row: Vec<Hash> = Vec::with_capacity(kept + new_row.len());
        if kept > 0 {
            let edge = Tile::hashes(level, first_tile, kept as u16);
            let data = read_one(reader, edge)?;
            row.extend(tile_hashes(&edge, &data)?);
        }
        row.extend_from_slice(&new_row);
        let mut next = Vec::with_capacity(row.len() / TILE_WIDTH as usize + 1);
        for (i, chunk) in row.chunks(TILE_WIDTH as usize).enumerate() {
            let tile = Tile::hashes(level, first_tile + i as u64, chunk.len() as u16);
            let mut bytes = Vec::with_capacity(chunk.len() * HASH_SIZE);
            for h in chunk {
                bytes.extend_from_slice(&h.0);
            }
            if tile.is_full() {
                next.push(small_tree_root(chunk));
            }
            tiles.push((tile, bytes));
        }
        new_row = next;
        old_row /= TILE_WIDTH;
        level += 1;
    }
    let size = old_size + leaves.len() as u64;
    let overlay = Overlay {
        new: tiles
            .iter()
            .map(|(t, d)| ((t.kind, t.index), d.as_slice()))
            .collect(),
        base: reader,
    };
    let root = tree_hash(size, &TileHashReader::new(size, &overlay))?;
    Ok(Integration {
        old_size,
        size,
        root,
        tiles,
    })
}

/// Integrates entries: hashes them as leaves, integrates the hashes, and appends them to the
/// entry bundles.
///
/// # Errors
/// [`Error::EntryTooLarge`] for an entry over 65,535 bytes (nothing is produced), or when the
/// right-edge tiles cannot be read.
pub fn integrate<E: AsRef<[u8]>>(
    old_size: u64,
    entries: &[E],
    reader: &impl TileReader,
) -> Result<Integration> {
    if let Some(e) = entries
        .iter()
        .find(|e| e.as_ref().len() > crate::bundle::MAX_ENTRY_SIZE)
    {
        return Err(Error::EntryTooLarge(e.as_ref().len()));
    }
    let leaves: Vec<Hash> = entries.iter().map(|e| leaf_hash(e.as_ref())).collect();
    let mut out = integrate_hashes(old_size, &leaves, reader)?;
    let first_bundle = old_size / TILE_WIDTH;
    let kept = (old_size % TILE_WIDTH) as usize;
    let mut current = Vec::new();
    let mut count = 0usize;
    if kept > 0 {
        let edge = Tile::entries(first_bundle, kept as u16);
        let data = read_one(reader, edge)?;
        for e in bundle_entries(&edge, &data)? {
            push_entry(&mut current, e)?;
        }
        count = kept;
    }
    let mut index = first_bundle;
    for e in entries {
        push_entry(&mut current, e.as_ref())?;
        count += 1;
        if count as u64 == TILE_WIDTH {
            out.tiles.push((
                Tile::entries(index, TILE_WIDTH as u16),
                std::mem::take(&mut current),
            ));
            index += 1;
            count = 0;
        }
    }
    if count > 0 {
        out.tiles
            .push((Tile::entries(index, count as u16), current));
    }
    Ok(out)
}

fn read_one(reader: &impl TileReader, tile: Tile) -> Result<Vec<u8>> {
    reader
        .read_tiles(&[tile])?
        .pop()
        .ok_or_else(|| Error::Read(format!("reader returned nothing for {tile}").into()))
}

/// The freshly built tiles over the reader's.
struct Overlay<'a, R> {
    new: HashMap<(TileKind, u64), &'a [u8]>,
    base: &'a R,
}

impl<R: TileReader> TileReader for Overlay<'_, R> {
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>> {
        let missing: Vec<Tile> = tiles
            .iter()
            .filter(|t| !self.new.contains_key(&(t.kind, t.index)))
            .copied()
            .collect();
        let mut from_base = self.base.read_tiles(&missing)?.into_iter();
        tiles
            .iter()
            .map(|t| match self.new.get(&(t.kind, t.index)) {
                Some(d) => Ok(d.to_vec()),
                None => from_base
                    .next()
                    .ok_or_else(|| Error::Read(format!("missing tile {t}").into())),
            })
            .collect()
    }
}
