//! The publish pipeline for releases: read the upload safely, validate META.json against the
//! signed release statement, build the PGXN-style zip, check the digests the author signed, check
//! authority, store the blobs durably, and only then hand the entry to the sequencer. Builds
//! take the same way: the binary package is read under every rule of `spec/binary.md` and held
//! against the attestation before it is stored.

use std::sync::Arc;

use pgext_log::{hex, sha256};
use pgext_spec::api::Receipt;
use pgext_spec::archive::{Limits, pgxn_zip, read_archive};
use pgext_spec::authority::Registry;
use pgext_spec::binary::read_binary;
use pgext_spec::entry::{Action, Build, Entry, Import, Release};
use pgext_spec::meta::parse_meta;
use pgext_spec::meta::read_stored_meta;
use sha1::{Digest, Sha1};

use super::error::{Error, Refusal, Result};
use super::sequencer::check_policy;
use super::{Origin, blocking};

/// The bytes to store for a release, once checked.
#[derive(Debug)]
pub struct PreparedRelease {
    /// The release zip as served.
    pub zip: Vec<u8>,
    /// META.json as uploaded.
    pub meta: Vec<u8>,
}

/// Checks an upload against its release statement. Pure CPU work: nothing is stored.
///
/// # Errors
/// A refusal saying what is wrong and how to fix it.
pub fn prepare(limits: &Limits, archive: &[u8], release: &Release) -> Result<PreparedRelease> {
    let files =
        read_archive(archive, limits).map_err(|e| Error::invalid("bad-archive", e.to_string()))?;
    let meta_bytes = files
        .get("META.json")
        .ok_or_else(|| {
            Error::invalid(
                "missing-meta",
                "the archive has no META.json at its top level",
            )
        })?
        .to_vec();
    let mut meta =
        parse_meta(&meta_bytes).map_err(|e| Error::invalid("invalid-meta", e.to_string()))?;
    meta.take_control_versions(&files);
    if meta.name != release.dist || meta.version != release.version {
        return Err(Error::invalid(
            "meta-mismatch",
            format!(
                "META.json describes {}@{}, the statement {}@{}",
                meta.name, meta.version, release.dist, release.version
            ),
        ));
    }
    let meta_provides: std::collections::BTreeMap<String, String> = meta
        .provides
        .iter()
        .map(|(k, p)| (k.clone(), p.version.clone()))
        .collect();
    if meta_provides != release.provides {
        return Err(Error::invalid(
            "meta-mismatch",
            format!(
                "META.json provides {meta_provides:?}, the statement {:?}",
                release.provides
            ),
        ));
    }
    if let Some(s) = meta.status {
        if s != release.status {
            return Err(Error::invalid(
                "meta-mismatch",
                format!(
                    "META.json release_status is {}, the statement says {}",
                    s.as_str(),
                    release.status.as_str()
                ),
            ));
        }
    }
    if hex(&sha256(&meta_bytes)) != release.meta_sha256 {
        return Err(Error::invalid(
            "digest-mismatch",
            "meta_sha256 is not the SHA-256 of the archive's META.json",
        ));
    }
    // The zip served is always the one this node builds from the files it read and checked,
    // deterministically, as the author's client did before signing; an uploaded zip is never
    // stored as uploaded (its local headers, extra fields or comments could differ from what
    // was checked).
    let zip = pgxn_zip(&release.dist, &release.version, &files).map_err(Error::internal)?;
    let sha1 = hex(&Sha1::digest(&zip));
    if hex(&sha256(&zip)) != release.sha256
        || sha1 != release.sha1
        || zip.len() as u64 != release.size
    {
        return Err(Error::invalid(
            "digest-mismatch",
            format!(
                "the statement signs sha256 {} ({} bytes) but the release zip is sha256 {} ({} bytes); sign the zip `pgext bundle` builds",
                release.sha256,
                release.size,
                hex(&sha256(&zip)),
                zip.len()
            ),
        ));
    }
    Ok(PreparedRelease {
        zip,
        meta: meta_bytes,
    })
}

/// A submission checked and its files stored: either already in the log, or ready for the
/// sequencer.
#[derive(Debug)]
pub enum Staged {
    /// The same statement is in the log: the answer it got, with a proof to today.
    Logged(Receipt),
    /// Checked, its files stored: the entry to sequence.
    Ready(Box<Entry>),
}

/// The sequencer of `origin`, whose node policy `entry` meets: only the sequencer takes uploads.
fn sequencing<'a>(origin: &'a Origin, entry: &Entry) -> Result<&'a super::sequencer::Handle> {
    let Some(seq) = origin.sequencer() else {
        return Err(Error::refused(
            Refusal::NotSequencer,
            "not-sequencer",
            format!("this node mirrors {}; submit to its sequencer", origin.name),
        ));
    };
    check_policy(&seq.policy, entry)?;
    Ok(seq)
}

