//! The shapes of the node's HTTP answers that node and client share (`spec/openapi.json`):
//! the node serializes these types, the client deserializes the same ones, so the contract is
//! checked by the compiler on both sides.

use serde::{Deserialize, Serialize};

/// What a node answers (`201 Created`) once a submitted entry is durable in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Log index of the entry.
    pub index: u64,
    /// The signed checkpoint that includes it.
    pub checkpoint: String,
    /// A C2SP tlog-proof file for the entry, with the entry in its `extra` line
    /// (`spec/log.md`).
    pub proof: String,
}

/// One error of the one JSON error shape: `{"errors":[{"code":…,"detail":…}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorItem {
    /// Stable machine-readable code.
    pub code: String,
    /// What went wrong and what to do, for people.
    pub detail: String,
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// One or more errors; the first is the one that decided the status.
    pub errors: Vec<ErrorItem>,
}

impl ErrorBody {
    /// A body with one error.
    pub fn one(code: impl Into<String>, detail: impl Into<String>) -> ErrorBody {
        ErrorBody {
            errors: vec![ErrorItem {
                code: code.into(),
                detail: detail.into(),
            }],
        }
    }
}

/// Whose fault a refused request is, and so which HTTP status it gets. Carried as it is on the
/// peer wire, so a forwarded submission's refusal reaches its author unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Refusal {
    /// The request does not parse (400).
    BadRequest,
    /// The signer is unknown or its key is not active (401).
    Unauthorized,
    /// The signer may not do this (403).
    Forbidden,
    /// Nothing of that name here (404).
    NotFound,
    /// It exists already (409).
    Conflict,
    /// Larger than this node takes (413).
    TooLarge,
    /// Well-formed, but its content is refused (422).
    Invalid,
    /// This node does not sequence the origin (421).
    NotSequencer,
    /// Not now: halted, shutting down, or no sequencer reachable (503).
    Unavailable,
}

impl Refusal {
    /// The HTTP status of the refusal.
    pub fn status(self) -> u16 {
        match self {
            Refusal::BadRequest => 400,
            Refusal::Unauthorized => 401,
            Refusal::Forbidden => 403,
            Refusal::NotFound => 404,
            Refusal::Conflict => 409,
            Refusal::TooLarge => 413,
            Refusal::Invalid => 422,
            Refusal::NotSequencer => 421,
            Refusal::Unavailable => 503,
        }
    }
}
