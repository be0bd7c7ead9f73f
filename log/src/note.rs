//! C2SP signed-note: parsing notes, signing them, and opening a note against a set of trusted
//! keys (the keys and their algorithms are in `keys`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::error::{Error, Result};
use crate::keys::{SignerKey, VerifierKey, check_text, is_valid_key_name};

/// Notes with more signature lines than this are refused (the spec asks verifiers to accept at
/// least 16).
pub const MAX_SIGNATURES: usize = 100;

/// Signs `text` with each signer (cosigners at `time`), giving the full signed note.
///
/// # Errors
/// [`Error::MalformedNote`] if `text` is not valid note text.
pub fn sign(text: &str, signers: &[&SignerKey], time: u64) -> Result<String> {
    check_text(text)?;
    let mut out = format!("{text}\n");
    for s in signers {
        out.push_str(&s.signature_line(text, time)?);
    }
    Ok(out)
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// Key name.
    pub name: String,
    /// Key id (first 4 bytes of the decoded signature).
    pub key_id: u32,
    /// The signature bytes after the key id.
    pub sig: Vec<u8>,
}

impl NoteSignature {
    /// The line as written in the note, with its newline.
    pub fn line(&self) -> String {
        let mut raw = self.key_id.to_be_bytes().to_vec();
        raw.extend_from_slice(&self.sig);
        format!("— {} {}\n", self.name, STANDARD.encode(raw))
    }
}

/// A parsed, not yet verified, note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The signed text, ending in a newline.
    pub text: String,
    /// Signature lines in order.
    pub signatures: Vec<NoteSignature>,
}

impl Note {
    /// Parses a signed note.
    ///
    /// # Errors
    /// [`Error::MalformedNote`] when it does not follow C2SP signed-note.
    pub fn parse(msg: &[u8]) -> Result<Note> {
        let bad = |why: &str| Error::MalformedNote(why.to_string());
        let msg = std::str::from_utf8(msg).map_err(|_| bad("not UTF-8"))?;
        if msg.chars().any(|c| c.is_control() && c != '\n') {
            return Err(bad("control characters"));
        }
        let split = msg
            .rfind("\n\n")
            .ok_or_else(|| bad("no blank line before the signatures"))?;
        let text = &msg[..split + 1];
        let sigs = &msg[split + 2..];
        // Opening is as lenient as the spec allows: a blank line may sit inside the text.
        if text.len() < 2 {
            return Err(bad("empty text"));
        }
        if sigs.is_empty() || !sigs.ends_with('\n') {
            return Err(bad(
                "signature block must be non-empty lines ending in newline",
            ));
        }
        let mut signatures = Vec::new();
        for line in sigs[..sigs.len() - 1].split('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return Err(bad("too many signatures"));
            }
            let rest = line
                .strip_prefix("— ")
                .ok_or_else(|| bad("signature line must start with \"— \""))?;
            let (name, b64) = rest
                .split_once(' ')
                .ok_or_else(|| bad("signature line needs a name and a signature"))?;
            if !is_valid_key_name(name) {
                return Err(bad("invalid key name in signature line"));
            }
            let raw = STANDARD
                .decode(b64)
                .map_err(|_| bad("signature is not base64"))?;
            if raw.len() < 5 {
                return Err(bad("signature too short"));
            }
            signatures.push(NoteSignature {
                name: name.to_string(),
                key_id: u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]),
                sig: raw[4..].to_vec(),
            });
        }
        Ok(Note {
            text: text.to_string(),
            signatures,
        })
    }

    /// The note's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = format!("{}\n", self.text);
        for sig in &self.signatures {
            s.push_str(&sig.line());
        }
        s.into_bytes()
    }
}

/// A signature that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    /// Key name.
    pub name: String,
    /// Key id.
    pub key_id: u32,
    /// Cosignature timestamp (seconds since the epoch), for cosignature keys.
    pub time: Option<u64>,
}

/// A note whose trusted signatures all verified.
#[derive(Debug, Clone)]
pub struct OpenedNote {
    /// The note as parsed.
    pub note: Note,
    /// Signatures by known keys; all verified.
    pub verified: Vec<VerifiedSignature>,
}

impl OpenedNote {
    /// Whether a given key verified.
    pub fn verified_by(&self, key: &VerifierKey) -> Option<&VerifiedSignature> {
        self.verified
            .iter()
            .find(|v| v.name == key.name() && v.key_id == key.key_id())
    }
}

/// Parses `msg` and verifies it against `known`: signatures by unknown keys are ignored, a known
/// key's signature must verify (else the note is refused), a known key may sign once, and at
/// least one known key must have signed.
///
/// # Errors
/// [`Error::MalformedNote`], [`Error::InvalidSignature`] or [`Error::UnverifiedNote`].
pub fn open(msg: &[u8], known: &[VerifierKey]) -> Result<OpenedNote> {
    let note = Note::parse(msg)?;
    let mut verified: Vec<VerifiedSignature> = Vec::new();
    for sig in &note.signatures {
        let Some(key) = known
            .iter()
            .find(|k| k.name() == sig.name && k.key_id() == sig.key_id)
        else {
            continue;
        };
        if verified
            .iter()
            .any(|v| v.name == sig.name && v.key_id == sig.key_id)
        {
            return Err(Error::MalformedNote(format!(
                "key {}+{:08x} signed twice",
                sig.name, sig.key_id
            )));
        }
        let time = key
            .verify(&note.text, &sig.sig)
            .ok_or_else(|| Error::InvalidSignature {
                name: sig.name.clone(),
                key_id: sig.key_id,
            })?;
        verified.push(VerifiedSignature {
            name: sig.name.clone(),
            key_id: sig.key_id,
            time,
        });
    }
    if verified.is_empty() {
        return Err(Error::UnverifiedNote);
    }
    Ok(OpenedNote { note, verified })
}
