//! The shapes of a resolution (requirements with their chains, chosen dists, what the
//! installation keeps) and what is judged once a pass is over: unmet ranges, conflicts, and the
//! order to install in, where a cycle is an error naming it.

use std::collections::BTreeMap;

use pgext_spec::api;
use pgext_spec::prereqs::{Needs, Phase, Prereq, Range, Relation, Version};

use super::local::Present;
use crate::Error;
use crate::request::{Stability, Want};
use crate::trust::RegistryConfig;

/// Dists one plan may hold: a bound on the work a META can ask for.
pub const MAX_PLAN: usize = 256;

/// A name asked for on the command line or in a manifest.
#[derive(Debug, Clone)]
pub struct Root {
    /// Dist name.
    pub name: String,
    /// Which version.
    pub want: Want,
    /// The registry to ask, when the manifest names one.
    pub registry: Option<RegistryConfig>,
    /// Binary or source for this dist, when it differs from the plan's.
    pub kind: Option<crate::ops::Kind>,
}

/// What to follow.
#[derive(Debug, Clone, Copy, Default)]
pub struct Follow {
    /// Statuses allowed when no exact version is named.
    pub stability: Stability,
    /// Install what releases recommend.
    pub recommends: bool,
    /// Install the test prerequisites (for `check`).
    pub test: bool,
    /// Only the named dists (PostgreSQL's version is still checked).
    pub no_deps: bool,
    /// Name every dist pgext installs, even those already installed here: a lock is applied
    /// on other hosts, where only what PostgreSQL ships can be counted on.
    pub complete: bool,
}

/// One requirement of a name, and the chain of dists that led to it.
#[derive(Debug, Clone)]
pub struct Demand {
    /// The name required (an extension, or for a root the dist).
    pub name: String,
    /// Which versions.
    pub range: Range,
    /// How strongly.
    pub relation: Relation,
    /// `dist version` of each requirer, the first a root; empty for a root itself.
    pub chain: Vec<String>,
}

impl Demand {
    /// `requested`, or `required by a 1.0 (via b 2.0)`.
    pub fn why(&self) -> String {
        let Some(last) = self.chain.last() else {
            return "requested".into();
        };
        let how = match self.relation {
            Relation::Recommends => "recommended",
            Relation::Suggests => "suggested",
            Relation::Conflicts => "refused",
            Relation::Requires => "required",
        };
        let range = if self.range.is_any() {
            String::new()
        } else {
            format!(" {}", self.range)
        };
        let mut s = format!("{how}{range} by {last}");
        if self.chain.len() > 1 {
            s.push_str(&format!(
                " (via {})",
                self.chain[..self.chain.len() - 1].join(" → ")
            ));
        }
        s
    }

    /// The chain with the name required at its end.
    pub fn path(&self) -> String {
        let mut p = self.chain.clone();
        p.push(self.name.clone());
        p.join(" → ")
    }
}

/// A dist the plan installs.
#[derive(Debug, Clone)]
pub struct Chosen {
    /// Its registry.
    pub registry: RegistryConfig,
    /// Dist name as the registry spells it.
    pub dist: String,
    /// The release chosen.
    pub release: api::DistRelease,
    /// Its prerequisites (from its META).
    pub prereqs: Vec<Prereq>,
    /// Why it is there.
    pub demands: Vec<Demand>,
    /// The plan's dists (keys) it needs first.
    pub requires: Vec<String>,
    /// Set when a yanked release was chosen (only by naming it).
    pub warning: Option<String>,
}

impl Chosen {
    /// `dist version`.
    pub fn label(&self) -> String {
        format!("{} {}", self.dist, self.release.version)
    }

    /// The version this release gives extension (or dist) `name`.
    fn version_for(&self, name: &str) -> Option<Version> {
        provided(&self.dist, &self.release, name)
    }
}

/// A requirement met without installing anything.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Kept {
    /// Extension name.
    pub name: String,
    /// Its version there.
    pub version: String,
    /// `ships with PostgreSQL`, or `installed by pgext (DIST VERSION)`.
    pub how: String,
    /// Why it was needed.
    pub by: Vec<String>,
}

/// A finished resolution.
#[derive(Debug, Clone, Default)]
pub struct Resolution {
    /// The dists to install, each after what it requires.
    pub order: Vec<Chosen>,
    /// What the installation already has.
    pub kept: Vec<Kept>,
    /// What pgext does not install, and suggestions.
    pub notes: Vec<String>,
}

/// The version `release` of `dist` gives `name`: its `provides` entry (the release's version
/// when that cannot be read as a version: a v2 META's control file may say anything), else (for
/// the dist's own name) the release's version.
pub(super) fn provided(dist: &str, release: &api::DistRelease, name: &str) -> Option<Version> {
    match release
        .provides
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
    {
        Some((_, v)) => Version::parse(v).or_else(|| Version::parse(&release.version)),
        None if dist.eq_ignore_ascii_case(name) => Version::parse(&release.version),
        None => None,
    }
}

pub(super) fn plan_error(s: String) -> Error {
    Error::Plan(s)
}

/// A name pgext will ask a registry for: the characters of dist and extension names.
pub(super) fn check_name(d: &Demand) -> Result<(), Error> {
    let ok = !d.name.is_empty()
        && d.name.len() <= 128
        && d.name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(plan_error(format!(
            "{:?} ({}) is not an extension name pgext can look up",
            d.name,
            d.why()
        )))
    }
}

/// One pass's choices.
pub(super) struct Pass {
    pub(super) chosen: BTreeMap<String, Chosen>,
    /// Extension (and dist) names → the chosen dist's key.
    pub(super) names: BTreeMap<String, String>,
    pub(super) kept: BTreeMap<String, (Present, Kept, Vec<Demand>)>,
    pub(super) notes: Vec<String>,
}
/// The key control-file requirements are learned under.
pub(super) fn control_key(c: &Chosen) -> String {
    format!("{}@{}", c.dist.to_ascii_lowercase(), c.release.version)
}

