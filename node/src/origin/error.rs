//! What can go wrong with an origin's log: a refusal (the request's fault, with a stable code
//! and who is to blame), or a fault of this node (its store, its blobs). The HTTP edge turns
//! these into statuses and the one JSON error shape; the peer wire carries refusals as they are.

use std::borrow::Cow;

pub use pgext_spec::api::Refusal;
use pgext_spec::authority::{Rule, Violation};

use super::blobs::BlobError;
use super::store::StoreError;

/// An origin's failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request is refused; `code` is stable (`spec/openapi.json`), `detail` says why and
    /// what to do.
    #[error("{detail}")]
    Refused {
        /// Whose fault.
        kind: Refusal,
        /// Stable machine-readable code.
        code: Cow<'static, str>,
        /// For people.
        detail: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A blob is missing or damaged, or the blob store failed.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// The log's tiles could not be read or computed.
    #[error("log: {0}")]
    Log(#[from] pgext_log::Error),
    /// Anything else that is this node's fault.
    #[error("{0}")]
    Internal(String),
}

/// Results of this layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A refusal.
    pub fn refused(
        kind: Refusal,
        code: impl Into<Cow<'static, str>>,
        detail: impl Into<String>,
    ) -> Error {
        Error::Refused {
            kind,
            code: code.into(),
            detail: detail.into(),
        }
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Error {
        Error::refused(Refusal::NotFound, "not-found", detail)
    }

    /// 400.
    pub fn bad_request(detail: impl Into<String>) -> Error {
        Error::refused(Refusal::BadRequest, "bad-request", detail)
    }

    /// 422 with a code.
    pub fn invalid(code: &'static str, detail: impl Into<String>) -> Error {
        Error::refused(Refusal::Invalid, code, detail)
    }

    /// 503.
    pub fn unavailable(code: &'static str, detail: impl Into<String>) -> Error {
        Error::refused(Refusal::Unavailable, code, detail)
    }

    /// A fault of this node.
    pub fn internal(detail: impl std::fmt::Display) -> Error {
        Error::Internal(detail.to_string())
    }
}

impl From<Violation> for Error {
    fn from(v: Violation) -> Error {
        let kind = match v.rule {
            Rule::UnknownActor | Rule::KeyNotActive | Rule::BadSignature => Refusal::Unauthorized,
            Rule::NotOwner | Rule::ExtensionOwned | Rule::NotOperator => Refusal::Forbidden,
            Rule::AccountExists
            | Rule::DuplicateVersion
            | Rule::KeyReused
            | Rule::DuplicateBuild
            | Rule::AlreadyClaimed => Refusal::Conflict,
            _ => Refusal::Invalid,
        };
        Error::refused(kind, v.rule.as_str(), v.to_string())
    }
}

impl From<pgext_spec::entry::EntryError> for Error {
    fn from(e: pgext_spec::entry::EntryError) -> Error {
        match e {
            pgext_spec::entry::EntryError::TooLarge(_) => {
                Error::refused(Refusal::TooLarge, "entry-too-large", e.to_string())
            }
            e => Error::bad_request(e.to_string()),
        }
    }
}

impl From<String> for Error {
    fn from(e: String) -> Error {
        Error::Internal(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Internal(format!("disk: {e}"))
    }
}
