//! Security advisories (`spec/advisories.md`): what an `advisory` entry says, checked against
//! every bound before anything is stored; which releases it affects, by OSV's evaluation of
//! version ranges; and the OSV documents (schema 1.6) it is read from and served as.
//!
//! An entry carries the part of an OSV document that is about the registry's distributions:
//! the id, aliases, summary, details, severity, affected dists with their version ranges and
//! versions, and references. Times come from the log (the first entry's time is `published`,
//! the latest's `modified`); who stated it is the entry's actor.

use serde::{Deserialize, Serialize};

/// The OSV ecosystem name of the registry's distributions.
pub const ECOSYSTEM: &str = "PGXN";
/// The OSV schema version the node serves.
pub const OSV_SCHEMA_VERSION: &str = "1.6.0";

/// Longest advisory id or alias, in bytes.
pub const MAX_ID_BYTES: usize = 64;
/// Most aliases.
pub const MAX_ALIASES: usize = 16;
/// Longest summary, in bytes.
pub const MAX_SUMMARY_BYTES: usize = 256;
/// Longest details text (Markdown), in bytes.
pub const MAX_DETAILS_BYTES: usize = 16 * 1024;
/// Most severity scores.
pub const MAX_SEVERITY: usize = 4;
/// Longest severity score, in bytes.
pub const MAX_SCORE_BYTES: usize = 256;
/// Most affected distributions.
pub const MAX_AFFECTED: usize = 32;
/// Most ranges per affected distribution.
pub const MAX_RANGES: usize = 8;
/// Most events per range.
pub const MAX_EVENTS: usize = 32;
/// Most versions listed per affected distribution.
pub const MAX_VERSIONS: usize = 256;
/// Most references.
pub const MAX_REFERENCES: usize = 32;
/// Longest reference URL, in bytes.
pub const MAX_URL_BYTES: usize = 1024;

/// OSV severity types an advisory may carry.
pub const SEVERITY_TYPES: [&str; 4] = ["CVSS_V2", "CVSS_V3", "CVSS_V4", "Ubuntu"];
/// OSV reference types.
pub const REFERENCE_TYPES: [&str; 11] = [
    "ADVISORY",
    "ARTICLE",
    "DETECTION",
    "DISCUSSION",
    "REPORT",
    "FIX",
    "INTRODUCED",
    "GIT",
    "PACKAGE",
    "EVIDENCE",
    "WEB",
];
/// OSV range types an advisory may use: distribution versions are SemVer, so both mean the
/// same here. (`GIT` ranges name commits, which releases do not record.)
pub const RANGE_TYPES: [&str; 2] = ["SEMVER", "ECOSYSTEM"];

/// Why an advisory is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AdvisoryError(pub String);

fn bad<T>(why: impl Into<String>) -> Result<T, AdvisoryError> {
    Err(AdvisoryError(why.into()))
}

/// An advisory as an `advisory` entry carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advisory {
    /// The advisory's id (`PGEXT-2026-0001`, `GHSA-…`).
    pub id: String,
    /// Other ids of the same vulnerability (CVE, GHSA).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// One line.
    pub summary: String,
    /// Markdown.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
    /// Severity scores.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub severity: Vec<Severity>,
    /// The distributions and versions affected.
    pub affected: Vec<Affected>,
    /// Links.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
}

/// An OSV severity score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Severity {
    /// [`SEVERITY_TYPES`].
    #[serde(rename = "type")]
    pub kind: String,
    /// The vector (`CVSS:3.1/AV:N/…`) or the level (`high`).
    pub score: String,
}

/// A distribution an advisory affects, and which of its versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Affected {
    /// The distribution.
    pub dist: String,
    /// Version ranges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<Range>,
    /// Versions named one by one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
}

/// An OSV range: events in version order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    /// [`RANGE_TYPES`].
    #[serde(rename = "type")]
    pub kind: String,
    /// The events.
    pub events: Vec<Event>,
}

/// An OSV range event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// Affected from this version on (`0`: from the first).
    Introduced(String),
    /// Not affected from this version on.
    Fixed(String),
    /// Affected up to and including this version.
    LastAffected(String),
    /// Versions from this one on are outside the range.
    Limit(String),
}

impl Event {
    fn version(&self) -> &str {
        match self {
            Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) | Event::Limit(v) => v,
        }
    }
}

/// An OSV reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// [`REFERENCE_TYPES`].
    #[serde(rename = "type")]
    pub kind: String,
    /// An http(s) URL.
    pub url: String,
}

