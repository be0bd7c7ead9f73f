//! Log entries: canonical, versioned, self-describing JSON statements signed by their actor.
//! `spec/entries.md` is the prose version of this module.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::canonical::to_canonical;

/// Version of the entry format, the `v` field.
pub const ENTRY_VERSION: u64 = 1;

pub use crate::attestation::{Build, Installcheck};

/// Prefix of every signed message, so an entry signature can never be replayed as a signature
/// of anything else (or the other way round).
pub const SIGNATURE_DOMAIN: &[u8] = b"pgext/entry/v1\n";

/// Entry failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// Not JSON of the entry shape.
    #[error("malformed entry: {0}")]
    Malformed(String),
    /// Valid JSON, but not in canonical form (key order, spacing, escapes, nulls, unknown fields).
    #[error("entry is not in canonical form")]
    NotCanonical,
    /// Longer than the log holds.
    #[error("the entry is {0} bytes; the log holds entries of at most 65,535 bytes")]
    TooLarge(usize),
    /// The signature does not verify with the named key.
    #[error("bad signature by {actor} with key {key_id}")]
    BadSignature {
        /// Who claimed to sign.
        actor: String,
        /// With which key.
        key_id: String,
    },
}

/// Largest entry a log holds, in bytes (C2SP tlog-tiles entry bundles prefix each entry with
/// a 16-bit length).
pub const MAX_ENTRY_BYTES: usize = 65_535;

/// Release status, as PGXN knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not for production.
    Unstable,
    /// Release candidate.
    Testing,
    /// Production ready.
    Stable,
}

impl Status {
    /// The PGXN spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unstable => "unstable",
            Status::Testing => "testing",
            Status::Stable => "stable",
        }
    }

    /// Parses the PGXN spelling.
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "unstable" => Some(Status::Unstable),
            "testing" => Some(Status::Testing),
            "stable" => Some(Status::Stable),
            _ => None,
        }
    }
}

/// A release of a distribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// Distribution name, as in META.json.
    pub dist: String,
    /// SemVer version.
    pub version: String,
    /// Release status.
    pub status: Status,
    /// Hex SHA-256 of the release zip.
    pub sha256: String,
    /// Hex SHA-1 of the release zip (what PGXN clients check).
    pub sha1: String,
    /// Size of the release zip in bytes.
    pub size: u64,
    /// Hex SHA-256 of the release META.json.
    pub meta_sha256: String,
    /// Extensions the release provides, with their versions.
    pub provides: BTreeMap<String, String>,
}

/// A release of PGXN's history, brought into the log by the registry's operator
/// (`spec/import.md`): the release fields as PGXN published them (the zip byte for byte, so
/// its SHA-1 is PGXN's), the PGXN user who released it and PGXN's date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Import {
    /// The release, as for a release entry.
    #[serde(flatten)]
    pub release: Release,
    /// PGXN's user name of the releaser (`user` of PGXN's release META).
    pub user: String,
    /// PGXN's release date, `YYYY-MM-DDTHH:MM:SSZ` as PGXN wrote it.
    pub date: String,
    /// Where the bytes came from: `pgxn`.
    pub source: String,
}

/// The `source` of an import from PGXN.
pub const SOURCE_PGXN: &str = "pgxn";

/// The actor of statements only the registry's operator makes (imports and claims), signed
/// with the log's key: no account name can take it (account names start with a letter).
pub const OPERATOR: &str = "@operator";

