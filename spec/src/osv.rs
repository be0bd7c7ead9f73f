//! OSV documents (schema 1.6, <https://ossf.github.io/osv-schema/>) as `pgext advisory
//! publish` reads them and the node serves them: the conversion to and from an advisory entry
//! ([`crate::advisory::Advisory`]).

use serde::{Deserialize, Serialize};

use crate::advisory::{
    Advisory, AdvisoryError, Affected, ECOSYSTEM, Event, OSV_SCHEMA_VERSION, Range, Reference,
    Severity,
};

/// An OSV vulnerability document. Reading one ignores fields an advisory does not carry
/// (credits, per-package severity, ecosystem-specific data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Osv {
    /// The OSV schema version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<String>,
    /// The id.
    pub id: String,
    /// RFC 3339 time of the last change.
    #[serde(default)]
    pub modified: String,
    /// RFC 3339 time of the first publication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    /// RFC 3339 time of the withdrawal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn: Option<String>,
    /// Other ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// One line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Markdown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    /// Severity scores.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub severity: Vec<Severity>,
    /// Affected packages.
    #[serde(default)]
    pub affected: Vec<OsvAffected>,
    /// Links.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
    /// What the registry adds: where on the log the advisory is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_specific: Option<DatabaseSpecific>,
}

/// An affected package of an OSV document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsvAffected {
    /// The package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<OsvPackage>,
    /// Version ranges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<OsvRange>,
    /// Versions one by one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
}

/// An OSV package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsvPackage {
    /// The ecosystem ([`ECOSYSTEM`] for the registry's distributions).
    pub ecosystem: String,
    /// The package name: the distribution.
    pub name: String,
    /// `pkg:pgxn/NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
}

/// An OSV range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsvRange {
    /// `SEMVER`, `ECOSYSTEM` or `GIT`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The repository of a `GIT` range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// The events.
    pub events: Vec<Event>,
}

/// The registry's part of a served OSV document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseSpecific {
    /// Where the advisory is on the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgext: Option<LogRecord>,
}

/// Where an advisory is on the log: what a client proves before it believes a served
/// document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Log index of the `advisory` entry in force.
    pub index: u64,
    /// Its actor.
    pub user: String,
    /// Log indexes of every entry about the advisory, the first publication first.
    pub history: Vec<u64>,
    /// Log index of the withdrawal, when withdrawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn_index: Option<u64>,
    /// Why it was withdrawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn_reason: Option<String>,
}

/// A list of OSV documents, as OSV's query API answers (`/api/v1/advisories`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OsvList {
    /// The documents.
    pub vulns: Vec<Osv>,
}

/// When the log says an advisory was published, changed and withdrawn (RFC 3339).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsvTimes {
    /// The first entry's time.
    pub published: String,
    /// The latest entry's time.
    pub modified: String,
    /// The withdrawal's time.
    pub withdrawn: Option<String>,
}

/// The purl of a distribution.
pub fn dist_purl(dist: &str) -> String {
    format!("pkg:pgxn/{dist}")
}

/// The distribution an OSV package names, when it is one of the registry's: ecosystem
/// [`ECOSYSTEM`] (any case), or a `pkg:pgxn/` purl.
fn dist_of(p: &OsvPackage) -> Option<String> {
    if p.ecosystem.eq_ignore_ascii_case(ECOSYSTEM) {
        return Some(p.name.clone());
    }
    let purl = p.purl.as_deref()?.strip_prefix("pkg:pgxn/")?;
    let name = purl.split(['@', '?', '#']).next().unwrap_or(purl);
    Some(name.to_string())
}

impl Advisory {
    /// The advisory an OSV document states, with what of it was left out (packages of other
    /// ecosystems, `GIT` ranges).
    ///
    /// # Errors
    /// A withdrawn document (withdraw with `pgext advisory withdraw`), one that names none of
    /// the registry's distributions, or one the advisory format refuses ([`Advisory::check`]).
    pub fn from_osv(doc: &Osv) -> Result<(Advisory, Vec<String>), AdvisoryError> {
        if doc.withdrawn.is_some() {
            return Err(AdvisoryError(format!(
                "{} is withdrawn: withdraw a published advisory with `pgext advisory withdraw`",
                doc.id
            )));
        }
        let mut left_out = Vec::new();
        let mut affected = Vec::new();
        for a in &doc.affected {
            let Some(p) = &a.package else {
                left_out.push("an affected entry without a package".to_string());
                continue;
            };
            let Some(dist) = dist_of(p) else {
                left_out.push(format!("{} package {}", p.ecosystem, p.name));
                continue;
            };
            let mut ranges = Vec::new();
            for r in &a.ranges {
                if r.kind == "GIT" {
                    left_out.push(format!(
                        "{dist}: a GIT range (releases do not name commits)"
                    ));
                } else {
                    ranges.push(Range {
                        kind: r.kind.clone(),
                        events: r.events.clone(),
                    });
                }
            }
            affected.push(Affected {
                dist,
                ranges,
                versions: a.versions.clone(),
            });
        }
        if affected.is_empty() {
            return Err(AdvisoryError(format!(
                "{} names none of the registry's distributions (ecosystem {ECOSYSTEM} or a \
                 pkg:pgxn/ purl)",
                doc.id
            )));
        }
        let details = doc.details.clone().unwrap_or_default();
        let summary = match &doc.summary {
            Some(s) => s.clone(),
            None => details.lines().next().unwrap_or_default().to_string(),
        };
        let adv = Advisory {
            id: doc.id.clone(),
            aliases: doc.aliases.clone(),
            summary,
            details,
            severity: doc.severity.clone(),
            affected,
            references: doc.references.clone(),
        };
        adv.check()?;
        Ok((adv, left_out))
    }

    /// The OSV document the node serves for the advisory.
    pub fn to_osv(&self, times: OsvTimes, log: LogRecord) -> Osv {
        Osv {
            schema_version: Some(OSV_SCHEMA_VERSION.to_string()),
            id: self.id.clone(),
            modified: times.modified,
            published: Some(times.published),
            withdrawn: times.withdrawn,
            aliases: self.aliases.clone(),
            summary: Some(self.summary.clone()),
            details: (!self.details.is_empty()).then(|| self.details.clone()),
            severity: self.severity.clone(),
            affected: self
                .affected
                .iter()
                .map(|a| OsvAffected {
                    package: Some(OsvPackage {
                        ecosystem: ECOSYSTEM.to_string(),
                        name: a.dist.clone(),
                        purl: Some(dist_purl(&a.dist)),
                    }),
                    ranges: a
                        .ranges
                        .iter()
                        .map(|r| OsvRange {
                            kind: r.kind.clone(),
                            repo: None,
                            events: r.events.clone(),
                        })
                        .collect(),
                    versions: a.versions.clone(),
                })
                .collect(),
            references: self.references.clone(),
            database_specific: Some(DatabaseSpecific { pgext: Some(log) }),
        }
    }
}
