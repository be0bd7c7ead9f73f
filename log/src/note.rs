//! C2SP signed-note: Ed25519 note signatures (type 0x01) and Ed25519 cosignatures
//! (C2SP tlog-cosignature, `cosignature/v1`, type 0x04), verifier-key and private-key text
//! formats, and opening a note against a set of trusted keys.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use crate::error::{Error, Result};
use crate::hash::sha256;

/// Notes with more signature lines than this are refused (the spec asks verifiers to accept at
/// least 16).
pub const MAX_SIGNATURES: usize = 100;

/// The signature algorithms pgext signs and verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// Ed25519 over the note text (log keys): 0x01.
    Ed25519,
    /// Ed25519 cosignature/v1 with a timestamp (witnesses and mirrors): 0x04.
    Cosignature,
}

impl KeyType {
    /// The algorithm byte of the key encoding.
    pub fn byte(self) -> u8 {
        match self {
            KeyType::Ed25519 => 0x01,
            KeyType::Cosignature => 0x04,
        }
    }

    fn from_byte(b: u8) -> Option<KeyType> {
        match b {
            0x01 => Some(KeyType::Ed25519),
            0x04 => Some(KeyType::Cosignature),
            _ => None,
        }
    }
}

/// The 4-byte key id: SHA-256(name ‖ "\n" ‖ type ‖ public key)[:4], big-endian.
pub fn key_id(name: &str, kind: KeyType, public: &[u8; 32]) -> u32 {
    let mut buf = Vec::with_capacity(name.len() + 34);
    buf.extend_from_slice(name.as_bytes());
    buf.push(b'\n');
    buf.push(kind.byte());
    buf.extend_from_slice(public);
    let h = sha256(&buf);
    u32::from_be_bytes([h[0], h[1], h[2], h[3]])
}

/// Key names are non-empty UTF-8 without spaces or `+`.
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// Splits `name+hexid+base64` at the first two `+` only: the base64 may contain `+`.
fn split_key_text(text: &str) -> Result<(&str, u32, Vec<u8>)> {
    let bad = |why: &str| Error::MalformedKey(format!("{why}: {text:?}"));
    let mut parts = text.splitn(3, '+');
    let (Some(name), Some(id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("expected name+keyid+key"));
    };
    if !is_valid_key_name(name) {
        return Err(bad("invalid key name"));
    }
    if id.len() != 8
        || !id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return Err(bad("key id is not 8 lower-case hex digits"));
    }
    let id = u32::from_str_radix(id, 16).map_err(|_| bad("key id"))?;
    let key = STANDARD.decode(b64).map_err(|_| bad("key is not base64"))?;
    Ok((name, id, key))
}

/// A verifier key: `name+hexid+base64(type ‖ public key)`.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    key_id: u32,
    kind: KeyType,
    key: VerifyingKey,
}

impl VerifierKey {
    /// A verifier for an Ed25519 public key.
    ///
    /// # Errors
    /// [`Error::MalformedKey`] for an invalid name or a point that is not a valid public key.
    pub fn new(name: &str, kind: KeyType, public: &[u8; 32]) -> Result<VerifierKey> {
        if !is_valid_key_name(name) {
            return Err(Error::MalformedKey(format!("invalid key name {name:?}")));
        }
        let key = VerifyingKey::from_bytes(public)
            .map_err(|_| Error::MalformedKey(format!("{name}: not an Ed25519 public key")))?;
        // Small-order keys can "verify" forged signatures: refuse them up front.
        if key.is_weak() {
            return Err(Error::MalformedKey(format!(
                "{name}: weak Ed25519 public key"
            )));
        }
        Ok(VerifierKey {
            name: name.to_string(),
            key_id: key_id(name, kind, public),
            kind,
            key,
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The algorithm.
    pub fn kind(&self) -> KeyType {
        self.kind
    }

    /// The raw public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// Verifies a signature as found in a note's signature line (without the key id).
    /// Returns the cosignature timestamp for cosignature keys.
    fn verify(&self, text: &str, sig: &[u8]) -> Option<Option<u64>> {
        match self.kind {
            KeyType::Ed25519 => {
                let sig = Signature::from_slice(sig).ok()?;
                self.key.verify_strict(text.as_bytes(), &sig).ok()?;
                Some(None)
            }
            KeyType::Cosignature => {
                if sig.len() != 72 {
                    return None;
                }
                let time = u64::from_be_bytes(sig[..8].try_into().ok()?);
                let sig = Signature::from_slice(&sig[8..]).ok()?;
                self.key
                    .verify_strict(cosigned_message(time, text).as_bytes(), &sig)
                    .ok()?;
                Some(Some(time))
            }
        }
    }
}

/// What a cosignature signs: `cosignature/v1\ntime <t>\n` followed by the checkpoint text.
pub fn cosigned_message(time: u64, text: &str) -> String {
    format!("cosignature/v1\ntime {time}\n{text}")
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = vec![self.kind.byte()];
        raw.extend_from_slice(self.key.as_bytes());
        write!(
            f,
            "{}+{:08x}+{}",
            self.name,
            self.key_id,
            STANDARD.encode(raw)
        )
    }
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierKey({self})")
    }
}

impl FromStr for VerifierKey {
    type Err = Error;

