//! Fetching a release and proving it before anything is written: the checks of
//! `spec/client.md`, in their order, each failure with its own [`VerifyError`].

use futures::future::try_join_all;
use pgext_log::{
    SignedCheckpoint, VerifierKey, leaf_hash, open_checkpoint, verify_consistency, verify_inclusion,
};
use pgext_spec::authority::{Registry, Rule};
use pgext_spec::entry::{Action, Entry};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::request::{Chosen, Select, choose};
use crate::trust::{RegistryConfig, State};

/// Why a release was not believed. Each says what failed and what it means.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// No node of the registry answered.
    #[error("no node of registry {registry} answered {path}: {why}")]
    Unreachable {
        /// Registry name.
        registry: String,
        /// What was asked.
        path: String,
        /// The last failure.
        why: String,
    },
    /// The registry has no such release.
    #[error("{0}")]
    NotFound(String),
    /// The downloaded archive is not the one the log names.
    #[error(
        "the archive's SHA-256 is {got} but the log entry names {expected}: the bytes were changed on the way or on the server; nothing was installed"
    )]
    Digest {
        /// The entry's SHA-256.
        expected: String,
        /// The archive's.
        got: String,
    },
    /// The log entry is not what was asked for.
    #[error(
        "log entry {index} is not a release of {wanted}: the server answered with another entry"
    )]
    WrongEntry {
        /// Index.
        index: u64,
        /// `dist@version`.
        wanted: String,
    },
    /// The publisher's signature does not verify.
    #[error(
        "the publisher's signature on log entry {index} does not verify ({detail}): the release statement was forged or altered"
    )]
    Signature {
        /// Index.
        index: u64,
        /// Why.
        detail: String,
    },
    /// The signer may not publish this distribution.
    #[error(
        "the publisher had no authority for log entry {index}: {detail}. The release was signed by a key that does not own the distribution"
    )]
    Authority {
        /// Index.
        index: u64,
        /// Why.
        detail: String,
    },
    /// The checkpoint is not signed by the trusted log key.
    #[error(
        "the checkpoint is not signed by the trusted log key {vkey}: {detail}. The server is not the registry you trust, or it was tampered with"
    )]
    LogSignature {
        /// The trusted key.
        vkey: String,
        /// Why.
        detail: String,
    },
    /// An entry is not in the signed tree.
    #[error(
        "log entry {index} is not in the signed tree of size {size}: its inclusion proof fails ({detail}). The server showed an entry the log does not hold"
    )]
    Inclusion {
        /// Index.
        index: u64,
        /// Checkpoint size.
        size: u64,
        /// Why.
        detail: String,
    },
    /// Too few trusted witnesses cosigned.
    #[error(
        "only {have} of the {need} witness cosignatures required are on the checkpoint: the log's view is not confirmed by enough independent witnesses"
    )]
    Quorum {
        /// Verified cosignatures by trusted witnesses.
        have: usize,
        /// The quorum.
        need: usize,
    },
    /// The cosigners do not satisfy the tlog-policy's quorum.
    #[error(
        "the {have} verified witness cosignature(s) on the checkpoint do not satisfy the policy's quorum {quorum}: the log's view is not confirmed by enough independent witnesses"
    )]
    PolicyQuorum {
        /// Verified cosignatures by the policy's witnesses.
        have: usize,
        /// The policy's quorum rule.
        quorum: String,
    },
    /// The checkpoint does not extend the one remembered.
    #[error(
        "the checkpoint of size {size} is not consistent with the one remembered at size {remembered} ({detail}): the log was rewritten or this server shows a split view; refusing it"
    )]
    Inconsistent {
        /// Served size.
        size: u64,
        /// Remembered size.
        remembered: u64,
        /// Why.
        detail: String,
    },
    /// The answer could not be read.
    #[error("{0}")]
    Malformed(String),
    /// The local state could not be written.
    #[error(transparent)]
    Client(#[from] crate::ClientError),
}

