//! The client's commands as library calls with typed results: `install`, `uninstall`, `list`
//! here; `check`, `load` and `unload` in `loading.rs`, `upgrade` in `upgrade.rs`. The `pgext`
//! binary only parses its command line, calls these, and prints what they return.

use std::path::{Path, PathBuf};

use crate::Error;
use crate::build::{Builder, copy_tree, remove_files, unpack};
use crate::installed::{self, Installed};
use crate::pg::PgInstall;
use crate::request::{Select, Stability, Target};
use crate::trust::{Config, State};
use crate::verify::{VerifiedRelease, fetch_verified_with, verify_offline};

pub use crate::progress::{Progress, Quiet};
pub use crate::search::{SearchRequest, drop_foreign_hits, search};

/// Everything a command needs: whom to trust, what is remembered, which PostgreSQL.
pub struct Context {
    /// The trust configuration.
    pub config: Config,
    /// The state folder.
    pub state: State,
    /// `--registry`.
    pub registry: Option<String>,
    /// The PostgreSQL installation.
    pub pg: PgInstall,
    /// Run the real install and removals through `sudo`.
    pub sudo: bool,
    /// Install below this folder instead of the installation's own (`--prefix`, PostgreSQL
    /// 18's `extension_control_path` and `dynamic_library_path`).
    pub prefix: Option<PathBuf>,
    /// Progress and warnings.
    pub progress: Box<dyn Progress>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("registry", &self.registry)
            .field("pg", &self.pg)
            .field("sudo", &self.sudo)
            .finish_non_exhaustive()
    }
}

/// How to install.
#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    /// Statuses allowed when no exact version is named.
    pub stability: Stability,
    /// A tlog-proof file: install an archive verified offline.
    pub proof: Option<PathBuf>,
    /// Install from `--registry` even though the name is pinned to another registry.
    pub repin: bool,
    /// Binary or source (`spec/binary.md`, Installing).
    pub kind: Kind,
}