/// Whether the plan follows prerequisite `pr`: runtime, build and configure requirements;
/// recommendations when asked; test requirements of the dists `check` names.
pub(super) fn wanted(pr: &Prereq, follow: Follow, root: bool) -> bool {
    let phase = match pr.phase {
        Phase::Runtime | Phase::Build | Phase::Configure => true,
        // The tests of what is checked, not of its dependencies.
        Phase::Test => follow.test && root,
        Phase::Develop => false,
    };
    phase
        && match pr.relation {
            Relation::Requires => true,
            Relation::Recommends => follow.recommends,
            Relation::Suggests | Relation::Conflicts => false,
        }
}

/// Records that the dist labelled `requirer` needs the dist `key`.
pub(super) fn link(p: &mut Pass, requirer: Option<&str>, key: &str) {
    let Some(requirer) = requirer else { return };
    if let Some(c) = p.chosen.values_mut().find(|c| c.label() == requirer) {
        // A dist requiring one of its own extensions needs nothing first.
        let own = c.dist.eq_ignore_ascii_case(key);
        if !own && !c.requires.iter().any(|k| k == key) {
            c.requires.push(key.to_string());
        }
    }
}

/// Demands the pass's choices do not meet.
pub(super) fn unmet(p: &Pass) -> Vec<Demand> {
    let mut out = Vec::new();
    for c in p.chosen.values() {
        for d in c.demands.iter().filter(|d| !d.chain.is_empty()) {
            if !c.version_for(&d.name).is_some_and(|v| d.range.matches(&v)) {
                out.push(d.clone());
            }
        }
    }
    // What pgext installed here and a later requirement misses is chosen again next pass (an
    // upgrade); what PostgreSQL shipped is judged in `finish`.
    for (present, kept, demands) in p.kept.values() {
        if present.by_pgext.is_none() {
            continue;
        }
        for d in demands {
            if !d.range.is_any()
                && !Version::parse(&kept.version).is_some_and(|v| d.range.matches(&v))
            {
                out.push(d.clone());
            }
        }
    }
    out
}

/// Checks what a pass kept and refused, orders its dists, and returns the resolution.
pub(super) fn finish(p: Pass, local: &super::local::Local) -> Result<Resolution, Error> {
    for (present, kept, demands) in p.kept.values() {
        for d in demands.iter().filter(|d| !d.range.is_any()) {
            if !Version::parse(&kept.version).is_some_and(|v| d.range.matches(&v)) {
                return Err(plan_error(format!(
                    "{} is {}, which this PostgreSQL has at version {} ({}), not {}. Chain: {}",
                    d.name,
                    d.why(),
                    kept.version,
                    present.how(),
                    d.range,
                    d.path()
                )));
            }
        }
    }
    // Conflicts: a release refusing what the plan installs or the installation has.
    for c in p.chosen.values() {
        for pr in c
            .prereqs
            .iter()
            .filter(|pr| pr.relation == Relation::Conflicts)
        {
            let Needs::Extension(n) = &pr.needs else {
                continue;
            };
            let key = n.to_ascii_lowercase();
            let there = match p.names.get(&key).and_then(|k| p.chosen.get(k)) {
                Some(o) => o.version_for(n).map(|v| (v, o.label())),
                // What the installation has, needed by the plan or not.
                None => local
                    .present(&key)
                    .and_then(|k| Version::parse(&k.version).map(|v| (v, k.how()))),
            };
            if let Some((v, whose)) = there.filter(|(v, _)| pr.range.matches(v)) {
                return Err(plan_error(format!(
                    "{} conflicts with {n} {} ({v}, from {whose})",
                    c.label(),
                    pr.range
                )));
            }
        }
    }
    let order = order(&p.chosen)?;
    Ok(Resolution {
        order,
        kept: p.kept.into_values().map(|(_, k, _)| k).collect(),
        notes: p.notes,
    })
}

/// The dists each after what it requires; a cycle is an error naming it.
fn order(chosen: &BTreeMap<String, Chosen>) -> Result<Vec<Chosen>, Error> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut marks: BTreeMap<&str, Mark> = chosen.keys().map(|k| (k.as_str(), Mark::New)).collect();
    let mut out: Vec<Chosen> = Vec::new();
    // Depth first without recursion: (key, next edge to follow).
    for start in chosen.keys() {
        if marks[start.as_str()] != Mark::New {
            continue;
        }
        let mut stack: Vec<(&str, usize)> = vec![(start.as_str(), 0)];
        marks.insert(start.as_str(), Mark::Open);
        while let Some((key, edge)) = stack.pop() {
            let c = &chosen[key];
            match c.requires.get(edge) {
                Some(next) => {
                    stack.push((key, edge + 1));
                    let next = next.as_str();
                    match marks.get(next).copied() {
                        Some(Mark::New) => {
                            marks.insert(next, Mark::Open);
                            stack.push((next, 0));
                        }
                        Some(Mark::Open) => {
                            let from = stack.iter().position(|(k, _)| *k == next).unwrap_or(0);
                            let mut cycle: Vec<String> = stack[from..]
                                .iter()
                                .map(|(k, _)| chosen[*k].label())
                                .collect();
                            cycle.push(chosen[next].label());
                            return Err(plan_error(format!(
                                "a dependency cycle: {}",
                                cycle.join(" requires ")
                            )));
                        }
                        _ => {}
                    }
                }
                None => {
                    marks.insert(key, Mark::Done);
                    out.push(c.clone());
                }
            }
        }
    }
    Ok(out)
}
