//! A running node: opens its data folder (creating the log key on first start), replays the log
//! into the registry state, then runs the sequencer and the HTTP server until shut down.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use anyhow::{Context, bail};
use pgext_log::{
    Checkpoint, Hash, KeyType, SignerKey, TileHashReader, VerifierKey, open_checkpoint, sign,
    tree_hash,
};
use pgext_spec::authority::{Registry, ReleaseState};
use pgext_spec::entry::Entry;
use pgext_spec::meta::Meta;
use rand::RngCore;
use tokio::sync::{mpsc, oneshot};
use tracing::info;

use crate::blobs::Blobs;
use crate::config::Config;
use crate::docs::ReleaseDocs;
use crate::federation::Evidence;
use crate::metrics::Metrics;
use crate::sequencer::{self, Submission};
use crate::store::{META_CHECKPOINT, META_EVIDENCE, Store};

/// File name of the log's private key in the data folder.
pub const LOG_KEY_FILE: &str = "log.key";

/// One origin's log as this node holds it, shared by the sequencer (or the mirror that follows
/// it) and the HTTP handlers. A node holds one for its own origin and one per mirrored origin.
#[derive(Debug)]
pub struct Shared {
    /// Configuration.
    pub config: Config,
    /// The log's origin.
    pub origin: String,
    /// The log's verifier key.
    pub vkey: VerifierKey,
    /// Where this log is served: `""` for the node's own, `/origins/{name}` for a mirror.
    pub prefix: String,
    /// Tiles, bundles, checkpoint.
    pub store: Store,
    /// Release zips and METAs (content-addressed, shared by every origin of the node).
    pub blobs: Arc<Blobs>,
    /// Registry state derived from the log. The sequencer (or mirror) holds the write lock
    /// through a whole commit, so readers never see an entry before it is durable.
    pub registry: RwLock<Registry>,
    /// Latest size and signed checkpoint (with the cosignatures collected for it). Empty for a
    /// mirror that has not verified anything yet.
    checkpoint: RwLock<(u64, String)>,
    /// Parsed METAs by their SHA-256.
    pub metas: Mutex<HashMap<String, Arc<Meta>>>,
    /// Documentation found in each release zip, by the zip's SHA-256.
    docs: Mutex<HashMap<String, Arc<ReleaseDocs>>>,
    /// Metrics of the node.
    pub metrics: Arc<Metrics>,
    /// Rendered documents of the current log size.
    pub doc_cache: DocCache,
    /// Submissions to the sequencer, when this node sequences the origin.
    pub submit: Option<mpsc::Sender<Submission>>,
    /// Why the origin stopped advancing (evidence of a split view, a broken rule), if it did.
    halted: RwLock<Option<String>>,
    /// The log size, published on every commit (the federation gossips, tests wait).
    pub changes: tokio::sync::watch::Sender<u64>,
    /// What the node as a whole shows (its origins, its peer identity), shared by all of them.
    pub node: Arc<NodeView>,
    /// The origin's search index, once opened (`Node::spawn`).
    pub search: std::sync::OnceLock<crate::search::SearchIndex>,
}

/// Node-wide facts every origin's handlers can show.
#[derive(Debug, Default)]
pub struct NodeView {
    origins: RwLock<Vec<std::sync::Weak<Shared>>>,
    /// The cosigner key this node cosigns mirrored checkpoints with.
    pub witness: std::sync::OnceLock<String>,
    /// libp2p peer id.
    pub peer_id: std::sync::OnceLock<String>,
    /// libp2p listen addresses, each with `/p2p/<peer id>`.
    pub p2p_addrs: std::sync::OnceLock<Vec<String>>,
    /// The federation, when the node joined one (weak: the federation holds the origins).
    pub federation: std::sync::OnceLock<std::sync::Weak<crate::federation::Federation>>,
}

impl NodeView {
    /// Every origin the node serves: its own first, then mirrors in configuration order.
    pub fn origins(&self) -> Vec<Arc<Shared>> {
        self.origins
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .collect()
    }

    /// The federation, while the node runs one.
    pub fn federation(&self) -> Option<Arc<crate::federation::Federation>> {
        self.federation.get().and_then(std::sync::Weak::upgrade)
    }

    fn add(&self, s: &Arc<Shared>) {
        self.origins
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::downgrade(s));
    }
}

