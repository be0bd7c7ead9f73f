//! Fetching a release and proving it before anything is written: the checks of
//! `spec/client.md`, in their order, each failure with its own [`VerifyError`].

use futures::future::try_join_all;
use pgext_log::{
    SignedCheckpoint, VerifierKey, leaf_hash, open_checkpoint, verify_consistency, verify_inclusion,
};
use pgext_spec::api;
use pgext_spec::authority::{Registry, Rule};
use pgext_spec::entry::Entry;

pub use crate::provenance::Provenance;
use crate::request::{Chosen, Select, choose};
use crate::trust::{RegistryConfig, State};
use crate::{Error, VerifyError};

/// A release whose every check passed.
#[derive(Debug, Clone)]
pub struct VerifiedRelease {
    /// The archive.
    pub zip: Vec<u8>,
    /// The log entry.
    pub entry: Entry,
    /// The report.
    pub provenance: Provenance,
    /// Set when the release is yanked (chosen because its version was named).
    pub warning: Option<String>,
}

async fn read_body(
    mut r: reqwest::Response,
    progress: &dyn crate::progress::Progress,
    max: Option<u64>,
) -> Result<Vec<u8>, String> {
    let total = r.content_length();
    let mut body = Vec::with_capacity(total.unwrap_or(0).min(64 << 20) as usize);
    while let Some(chunk) = r.chunk().await.map_err(|e| e.to_string())? {
        body.extend_from_slice(&chunk);
        if let Some(max) = max.filter(|&m| body.len() as u64 > m) {
            return Err(format!(
                "the answer is longer than the {max} bytes expected"
            ));
        }
        progress.bytes(body.len() as u64, total);
    }
    Ok(body)
}

/// A registry's nodes, asked in order.
#[derive(Debug, Clone)]
pub struct Remote {
    name: String,
    urls: Vec<String>,
    access: crate::auth::Access,
}

impl Remote {
    /// The nodes of a configured registry.
    pub fn new(reg: &RegistryConfig) -> Remote {
        Remote {
            name: reg.name.clone(),
            urls: reg
                .urls
                .iter()
                .map(|u| u.trim_end_matches('/').to_string())
                .collect(),
            access: crate::auth::Access::new(reg, None),
        }
    }

    /// GET `path` from the first node that has it; [`VerifyError::NotFound`] when the nodes
    /// that answered all said 404.
    ///
    /// # Errors
    /// When no node answers.
    pub async fn get(&self, path: &str) -> Result<Vec<u8>, Error> {
        self.get_with(path, &crate::progress::Quiet).await
    }

    /// [`Remote::get`], reporting the bytes received to `progress`.
    ///
    /// # Errors
    /// When no node answers.
    pub async fn get_with(
        &self,
        path: &str,
        progress: &dyn crate::progress::Progress,
    ) -> Result<Vec<u8>, Error> {
        self.get_limited(path, progress, None).await
    }

    /// [`Remote::get_with`], reading at most `max` bytes of an answer when given (a node that
    /// sends more is passed over like one that fails).
    ///
    /// # Errors
    /// When no node answers within the limit.
    pub async fn get_limited(
        &self,
        path: &str,
        progress: &dyn crate::progress::Progress,
        max: Option<u64>,
    ) -> Result<Vec<u8>, Error> {
        let mut why = String::from("no URL configured");
        // A mirror that lags may not have a new release yet: a 404 moves on to the next node,
        // and is the answer only when no node has it.
        let mut not_found = None;
        for base in &self.urls {
            match self.access.get(&format!("{base}{path}")).await {
                Ok(r) if r.status().is_success() => match read_body(r, progress, max).await {
                    Ok(b) => return Ok(b),
                    Err(e) => why = format!("{base}{path}: {e}"),
                },
                Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => {
                    let body = r.bytes().await.unwrap_or_default();
                    let (_, detail) = crate::http::error_of(&body);
                    not_found.get_or_insert(format!("{base}{path}: {detail}"));
                }
                Ok(r) => {
                    let status = r.status();
                    let body = r.bytes().await.unwrap_or_default();
                    let (code, detail) = crate::http::error_of(&body);
                    why = format!("{base}{path}: HTTP {status} {code}: {detail}");
                }
                Err(e) => why = format!("{base}: {e}"),
            }
        }
        if let Some(detail) = not_found {
            return Err(Error::Verify(VerifyError::NotFound(detail)));
        }
        Err(Error::Verify(VerifyError::Unreachable {
            registry: self.name.clone(),
            path: path.to_string(),
            why,
        }))
    }

