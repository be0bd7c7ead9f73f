//! Cross-crate tests: one binary, one module per flow.

mod advisories;
mod audit;
mod authoring;
mod bad_input;
mod binary;
mod browser;
mod categories;
mod client_install;
mod client_verify;
mod cosign;
mod counts;
mod deps;
mod faults;
mod federation;
mod fuzz;
mod hostile;
mod import;
mod keys;
mod lock;
mod papercuts;
mod pgxnclient;
mod private;
mod private_org;
mod proof_file;
mod publish;
mod readme;
mod requirements;
mod rootless;
mod search;
mod site;
mod tlog_mirror;
mod trusted;

/// Counts the heap, so the fuzzers can hold each decoder to a bound (`fuzz.rs`).
#[global_allocator]
static PEAK: peak_alloc::PeakAlloc = peak_alloc::PeakAlloc;