/// Who published what, when, and what proves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// Registry name.
    pub registry: String,
    /// Log origin.
    pub origin: String,
    /// Distribution.
    pub dist: String,
    /// Version.
    pub version: String,
    /// Release status.
    pub status: String,
    /// Publisher (account).
    pub publisher: String,
    /// Publisher's key id.
    pub key_id: String,
    /// Statement time (seconds since the epoch).
    pub time: u64,
    /// Log index.
    pub index: u64,
    /// Archive SHA-256.
    pub sha256: String,
    /// Checkpoint size the proof leads to.
    pub checkpoint_size: u64,
    /// The checkpoint, as a signed note.
    pub checkpoint: String,
    /// Trusted witnesses whose cosignatures verified.
    pub cosigners: Vec<String>,
    /// Yanked, with the reason.
    pub yanked: Option<String>,
}

impl Provenance {
    /// The report for a release `entry` at `index`, proven by the checkpoint `note`.
    fn of(
        reg: &RegistryConfig,
        entry: &Entry,
        index: u64,
        note: String,
        signed: &SignedCheckpoint,
        cosigners: Vec<VerifierKey>,
        yanked: Option<String>,
    ) -> Provenance {
        let (dist, version, status, sha256) = match &entry.statement.action {
            Action::Release(r) => (
                r.dist.clone(),
                r.version.clone(),
                r.status.as_str().to_string(),
                r.sha256.clone(),
            ),
            _ => Default::default(),
        };
        Provenance {
            registry: reg.name.clone(),
            origin: signed.checkpoint.origin.clone(),
            dist,
            version,
            status,
            publisher: entry.statement.actor.clone(),
            key_id: entry.statement.key_id.clone(),
            time: entry.statement.time,
            index,
            sha256,
            checkpoint_size: signed.checkpoint.size,
            checkpoint: note,
            cosigners: cosigners.iter().map(VerifierKey::to_string).collect(),
            yanked,
        }
    }
}

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
    progress: &dyn crate::ops::Progress,
) -> Result<Vec<u8>, reqwest::Error> {
    let total = r.content_length();
    let mut body = Vec::with_capacity(total.unwrap_or(0).min(64 << 20) as usize);
    while let Some(chunk) = r.chunk().await? {
        body.extend_from_slice(&chunk);
        progress.bytes(body.len() as u64, total);
    }
    Ok(body)
}

