//! Cluster manifests and locks (`spec/client.md`, Manifests and locks): `pgext lock` resolves a
//! [`manifest::Manifest`] into a [`lockfile::Lock`]; `pgext sync` makes the installation match
//! a lock, every entry verified against its log (online here, offline from a [`pack`]).

pub mod lockfile;
pub mod manifest;
pub mod pack;

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

use crate::Error;
use crate::binary::{Choice, VerifiedBinary};
use crate::installed::{self, Installed};
use crate::ops::{Context, Kind};
use crate::plan::{Follow, Plan, Root};
use crate::request::{Select, Want};
use crate::trust::RegistryConfig;
use crate::verify::VerifiedRelease;
use lockfile::{FORMAT, Lock, LockedBinary, LockedDist, LockedRegistry};
use manifest::{KindWanted, Manifest};

/// What `sync` does to one dist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Not installed yet.
    Install,
    /// Another release (or kind) is installed: replaced.
    Replace,
    /// Installed as locked: nothing to do.
    Keep,
    /// Installed as locked by hand (`pgext install`): only its record changes, so that a later
    /// sync removes it when the lock drops it.
    Adopt,
}

/// One dist of a sync, verified.
#[derive(Debug)]
pub struct SyncStep {
    /// As locked.
    pub locked: LockedDist,
    /// What happens.
    pub change: Change,
    /// The version installed now, if any.
    pub from: Option<String>,
    /// The verified release.
    pub verified: VerifiedRelease,
    /// The verified binary, for `binary` dists being installed.
    pub binary: Option<VerifiedBinary>,
}

/// A verified sync.
#[derive(Debug)]
pub struct SyncPlan {
    /// The lock's dists, in order.
    pub steps: Vec<SyncStep>,
    /// Dists an earlier sync installed that the lock no longer names.
    pub remove: Vec<Installed>,
    /// The lock file (recorded with each install).
    pub lock_path: String,
}

/// One line of a sync, as printed and as `--json` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeView {
    /// Dist.
    pub dist: String,
    /// Version after the sync (before, for a removal).
    pub version: String,
    /// `install`, `replace`, `keep` or `remove`.
    pub action: String,
    /// The version replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// `binary` or `source`.
    pub kind: String,
}

impl SyncPlan {
    /// Whether the sync changes nothing.
    pub fn is_noop(&self) -> bool {
        self.remove.is_empty() && self.steps.iter().all(|s| s.change == Change::Keep)
    }

    /// The sync as shown.
    pub fn view(&self) -> Vec<ChangeView> {
        let mut out: Vec<ChangeView> = self
            .remove
            .iter()
            .map(|i| ChangeView {
                dist: i.dist.clone(),
                version: i.version.clone(),
                action: "remove".into(),
                from: None,
                kind: i.kind.clone(),
            })
            .collect();
        out.extend(self.steps.iter().map(|s| {
            ChangeView {
                dist: s.locked.name.clone(),
                version: s.locked.version.clone(),
                action: match s.change {
                    Change::Install => "install",
                    Change::Replace => "replace",
                    Change::Keep => "keep",
                    Change::Adopt => "adopt",
                }
                .into(),
                from: s.from.clone(),
                kind: s.locked.kind.clone(),
            }
        }));
        out
    }
}

/// The record of `d` in this installation when it is installed exactly as locked.
fn installed_as_locked(records: &[Installed], d: &LockedDist) -> (Change, Option<String>) {
    let Some(r) = records
        .iter()
        .find(|r| r.dist.eq_ignore_ascii_case(&d.name))
    else {
        return (Change::Install, None);
    };
    let same = r.sha256 == d.sha256
        && r.provenance.as_ref().is_some_and(|p| p.index == d.index)
        && r.kind == d.kind
        && r.binary_sha256.as_deref() == d.binary.as_ref().map(|b| b.sha256.as_str());
    if same && r.lock.is_some() {
        (Change::Keep, Some(r.version.clone()))
    } else if same {
        (Change::Adopt, Some(r.version.clone()))
    } else {
        (Change::Replace, Some(r.version.clone()))
    }
}

