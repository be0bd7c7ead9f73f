//! A running node, wired together: the origins (its own log and each mirror, replayed from
//! disk on the blocking pool), the sequencer, the search indexers and webhooks, the libp2p
//! swarm and the federation, and the HTTP server on an [`AppState`] made once. Nothing points
//! back up: each layer is handed what it needs, and the top holds everything.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::oneshot;
use tracing::info;

use crate::config::Config;
use crate::federation::Federation;
use crate::metrics::Metrics;
use crate::origin::blobs::Blobs;
use crate::origin::{self, Content, Origin, sequencer};
use crate::search::SearchIndex;
use crate::serve::{self, AppState, NodeInfo, Served};

/// Shortest time between two updates of an origin's search index.
const INDEX_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// The file in the data folder where a running node writes its HTTP base URL, for the
/// commands that reach the log through it (`operator`).
pub const HTTP_URL_FILE: &str = "http.url";

/// A running node.
#[derive(Debug)]
pub struct Node {
    app: Arc<AppState>,
    http_addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
    /// The sequencer, the swarm, the federation, the indexers and the webhooks.
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Opens an origin's search index and keeps it up to date: once now (it may be behind the
/// log, or new), then after commits, at most every [`INDEX_INTERVAL`].
async fn spawn_indexer(
    origin: &Arc<Origin>,
    dir: &Path,
) -> anyhow::Result<(Arc<SearchIndex>, tokio::task::JoinHandle<()>)> {
    let d = dir.to_path_buf();
    let index = tokio::task::spawn_blocking(move || SearchIndex::open(&d))
        .await?
        .with_context(|| format!("opening the search index of {}", origin.name))?;
    let index = Arc::new(index);
    let (origin, idx) = (origin.clone(), index.clone());
    let task = tokio::spawn(async move {
        let mut changes = origin.subscribe();
        let mut last: Option<tokio::time::Instant> = None;
        loop {
            // At most one update per interval: while the log grows fast (a mirror catching up,
            // a burst of publishes) one commit of the index covers many commits of the log,
            // and an idle node still indexes a publish at once.
            if let Some(wait) = last.map(|t| INDEX_INTERVAL.saturating_sub(t.elapsed())) {
                tokio::time::sleep(wait).await;
            }
            last = Some(tokio::time::Instant::now());
            let (o, i) = (origin.clone(), idx.clone());
            match tokio::task::spawn_blocking(move || i.update(&o)).await {
                Ok(Ok(size)) => {
                    tracing::debug!(origin = %origin.name, size, "search index updated")
                }
                Ok(Err(e)) => tracing::error!(origin = %origin.name, "search index: {e}"),
                Err(e) => tracing::error!(origin = %origin.name, "search indexer: {e}"),
            }
            if changes.changed().await.is_err() {
                break;
            }
        }
    });
    Ok((index, task))
}

impl Node {
    /// Opens the data folder and starts serving; returns once the HTTP port is bound.
    ///
    /// # Errors
    /// When the data folder cannot be opened, the log does not replay, or the port is taken.
    pub async fn spawn(config: Config) -> anyhow::Result<Node> {
        config.validate()?;
        if config.p2p.allow.is_empty() && config.mirrors.iter().any(|m| m.access.is_private()) {
            tracing::warn!(
                "a private origin is mirrored but [p2p] allow lists no peer: it is asked of no one"
            );
        }
        let metrics = Arc::new(Metrics::default());
        // Opening replays whole logs: on the blocking pool.
        let (own, key, rx, mirrors) = {
            let (config, metrics) = (config.clone(), metrics.clone());
            tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                let blobs =
                    Blobs::open(&config.data.join("blobs")).context("opening the blob store")?;
                let curated =
                    crate::origin::categories::Curated::load(config.categories.as_deref())
                        .context("reading the categories mapping")?;
                let content = Arc::new(Content::new(blobs, metrics.clone()).with_curated(curated));
                let (own, key, rx) = Origin::open_own(&config, content.clone(), metrics.clone())?;
                let mut mirrors = Vec::new();
                for m in &config.mirrors {
                    let o = Origin::open_mirror(&config, m, content.clone(), metrics.clone())?;
                    if o.name == own.name {
                        anyhow::bail!("mirror {}: this node sequences {} itself", m.name, own.name);
                    }
                    mirrors.push(o);
                }
                Ok((own, key, rx, mirrors))
            })
            .await??
        };
        let size = own.size();
        // The log key signs CI keys too (trusted publishing), as the operator: read again,
        // as the sequencer owns its copy.
        let trusted_key = {
            let c = config.clone();
            tokio::task::spawn_blocking(move || {
                origin::keys::ed25519_of(&origin::keys::load_log_key(&c)?)
            })
            .await??
        };
        let mut tasks = vec![tokio::spawn(sequencer::run(own.clone(), rx, key))];
        let mut served = Vec::new();
        for (o, dir) in std::iter::once((&own, config.data.join("search"))).chain(
            mirrors
                .iter()
                .zip(&config.mirrors)
                .map(|(o, c)| (o, config.data.join("mirrors").join(&c.name).join("search"))),
        ) {
            let (index, task) = spawn_indexer(o, &dir).await?;
            tasks.push(task);
            served.push(Served::new(o.clone(), Some(index)));
            // A private origin's releases go only to webhooks that say they may hear them.
            for hook in config
                .webhooks
                .iter()
                .filter(|h| !o.private || h.access.is_private())
            {
                tasks.push(crate::webhooks::spawn(
                    config.data.clone(),
                    o.clone(),
                    hook.clone(),
                ));
            }
        }
        let mut info = NodeInfo::default();
        let federation = if config.p2p.enabled {
            let (fed, fed_tasks) = start_federation(&config, &own, &mirrors, &mut info).await?;
            tasks.extend(fed_tasks);
            Some(fed)
        } else {
            // Downloads are counted all the same, in statements of this node's own.
            let c = config.clone();
            let key = tokio::task::spawn_blocking(move || origin::keys::load_or_create_witness(&c))
                .await??;
            let origins = std::iter::once(own.clone())
                .chain(mirrors.iter().cloned())
                .collect();
            tasks.push(tokio::spawn(origin::counts::state_locally(
                origins,
                Arc::new(key),
                config.counts.period_secs,
            )));
            None
        };
        let listener = tokio::net::TcpListener::bind(config.http)
            .await
            .with_context(|| format!("binding {}", config.http))?;
        let http_addr = listener.local_addr()?;
        // Best effort: the operator's commands read it only while the store is locked, that
        // is while this node runs.
        let url_file = config.data.join(HTTP_URL_FILE);
        if let Err(e) = std::fs::write(&url_file, format!("http://{http_addr}\n")) {
            tracing::warn!("writing {}: {e}", url_file.display());
        }
        let app = Arc::new(AppState {
            origins: served,
            federation,
            info,
            metrics: metrics.clone(),
            http: http_addr,
            max_archive_bytes: config.limits.max_archive_bytes,
            limiter: Arc::new(crate::serve::access::Limiter::new(metrics.clone())),
            uploads: (
                Arc::new(tokio::sync::Semaphore::new(
                    config.uploads.concurrent.max(1),
                )),
                std::time::Duration::from_millis(config.uploads.wait_ms),
            ),
            trusted: Some(Arc::new(crate::trusted::Trusted::new(
                config.trusted_publishing.clone(),
                &own.name,
                trusted_key,
            ))),
        });
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let router = serve::router(app.clone());
        // No Nagle: a small body written after its headers would otherwise wait for the
        // client's delayed acknowledgement (40 ms on Linux).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!("TCP_NODELAY: {e}");
            }
        });
        let server = tokio::spawn(async move {
            // The peer address counts failed tokens (`serve::access::Limiter`).
            let service =
                axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
                    SocketAddr,
                >(router);
            let serve = axum::serve(listener, service).with_graceful_shutdown(async {
                let _ = stop_rx.await;
            });
            if let Err(e) = serve.await {
                tracing::error!("HTTP server: {e}");
            }
        });
        info!(origin = %own.name, http = %http_addr, size, vkey = %own.vkey, mirrors = mirrors.len(), "node started");
        Ok(Node {
            app,
            http_addr,
            shutdown: Some(stop_tx),
            server,
            tasks,
        })
    }

    /// The node's own origin.
    pub fn origin(&self) -> &Arc<Origin> {
        &self.app.origins[0].origin
    }

    /// The mirrored origins, in configuration order.
    pub fn mirrors(&self) -> Vec<Arc<Origin>> {
        self.app.origins[1..]
            .iter()
            .map(|s| s.origin.clone())
            .collect()
    }

    /// The origin served below `prefix` (`""` for the node's own).
    pub fn served(&self, prefix: &str) -> Option<&Arc<Origin>> {
        self.app
            .origins
            .iter()
            .map(|s| &s.origin)
            .find(|o| o.prefix == prefix)
    }

    /// The federation, when the node joined one.
    pub fn federation(&self) -> Option<&Arc<Federation>> {
        self.app.federation.as_ref()
    }

    /// What the node shows of itself (peer id, libp2p addresses, cosigner key).
    pub fn info(&self) -> &NodeInfo {
        &self.app.info
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// Stops serving: in-flight requests finish, the sequencer finishes its round.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.server).await;
        let Node { app, tasks, .. } = self;
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
        // Connection tasks, and a search update or a read already on the blocking pool, may
        // still hold an origin for a moment. Wait until these are the last references, so every
        // RocksDB store is closed (and its lock released) when `shutdown` returns and the data
        // folder can be opened again at once.
        let all: Vec<Arc<Origin>> = app.origins.iter().map(|s| s.origin.clone()).collect();
        drop(app);
        let held = || all.iter().any(|o| Arc::strong_count(o) > 1);
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

/// Joins the federation: the peer identity and cosigner key, the swarm, and the federation's
/// tasks.
async fn start_federation(
    config: &Config,
    own: &Arc<Origin>,
    mirrors: &[Arc<Origin>],
    info: &mut NodeInfo,
) -> anyhow::Result<(Arc<Federation>, Vec<tokio::task::JoinHandle<()>>)> {
    let (identity, witness, cosigners) = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            Ok((
                crate::p2p::load_or_create_identity(&config.data)?,
                origin::keys::load_or_create_witness(&config)?,
                origin::keys::load_or_create_cosigners(&config)?,
            ))
        })
        .await??
    };
    let (p2p, inbound, swarm) = crate::p2p::swarm::spawn(
        identity,
        &config.p2p,
        // Forwarded submissions carry a release archive or a binary package.
        config
            .limits
            .max_archive_bytes
            .max(pgext_spec::binary::MAX_BINARY_BYTES),
    )
    .await?;
    info.peer_id = Some(p2p.peer_id.to_string());
    info.witness = Some(witness.verifier().to_string());
    info.cosigners = cosigners.iter().map(|k| k.verifier().to_string()).collect();
    info.p2p_addrs = p2p
        .listen_addrs()
        .await
        .iter()
        .map(ToString::to_string)
        .collect();
    let (fed, mut tasks) = Federation::start(
        p2p,
        inbound,
        config.p2p.clone(),
        own.clone(),
        mirrors.to_vec(),
        (witness, cosigners, config.counts.clone()),
    );
    tasks.push(swarm);
    Ok((fed, tasks))
}
