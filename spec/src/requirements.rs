//! What a release needs to be built, installed and used, read from its META in full
//! (`spec/requirements.md`): the PostgreSQL versions and features, the platforms, every
//! package by purl with its phase, the build pipeline, which modules must be preloaded (and so
//! need a restart), which extensions are trusted-language extensions, and the variations that
//! apply on some platforms. A v1 META is first converted to v2 by `pgxn_meta`, so one model
//! serves both; the node serves it, the site shows it, and the client and the builder act on it.

use pgxn_meta::dist::Distribution;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::meta::Meta;
use crate::prereqs::{Needs, Phase, Relation};

/// One package a release needs, by purl.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PackageNeed {
    /// The package (`pkg:generic/libxml2`, `pkg:pgxn/semver`, `pkg:pypi/pyarrow`).
    pub purl: String,
    /// When.
    pub phase: Phase,
    /// How strongly.
    pub relation: Relation,
    /// Which versions, as written (`0` for any).
    pub range: String,
}

impl PackageNeed {
    /// The purl's type (`generic`, `pgxn`, …).
    pub fn purl_type(&self) -> &str {
        purl_type(&self.purl).unwrap_or_default()
    }

    /// Whether pgext installs it (`pkg:pgxn/…`, `pkg:postgres/…`): an extension, not a
    /// system package.
    pub fn is_extension(&self) -> bool {
        matches!(self.purl_type(), "pgxn" | "postgres")
    }
}

/// The type of a purl (`pkg:TYPE/…`), lowercase as purls compare it.
pub fn purl_type(purl: &str) -> Option<&str> {
    let rest = purl.strip_prefix("pkg:")?;
    let (t, _) = rest.split_once('/')?;
    (!t.is_empty()).then_some(t)
}

/// When a module must be loaded before it can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preload {
    /// In `shared_preload_libraries`, at server start: changing it needs a restart.
    Server,
    /// In `session_preload_libraries` (or `LOAD`), per session.
    Session,
}

/// A loadable module (shared library) of the release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleNeeds {
    /// Module name.
    pub name: String,
    /// `extension`, `hook` or `bgw`.
    pub kind: String,
    /// The library's path in the distribution, without suffix.
    pub lib: String,
    /// When it must be loaded, if before use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preload: Option<Preload>,
}

impl ModuleNeeds {
    /// The name PostgreSQL loads it by (`shared_preload_libraries` entries): the file name of
    /// `lib`.
    pub fn library(&self) -> &str {
        self.lib.rsplit('/').next().unwrap_or(&self.lib)
    }
}

/// An extension of the release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionNeeds {
    /// Extension name.
    pub name: String,
    /// Usable as a trusted language extension (pg_tle).
    pub tle: bool,
}

/// Dependencies that apply only where a condition holds (v2 `variations`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variation {
    /// Applies on these platforms (any when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
    /// Applies with these PostgreSQL versions (any when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<String>,
    /// The packages it adds.
    pub packages: Vec<PackageNeed>,
}

/// What a release needs, from its META.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirements {
    /// The PostgreSQL versions it supports, as a range, when the META says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<String>,
    /// Features PostgreSQL must be built with (each a `--with-` configure flag).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub postgres_with: Vec<String>,
    /// The platforms it supports (`linux`, `darwin-arm64`, …); any when empty.
    #[serde(default)]
    pub platforms: Vec<String>,
    /// How it is built (`pgxs`, `meson`, `pgrx`, `autoconf`, `cmake`), when the META says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    /// Every package it names, extensions and system packages alike, sorted.
    #[serde(default)]
    pub packages: Vec<PackageNeed>,
    /// Its extensions.
    #[serde(default)]
    pub extensions: Vec<ExtensionNeeds>,
    /// Its loadable modules.
    #[serde(default)]
    pub modules: Vec<ModuleNeeds>,
    /// Dependencies that apply only on some platforms or PostgreSQL versions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variations: Vec<Variation>,
    /// Some module must be in `shared_preload_libraries`: using it needs a server restart.
    #[serde(default)]
    pub restart: bool,
}