/// Whether the release in `zip` supports `here` (its META v2 `platforms`).
fn supports(zip: &[u8], here: &pgext_spec::requirements::Platform) -> Result<(), String> {
    let files =
        pgext_spec::archive::read_archive(zip, &Default::default()).map_err(|e| e.to_string())?;
    match files
        .get("META.json")
        .and_then(|b| pgext_spec::meta::read_stored_meta(b).ok())
        .filter(|m| m.spec == 2)
    {
        Some(m) => pgext_spec::requirements::Requirements::from_meta(&m).check_platform(here),
        None => Ok(()),
    }
}

/// Drops the archive of a dist the sync does not install: a lock of many dists installed
/// already holds no archives in memory.
pub(crate) fn keep_only_what_installs(change: &Change, v: &mut VerifiedRelease) {
    if matches!(change, Change::Keep | Change::Adopt) {
        v.zip = Vec::new();
    }
}

/// Holds a verified release to the lock: the same entry (index and leaf hash) naming the same
/// archive and META. Anything else is a lock edited by hand or pointing at another log.
pub(crate) fn check_locked(d: &LockedDist, v: &VerifiedRelease) -> Result<(), Error> {
    let hash = pgext_log::leaf_hash(&v.entry.to_bytes()).to_hex();
    let (dist, meta) = match v.entry.statement.action.release() {
        Some(r) => (r.dist.clone(), r.meta_sha256.clone()),
        None => Default::default(),
    };
    let p = &v.provenance;
    let differs = [
        ("dist", dist, d.name.clone()),
        ("log index", p.index.to_string(), d.index.to_string()),
        ("entry hash", hash, d.entry_hash.clone()),
        ("archive SHA-256", p.sha256.clone(), d.sha256.clone()),
        ("META SHA-256", meta, d.meta_sha256.clone()),
        ("version", p.version.clone(), d.version.clone()),
    ]
    .into_iter()
    .find(|(_, log, lock)| !log.eq_ignore_ascii_case(lock));
    match differs {
        None if v.zip.len() as u64 == d.size => Ok(()),
        None => Err(Error::Verify(crate::VerifyError::Malformed(format!(
            "the lock gives {} {} a size of {} bytes; the log's archive has {}: the lock was edited; nothing was installed",
            d.name,
            d.version,
            d.size,
            v.zip.len()
        )))),
        Some((what, log, lock)) => Err(Error::Verify(crate::VerifyError::Malformed(format!(
            "the lock names {} {} with {what} {lock}, but the log's release has {log}: the lock was edited or names another log; nothing was installed",
            d.name, d.version
        )))),
    }
}

impl Context {
    /// The configured registry a lock names for dist `d`, holding the same log (origin) as when
    /// locked, and one that may give `d`: no other registry owns the name by its patterns, and
    /// it is not pinned to another registry (a lock edited to take a private name from a public
    /// registry is refused like a `pgext install` would be).
    pub(crate) fn locked_registry_for(
        &self,
        lock: &Lock,
        d: &LockedDist,
    ) -> Result<RegistryConfig, Error> {
        self.config.route(&d.name, Some(&d.registry))?;
        if let Some(pin) = installed::pin(&self.state, &d.name)?.filter(|p| *p != d.registry) {
            return Err(Error::Config(format!(
                "the lock takes {} from registry {}, but it is pinned to registry {pin}, where it was first installed from; lock it from there, or move the pin with `pgext install {} --registry {} --repin`",
                d.name, d.registry, d.name, d.registry
            )));
        }
        self.locked_registry(lock, &d.registry)
    }

