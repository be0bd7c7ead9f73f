//! What pgext installed, where from and with which files; which registry each name is pinned
//! to; the verified archives kept for `check` and `upgrade`. All in the state folder
//! (`spec/client.md`, Installed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::trust::{State, write_atomically};
use crate::verify::Provenance;

/// One installed distribution in one PostgreSQL installation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Installed {
    /// Distribution name.
    pub dist: String,
    /// Version.
    pub version: String,
    /// The PostgreSQL installation (`pg_config --sharedir`).
    pub pg: String,
    /// Extensions whose control files the install wrote (what `load` creates).
    pub extensions: Vec<String>,
    /// Every file the install wrote, absolute (what `uninstall` removes).
    pub files: Vec<PathBuf>,
    /// The archive's SHA-256.
    pub sha256: String,
    /// Where it came from: a registry name, or a local path.
    pub source: String,
    /// What proved it, when it came from a log (none for an unverified local source).
    pub provenance: Option<Provenance>,
    /// The origin (log) it came from, when it came from one: filled in from `provenance` by
    /// `ops::Context::list` for its readers, never stored twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Install time, seconds since the epoch.
    pub installed_at: u64,
    /// `source` (built here) or `binary` (a package builders attested).
    #[serde(default = "source_kind")]
    pub kind: String,
    /// For a binary, the trusted builders whose attestations of it verified.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub builders: Vec<String>,
    /// For a binary, the package's SHA-256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_sha256: Option<String>,
    /// The installed dists this one's plan installed or found for its prerequisites (what
    /// `load --cascade` creates first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    /// The lock file whose `sync` installed it (`sync` removes what the lock no longer names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
    /// The folder it was installed below (`install --prefix`), outside the installation's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<PathBuf>,
    /// Libraries its META says must be in `shared_preload_libraries` (what `load` checks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preload: Vec<String>,
}

fn source_kind() -> String {
    "source".into()
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Records {
    installed: Vec<Installed>,
    /// Distribution name → the registry it was first installed from.
    #[serde(default)]
    pins: BTreeMap<String, String>,
}

fn records_path(state: &State) -> PathBuf {
    state.dir().join("installed.json")
}

fn load(state: &State) -> Result<Records, Error> {
    match std::fs::read(records_path(state)) {
        Ok(b) => serde_json::from_slice(&b)
            .map_err(|e| Error::Config(format!("{}: {e}", records_path(state).display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Records::default()),
        Err(e) => Err(Error::Config(format!(
            "{}: {e}",
            records_path(state).display()
        ))),
    }
}

fn save(state: &State, r: &Records) -> Result<(), Error> {
    let bytes = serde_json::to_vec_pretty(r).map_err(|e| Error::Config(e.to_string()))?;
    write_atomically(&records_path(state), &bytes)
}

/// Everything installed into `pg` (every installation when `None`).
///
/// # Errors
/// When the records cannot be read.
pub fn list(state: &State, pg: Option<&str>) -> Result<Vec<Installed>, Error> {
    Ok(load(state)?
        .installed
        .into_iter()
        .filter(|i| pg.is_none_or(|p| i.pg == p))
        .collect())
}

/// The record of `dist` in `pg`.
///
/// # Errors
/// When the records cannot be read.
pub fn find(state: &State, pg: &str, dist: &str) -> Result<Option<Installed>, Error> {
    Ok(list(state, Some(pg))?
        .into_iter()
        .find(|i| i.dist.eq_ignore_ascii_case(dist)))
}

/// The record whose install wrote the control file of extension `ext` in `pg`.
///
/// # Errors
/// When the records cannot be read.
pub fn find_extension(state: &State, pg: &str, ext: &str) -> Result<Option<Installed>, Error> {
    Ok(list(state, Some(pg))?
        .into_iter()
        .find(|i| i.extensions.iter().any(|e| e == ext)))
}

/// Records an install, replacing the record of the same dist in the same installation, and
/// pins the name to `registry` if it is not pinned yet.
///
/// # Errors
/// When the records cannot be written.
pub fn record(state: &State, item: Installed, registry: Option<&str>) -> Result<(), Error> {
    let mut r = load(state)?;
    r.installed
        .retain(|i| !(i.pg == item.pg && i.dist.eq_ignore_ascii_case(&item.dist)));
    if let Some(reg) = registry {
        r.pins
            .entry(item.dist.to_ascii_lowercase())
            .or_insert_with(|| reg.to_string());
    }
    r.installed.push(item);
    save(state, &r)
}

/// Forgets the install of `dist` in `pg` (the pin stays).
///
/// # Errors
/// When the records cannot be written.
pub fn forget(state: &State, pg: &str, dist: &str) -> Result<(), Error> {
    let mut r = load(state)?;
    r.installed
        .retain(|i| !(i.pg == pg && i.dist.eq_ignore_ascii_case(dist)));
    save(state, &r)
}

/// The registry `dist` is pinned to.
///
/// # Errors
/// When the records cannot be read.
pub fn pin(state: &State, dist: &str) -> Result<Option<String>, Error> {
    Ok(load(state)?.pins.get(&dist.to_ascii_lowercase()).cloned())
}

/// Moves the pin of `dist` to `registry` (`install --repin`).
///
/// # Errors
/// When the records cannot be written.
pub fn repin(state: &State, dist: &str, registry: &str) -> Result<(), Error> {
    let mut r = load(state)?;
    r.pins
        .insert(dist.to_ascii_lowercase(), registry.to_string());
    save(state, &r)
}

fn archive_path(state: &State, sha256: &str) -> PathBuf {
    state.dir().join("archives").join(format!("{sha256}.zip"))
}

/// Keeps a verified archive for later `check` and `upgrade` runs.
///
/// # Errors
/// When it cannot be written.
pub fn keep_archive(state: &State, sha256: &str, bytes: &[u8]) -> Result<(), Error> {
    write_atomically(&archive_path(state, sha256), bytes)
}

/// A kept archive, only if it still hashes to `sha256`.
pub fn kept_archive(state: &State, sha256: &str) -> Option<Vec<u8>> {
    let bytes = std::fs::read(archive_path(state, sha256)).ok()?;
    (pgext_log::hex(&pgext_log::sha256(&bytes)) == sha256).then_some(bytes)
}

/// Control-file stems among `files` that sit in `extension_dir`.
pub fn extensions_in(files: &[PathBuf], extension_dir: &Path) -> Vec<String> {
    files
        .iter()
        .filter(|f| f.parent() == Some(extension_dir))
        .filter(|f| f.extension().is_some_and(|e| e == "control"))
        .filter_map(|f| f.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect()
}
