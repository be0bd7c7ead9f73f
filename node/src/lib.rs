//! The pgext registry node: the durable store, the sequencer, the publish pipeline and the HTTP
//! interface (PGXN-compatible documents, the log as C2SP tlog-tiles, the native API).

pub mod blobs;
pub mod config;
pub mod docs;
pub mod error;
pub mod export;
pub mod federation;
pub mod fsck;
pub mod http;
pub mod metrics;
pub mod node;
pub mod p2p;
pub mod pgxn;
pub mod publish;
pub mod search;
pub mod sequencer;
pub mod site;
pub mod store;
pub mod webhooks;

pub use config::Config;
pub use node::Node;