    /// The configured registry a lock names, holding the same log (origin) as when locked.
    pub(crate) fn locked_registry(&self, lock: &Lock, name: &str) -> Result<RegistryConfig, Error> {
        let locked = lock
            .registry(name)
            .ok_or_else(|| Error::Request(format!("the lock does not list registry {name}")))?;
        let reg = self.config.registry(Some(name))?.clone();
        let origin = reg.log_key()?.name().to_string();
        if origin != locked.origin {
            return Err(Error::Verify(crate::VerifyError::Malformed(format!(
                "the lock's registry {name} is the log {}, but the configured one is {origin}",
                locked.origin
            ))));
        }
        // The lock's checkpoint must be the log's own.
        crate::verify::open_with_policy(&reg, &locked.checkpoint)?;
        Ok(reg)
    }

    /// Resolves `manifest` into a lock: every dist (and what it requires) chosen, verified, and
    /// pinned by index, entry hash and digests, with each registry's checkpoint.
    ///
    /// # Errors
    /// As [`Context::plan`]; a manifest registry that is not configured.
    pub async fn lock(&self, manifest: &Manifest) -> Result<(Lock, Plan), Error> {
        let mut roots = Vec::new();
        for w in &manifest.dists {
            let registry = match &w.registry {
                Some(r) => Some(self.config.route(&w.name, Some(r))?.clone()),
                None => Some(self.registry_for(&w.name, false)?),
            };
            roots.push(Root {
                name: w.name.clone(),
                want: if w.range.is_any() {
                    Want::Newest
                } else {
                    Want::Within(w.range.clone())
                },
                registry,
                kind: Some(match w.kind {
                    KindWanted::Auto => Kind::Auto,
                    KindWanted::Binary => Kind::Binary,
                    KindWanted::Source => Kind::Source,
                }),
            });
        }
        let follow = Follow {
            stability: manifest.status,
            recommends: manifest.with_recommends,
            test: false,
            no_deps: false,
            complete: true,
        };
        let plan = self.plan(&roots, follow, Kind::Auto).await?;
        let mut registries: Vec<LockedRegistry> = Vec::new();
        let mut sizes: HashMap<String, u64> = HashMap::new();
        for s in &plan.steps {
            let p = &s.verified.provenance;
            let newer = sizes
                .get(&p.registry)
                .is_none_or(|&n| p.checkpoint_size > n);
            if newer {
                sizes.insert(p.registry.clone(), p.checkpoint_size);
                registries.retain(|r| r.name != p.registry);
                registries.push(LockedRegistry {
                    name: p.registry.clone(),
                    origin: p.origin.clone(),
                    checkpoint: p.checkpoint.clone(),
                });
            }
        }
        registries.sort_by(|a, b| a.name.cmp(&b.name));
        let view = plan.view();
        let dists = plan
            .steps
            .iter()
            .zip(&view.install)
            .map(|(s, shown)| LockedDist {
                name: s.chosen.dist.clone(),
                version: s.chosen.release.version.clone(),
                registry: s.chosen.registry.name.clone(),
                index: s.verified.provenance.index,
                entry_hash: pgext_log::leaf_hash(&s.verified.entry.to_bytes()).to_hex(),
                sha256: s.verified.provenance.sha256.clone(),
                size: s.verified.zip.len() as u64,
                meta_sha256: s.chosen.release.meta_sha256.clone(),
                kind: shown.kind.clone(),
                binary: s.binary.as_ref().map(|b| LockedBinary {
                    sha256: b.sha256.clone(),
                    size: b.size,
                    target: b.target.slug(),
                    builders: b.builders.clone(),
                    attestations: b.attestations.clone(),
                }),
                requires: shown.requires.clone(),
                why: shown.why.clone(),
            })
            .collect();
        let lock = Lock {
            format: FORMAT,
            manifest_sha256: manifest.sha256.clone(),
            pg_config: manifest.pg_config.clone(),
            postgres: plan.pg.clone(),
            registries,
            dists,
        };
        Ok((lock, plan))
    }

