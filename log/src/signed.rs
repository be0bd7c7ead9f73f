//! Opening a signed checkpoint: the log's signature, the origin it names, and whatever
//! cosignatures by known cosigners verified.

use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::keys::VerifierKey;
use crate::note::{OpenedNote, open};

/// A checkpoint signed by its log, with whatever cosignatures from `witnesses` verified.
#[derive(Debug, Clone)]
pub struct SignedCheckpoint {
    /// The parsed body.
    pub checkpoint: Checkpoint,
    /// The note and its verified signatures (the log's and the cosigners').
    pub note: OpenedNote,
}

/// Opens a signed checkpoint: the log key must have signed it and the origin must be the log
/// key's name; cosignatures by `witnesses` must verify if present (unknown ones are ignored).
///
/// # Errors
/// Note errors, [`Error::UnverifiedNote`] if the log key did not sign, or
/// [`Error::MalformedCheckpoint`].
pub fn open_checkpoint(
    msg: &[u8],
    log_key: &VerifierKey,
    witnesses: &[VerifierKey],
) -> Result<SignedCheckpoint> {
    let mut known = Vec::with_capacity(witnesses.len() + 1);
    known.push(log_key.clone());
    known.extend(witnesses.iter().filter(|w| *w != log_key).cloned());
    let note = open(msg, &known)?;
    if note.verified_by(log_key).is_none() {
        return Err(Error::UnverifiedNote);
    }
    let checkpoint = Checkpoint::parse(&note.note.text)?;
    if checkpoint.origin != log_key.name() {
        return Err(Error::MalformedCheckpoint(format!(
            "origin {:?} is not the log key's name {:?}",
            checkpoint.origin,
            log_key.name()
        )));
    }
    Ok(SignedCheckpoint { checkpoint, note })
}
