//! The transparency-log core of pgext: RFC 6962 Merkle trees stored as C2SP tlog-tiles,
//! inclusion and consistency proofs (built from tiles, verified strictly per RFC 9162),
//! C2SP signed notes, checkpoints, cosignatures, entry bundles, tlog-proof and tlog-policy files.
//!
//! The crate is pure: it never touches files, sockets or clocks. Storage comes in through the
//! [`TileReader`] and [`HashReader`] traits, time and randomness through arguments.
//!
//! ```
//! use pgext_log::{MemoryTiles, integrate, inclusion_proof, verify_inclusion, leaf_hash, TileHashReader};
//!
//! let mut store = MemoryTiles::new();
//! let batch = integrate(0, &[b"one".as_slice(), b"two", b"three"], &store).unwrap();
//! for (tile, bytes) in batch.tiles {
//!     store.put(tile, bytes);
//! }
//! let proof = inclusion_proof(1, batch.size, &TileHashReader::new(batch.size, &store)).unwrap();
//! verify_inclusion(1, batch.size, leaf_hash(b"two").as_ref(), &proof, batch.root.as_ref()).unwrap();
//! ```

mod bundle;
mod checkpoint;
mod error;
mod hash;
mod integrate;
mod note;
mod policy;
mod proof;
mod proof_file;
mod tile;
mod tree;
mod witness;

pub use bundle::{MAX_ENTRY_SIZE, bundle_entries, parse_bundle, push_entry};
pub use checkpoint::{Checkpoint, SignedCheckpoint, open_checkpoint};
pub use error::{Error, Result};
pub use hash::{HASH_SIZE, Hash, hex, leaf_hash, node_hash, sha256};
pub use integrate::{Integration, integrate, integrate_hashes};
pub use note::{
    KeyType, MAX_SIGNATURES, Note, NoteSignature, OpenedNote, SignerKey, VerifiedSignature,
    VerifierKey, cosigned_message, is_valid_key_name, key_id, open, sign,
};
pub use policy::{MAX_POLICY_ITEMS, Policy};
pub use proof::{verify_consistency, verify_inclusion};
pub use proof_file::ProofFile;
pub use tile::{
    MemoryTiles, TILE_HEIGHT, TILE_WIDTH, Tile, TileHashReader, TileKind, TileReader, hash_tile_at,
    tile_hashes, tiles_for_size,
};
pub use tree::{
    HashReader, StoredHashes, consistency_proof, inclusion_proof, split_stored_hash_index,
    stored_hash_count, stored_hash_index, tree_hash,
};
pub use witness::{AddCheckpoint, Refusal, SIZE_CONTENT_TYPE, check_add_checkpoint};