/// A release version as ranges compare them: SemVer, case-insensitive (as the registry's
/// versions are). `0` in an `introduced` event is below every version.
fn semver(v: &str) -> Option<semver::Version> {
    semver::Version::parse(&v.to_ascii_lowercase()).ok()
}

/// Ids and aliases: a letter first, then letters, digits, `.`, `_` and `-`, with a `-` (OSV's
/// `PREFIX-ID`); they appear in URL paths as they are.
pub fn valid_id(id: &str) -> bool {
    (3..=MAX_ID_BYTES).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_alphabetic())
        && id.contains('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn check_line(field: &str, v: &str, max: usize) -> Result<(), AdvisoryError> {
    if v.len() > max {
        return bad(format!("{field} is {} bytes; at most {max}", v.len()));
    }
    if v.chars().any(char::is_control) {
        return bad(format!("{field} holds control characters"));
    }
    Ok(())
}

/// A URL pages may link to: http or https, no whitespace or control characters.
fn check_url(url: &str) -> Result<(), AdvisoryError> {
    check_line("a reference URL", url, MAX_URL_BYTES)?;
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    if rest.is_none_or(|r| r.is_empty() || r.contains(char::is_whitespace)) {
        return bad(format!(
            "reference {:?} is not an http(s) URL",
            url.chars().take(80).collect::<String>()
        ));
    }
    Ok(())
}

fn check_range(dist: &str, r: &Range) -> Result<(), AdvisoryError> {
    if !RANGE_TYPES.contains(&r.kind.as_str()) {
        return bad(format!(
            "{dist}: range type {:?}; one of {}",
            r.kind.chars().take(20).collect::<String>(),
            RANGE_TYPES.join(", ")
        ));
    }
    if r.events.is_empty() || r.events.len() > MAX_EVENTS {
        return bad(format!("{dist}: a range has 1 to {MAX_EVENTS} events"));
    }
    if !r.events.iter().any(|e| matches!(e, Event::Introduced(_))) {
        return bad(format!("{dist}: a range needs an introduced event"));
    }
    for e in &r.events {
        let v = e.version();
        let zero = matches!(e, Event::Introduced(v) if v == "0");
        if !zero && semver(v).is_none() {
            return bad(format!(
                "{dist}: {:?} in a range is not a SemVer version",
                v.chars().take(40).collect::<String>()
            ));
        }
    }
    Ok(())
}

