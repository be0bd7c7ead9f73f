//! Evidence of a split view: two signed checkpoints of one origin that do not fit one tree. It
//! is kept for good with the origin's log, and an origin with evidence does not advance here.
//! Reading it fails closed: evidence that cannot be read or parsed halts the origin too, and is
//! never overwritten.

use pgext_log::{Note, VerifierKey, open_checkpoint};

use super::store::{META_EVIDENCE, Store};

pub use pgext_spec::api::Evidence;

/// Evidence against the log of `vkey`: two notes, kept with only the log's signature.
pub fn new(vkey: &VerifierKey, reason: String, a: &str, b: &str, now: u64) -> Evidence {
    Evidence {
        origin: vkey.name().to_string(),
        reason,
        notes: [
            strip_to_log_signature(a, vkey),
            strip_to_log_signature(b, vkey),
        ],
        detected: now,
    }
}

/// Whether two pieces of evidence hold the same two notes, in either order.
pub fn same_notes(a: &Evidence, b: &Evidence) -> bool {
    a.notes == b.notes || a.notes == [b.notes[1].clone(), b.notes[0].clone()]
}

/// Whether evidence proves itself: both notes verify with the log key, have one size and
/// different roots.
pub fn proves_itself(ev: &Evidence, vkey: &VerifierKey) -> bool {
    let (Ok(a), Ok(b)) = (
        open_checkpoint(ev.notes[0].as_bytes(), vkey, &[]),
        open_checkpoint(ev.notes[1].as_bytes(), vkey, &[]),
    ) else {
        return false;
    };
    a.checkpoint.size == b.checkpoint.size && a.checkpoint.root != b.checkpoint.root
}

/// What the store holds as evidence: the list, or why it cannot be read.
pub type Stored = Result<Vec<Evidence>, String>;

/// Reads the stored evidence. An unreadable or unparseable record is not "no evidence": it is
/// returned as an error, and the origin starts halted.
pub fn read(store: &Store) -> Stored {
    match store.meta(META_EVIDENCE) {
        Ok(None) => Ok(Vec::new()),
        Ok(Some(bytes)) => serde_json::from_slice(&bytes)
            .map_err(|e| format!("the stored evidence of a split view does not parse: {e}")),
        Err(e) => Err(format!(
            "the stored evidence of a split view cannot be read: {e}"
        )),
    }
}

/// The note with only the log's own signature.
pub fn strip_to_log_signature(note: &str, vkey: &VerifierKey) -> String {
    match Note::parse(note.as_bytes()) {
        Ok(mut n) => {
            n.signatures
                .retain(|s| s.name == vkey.name() && s.key_id == vkey.key_id());
            String::from_utf8(n.to_bytes()).unwrap_or_default()
        }
        Err(_) => note.to_string(),
    }
}
