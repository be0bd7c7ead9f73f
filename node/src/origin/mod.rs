//! One log, as this node holds it: its store (tiles, bundles, checkpoint), the release content
//! its entries name, and the registry state derived from it, published as an immutable
//! [`Snapshot`]. A node holds one `Origin` for the log it sequences and one per mirrored log.
//!
//! Readers load the current snapshot and never wait: a commit (a sequencing round, a mirror's
//! verified sync, evidence) prepares the next state on its own copy, writes it to disk in one
//! synced write, and only then swaps the snapshot, so nothing is visible before it is durable.
//! (A collected cosignature is the one exception: written without waiting for the disk, since
//! losing it costs nothing; it is gossiped again.) Commits of one origin take turns on a lock
//! that readers never touch.
//!
//! Everything that blocks (RocksDB, blob files, hashing a whole log) runs on the blocking pool
//! through [`blocking`]; this layer knows neither HTTP nor libp2p.

pub mod blobs;
pub mod categories;
pub mod content;
pub mod counts;
pub mod docs;
pub mod error;
pub mod evidence;
pub mod keys;
pub mod publish;
pub mod reads;
pub mod releases;
pub mod sequencer;
pub mod store;

use std::path::Path;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use pgext_log::{
    Checkpoint, Hash, NoteSignature, SignerKey, Tile, TileHashReader, VerifierKey, open_checkpoint,
    sign, tree_hash,
};
use pgext_spec::api::Receipt;
use pgext_spec::authority::Registry;
use pgext_spec::entry::Entry;
use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::metrics::Metrics;
pub use content::Content;
pub use error::{Error, Refusal, Result};
pub use evidence::Evidence;
use store::{META_CHECKPOINT, META_EVIDENCE, Store};

/// The state of a log at one durable commit. Immutable: the next commit publishes a new one.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Tree size.
    pub size: u64,
    /// The signed checkpoint of that size, with the cosignatures collected for it; empty for a
    /// mirror that has verified nothing yet.
    pub note: String,
    /// The registry state the log's entries build.
    pub registry: Registry,
    /// Why the origin no longer advances here, if it does not.
    pub halted: Option<String>,
    /// Evidence of split views, as stored (or why it cannot be read).
    pub evidence: evidence::Stored,
}

/// Runs blocking work (the store, blob files, hashing, reading zips) on the blocking pool: the
/// one boundary between the async side of the node and its disks. Every layer above calls its
/// disk work through here.
///
/// # Errors
/// What `f` returns, or an internal error when the task panicked.
pub async fn blocking<R, E>(
    f: impl FnOnce() -> std::result::Result<R, E> + Send + 'static,
) -> std::result::Result<R, E>
where
    R: Send + 'static,
    E: From<Error> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(E::from(Error::internal(format!(
            "a blocking task failed: {e}"
        )))),
    }
}

/// One log as this node holds it.
#[derive(Debug)]
pub struct Origin {
    /// The origin line of the log's checkpoints.
    pub name: String,
    /// The log's verifier key.
    pub vkey: VerifierKey,
    /// Where the node serves it: `""` for its own log, `/origins/{name}` for a mirror.
    pub prefix: String,
    /// Served only to its members and allowed peers (`spec/access.md`).
    pub private: bool,
    store: Arc<Store>,
    content: Arc<Content>,
    state: ArcSwap<Snapshot>,
    /// Taken by every commit, never by readers.
    commit_lock: Mutex<()>,
    /// Download counts (`counts.rs`).
    counts: counts::Tally,
    changes: watch::Sender<u64>,
    sequencer: Option<sequencer::Handle>,
    metrics: Arc<Metrics>,
}

