//! The sequencer: pools submissions, and every round (at most `batch_interval_ms` after the
//! first pending one, or `batch_max` entries) checks each entry against the rules on a copy of
//! the registry state, integrates the accepted ones, signs a checkpoint and commits tiles,
//! bundles and checkpoint in one synced RocksDB write. Only then is the new state published
//! and does any submitter hear back, with its index and proof.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, VerifyingKey};
use pgext_log::{Checkpoint, SignerKey, integrate, sign};
use pgext_spec::api::Receipt;
use pgext_spec::archive::Limits;
use pgext_spec::entry::{Action, Entry, MAX_ENTRY_BYTES, invite_message};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, info_span, warn};

use super::error::{Error, Refusal, Result};
use super::reads::receipt_at;
use super::store::META_CHECKPOINT;
use super::{Origin, Snapshot};
use crate::config::{Config, Registration};
use crate::metrics::Metrics;

/// Where a submitter waits for its answer.
type ReplyTo = oneshot::Sender<Result<Receipt>>;

/// One pending entry.
#[derive(Debug)]
pub struct Submission {
    entry: Entry,
    reply: ReplyTo,
}

/// The node's own policy for the origin it sequences, on top of the log's rules.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Who may register accounts.
    pub registration: Registration,
    /// Admin verifier keys (base64 Ed25519) whose invitations count.
    pub admin_keys: Vec<String>,
    /// Upload limits.
    pub limits: Limits,
}

/// The sequencing side of the node's own origin.
#[derive(Debug)]
pub struct Handle {
    tx: mpsc::Sender<Submission>,
    /// The node's policy.
    pub policy: Policy,
    batch_max: usize,
    interval: Duration,
}

impl Handle {
    pub(super) fn new(config: &Config) -> (Handle, mpsc::Receiver<Submission>) {
        let (tx, rx) = mpsc::channel(1024);
        (
            Handle {
                tx,
                policy: Policy {
                    registration: config.registration,
                    admin_keys: config.admin_keys.clone(),
                    limits: config.limits,
                },
                batch_max: config.sequencer.batch_max.max(1),
                interval: config.sequencer.interval(),
            },
            rx,
        )
    }

    pub(super) async fn submit(&self, entry: Entry) -> Result<Receipt> {
        let unavailable = || Error::unavailable("unavailable", "the sequencer is not running");
        // Entries from outside were held against the log's limits when they were parsed
        // (`Entry::from_submitted`); the round checks each again before it integrates it, so
        // one it could not integrate is refused alone and never stops a round.
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Submission { entry, reply })
            .await
            .map_err(|_| unavailable())?;
        rx.await.map_err(|_| unavailable())?
    }
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
///
/// # Errors
/// The refusal.
pub fn check_policy(policy: &Policy, entry: &Entry) -> Result<()> {
    let t = entry.statement.time;
    let now = now();
    if t > now + 600 || t.saturating_add(86_400) < now {
        return Err(Error::invalid(
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
        match policy.registration {
            Registration::Open => {}
            Registration::Closed => {
                return Err(Error::refused(
                    Refusal::Forbidden,
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
                    policy.admin_keys.iter().any(|k| {
                        STANDARD
                            .decode(k)
                            .ok()
                            .and_then(|b| <[u8; 32]>::try_from(b).ok())
                            .and_then(|b| VerifyingKey::from_bytes(&b).ok())
                            .is_some_and(|vk| vk.verify_strict(&msg, &sig).is_ok())
                    })
                });
                if !ok {
                    return Err(Error::refused(
                        Refusal::Forbidden,
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
pub async fn run(origin: Arc<Origin>, mut rx: mpsc::Receiver<Submission>, key: SignerKey) {
    let Some(handle) = origin.sequencer() else {
        return;
    };
    let (max, interval) = (handle.batch_max, handle.interval);
    let key = Arc::new(key);
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + interval;
        while batch.len() < max {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(s)) => batch.push(s),
                _ => break,
            }
        }
        let (origin, key) = (origin.clone(), key.clone());
        // Hashing, signing and the synced write block: keep them off the async workers.
        if let Err(e) = tokio::task::spawn_blocking(move || round(&origin, &key, batch)).await {
            error!("sequencing round panicked: {e}");
        }
    }
}

fn round(origin: &Origin, key: &SignerKey, batch: Vec<Submission>) {
    let span = info_span!("round", entries = batch.len());
    let _g = span.enter();
    let started = Instant::now();
    let Some(handle) = origin.sequencer() else {
        return;
    };
    let _commit = origin.lock_commits();
    let snap = origin.snapshot();
    if let Some(why) = &snap.halted {
        for sub in batch {
            let _ = sub.reply.send(Err(Error::unavailable(
                "halted",
                format!("{} takes no entries: {why}", origin.name),
            )));
        }
        return;
    }
    // The next state is built on a copy; readers keep the published one until it is durable.
    let mut registry = snap.registry.clone();
    let size0 = snap.size;
    let mut accepted: Vec<(Vec<u8>, ReplyTo)> = Vec::new();
    for sub in batch {
        let index = size0 + accepted.len() as u64;
        let bytes = sub.entry.to_bytes();
        let verdict = if bytes.len() > MAX_ENTRY_BYTES {
            Err(Error::from(pgext_spec::entry::EntryError::TooLarge(
                bytes.len(),
            )))
        } else {
            check_policy(&handle.policy, &sub.entry)
                .and_then(|()| registry.apply(index, &sub.entry).map_err(Error::from))
        };
        match verdict {
            Ok(()) => accepted.push((bytes, sub.reply)),
            Err(e) => {
                Metrics::inc(&origin.metrics.submissions_refused);
                let _ = sub.reply.send(Err(e));
            }
        }
    }
    if accepted.is_empty() {
        return;
    }
    let entries: Vec<&[u8]> = accepted.iter().map(|(e, _)| e.as_slice()).collect();
    let committed = integrate(size0, &entries, &**origin.store())
        .map_err(|e| e.to_string())
        .and_then(|out| {
            let text = Checkpoint::new(&origin.name, out.size, out.root).to_text();
            let note = sign(&text, &[key], 0).map_err(|e| e.to_string())?;
            origin
                .store()
                .commit(&out.tiles, &[(META_CHECKPOINT, note.as_bytes())])
                .map_err(|e| e.to_string())?;
            Ok((out.size, note))
        });
    let (size, note) = match committed {
        Ok(r) => r,
        Err(e) => {
            // Nothing of the round is published and nothing acknowledged. Whether the write
            // reached the disk is not known (a failed flush may still have written), so the
            // origin takes no more entries until a restart replays exactly what is durable:
            // fail closed, keep serving reads.
            error!("sequencing round could not be committed, the origin halts until restart: {e}");
            let why =
                format!("a sequencing round could not be written to disk ({e}); restart the node");
            origin.publish(Snapshot {
                halted: Some(why),
                ..(*snap).clone()
            });
            for (_, reply) in accepted {
                let _ = reply.send(Err(Error::unavailable(
                    "commit-failed",
                    "the round could not be written to disk; whether it was logged is known after the node restarts: look the entry up, then submit again if it is not there",
                )));
            }
            return;
        }
    };
    origin.publish(Snapshot {
        size,
        note: note.clone(),
        registry,
        ..(*snap).clone()
    });
    drop(_commit);
    let m = &origin.metrics;
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
    for (i, (entry, reply)) in accepted.into_iter().enumerate() {
        let index = size0 + i as u64;
        let receipt = receipt_at(origin.store(), index, size, &note, Some(entry));
        if reply.send(receipt).is_err() {
            warn!(index, "submitter left before its receipt");
        }
    }
}
