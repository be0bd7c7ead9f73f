//! Tests of the `pgext-node` binary as a separate process.

mod crash;