impl Shared {
    /// Opens the node's own log: the key (created on first start), the stores, and the registry
    /// state replayed from the log. Returns the key and the receiving end of the sequencer's
    /// queue.
    ///
    /// # Errors
    /// When the folder cannot be opened or the log does not replay cleanly.
    pub fn open(
        config: Config,
    ) -> anyhow::Result<(Arc<Shared>, SignerKey, mpsc::Receiver<Submission>)> {
        let log_key = load_or_create_key(&config)?;
        let blobs =
            Arc::new(Blobs::open(&config.data.join("blobs")).context("opening the blob store")?);
        let (store, registry, size, note) = open_log(&config.data.join("db"), log_key.verifier())?;
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
        let (tx, rx) = mpsc::channel(1024);
        let metrics = Arc::new(Metrics::default());
        metrics
            .log_size
            .store(size, std::sync::atomic::Ordering::Relaxed);
        let vkey = log_key.verifier().clone();
        let node = Arc::new(NodeView::default());
        let shared = Arc::new(Shared::new(
            config,
            vkey,
            String::new(),
            store,
            blobs,
            registry,
            (size, note),
            metrics,
            Some(tx),
            node,
        ));
        // A sequencer whose log was forked (its key signed two trees) takes nothing more
        // until its operator resolves it (docs/operating.md).
        if let Some(ev) = shared.evidence().first() {
            shared.halt(&ev.reason);
        }
        shared.node.add(&shared);
        Ok((shared, log_key, rx))
    }

    /// Opens the copy of a mirrored origin's log kept in `{data}/mirrors/{name}`: everything in
    /// it was verified before it was committed, and is re-checked here.
    ///
    /// # Errors
    /// When the store cannot be opened or its log does not replay cleanly.
    pub fn open_mirror(
        own: &Shared,
        mirror: &crate::config::MirrorConfig,
    ) -> anyhow::Result<Arc<Shared>> {
        let config = &own.config;
        let vkey: VerifierKey = mirror
            .vkey
            .parse()
            .with_context(|| format!("mirror {}: the verifier key does not parse", mirror.name))?;
        let dir = config.data.join("mirrors").join(&mirror.name).join("db");
        let (store, registry, size, note) = open_log(&dir, &vkey)
            .with_context(|| format!("opening the mirror of {}", vkey.name()))?;
        let checkpoint = (size, note.unwrap_or_default());
        let prefix = format!("/origins/{}", mirror.name);
        if vkey.name() == own.origin {
            bail!(
                "mirror {}: this node sequences {} itself",
                mirror.name,
                own.origin
            );
        }
        let shared = Arc::new(Shared::new(
            config.clone(),
            vkey,
            prefix,
            store,
            own.blobs.clone(),
            registry,
            checkpoint,
            own.metrics.clone(),
            None,
            own.node.clone(),
        ));
        if let Some(ev) = shared.evidence().first() {
            shared.halt(&ev.reason);
        }
        own.node.add(&shared);
        Ok(shared)
    }

    #[allow(clippy::too_many_arguments)]
    fn new(
        config: Config,
        vkey: VerifierKey,
        prefix: String,
        store: Store,
        blobs: Arc<Blobs>,
        registry: Registry,
        checkpoint: (u64, String),
        metrics: Arc<Metrics>,
        submit: Option<mpsc::Sender<Submission>>,
        node: Arc<NodeView>,
    ) -> Shared {
        let checkpoint_size = checkpoint.0;
        Shared {
            origin: vkey.name().to_string(),
            config,
            vkey,
            prefix,
            store,
            blobs,
            registry: RwLock::new(registry),
            checkpoint: RwLock::new(checkpoint),
            metas: Mutex::new(HashMap::new()),
            docs: Mutex::new(HashMap::new()),
            metrics,
            doc_cache: DocCache::default(),
            submit,
            halted: RwLock::new(None),
            changes: tokio::sync::watch::Sender::new(checkpoint_size),
            node,
            search: std::sync::OnceLock::new(),
        }
    }

