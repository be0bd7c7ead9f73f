//! C2SP tlog-tiles: tile coordinates and paths, the tiles a tree size implies, and reading
//! stored hashes out of tiles.
//!
//! Tiles have height 8: a hash tile at tile level `L` holds up to 256 consecutive stored hashes
//! of tree level `8·L`. The stored hashes of levels `8·L+1 ..= 8·L+7` are not written anywhere:
//! they are recomputed from the tile's row (with `rs_merkle`) when needed.

use std::collections::HashMap;
use std::fmt;

use crate::error::{Error, Result};
use crate::hash::{HASH_SIZE, Hash, small_tree_root};
use crate::tree::{HashReader, split_stored_hash_index};

/// Tree levels per tile.
pub const TILE_HEIGHT: u8 = 8;
/// Hashes (or entries) in a full tile.
pub const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;

/// What a tile holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TileKind {
    /// Hashes of tile level `L` (tree level `8·L`); level 0 holds leaf hashes.
    Hashes(u8),
    /// An entry bundle: the entries themselves, each with a u16 big-endian length prefix.
    Entries,
}

/// One tile: kind, index within its level, and width (1..=256; 256 is a full tile).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    /// Hash tile of a level, or entry bundle.
    pub kind: TileKind,
    /// Index `N` of the tile within its level.
    pub index: u64,
    /// Number of hashes or entries, 1..=256.
    pub width: u16,
}

impl Tile {
    /// A hash tile.
    pub fn hashes(level: u8, index: u64, width: u16) -> Tile {
        Tile {
            kind: TileKind::Hashes(level),
            index,
            width,
        }
    }

    /// An entry bundle.
    pub fn entries(index: u64, width: u16) -> Tile {
        Tile {
            kind: TileKind::Entries,
            index,
            width,
        }
    }

    /// Whether the tile is full (256 wide).
    pub fn is_full(&self) -> bool {
        u64::from(self.width) == TILE_WIDTH
    }

    /// The same tile at full width: where a node keeps a tile that is still growing.
    pub fn full(&self) -> Tile {
        Tile {
            width: TILE_WIDTH as u16,
            ..*self
        }
    }

    /// The path below a log's prefix: `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`, with
    /// `N` in 3-digit groups, all but the last prefixed by `x` (1234067 → `x001/x234/067`).
    pub fn path(&self) -> String {
        let mut s = String::from("tile/");
        match self.kind {
            TileKind::Hashes(level) => s.push_str(&level.to_string()),
            TileKind::Entries => s.push_str("entries"),
        }
        s.push('/');
        let digits = self.index.to_string();
        let mut groups = Vec::new();
        let mut end = digits.len();
        while end > 0 {
            let start = end.saturating_sub(3);
            groups.push(format!("{:0>3}", &digits[start..end]));
            end = start;
        }
        groups.reverse();
        for (i, g) in groups.iter().enumerate() {
            if i + 1 < groups.len() {
                s.push('x');
            }
            s.push_str(g);
            if i + 1 < groups.len() {
                s.push('/');
            }
        }
        if !self.is_full() {
            s.push_str(&format!(".p/{}", self.width));
        }
        s
    }

    /// Parses a path written by [`Tile::path`], strictly: no leading zeros where the spec has
    /// none, no `.p/256`, no empty groups.
    ///
    /// # Errors
    /// [`Error::MalformedTilePath`] for anything else.
    pub fn parse_path(path: &str) -> Result<Tile> {
        let bad = || Error::MalformedTilePath(path.to_string());
        let rest = path.strip_prefix("tile/").ok_or_else(bad)?;
        let (kind_str, rest) = rest.split_once('/').ok_or_else(bad)?;
        let kind = if kind_str == "entries" {
            TileKind::Entries
        } else {
            let level = parse_decimal(kind_str).ok_or_else(bad)?;
            if level > 63 {
                return Err(bad());
            }
            TileKind::Hashes(level as u8)
        };
        let (index_str, width) = match rest.split_once(".p/") {
            Some((i, w)) => {
                let w = parse_decimal(w).ok_or_else(bad)?;
                if w == 0 || w >= TILE_WIDTH {
                    return Err(bad());
                }
                (i, w as u16)
            }
            None => (rest, TILE_WIDTH as u16),
        };
        let parts: Vec<&str> = index_str.split('/').collect();
        let mut index: u64 = 0;
        for (i, part) in parts.iter().enumerate() {
            let digits = if i + 1 < parts.len() {
                part.strip_prefix('x').ok_or_else(bad)?
            } else {
                part
            };
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let v: u64 = digits.parse().map_err(|_| bad())?;
            index = index
                .checked_mul(1000)
                .and_then(|x| x.checked_add(v))
                .ok_or_else(bad)?;
        }
        let tile = Tile { kind, index, width };
        // Only the canonical spelling is accepted (no superfluous leading groups).
        if tile.path() != path {
            return Err(bad());
        }
        Ok(tile)
    }
}

