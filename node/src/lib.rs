//! The pgext registry node, in layers whose imports point one way (`docs/ARCHITECTURE.md`):
//!
//! - [`origin`]: one log as the node holds it (store, blobs, release content, the state
//!   snapshot, the sequencer, the publish pipeline, a mirror's commit). No HTTP, no libp2p.
//! - [`p2p`]: the libp2p swarm and the typed peer wire. Knows no origin.
//! - [`federation`]: what the node does with peers (serving them, sync, gossip, witnessing,
//!   evidence, forwarding), on `origin` and `p2p`.
//! - [`search`]: each origin's tantivy index, derived from its log.
//! - [`serve`]: the HTTP router and its views (PGXN documents, native API, tiles, site, feeds,
//!   search), on everything below.
//! - [`webhooks`]: outbound notices of new releases.
//! - [`tools`]: read-only commands on a data folder (`vkey`, `reindex`, `fsck`, `export-pgxn`).
//! - [`node`]: wires it all together at start-up and stops it.

pub mod config;
pub mod durable;
pub mod federation;
pub mod html;
pub mod metrics;
pub mod node;
pub mod operator;
pub mod origin;
pub mod p2p;
pub mod search;
pub mod serve;
pub mod tools;
pub mod trusted;
pub mod webhooks;

pub use config::Config;
pub use node::Node;