    /// GET a JSON document of the native API, as its type in `pgext_spec::api`.
    ///
    /// # Errors
    /// As [`Remote::get`], or when it is not that document.
    pub async fn json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        // No API document is near this size: a node sending more is passed over.
        const MAX_JSON: u64 = 64 << 20;
        let bytes = self
            .get_limited(path, &crate::progress::Quiet, Some(MAX_JSON))
            .await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Verify(VerifyError::Malformed(format!("{path}: {e}"))))
    }

    pub(crate) async fn entry(&self, index: u64) -> Result<Entry, Error> {
        let doc: api::EntryDoc = self.json(&format!("/api/v1/entries/{index}")).await?;
        Ok(doc.entry)
    }

    pub(crate) async fn inclusion(&self, index: u64, size: u64) -> Result<Vec<Vec<u8>>, Error> {
        let path = format!("/api/v1/proofs/inclusion/{index}/{size}");
        let doc: api::InclusionProof = self.json(&path).await?;
        hashes(&path, &doc.proof)
    }

    async fn consistency(&self, from: u64, to: u64) -> Result<Vec<Vec<u8>>, Error> {
        let path = format!("/api/v1/proofs/consistency/{from}/{to}");
        let doc: api::ConsistencyProof = self.json(&path).await?;
        hashes(&path, &doc.proof)
    }
}

/// The hashes of a proof document, decoded.
fn hashes(path: &str, proof: &[String]) -> Result<Vec<Vec<u8>>, Error> {
    {
        proof
            .iter()
            .map(|h| {
                pgext_log::Hash::from_base64(h)
                    .map(|h| h.as_bytes().to_vec())
                    .ok_or_else(|| {
                        Error::Verify(VerifyError::Malformed(format!("{path}: bad hash")))
                    })
            })
            .collect()
    }
}

/// Checks that the entry `bytes` is at `index` in the tree of `size` entries whose root is
/// `root`, by the inclusion `proof`.
pub(crate) fn check_included(
    index: u64,
    size: u64,
    bytes: &[u8],
    proof: &[Vec<u8>],
    root: &pgext_log::Hash,
) -> Result<(), Error> {
    verify_inclusion(index, size, leaf_hash(bytes).as_ref(), proof, root.as_ref()).map_err(|e| {
        Error::Verify(VerifyError::Inclusion {
            index,
            size,
            detail: e.to_string(),
        })
    })
}

/// Whether the verified cosigners meet the registry's witness policy.
pub(crate) fn check_quorum(reg: &RegistryConfig, cosigners: &[VerifierKey]) -> Result<(), Error> {
    match reg.policy()? {
        Some(p) if !p.satisfied_by(cosigners) => Err(Error::Verify(VerifyError::PolicyQuorum {
            have: cosigners.len(),
            quorum: p.quorum.unwrap_or_default(),
        })),
        Some(_) => Ok(()),
        None if cosigners.len() < reg.quorum => Err(Error::Verify(VerifyError::Quorum {
            have: cosigners.len(),
            need: reg.quorum,
        })),
        None => Ok(()),
    }
}

/// Opens a checkpoint with the registry's keys; returns the trusted witnesses whose
/// cosignatures verify.
pub(crate) fn open_with_policy(
    reg: &RegistryConfig,
    note: &str,
) -> Result<(SignedCheckpoint, Vec<VerifierKey>), Error> {
    let log_key = reg.log_key()?;
    let witnesses = reg.witness_keys()?;
    let signed = open_checkpoint(note.as_bytes(), &log_key, &witnesses).map_err(|e| {
        VerifyError::LogSignature {
            vkey: reg.vkey.clone(),
            detail: e.to_string(),
        }
    })?;
    let cosigners: Vec<VerifierKey> = witnesses
        .into_iter()
        .filter(|w| signed.note.verified_by(w).is_some())
        .collect();
    Ok((signed, cosigners))
}

/// Fetches the release of `dist` that `select` names ([`choose`]) from the registry and checks, in
/// order: the archive's SHA-256 against the log entry; the publisher's signature; the
/// publisher's authority at that index (from the account's and the distribution's history
/// entries); that each of those entries is included in a checkpoint signed by the log key;
/// the witness quorum; and consistency with the checkpoint remembered in `state`, which then
/// moves forward. Nothing is written but the remembered checkpoint, and only when all passed.
///
/// # Errors
/// The first check that failed.
pub async fn fetch_verified(
    reg: &RegistryConfig,
    state: &State,
    dist: &str,
    select: &Select,
) -> Result<VerifiedRelease, Error> {
    fetch_verified_with(reg, state, dist, select, &crate::progress::Quiet).await
}

