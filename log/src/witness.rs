//! C2SP tlog-witness `add-checkpoint`: the request body and the checks a witness makes before it
//! cosigns, with the answer codes the spec assigns to each refusal.
//!
//! The request is `old <size>`, then the RFC 6962 consistency proof from `old` to the new
//! checkpoint's size (one base64 hash per line, at most 63), a blank line, and the signed
//! checkpoint.

use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::keys::VerifierKey;
use crate::note::Note;
use crate::proof::verify_consistency;
use crate::proof_file::{Lines, finish};
use crate::signed::{SignedCheckpoint, open_checkpoint};
use crate::tile::parse_decimal;

/// Content type of the 409 answer, whose body is the witness's latest size and a newline.
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// An `add-checkpoint` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size the submitter believes the witness last cosigned.
    pub old: u64,
    /// Consistency proof from `old` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint, verbatim.
    pub checkpoint: Vec<u8>,
}

impl AddCheckpoint {
    /// The request body.
    pub fn to_bytes(&self) -> Vec<u8> {
        finish(format!("old {}\n", self.old), &self.proof, &self.checkpoint)
    }

    /// Parses a request body.
    ///
    /// # Errors
    /// [`Error::MalformedWitnessRequest`], saying what is wrong.
    pub fn parse(body: &[u8]) -> Result<AddCheckpoint> {
        let bad = |why: &str| Error::MalformedWitnessRequest(why.to_string());
        let mut lines = Lines { rest: body };
        let old = lines
            .next(bad)?
            .strip_prefix("old ")
            .and_then(parse_decimal)
            .ok_or_else(|| bad("the first line must be \"old <size>\""))?;
        let proof = lines.hashes(bad)?;
        if lines.rest.is_empty() {
            return Err(bad("missing checkpoint"));
        }
        Ok(AddCheckpoint {
            old,
            proof,
            checkpoint: lines.rest.to_vec(),
        })
    }

    /// The origin the checkpoint names (its first line), before any signature is checked: the
    /// witness needs it to find the log's key.
    pub fn origin(&self) -> Option<String> {
        let note = Note::parse(&self.checkpoint).ok()?;
        note.text.lines().next().map(str::to_string)
    }
}

/// Why a witness does not cosign, with the status the spec gives it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// 400: the request does not parse, or `old` is larger than the checkpoint.
    #[error("{0}")]
    BadRequest(String),
    /// 403: the checkpoint is not signed by the log's key.
    #[error("{0}")]
    Forbidden(String),
    /// 404: the witness does not know this log.
    #[error("{0}")]
    UnknownLog(String),
    /// 409: `old` is not the size the witness last cosigned; carries that size.
    #[error("the witness's latest cosigned size is {0}")]
    Conflict(u64),
    /// 422: the checkpoint is not consistent with what the witness cosigned.
    #[error("{0}")]
    Inconsistent(String),
}

impl Refusal {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::BadRequest(_) => 400,
            Refusal::Forbidden(_) => 403,
            Refusal::UnknownLog(_) => 404,
            Refusal::Conflict(_) => 409,
            Refusal::Inconsistent(_) => 422,
        }
    }

    /// The answer body: the size and a newline for 409, the reason otherwise.
    pub fn body(&self) -> String {
        match self {
            Refusal::Conflict(size) => format!("{size}\n"),
            other => format!("{other}\n"),
        }
    }
}

/// Checks an `add-checkpoint` request against the log's key and the witness's latest cosigned
/// tree (`size`, `root`), in the order the spec gives. Returns the opened checkpoint, which the
/// witness may cosign once it has stored it as its latest.
///
/// # Errors
/// The [`Refusal`] the spec prescribes.
pub fn check_add_checkpoint(
    req: &AddCheckpoint,
    log_key: &VerifierKey,
    latest: (u64, Hash),
) -> std::result::Result<SignedCheckpoint, Refusal> {
    let signed = open_checkpoint(&req.checkpoint, log_key, &[])
        .map_err(|e| Refusal::Forbidden(format!("the checkpoint does not verify: {e}")))?;
    let new = &signed.checkpoint;
    if req.old > new.size {
        return Err(Refusal::BadRequest(format!(
            "old size {} is larger than the checkpoint's size {}",
            req.old, new.size
        )));
    }
    let (size, root) = latest;
    if req.old != size {
        return Err(Refusal::Conflict(size));
    }
    if new.size == 0 && new.root != Hash::empty_root() {
        return Err(Refusal::Inconsistent(
            "an empty tree must have the empty root".into(),
        ));
    }
    if req.old == 0 {
        if !req.proof.is_empty() {
            return Err(Refusal::Inconsistent(
                "a proof from size 0 must be empty".into(),
            ));
        }
        return Ok(signed);
    }
    verify_consistency(
        req.old,
        new.size,
        &req.proof,
        root.as_ref(),
        new.root.as_ref(),
    )
    .map_err(|e| {
        Refusal::Inconsistent(format!(
            "not consistent with the tree of size {size} cosigned here: {e}"
        ))
    })?;
    Ok(signed)
}