impl fmt::Display for Tile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

/// Parses ASCII decimal without sign or leading zeros.
pub(crate) fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

/// The hash tile at tile level `level` with index `index` as it stands in a tree of `size`
/// leaves, or `None` if the tree has no hash of that tile yet.
pub fn hash_tile_at(level: u8, index: u64, size: u64) -> Option<Tile> {
    let row = row_len(level, size);
    let start = index.checked_mul(TILE_WIDTH)?;
    if start >= row {
        return None;
    }
    Some(Tile::hashes(
        level,
        index,
        (row - start).min(TILE_WIDTH) as u16,
    ))
}

/// Number of hashes at tree level `8·level` in a tree of `size` leaves.
fn row_len(level: u8, size: u64) -> u64 {
    let shift = u32::from(level) * u32::from(TILE_HEIGHT);
    if shift >= 64 { 0 } else { size >> shift }
}

/// Every hash tile a tree of `size` leaves implies (full tiles and the partial right edge of
/// each level), level by level, then the entry bundles.
pub fn tiles_for_size(size: u64) -> Vec<Tile> {
    let mut out = Vec::new();
    let mut level = 0u8;
    loop {
        let row = row_len(level, size);
        if row == 0 {
            break;
        }
        out.extend(tiles_of_row(row, |i, w| Tile::hashes(level, i, w)));
        level += 1;
    }
    out.extend(tiles_of_row(size, Tile::entries));
    out
}

fn tiles_of_row(row: u64, make: impl Fn(u64, u16) -> Tile) -> impl Iterator<Item = Tile> {
    let full = row / TILE_WIDTH;
    let partial = (row % TILE_WIDTH) as u16;
    (0..full)
        .map(move |i| (i, TILE_WIDTH as u16))
        .chain((partial > 0).then_some((full, partial)))
        .map(move |(i, w)| make(i, w))
}

/// Reads tiles from wherever a node keeps them.
pub trait TileReader {
    /// Returns the bytes of each tile, in order. A reader may return a wider version of a tile
    /// (a later state of the same right edge); only the requested width is used. Hash tiles are
    /// `32·width` bytes; bundles are `width` length-prefixed entries.
    ///
    /// # Errors
    /// Fails when a tile is missing or the store fails.
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>>;
}

impl<R: TileReader + ?Sized> TileReader for &R {
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>> {
        (**self).read_tiles(tiles)
    }
}

/// The hashes in the first `width` slots of a hash tile's bytes.
///
/// # Errors
/// [`Error::MalformedTile`] when the data is shorter than the tile's width.
pub fn tile_hashes(tile: &Tile, data: &[u8]) -> Result<Vec<Hash>> {
    let need = usize::from(tile.width) * HASH_SIZE;
    if data.len() < need || data.len() % HASH_SIZE != 0 {
        return Err(Error::MalformedTile {
            path: tile.path(),
            reason: format!(
                "{} bytes, expected at least {need} in whole hashes",
                data.len()
            ),
        });
    }
    Ok(data[..need]
        .chunks_exact(HASH_SIZE)
        .map(|c| Hash::from_slice(c).unwrap_or_default())
        .collect())
}

/// A [`HashReader`] for a tree of a given size whose hashes live in tiles.
#[derive(Debug)]
pub struct TileHashReader<R> {
    size: u64,
    tiles: R,
}

impl<R: TileReader> TileHashReader<R> {
    /// Reads hashes of the tree of `size` leaves from `tiles`.
    pub fn new(size: u64, tiles: R) -> TileHashReader<R> {
        TileHashReader { size, tiles }
    }
}

