//! Signing and verifier keys of C2SP signed notes: Ed25519 note signatures (type 0x01), Ed25519
//! cosignatures (C2SP tlog-cosignature `cosignature/v1`, type 0x04) and ML-DSA-44 cosignatures
//! (tlog-cosignature's `subtree/v1`, type 0x06), with their text formats.
//!
//! Every private key is a 32-byte seed (Ed25519's secret key, ML-DSA's ξ of FIPS 204
//! `KeyGen_internal`), so key files have one shape whatever the algorithm.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use ml_dsa::{EncodedVerifyingKey, MlDsa44};

use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::hash::{Hash, sha256};

/// Bytes of an ML-DSA-44 public key.
pub const ML_DSA_44_PUBLIC_KEY_SIZE: usize = 1312;
/// Bytes of an ML-DSA-44 signature.
pub const ML_DSA_44_SIGNATURE_SIZE: usize = 2420;

/// The signature algorithms pgext signs and verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// Ed25519 over the note text (log keys): 0x01.
    Ed25519,
    /// Ed25519 cosignature/v1 with a timestamp (witnesses and mirrors): 0x04.
    Cosignature,
    /// ML-DSA-44 cosignature over the `subtree/v1` message (witnesses and mirrors): 0x06.
    MlDsa44,
}

impl KeyType {
    /// The algorithm byte of the key encoding.
    pub fn byte(self) -> u8 {
        match self {
            KeyType::Ed25519 => 0x01,
            KeyType::Cosignature => 0x04,
            KeyType::MlDsa44 => 0x06,
        }
    }

    fn from_byte(b: u8) -> Option<KeyType> {
        match b {
            0x01 => Some(KeyType::Ed25519),
            0x04 => Some(KeyType::Cosignature),
            0x06 => Some(KeyType::MlDsa44),
            _ => None,
        }
    }

    /// Whether keys of this type cosign checkpoints (C2SP tlog-cosignature).
    pub fn is_cosigner(self) -> bool {
        matches!(self, KeyType::Cosignature | KeyType::MlDsa44)
    }

    fn public_size(self) -> usize {
        match self {
            KeyType::Ed25519 | KeyType::Cosignature => 32,
            KeyType::MlDsa44 => ML_DSA_44_PUBLIC_KEY_SIZE,
        }
    }
}