/// Whether an install may, must or must not use a binary package.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Kind {
    /// A binary when the builders the registry's policy trusts attest one for this machine,
    /// else a build from source with a note why.
    #[default]
    Auto,
    /// A binary or nothing (`--binary`).
    Binary,
    /// Always build (`--source`).
    Source,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Context {
    pub(crate) fn log_path(&self, what: &str) -> PathBuf {
        self.state
            .dir()
            .join("logs")
            .join(format!("{what}-{}.log", now()))
    }

    /// The registry for `dist`: `--registry` if given, else the one the name is pinned to,
    /// else the default. A name pinned to another registry than `--registry` is refused
    /// unless `repin` (the pin itself moves in [`Context::install`], after success).
    pub(crate) fn registry_for(
        &self,
        dist: &str,
        repin: bool,
    ) -> Result<crate::trust::RegistryConfig, Error> {
        let pinned = installed::pin(&self.state, dist)?;
        // A name a registry owns by its patterns is asked of that registry alone.
        if self.config.owner(dist).is_some() {
            let owner = self.config.route(dist, self.registry.as_deref())?;
            if let Some(p) = pinned.filter(|p| *p != owner.name && !repin) {
                return Err(Error::Config(format!(
                    "{dist} is pinned to registry {p}, but registry {} owns the name; add --repin to move the pin",
                    owner.name
                )));
            }
            return Ok(owner.clone());
        }
        let name = match (&self.registry, &pinned) {
            (Some(asked), Some(p)) if asked != p && !repin => {
                return Err(Error::Config(format!(
                    "{dist} is pinned to registry {p}, where it was first installed from; installing it from {asked} could swap in another publisher's code. Add --repin to move the pin"
                )));
            }
            (Some(asked), _) => Some(asked.as_str()),
            (None, Some(p)) => Some(p.as_str()),
            (None, None) => return Ok(self.config.default_registry()?.clone()),
        };
        Ok(self.config.registry(name)?.clone())
    }

    /// Fetches and verifies a release of a registry dist.
    pub(crate) async fn fetch(
        &self,
        dist: &str,
        select: &Select,
        repin: bool,
    ) -> Result<VerifiedRelease, Error> {
        let reg = self.registry_for(dist, repin)?;
        self.fetch_in(&reg, dist, select).await
    }

    /// Fetches and verifies a release of `dist` in the registry `reg`.
    pub(crate) async fn fetch_in(
        &self,
        reg: &crate::trust::RegistryConfig,
        dist: &str,
        select: &Select,
    ) -> Result<VerifiedRelease, Error> {
        self.progress
            .step(&format!("downloading and verifying {dist}"));
        let v = fetch_verified_with(reg, &self.state, dist, select, self.progress.as_ref()).await;
        self.progress.done();
        let v = v?;
        if let Some(w) = &v.warning {
            self.progress.warn(w);
        }
        Ok(v)
    }

    /// Installs what `spec` names: verified from its registry, an archive verified offline
    /// with `--proof`, or a local directory or archive (built unverified, with a warning).
    ///
    /// # Errors
    /// Any failed check (nothing is written), build failure (log kept) or install failure.
    pub async fn install(&self, spec: &str, opts: &InstallOptions) -> Result<Installed, Error> {
        let target = crate::request::parse(spec).map_err(|e| Error::Config(e.0))?;
        match target {
            Target::Dist { name, want } => {
                let select = Select {
                    want,
                    stability: opts.stability,
                };
                let v = self.fetch(&name, &select, opts.repin).await?;
                let done = match self.binary_for(&name, &v, opts).await? {
                    Some(b) => self.install_binary(&v, &b)?,
                    None => self.install_verified(&v)?,
                };
                // The pin moves only once the other registry's release verified and installed.
                if opts.repin {
                    installed::repin(&self.state, &name, &v.provenance.registry)?;
                }
                Ok(done)
            }
            Target::Archive(path) => {
                let bytes = std::fs::read(&path)
                    .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
                if let Some(proof) = &opts.proof {
                    let proof_bytes = std::fs::read(proof)
                        .map_err(|e| Error::Config(format!("{}: {e}", proof.display())))?;
                    let reg = self.config.registry(self.registry.as_deref())?;
                    let v = verify_offline(reg, &self.state, &bytes, &proof_bytes)?;
                    return self.install_verified(&v);
                }
                self.progress.warn(&format!(
                    "{} is a local archive: it is built as it is, without any log verification",
                    path.display()
                ));
                let build = tempfile::tempdir().map_err(|e| Error::Config(e.to_string()))?;
                unpack(&bytes, build.path())?;
                let sha = pgext_log::hex(&pgext_log::sha256(&bytes));
                self.install_tree(build.path(), &path, sha, None)
            }
            Target::Dir(dir) => {
                if opts.proof.is_some() {
                    return Err(Error::Config(
                        "--proof verifies an archive, not a directory".into(),
                    ));
                }
                self.progress.warn(&format!(
                    "{} is a local directory: it is built as it is, without any log verification",
                    dir.display()
                ));
                let build = tempfile::tempdir().map_err(|e| Error::Config(e.to_string()))?;
                copy_tree(&dir, build.path())?;
                self.install_tree(build.path(), &dir, String::new(), None)
            }
        }
    }

    /// The verified binary package to install for `v`, or `None` to build from source (with a
    /// note why, unless `--source` asked for it).
    pub(crate) async fn binary_for(
        &self,
        dist: &str,
        v: &VerifiedRelease,
        opts: &InstallOptions,
    ) -> Result<Option<crate::binary::VerifiedBinary>, Error> {
        let reg = self.registry_for(dist, opts.repin)?;
        self.binary_in(&reg, dist, v, opts.kind).await
    }

    /// [`Context::binary_for`] in the registry `reg`, for an install of `kind`.
    pub(crate) async fn binary_in(
        &self,
        reg: &crate::trust::RegistryConfig,
        dist: &str,
        v: &VerifiedRelease,
        kind: Kind,
    ) -> Result<Option<crate::binary::VerifiedBinary>, Error> {
        if kind == Kind::Source {
            return Ok(None);
        }
        // A registry that trusts no builder offers no binary: nothing to look for or to say.
        if reg.builders.is_empty() && kind == Kind::Auto {
            return Ok(None);
        }
        let local = crate::target::local(&self.pg, "none")?;
        self.progress
            .step(&format!("looking for a binary of {dist}"));
        let choice = crate::binary::choose(reg, v, &local).await;
        self.progress.done();
        match choice? {
            crate::binary::Choice::Binary(b) => Ok(Some(*b)),
            crate::binary::Choice::Source(why) if kind == Kind::Binary => {
                Err(Error::Install(format!(
                    "no binary to install, and --binary refuses to build: {why}. Without --binary, pgext builds it from source"
                )))
            }
            crate::binary::Choice::Source(why) => {
                self.progress.note(&format!("building from source: {why}"));
                Ok(None)
            }
        }
    }

    /// Installs a verified binary package: its files where this PostgreSQL keeps them, with
    /// the same record (and `uninstall`) as a build.
    pub(crate) fn install_binary(
        &self,
        v: &VerifiedRelease,
        b: &crate::binary::VerifiedBinary,
    ) -> Result<Installed, Error> {
        let dist = v.provenance.dist.clone();
        let files = crate::binary::destinations_in(&self.dirs(), &b.binary.files, &self.pg)?;
        self.check_conflicts(&dist, &files)?;
        self.progress.step(&format!("installing {dist} (binary)"));
        let files = crate::binary::install_files(&b.binary.files, files, self.sudo);
        self.progress.done();
        let files = files?;
        installed::keep_archive(&self.state, &v.provenance.sha256, &v.zip)?;
        let meta = pgext_spec::archive::read_archive(&v.zip, &Default::default()).ok();
        let preload = preload_in(meta.as_ref().and_then(|f| f.get("META.json")), &files);
        self.record(Installed {
            extensions: installed::extensions_in(&files, &self.extension_dir()),
            prefix: self.prefix.clone(),
            dist,
            version: v.provenance.version.clone(),
            pg: self.pg.key(),
            files,
            sha256: v.provenance.sha256.clone(),
            source: v.provenance.registry.clone(),
            origin: None,
            provenance: Some(v.provenance.clone()),
            installed_at: now(),
            kind: "binary".into(),
            builders: b.builders.clone(),
            binary_sha256: Some(b.sha256.clone()),
            requires: Vec::new(),
            lock: None,
            preload,
        })
    }

    pub(crate) fn install_verified(&self, v: &VerifiedRelease) -> Result<Installed, Error> {
        let build = tempfile::tempdir().map_err(|e| Error::Config(e.to_string()))?;
        unpack(&v.zip, build.path())?;
        installed::keep_archive(&self.state, &v.provenance.sha256, &v.zip)?;
        let source = PathBuf::from(&v.provenance.registry);
        self.install_tree(
            build.path(),
            &source,
            v.provenance.sha256.clone(),
            Some(v.provenance.clone()),
        )
    }

    /// Builds and installs the project unpacked in `dir`, and records it.
    fn install_tree(
        &self,
        dir: &Path,
        source: &Path,
        sha256: String,
        provenance: Option<crate::verify::Provenance>,
    ) -> Result<Installed, Error> {
        let (dist, version) = match &provenance {
            Some(p) => (p.dist.clone(), p.version.clone()),
            None => name_and_version(dir, source),
        };
        let log = self.log_path(&format!("{dist}-{version}"));
        let mut b = Builder::new(&self.pg, dir, &log, self.sudo)?
            .with(crate::target::cc_args(&self.pg), Vec::new());
        let result = self.build_and_install(&mut b, &dist);
        self.progress.done();
        let files = result?;
        let _ = std::fs::remove_file(&log);
        let preload = preload_in(std::fs::read(dir.join("META.json")).ok().as_deref(), &files);
        let record = Installed {
            extensions: installed::extensions_in(&files, &self.extension_dir()),
            prefix: self.prefix.clone(),
            dist,
            version,
            pg: self.pg.key(),
            files,
            sha256,
            source: source.display().to_string(),
            origin: None,
            provenance,
            installed_at: now(),
            kind: "source".into(),
            builders: Vec::new(),
            binary_sha256: None,
            requires: Vec::new(),
            lock: None,
            preload,
        };
        self.record(record)
    }

    /// Records an install, removing the files of the version installed before that this one
    /// does not write again.
    fn record(&self, record: Installed) -> Result<Installed, Error> {
        let registry = record.provenance.as_ref().map(|p| p.registry.clone());
        // Files of the version installed before that this one does not write again.
        if let Some(old) = installed::find(&self.state, &record.pg, &record.dist)? {
            let stale: Vec<PathBuf> = old
                .files
                .into_iter()
                .filter(|f| !record.files.contains(f))
                .collect();
            remove_files(&stale, self.sudo)?;
        }
        installed::record(&self.state, record.clone(), registry.as_deref())?;
        Ok(record)
    }

    fn build_and_install(&self, b: &mut Builder<'_>, dist: &str) -> Result<Vec<PathBuf>, Error> {
        self.progress.step(&format!("building {dist}"));
        b.build()?;
        self.progress.step(&format!("staging {dist}"));
        if self.prefix.is_some() {
            // Below a prefix: the staged files are copied there, placed by folder; the real
            // `make install` (into the installation's folders) never runs.
            let stage = tempfile::tempdir().map_err(|e| Error::Config(e.to_string()))?;
            let files = b.stage_to(stage.path())?;
            let placed = crate::binary::staged(stage.path(), &files, &self.pg)?;
            let dests = crate::binary::destinations_in(&self.dirs(), &placed, &self.pg)?;
            self.check_conflicts(dist, &dests)?;
            self.progress.step(&format!("installing {dist}"));
            return crate::binary::install_files(&placed, dests, false);
        }
        let files = b.stage()?;
        self.check_conflicts(dist, &files)?;
        self.progress.step(&format!("installing {dist}"));
        b.install(&files)?;
        Ok(files)
    }

    /// Where files go, by folder: the prefix's, else the installation's.
    pub(crate) fn dirs(&self) -> Vec<(&'static str, PathBuf)> {
        match &self.prefix {
            Some(p) => crate::binary::prefix_dirs(p),
            None => crate::binary::pg_dirs(&self.pg),
        }
    }

    /// Where control files go: below the prefix, else the installation's.
    pub(crate) fn extension_dir(&self) -> PathBuf {
        match &self.prefix {
            Some(p) => p.join("share/extension"),
            None => self.pg.extension_dir(),
        }
    }

    /// A file another installed dist wrote, or one pgext did not install at all (a file of
    /// PostgreSQL's own, or of another package manager), is not overwritten: `uninstall` would
    /// then remove what it never installed.
    fn check_conflicts(&self, dist: &str, files: &[PathBuf]) -> Result<(), Error> {
        let records = installed::list(&self.state, Some(&self.pg.key()))?;
        let (ours, others): (Vec<Installed>, Vec<Installed>) = records
            .into_iter()
            .partition(|r| r.dist.eq_ignore_ascii_case(dist));
        // One place per dist: an install below a prefix does not replace (and so remove) the
        // installation's own copy, nor the other way round.
        if let Some(old) = ours.iter().find(|old| old.prefix != self.prefix) {
            let place = |p: &Option<PathBuf>| match p {
                Some(p) => format!("below {}", p.display()),
                None => format!("in {}", self.pg.sharedir.display()),
            };
            return Err(Error::Install(format!(
                "{dist} {} is installed {}: uninstall it before installing it {}",
                old.version,
                place(&old.prefix),
                place(&self.prefix)
            )));
        }
        // Another pgext install first: its message names what to uninstall.
        for other in &others {
            if let Some(f) = files.iter().find(|f| other.files.contains(f)) {
                return Err(Error::Install(format!(
                    "{} would overwrite {}, installed by {} {}: uninstall it first",
                    dist,
                    f.display(),
                    other.dist,
                    other.version
                )));
            }
        }
        let ours: Vec<&PathBuf> = ours.iter().flat_map(|r| &r.files).collect();
        if let Some(f) = files
            .iter()
            .find(|f| f.symlink_metadata().is_ok() && !ours.contains(f))
        {
            return Err(Error::Install(format!(
                "{} exists and was not installed by pgext (it came with PostgreSQL or another package): installing {dist} would replace it; remove it first if {dist} is to own it",
                f.display()
            )));
        }
        Ok(())
    }

    /// The install record of `name` (a dist name, or an extension it installed).
    pub(crate) fn installed(&self, name: &str) -> Result<Installed, Error> {
        let pg = self.pg.key();
        if let Some(i) = installed::find(&self.state, &pg, name)? {
            return Ok(i);
        }
        installed::find_extension(&self.state, &pg, name)?.ok_or_else(|| {
            Error::Install(format!(
                "{name} was not installed by pgext into {} (see `pgext list`)",
                self.pg.sharedir.display()
            ))
        })
    }

    /// Removes exactly the files the install of `name` wrote, and its record; warns when
    /// another installed dist's plan required it.
    ///
    /// # Errors
    /// When it was not installed by pgext, or a file cannot be removed.
    pub fn uninstall(&self, name: &str) -> Result<Installed, Error> {
        let record = self.installed(name)?;
        for other in installed::list(&self.state, Some(&record.pg))? {
            if other
                .requires
                .iter()
                .any(|r| r.eq_ignore_ascii_case(&record.dist))
            {
                self.progress.warn(&format!(
                    "{} {} requires {}: it will not load without it",
                    other.dist, other.version, record.dist
                ));
            }
        }
        remove_files(&record.files, self.sudo)?;
        let roots = match &record.prefix {
            Some(p) => crate::binary::prefix_dirs(p),
            None => crate::binary::pg_dirs(&self.pg),
        };
        prune_dirs(&record.files, &roots);
        installed::forget(&self.state, &record.pg, &record.dist)?;
        Ok(record)
    }

    /// What pgext installed into this PostgreSQL, with provenance.
    ///
    /// # Errors
    /// When the records cannot be read.
    pub fn list(&self) -> Result<Vec<Installed>, Error> {
        let mut all = installed::list(&self.state, Some(&self.pg.key()))?;
        // Named for readers of `list --json`; the record keeps it once, in its provenance.
        for i in &mut all {
            i.origin = i.provenance.as_ref().map(|p| p.origin.clone());
        }
        Ok(all)
    }
}