/// A registry's nodes, asked in order.
#[derive(Debug, Clone)]
pub struct Remote {
    name: String,
    urls: Vec<String>,
    http: reqwest::Client,
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
            http: reqwest::Client::new(),
        }
    }

    /// GET `path` from the first node that has it; [`VerifyError::NotFound`] when the nodes
    /// that answered all said 404.
    ///
    /// # Errors
    /// When no node answers.
    pub async fn get(&self, path: &str) -> Result<Vec<u8>, VerifyError> {
        self.get_with(path, &crate::ops::Quiet).await
    }

    /// [`Remote::get`], reporting the bytes received to `progress`.
    ///
    /// # Errors
    /// When no node answers.
    pub async fn get_with(
        &self,
        path: &str,
        progress: &dyn crate::ops::Progress,
    ) -> Result<Vec<u8>, VerifyError> {
        let mut why = String::from("no URL configured");
        // A mirror that lags may not have a new release yet: a 404 moves on to the next node,
        // and is the answer only when no node has it.
        let mut not_found = None;
        for base in &self.urls {
            match self.http.get(format!("{base}{path}")).send().await {
                Ok(r) if r.status().is_success() => match read_body(r, progress).await {
                    Ok(b) => return Ok(b),
                    Err(e) => why = e.to_string(),
                },
                Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => {
                    let body: Value = r.json().await.unwrap_or_default();
                    let (_, detail) = crate::api::error_of(&body);
                    not_found.get_or_insert(format!("{base}{path}: {detail}"));
                }
                Ok(r) => why = format!("{base}{path}: HTTP {}", r.status()),
                Err(e) => why = format!("{base}: {e}"),
            }
        }
        if let Some(detail) = not_found {
            return Err(VerifyError::NotFound(detail));
        }
        Err(VerifyError::Unreachable {
            registry: self.name.clone(),
            path: path.to_string(),
            why,
        })
    }

    /// GET a JSON document.
    ///
    /// # Errors
    /// As [`Remote::get`], or when it is not JSON.
    pub async fn json(&self, path: &str) -> Result<Value, VerifyError> {
        let bytes = self.get(path).await?;
        serde_json::from_slice(&bytes).map_err(|e| VerifyError::Malformed(format!("{path}: {e}")))
    }

    async fn entry(&self, index: u64) -> Result<Entry, VerifyError> {
        let doc = self.json(&format!("/api/v1/entries/{index}")).await?;
        serde_json::from_value(doc["entry"].clone())
            .map_err(|e| VerifyError::Malformed(format!("entry {index}: {e}")))
    }

    async fn proof(&self, path: &str) -> Result<Vec<Vec<u8>>, VerifyError> {
        let doc = self.json(path).await?;
        doc["proof"]
            .as_array()
            .ok_or_else(|| VerifyError::Malformed(format!("{path}: no proof")))?
            .iter()
            .map(|h| {
                h.as_str()
                    .and_then(pgext_log::Hash::from_base64)
                    .map(|h| h.as_bytes().to_vec())
                    .ok_or_else(|| VerifyError::Malformed(format!("{path}: bad hash")))
            })
            .collect()
    }
}

/// Whether the verified cosigners meet the registry's witness policy.
pub(crate) fn check_quorum(
    reg: &RegistryConfig,
    cosigners: &[VerifierKey],
) -> Result<(), VerifyError> {
    match reg.policy()? {
        Some(p) if !p.satisfied_by(cosigners) => Err(VerifyError::PolicyQuorum {
            have: cosigners.len(),
            quorum: p.quorum.unwrap_or_default(),
        }),
        Some(_) => Ok(()),
        None if cosigners.len() < reg.quorum => Err(VerifyError::Quorum {
            have: cosigners.len(),
            need: reg.quorum,
        }),
        None => Ok(()),
    }
}