/// The log index of exactly this attestation (field for field, by this actor with a key still
/// theirs), when it is in the log: a retry, answered as the first was.
pub fn logged_build(registry: &Registry, entry: &Entry) -> Option<u64> {
    let Action::Build(build) = &entry.statement.action else {
        return None;
    };
    let actor = entry.statement.actor.to_ascii_lowercase();
    registry
        .dist(&build.dist)
        .and_then(|d| d.releases.get(&build.version.to_ascii_lowercase()))
        .and_then(|r| {
            r.builds
                .iter()
                .find(|b| b.user == actor && b.build == *build)
        })
        .filter(|_| registry.check_publisher(entry).is_ok())
        .map(|b| b.index)
}

/// Judges a build statement before its package is read: on the sequencer, by the rules (a retry
/// of a logged attestation passes, to get its first answer); a mirror, whose state may lag,
/// leaves that to the sequencer it forwards to.
///
/// # Errors
/// A statement that is not a build, or one the rules refuse.
pub fn precheck_build(origin: &Origin, entry: &Entry) -> Result<()> {
    if !matches!(entry.statement.action, Action::Build(_)) {
        return Err(Error::bad_request("the statement is not a build"));
    }
    if origin.is_sequencer() {
        let snap = origin.snapshot();
        if logged_build(&snap.registry, entry).is_none() {
            snap.registry.check(entry)?;
        }
    }
    Ok(())
}

/// Checks a release upload, or an import with PGXN's zip, and stores its blobs, for
/// [`Origin::sequence`] to sequence: a release's zip is the one this node builds
/// ([`prepare`]), an import's is PGXN's, byte for byte ([`prepare_import`]).
///
/// # Errors
/// Any refusal; nothing is stored unless every check before sequencing passed.
pub async fn stage_release(origin: Arc<Origin>, archive: Vec<u8>, entry: Entry) -> Result<Staged> {
    let Some(release) = entry.statement.action.release().cloned() else {
        return Err(Error::bad_request(
            "the statement is not a release or an import",
        ));
    };
    let import = match &entry.statement.action {
        Action::Import(i) => Some(i.clone()),
        _ => None,
    };
    let seq = sequencing(&origin, &entry)?;
    let snap = origin.snapshot();
    // A retry of a release already in the log (same archive bytes, however often re-signed)
    // gets the answer the first upload got: its index, with a proof to today's checkpoint.
    // Other bytes for that version are refused below as a duplicate version.
    let published = snap
        .registry
        .dist(&release.dist)
        .and_then(|d| d.releases.get(&release.version.to_ascii_lowercase()))
        .filter(|r| r.release.sha256 == release.sha256 && r.imported == import.is_some())
        .filter(|_| snap.registry.check_publisher(&entry).is_ok())
        .map(|r| r.index);
    if let Some(index) = published {
        let o = origin.clone();
        return Ok(Staged::Logged(blocking(move || o.receipt(index)).await?));
    }
    // Authority first: an unauthorized upload costs no unpacking.
    snap.registry.check(&entry)?;
    drop(snap);
    let (o, limits) = (origin.clone(), seq.policy.limits);
    blocking(move || {
        let p = match &import {
            Some(i) => PreparedRelease {
                meta: prepare_import(&limits, &archive, i)?,
                zip: archive,
            },
            None => prepare(&limits, &archive, &release)?,
        };
        let blobs = o.content().blobs();
        blobs.put(&p.zip).map_err(Error::internal)?;
        blobs.put(&p.meta).map_err(Error::internal)?;
        Ok::<_, Error>(())
    })
    .await?;
    Ok(Staged::Ready(Box::new(entry)))
}

/// Checks a PGXN release zip against its import statement: PGXN's bytes exactly (size, SHA-256
/// and the SHA-1 PGXN published), safe to read under the node's archive limits, with a
/// META.json at its top whose SHA-256 the statement names and whose name, version, status and
/// extensions agree with it. Returns that META's bytes. Pure CPU work: nothing is stored.
///
/// PGXN's own META schema checks are the importer's to report: a release PGXN accepted years
/// ago is kept even where today's validator is stricter, as long as it says what it is.
///
/// # Errors
/// A refusal saying what is wrong.
pub fn prepare_import(limits: &Limits, zip: &[u8], import: &Import) -> Result<Vec<u8>> {
    let release = &import.release;
    let sha1 = hex(&Sha1::digest(zip));
    if zip.len() as u64 != release.size
        || hex(&sha256(zip)) != release.sha256
        || sha1 != release.sha1
    {
        return Err(Error::invalid(
            "digest-mismatch",
            format!(
                "the statement names SHA-1 {} ({} bytes) but the zip is SHA-1 {sha1} ({} bytes)",
                release.sha1,
                release.size,
                zip.len()
            ),
        ));
    }
    let files =
        read_archive(zip, limits).map_err(|e| Error::invalid("bad-archive", e.to_string()))?;
    let meta_bytes = files
        .get("META.json")
        .ok_or_else(|| Error::invalid("missing-meta", "the zip has no META.json at its top"))?
        .to_vec();
    if hex(&sha256(&meta_bytes)) != release.meta_sha256 {
        return Err(Error::invalid(
            "digest-mismatch",
            "meta_sha256 is not the SHA-256 of the zip's META.json",
        ));
    }
    let mut meta =
        read_stored_meta(&meta_bytes).map_err(|e| Error::invalid("invalid-meta", e.to_string()))?;
    meta.take_control_versions(&files);
    let provides: std::collections::BTreeMap<String, String> = meta
        .provides
        .iter()
        .map(|(k, p)| (k.clone(), p.version.clone()))
        .collect();
    let status_differs = meta.status.is_some_and(|s| s != release.status);
    if !meta.name.eq_ignore_ascii_case(&release.dist)
        || !meta.version.eq_ignore_ascii_case(&release.version)
        || provides != release.provides
        || status_differs
    {
        return Err(Error::invalid(
            "meta-mismatch",
            format!(
                "the zip's META.json describes {}@{} providing {provides:?}, the statement {}@{} providing {:?}",
                meta.name, meta.version, release.dist, release.version, release.provides
            ),
        ));
    }
    Ok(meta_bytes)
}

