//! The sequencer: pools submissions, and every round (at most `batch_interval_ms` after the first
//! pending one, or `batch_max` entries) checks each entry against the rules, integrates the
//! accepted ones, signs a checkpoint and commits tiles, bundles and checkpoint in one synced
//! RocksDB write. Only then does any submitter hear back, with its index and proof.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, VerifyingKey};
use pgext_log::{
    Checkpoint, ProofFile, SignerKey, TileHashReader, inclusion_proof, integrate, sign,
};
use pgext_spec::entry::{Action, Entry, invite_message};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, info_span, warn};

use crate::config::Registration;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::node::Shared;
use crate::store::META_CHECKPOINT;

/// What a submitter gets once its entry is durable.
#[derive(Debug, Clone)]
pub struct Receipt {
    /// Log index of the entry.
    pub index: u64,
    /// The signed checkpoint that includes it.
    pub checkpoint: String,
    /// A C2SP tlog-proof file for the entry.
    pub proof: Vec<u8>,
}

/// Where a submitter waits for its answer.
pub type ReplyTo = oneshot::Sender<Result<Receipt, ApiError>>;

/// One pending entry.
#[derive(Debug)]
pub struct Submission {
    /// The entry.
    pub entry: Entry,
    /// Where the answer goes.
    pub reply: ReplyTo,
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The node's own policy, on top of the log's rules: statement times near now, and the account
/// registration policy.
pub fn check_policy(shared: &Shared, entry: &Entry) -> Result<(), ApiError> {
    let t = entry.statement.time;
    let now = now();
    if t > now + 600 || t + 86_400 < now {
        return Err(ApiError::invalid(
            "stale-statement",
            format!(
                "statement time {t} is not within a day before now ({now}); check the clock and sign again"
            ),
        ));
    }
    if let Action::Account {
        user, key, invite, ..
    } = &entry.statement.action
    {
        match shared.config.registration {
            Registration::Open => {}
            Registration::Closed => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "registration-closed",
                    "this node does not register accounts",
                ));
            }
            Registration::Invite => {
                let msg = invite_message(user, key);
                let sig = invite
                    .as_deref()
                    .and_then(|s| STANDARD.decode(s).ok())
                    .and_then(|b| Signature::from_slice(&b).ok());
                let ok = sig.is_some_and(|sig| {
                    shared.config.admin_keys.iter().any(|k| {
                        STANDARD
                            .decode(k)
                            .ok()
                            .and_then(|b| <[u8; 32]>::try_from(b).ok())
                            .and_then(|b| VerifyingKey::from_bytes(&b).ok())
                            .is_some_and(|vk| vk.verify_strict(&msg, &sig).is_ok())
                    })
                });
                if !ok {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "invite-required",
                        "registration needs an invitation signed by an admin of this node",
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Runs the sequencer until every sender is dropped.
pub async fn run(shared: Arc<Shared>, mut rx: mpsc::Receiver<Submission>, key: SignerKey) {
    let key = Arc::new(key);
    let max = shared.config.sequencer.batch_max.max(1);
    let interval = shared.config.sequencer.interval();
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + interval;
        while batch.len() < max {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(s)) => batch.push(s),
                _ => break,
            }
        }
        let (shared, key) = (shared.clone(), key.clone());
        // Hashing, signing and the synced write block: keep them off the async workers.
        let replies = tokio::task::spawn_blocking(move || round(&shared, &key, batch)).await;
        if let Err(e) = replies {
            error!("sequencing round panicked: {e}");
        }
    }
}

fn round(shared: &Shared, key: &SignerKey, batch: Vec<Submission>) {
    let span = info_span!("round", entries = batch.len());
    let _g = span.enter();
    let started = Instant::now();
    let mut registry = shared.registry.write().unwrap_or_else(|p| p.into_inner());
    let size0 = shared.size();
    let mut accepted: Vec<(Vec<u8>, ReplyTo)> = Vec::new();
    for sub in batch {
        let index = size0 + accepted.len() as u64;
        let verdict = check_policy(shared, &sub.entry)
            .and_then(|()| registry.apply(index, &sub.entry).map_err(ApiError::from));
        match verdict {
            Ok(()) => accepted.push((sub.entry.to_bytes(), sub.reply)),
            Err(e) => {
                Metrics::inc(&shared.metrics.submissions_refused);
                let _ = sub.reply.send(Err(e));
            }
        }
    }
    if accepted.is_empty() {
        return;
    }
    let entries: Vec<&[u8]> = accepted.iter().map(|(e, _)| e.as_slice()).collect();
    let result = integrate(size0, &entries, &shared.store)
        .map_err(|e| e.to_string())
        .and_then(|out| {
            let text = Checkpoint::new(&shared.origin, out.size, out.root).to_text();
            let note = sign(&text, &[key], 0).map_err(|e| e.to_string())?;
            shared
                .store
                .commit(&out.tiles, &[(META_CHECKPOINT, note.as_bytes())])
                .map_err(|e| e.to_string())?;
            Ok((out.size, note))
        });
    let (size, note) = match result {
        Ok(r) => r,
        Err(e) => {
            // The in-memory state is now ahead of the disk. Fail-stop: nothing was acknowledged,
            // and a restart replays exactly what is durable.
            error!("sequencing round could not be committed, stopping the node: {e}");
            std::process::exit(70);
        }
    };
    shared.set_checkpoint(size, note.clone());
    drop(registry);
    let m = &shared.metrics;
    m.log_size.store(size, std::sync::atomic::Ordering::Relaxed);
    m.entries_sequenced
        .fetch_add(accepted.len() as u64, std::sync::atomic::Ordering::Relaxed);
    Metrics::inc(&m.rounds);
    m.round_micros.fetch_add(
        started.elapsed().as_micros() as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    info!(
        size,
        accepted = accepted.len(),
        ms = started.elapsed().as_millis() as u64,
        "round committed"
    );
    let reader = TileHashReader::new(size, &shared.store);
    for (i, (entry, reply)) in accepted.into_iter().enumerate() {
        let index = size0 + i as u64;
        let receipt = inclusion_proof(index, size, &reader)
            .map(|proof| Receipt {
                index,
                checkpoint: note.clone(),
                proof: ProofFile {
                    extra: Some(entry),
                    index,
                    proof,
                    checkpoint: note.clone().into_bytes(),
                }
                .to_bytes(),
            })
            .map_err(ApiError::internal);
        if reply.send(receipt).is_err() {
            warn!(index, "submitter left before its receipt");
        }
    }
}