/// Opens a checkpoint with the registry's keys; returns the trusted witnesses whose
/// cosignatures verify.
pub(crate) fn open_with_policy(
    reg: &RegistryConfig,
    note: &str,
) -> Result<(SignedCheckpoint, Vec<VerifierKey>), VerifyError> {
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
) -> Result<VerifiedRelease, VerifyError> {
    fetch_verified_with(reg, state, dist, select, &crate::ops::Quiet).await
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
    progress: &dyn crate::ops::Progress,
) -> Result<VerifiedRelease, VerifyError> {
    let remote = &Remote::new(reg);
    let doc = remote.json(&format!("/api/v1/dists/{dist}")).await?;
    let Chosen {
        release: rel,
        warning,
    } = choose(&doc, dist, select)?;
    let index = rel["index"]
        .as_u64()
        .ok_or_else(|| VerifyError::Malformed("release without a log index".into()))?;
    let name = doc["name"].as_str().unwrap_or(dist).to_string();
    let v = rel["version"].as_str().unwrap_or_default().to_string();
    let wanted = format!("{name}@{v}");

    // Everything the checks need, fetched first.
    let note = String::from_utf8(remote.get("/log/checkpoint").await?)
        .map_err(|_| VerifyError::Malformed("checkpoint is not UTF-8".into()))?;
    let entry = remote.entry(index).await?;
    let Action::Release(r) = &entry.statement.action else {
        return Err(VerifyError::WrongEntry { index, wanted });
    };
    if !r.dist.eq_ignore_ascii_case(&name) || !r.version.eq_ignore_ascii_case(&v) {
        return Err(VerifyError::WrongEntry { index, wanted });
    }
    let zip = remote
        .get_with(&format!("/dist/{name}/{v}/{name}-{v}.zip"), progress)
        .await?;
    let actor = entry.statement.actor.to_ascii_lowercase();
    let account = remote.json(&format!("/api/v1/accounts/{actor}")).await?;
    let mut history: Vec<u64> = [&doc["history"], &account["history"]]
        .iter()
        .flat_map(|h| h.as_array().cloned().unwrap_or_default())
        .filter_map(|i| i.as_u64())
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
        return Err(VerifyError::Digest {
            expected: r.sha256.clone(),
            got,
        });
    }
    // 2–3. The publisher's signature and authority, from the state the earlier entries build.
    let mut state_then = Registry::default();
    for (i, e) in &earlier {
        state_then.apply_logged(*i, e);
    }
    if let Err(v) = state_then.check_publisher(&entry) {
        return Err(if v.rule == Rule::BadSignature {
            VerifyError::Signature {
                index,
                detail: v.detail,
            }
        } else {
            VerifyError::Authority {
                index,
                detail: v.to_string(),
            }
        });
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
        return Err(VerifyError::Inclusion {
            index,
            size,
            detail: "the checkpoint is older than the entry".into(),
        });
    }
    let proofs = try_join_all(used.iter().map(|(i, _)| async move {
        remote
            .proof(&format!("/api/v1/proofs/inclusion/{i}/{size}"))
            .await
    }))
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

    let yanked =
        (rel["yanked"] == true).then(|| rel["yank_reason"].as_str().unwrap_or("").to_string());
    Ok(VerifiedRelease {
        provenance: Provenance::of(reg, &entry, index, note, &signed, cosigners, yanked),
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
) -> Result<VerifiedRelease, VerifyError> {
    let file = pgext_log::ProofFile::parse(proof_file)
        .map_err(|e| VerifyError::Malformed(format!("the proof file cannot be read: {e}")))?;
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
    let Action::Release(r) = &entry.statement.action else {
        return Err(VerifyError::Malformed(format!(
            "the proof file's entry {index} is not a release"
        )));
    };
    let got = pgext_log::hex(&pgext_log::sha256(archive));
    if got != r.sha256 || archive.len() as u64 != r.size {
        return Err(VerifyError::Digest {
            expected: r.sha256.clone(),
            got,
        });
    }
    let note = String::from_utf8(file.checkpoint.clone())
        .map_err(|_| VerifyError::Malformed("checkpoint is not UTF-8".into()))?;
    let (signed, cosigners) = open_with_policy(reg, &note)?;
    let size = signed.checkpoint.size;
    let proof: Vec<Vec<u8>> = file.proof.iter().map(|h| h.as_bytes().to_vec()).collect();
    verify_inclusion(
        index,
        size,
        leaf_hash(bytes).as_ref(),
        &proof,
        signed.checkpoint.root.as_ref(),
    )
    .map_err(|e| VerifyError::Inclusion {
        index,
        size,
        detail: e.to_string(),
    })?;
    check_quorum(reg, &cosigners)?;
    let origin = signed.checkpoint.origin.clone();
    if let Some(old) = state.checkpoint(&origin) {
        let old = open_checkpoint(old.as_bytes(), &reg.log_key()?, &[]).map_err(|e| {
            VerifyError::Malformed(format!(
                "the remembered checkpoint of {origin} does not open: {e}"
            ))
        })?;
        if old.checkpoint.size == size && old.checkpoint.root != signed.checkpoint.root {
            return Err(VerifyError::Inconsistent {
                size,
                remembered: size,
                detail: "same size, another root".into(),
            });
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
) -> Result<bool, VerifyError> {
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
            Err(inconsistent("same size, another root".into()))
        };
    }
    let (small, large) = if a.size < b.size { (a, b) } else { (b, a) };
    let proof = remote
        .proof(&format!(
            "/api/v1/proofs/consistency/{}/{}",
            small.size, large.size
        ))
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