/// [`fetch_verified`], reporting the archive's download to `progress`.
///
/// # Errors
/// The first check that failed.
pub async fn fetch_verified_with(
    reg: &RegistryConfig,
    state: &State,
    dist: &str,
    select: &Select,
    progress: &dyn crate::progress::Progress,
) -> Result<VerifiedRelease, Error> {
    let remote = &Remote::new(reg);
    let doc: api::Dist = remote.json(&format!("/api/v1/dists/{dist}")).await?;
    let Chosen {
        release: rel,
        warning,
    } = choose(&doc, dist, select)?;
    let index = rel.index;
    let name = doc.name.clone();
    let v = rel.version.clone();
    let wanted = format!("{name}@{v}");

    // Everything the checks need, fetched first.
    let note = String::from_utf8(remote.get("/log/checkpoint").await?)
        .map_err(|_| Error::Verify(VerifyError::Malformed("checkpoint is not UTF-8".into())))?;
    let entry = remote.entry(index).await?;
    let Some(r) = entry.statement.action.release() else {
        return Err(Error::Verify(VerifyError::WrongEntry { index, wanted }));
    };
    if !r.dist.eq_ignore_ascii_case(&name) || !r.version.eq_ignore_ascii_case(&v) {
        return Err(Error::Verify(VerifyError::WrongEntry { index, wanted }));
    }
    let zip = remote
        .get_with(&format!("/dist/{name}/{v}/{name}-{v}.zip"), progress)
        .await?;
    let actor = entry.statement.actor.to_ascii_lowercase();
    // The operator has no account: its key is the log's, which the trust policy holds.
    let account_history = if actor == pgext_spec::entry::OPERATOR {
        Vec::new()
    } else {
        let account: api::Account = remote.json(&format!("/api/v1/accounts/{actor}")).await?;
        account.history
    };
    let mut history: Vec<u64> = doc
        .history
        .iter()
        .chain(&account_history)
        .copied()
        .filter(|&i| i < index)
        .collect();
    history.sort_unstable();
    history.dedup();
    // Fetched at once: a distribution's history can be long.
    let earlier: Vec<(u64, Entry)> = try_join_all(
        history
            .iter()
            .map(|&i| async move { remote.entry(i).await.map(|e| (i, e)) }),
    )
    .await?;

    // 1. The archive is the one the entry names.
    let got = pgext_log::hex(&pgext_log::sha256(&zip));
    if got != r.sha256 || zip.len() as u64 != r.size {
        return Err(Error::Verify(VerifyError::Digest {
            expected: r.sha256.clone(),
            got,
        }));
    }
    // 2–3. The publisher's signature and authority, from the state the earlier entries build.
    let mut state_then = Registry::for_log(&reg.log_key()?);
    for (i, e) in &earlier {
        state_then.apply_logged(*i, e);
    }
    if let Err(v) = state_then.check_publisher(&entry) {
        return Err(Error::Verify(if v.rule == Rule::BadSignature {
            VerifyError::Signature {
                index,
                detail: v.detail,
            }
        } else {
            VerifyError::Authority {
                index,
                detail: v.to_string(),
            }
        }));
    }
    // 4. Every entry used is in the tree the log key signed.
    let (signed, cosigners) = open_with_policy(reg, &note)?;
    let size = signed.checkpoint.size;
    let used: Vec<(u64, &Entry)> = earlier
        .iter()
        .map(|(i, e)| (*i, e))
        .chain(std::iter::once((index, &entry)))
        .collect();
    if size <= index {
        return Err(Error::Verify(VerifyError::Inclusion {
            index,
            size,
            detail: "the checkpoint is older than the entry".into(),
        }));
    }
    let proofs = try_join_all(
        used.iter()
            .map(|(i, _)| async move { remote.inclusion(*i, size).await }),
    )
    .await?;
    for ((i, e), proof) in used.iter().zip(proofs) {
        let inclusion = |detail: String| VerifyError::Inclusion {
            index: *i,
            size,
            detail,
        };
        verify_inclusion(
            *i,
            size,
            leaf_hash(&e.to_bytes()).as_ref(),
            &proof,
            signed.checkpoint.root.as_ref(),
        )
        .map_err(|e| inclusion(e.to_string()))?;
    }
    // 5. Enough trusted witnesses cosigned it.
    check_quorum(reg, &cosigners)?;
    // 6. It extends (or is contained in) the newest checkpoint verified before.
    // `open_checkpoint` holds the origin line to the log key's name.
    let origin = signed.checkpoint.origin.clone();
    let newer = check_consistency(reg, remote, state, &origin, &signed).await?;
    if newer {
        state.remember(&origin, &note)?;
    }

    let yanked = rel
        .yanked
        .then(|| rel.yank_reason.clone().unwrap_or_default());
    let mut provenance = Provenance::of(reg, &entry, index, note, &signed, cosigners, yanked);
    provenance.ci = state_then
        .ci_key(&entry.statement.key_id)
        .map(|k| k.claims.clone());
    Ok(VerifiedRelease {
        provenance,
        zip,
        entry,
        warning,
    })
}

