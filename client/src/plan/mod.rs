//! Plans: what an install of some dists needs, resolved ([`resolve`]) against what the
//! installation already has ([`local`]), every dist verified as a single install is, each as a
//! binary or from source; printed before anything changes, then applied in order
//! (`spec/client.md`, Dependencies).

pub mod graph;
pub mod local;
pub mod resolve;
mod routing;

use std::collections::HashMap;

use pgext_spec::archive::{Limits, read_archive};
use pgext_spec::prereqs::control_requires;
use pgext_spec::requirements::Requirements;
use serde::Serialize;

use crate::Error;
use crate::binary::VerifiedBinary;
use crate::installed::{self, Installed};
use crate::ops::{Context, Kind};
use crate::request::{Select, Want};
use crate::verify::VerifiedRelease;
use graph::control_key;
pub use graph::{Chosen, Follow, Kept, Root};
pub use local::Local;
use resolve::Resolver;

/// Rounds of learning control-file `requires` from verified archives (each round learns at
/// least one dist's; a plan holds at most 256).
const MAX_ROUNDS: usize = 32;
/// Names the control files of one archive may require.
const MAX_CONTROL_REQUIRES: usize = 256;

/// One dist of a plan, verified.
#[derive(Debug)]
pub struct Step {
    /// What resolution chose, and why.
    pub chosen: Chosen,
    /// The verified release.
    pub verified: VerifiedRelease,
    /// The verified binary package to install, or `None` to build from source.
    pub binary: Option<VerifiedBinary>,
    /// What its META says it needs.
    pub needs: Requirements,
}

/// A verified plan.
#[derive(Debug)]
pub struct Plan {
    /// The dists to install, each after what it requires.
    pub steps: Vec<Step>,
    /// Requirements the installation already meets.
    pub kept: Vec<Kept>,
    /// What pgext does not install, and suggestions.
    pub notes: Vec<String>,
    /// The installation (`pg_config --version`).
    pub pg: String,
    /// HTTP requests resolution made (dist documents, METAs, extension documents).
    pub requests: usize,
}

/// One dist of a plan, as printed and as `--json` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StepView {
    /// Dist name.
    pub dist: String,
    /// Version.
    pub version: String,
    /// Registry.
    pub registry: String,
    /// `binary` or `source`.
    pub kind: String,
    /// Why it is in the plan.
    pub why: Vec<String>,
    /// The plan's dists it needs first.
    pub requires: Vec<String>,
    /// Its release entry's log index.
    pub index: u64,
    /// Its archive's SHA-256.
    pub sha256: String,
    /// Libraries it needs in `shared_preload_libraries` (loaded at a restart).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub preload: Vec<String>,
}

/// A plan, as printed and as `--json` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PlanView {
    /// The installation.
    pub postgres: String,
    /// What will be installed, in order.
    pub install: Vec<StepView>,
    /// What is already there.
    pub kept: Vec<Kept>,
    /// Notes.
    pub notes: Vec<String>,
    /// Known vulnerabilities of the releases to install (`Context::plan_advisories`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub advisories: Vec<crate::advisories::Found>,
}

impl Plan {
    /// The plan as shown.
    pub fn view(&self) -> PlanView {
        PlanView {
            postgres: self.pg.clone(),
            install: self
                .steps
                .iter()
                .map(|s| StepView {
                    dist: s.chosen.dist.clone(),
                    version: s.chosen.release.version.clone(),
                    registry: s.chosen.registry.name.clone(),
                    kind: if s.binary.is_some() {
                        "binary"
                    } else {
                        "source"
                    }
                    .into(),
                    why: s.chosen.demands.iter().map(graph::Demand::why).collect(),
                    requires: s.chosen.requires.clone(),
                    index: s.verified.provenance.index,
                    sha256: s.verified.provenance.sha256.clone(),
                    preload: s.needs.server_preload(),
                })
                .collect(),
            kept: self.kept.clone(),
            notes: self.notes.clone(),
            advisories: Vec::new(),
        }
    }
}

impl std::fmt::Display for PlanView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "plan for {}:", self.postgres)?;
        for s in &self.install {
            let mut why = s.why.clone();
            why.dedup();
            writeln!(
                f,
                "  install {} {} from {} ({}): {}",
                s.dist,
                s.version,
                s.registry,
                s.kind,
                why.join("; ")
            )?;
            if !s.preload.is_empty() {
                writeln!(
                    f,
                    "    needs {} in shared_preload_libraries: PostgreSQL must restart before it can be loaded (--configure adds it)",
                    s.preload.join(", ")
                )?;
            }
        }
        for k in &self.kept {
            writeln!(
                f,
                "  keep {} {}: {}, {}",
                k.name,
                k.version,
                k.how,
                k.by.join("; ")
            )?;
        }
        for n in &self.notes {
            writeln!(f, "  note: {n}")?;
        }
        for a in &self.advisories {
            writeln!(f, "  VULNERABLE: {a}")?;
        }
        Ok(())
    }
}

