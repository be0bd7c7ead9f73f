//! Download counts of one origin (`spec/counts.md`): what this node served since its last
//! statement (in memory, no client address kept), and every count statement it took, its own
//! and those of the nodes it knows, in each node's order. Statements are stored in the
//! origin's RocksDB (`counts/{node id}/{seq}`) and added up at open.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use pgext_log::{KeyType, SignerKey, VerifierKey};
use pgext_spec::counts::{Count, Counted, MAX_COUNTS, Statement, node_id};

use super::Origin;
use super::error::{Error, Refusal, Result};
use super::store::Store;

/// A release: lowercase dist and version.
type Key = (String, String);

/// One node's statements as taken here.
#[derive(Debug, Clone, Default)]
struct NodeTally {
    vkey: String,
    seq: u64,
    to: u64,
    totals: BTreeMap<Key, u64>,
}

#[derive(Debug, Default)]
struct State {
    /// By node id.
    nodes: BTreeMap<String, NodeTally>,
    /// Served here since this node's last statement.
    pending: BTreeMap<Key, u64>,
}

/// The counts of one origin.
#[derive(Debug, Default)]
pub struct Tally {
    state: Mutex<State>,
    /// Statements taken since the node started: what cached documents showing downloads were
    /// made from. Read on every request, so outside the lock.
    taken: AtomicU64,
}

/// What the nodes say of one release.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Downloads {
    /// All nodes together.
    pub total: u64,
    /// Per node (cosigner vkey).
    pub nodes: BTreeMap<String, u64>,
}

/// One node's statements, summed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSummary {
    /// Its cosigner vkey.
    pub node: String,
    /// Its last statement's number.
    pub seq: u64,
    /// The end of its last period.
    pub to: u64,
    /// Downloads it counted in all.
    pub downloads: u64,
}

fn key_of(prefix_key: &str) -> Option<(&str, u64)> {
    let rest = prefix_key.strip_prefix("counts/")?;
    let (id, seq) = rest.split_once('/')?;
    Some((id, seq.parse().ok()?))
}

impl Tally {
    /// The statements stored in `store`, added up (each was checked when it was taken).
    pub fn load(store: &Store) -> Tally {
        let mut state = State::default();
        let stored = store.meta_with_prefix("counts/").unwrap_or_else(|e| {
            tracing::error!("reading the stored download counts: {e}");
            Vec::new()
        });
        for (k, bytes) in stored {
            let (Some((id, seq)), Ok(s)) = (key_of(&k), Statement::parse(&bytes)) else {
                continue;
            };
            add(state.nodes.entry(id.to_string()).or_default(), seq, &s);
        }
        Tally {
            state: Mutex::new(state),
            taken: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the nodes say of one release.
    pub fn downloads(&self, dist: &str, version: &str) -> Downloads {
        let key = (dist.to_ascii_lowercase(), version.to_ascii_lowercase());
        let st = self.lock();
        let mut out = Downloads::default();
        for n in st.nodes.values() {
            if let Some(&k) = n.totals.get(&key) {
                out.total += k;
                out.nodes.insert(n.vkey.clone(), k);
            }
        }
        out
    }
}

fn add(n: &mut NodeTally, seq: u64, s: &Statement) {
    n.vkey.clone_from(&s.counted.node);
    n.seq = seq;
    n.to = s.counted.to;
    for c in &s.counted.counts {
        *n.totals
            .entry((c.dist.clone(), c.version.clone()))
            .or_default() += c.downloads;
    }
}

fn refused(code: &'static str, detail: String) -> Error {
    Error::refused(Refusal::Invalid, code, detail)
}

/// States what a node without a federation served of each origin every `period` seconds
/// (its own statements only: there is nobody to tell).
pub async fn state_locally(
    origins: Vec<std::sync::Arc<Origin>>,
    key: std::sync::Arc<SignerKey>,
    period: u64,
) {
    let known = vec![key.verifier().clone()];
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(period.max(1)));
    tick.tick().await;
    loop {
        tick.tick().await;
        for o in &origins {
            let (o, key, known) = (o.clone(), key.clone(), known.clone());
            let name = o.name.clone();
            if let Err(e) = super::blocking(move || o.state_counts(&key, period, &known)).await {
                tracing::warn!(origin = %name, "this node's count statement was not taken: {e}");
            }
        }
    }
}

/// The Ed25519 key of a node's cosigner vkey.
fn node_key(vkey: &VerifierKey) -> Option<ed25519_dalek::VerifyingKey> {
    (vkey.kind() == KeyType::Cosignature)
        .then(|| vkey.ed25519().copied())
        .flatten()
}

impl Origin {
    /// Counts one download of `dist@version` served here, if the log has that release.
    pub fn count_download(&self, dist: &str, version: &str) {
        let snap = self.snapshot();
        let Some(d) = snap.registry.dist(dist) else {
            return;
        };
        let v = version.to_ascii_lowercase();
        if d.releases.contains_key(&v) {
            let key = (d.name.to_ascii_lowercase(), v);
            *self.counts.lock().pending.entry(key).or_default() += 1;
        }
    }

    /// Takes what was served since the last statement: at most [`MAX_COUNTS`] releases (the
    /// rest stays for the next).
    pub fn take_pending(&self) -> Vec<Count> {
        let mut st = self.counts.lock();
        let keys: Vec<Key> = st.pending.keys().take(MAX_COUNTS).cloned().collect();
        keys.into_iter()
            .filter_map(|k| {
                let n = st.pending.remove(&k)?;
                Some(Count {
                    dist: k.0,
                    version: k.1,
                    downloads: n,
                })
            })
            .collect()
    }