/// Removes the folders the removed `files` leave empty, up to (never including) the
/// installation's own directories.
fn prune_dirs(files: &[PathBuf], roots: &[(&'static str, PathBuf)]) {
    for f in files {
        for dir in f.ancestors().skip(1) {
            // Below one of the installation's directories and none of them itself (one may
            // hold another: the server headers below the headers).
            let below = roots.iter().any(|(_, r)| dir.starts_with(r))
                && !roots.iter().any(|(_, r)| dir == r.as_path());
            // remove_dir refuses a folder that is not empty: the walk stops there.
            if !below || std::fs::remove_dir(dir).is_err() {
                break;
            }
        }
    }
}

/// The libraries a META says must be in `shared_preload_libraries` (none when there is no
/// META or it cannot be read; a v1 META has no modules to say it), each only when the install
/// wrote it (`LIB.so`, `.dylib`, `.dll`): a library that is not there would keep the server
/// from starting once `--configure` named it.
fn preload_in(meta: Option<&[u8]>, files: &[PathBuf]) -> Vec<String> {
    let wrote = |lib: &String| {
        files.iter().any(|f| {
            f.file_stem().is_some_and(|s| s == lib.as_str())
                && f.extension()
                    .is_some_and(|e| e == "so" || e == "dylib" || e == "dll")
        })
    };
    meta.and_then(|b| pgext_spec::meta::read_stored_meta(b).ok())
        .filter(|m| m.spec == 2)
        .map(|m| pgext_spec::requirements::Requirements::from_meta(&m).server_preload())
        .unwrap_or_default()
        .into_iter()
        .filter(wrote)
        .collect()
}

/// A local project's name and version from its META.json, else the folder's name.
fn name_and_version(dir: &Path, source: &Path) -> (String, String) {
    let meta: Option<serde_json::Value> = std::fs::read(dir.join("META.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let field = |k: &str| {
        meta.as_ref()
            .and_then(|m| m[k].as_str())
            .map(str::to_string)
    };
    let fallback = source
        .file_name()
        .map_or_else(|| "local".into(), |n| n.to_string_lossy().into_owned());
    (
        field("name").unwrap_or(fallback),
        field("version").unwrap_or_else(|| "0.0.0".into()),
    )
}