impl<R: TileReader> HashReader for TileHashReader<R> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>> {
        // Where each stored hash sits: (tile, first slot, number of slots to hash together).
        let mut places = Vec::with_capacity(indexes.len());
        let mut wanted: Vec<Tile> = Vec::new();
        let mut slot_of: HashMap<Tile, usize> = HashMap::new();
        for &i in indexes {
            let (level, n) = split_stored_hash_index(i);
            if level >= 64
                || (n + 1)
                    .checked_shl(u32::from(level))
                    .is_none_or(|end| end > self.size)
            {
                return Err(Error::Read(
                    format!("hash ({level}, {n}) is not in a tree of size {}", self.size).into(),
                ));
            }
            let tile_level = level / TILE_HEIGHT;
            let sub = level % TILE_HEIGHT;
            let first = n << sub; // position in the tile level's row
            let tile = hash_tile_at(tile_level, first / TILE_WIDTH, self.size)
                .ok_or_else(|| Error::Read(format!("no tile for hash ({level}, {n})").into()))?;
            let slot = *slot_of.entry(tile).or_insert_with(|| {
                wanted.push(tile);
                wanted.len() - 1
            });
            places.push((slot, (first % TILE_WIDTH) as usize, 1usize << sub));
        }
        let data = self.tiles.read_tiles(&wanted)?;
        if data.len() != wanted.len() {
            return Err(Error::Read(
                format!("asked for {} tiles, got {}", wanted.len(), data.len()).into(),
            ));
        }
        let rows: Vec<Vec<Hash>> = wanted
            .iter()
            .zip(&data)
            .map(|(t, d)| tile_hashes(t, d))
            .collect::<Result<_>>()?;
        Ok(places
            .into_iter()
            .map(|(slot, start, count)| {
                let row = &rows[slot][start..start + count];
                if count == 1 {
                    row[0]
                } else {
                    small_tree_root(row)
                }
            })
            .collect())
    }
}

/// Tiles kept in memory, each under its full-width coordinates at its widest known state. For
/// tests, benchmarks and tools; a node keeps the same thing in RocksDB.
#[derive(Debug, Default, Clone)]
pub struct MemoryTiles {
    tiles: HashMap<(TileKind, u64), Vec<u8>>,
}

impl MemoryTiles {
    /// An empty store.
    pub fn new() -> MemoryTiles {
        MemoryTiles::default()
    }

    /// Stores a tile's bytes, replacing a narrower state of it.
    pub fn put(&mut self, tile: Tile, data: Vec<u8>) {
        self.tiles.insert((tile.kind, tile.index), data);
    }

    /// The stored bytes of the tile, at the stored width.
    pub fn get(&self, kind: TileKind, index: u64) -> Option<&[u8]> {
        self.tiles.get(&(kind, index)).map(Vec::as_slice)
    }

    /// Number of stored tiles.
    pub fn len(&self) -> usize {
        self.tiles.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.tiles.is_empty()
    }
}

impl TileReader for MemoryTiles {
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>> {
        tiles
            .iter()
            .map(|t| {
                self.tiles
                    .get(&(t.kind, t.index))
                    .cloned()
                    .ok_or_else(|| Error::Read(format!("missing tile {t}").into()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip() {
        let cases = [
            (Tile::hashes(0, 0, 256), "tile/0/000"),
            (Tile::hashes(1, 1234067, 256), "tile/1/x001/x234/067"),
            (Tile::hashes(2, 1, 17), "tile/2/001.p/17"),
            (Tile::entries(1000, 3), "tile/entries/x001/000.p/3"),
        ];
        for (tile, path) in cases {
            assert_eq!(tile.path(), path);
            assert_eq!(Tile::parse_path(path).unwrap(), tile);
        }
        for bad in [
            "tile/0/0",
            "tile/0/x000/001",
            "tile/0/000.p/0",
            "tile/0/000.p/256",
            "tile/64/000",
            "tile/01/000",
            "tile/0/000.p/010",
            "tile/0/1000",
            "tile/0/000/",
            "tile/e/000",
            "tile/0/001/002",
            "tile/0/x001/02",
        ] {
            assert!(Tile::parse_path(bad).is_err(), "{bad}");
        }
    }
}