/// Most packages, modules and variations read from one META (past them, the rest is not
/// read): a bound on the work a META can make a node, a client or a builder do.
pub const MAX_PACKAGES: usize = crate::prereqs::MAX_PREREQS;
/// Most modules read from one META.
pub const MAX_MODULES: usize = 256;
/// Most variations read from one META.
pub const MAX_VARIATIONS: usize = 32;

const PHASES: [(&str, Phase); 5] = [
    ("configure", Phase::Configure),
    ("build", Phase::Build),
    ("test", Phase::Test),
    ("run", Phase::Runtime),
    ("develop", Phase::Develop),
];

fn packages_of(p: &pgxn_meta::dist::Packages) -> Vec<PackageNeed> {
    let mut out = Vec::new();
    for (_, phase) in PHASES {
        let ph = match phase {
            Phase::Configure => p.configure(),
            Phase::Build => p.build(),
            Phase::Test => p.test(),
            Phase::Runtime => p.run(),
            Phase::Develop => p.develop(),
        };
        let Some(ph) = ph else { continue };
        for (relation, map) in [
            (Relation::Requires, ph.requires()),
            (Relation::Recommends, ph.recommends()),
            (Relation::Suggests, ph.suggests()),
            (Relation::Conflicts, ph.conflicts()),
        ] {
            for (purl, range) in map.into_iter().flatten() {
                out.push(PackageNeed {
                    purl: purl.clone(),
                    phase,
                    relation,
                    range: range.to_string(),
                });
            }
        }
    }
    out.sort();
    out
}

impl Requirements {
    /// What `meta` says a release needs. A v1 META is converted to v2 by `pgxn_meta`; its
    /// PostgreSQL range is read as pgext reads v1 prerequisites (the conversion keeps only a
    /// lowest plain version). A stored META that `pgxn_meta` no longer takes (PGXN's history,
    /// published under older validators) gives what its prerequisites say.
    pub fn from_meta(meta: &Meta) -> Requirements {
        let dist = if meta.spec == 2 {
            serde_json::from_value::<Distribution>(meta.raw.clone()).ok()
        } else {
            Distribution::try_from(meta.raw.clone()).ok()
        };
        let mut req = match &dist {
            Some(d) => Requirements::from_distribution(d),
            None => Requirements::default(),
        };
        if meta.spec == 1 || dist.is_none() {
            req.add_prereqs(&meta.raw);
        }
        if req.extensions.is_empty() {
            req.extensions = meta
                .provides
                .keys()
                .map(|name| ExtensionNeeds {
                    name: name.clone(),
                    tle: false,
                })
                .collect();
        }
        req.bound();
        req.restart = req
            .modules
            .iter()
            .any(|m| m.preload == Some(Preload::Server));
        req
    }

    /// Keeps what a META may state within the bounds, packages counted across variations.
    fn bound(&mut self) {
        self.packages.truncate(MAX_PACKAGES);
        self.modules.truncate(MAX_MODULES);
        self.variations.truncate(MAX_VARIATIONS);
        let mut left = MAX_PACKAGES - self.packages.len();
        for v in &mut self.variations {
            v.packages.truncate(left);
            left -= v.packages.len();
        }
        self.postgres_with.truncate(MAX_MODULES);
        self.platforms.truncate(MAX_MODULES);
    }

