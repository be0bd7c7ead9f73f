//! The publish pipeline for releases: read the upload safely, validate META.json against the
//! signed release statement, build the PGXN-style zip, check the digests the author signed, check
//! authority, store the blobs durably, and only then hand the entry to the sequencer.

use pgext_log::sha256;
use pgext_spec::archive::{pgxn_zip, read_archive, zip_prefix};
use pgext_spec::entry::{Action, Entry, Release};
use pgext_spec::meta::parse_meta;
use sha1::{Digest, Sha1};

use crate::blobs::hex;
use crate::error::ApiError;
use crate::node::Shared;
use crate::sequencer::{Receipt, check_policy};

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
/// A 4xx [`ApiError`] saying what is wrong and how to fix it.
pub fn prepare(
    shared: &Shared,
    archive: &[u8],
    release: &Release,
) -> Result<PreparedRelease, ApiError> {
    let files = read_archive(archive, &shared.config.limits)
        .map_err(|e| ApiError::invalid("bad-archive", e.to_string()))?;
    let meta_bytes = files
        .get("META.json")
        .ok_or_else(|| {
            ApiError::invalid(
                "missing-meta",
                "the archive has no META.json at its top level",
            )
        })?
        .to_vec();
    let meta =
        parse_meta(&meta_bytes).map_err(|e| ApiError::invalid("invalid-meta", e.to_string()))?;
    if meta.name != release.dist || meta.version != release.version {
        return Err(ApiError::invalid(
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
        return Err(ApiError::invalid(
            "meta-mismatch",
            format!(
                "META.json provides {meta_provides:?}, the statement {:?}",
                release.provides
            ),
        ));
    }
    if let Some(s) = meta.status {
        if s != release.status {
            return Err(ApiError::invalid(
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
        return Err(ApiError::invalid(
            "digest-mismatch",
            "meta_sha256 is not the SHA-256 of the archive's META.json",
        ));
    }
    // An upload that already is the canonical zip is kept byte for byte; anything else is
    // repacked, deterministically, as the author's client did before signing.
    let prefix = format!("{}/", zip_prefix(&release.dist, &release.version));
    let is_canonical_zip = archive.starts_with(b"PK\x03\x04")
        && hex(&sha256(archive)) == release.sha256
        && zip::ZipArchive::new(std::io::Cursor::new(archive))
            .is_ok_and(|z| z.file_names().all(|n| n.starts_with(&prefix)));
    let zip = if is_canonical_zip {
        archive.to_vec()
    } else {
        pgxn_zip(&release.dist, &release.version, &files).map_err(ApiError::internal)?
    };
    let sha1 = hex(&Sha1::digest(&zip));
    if hex(&sha256(&zip)) != release.sha256
        || sha1 != release.sha1
        || zip.len() as u64 != release.size
    {
        return Err(ApiError::invalid(
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

/// Publishes a release end to end.
///
/// # Errors
/// Any refusal; nothing is stored unless every check before sequencing passed.
pub async fn publish_release(
    shared: std::sync::Arc<Shared>,
    archive: Vec<u8>,
    entry: Entry,
) -> Result<Receipt, ApiError> {
    let Action::Release(release) = entry.statement.action.clone() else {
        return Err(ApiError::bad_request("the statement is not a release"));
    };
    check_policy(&shared, &entry)?;
    // A retry of a release already in the log (same archive bytes, however often re-signed)
    // gets the answer the first upload got: its index, with a proof to today's checkpoint.
    // Other bytes for that version are refused below as a duplicate version.
    let published = {
        let reg = shared.registry.read().unwrap_or_else(|p| p.into_inner());
        reg.dist(&release.dist)
            .and_then(|d| d.releases.get(&release.version.to_ascii_lowercase()))
            .filter(|r| r.release.sha256 == release.sha256)
            .filter(|_| reg.check_publisher(&entry).is_ok())
            .map(|r| r.index)
    };
    if let Some(index) = published {
        return receipt_of(&shared, index);
    }
    // Authority first: an unauthorized upload costs no unpacking.
    shared
        .registry
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .check(&entry)?;
    let s = shared.clone();
    let prepared = tokio::task::spawn_blocking(move || {
        let p = prepare(&s, &archive, &release)?;
        s.blobs.put(&p.zip).map_err(ApiError::internal)?;
        s.blobs.put(&p.meta).map_err(ApiError::internal)?;
        Ok::<_, ApiError>(p)
    })
    .await
    .map_err(ApiError::internal)??;
    drop(prepared);
    shared.sequence(entry).await
}

/// The receipt of the entry at `index`: a proof of inclusion in the current checkpoint, with
/// the entry in the proof file (`spec/log.md`).
pub(crate) fn receipt_of(shared: &Shared, index: u64) -> Result<Receipt, ApiError> {
    let (size, note) = shared.checkpoint();
    let reader = pgext_log::TileHashReader::new(size, &shared.store);
    let proof = pgext_log::inclusion_proof(index, size, &reader).map_err(ApiError::internal)?;
    let entry = shared
        .store
        .entries(index, index + 1)
        .map_err(ApiError::internal)?
        .pop();
    Ok(Receipt {
        index,
        checkpoint: note.clone(),
        proof: pgext_log::ProofFile {
            extra: entry,
            index,
            proof,
            checkpoint: note.into_bytes(),
        }
        .to_bytes(),
    })
}

/// Takes a submission for an origin this node sequences: a release with its archive, or any
/// other entry.
///
/// # Errors
/// Any refusal, as for [`publish_release`] and [`Shared::sequence`].
pub async fn submit(
    shared: std::sync::Arc<Shared>,
    entry: Entry,
    archive: Option<Vec<u8>>,
) -> Result<Receipt, ApiError> {
    match archive {
        Some(archive) => publish_release(shared, archive, entry).await,
        None if matches!(entry.statement.action, Action::Release(_)) => Err(ApiError::bad_request(
            "releases go to /api/v1/releases with their archive",
        )),
        None => shared.sequence(entry).await,
    }
}

/// The body of a `201 Created` answer to a submission.
pub fn receipt_json(r: &Receipt) -> serde_json::Value {
    serde_json::json!({"index": r.index, "checkpoint": r.checkpoint, "proof": String::from_utf8_lossy(&r.proof)})
}