impl Advisory {
    /// Checks every field against the format and its bounds.
    ///
    /// # Errors
    /// What is wrong.
    pub fn check(&self) -> Result<(), AdvisoryError> {
        if !valid_id(&self.id) {
            return bad(format!(
                "advisory id {:?}: 3 to {MAX_ID_BYTES} letters, digits, . _ -, starting with a \
                 letter, with a - (PREFIX-ID)",
                self.id.chars().take(80).collect::<String>()
            ));
        }
        if self.aliases.len() > MAX_ALIASES {
            return bad(format!("at most {MAX_ALIASES} aliases"));
        }
        if let Some(a) = self.aliases.iter().find(|a| !valid_id(a)) {
            return bad(format!(
                "alias {:?} is not an advisory id",
                a.chars().take(80).collect::<String>()
            ));
        }
        if self.summary.trim().is_empty() {
            return bad("an advisory needs a summary");
        }
        check_line("the summary", &self.summary, MAX_SUMMARY_BYTES)?;
        if self.details.len() > MAX_DETAILS_BYTES {
            return bad(format!(
                "the details are {} bytes; at most {MAX_DETAILS_BYTES}",
                self.details.len()
            ));
        }
        if self
            .details
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return bad("the details hold control characters other than newlines and tabs");
        }
        if self.severity.len() > MAX_SEVERITY {
            return bad(format!("at most {MAX_SEVERITY} severity scores"));
        }
        for s in &self.severity {
            if !SEVERITY_TYPES.contains(&s.kind.as_str()) {
                return bad(format!(
                    "severity type {:?}; one of {}",
                    s.kind.chars().take(20).collect::<String>(),
                    SEVERITY_TYPES.join(", ")
                ));
            }
            if s.score.is_empty() {
                return bad("a severity needs a score");
            }
            check_line("a severity score", &s.score, MAX_SCORE_BYTES)?;
        }
        if self.affected.is_empty() || self.affected.len() > MAX_AFFECTED {
            return bad(format!(
                "an advisory affects 1 to {MAX_AFFECTED} distributions"
            ));
        }
        for (i, a) in self.affected.iter().enumerate() {
            if !crate::names::valid_term(&a.dist) {
                return bad(format!(
                    "{:?} is not a distribution name",
                    a.dist.chars().take(80).collect::<String>()
                ));
            }
            if self.affected[..i]
                .iter()
                .any(|b| b.dist.eq_ignore_ascii_case(&a.dist))
            {
                return bad(format!(
                    "{} is named twice: one entry per distribution",
                    a.dist
                ));
            }
            if a.ranges.is_empty() && a.versions.is_empty() {
                return bad(format!("{}: name ranges or versions", a.dist));
            }
            if a.ranges.len() > MAX_RANGES || a.versions.len() > MAX_VERSIONS {
                return bad(format!(
                    "{}: at most {MAX_RANGES} ranges and {MAX_VERSIONS} versions",
                    a.dist
                ));
            }
            for r in &a.ranges {
                check_range(&a.dist, r)?;
            }
            if let Some(v) = a.versions.iter().find(|v| semver(v).is_none()) {
                return bad(format!(
                    "{}: {:?} is not a SemVer version",
                    a.dist,
                    v.chars().take(40).collect::<String>()
                ));
            }
        }
        if self.references.len() > MAX_REFERENCES {
            return bad(format!("at most {MAX_REFERENCES} references"));
        }
        for r in &self.references {
            if !REFERENCE_TYPES.contains(&r.kind.as_str()) {
                return bad(format!(
                    "reference type {:?}; one of {}",
                    r.kind.chars().take(20).collect::<String>(),
                    REFERENCE_TYPES.join(", ")
                ));
            }
            check_url(&r.url)?;
        }
        Ok(())
    }

    /// The distributions it names, as spelled.
    pub fn dists(&self) -> impl Iterator<Item = &str> {
        self.affected.iter().map(|a| a.dist.as_str())
    }

    fn affected_of(&self, dist: &str) -> Option<&Affected> {
        self.affected
            .iter()
            .find(|a| a.dist.eq_ignore_ascii_case(dist))
    }

    /// Whether `dist` `version` is affected: named in `versions`, or inside a range by OSV's
    /// evaluation.
    pub fn affects(&self, dist: &str, version: &str) -> bool {
        let Some(a) = self.affected_of(dist) else {
            return false;
        };
        if a.versions.iter().any(|v| v.eq_ignore_ascii_case(version)) {
            return true;
        }
        let Some(v) = semver(version) else {
            return false;
        };
        a.ranges.iter().any(|r| in_range(&v, &r.events))
    }

    /// The versions its ranges name as fixing `dist`, in version order.
    pub fn fixed_in(&self, dist: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .affected_of(dist)
            .into_iter()
            .flat_map(|a| &a.ranges)
            .flat_map(|r| &r.events)
            .filter_map(|e| match e {
                Event::Fixed(v) => Some(v.clone()),
                _ => None,
            })
            .collect();
        out.sort_by(|a, b| match (semver(a), semver(b)) {
            (Some(a), Some(b)) => a.cmp_precedence(&b),
            _ => a.cmp(b),
        });
        out.dedup();
        out
    }
}

/// OSV's evaluation of one range: events in version order (`introduced: 0` first); an
/// `introduced` at or below the version makes it affected, a `fixed` at or below or a
/// `last_affected` below makes it not; a `limit` at or below puts it outside the range.
fn in_range(v: &semver::Version, events: &[Event]) -> bool {
    let mut sorted: Vec<(Option<semver::Version>, &Event)> = events
        .iter()
        .map(|e| (semver(e.version()), e))
        .filter(|(ver, e)| ver.is_some() || matches!(e, Event::Introduced(z) if z == "0"))
        .collect();
    sorted.sort_by(|(a, _), (b, _)| match (a, b) {
        (None, None) => std::cmp::Ordering::Equal,
        (None, _) => std::cmp::Ordering::Less,
        (_, None) => std::cmp::Ordering::Greater,
        (Some(a), Some(b)) => a.cmp_precedence(b),
    });
    let at_or_above = |e: &Option<semver::Version>| {
        e.as_ref()
            .is_none_or(|e| v.cmp_precedence(e) != std::cmp::Ordering::Less)
    };
    let mut affected = false;
    for (ver, e) in &sorted {
        match e {
            Event::Limit(_) if at_or_above(ver) => return false,
            Event::Introduced(_) if at_or_above(ver) => affected = true,
            Event::Fixed(_) if at_or_above(ver) => affected = false,
            Event::LastAffected(_)
                if ver
                    .as_ref()
                    .is_some_and(|l| v.cmp_precedence(l) == std::cmp::Ordering::Greater) =>
            {
                affected = false
            }
            _ => {}
        }
    }
    affected
}

#[cfg(test)]
#[path = "advisory_tests.rs"]
mod tests;
