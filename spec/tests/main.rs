//! The shapes node and client exchange, held by snapshots: every HTTP answer of the native API
//! as JSON, and every peer message as the CBOR bytes that travel. A change to any of them shows
//! up here as a diff to review, never silently.

mod shapes;
