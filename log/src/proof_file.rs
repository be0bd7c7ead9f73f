//! C2SP tlog-proof files (`*.tlog-proof`): an entry's index, its inclusion proof and the
//! checkpoint (with cosignatures) it leads to, verifiable offline.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::keys::VerifierKey;
use crate::proof::verify_inclusion;
use crate::signed::{SignedCheckpoint, open_checkpoint};
use crate::tile::parse_decimal;

const HEADER: &str = "c2sp.org/tlog-proof@v1";

/// Ends a line-based C2SP body: proof hashes one per line, a blank line, then the note.
pub(crate) fn finish(mut head: String, proof: &[Hash], note: &[u8]) -> Vec<u8> {
    for h in proof {
        head.push_str(&h.to_base64());
        head.push('\n');
    }
    head.push('\n');
    let mut out = head.into_bytes();
    out.extend_from_slice(note);
    out
}

/// Reads the line-based C2SP formats (tlog-proof files, tlog-witness requests): header lines,
/// then up to 63 base64 hashes ended by a blank line, then a note.
pub(crate) struct Lines<'a> {
    pub(crate) rest: &'a [u8],
}

impl<'a> Lines<'a> {
    /// The next line, without its newline.
    pub(crate) fn next(&mut self, bad: impl Fn(&str) -> Error) -> Result<&'a str> {
        let end = self
            .rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| bad("truncated"))?;
        let line = std::str::from_utf8(&self.rest[..end]).map_err(|_| bad("not UTF-8"))?;
        self.rest = &self.rest[end + 1..];
        Ok(line)
    }

    /// Proof hashes, one per line, up to the blank line.
    pub(crate) fn hashes(&mut self, bad: impl Fn(&str) -> Error) -> Result<Vec<Hash>> {
        let mut proof = Vec::new();
        loop {
            let line = self.next(&bad)?;
            if line.is_empty() {
                return Ok(proof);
            }
            if proof.len() == 63 {
                return Err(bad("more than 63 proof hashes"));
            }
            proof.push(
                Hash::from_base64(line)
                    .ok_or_else(|| bad("proof line is not base64 of 32 bytes"))?,
            );
        }
    }
}

/// A tlog-proof file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofFile {
    /// Opaque, unauthenticated application data.
    pub extra: Option<Vec<u8>>,
    /// The entry's index in the log.
    pub index: u64,
    /// Inclusion proof from the leaf's sibling up.
    pub proof: Vec<Hash>,
    /// The signed checkpoint, verbatim.
    pub checkpoint: Vec<u8>,
}

impl ProofFile {
    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = format!("{HEADER}\n");
        if let Some(extra) = &self.extra {
            s.push_str(&format!("extra {}\n", STANDARD.encode(extra)));
        }
        s.push_str(&format!("index {}\n", self.index));
        finish(s, &self.proof, &self.checkpoint)
    }

    /// Parses a file.
    ///
    /// # Errors
    /// [`Error::MalformedProofFile`] when it does not follow C2SP tlog-proof.
    pub fn parse(data: &[u8]) -> Result<ProofFile> {
        let bad = |why: &str| Error::MalformedProofFile(why.to_string());
        let mut lines = Lines { rest: data };
        if lines.next(bad)? != HEADER {
            return Err(bad("first line must be c2sp.org/tlog-proof@v1"));
        }
        let mut line = lines.next(bad)?;
        let mut extra = None;
        if let Some(b64) = line.strip_prefix("extra ") {
            extra = Some(
                STANDARD
                    .decode(b64)
                    .map_err(|_| bad("extra is not base64"))?,
            );
            line = lines.next(bad)?;
        }
        let index = line
            .strip_prefix("index ")
            .and_then(parse_decimal)
            .ok_or_else(|| bad("expected \"index N\""))?;
        let proof = lines.hashes(bad)?;
        let rest = lines.rest;
        if rest.is_empty() {
            return Err(bad("missing checkpoint"));
        }
        Ok(ProofFile {
            extra,
            index,
            proof,
            checkpoint: rest.to_vec(),
        })
    }

    /// Verifies offline that `leaf_hash` is in the log: the checkpoint is signed by `log_key`
    /// (origin = key name), cosignatures by `witnesses` verify, and the inclusion proof leads
    /// from the leaf to the checkpoint's root. Returns the checkpoint with the cosigners that
    /// verified, for the caller's quorum policy.
    ///
    /// # Errors
    /// Any failed check.
    pub fn verify(
        &self,
        leaf_hash: &Hash,
        log_key: &VerifierKey,
        witnesses: &[VerifierKey],
    ) -> Result<SignedCheckpoint> {
        let signed = open_checkpoint(&self.checkpoint, log_key, witnesses)?;
        verify_inclusion(
            self.index,
            signed.checkpoint.size,
            leaf_hash.as_ref(),
            &self.proof,
            signed.checkpoint.root.as_ref(),
        )?;
        Ok(signed)
    }
}
