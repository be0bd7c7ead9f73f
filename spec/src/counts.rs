//! Download count statements (`spec/counts.md`): what a node says it served of one origin's
//! releases in one period, signed with its cosigner key, so that any node can add up what
//! every known node served and none can speak for another.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::canonical::to_canonical;

/// Prefix of the signed message: a count signature is never one of anything else.
pub const COUNTS_DOMAIN: &[u8] = b"pgext/counts/v1\n";
/// Most releases one statement counts (a busier period is said in several statements).
pub const MAX_COUNTS: usize = 2048;
/// Most downloads one statement may claim for one release.
pub const MAX_DOWNLOADS: u64 = 1_000_000_000;
/// Largest statement read, in bytes.
pub const MAX_STATEMENT_BYTES: usize = 200 << 10;

/// One release's downloads in a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Count {
    /// Distribution, lowercase.
    pub dist: String,
    /// Version, lowercase.
    pub version: String,
    /// Downloads served.
    pub downloads: u64,
}

/// The signed part of a statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counted {
    /// Format version, 1.
    pub v: u64,
    /// The origin whose releases were downloaded.
    pub origin: String,
    /// The counting node's cosigner key (C2SP vkey text).
    pub node: String,
    /// 1 for the node's first statement about the origin, then one more each time.
    pub seq: u64,
    /// Start of the period, seconds since the Unix epoch (the previous statement's `to`).
    pub from: u64,
    /// End of the period.
    pub to: u64,
    /// Downloads per release, each release once, at most [`MAX_COUNTS`].
    pub counts: Vec<Count>,
}

/// A count statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// What is said.
    #[serde(flatten)]
    pub counted: Counted,
    /// Base64 Ed25519 signature over [`COUNTS_DOMAIN`] and the canonical JSON of `counted`.
    pub sig: String,
}

/// Why a statement is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CountsError {
    /// Not a statement, or outside its bounds.
    #[error("malformed count statement: {0}")]
    Malformed(String),
    /// The signature does not verify with the named node's key.
    #[error("the count statement's signature does not verify with {0}")]
    BadSignature(String),
}

fn canonical(c: &Counted) -> Vec<u8> {
    let value = serde_json::to_value(c).unwrap_or(serde_json::Value::Null);
    to_canonical(&value).unwrap_or_default()
}

impl Counted {
    /// Signs it with the node's cosigner key.
    pub fn sign(self, key: &SigningKey) -> Statement {
        let mut msg = COUNTS_DOMAIN.to_vec();
        msg.extend_from_slice(&canonical(&self));
        Statement {
            sig: STANDARD.encode(key.sign(&msg).to_bytes()),
            counted: self,
        }
    }
}

impl Statement {
    /// The bytes nodes store and pass on (canonical JSON).
    pub fn to_bytes(&self) -> Vec<u8> {
        let value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        to_canonical(&value).unwrap_or_default()
    }

    /// Parses a statement and checks its shape: size, version, period, at most [`MAX_COUNTS`]
    /// releases, each once, with 1 to [`MAX_DOWNLOADS`] downloads.
    ///
    /// # Errors
    /// [`CountsError::Malformed`].
    pub fn parse(bytes: &[u8]) -> Result<Statement, CountsError> {
        let bad = |m: String| CountsError::Malformed(m);
        if bytes.len() > MAX_STATEMENT_BYTES {
            return Err(bad(format!("{} bytes", bytes.len())));
        }
        let s: Statement = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        let c = &s.counted;
        if c.v != 1 {
            return Err(bad(format!("version {}", c.v)));
        }
        if c.seq == 0 || c.to <= c.from {
            return Err(bad(
                "seq starts at 1 and a period ends after it starts".into()
            ));
        }
        if c.counts.is_empty() || c.counts.len() > MAX_COUNTS {
            return Err(bad(format!(
                "1 to {MAX_COUNTS} releases, not {}",
                c.counts.len()
            )));
        }
        let mut seen = std::collections::BTreeSet::new();
        for n in &c.counts {
            if n.downloads == 0 || n.downloads > MAX_DOWNLOADS {
                return Err(bad(format!(
                    "{} downloads of {}@{}",
                    n.downloads, n.dist, n.version
                )));
            }
            if n.dist != n.dist.to_ascii_lowercase() || n.version != n.version.to_ascii_lowercase()
            {
                return Err(bad("names are lowercase".into()));
            }
            if !seen.insert((&n.dist, &n.version)) {
                return Err(bad(format!("{}@{} is counted twice", n.dist, n.version)));
            }
        }
        Ok(s)
    }

    /// Verifies the signature with the node's key.
    ///
    /// # Errors
    /// [`CountsError::BadSignature`].
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), CountsError> {
        let bad = || CountsError::BadSignature(self.counted.node.clone());
        let sig = STANDARD.decode(&self.sig).map_err(|_| bad())?;
        let sig = Signature::from_slice(&sig).map_err(|_| bad())?;
        let mut msg = COUNTS_DOMAIN.to_vec();
        msg.extend_from_slice(&canonical(&self.counted));
        key.verify_strict(&msg, &sig).map_err(|_| bad())
    }
}

/// A short name of a node's key for paths: the first 8 bytes of SHA-256 of its vkey text, hex.
pub fn node_id(vkey: &str) -> String {
    pgext_log::hex(&pgext_log::sha256(vkey.as_bytes())[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted() -> Counted {
        Counted {
            v: 1,
            origin: "o.example/log".into(),
            node: "m.example/witness+01234567+AQ".into(),
            seq: 1,
            from: 100,
            to: 200,
            counts: vec![Count {
                dist: "pair".into(),
                version: "1.0.0".into(),
                downloads: 3,
            }],
        }
    }

    #[test]
    fn signed_statements_verify_and_nothing_else_does() {
        let k = SigningKey::from_bytes(&[7; 32]);
        let s = counted().sign(&k);
        let back = Statement::parse(&s.to_bytes()).unwrap();
        assert_eq!(back, s);
        back.verify(&k.verifying_key()).unwrap();
        let other = SigningKey::from_bytes(&[8; 32]);
        assert!(back.verify(&other.verifying_key()).is_err());
        let mut more = back.clone();
        more.counted.counts[0].downloads = 300;
        assert!(more.verify(&k.verifying_key()).is_err(), "inflated counts");
    }

    #[test]
    fn malformed_statements_are_refused() {
        let k = SigningKey::from_bytes(&[7; 32]);
        let with = |f: &dyn Fn(&mut Counted)| {
            let mut c = counted();
            f(&mut c);
            Statement::parse(&c.sign(&k).to_bytes())
        };
        assert!(with(&|c| c.seq = 0).is_err());
        assert!(with(&|c| c.to = c.from).is_err());
        assert!(with(&|c| c.counts.clear()).is_err());
        assert!(with(&|c| c.counts[0].downloads = 0).is_err());
        assert!(with(&|c| c.counts[0].dist = "Pair".into()).is_err());
        assert!(
            with(&|c| {
                let again = c.counts[0].clone();
                c.counts.push(again);
            })
            .is_err()
        );
        assert!(Statement::parse(b"{}").is_err());
        assert!(Statement::parse(&vec![b' '; MAX_STATEMENT_BYTES + 1]).is_err());
    }
}
