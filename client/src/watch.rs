//! `pgext watch`: follow a registry's log and report every new verified entry that touches
//! some names: releases, owners, yanks of a distribution; account and key changes of a user
//! (`spec/audit.md`, Watch). Each new checkpoint is opened with the log key and the witness
//! policy, the new entries are fetched and must extend the tree verified so far to its root
//! (so a rewritten log is caught), and each entry is replayed against the rules before it is
//! reported.

use std::time::Duration;

use pgext_log::{MemoryTiles, Tile, bundle_entries, integrate};
use pgext_spec::authority::Registry;
use pgext_spec::entry::{Action, Entry};
use serde::Serialize;

use crate::trust::RegistryConfig;
use crate::verify::{Remote, check_quorum, open_with_policy};
use crate::{Error, VerifyError};

/// What to watch.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// The registry (nodes, log key, witness policy).
    pub registry: RegistryConfig,
    /// Distribution and user names (case-insensitive); none means every entry.
    pub names: Vec<String>,
    /// Report entries from this index (default: only those after the current checkpoint).
    pub from: Option<u64>,
    /// How often to look for a new checkpoint.
    pub interval: Duration,
    /// Stop once the current checkpoint is processed.
    pub once: bool,
    /// Accounts whose keys are watched (key transparency): every key added, rotated or
    /// revoked for them, every CI key recorded for them, every release they sign.
    pub accounts: Vec<String>,
}

/// One verified entry touching a watched name.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Log index.
    pub index: u64,
    /// The entry's type (`release`, `owner_grant`, `yank`, …).
    pub kind: String,
    /// Who signed it.
    pub actor: String,
    /// The distribution, if it is about one.
    pub dist: Option<String>,
    /// The version, for releases and yanks.
    pub version: Option<String>,
    /// The key an account entry, key change or CI key is about, or that signed a release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The checkpoint size it was verified in.
    pub checkpoint_size: u64,
    /// The entry.
    pub entry: Entry,
}

/// The distribution an advisory is reported under: the first watched one it names, else its
/// first.
fn advised<'a>(dists: impl Iterator<Item = &'a str>, names: &[String]) -> Option<String> {
    let dists: Vec<&str> = dists.collect();
    dists
        .iter()
        .find(|d| names.iter().any(|n| n.eq_ignore_ascii_case(d)))
        .or(dists.first())
        .map(|d| d.to_string())
}

/// The account and key an entry changes the keys of (an account's first key, a key added,
/// rotated to or revoked, a CI key recorded for it), or that signed a release.
fn key_of(entry: &Entry) -> Option<(String, String)> {
    let st = &entry.statement;
    match (&st.action, st.key_change()) {
        (Action::Release(_), _) => Some((st.actor.clone(), st.key_id.clone())),
        (_, change) => change.map(|(user, key)| (user.to_string(), key)),
    }
}

fn event_of(
    index: u64,
    entry: &Entry,
    cfg: &WatchConfig,
    (size, reg): (u64, &Registry),
) -> Option<Event> {
    let names = &cfg.names;
    let st = &entry.statement;
    let (dist, version, user) = match &st.action {
        Action::Release(r) | Action::Import(pgext_spec::entry::Import { release: r, .. }) => {
            (Some(r.dist.clone()), Some(r.version.clone()), None)
        }
        Action::Claim { user, .. } => (None, None, Some(user.clone())),
        Action::Yank { dist, version, .. } | Action::Unyank { dist, version } => {
            (Some(dist.clone()), Some(version.clone()), None)
        }
        Action::Build(b) => (Some(b.dist.clone()), Some(b.version.clone()), None),
        Action::OwnerGrant { dist, user } | Action::OwnerRevoke { dist, user } => {
            (Some(dist.clone()), None, Some(user.clone()))
        }
        Action::Advisory(a) => (advised(a.dists(), names), None, None),
        Action::AdvisoryWithdraw { id, .. } => (
            reg.advisory(id)
                .and_then(|a| advised(a.advisory.dists(), names)),
            None,
            None,
        ),
        _ => (None, None, None),
    };
    let hit = |n: &Option<String>| {
        n.as_ref()
            .is_some_and(|x| names.iter().any(|w| w.eq_ignore_ascii_case(x)))
    };
    let key = key_of(entry);
    let keys_watched = key
        .as_ref()
        .is_some_and(|(u, _)| cfg.accounts.iter().any(|a| a.eq_ignore_ascii_case(u)));
    let named = if names.is_empty() {
        cfg.accounts.is_empty()
    } else {
        hit(&dist) || hit(&user) || hit(&Some(st.actor.clone()))
    };
    (named || keys_watched).then(|| Event {
        index,
        kind: st.action.kind().to_string(),
        actor: st.actor.clone(),
        dist,
        version,
        key_id: key.map(|(_, k)| k),
        checkpoint_size: size,
        entry: entry.clone(),
    })
}