/// Checks a binary package against its attestation. Pure CPU work: nothing is stored.
///
/// # Errors
/// A refusal saying what is wrong.
pub fn prepare_build(limits: &Limits, package: &[u8], build: &Build) -> Result<()> {
    if package.len() as u64 != build.size || hex(&sha256(package)) != build.sha256 {
        return Err(Error::invalid(
            "digest-mismatch",
            format!(
                "the attestation signs sha256 {} ({} bytes) but the package is sha256 {} ({} bytes)",
                build.sha256,
                build.size,
                hex(&sha256(package)),
                package.len()
            ),
        ));
    }
    let binary =
        read_binary(package, limits).map_err(|e| Error::invalid("bad-binary", e.to_string()))?;
    let m = &binary.manifest;
    if !m.package.name.eq_ignore_ascii_case(&build.dist)
        || !m.package.version.eq_ignore_ascii_case(&build.version)
        || m.target != build.target
    {
        return Err(Error::invalid(
            "binary-mismatch",
            format!(
                "trunk.json describes {}@{} for {}, the attestation {}@{} for {}",
                m.package.name,
                m.package.version,
                m.target.slug(),
                build.dist,
                build.version,
                build.target.slug()
            ),
        ));
    }
    if binary.files.is_empty() {
        return Err(Error::invalid("bad-binary", "the package installs no file"));
    }
    Ok(())
}

/// Checks a build attestation and its binary package and stores the package, for
/// [`Origin::sequence`] to sequence.
///
/// # Errors
/// Any refusal; nothing is stored unless every check before sequencing passed.
pub async fn stage_build(origin: Arc<Origin>, package: Vec<u8>, entry: Entry) -> Result<Staged> {
    let Action::Build(build) = entry.statement.action.clone() else {
        return Err(Error::bad_request("the statement is not a build"));
    };
    let seq = sequencing(&origin, &entry)?;
    let snap = origin.snapshot();
    // A retry of an attestation in the log gets the answer the first got.
    let logged = logged_build(&snap.registry, &entry);
    if let Some(index) = logged {
        let o = origin.clone();
        return Ok(Staged::Logged(blocking(move || o.receipt(index)).await?));
    }
    snap.registry.check(&entry)?;
    drop(snap);
    let (o, limits) = (origin.clone(), seq.policy.limits);
    blocking(move || {
        prepare_build(&limits, &package, &build)?;
        o.content().blobs().put(&package).map_err(Error::internal)?;
        Ok::<_, Error>(())
    })
    .await?;
    Ok(Staged::Ready(Box::new(entry)))
}

/// Checks a submission for an origin this node sequences and stores its files: a release with
/// its archive, a build with its binary package, or any other entry (nothing to store).
///
/// # Errors
/// Any refusal, as for [`stage_release`] and [`stage_build`].
pub async fn stage(origin: Arc<Origin>, entry: Entry, file: Option<Vec<u8>>) -> Result<Staged> {
    match (file, &entry.statement.action) {
        (Some(package), Action::Build(_)) => stage_build(origin, package, entry).await,
        (Some(archive), _) => stage_release(origin, archive, entry).await,
        (None, Action::Release(_)) => Err(Error::bad_request(
            "releases go to /api/v1/releases with their archive",
        )),
        (None, Action::Build(_)) => Err(Error::bad_request(
            "builds go to /api/v1/builds with their binary package",
        )),
        (None, Action::Import(_)) => Err(Error::bad_request(
            "imports go to /api/v1/releases with PGXN's zip",
        )),
        (None, _) => Ok(Staged::Ready(Box::new(entry))),
    }
}

/// Takes a submission for an origin this node sequences: [`stage`], then sequenced.
///
/// # Errors
/// Any refusal, as for [`stage`] and [`Origin::sequence`].
pub async fn submit(origin: Arc<Origin>, entry: Entry, file: Option<Vec<u8>>) -> Result<Receipt> {
    match stage(origin.clone(), entry, file).await? {
        Staged::Logged(receipt) => Ok(receipt),
        Staged::Ready(entry) => origin.sequence(*entry).await,
    }
}