/// What an entry does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Registers an account with its first key; signed by that key.
    Account {
        /// Account name (lowercase).
        user: String,
        /// Base64 Ed25519 public key.
        key: String,
        /// Full name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Email address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        email: Option<String>,
        /// Home page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uri: Option<String>,
        /// Invitation: base64 signature of an admin key over [`invite_message`], for nodes whose
        /// registration policy is "invite".
        #[serde(default, skip_serializing_if = "Option::is_none")]
        invite: Option<String>,
    },
    /// Adds another key to the actor's account (for example a CI key).
    KeyAdd {
        /// Base64 Ed25519 public key.
        key: String,
    },
    /// Replaces the signing key with a new one (the signing key is retired).
    KeyRotate {
        /// Base64 Ed25519 public key.
        new_key: String,
    },
    /// Revokes another key of the actor.
    KeyRevoke {
        /// Key id of the key to revoke.
        revoked: String,
    },
    /// Publishes a release.
    Release(Release),
    /// Makes `user` a co-owner of `dist`.
    OwnerGrant {
        /// Distribution.
        dist: String,
        /// New owner.
        user: String,
    },
    /// Removes `user` from the owners of `dist`.
    OwnerRevoke {
        /// Distribution.
        dist: String,
        /// Removed owner.
        user: String,
    },
    /// Marks a release as not to be chosen by installers.
    Yank {
        /// Distribution.
        dist: String,
        /// Version.
        version: String,
        /// Why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Reverses a yank.
    Unyank {
        /// Distribution.
        dist: String,
        /// Version.
        version: String,
    },
    /// Attests a binary build of a release.
    Build(Build),
    /// A release of PGXN's history, by the operator.
    Import(Import),
    /// Binds a PGXN user name to an account, which from then on owns the distributions
    /// imported under that name; by the operator, with the evidence it saw.
    Claim {
        /// PGXN user name.
        pgxn_user: String,
        /// The account that takes the name's distributions.
        user: String,
        /// What the operator saw that proves the account holder is the PGXN user.
        evidence: String,
    },
    /// Gives an account a registry role (`packages`: maintains the name mapping); by the
    /// operator.
    RoleGrant {
        /// The role ([`crate::packages::ROLES`]: `packages`, `security`).
        role: String,
        /// The account.
        user: String,
    },
    /// Takes a registry role from an account; by the operator.
    RoleRevoke {
        /// The role.
        role: String,
        /// The account.
        user: String,
    },
    /// States which OS packages stand for a purl on each system (replacing what was stated
    /// before; no systems withdraws the mapping); by a maintainer of the mapping or the
    /// operator.
    PackageMap {
        /// The purl (`pkg:generic/libxml2`).
        purl: String,
        /// Packages by system ([`crate::packages::SYSTEMS`]).
        systems: crate::packages::Systems,
    },
    /// Publishes a security advisory, or updates the one with its id; by owners of every
    /// distribution it names (and of every one the advisory in force names), the registry's
    /// security team (role `security`) or the operator.
    Advisory(crate::advisory::Advisory),
    /// Withdraws an advisory (it was a mistake); by whoever may update it.
    AdvisoryWithdraw {
        /// The advisory's id.
        id: String,
        /// Why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Trusts a CI workflow to publish `dist` (trusted publishing); by an owner.
    PublisherAdd {
        /// Distribution.
        dist: String,
        /// The workflow.
        publisher: crate::trusted::Publisher,
    },
    /// Trusts a CI workflow no more; by an owner.
    PublisherRemove {
        /// Distribution.
        dist: String,
        /// The workflow, as added.
        publisher: crate::trusted::Publisher,
    },
    /// A short-lived key a node gave a CI run whose ID token it verified against one of
    /// `dist`'s trusted publishers: the key may sign one release of `dist` on behalf of `user`
    /// (the owner who trusted the publisher) until `expires`. By the operator.
    CiKey {
        /// Distribution.
        dist: String,
        /// The owner the release is published for.
        user: String,
        /// Base64 Ed25519 public key.
        key: String,
        /// The trusted publisher matched.
        publisher: crate::trusted::Publisher,
        /// What the ID token said of the run.
        claims: crate::trusted::Claims,
        /// Until when the key may sign, seconds since the epoch (statement times compare).
        expires: u64,
    },
}

impl Action {
    /// The `type` field.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Account { .. } => "account",
            Action::KeyAdd { .. } => "key_add",
            Action::KeyRotate { .. } => "key_rotate",
            Action::KeyRevoke { .. } => "key_revoke",
            Action::Release(_) => "release",
            Action::OwnerGrant { .. } => "owner_grant",
            Action::OwnerRevoke { .. } => "owner_revoke",
            Action::Yank { .. } => "yank",
            Action::Unyank { .. } => "unyank",
            Action::Build(_) => "build",
            Action::Import(_) => "import",
            Action::Claim { .. } => "claim",
            Action::RoleGrant { .. } => "role_grant",
            Action::RoleRevoke { .. } => "role_revoke",
            Action::PackageMap { .. } => "package_map",
            Action::Advisory(_) => "advisory",
            Action::AdvisoryWithdraw { .. } => "advisory_withdraw",
            Action::PublisherAdd { .. } => "publisher_add",
            Action::PublisherRemove { .. } => "publisher_remove",
            Action::CiKey { .. } => "ci_key",
        }
    }

    /// The release a release or an import entry makes.
    pub fn release(&self) -> Option<&Release> {
        match self {
            Action::Release(r) | Action::Import(Import { release: r, .. }) => Some(r),
            _ => None,
        }
    }
}

/// The signed part of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// Format version ([`ENTRY_VERSION`]).
    pub v: u64,
    /// Account acting.
    pub actor: String,
    /// Key id of the signing key ([`user_key_id`]).
    pub key_id: String,
    /// When the actor made the statement, seconds since the Unix epoch.
    pub time: u64,
    /// What it does.
    #[serde(flatten)]
    pub action: Action,
}

/// A signed statement: what the log stores, one per leaf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The statement.
    #[serde(flatten)]
    pub statement: Statement,
    /// Base64 Ed25519 signature over [`SIGNATURE_DOMAIN`] ‖ canonical statement.
    pub sig: String,
}

fn canonical<T: Serialize>(v: &T) -> Vec<u8> {
    let value = serde_json::to_value(v).unwrap_or(serde_json::Value::Null);
    // Entries hold only strings and integers: canonicalization cannot fail.
    to_canonical(&value).unwrap_or_default()
}