/// The log verified so far.
struct Followed {
    tree: MemoryTiles,
    size: u64,
    root: pgext_log::Hash,
    registry: Registry,
}

impl Followed {
    /// Fetches the entries from `self.size` to the checkpoint's `size`, checks they extend the
    /// tree to `root`, replays them, and returns them.
    async fn extend(
        &mut self,
        remote: &Remote,
        size: u64,
        root: pgext_log::Hash,
    ) -> Result<Vec<(u64, Entry)>, Error> {
        let mut bytes: Vec<Vec<u8>> = Vec::new();
        for n in self.size / 256..size.div_ceil(256) {
            let tile = Tile::entries(n, (size - n * 256).min(256) as u16);
            let data = remote.get(&format!("/log/{}", tile.path())).await?;
            let list = bundle_entries(&tile, &data).map_err(|e| {
                Error::Verify(VerifyError::Malformed(format!("{}: {e}", tile.path())))
            })?;
            let skip = (self.size.max(n * 256) - n * 256) as usize;
            bytes.extend(list.into_iter().skip(skip).map(<[u8]>::to_vec));
        }
        let out = integrate(self.size, &bytes, &self.tree)
            .map_err(|e| Error::Verify(VerifyError::Malformed(e.to_string())))?;
        if out.root != root {
            return Err(Error::Verify(VerifyError::Inconsistent {
                size,
                remembered: self.size,
                detail: "the entries served do not extend the verified tree to the signed root"
                    .into(),
            }));
        }
        for (t, b) in out.tiles {
            self.tree.put(t, b);
        }
        let mut entries = Vec::with_capacity(bytes.len());
        for (k, b) in bytes.iter().enumerate() {
            let index = self.size + k as u64;
            let entry = Entry::parse(b).map_err(|e| {
                Error::Verify(VerifyError::Malformed(format!("entry {index}: {e}")))
            })?;
            self.registry.apply(index, &entry).map_err(|v| {
                Error::Verify(VerifyError::Authority {
                    index,
                    detail: v.to_string(),
                })
            })?;
            entries.push((index, entry));
        }
        self.size = size;
        self.root = root;
        Ok(entries)
    }
}

/// Follows the log and calls `report` for every new verified entry touching the names.
/// Returns when `once` and the current checkpoint is processed, or on the first failure (a
/// checkpoint that does not verify, a log that does not extend, an entry that breaks a rule,
/// or `report` failing).
///
/// # Errors
/// The first failure.
pub async fn watch<F, Fut>(cfg: &WatchConfig, mut report: F) -> Result<(), Error>
where
    F: FnMut(Event) -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    let remote = Remote::new(&cfg.registry);
    let mut followed = Followed {
        tree: MemoryTiles::new(),
        size: 0,
        root: pgext_log::Hash::empty_root(),
        registry: Registry::for_log(&cfg.registry.log_key()?),
    };
    let mut start = cfg.from;
    loop {
        let note = String::from_utf8(remote.get("/log/checkpoint").await?)
            .map_err(|_| Error::Verify(VerifyError::Malformed("checkpoint is not UTF-8".into())))?;
        let (signed, cosigners) = open_with_policy(&cfg.registry, &note)?;
        check_quorum(&cfg.registry, &cosigners)?;
        let (size, root) = (signed.checkpoint.size, signed.checkpoint.root);
        if size == followed.size && size > 0 && root != followed.root {
            return Err(Error::Verify(VerifyError::Inconsistent {
                size,
                remembered: followed.size,
                detail: "same size, another root".into(),
            }));
        }
        if size < followed.size {
            return Err(Error::Verify(VerifyError::Inconsistent {
                size,
                remembered: followed.size,
                detail: "the log shrank".into(),
            }));
        }
        let first = *start.get_or_insert(size);
        if size > followed.size {
            for (index, entry) in followed.extend(&remote, size, root).await? {
                if index < first {
                    continue;
                }
                if let Some(ev) = event_of(index, &entry, cfg, (size, &followed.registry)) {
                    report(ev).await?;
                }
            }
        }
        if cfg.once {
            return Ok(());
        }
        tokio::time::sleep(cfg.interval).await;
    }
}