/// The 4-byte key id: SHA-256(name ‖ "\n" ‖ type ‖ public key)[:4], big-endian.
pub fn key_id(name: &str, kind: KeyType, public: &[u8]) -> u32 {
    let mut buf = Vec::with_capacity(name.len() + 2 + public.len());
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
    let shown: String = text.chars().take(120).collect();
    let bad = |why: &str| Error::MalformedKey(format!("{why}: {shown:?}"));
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

/// A public key of one of the algorithms.
#[derive(Clone)]
enum Public {
    Ed25519(VerifyingKey),
    MlDsa44(Box<ml_dsa::VerifyingKey<MlDsa44>>),
}

/// A verifier key: `name+hexid+base64(type ‖ public key)`.
#[derive(Clone)]
pub struct VerifierKey {
    name: String,
    key_id: u32,
    kind: KeyType,
    raw: Vec<u8>,
    key: Public,
}

impl PartialEq for VerifierKey {
    fn eq(&self, other: &VerifierKey) -> bool {
        // The public key bytes determine the parsed key.
        (&self.name, self.key_id, self.kind, &self.raw)
            == (&other.name, other.key_id, other.kind, &other.raw)
    }
}

impl Eq for VerifierKey {}

/// The `subtree/v1` message an ML-DSA-44 cosignature signs (C2SP tlog-cosignature):
/// label, cosigner name, timestamp, log origin, start, end and root, with one-byte length
/// prefixes on the two names. `None` when a name is not 1..=255 bytes, or a timestamp is given
/// for a subtree that does not start at 0.
pub fn subtree_message(
    name: &str,
    time: u64,
    origin: &str,
    (start, end): (u64, u64),
    hash: &Hash,
) -> Option<Vec<u8>> {
    let short = |s: &str| (1..=255).contains(&s.len());
    if !short(name) || !short(origin) || (start != 0 && time != 0) {
        return None;
    }
    let mut m = Vec::with_capacity(12 + 2 + name.len() + origin.len() + 24 + 32);
    m.extend_from_slice(b"subtree/v1\n\0");
    m.push(name.len() as u8);
    m.extend_from_slice(name.as_bytes());
    m.extend_from_slice(&time.to_be_bytes());
    m.push(origin.len() as u8);
    m.extend_from_slice(origin.as_bytes());
    m.extend_from_slice(&start.to_be_bytes());
    m.extend_from_slice(&end.to_be_bytes());
    m.extend_from_slice(hash.as_ref());
    Some(m)
}

/// The `subtree/v1` message for a cosignature by `name` at `time` on the checkpoint `text`
/// (its first three lines: extension lines are not signed). `None` when the text is not a
/// checkpoint or the message cannot be formed.
fn checkpoint_message(name: &str, time: u64, text: &str) -> Option<Vec<u8>> {
    let cp = Checkpoint::parse(text).ok()?;
    // An empty tree has one root; a cosigner states nothing about another.
    if cp.size == 0 && cp.root != Hash::empty_root() {
        return None;
    }
    subtree_message(name, time, &cp.origin, (0, cp.size), &cp.root)
}

/// Cosignature timestamps may not exceed 2^63 - 1 (tlog-cosignature).
const MAX_TIME: u64 = i64::MAX as u64;

impl VerifierKey {
    /// A verifier for a public key of the given type.
    ///
    /// # Errors
    /// [`Error::MalformedKey`] for an invalid name, a key of the wrong length, or a point that is
    /// not a valid (or is a weak) Ed25519 public key.
    pub fn new(name: &str, kind: KeyType, public: &[u8]) -> Result<VerifierKey> {
        if !is_valid_key_name(name) {
            return Err(Error::MalformedKey(format!("invalid key name {name:?}")));
        }
        if public.len() != kind.public_size() {
            return Err(Error::MalformedKey(format!(
                "{name}: key is {} bytes, not {}",
                public.len(),
                kind.public_size()
            )));
        }
        let key = match kind {
            KeyType::Ed25519 | KeyType::Cosignature => {
                let bytes: [u8; 32] = public.try_into().map_err(|_| {
                    Error::MalformedKey(format!("{name}: not an Ed25519 public key"))
                })?;
                let key = VerifyingKey::from_bytes(&bytes).map_err(|_| {
                    Error::MalformedKey(format!("{name}: not an Ed25519 public key"))
                })?;
                // Small-order keys can "verify" forged signatures: refuse them up front.
                if key.is_weak() {
                    return Err(Error::MalformedKey(format!(
                        "{name}: weak Ed25519 public key"
                    )));
                }
                Public::Ed25519(key)
            }
            KeyType::MlDsa44 => {
                let enc = EncodedVerifyingKey::<MlDsa44>::try_from(public).map_err(|_| {
                    Error::MalformedKey(format!("{name}: not an ML-DSA-44 public key"))
                })?;
                Public::MlDsa44(Box::new(ml_dsa::VerifyingKey::decode(&enc)))
            }
        };
        Ok(VerifierKey {
            name: name.to_string(),
            key_id: key_id(name, kind, public),
            kind,
            raw: public.to_vec(),
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

    /// The raw public key (32 bytes for Ed25519, 1,312 for ML-DSA-44).
    pub fn public_key(&self) -> &[u8] {
        &self.raw
    }

    /// The Ed25519 public key, for the key types that have one.
    pub fn ed25519(&self) -> Option<&VerifyingKey> {
        match &self.key {
            Public::Ed25519(k) => Some(k),
            Public::MlDsa44(_) => None,
        }
    }

    /// Verifies a signature as found in a note's signature line (without the key id).
    /// Returns the cosignature timestamp for cosignature keys.
    pub(crate) fn verify(&self, text: &str, sig: &[u8]) -> Option<Option<u64>> {
        let timed = |len: usize| -> Option<(u64, &[u8])> {
            if sig.len() != 8 + len {
                return None;
            }
            let time = u64::from_be_bytes(sig[..8].try_into().ok()?);
            (time <= MAX_TIME).then_some((time, &sig[8..]))
        };
        match (&self.key, self.kind) {
            (Public::Ed25519(key), KeyType::Ed25519) => {
                let sig = Signature::from_slice(sig).ok()?;
                key.verify_strict(text.as_bytes(), &sig).ok()?;
                Some(None)
            }
            (Public::Ed25519(key), _) => {
                let (time, sig) = timed(64)?;
                let sig = Signature::from_slice(sig).ok()?;
                key.verify_strict(cosigned_message(time, text).as_bytes(), &sig)
                    .ok()?;
                Some(Some(time))
            }
            (Public::MlDsa44(key), _) => {
                let (time, sig) = timed(ML_DSA_44_SIGNATURE_SIZE)?;
                let sig = ml_dsa::Signature::<MlDsa44>::try_from(sig).ok()?;
                let msg = checkpoint_message(&self.name, time, text)?;
                key.verify_with_context(&msg, b"", &sig)
                    .then_some(Some(time))
            }
        }
    }
}

/// What an Ed25519 cosignature signs: `cosignature/v1\ntime <t>\n` followed by the checkpoint
/// text.
pub fn cosigned_message(time: u64, text: &str) -> String {
    format!("cosignature/v1\ntime {time}\n{text}")
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = vec![self.kind.byte()];
        raw.extend_from_slice(&self.raw);
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
        let key = VerifierKey::new(name, kind, public)?;
        if key.key_id != id {
            return Err(Error::MalformedKey(format!(
                "{name}: key id {id:08x} does not match the key (expected {:08x})",
                key.key_id
            )));
        }
        Ok(key)
    }
}

/// A secret key of one of the algorithms.
enum Secret {
    Ed25519(Box<SigningKey>),
    MlDsa44(Box<ml_dsa::SigningKey<MlDsa44>>),
}

/// A signing key with its name: log keys sign notes, witness and mirror keys cosign.
pub struct SignerKey {
    name: String,
    kind: KeyType,
    seed: [u8; 32],
    key: Secret,
    verifier: VerifierKey,
}

impl Drop for SignerKey {
    fn drop(&mut self) {
        // The seed is the key: do not leave it in freed memory.
        self.seed = [0; 32];
        std::hint::black_box(&self.seed);
    }
}

impl fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret.
        write!(f, "SignerKey({})", self.verifier)
    }
}

impl SignerKey {
    /// A signer from a 32-byte seed. Pure: the caller brings the randomness.
    ///
    /// # Errors
    /// [`Error::MalformedKey`] for an invalid name.
    pub fn from_seed(name: &str, kind: KeyType, seed: &[u8; 32]) -> Result<SignerKey> {
        let (key, public) = match kind {
            KeyType::Ed25519 | KeyType::Cosignature => {
                let key = SigningKey::from_bytes(seed);
                let public = key.verifying_key().to_bytes().to_vec();
                (Secret::Ed25519(Box::new(key)), public)
            }
            KeyType::MlDsa44 => {
                let key = ml_dsa::SigningKey::<MlDsa44>::from_seed(&(*seed).into());
                let vk: &ml_dsa::VerifyingKey<MlDsa44> = key.as_ref();
                let public = vk.encode().to_vec();
                (Secret::MlDsa44(Box::new(key)), public)
            }
        };
        let verifier = VerifierKey::new(name, kind, &public)?;
        Ok(SignerKey {
            name: name.to_string(),
            kind,
            seed: *seed,
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
        raw.extend_from_slice(&self.seed);
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.verifier.key_id,
            STANDARD.encode(raw)
        )
    }

    /// The Ed25519 key itself, for Ed25519 key types: the log key also signs the operator's
    /// log entries (imports and claims), and a node's cosigner key its count statements, under
    /// those formats' own domain prefixes.
    pub fn ed25519(&self) -> Option<&SigningKey> {
        match &self.key {
            Secret::Ed25519(k) => Some(k.as_ref()),
            Secret::MlDsa44(_) => None,
        }
    }

    /// The matching verifier key.
    pub fn verifier(&self) -> &VerifierKey {
        &self.verifier
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The algorithm.
    pub fn kind(&self) -> KeyType {
        self.kind
    }

    /// The signature line for `text`: for a cosignature key, the cosignature at `time` (which
    /// Ed25519 note keys ignore). ML-DSA-44 signs deterministically (FIPS 204's variant), so the
    /// crate stays free of randomness.
    ///
    /// # Errors
    /// [`Error::MalformedNote`] if `text` is not valid note text, or (for an ML-DSA-44 key) not
    /// a checkpoint, or `time` is past 2^63 - 1 for a cosignature.
    pub fn signature_line(&self, text: &str, time: u64) -> Result<String> {
        check_text(text)?;
        if self.kind.is_cosigner() && time > MAX_TIME {
            return Err(Error::MalformedNote(
                "a cosignature time is at most 2^63 - 1".into(),
            ));
        }
        let mut raw = self.verifier.key_id.to_be_bytes().to_vec();
        match (&self.key, self.kind) {
            (Secret::Ed25519(key), KeyType::Ed25519) => {
                raw.extend_from_slice(&key.sign(text.as_bytes()).to_bytes());
            }
            (Secret::Ed25519(key), _) => {
                raw.extend_from_slice(&time.to_be_bytes());
                raw.extend_from_slice(
                    &key.sign(cosigned_message(time, text).as_bytes()).to_bytes(),
                );
            }
            (Secret::MlDsa44(key), _) => {
                let msg = checkpoint_message(&self.name, time, text).ok_or_else(|| {
                    Error::MalformedNote(
                        "an ML-DSA-44 cosignature signs a checkpoint whose origin and cosigner name are 1 to 255 bytes".into(),
                    )
                })?;
                // The deterministic variant, with the empty context tlog-cosignature uses.
                let sig = ml_dsa::Signer::try_sign(key.as_ref(), &msg)
                    .map_err(|_| Error::MalformedNote("ML-DSA-44 signing failed".into()))?;
                raw.extend_from_slice(&time.to_be_bytes());
                raw.extend_from_slice(&sig.encode());
            }
        }
        Ok(format!("— {} {}\n", self.name, STANDARD.encode(raw)))
    }
}

/// Text pgext signs: UTF-8, ending in a newline, no control characters but newline, and no blank
/// line (the last blank line is where signatures start, so one inside would confuse readers).
pub(crate) fn check_text(text: &str) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ml_dsa_keys_round_trip_and_refuse_a_flipped_byte() {
        let root = Hash::empty_root();
        let text = format!("example.com/log\n0\n{}\n", root.to_base64());
        let signer = SignerKey::from_seed("w.example/pq", KeyType::MlDsa44, &[1; 32]).unwrap();
        let vkey: VerifierKey = signer.verifier().to_string().parse().unwrap();
        assert_eq!(&vkey, signer.verifier());
        assert_eq!(vkey.public_key().len(), ML_DSA_44_PUBLIC_KEY_SIZE);
        let again = SignerKey::from_private_text(&signer.to_private_text()).unwrap();
        assert_eq!(again.verifier(), signer.verifier());
        let line = signer.signature_line(&text, 1_700_000_000).unwrap();
        let raw = STANDARD
            .decode(line.trim_end().rsplit(' ').next().unwrap())
            .unwrap();
        assert_eq!(raw.len(), 4 + 8 + ML_DSA_44_SIGNATURE_SIZE);
        assert_eq!(vkey.verify(&text, &raw[4..]), Some(Some(1_700_000_000)));
        for i in [4, 11, 12, 500, raw.len() - 1] {
            let mut bad = raw.clone();
            bad[i] ^= 1;
            assert_eq!(vkey.verify(&text, &bad[4..]), None, "byte {i}");
        }
        // Another cosigner name or another tree does not verify.
        let other = format!("example.com/log\n1\n{}\n", root.to_base64());
        assert_eq!(vkey.verify(&other, &raw[4..]), None);
        // An empty tree with another root is no checkpoint to cosign.
        let wrong = format!("example.com/log\n0\n{}\n", Hash([7; 32]).to_base64());
        assert!(signer.signature_line(&wrong, 1).is_err());
        assert!(signer.signature_line(&text, u64::MAX).is_err());
    }

    #[test]
    fn subtree_message_bounds() {
        let h = Hash::empty_root();
        assert!(subtree_message("n", 0, "o", (0, 1), &h).is_some());
        assert!(subtree_message("", 0, "o", (0, 1), &h).is_none());
        assert!(subtree_message("n", 0, &"o".repeat(256), (0, 1), &h).is_none());
        assert!(subtree_message("n", 5, "o", (2, 4), &h).is_none());
        assert!(subtree_message("n", 0, "o", (2, 4), &h).is_some());
    }
}
