//! The transparency-log core of pgext: RFC 6962 Merkle trees stored as C2SP tlog-tiles,
//! inclusion and consistency proofs (built from tiles, verified strictly per RFC 9162),
//! C2SP signed notes, checkpoints, cosignatures (Ed25519 and ML-DSA-44), entry bundles, subtree consistency proofs (for C2SP
//! tlog-mirror), tlog-proof and tlog-policy files.
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
mod keys;
mod note;
mod policy;
mod proof;
mod proof_file;
mod signed;
mod subtree;
mod tile;
mod tree;
mod witness;

pub use bundle::{MAX_ENTRY_SIZE, bundle_entries, parse_bundle, push_entry};
pub use checkpoint::Checkpoint;
pub use error::{Error, Result};
pub use hash::{HASH_SIZE, Hash, hex, leaf_hash, node_hash, sha256};
pub use integrate::{Integration, integrate, integrate_hashes};
pub use keys::{
    KeyType, ML_DSA_44_PUBLIC_KEY_SIZE, ML_DSA_44_SIGNATURE_SIZE, SignerKey, VerifierKey,
    cosigned_message, is_valid_key_name, key_id, subtree_message,
};
pub use note::{MAX_SIGNATURES, Note, NoteSignature, OpenedNote, VerifiedSignature, open, sign};
pub use policy::{MAX_POLICY_ITEMS, Policy};
pub use proof::{verify_consistency, verify_inclusion};
pub use proof_file::ProofFile;
pub use signed::{SignedCheckpoint, open_checkpoint};
pub use subtree::{
    is_valid_subtree, subtree_consistency_proof, subtree_hash, verify_subtree_consistency,
};
pub use tile::{
    MemoryTiles, TILE_HEIGHT, TILE_WIDTH, Tile, TileHashReader, TileKind, TileReader, hash_tile_at,
    tile_hashes, tiles_for_size,
};
pub use tree::{
    HashReader, StoredHashes, consistency_proof, inclusion_proof, split_stored_hash_index,
    stored_hash_count, stored_hash_index, tree_hash,
};
pub use witness::{AddCheckpoint, Refusal, SIZE_CONTENT_TYPE, check_add_checkpoint};