    /// Parses `name+hexid+base64(type ‖ key)`, checking that the id matches the key.
    fn from_str(text: &str) -> Result<VerifierKey> {
        let (name, id, raw) = split_key_text(text.trim_end_matches('\n'))?;
        let Some((&type_byte, public)) = raw.split_first() else {
            return Err(Error::MalformedKey(format!("{name}: empty key")));
        };
        let kind = KeyType::from_byte(type_byte).ok_or_else(|| {
            Error::MalformedKey(format!("{name}: unsupported key type 0x{type_byte:02x}"))
        })?;
        let public: [u8; 32] = public.try_into().map_err(|_| {
            Error::MalformedKey(format!("{name}: key is {} bytes, not 32", public.len()))
        })?;
        let key = VerifierKey::new(name, kind, &public)?;
        if key.key_id != id {
            return Err(Error::MalformedKey(format!(
                "{name}: key id {id:08x} does not match the key (expected {:08x})",
                key.key_id
            )));
        }
        Ok(key)
    }
}

/// A signing key with its name: log keys sign notes, witness and mirror keys cosign.
pub struct SignerKey {
    name: String,
    kind: KeyType,
    key: SigningKey,
    verifier: VerifierKey,
}

impl fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret.
        write!(f, "SignerKey({})", self.verifier)
    }
}

impl SignerKey {
    /// A signer from a 32-byte Ed25519 seed. Pure: the caller brings the randomness.
    ///
    /// # Errors
    /// [`Error::MalformedKey`] for an invalid name.
    pub fn from_seed(name: &str, kind: KeyType, seed: &[u8; 32]) -> Result<SignerKey> {
        let key = SigningKey::from_bytes(seed);
        let verifier = VerifierKey::new(name, kind, key.verifying_key().as_bytes())?;
        Ok(SignerKey {
            name: name.to_string(),
            kind,
            key,
            verifier,
        })
    }

    /// Parses the private-key text `PRIVATE+KEY+name+hexid+base64(type ‖ seed)`.
    ///
    /// # Errors
    /// [`Error::MalformedKey`] when the text is malformed or its id does not match.
    pub fn from_private_text(text: &str) -> Result<SignerKey> {
        let text = text.trim_end_matches('\n');
        let rest = text.strip_prefix("PRIVATE+KEY+").ok_or_else(|| {
            Error::MalformedKey("private key must start with PRIVATE+KEY+".into())
        })?;
        let (name, id, raw) = split_key_text(rest)?;
        let Some((&type_byte, seed)) = raw.split_first() else {
            return Err(Error::MalformedKey(format!("{name}: empty key")));
        };
        let kind = KeyType::from_byte(type_byte).ok_or_else(|| {
            Error::MalformedKey(format!("{name}: unsupported key type 0x{type_byte:02x}"))
        })?;
        let seed: [u8; 32] = seed.try_into().map_err(|_| {
            Error::MalformedKey(format!("{name}: seed is {} bytes, not 32", seed.len()))
        })?;
        let signer = SignerKey::from_seed(name, kind, &seed)?;
        if signer.verifier.key_id != id {
            return Err(Error::MalformedKey(format!(
                "{name}: key id {id:08x} does not match the key"
            )));
        }
        Ok(signer)
    }

    /// The private-key text, for a key file (keep it mode 0600).
    pub fn to_private_text(&self) -> String {
        let mut raw = vec![self.kind.byte()];
        raw.extend_from_slice(&self.key.to_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.verifier.key_id,
            STANDARD.encode(raw)
        )
    }

    /// The Ed25519 key itself: the log key also signs the operator's log entries (imports
    /// and claims), under that format's own domain prefix.
    pub fn ed25519(&self) -> &SigningKey {
        &self.key
    }

    /// The matching verifier key.
    pub fn verifier(&self) -> &VerifierKey {
        &self.verifier
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The signature line for `text`: for a cosignature key, the cosignature at `time` (which
    /// Ed25519 note keys ignore).
    ///
    /// # Errors
    /// [`Error::MalformedNote`] if `text` is not valid note text.
    pub fn signature_line(&self, text: &str, time: u64) -> Result<String> {
        check_text(text)?;
        let mut raw = self.verifier.key_id.to_be_bytes().to_vec();
        match self.kind {
            KeyType::Ed25519 => raw.extend_from_slice(&self.key.sign(text.as_bytes()).to_bytes()),
            KeyType::Cosignature => {
                raw.extend_from_slice(&time.to_be_bytes());
                raw.extend_from_slice(
                    &self
                        .key
                        .sign(cosigned_message(time, text).as_bytes())
                        .to_bytes(),
                );
            }
        }
        Ok(format!("— {} {}\n", self.name, STANDARD.encode(raw)))
    }
}

/// Text pgext signs: UTF-8, ending in a newline, no control characters but newline, and no blank
/// line (the last blank line is where signatures start, so one inside would confuse readers).
fn check_text(text: &str) -> Result<()> {
    if text.is_empty() || !text.ends_with('\n') {
        return Err(Error::MalformedNote("text must end with a newline".into()));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::MalformedNote(
            "text contains control characters".into(),
        ));
    }
    if text.contains("\n\n") || text.starts_with('\n') {
        return Err(Error::MalformedNote("text contains a blank line".into()));
    }
    Ok(())
}

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
            .find(|v| v.name == key.name && v.key_id == key.key_id)
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
            .find(|k| k.name == sig.name && k.key_id == sig.key_id)
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