    /// Verifies every dist of `lock` against its log, online, and works out what a sync of
    /// this installation changes. Nothing is installed.
    ///
    /// # Errors
    /// A lock that does not match its log; any failed verification.
    pub async fn sync_plan(&self, lock: &Lock, lock_path: &Path) -> Result<SyncPlan, Error> {
        let records = installed::list(&self.state, Some(&self.pg.key()))?;
        let mut local = None;
        let mut steps = Vec::new();
        let here = crate::target::platform();
        for d in &lock.dists {
            let reg = self.locked_registry_for(lock, d)?;
            let select = Select {
                want: Want::Exact(d.version.clone()),
                stability: crate::request::Stability::Unstable,
            };
            let mut v = self.fetch_in(&reg, &d.name, &select).await?;
            check_locked(d, &v)?;
            // A lock is made for other hosts: each judges its own platform here.
            supports(&v.zip, &here).map_err(|why| {
                Error::Plan(format!(
                    "{} {} cannot be installed here: {why}",
                    d.name, d.version
                ))
            })?;
            let (change, from) = installed_as_locked(&records, d);
            keep_only_what_installs(&change, &mut v);
            let binary = match (&d.binary, &change) {
                (Some(b), Change::Install | Change::Replace) => {
                    let here = self.local_target(&mut local)?;
                    match crate::binary::choose(&reg, &v, here).await? {
                        Choice::Binary(got) if got.sha256 == b.sha256 => Some(*got),
                        Choice::Binary(got) => {
                            return Err(Error::Verify(crate::VerifyError::Binary(format!(
                                "the lock names package {} of {} {}, but the trusted builders attest {} for this machine",
                                b.sha256, d.name, d.version, got.sha256
                            ))));
                        }
                        Choice::Source(why) => {
                            return Err(Error::Verify(crate::VerifyError::Binary(format!(
                                "the lock installs {} {} as a binary, which cannot be had here: {why}",
                                d.name, d.version
                            ))));
                        }
                    }
                }
                _ => None,
            };
            steps.push(SyncStep {
                locked: d.clone(),
                change,
                from,
                verified: v,
                binary,
            });
        }
        Ok(self.finish_sync(lock, lock_path, records, steps))
    }

    /// This machine's target, read the first time a locked binary needs it.
    pub(crate) fn local_target<'a>(
        &self,
        local: &'a mut Option<pgext_spec::binary::Target>,
    ) -> Result<&'a pgext_spec::binary::Target, Error> {
        let target = match local.take() {
            Some(t) => t,
            None => crate::target::local(&self.pg, "none")?,
        };
        Ok(local.insert(target))
    }

    /// The plan's removals: what an earlier sync installed that the lock no longer names.
    pub(crate) fn finish_sync(
        &self,
        lock: &Lock,
        lock_path: &Path,
        records: Vec<Installed>,
        steps: Vec<SyncStep>,
    ) -> SyncPlan {
        let remove = records
            .into_iter()
            .filter(|r| r.lock.is_some())
            .filter(|r| {
                !lock
                    .dists
                    .iter()
                    .any(|d| d.name.eq_ignore_ascii_case(&r.dist))
            })
            .collect();
        SyncPlan {
            steps,
            remove,
            lock_path: lock_path.display().to_string(),
        }
    }

    /// Applies a sync: removes what the lock dropped, then installs each dist not installed
    /// as locked, in the lock's order. A dist already installed as locked is not touched.
    ///
    /// # Errors
    /// The first removal or install that fails.
    pub fn apply_sync(&self, plan: &SyncPlan) -> Result<Vec<Installed>, Error> {
        for r in &plan.remove {
            self.uninstall(&r.dist)?;
        }
        let mut done = Vec::new();
        for s in plan.steps.iter().filter(|s| s.change != Change::Keep) {
            let mut record = match (&s.change, &s.binary) {
                (Change::Adopt, _) => self.installed(&s.locked.name)?,
                (_, Some(b)) => self.install_binary(&s.verified, b)?,
                (_, None) => self.install_verified(&s.verified)?,
            };
            record.requires = s.locked.requires.clone();
            record.lock = Some(plan.lock_path.clone());
            let registry = record.provenance.as_ref().map(|p| p.registry.clone());
            installed::record(&self.state, record.clone(), registry.as_deref())?;
            done.push(record);
        }
        Ok(done)
    }
}
