//! Building what an author signs: entries for accounts and releases. A release's zip is built
//! with the same deterministic function the node uses, so the digests signed here are the ones
//! the node computes.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use pgext_log::{hex, sha256};
use pgext_spec::archive::{Files, Limits, pgxn_zip, read_archive};
use pgext_spec::authority::encode_public_key;
use pgext_spec::entry::{Action, ENTRY_VERSION, Entry, Release, Statement, Status, user_key_id};
use pgext_spec::meta::parse_meta;
use sha1::{Digest, Sha1};

use crate::Error;

/// An account name and one of its keys.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Account name.
    pub user: String,
    /// Signing key.
    pub key: SigningKey,
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Identity {
    /// Signs a statement of `action`, now.
    pub fn sign(&self, action: Action) -> Entry {
        Statement {
            v: ENTRY_VERSION,
            actor: self.user.clone(),
            key_id: user_key_id(self.key.verifying_key().as_bytes()),
            time: now(),
            action,
        }
        .sign(&self.key)
    }

    /// The account entry registering this identity.
    pub fn account_entry(
        &self,
        name: Option<&str>,
        email: Option<&str>,
        uri: Option<&str>,
    ) -> Entry {
        self.sign(Action::Account {
            user: self.user.clone(),
            key: encode_public_key(&self.key.verifying_key()),
            name: name.map(str::to_string),
            email: email.map(str::to_string),
            uri: uri.map(str::to_string),
            invite: None,
        })
    }
}

/// A release ready to sign: the zip to upload and the release fields describing it.
#[derive(Debug, Clone)]
pub struct PreparedRelease {
    /// The PGXN-style zip.
    pub zip: Vec<u8>,
    /// Its description.
    pub release: Release,
}

/// Reads an archive (zip, tar.gz, tar.bz2), validates its META.json and builds the release zip.
/// The status is the META's `release_status`, else `status`, else stable.
///
/// # Errors
/// [`Error::Release`] saying what is wrong with the archive or its META.
pub fn prepare_release(archive: &[u8], status: Option<Status>) -> Result<PreparedRelease, Error> {
    let files =
        read_archive(archive, &Limits::default()).map_err(|e| Error::Release(e.to_string()))?;
    release_from_files(&files, status)
}

/// Like [`prepare_release`], from files already read (paths relative to the distribution's
/// top folder).
///
/// # Errors
/// [`Error::Release`] saying what is wrong with the META.json.
pub fn release_from_files(files: &Files, status: Option<Status>) -> Result<PreparedRelease, Error> {
    let meta_bytes = files
        .get("META.json")
        .ok_or_else(|| Error::Release("the archive has no META.json at its top level".into()))?;
    let mut meta = parse_meta(meta_bytes).map_err(|e| Error::Release(e.to_string()))?;
    meta.take_control_versions(files);
    let zip =
        pgxn_zip(&meta.name, &meta.version, files).map_err(|e| Error::Release(e.to_string()))?;
    let release = Release {
        dist: meta.name.clone(),
        version: meta.version.clone(),
        status: meta.status.or(status).unwrap_or(Status::Stable),
        sha256: hex(&sha256(&zip)),
        sha1: hex(&Sha1::digest(&zip)),
        size: zip.len() as u64,
        meta_sha256: hex(&sha256(meta_bytes)),
        provides: meta
            .provides
            .iter()
            .map(|(k, p)| (k.clone(), p.version.clone()))
            .collect::<BTreeMap<_, _>>(),
    };
    Ok(PreparedRelease { zip, release })
}
