//! Harness for pgext's cross-crate tests: locating the published vectors and, as the node
//! lands, spawning nodes on loopback.

use std::path::PathBuf;

/// The `spec/vectors` folder of the workspace.
pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors")
}