/// Verifies a release archive with its tlog-proof file, with no network (`spec/client.md`,
/// Offline). The file's `extra` line holds the release entry; checked, in order: the archive's
/// SHA-256 and size against the entry; the checkpoint's log signature; the entry's inclusion in
/// it; the witness quorum; and, when the remembered checkpoint has the same size, the same
/// root. The publisher's key is not in the entry, so signature and authority rest on the log
/// and its cosigners, who check both before they sign. The remembered checkpoint does not
/// move: no consistency proof can be had offline.
///
/// # Errors
/// The first check that failed.
pub fn verify_offline(
    reg: &RegistryConfig,
    state: &State,
    archive: &[u8],
    proof_file: &[u8],
) -> Result<VerifiedRelease, Error> {
    let file = pgext_log::ProofFile::parse(proof_file).map_err(|e| {
        Error::Verify(VerifyError::Malformed(format!(
            "the proof file cannot be read: {e}"
        )))
    })?;
    let index = file.index;
    let bytes = file.extra.as_deref().ok_or_else(|| {
        VerifyError::Malformed(
            "the proof file carries no log entry (no `extra` line): it was not made by a pgext node"
                .into(),
        )
    })?;
    let entry = Entry::parse(bytes).map_err(|e| {
        VerifyError::Malformed(format!("the proof file's entry cannot be read: {e}"))
    })?;
    let Some(r) = entry.statement.action.release() else {
        return Err(Error::Verify(VerifyError::Malformed(format!(
            "the proof file's entry {index} is not a release"
        ))));
    };
    let got = pgext_log::hex(&pgext_log::sha256(archive));
    if got != r.sha256 || archive.len() as u64 != r.size {
        return Err(Error::Verify(VerifyError::Digest {
            expected: r.sha256.clone(),
            got,
        }));
    }
    let note = String::from_utf8(file.checkpoint.clone())
        .map_err(|_| Error::Verify(VerifyError::Malformed("checkpoint is not UTF-8".into())))?;
    let (signed, cosigners) = open_with_policy(reg, &note)?;
    let size = signed.checkpoint.size;
    let proof: Vec<Vec<u8>> = file.proof.iter().map(|h| h.as_bytes().to_vec()).collect();
    check_included(index, size, bytes, &proof, &signed.checkpoint.root)?;
    check_quorum(reg, &cosigners)?;
    let origin = signed.checkpoint.origin.clone();
    if let Some(old) = state.checkpoint(&origin) {
        let old = open_checkpoint(old.as_bytes(), &reg.log_key()?, &[]).map_err(|e| {
            VerifyError::Malformed(format!(
                "the remembered checkpoint of {origin} does not open: {e}"
            ))
        })?;
        if old.checkpoint.size == size && old.checkpoint.root != signed.checkpoint.root {
            return Err(Error::Verify(VerifyError::Inconsistent {
                size,
                remembered: size,
                detail: "same size, another root".into(),
            }));
        }
    }
    Ok(VerifiedRelease {
        provenance: Provenance::of(reg, &entry, index, note, &signed, cosigners, None),
        zip: archive.to_vec(),
        entry,
        warning: None,
    })
}

/// Checks `signed` against the remembered checkpoint of `origin`; whether it is newer.
async fn check_consistency(
    reg: &RegistryConfig,
    remote: &Remote,
    state: &State,
    origin: &str,
    signed: &SignedCheckpoint,
) -> Result<bool, Error> {
    let Some(old_note) = state.checkpoint(origin) else {
        return Ok(true);
    };
    let old = open_checkpoint(old_note.as_bytes(), &reg.log_key()?, &[]).map_err(|e| {
        VerifyError::Malformed(format!(
            "the remembered checkpoint of {origin} does not open: {e}"
        ))
    })?;
    let (a, b) = (&old.checkpoint, &signed.checkpoint);
    let inconsistent = |detail: String| VerifyError::Inconsistent {
        size: b.size,
        remembered: a.size,
        detail,
    };
    if a.size == b.size {
        return if a.root == b.root {
            Ok(false)
        } else {
            Err(inconsistent("same size, another root".into()).into())
        };
    }
    let (small, large) = if a.size < b.size { (a, b) } else { (b, a) };
    let proof = remote
        .consistency(small.size, large.size)
        .await
        .map_err(|e| inconsistent(format!("no consistency proof: {e}")))?;
    verify_consistency(
        small.size,
        large.size,
        &proof,
        small.root.as_ref(),
        large.root.as_ref(),
    )
    .map_err(|e| inconsistent(e.to_string()))?;
    Ok(b.size > a.size)
}
