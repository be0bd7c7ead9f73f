//! The node's durable store: RocksDB column families for tiles and entry bundles (each kept
//! under its full-width coordinates at its widest state) and small metadata such as the latest
//! checkpoint. Everything one sequencing round produces is written in one synced batch, so a
//! crash leaves either all of it or none of it. Everything here blocks on the disk: the origin
//! calls it from the blocking pool.

use std::path::Path;

use pgext_log::{TILE_WIDTH, Tile, TileKind, TileReader, bundle_entries};
use rocksdb::{ColumnFamilyDescriptor, DB, Options, WriteBatch, WriteOptions};

const CF_TILES: &str = "tiles";
const CF_META: &str = "meta";

/// Store failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// RocksDB refused an operation.
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// A column family is missing (a store from another program).
    #[error("column family {0} is missing")]
    MissingColumnFamily(&'static str),
    /// No store in a folder opened read-only.
    #[error("no store in {0}")]
    NoStore(String),
}

/// The RocksDB-backed store of one node.
#[derive(Debug)]
pub struct Store {
    db: DB,
}

/// Key of a tile: kind byte (level, or 0xff for bundles) then the big-endian index, so tiles of a
/// level sort by index.
fn tile_key(kind: TileKind, index: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = match kind {
        TileKind::Hashes(level) => level,
        TileKind::Entries => 0xff,
    };
    k[1..].copy_from_slice(&index.to_be_bytes());
    k
}

impl Store {
    /// Opens (creating if needed) the store in `dir`.
    ///
    /// # Errors
    /// When RocksDB cannot open the directory.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let cfs = [CF_TILES, CF_META].map(|n| ColumnFamilyDescriptor::new(n, Options::default()));
        let db = DB::open_cf_descriptors(&opts, dir, cfs)?;
        Ok(Store { db })
    }

    /// Opens an existing store read-only (`fsck`, `reindex`, `export-pgxn`): nothing is
    /// created or changed, and a running node may hold the store meanwhile.
    ///
    /// # Errors
    /// When there is no store in `dir`, or RocksDB cannot read it.
    pub fn open_read_only(dir: &Path) -> Result<Store, StoreError> {
        if !dir.join("CURRENT").is_file() {
            return Err(StoreError::NoStore(dir.display().to_string()));
        }
        let opts = Options::default();
        let db = DB::open_cf_for_read_only(&opts, dir, [CF_TILES, CF_META], false)?;
        Ok(Store { db })
    }

    fn cf(&self, name: &'static str) -> Result<&rocksdb::ColumnFamily, StoreError> {
        self.db
            .cf_handle(name)
            .ok_or(StoreError::MissingColumnFamily(name))
    }

    /// Writes tiles and metadata in one batch, synced to disk before returning.
    ///
    /// # Errors
    /// When RocksDB fails; then nothing of the batch is visible.
    pub fn commit(
        &self,
        tiles: &[(Tile, Vec<u8>)],
        meta: &[(&str, &[u8])],
    ) -> Result<(), StoreError> {
        self.write(tiles, meta, true)
    }

    /// Writes metadata in one batch without waiting for the disk: for what may be lost in a
    /// crash and made again (a collected cosignature). The next synced commit makes it durable.
    ///
    /// # Errors
    /// When RocksDB fails; then nothing of the batch is visible.
    pub fn commit_unsynced(&self, meta: &[(&str, &[u8])]) -> Result<(), StoreError> {
        self.write(&[], meta, false)
    }

    fn write(
        &self,
        tiles: &[(Tile, Vec<u8>)],
        meta: &[(&str, &[u8])],
        sync: bool,
    ) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        let tiles_cf = self.cf(CF_TILES)?;
        for (tile, data) in tiles {
            batch.put_cf(tiles_cf, tile_key(tile.kind, tile.index), data);
        }
        let meta_cf = self.cf(CF_META)?;
        for (k, v) in meta {
            batch.put_cf(meta_cf, k.as_bytes(), v);
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        self.db.write_opt(batch, &wo)?;
        Ok(())
    }

    /// A metadata value.
    ///
    /// # Errors
    /// When RocksDB fails.
    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(CF_META)?, key.as_bytes())?)
    }

    /// Every metadata value whose key starts with `prefix`, in key order.
    ///
    /// # Errors
    /// When RocksDB fails.
    pub fn meta_with_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        let iter = self.db.iterator_cf(
            self.cf(CF_META)?,
            rocksdb::IteratorMode::From(prefix.as_bytes(), rocksdb::Direction::Forward),
        );
        for item in iter {
            let (k, v) = item?;
            if !k.starts_with(prefix.as_bytes()) {
                break;
            }
            out.push((String::from_utf8_lossy(&k).to_string(), v.to_vec()));
        }
        Ok(out)
    }

    /// The stored bytes of a tile at its widest state.
    ///
    /// # Errors
    /// When RocksDB fails.
    pub fn tile(&self, kind: TileKind, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(CF_TILES)?, tile_key(kind, index))?)
    }
}