    fn from_distribution(d: &Distribution) -> Requirements {
        let mut req = Requirements::default();
        if let Some(deps) = d.dependencies() {
            if let Some(pg) = deps.postgres() {
                req.postgres = Some(pg.version().to_string());
                req.postgres_with = pg.with().unwrap_or_default().to_vec();
            }
            req.platforms = deps.platforms().unwrap_or_default().to_vec();
            req.pipeline = deps.pipeline().map(ToString::to_string);
            req.packages = deps.packages().map(packages_of).unwrap_or_default();
            for v in deps.variations().into_iter().flatten() {
                let (w, then) = (v.wheres(), v.dependencies());
                req.variations.push(Variation {
                    platforms: w.platforms().unwrap_or_default().to_vec(),
                    postgres: w.postgres().map(|p| p.version().to_string()),
                    packages: then.packages().map(packages_of).unwrap_or_default(),
                });
            }
        }
        let contents = d.contents();
        let mut exts: Vec<ExtensionNeeds> = contents
            .extensions()
            .into_iter()
            .flatten()
            .map(|(name, e)| ExtensionNeeds {
                name: name.clone(),
                tle: e.tle(),
            })
            .collect();
        exts.sort_by(|a, b| a.name.cmp(&b.name));
        req.extensions = exts;
        let mut mods: Vec<ModuleNeeds> = contents
            .modules()
            .into_iter()
            .flatten()
            .map(|(name, m)| ModuleNeeds {
                name: name.clone(),
                kind: m.kind().to_string(),
                lib: m.lib().to_string(),
                preload: m.preload().map(|p| match p {
                    pgxn_meta::dist::Preload::Server => Preload::Server,
                    pgxn_meta::dist::Preload::Session => Preload::Session,
                }),
            })
            .collect();
        mods.sort_by(|a, b| a.name.cmp(&b.name));
        req.modules = mods;
        req
    }

    /// The PostgreSQL range and the extension packages of v1 `prereqs` (or of a META
    /// `pgxn_meta` refuses), as pgext's resolver reads them.
    fn add_prereqs(&mut self, raw: &Value) {
        let Ok(all) = crate::prereqs::prereqs(raw) else {
            return;
        };
        let mut packages = Vec::new();
        // The runtime requirement on PostgreSQL, else the first of another phase.
        let pg = all
            .iter()
            .filter(|p| p.needs == Needs::Postgres && p.relation == Relation::Requires)
            .min_by_key(|p| p.phase != Phase::Runtime);
        if let Some(p) = pg {
            self.postgres = Some(p.range.text.clone());
        }
        for p in all {
            match &p.needs {
                Needs::Postgres => {}
                Needs::Extension(name) => packages.push(PackageNeed {
                    purl: format!("pkg:pgxn/{name}"),
                    phase: p.phase,
                    relation: p.relation,
                    range: p.range.text.clone(),
                }),
                Needs::Other(purl) => packages.push(PackageNeed {
                    purl: purl.clone(),
                    phase: p.phase,
                    relation: p.relation,
                    range: p.range.text.clone(),
                }),
            }
        }
        if self.packages.is_empty() {
            packages.sort();
            self.packages = packages;
        }
    }

    /// The libraries that must be in `shared_preload_libraries`.
    pub fn server_preload(&self) -> Vec<String> {
        let libs: Vec<String> = self
            .modules
            .iter()
            .filter(|m| m.preload == Some(Preload::Server))
            .map(|m| m.library().to_string())
            .collect();
        let mut once: Vec<String> = Vec::new();
        for l in libs {
            if !once.contains(&l) {
                once.push(l);
            }
        }
        once
    }

    /// The extensions usable as trusted language extensions.
    pub fn tle(&self) -> Vec<&str> {
        self.extensions
            .iter()
            .filter(|e| e.tle)
            .map(|e| e.name.as_str())
            .collect()
    }

    /// Whether the release supports `local` (`platforms` names it, or names nothing).
    ///
    /// # Errors
    /// Why not, naming the platforms it supports.
    pub fn check_platform(&self, local: &Platform) -> Result<(), String> {
        if self.platforms.is_empty() || self.platforms.iter().any(|p| local.matches(p)) {
            return Ok(());
        }
        Err(format!(
            "it supports only {} and this machine is {local}",
            self.platforms.join(", ")
        ))
    }

