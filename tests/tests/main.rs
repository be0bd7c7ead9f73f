//! Cross-crate tests: one binary, one module per flow.

mod proof_file;