/// Metadata key of the latest signed checkpoint.
pub const META_CHECKPOINT: &str = "checkpoint";
/// Key of the evidence of split views (JSON list) in the meta column family.
pub const META_EVIDENCE: &str = "evidence";

impl Store {
    /// The latest signed checkpoint note, if any.
    ///
    /// # Errors
    /// When RocksDB fails.
    pub fn checkpoint(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.meta(META_CHECKPOINT)
    }

    /// The entries of the tree of `size` leaves, from `start` on, bundle by bundle.
    ///
    /// # Errors
    /// When a bundle is missing or malformed.
    pub fn entries(&self, start: u64, size: u64) -> pgext_log::Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        let mut index = start;
        while index < size {
            let bundle = index / TILE_WIDTH;
            let width = (size - bundle * TILE_WIDTH).min(TILE_WIDTH) as u16;
            let tile = Tile::entries(bundle, width);
            let data = self.read_tiles(&[tile])?.pop().unwrap_or_default();
            let entries = bundle_entries(&tile, &data)?;
            let skip = (index - bundle * TILE_WIDTH) as usize;
            out.extend(entries[skip..].iter().map(|e| e.to_vec()));
            index = bundle * TILE_WIDTH + u64::from(width);
        }
        Ok(out)
    }
}

impl TileReader for Store {
    fn read_tiles(&self, tiles: &[Tile]) -> pgext_log::Result<Vec<Vec<u8>>> {
        let cf = self
            .cf(CF_TILES)
            .map_err(|e| pgext_log::Error::Read(Box::new(e)))?;
        let keys: Vec<_> = tiles
            .iter()
            .map(|t| (cf, tile_key(t.kind, t.index)))
            .collect();
        self.db
            .multi_get_cf(keys)
            .into_iter()
            .zip(tiles)
            .map(|(r, t)| match r {
                Ok(Some(v)) => Ok(v),
                Ok(None) => Err(pgext_log::Error::Read(format!("missing tile {t}").into())),
                Err(e) => Err(pgext_log::Error::Read(Box::new(e))),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use pgext_log::{TileHashReader, inclusion_proof, integrate, leaf_hash, verify_inclusion};

    use super::*;

    #[test]
    fn integrated_tiles_survive_reopen_and_serve_proofs() {
        let dir = tempfile::tempdir().unwrap();
        let entries: Vec<Vec<u8>> = (0..600u32)
            .map(|i| format!("entry {i}").into_bytes())
            .collect();
        let (size, root) = {
            let store = Store::open(dir.path()).unwrap();
            let mut size = 0;
            let mut root = None;
            for chunk in entries.chunks(77) {
                let batch = integrate(size, chunk, &store).unwrap();
                store
                    .commit(&batch.tiles, &[("size", &batch.size.to_be_bytes())])
                    .unwrap();
                size = batch.size;
                root = Some(batch.root);
            }
            (size, root.unwrap())
        };
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.meta("size").unwrap().unwrap(), 600u64.to_be_bytes());
        let reader = TileHashReader::new(size, &store);
        for i in [0u64, 255, 256, 599] {
            let proof = inclusion_proof(i, size, &reader).unwrap();
            verify_inclusion(
                i,
                size,
                leaf_hash(&entries[i as usize]).as_ref(),
                &proof,
                root.as_ref(),
            )
            .unwrap();
        }
    }
}
