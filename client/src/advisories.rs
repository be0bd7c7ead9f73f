//! Known vulnerabilities (`spec/advisories.md`): which advisories affect a release, asked of
//! the release's registry and believed only as the log states them. Each advisory the node
//! names is the `advisory` entry its OSV document points at, proven included in a checkpoint
//! the registry's witness policy accepts; whether it affects the release is judged from that
//! entry, never from the document. A node can hide an advisory (as any node can withhold a
//! new entry); it cannot invent one.

use std::collections::HashMap;

use pgext_spec::entry::Action;
use pgext_spec::osv::OsvList;
use serde::Serialize;

use crate::installed::Installed;
use crate::proven::Proven;
use crate::trust::{Config, RegistryConfig};
use crate::{Error, VerifyError};

/// An advisory in force that affects an installed or planned release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Found {
    /// The advisory's id.
    pub id: String,
    /// Other ids (CVE, GHSA).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Its summary.
    pub summary: String,
    /// The affected distribution.
    pub dist: String,
    /// The affected version.
    pub version: String,
    /// The versions that fix it.
    pub fixed: Vec<String>,
    /// Severity scores (`TYPE SCORE`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub severity: Vec<String>,
    /// The registry.
    pub registry: String,
    /// Log index of the advisory entry.
    pub index: u64,
    /// Who stated it.
    pub user: String,
}

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fixed = match self.fixed.as_slice() {
            [] => "no fixed version yet".to_string(),
            v => format!("fixed in {}", v.join(", ")),
        };
        let aliases = if self.aliases.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.aliases.join(", "))
        };
        write!(
            f,
            "{} {} is affected by {}{aliases}: {}; {fixed}",
            self.dist, self.version, self.id, self.summary
        )
    }
}

/// Opened checkpoints, by registry name: one per registry however many releases are asked.
#[derive(Debug, Default)]
pub struct Checker {
    opened: HashMap<String, Proven>,
}

impl Checker {
    /// A checker with nothing opened yet.
    pub fn new() -> Checker {
        Checker::default()
    }

    /// The advisories in force that affect `dist` `version` of `reg`, each proven.
    ///
    /// # Errors
    /// When the registry cannot be asked, or an advisory it names does not verify.
    pub async fn affecting(
        &mut self,
        reg: &RegistryConfig,
        dist: &str,
        version: &str,
    ) -> Result<Vec<Found>, Error> {
        if !self.opened.contains_key(&reg.name) {
            self.opened
                .insert(reg.name.clone(), Proven::open(reg).await?);
        }
        let proven = &self.opened[&reg.name];
        let path = format!(
            "/api/v1/advisories?dist={}&version={}",
            crate::http::query_value(dist),
            crate::http::query_value(version)
        );
        let list: OsvList = proven.remote().json(&path).await?;
        let mut out: Vec<Found> = Vec::new();
        for doc in list.vulns.iter().filter(|d| d.withdrawn.is_none()) {
            let bad = |why: String| {
                Error::Verify(VerifyError::Malformed(format!(
                    "advisory {}: {why}",
                    doc.id
                )))
            };
            let Some(log) = doc
                .database_specific
                .as_ref()
                .and_then(|d| d.pgext.as_ref())
            else {
                return Err(bad("the node names no log entry for it".into()));
            };
            let entry = proven.entry(log.index).await?;
            let Action::Advisory(adv) = &entry.statement.action else {
                return Err(bad(format!("entry {} is not an advisory", log.index)));
            };
            if !adv.id.eq_ignore_ascii_case(&doc.id) {
                return Err(bad(format!("entry {} is advisory {}", log.index, adv.id)));
            }
            // The entry, not the document, says what is affected.
            if !adv.affects(dist, version) || out.iter().any(|f| f.id == adv.id) {
                continue;
            }
            out.push(Found {
                id: adv.id.clone(),
                aliases: adv.aliases.clone(),
                summary: adv.summary.clone(),
                dist: dist.to_string(),
                version: version.to_string(),
                fixed: adv.fixed_in(dist),
                severity: adv
                    .severity
                    .iter()
                    .map(|s| format!("{} {}", s.kind, s.score))
                    .collect(),
                registry: reg.name.clone(),
                index: log.index,
                user: entry.statement.actor.clone(),
            });
        }
        Ok(out)
    }
}

/// What `pgext advisories check` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Installed releases asked about.
    pub checked: usize,
    /// The advisories that affect them.
    pub affected: Vec<Found>,
    /// Installed dists no registry could be asked about (local sources), with why.
    pub unchecked: Vec<String>,
}

/// Asks each installed release's registry which advisories affect it.
///
/// # Errors
/// When a registry cannot be asked, or an advisory does not verify: a check that could not
/// look fails rather than report nothing.
pub async fn check_installed(config: &Config, installed: &[Installed]) -> Result<Report, Error> {
    let mut checker = Checker::new();
    let mut report = Report::default();
    for i in installed {
        let Some(p) = &i.provenance else {
            report.unchecked.push(format!(
                "{} {}: installed from {}",
                i.dist, i.version, i.source
            ));
            continue;
        };
        let reg = config.registry(Some(&p.registry))?;
        report
            .affected
            .extend(checker.affecting(reg, &i.dist, &i.version).await?);
        report.checked += 1;
    }
    Ok(report)
}
