//! Tests of the log core over the published vectors in `spec/vectors/tlog` and property tests.
//! Expected values come from the vector files, never from the code under test.

mod c2sp;
mod ct;
mod mldsa;
mod notes;
mod props;
mod rfc6962;
mod subtree;
mod sunlight;
mod tessera;
mod tiles;
mod witness;

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// A file of `spec/vectors/tlog`.
pub(crate) fn vector_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../spec/vectors/tlog")
        .join(rel)
}

pub(crate) fn read(rel: &str) -> Vec<u8> {
    std::fs::read(vector_path(rel)).unwrap_or_else(|e| panic!("reading vector {rel}: {e}"))
}

pub(crate) fn read_text(rel: &str) -> String {
    String::from_utf8(read(rel)).unwrap()
}

pub(crate) fn b64(s: &str) -> Vec<u8> {
    STANDARD
        .decode(s)
        .unwrap_or_else(|e| panic!("vector base64 {s:?}: {e}"))
}

pub(crate) fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Integrates entries one batch at a time into an in-memory store.
pub(crate) fn build_log<E: AsRef<[u8]>>(
    entries: &[E],
    batch: usize,
) -> (pgext_log::MemoryTiles, pgext_log::Hash) {
    let mut store = pgext_log::MemoryTiles::new();
    let mut size = 0;
    let mut root = pgext_log::Hash::empty_root();
    for chunk in entries.chunks(batch.max(1)) {
        let out = pgext_log::integrate(size, chunk, &store).unwrap();
        for (t, d) in out.tiles {
            store.put(t, d);
        }
        size = out.size;
        root = out.root;
    }
    (store, root)
}