/// Key id of a user key: the first 8 bytes of SHA-256 of the public key, hex.
pub fn user_key_id(public: &[u8; 32]) -> String {
    pgext_log::hex(&pgext_log::sha256(public)[..8])
}

/// Decodes a base64 public key.
pub fn decode_public_key(b64: &str) -> Option<VerifyingKey> {
    let raw: [u8; 32] = STANDARD.decode(b64).ok()?.try_into().ok()?;
    let key = VerifyingKey::from_bytes(&raw).ok()?;
    (!key.is_weak()).then_some(key)
}

/// What an invitation signs: the account name and its key.
pub fn invite_message(user: &str, key_b64: &str) -> Vec<u8> {
    format!("pgext/invite/v1\n{user}\n{key_b64}\n").into_bytes()
}

impl Statement {
    /// The account whose keys the statement changes, and the key it is about: the account's
    /// first key, a key added, rotated to or revoked, a CI key recorded for the account.
    pub fn key_change(&self) -> Option<(&str, String)> {
        let id = |b64: &str| decode_public_key(b64).map(|k| user_key_id(k.as_bytes()));
        Some(match &self.action {
            Action::Account { user, key, .. } => (user.as_str(), id(key)?),
            Action::KeyAdd { key } | Action::KeyRotate { new_key: key } => {
                (self.actor.as_str(), id(key)?)
            }
            Action::KeyRevoke { revoked } => (self.actor.as_str(), revoked.clone()),
            Action::CiKey { user, key, .. } => (user.as_str(), id(key)?),
            _ => return None,
        })
    }

    /// Canonical bytes of the statement.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        canonical(self)
    }

    /// Signs the statement.
    pub fn sign(self, key: &SigningKey) -> Entry {
        let mut msg = SIGNATURE_DOMAIN.to_vec();
        msg.extend_from_slice(&self.canonical_bytes());
        let sig = STANDARD.encode(key.sign(&msg).to_bytes());
        Entry {
            statement: self,
            sig,
        }
    }
}

impl Entry {
    /// The bytes stored in the log.
    pub fn to_bytes(&self) -> Vec<u8> {
        canonical(self)
    }

    /// Parses log bytes, refusing anything not in canonical form.
    ///
    /// # Errors
    /// [`EntryError::Malformed`] or [`EntryError::NotCanonical`].
    pub fn parse(bytes: &[u8]) -> Result<Entry, EntryError> {
        if bytes.len() > MAX_ENTRY_BYTES {
            return Err(EntryError::TooLarge(bytes.len()));
        }
        let entry: Entry =
            serde_json::from_slice(bytes).map_err(|e| EntryError::Malformed(e.to_string()))?;
        if entry.statement.v != ENTRY_VERSION {
            return Err(EntryError::Malformed(format!(
                "unsupported entry version {}",
                entry.statement.v
            )));
        }
        if entry.to_bytes() != bytes {
            return Err(EntryError::NotCanonical);
        }
        Ok(entry)
    }

    /// Parses an entry as a client submits it (any JSON spacing) into canonical form, refusing
    /// one whose canonical bytes the log could not hold. Every way into a log (HTTP, a
    /// forwarded submission) goes through here, so no entry reaches a sequencing round that a
    /// round could not integrate.
    ///
    /// # Errors
    /// [`EntryError::TooLarge`], [`EntryError::Malformed`].
    pub fn from_submitted(bytes: &[u8]) -> Result<Entry, EntryError> {
        // Canonical form is never longer than the submitted JSON but for escapes; bound the
        // parse by what a generous submission can be.
        if bytes.len() > 4 * MAX_ENTRY_BYTES {
            return Err(EntryError::TooLarge(bytes.len()));
        }
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| EntryError::Malformed(e.to_string()))?;
        // What was submitted, in canonical form, must parse as an entry whose canonical form it
        // is: a field the format does not have (or a null) would otherwise vanish from what
        // the author signed and sent.
        let canonical = to_canonical(&value).map_err(|e| EntryError::Malformed(e.to_string()))?;
        Entry::parse(&canonical).map_err(|e| match e {
            EntryError::NotCanonical => EntryError::Malformed(
                "the entry has fields the entry format does not have, or null values".into(),
            ),
            e => e,
        })
    }

    /// Verifies the signature with `key`.
    ///
    /// # Errors
    /// [`EntryError::BadSignature`].
    pub fn verify_signature(&self, key: &VerifyingKey) -> Result<(), EntryError> {
        let bad = || EntryError::BadSignature {
            actor: self.statement.actor.clone(),
            key_id: self.statement.key_id.clone(),
        };
        let sig = STANDARD.decode(&self.sig).map_err(|_| bad())?;
        let sig = Signature::from_slice(&sig).map_err(|_| bad())?;
        let mut msg = SIGNATURE_DOMAIN.to_vec();
        msg.extend_from_slice(&self.statement.canonical_bytes());
        key.verify_strict(&msg, &sig).map_err(|_| bad())
    }
}

#[cfg(test)]
#[path = "entry_tests.rs"]
mod tests;
