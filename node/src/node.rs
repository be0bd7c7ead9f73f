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
    Checkpoint, Hash, KeyType, SignerKey, TileHashReader, open_checkpoint, sign, tree_hash,
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
use crate::metrics::Metrics;
use crate::sequencer::{self, Submission};
use crate::store::{META_CHECKPOINT, Store};

/// File name of the log's private key in the data folder.
pub const LOG_KEY_FILE: &str = "log.key";

/// State shared by the sequencer and the HTTP handlers.
#[derive(Debug)]
pub struct Shared {
    /// Configuration.
    pub config: Config,
    /// The origin this node sequences.
    pub origin: String,
    /// The log key.
    pub log_key: SignerKey,
    /// Tiles, bundles, checkpoint.
    pub store: Store,
    /// Release zips and METAs.
    pub blobs: Blobs,
    /// Registry state derived from the log. The sequencer holds the write lock through a whole
    /// round, so readers never see an entry before it is durable.
    pub registry: RwLock<Registry>,
    /// Latest size and signed checkpoint.
    checkpoint: RwLock<(u64, String)>,
    /// Parsed METAs by their SHA-256.
    pub metas: Mutex<HashMap<String, Arc<Meta>>>,
    /// Documentation found in each release zip, by the zip's SHA-256.
    docs: Mutex<HashMap<String, Arc<ReleaseDocs>>>,
    /// Metrics.
    pub metrics: Metrics,
    /// Rendered documents of the current log size.
    pub doc_cache: DocCache,
    /// Submissions to the sequencer.
    pub submit: mpsc::Sender<Submission>,
}

impl Shared {
    /// Opens a data folder: the key (created on first start), the stores, and the registry
    /// state replayed from the log. Returns the receiving end of the sequencer's queue.
    ///
    /// # Errors
    /// When the folder cannot be opened or the log does not replay cleanly.
    pub fn open(config: Config) -> anyhow::Result<(Arc<Shared>, mpsc::Receiver<Submission>)> {
        let log_key = load_or_create_key(&config)?;
        let (store, blobs, registry, size, note) = open_state(&config, &log_key)?;
        let (tx, rx) = mpsc::channel(1024);
        let metrics = Metrics::default();
        metrics
            .log_size
            .store(size, std::sync::atomic::Ordering::Relaxed);
        let shared = Arc::new(Shared {
            origin: log_key.name().to_string(),
            config,
            log_key,
            store,
            blobs,
            registry: RwLock::new(registry),
            checkpoint: RwLock::new((size, note)),
            metas: Mutex::new(HashMap::new()),
            docs: Mutex::new(HashMap::new()),
            metrics,
            doc_cache: DocCache::default(),
            submit: tx,
        });
        Ok((shared, rx))
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
        let base = format!("{dist}-{}", r.release.version).to_ascii_lowercase();
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
        let (tx, rx) = oneshot::channel();
        self.submit
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
    let tmp = config.data.join(".log.key.tmp");
    {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(format!("{}\n", key.to_private_text()).as_bytes())?;
        f.sync_all()?;
    }
    fs::rename(&tmp, &path)?;
    info!(origin = key.name(), vkey = %key.verifier(), "created the log key");
    Ok(key)
}

/// Opens the stores and replays the log: the registry state, and a check that the tiles
/// recompute to the signed checkpoint.
fn open_state(
    config: &Config,
    log_key: &SignerKey,
) -> anyhow::Result<(Store, Blobs, Registry, u64, String)> {
    let store = Store::open(&config.data.join("db")).context("opening the store")?;
    let blobs = Blobs::open(&config.data.join("blobs")).context("opening the blob store")?;
    let origin = log_key.name().to_string();
    let (size, note) = match store.checkpoint()? {
        Some(note) => {
            let signed = open_checkpoint(&note, log_key.verifier(), &[])
                .context("the stored checkpoint does not verify with the log key")?;
            let root = tree_hash(
                signed.checkpoint.size,
                &TileHashReader::new(signed.checkpoint.size, &store),
            )?;
            if root != signed.checkpoint.root {
                bail!(
                    "the stored tiles do not recompute to the checkpoint's root (size {})",
                    signed.checkpoint.size
                );
            }
            (signed.checkpoint.size, String::from_utf8(note)?)
        }
        None => {
            let note = sign(
                &Checkpoint::new(&origin, 0, Hash::empty_root()).to_text(),
                &[log_key],
                0,
            )?;
            store.commit(&[], &[(META_CHECKPOINT, note.as_bytes())])?;
            (0, note)
        }
    };
    let mut registry = Registry::new();
    for (i, bytes) in store.entries(0, size)?.into_iter().enumerate() {
        let entry = Entry::parse(&bytes).with_context(|| format!("entry {i} does not parse"))?;
        registry
            .apply(i as u64, &entry)
            .with_context(|| format!("entry {i} breaks a rule"))?;
    }
    Ok((store, blobs, registry, size, note))
}

/// Replays the log of a data folder and reports what it holds (`pgext-node reindex`).
///
/// # Errors
/// When the log does not replay cleanly.
pub fn reindex(config: &Config) -> anyhow::Result<(u64, usize, usize)> {
    let key = load_or_create_key(config)?;
    let (_, _, registry, size, _) = open_state(config, &key)?;
    Ok((size, registry.accounts().count(), registry.dists().count()))
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    shared: Arc<Shared>,
    http_addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
    sequencer: tokio::task::JoinHandle<()>,
}

impl Node {
    /// Opens the data folder and starts serving; returns once the HTTP port is bound.
    ///
    /// # Errors
    /// When the data folder cannot be opened, the log does not replay, or the port is taken.
    pub async fn spawn(config: Config) -> anyhow::Result<Node> {
        let (shared, rx) = Shared::open(config)?;
        let size = shared.size();
        let sequencer = tokio::spawn(sequencer::run(shared.clone(), rx));
        let listener = tokio::net::TcpListener::bind(shared.config.http)
            .await
            .with_context(|| format!("binding {}", shared.config.http))?;
        let http_addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let app = crate::http::router(shared.clone());
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stop_rx.await;
            });
            if let Err(e) = serve.await {
                tracing::error!("HTTP server: {e}");
            }
        });
        info!(origin = %shared.origin, http = %http_addr, size, vkey = %shared.log_key.verifier(), "node started");
        Ok(Node {
            shared,
            http_addr,
            shutdown: Some(stop_tx),
            server,
            sequencer,
        })
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
            shared, sequencer, ..
        } = self;
        sequencer.abort();
        let _ = sequencer.await;
        // Connection tasks may still hold the state for a moment after the server returns.
        // Wait until this is the last reference, so RocksDB is closed (and its lock released)
        // when `shutdown` returns and the data folder can be opened again at once.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while Arc::strong_count(&shared) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        if Arc::strong_count(&shared) > 1 {
            tracing::warn!(
                "state still referenced 10 s after shutdown; the store closes when the last user ends"
            );
        }
        drop(shared);
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