    /// Why the origin no longer advances here, if it does not.
    pub fn halted(&self) -> Option<String> {
        self.halted
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Stops the origin from advancing here (kept until restart; evidence is kept for good).
    pub fn halt(&self, reason: &str) {
        let mut h = self.halted.write().unwrap_or_else(|p| p.into_inner());
        if h.is_none() {
            *h = Some(reason.to_string());
        }
    }

    /// Evidence of split views of this origin, as stored.
    pub fn evidence(&self) -> Vec<Evidence> {
        self.store
            .meta(META_EVIDENCE)
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Keeps evidence durably and halts the origin. Returns false when it was already known.
    pub fn add_evidence(&self, ev: &Evidence) -> bool {
        // The registry lock serializes this with commits of the same log.
        let _g = self.registry.write().unwrap_or_else(|p| p.into_inner());
        let mut all = self.evidence();
        if all
            .iter()
            .any(|e| e.notes == ev.notes || e.notes == [ev.notes[1].clone(), ev.notes[0].clone()])
        {
            return false;
        }
        all.push(ev.clone());
        let bytes = serde_json::to_vec(&all).unwrap_or_default();
        if let Err(e) = self.store.commit(&[], &[(META_EVIDENCE, &bytes)]) {
            tracing::error!("storing evidence: {e}");
        }
        self.halt(&ev.reason);
        true
    }

    /// Adds a cosignature line to the served checkpoint when it is on that very checkpoint and
    /// its cosigner has not signed it yet; keeps it durably.
    pub fn add_cosignature(&self, cp: &Checkpoint, sig: pgext_log::NoteSignature, max: usize) {
        let _g = self.registry.write().unwrap_or_else(|p| p.into_inner());
        let (size, note) = self.checkpoint();
        let Ok(mut parsed) = pgext_log::Note::parse(note.as_bytes()) else {
            return;
        };
        let signed = parsed
            .signatures
            .iter()
            .any(|g| g.name == sig.name && g.key_id == sig.key_id);
        if parsed.text != cp.to_text() || parsed.signatures.len() > max || signed {
            return;
        }
        parsed.signatures.push(sig);
        let Ok(new) = String::from_utf8(parsed.to_bytes()) else {
            return;
        };
        if let Err(e) = self.store.commit(&[], &[(META_CHECKPOINT, new.as_bytes())]) {
            tracing::error!("storing a cosignature: {e}");
            return;
        }
        *self.checkpoint.write().unwrap_or_else(|p| p.into_inner()) = (size, new);
    }

    /// Commits what a mirror verified: tiles and the (cosigned) checkpoint in one synced write,
    /// then the registry state that replays to it.
    ///
    /// # Errors
    /// When the write fails; nothing changes then.
    pub fn commit_mirrored(
        &self,
        tiles: &[(pgext_log::Tile, Vec<u8>)],
        size: u64,
        note: &str,
        registry: Registry,
    ) -> Result<(), crate::store::StoreError> {
        let mut g = self.registry.write().unwrap_or_else(|p| p.into_inner());
        if size <= self.size() {
            return Ok(());
        }
        self.store
            .commit(tiles, &[(META_CHECKPOINT, note.as_bytes())])?;
        *g = registry;
        self.set_checkpoint(size, note.to_string());
        drop(g);
        self.metrics
            .mirror_commits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Current tree size.
    pub fn size(&self) -> u64 {
        self.checkpoint.read().unwrap_or_else(|p| p.into_inner()).0
    }

    /// Current signed checkpoint.
    pub fn checkpoint(&self) -> (u64, String) {
        self.checkpoint
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn set_checkpoint(&self, size: u64, note: String) {
        *self.checkpoint.write().unwrap_or_else(|p| p.into_inner()) = (size, note);
        self.changes.send_replace(size);
    }

    /// The parsed META with this SHA-256, from the cache or the blob store.
    pub fn meta(&self, sha256: &str) -> Option<Arc<Meta>> {
        if let Some(m) = self
            .metas
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(sha256)
        {
            return Some(m.clone());
        }
        let bytes = self.blobs.get(sha256).ok()?;
        let mut raw: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        if let Some(o) = raw.as_object_mut() {
            o.entry("meta-spec")
                .or_insert_with(|| serde_json::json!({"version": "1.0.0"}));
        }
        let meta = Arc::new(pgext_spec::meta::read_meta(raw).ok()?);
        self.metas
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sha256.to_string(), meta.clone());
        Some(meta)
    }

    /// The documentation of a release, found in its zip on first use and kept: it depends on
    /// the zip and META alone.
    pub fn release_docs(&self, dist: &str, r: &ReleaseState) -> Arc<ReleaseDocs> {
        let key = &r.release.sha256;
        if let Some(d) = self.docs.lock().unwrap_or_else(|p| p.into_inner()).get(key) {
            return d.clone();
        }
        let base = crate::docs::base_name(dist, &r.release.version);
        let found = match (self.blobs.get(key), self.meta(&r.release.meta_sha256)) {
            (Ok(zip), Some(meta)) => ReleaseDocs::find(&zip, &base, &meta),
            _ => ReleaseDocs::default(),
        };
        let found = Arc::new(found);
        self.docs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone(), found.clone());
        found
    }

    /// Sends an entry to the sequencer and waits for its receipt.
    ///
    /// # Errors
    /// The sequencer's refusal, or 503 when the node is shutting down.
    pub async fn sequence(
        &self,
        entry: Entry,
    ) -> Result<sequencer::Receipt, crate::error::ApiError> {
        let unavailable = || {
            crate::error::ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the sequencer is not running",
            )
        };
        let Some(submit) = &self.submit else {
            return Err(crate::error::ApiError::new(
                axum::http::StatusCode::MISDIRECTED_REQUEST,
                "not-sequencer",
                format!("this node mirrors {}; submit to its sequencer", self.origin),
            ));
        };
        if let Some(why) = self.halted() {
            return Err(crate::error::ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "halted",
                format!(
                    "{} takes no entries: its log key signed two trees ({why}); see /api/v1/evidence",
                    self.origin
                ),
            ));
        }
        let (tx, rx) = oneshot::channel();
        submit
            .send(Submission { entry, reply: tx })
            .await
            .map_err(|_| unavailable())?;
        rx.await.map_err(|_| unavailable())?
    }
}

