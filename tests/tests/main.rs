//! Cross-crate tests: one binary, one module per flow.

mod audit;
mod authoring;
mod bad_input;
mod browser;
mod client_install;
mod client_verify;
mod faults;
mod federation;
mod pgxnclient;
mod proof_file;
mod publish;
mod search;
mod site;