    /// The system packages (every purl but `pkg:pgxn` and `pkg:postgres`) required in
    /// `phases` on `local` with PostgreSQL `pg`, the variations whose conditions hold included
    /// (one with a PostgreSQL range holds only for a version known to be in it), each purl
    /// once.
    pub fn system_packages(
        &self,
        local: &Platform,
        pg: Option<&crate::prereqs::Version>,
        phases: &[Phase],
    ) -> Vec<&PackageNeed> {
        let mut out: Vec<&PackageNeed> = Vec::new();
        let pg_holds = |range: &Option<String>| match range {
            None => true,
            Some(r) => match (crate::prereqs::Range::parse(r), pg) {
                (Ok(r), Some(v)) => r.matches(v),
                _ => false,
            },
        };
        let varied = self
            .variations
            .iter()
            .filter(|v| v.platforms.is_empty() || v.platforms.iter().any(|p| local.matches(p)))
            .filter(|v| pg_holds(&v.postgres))
            .flat_map(|v| v.packages.iter());
        for p in self.packages.iter().chain(varied) {
            if p.is_extension()
                || p.relation != Relation::Requires
                || !phases.contains(&p.phase)
                || out.iter().any(|o| o.purl == p.purl)
            {
                continue;
            }
            out.push(p);
        }
        out
    }
}

/// A machine as META platforms name them (`spec/requirements.md`, Platforms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`, `darwin`, `freebsd`, … (lowercase `uname -s`).
    pub os: String,
    /// The OS version a platform string compares with: the kernel's release (`uname -r`).
    pub version: String,
    /// On Linux, the C library: `gnu` or `musl`, and its version.
    pub libc: Option<(String, String)>,
    /// Architecture, normalized (`amd64`, `arm64`, …).
    pub arch: String,
}

/// An architecture's name as platforms spell it: `amd64` for x86_64, `arm64` for aarch64.
pub fn normal_arch(arch: &str) -> String {
    match arch.to_ascii_lowercase().as_str() {
        "x86_64" | "x64" | "amd64" => "amd64".into(),
        "aarch64" | "arm64" | "arm64v8" => "arm64".into(),
        "i386" | "i486" | "i586" | "i686" | "x86" | "386" => "386".into(),
        other => other.into(),
    }
}

/// Whether `want` (`1.2`) names `have` (`1.2.4`) or a prefix of it by components.
fn version_prefix(want: &str, have: &str) -> bool {
    let have: Vec<&str> = have.split(['.', '-', '+']).collect();
    let want: Vec<&str> = want.split('.').collect();
    want.len() <= have.len() && want.iter().zip(&have).all(|(w, h)| w == h)
}

impl Platform {
    /// Whether the platform string `p` (`any`, `linux`, `gnulinux-amd64`, `musllinux-1.2`,
    /// `darwin-23.5.0-arm64`) names this machine. An unreadable string names nothing.
    pub fn matches(&self, p: &str) -> bool {
        let p = p.to_ascii_lowercase();
        if p == "any" {
            return true;
        }
        let mut parts = p.split('-');
        let os = parts.next().unwrap_or_default();
        let (mut version, mut arch) = (None, None);
        for part in parts {
            if part.starts_with(|c: char| c.is_ascii_digit()) && part.contains('.') {
                if version.is_some() || arch.is_some() {
                    return false;
                }
                version = Some(part);
            } else if arch.is_none() {
                arch = Some(part);
            } else {
                return false;
            }
        }
        let compared_version = match (os, &self.libc) {
            ("gnulinux", Some((kind, v))) if kind == "gnu" && self.os == "linux" => v,
            ("musllinux", Some((kind, v))) if kind == "musl" && self.os == "linux" => v,
            ("gnulinux" | "musllinux", _) => return false,
            (os, _) if os == self.os => &self.version,
            _ => return false,
        };
        version.is_none_or(|v| version_prefix(v, compared_version))
            && arch.is_none_or(|a| normal_arch(a) == self.arch)
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.libc {
            Some((kind, v)) => write!(f, "{kind}{}-{v}-{}", self.os, self.arch),
            None => write!(f, "{}-{}-{}", self.os, self.version, self.arch),
        }
    }
}

#[cfg(test)]
#[path = "requirements_tests.rs"]
mod tests;