/// Responses by path, valid for one log size: every document the cache holds is derived from the
/// log, so a new size (a committed round) empties it.
#[derive(Debug, Default)]
pub struct DocCache {
    inner: Mutex<CachedDocs>,
}

/// A cached answer: content type and body.
pub type CachedDoc = (axum::http::HeaderValue, axum::body::Bytes);

#[derive(Debug, Default)]
struct CachedDocs {
    size: u64,
    bytes: usize,
    docs: HashMap<String, CachedDoc>,
}

impl DocCache {
    /// Largest response kept (larger ones, typically big zips, are streamed from the blob store).
    pub const MAX_ITEM: usize = 64 << 20;
    /// Bytes kept in all; past it, the cache starts over.
    pub const MAX_TOTAL: usize = 256 << 20;

    /// A cached response for `path` at log size `size`.
    pub fn get(&self, size: u64, path: &str) -> Option<CachedDoc> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.size != size {
            return None;
        }
        g.docs.get(path).cloned()
    }

    /// Keeps a response for `path` at log size `size`.
    pub fn put(
        &self,
        size: u64,
        path: String,
        content_type: axum::http::HeaderValue,
        body: axum::body::Bytes,
    ) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.size != size || g.bytes + body.len() > Self::MAX_TOTAL {
            *g = CachedDocs {
                size,
                ..CachedDocs::default()
            };
        }
        g.bytes += body.len();
        g.docs.insert(path, (content_type, body));
    }
}

/// Loads the log key from the data folder, creating it (mode 0600) on first start.
///
/// # Errors
/// When the folder or key cannot be read or written, or the key's origin is not the configured one.
pub fn load_or_create_key(config: &Config) -> anyhow::Result<SignerKey> {
    fs::create_dir_all(&config.data)
        .with_context(|| format!("creating data folder {}", config.data.display()))?;
    let path = config.data.join(LOG_KEY_FILE);
    if path.exists() {
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let key = SignerKey::from_private_text(text.trim())
            .with_context(|| format!("parsing {}", path.display()))?;
        if let Some(origin) = &config.origin {
            if origin != key.name() {
                bail!(
                    "the data folder {} holds the log of origin {:?}, but the configuration says {origin:?}",
                    config.data.display(),
                    key.name()
                );
            }
        }
        return Ok(key);
    }
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let key = SignerKey::from_seed(&config.default_origin(), KeyType::Ed25519, &seed)
        .context("creating the log key")?;
    write_secret(&path, format!("{}\n", key.to_private_text()).as_bytes())?;
    info!(origin = key.name(), vkey = %key.verifier(), "created the log key");
    Ok(key)
}

/// File name of the cosigner key in the data folder.
pub const WITNESS_KEY_FILE: &str = "witness.key";