/// The `requires` of every control file in a verified archive.
fn archive_requires(zip: &[u8]) -> Result<Vec<String>, Error> {
    let files = read_archive(zip, &Limits::default())
        .map_err(|e| Error::Release(format!("the archive cannot be read: {e}")))?;
    let mut out = std::collections::BTreeSet::new();
    for (path, (data, _)) in &files.files {
        let is_control = path.ends_with(".control") || path.ends_with(".control.in");
        if !is_control || data.len() > 64 << 10 {
            continue;
        }
        out.extend(control_requires(&String::from_utf8_lossy(data)));
        if out.len() > MAX_CONTROL_REQUIRES {
            return Err(Error::Plan(format!(
                "its control files require more than {MAX_CONTROL_REQUIRES} extensions"
            )));
        }
    }
    Ok(out.into_iter().collect())
}

impl Plan {
    /// The advisories in force that affect the releases to install (`spec/advisories.md`),
    /// each proven from its log entry.
    ///
    /// # Errors
    /// When a registry cannot be asked, or an advisory does not verify.
    pub async fn advisories(&self) -> Result<Vec<crate::advisories::Found>, Error> {
        let mut checker = crate::advisories::Checker::new();
        let mut out = Vec::new();
        for s in &self.steps {
            let (reg, dist) = (&s.chosen.registry, &s.chosen.dist);
            out.extend(
                checker
                    .affecting(reg, dist, &s.chosen.release.version)
                    .await?,
            );
        }
        Ok(out)
    }
}

impl Context {
    /// Resolves `roots` and their prerequisites against this installation and the trusted
    /// registries, verifies every dist as a single install is (and the binary to install, per
    /// `kind`), and returns the plan. Nothing is installed.
    ///
    /// # Errors
    /// [`Error::Plan`] for what cannot be resolved; any failed verification.
    pub async fn plan(&self, roots: &[Root], follow: Follow, kind: Kind) -> Result<Plan, Error> {
        let local = Local::read(
            &self.pg,
            &self.state,
            !follow.complete,
            self.prefix.as_deref(),
        )?;
        let mut r = Resolver::new(&self.config, &self.state, &local, self.registry.as_deref());
        let mut verified: HashMap<String, VerifiedRelease> = HashMap::new();
        for _ in 0..MAX_ROUNDS {
            let res = r.resolve(roots, follow).await?;
            let mut learned = false;
            for c in &res.order {
                let key = control_key(c);
                if verified.contains_key(&key) {
                    continue;
                }
                let select = Select {
                    want: Want::Exact(c.release.version.clone()),
                    stability: follow.stability,
                };
                let v = self.fetch_in(&c.registry, &c.dist, &select).await?;
                let Some(rel) = v.entry.statement.action.release() else {
                    return Err(Error::Plan(format!("{} is not a release", c.label())));
                };
                // The prerequisites were read from the META the log names for this release, and
                // what it provides (which names led to it) and its status are the log's.
                if rel.meta_sha256 != c.release.meta_sha256
                    || v.provenance.index != c.release.index
                    || rel.provides != c.release.provides
                    || rel.status != c.release.status
                {
                    return Err(Error::Verify(crate::VerifyError::Malformed(format!(
                        "{}: the release verified (entry {}, META {}) is not the one resolved (entry {}, META {})",
                        c.label(),
                        v.provenance.index,
                        rel.meta_sha256,
                        c.release.index,
                        c.release.meta_sha256
                    ))));
                }
                let requires = archive_requires(&v.zip)?;
                if !follow.no_deps && !requires.is_empty() {
                    r.control.insert(key.clone(), requires);
                    learned = true;
                }
                verified.insert(key, v);
            }
            if learned {
                continue;
            }
            let mut steps = Vec::new();
            for c in res.order {
                let Some(v) = verified.remove(&control_key(&c)) else {
                    return Err(Error::Plan(format!("{} was not verified", c.label())));
                };
                let kind = roots
                    .iter()
                    .find(|r| r.name.eq_ignore_ascii_case(&c.dist))
                    .and_then(|r| r.kind)
                    .unwrap_or(kind);
                let binary = self.binary_in(&c.registry, &c.dist, &v, kind).await?;
                let needs = r
                    .needs
                    .get(&c.release.meta_sha256)
                    .cloned()
                    .unwrap_or_default();
                steps.push(Step {
                    chosen: c,
                    verified: v,
                    binary,
                    needs,
                });
            }
            return Ok(Plan {
                steps,
                kept: res.kept,
                notes: res.notes,
                pg: format!("{} ({})", local.version_line, self.pg.pg_config.display()),
                requests: r.requests,
            });
        }
        Err(Error::Plan(
            "the control files' requirements did not settle".into(),
        ))
    }

    /// Installs a plan's dists in order, each recorded with the dists it requires.
    ///
    /// # Errors
    /// The first install that fails (those before it stay installed and recorded).
    pub fn apply(&self, plan: &Plan) -> Result<Vec<Installed>, Error> {
        let mut done = Vec::new();
        for s in &plan.steps {
            let mut record = match &s.binary {
                Some(b) => self.install_binary(&s.verified, b)?,
                None => self.install_verified(&s.verified)?,
            };
            let requires: Vec<String> = s
                .chosen
                .requires
                .iter()
                .filter_map(|k| {
                    plan.steps
                        .iter()
                        .find(|o| o.chosen.dist.eq_ignore_ascii_case(k))
                        .map(|o| o.chosen.dist.clone())
                })
                .collect();
            if !requires.is_empty() {
                record.requires = requires;
                let registry = record.provenance.as_ref().map(|p| p.registry.clone());
                installed::record(&self.state, record.clone(), registry.as_deref())?;
            }
            done.push(record);
        }
        Ok(done)
    }
}