impl Origin {
    /// Opens the node's own log: the key (created on first start), the store, and the
    /// registry state replayed from the log. Blocks: call it on the blocking pool.
    ///
    /// # Errors
    /// When the folder cannot be opened or the log does not replay cleanly.
    pub fn open_own(
        config: &Config,
        content: Arc<Content>,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<(
        Arc<Origin>,
        SignerKey,
        mpsc::Receiver<sequencer::Submission>,
    )> {
        let log_key = keys::load_or_create_log_key(config)?;
        let store = Store::open(&config.data.join("db")).map_err(anyhow::Error::from)?;
        let (registry, size, note) = replay(&store, log_key.verifier())?;
        let (size, note) = match note {
            Some(note) => (size, note),
            None => {
                let note = sign(
                    &Checkpoint::new(log_key.name(), 0, Hash::empty_root()).to_text(),
                    &[&log_key],
                    0,
                )?;
                store.commit(&[], &[(META_CHECKPOINT, note.as_bytes())])?;
                (0, note)
            }
        };
        let (handle, rx) = sequencer::Handle::new(config);
        let origin = Origin::assemble(
            log_key.verifier().clone(),
            (String::new(), config.access.is_private()),
            store,
            content,
            metrics,
            Some(handle),
            (registry, size, note),
        );
        origin
            .metrics
            .log_size
            .store(size, std::sync::atomic::Ordering::Relaxed);
        Ok((origin, log_key, rx))
    }

    /// Opens the copy of a mirrored log kept in `{data}/mirrors/{name}`: everything in it was
    /// verified before it was committed, and is re-checked here. Blocks.
    ///
    /// # Errors
    /// When the store cannot be opened or its log does not replay cleanly.
    pub fn open_mirror(
        config: &Config,
        mirror: &crate::config::MirrorConfig,
        content: Arc<Content>,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Arc<Origin>> {
        use anyhow::Context as _;
        let vkey: VerifierKey = mirror
            .vkey
            .parse()
            .with_context(|| format!("mirror {}: the verifier key does not parse", mirror.name))?;
        let dir = config.data.join("mirrors").join(&mirror.name).join("db");
        let store =
            Store::open(&dir).with_context(|| format!("opening the mirror of {}", vkey.name()))?;
        let (registry, size, note) = replay(&store, &vkey)
            .with_context(|| format!("opening the mirror of {}", vkey.name()))?;
        Ok(Origin::assemble(
            vkey,
            (
                format!("/origins/{}", mirror.name),
                mirror.access.is_private(),
            ),
            store,
            content,
            metrics,
            None,
            (registry, size, note.unwrap_or_default()),
        ))
    }

    fn assemble(
        vkey: VerifierKey,
        (prefix, private): (String, bool),
        store: Store,
        content: Arc<Content>,
        metrics: Arc<Metrics>,
        sequencer: Option<sequencer::Handle>,
        (registry, size, note): (Registry, u64, String),
    ) -> Arc<Origin> {
        let stored = evidence::read(&store);
        // Fail closed: evidence that cannot be read halts the origin as evidence would.
        let halted = match &stored {
            Ok(list) => list.first().map(|e| e.reason.clone()),
            Err(why) => Some(why.clone()),
        };
        if let Some(why) = &halted {
            tracing::error!(origin = vkey.name(), "the origin starts halted: {why}");
        }
        let counts = counts::Tally::load(&store);
        Arc::new(Origin {
            name: vkey.name().to_string(),
            vkey,
            prefix,
            private,
            store: Arc::new(store),
            content,
            state: ArcSwap::from_pointee(Snapshot {
                size,
                note,
                registry,
                halted,
                evidence: stored,
            }),
            commit_lock: Mutex::new(()),
            counts,
            changes: watch::Sender::new(size),
            sequencer,
            metrics,
        })
    }

    /// The current state. Never waits.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.state.load_full()
    }

    /// Whether `user`'s key `key_id` is active in the current state (a read token's check
    /// once verified). Never waits, and takes no reference count.
    pub fn key_active(&self, user: &str, key_id: &str) -> bool {
        self.state
            .load()
            .registry
            .account(user)
            .and_then(|a| a.keys.get(key_id))
            .is_some_and(|k| k.active)
    }

    /// The current tree size.
    pub fn size(&self) -> u64 {
        self.state.load().size
    }

    /// Why the origin no longer advances here, if it does not.
    pub fn halted(&self) -> Option<String> {
        self.state.load().halted.clone()
    }

    /// Tells of every commit: the log size after it.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Whether this node sequences the origin.
    pub fn is_sequencer(&self) -> bool {
        self.sequencer.is_some()
    }

    /// The release content of the node.
    pub fn content(&self) -> &Arc<Content> {
        &self.content
    }

    /// The store, for blocking reads.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The node's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Publishes a new state after its commit is durable; callers hold the commit lock. Watchers ([`Origin::subscribe`]) hear of it when the log grew
    /// or the origin halted; a collected cosignature alone wakes nobody (with many mirrors,
    /// every one of them would otherwise wake every watcher of every node).
    fn publish(&self, next: Snapshot) {
        let prev = self.state.load();
        let news = prev.size != next.size || prev.halted.is_some() != next.halted.is_some();
        let size = next.size;
        self.state.store(Arc::new(next));
        if news {
            self.changes.send_replace(size);
        }
    }

    fn lock_commits(&self) -> std::sync::MutexGuard<'_, ()> {
        self.commit_lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops the origin from advancing here until restart (evidence halts it for good).
    pub fn halt(&self, reason: &str) {
        let _g = self.lock_commits();
        let snap = self.snapshot();
        if snap.halted.is_none() {
            let mut next = (*snap).clone();
            next.halted = Some(reason.to_string());
            self.publish(next);
        }
    }

    /// Keeps evidence durably and halts the origin. Returns false when it was known already.
    /// Blocks.
    ///
    /// # Errors
    /// When the evidence cannot be stored, or the stored evidence cannot be read (it is never
    /// overwritten then); the origin is halted either way.
    pub fn add_evidence(&self, ev: &Evidence) -> Result<bool> {
        let _g = self.lock_commits();
        let snap = self.snapshot();
        let mut next = (*snap).clone();
        if next.halted.is_none() {
            next.halted = Some(ev.reason.clone());
        }
        let list = match &snap.evidence {
            Ok(list) => list,
            Err(why) => {
                self.publish(next);
                return Err(Error::internal(format!(
                    "new evidence is not stored beside evidence that cannot be read: {why}"
                )));
            }
        };
        if list.iter().any(|e| evidence::same_notes(e, ev)) {
            return Ok(false);
        }
        let mut all = list.clone();
        all.push(ev.clone());
        let bytes = serde_json::to_vec(&all).map_err(Error::internal)?;
        let stored = self.store.commit(&[], &[(META_EVIDENCE, &bytes)]);
        if stored.is_ok() {
            next.evidence = Ok(all);
        }
        self.publish(next);
        stored?;
        Ok(true)
    }

    /// Adds a cosignature line to the served checkpoint when it is on that very checkpoint,
    /// the note has room, and its cosigner has not signed it yet. Blocks, but does not wait
    /// for the disk: a cosignature lost in a crash is gossiped again, and nothing was
    /// acknowledged on it (the next synced commit makes it durable).
    ///
    /// # Errors
    /// When the store fails.
    pub fn add_cosignature(&self, cp: &Checkpoint, sig: NoteSignature, max: usize) -> Result<bool> {
        let _g = self.lock_commits();
        let snap = self.snapshot();
        let Ok(mut parsed) = pgext_log::Note::parse(snap.note.as_bytes()) else {
            return Ok(false);
        };
        let signed = parsed
            .signatures
            .iter()
            .any(|g| g.name == sig.name && g.key_id == sig.key_id);
        if parsed.text != cp.to_text() || parsed.signatures.len() > max || signed {
            return Ok(false);
        }
        parsed.signatures.push(sig);
        let note = String::from_utf8(parsed.to_bytes()).map_err(Error::internal)?;
        self.store
            .commit_unsynced(&[(META_CHECKPOINT, note.as_bytes())])?;
        let mut next = (*snap).clone();
        next.note = note;
        self.publish(next);
        Ok(true)
    }

    /// Commits what a mirror verified: tiles and the (cosigned) checkpoint in one synced write,
    /// then the registry state that replays to it. Blocks.
    ///
    /// # Errors
    /// When the write fails; nothing changes then.
    pub fn commit_mirrored(
        &self,
        tiles: &[(Tile, Vec<u8>)],
        (from, size): (u64, u64),
        note: &str,
        registry: Registry,
    ) -> Result<()> {
        let _g = self.lock_commits();
        let snap = self.snapshot();
        if let Some(why) = &snap.halted {
            // Evidence came while the sync ran: the origin stays where it was.
            return Err(Error::unavailable(
                "halted",
                format!("{} no longer advances here: {why}", self.name),
            ));
        }
        if snap.size != from {
            // Another path (pull sync or a tlog-mirror upload) committed since these entries
            // were checked on top of `from`: they are checked again on top of what is there.
            return Err(Error::unavailable(
                "moved",
                format!(
                    "{} is at size {} now, not {from}: checking again",
                    self.name, snap.size
                ),
            ));
        }
        if size <= snap.size {
            return Ok(());
        }
        self.store
            .commit(tiles, &[(META_CHECKPOINT, note.as_bytes())])?;
        let mut next = (*snap).clone();
        next.size = size;
        next.note = note.to_string();
        next.registry = registry;
        self.publish(next);
        Metrics::inc(&self.metrics.mirror_commits);
        Ok(())
    }

    /// Sends an entry to the sequencer and waits for its receipt.
    ///
    /// # Errors
    /// The sequencer's refusal; 421 when this node does not sequence the origin, 503 when it is
    /// halted or shutting down.
    pub async fn sequence(&self, entry: Entry) -> Result<Receipt> {
        let Some(seq) = &self.sequencer else {
            return Err(Error::refused(
                Refusal::NotSequencer,
                "not-sequencer",
                format!("this node mirrors {}; submit to its sequencer", self.name),
            ));
        };
        if let Some(why) = self.halted() {
            return Err(Error::unavailable(
                "halted",
                format!(
                    "{} takes no entries: its log key signed two trees ({why}); see /api/v1/evidence",
                    self.name
                ),
            ));
        }
        seq.submit(entry).await
    }

    /// The sequencing side, when this node sequences the origin.
    pub fn sequencer(&self) -> Option<&sequencer::Handle> {
        self.sequencer.as_ref()
    }
}

/// Replays a log's store: the registry state, and a check that the tiles recompute to the
/// signed checkpoint. `None` when the store holds no checkpoint yet. Blocks.
///
/// # Errors
/// When the checkpoint does not verify, the tiles do not make its root, or an entry breaks a
/// rule.
pub fn replay(
    store: &Store,
    vkey: &VerifierKey,
) -> anyhow::Result<(Registry, u64, Option<String>)> {
    use anyhow::{Context as _, bail};
    let Some(note) = store.checkpoint()? else {
        return Ok((Registry::for_log(vkey), 0, None));
    };
    let signed = open_checkpoint(&note, vkey, &[])
        .context("the stored checkpoint does not verify with the log key")?;
    let size = signed.checkpoint.size;
    let root = tree_hash(size, &TileHashReader::new(size, store))?;
    if root != signed.checkpoint.root {
        bail!("the stored tiles do not recompute to the checkpoint's root (size {size})");
    }
    let mut registry = Registry::for_log(vkey);
    for (i, bytes) in store.entries(0, size)?.into_iter().enumerate() {
        let entry = Entry::parse(&bytes).with_context(|| format!("entry {i} does not parse"))?;
        registry
            .apply(i as u64, &entry)
            .with_context(|| format!("entry {i} breaks a rule"))?;
    }
    Ok((registry, size, Some(String::from_utf8(note)?)))
}

/// Whether `path` looks like a data folder.
pub fn is_data_folder(path: &Path) -> bool {
    path.join(keys::LOG_KEY_FILE).exists()
}