/// Loads the cosigner key from the data folder, creating it (mode 0600) on first start.
///
/// # Errors
/// When the key cannot be read, parsed or written.
pub fn load_or_create_witness(config: &Config) -> anyhow::Result<SignerKey> {
    let path = config.data.join(WITNESS_KEY_FILE);
    if path.exists() {
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        return SignerKey::from_private_text(text.trim())
            .with_context(|| format!("parsing {}", path.display()));
    }
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let key = SignerKey::from_seed(&config.default_witness_name(), KeyType::Cosignature, &seed)
        .context("creating the cosigner key")?;
    write_secret(&path, format!("{}\n", key.to_private_text()).as_bytes())?;
    info!(vkey = %key.verifier(), "created the cosigner key");
    Ok(key)
}

/// Writes a secret file durably with mode 0600 (temporary file, fsync, rename).
///
/// # Errors
/// When the file cannot be written.
pub fn write_secret(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("secret")
    ));
    {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Opens a log's store and replays it: the registry state, and a check that the tiles recompute
/// to the signed checkpoint. `None` when the store holds no checkpoint yet.
fn open_log(
    dir: &Path,
    vkey: &VerifierKey,
) -> anyhow::Result<(Store, Registry, u64, Option<String>)> {
    let store = Store::open(dir).context("opening the store")?;
    let Some(note) = store.checkpoint()? else {
        return Ok((store, Registry::new(), 0, None));
    };
    let signed = open_checkpoint(&note, vkey, &[])
        .context("the stored checkpoint does not verify with the log key")?;
    let size = signed.checkpoint.size;
    let root = tree_hash(size, &TileHashReader::new(size, &store))?;
    if root != signed.checkpoint.root {
        bail!("the stored tiles do not recompute to the checkpoint's root (size {size})");
    }
    let mut registry = Registry::new();
    for (i, bytes) in store.entries(0, size)?.into_iter().enumerate() {
        let entry = Entry::parse(&bytes).with_context(|| format!("entry {i} does not parse"))?;
        registry
            .apply(i as u64, &entry)
            .with_context(|| format!("entry {i} breaks a rule"))?;
    }
    Ok((store, registry, size, Some(String::from_utf8(note)?)))
}

/// Replays the log of a data folder and reports what it holds (`pgext-node reindex`).
///
/// # Errors
/// When the log does not replay cleanly.
pub fn reindex(config: &Config) -> anyhow::Result<(u64, usize, usize)> {
    let key = load_or_create_key(config)?;
    let (_, registry, size, _) = open_log(&config.data.join("db"), key.verifier())?;
    Ok((size, registry.accounts().count(), registry.dists().count()))
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    shared: Arc<Shared>,
    mirrors: Vec<Arc<Shared>>,
    federation: Option<Arc<crate::federation::Federation>>,
    http_addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
    /// The sequencer, the swarm and the federation tasks.
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Shortest time between two updates of an origin's search index.
const INDEX_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// Opens an origin's search index and keeps it up to date: once now (it may be behind the
/// log, or new), then after commits, at most every [`INDEX_INTERVAL`].
fn spawn_indexer(shared: &Arc<Shared>, dir: &Path) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let index = crate::search::SearchIndex::open(dir)
        .with_context(|| format!("opening the search index of {}", shared.origin))?;
    let _ = shared.search.set(index);
    let shared = shared.clone();
    Ok(tokio::spawn(async move {
        let mut changes = shared.changes.subscribe();
        let mut last: Option<tokio::time::Instant> = None;
        loop {
            // At most one update per interval: while the log grows fast (a mirror catching up,
            // a burst of publishes) one commit of the index covers many commits of the log,
            // and an idle node still indexes a publish at once.
            if let Some(wait) = last.map(|t| INDEX_INTERVAL.saturating_sub(t.elapsed())) {
                tokio::time::sleep(wait).await;
            }
            last = Some(tokio::time::Instant::now());
            let s = shared.clone();
            let done = tokio::task::spawn_blocking(move || {
                s.search.get().map(|index| index.update(&s)).transpose()
            })
            .await;
            match done {
                Ok(Ok(Some(size))) => {
                    tracing::debug!(origin = %shared.origin, size, "search index updated")
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => tracing::error!(origin = %shared.origin, "search index: {e}"),
                Err(e) => tracing::error!(origin = %shared.origin, "search indexer: {e}"),
            }
            if changes.changed().await.is_err() {
                break;
            }
        }
    }))
}

impl Node {
    /// Opens the data folder and starts serving; returns once the HTTP port is bound.
    ///
    /// # Errors
    /// When the data folder cannot be opened, the log does not replay, or the port is taken.
    pub async fn spawn(config: Config) -> anyhow::Result<Node> {
        config.validate()?;
        let (shared, key, rx) = Shared::open(config)?;
        let size = shared.size();
        let mut mirrors = Vec::new();
        for m in &shared.config.mirrors {
            mirrors.push(Shared::open_mirror(&shared, m)?);
        }
        let mut tasks = vec![tokio::spawn(sequencer::run(shared.clone(), rx, key))];
        tasks.push(spawn_indexer(&shared, &shared.config.data.join("search"))?);
        for origin in std::iter::once(&shared).chain(&mirrors) {
            for hook in &shared.config.webhooks {
                tasks.push(crate::webhooks::spawn(origin.clone(), hook.clone()));
            }
        }
        for (m, c) in mirrors.iter().zip(&shared.config.mirrors) {
            let dir = shared
                .config
                .data
                .join("mirrors")
                .join(&c.name)
                .join("search");
            tasks.push(spawn_indexer(m, &dir)?);
        }
        let federation = if shared.config.p2p.enabled {
            let identity = crate::p2p::load_or_create_identity(&shared.config.data)?;
            let witness = load_or_create_witness(&shared.config)?;
            // A forwarded publish carries its archive and entry in one request.
            let max_submission = shared.config.limits.max_archive_bytes + (1 << 20);
            let (p2p, inbound, swarm) =
                crate::p2p::spawn(identity, &shared.config.p2p, max_submission).await?;
            tasks.push(swarm);
            let view = &shared.node;
            let _ = view.peer_id.set(p2p.peer_id.to_string());
            let _ = view.witness.set(witness.verifier().to_string());
            let addrs = p2p.listen_addrs().await;
            let _ = view
                .p2p_addrs
                .set(addrs.iter().map(ToString::to_string).collect());
            let (fed, fed_tasks) = crate::federation::Federation::start(
                p2p,
                inbound,
                shared.config.p2p.clone(),
                shared.clone(),
                mirrors.clone(),
                witness,
            );
            tasks.extend(fed_tasks);
            let _ = view.federation.set(Arc::downgrade(&fed));
            Some(fed)
        } else {
            None
        };
        let listener = tokio::net::TcpListener::bind(shared.config.http)
            .await
            .with_context(|| format!("binding {}", shared.config.http))?;
        let http_addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let app = crate::http::router(shared.clone(), &mirrors);
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stop_rx.await;
            });
            if let Err(e) = serve.await {
                tracing::error!("HTTP server: {e}");
            }
        });
        info!(origin = %shared.origin, http = %http_addr, size, vkey = %shared.vkey, mirrors = mirrors.len(), "node started");
        Ok(Node {
            shared,
            mirrors,
            federation,
            http_addr,
            shutdown: Some(stop_tx),
            server,
            tasks,
        })
    }

    /// The mirrored origins.
    pub fn mirrors(&self) -> &[Arc<Shared>] {
        &self.mirrors
    }

    /// The federation, when the node joined one.
    pub fn federation(&self) -> Option<&Arc<crate::federation::Federation>> {
        self.federation.as_ref()
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// The shared state.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops serving: in-flight requests finish, the sequencer finishes its round.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.server).await;
        // The sequencer holds the queue's sender through `Shared`, so it is stopped, not drained;
        // a round already in its blocking section still completes (its write is atomic).
        let Node {
            shared,
            mirrors,
            federation,
            tasks,
            ..
        } = self;
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
        drop(federation);
        // Connection tasks, and a search update already in its blocking section, may still
        // hold an origin's state for a moment. Wait until these are the last references, so
        // every RocksDB store is closed (and its lock released) when `shutdown` returns and
        // the data folder can be opened again at once.
        let all: Vec<Arc<Shared>> = std::iter::once(shared).chain(mirrors).collect();
        let held = || all.iter().any(|s| Arc::strong_count(s) > 1);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while held() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        if held() {
            tracing::warn!(
                "state still referenced 10 s after shutdown; the store closes when the last user ends"
            );
        }
        drop(all);
    }
}

/// The verifier key of the log in a data folder (`pgext-node vkey`).
///
/// # Errors
/// When the key cannot be read or created.
pub fn vkey(config: &Config) -> anyhow::Result<String> {
    Ok(load_or_create_key(config)?.verifier().to_string())
}

/// Whether `path` looks like a data folder.
pub fn is_data_folder(path: &Path) -> bool {
    path.join(LOG_KEY_FILE).exists()
}
