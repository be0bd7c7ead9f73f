//! The pgext registry node. This first slice holds the durable store that the sequencer and
//! mirrors write tiles into; the sequencer, HTTP API and federation build on it.

pub mod store;