    /// Puts counts back that could not be said (their statement was not taken).
    pub fn return_pending(&self, counts: Vec<Count>) {
        let mut st = self.counts.lock();
        for c in counts {
            *st.pending.entry((c.dist, c.version)).or_default() += c.downloads;
        }
    }

    /// The number and period end of a node's last statement taken here (0, 0 for none).
    pub fn last_counted(&self, node_vkey: &str) -> (u64, u64) {
        self.counts
            .lock()
            .nodes
            .get(&node_id(node_vkey))
            .map_or((0, 0), |n| (n.seq, n.to))
    }

    /// Takes a count statement: of this origin, by a node in `known`, signed by it, next in
    /// that node's order (its number one more than the last taken, its period starting where
    /// the last ended), of releases the log has. Stored (synced) before it counts. A statement
    /// taken before is taken again without effect. Blocks.
    ///
    /// # Errors
    /// A refusal naming the rule (`malformed-counts`, `unknown-node`, `bad-signature`,
    /// `counts-order`, `unknown-release`); a store fault.
    pub fn record_counts(&self, bytes: &[u8], known: &[VerifierKey]) -> Result<bool> {
        let s = Statement::parse(bytes).map_err(|e| refused("malformed-counts", e.to_string()))?;
        let c = &s.counted;
        if c.origin != self.name {
            return Err(refused(
                "unknown-origin",
                format!("the statement counts {}, not {}", c.origin, self.name),
            ));
        }
        let node = known
            .iter()
            .find(|k| k.to_string() == c.node)
            .ok_or_else(|| {
                refused(
                    "unknown-node",
                    format!("{} is not a node whose counts this node takes", c.node),
                )
            })?;
        let key = node_key(node)
            .ok_or_else(|| refused("unknown-node", format!("{} is not a cosigner key", c.node)))?;
        s.verify(&key)
            .map_err(|e| refused("bad-signature", e.to_string()))?;
        let id = node_id(&c.node);
        let store_key = format!("counts/{id}/{:020}", c.seq);
        let _turn = self.commit_lock.lock().unwrap_or_else(|p| p.into_inner());
        let (seq, to) = self.last_counted(&c.node);
        if c.seq <= seq {
            let same = self
                .store
                .meta(&store_key)?
                .is_some_and(|b| b == s.to_bytes());
            return if same {
                Ok(false)
            } else {
                Err(refused(
                    "counts-order",
                    format!("{} said statement {} already, otherwise", c.node, c.seq),
                ))
            };
        }
        if c.seq != seq + 1 || (seq > 0 && c.from != to) {
            return Err(refused(
                "counts-order",
                format!(
                    "after statement {seq} (to {to}) of {} comes {} from {to}, not {} from {}",
                    c.node,
                    seq + 1,
                    c.seq,
                    c.from
                ),
            ));
        }
        let snap = self.snapshot();
        for n in &c.counts {
            let known_release = snap
                .registry
                .dist(&n.dist)
                .is_some_and(|d| d.releases.contains_key(&n.version));
            if !known_release {
                return Err(refused(
                    "unknown-release",
                    format!(
                        "{} counts {}@{}, which the log does not have",
                        c.node, n.dist, n.version
                    ),
                ));
            }
        }
        let bytes = s.to_bytes();
        self.store
            .commit(&[], &[(store_key.as_str(), bytes.as_slice())])?;
        add(self.counts.lock().nodes.entry(id).or_default(), c.seq, &s);
        self.counts.taken.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    /// States what this node served since its last statement, signed with its cosigner key
    /// `key`, and takes the statement; returns it (for gossip), or `None` when nothing was
    /// served. Counts whose statement is not taken stay for the next. Blocks.
    ///
    /// # Errors
    /// When the statement is not taken (a store fault).
    pub fn state_counts(
        &self,
        key: &SignerKey,
        period: u64,
        known: &[VerifierKey],
    ) -> Result<Option<Vec<u8>>> {
        let counts = self.take_pending();
        if counts.is_empty() {
            return Ok(None);
        }
        let node = key.verifier().to_string();
        let (seq, last_to) = self.last_counted(&node);
        let now = super::sequencer::now();
        let from = if seq == 0 {
            now.saturating_sub(period)
        } else {
            last_to
        };
        let bytes = Counted {
            v: 1,
            origin: self.name.clone(),
            node,
            seq: seq + 1,
            from,
            to: now.max(from + 1),
            counts: counts.clone(),
        }
        .sign(key.ed25519().ok_or_else(|| {
            Error::internal("count statements are signed with an Ed25519 cosigner key")
        })?)
        .to_bytes();
        match self.record_counts(&bytes, known) {
            Ok(_) => Ok(Some(bytes)),
            Err(e) => {
                self.return_pending(counts);
                Err(e)
            }
        }
    }

    /// How many statements were taken since the node started.
    pub fn counts_taken(&self) -> u64 {
        self.counts.taken.load(Ordering::Relaxed)
    }

    /// A statement taken here, by node id and number, as stored.
    ///
    /// # Errors
    /// A store fault.
    pub fn counts_statement(&self, id: &str, seq: u64) -> Result<Option<Vec<u8>>> {
        Ok(self.store.meta(&format!("counts/{id}/{seq:020}"))?)
    }

    /// What the nodes say of one release.
    pub fn downloads(&self, dist: &str, version: &str) -> Downloads {
        self.counts.downloads(dist, version)
    }

    /// Every node's statements, summed.
    pub fn download_nodes(&self) -> Vec<NodeSummary> {
        self.counts
            .lock()
            .nodes
            .values()
            .map(|n| NodeSummary {
                node: n.vkey.clone(),
                seq: n.seq,
                to: n.to,
                downloads: n.totals.values().sum(),
            })
            .collect()
    }
}
