//! What a command names: a distribution with a version or a range (as pgxnclient takes them,
//! plus `name@version`), or a local directory or archive; and how a release is chosen from a
//! distribution's document (`spec/client.md`, Choosing a release).

use std::path::{Path, PathBuf};

use pgext_spec::api::{Dist, DistRelease};

use crate::VerifyError;

/// Which release statuses may be chosen when no exact version is named.
/// Ordered from the narrowest to the widest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stability {
    /// `stable` only (the default, as pgxnclient).
    #[default]
    Stable,
    /// `stable` and `testing`.
    Testing,
    /// Any status.
    Unstable,
}

impl Stability {
    pub(crate) fn allows(self, status: &str) -> bool {
        match self {
            Stability::Stable => status == "stable",
            Stability::Testing => status == "stable" || status == "testing",
            Stability::Unstable => true,
        }
    }
}

/// Which version of a distribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// The highest allowed release.
    Newest,
    /// Exactly this version (`name@1.2.3`, `name=1.2.3`, `name==1.2.3`): any status, even
    /// yanked, with a warning.
    Exact(String),
    /// The highest allowed release matching a range (`name>=1.2`, `name<2`).
    Range(semver::VersionReq),
    /// The highest allowed release in a PGXN version range (a manifest's `">= 0.40.0"`).
    Within(pgext_spec::prereqs::Range),
}

/// A release request: the version wanted and the statuses allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Select {
    /// Which version.
    pub want: Want,
    /// Which statuses, when the version is not exact.
    pub stability: Stability,
}

impl Select {
    /// `version` exactly, or else the newest stable release.
    pub fn version(version: Option<&str>) -> Select {
        Select {
            want: version.map_or(Want::Newest, |v| Want::Exact(v.to_string())),
            stability: Stability::Stable,
        }
    }
}

/// What a command line names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A distribution in a registry.
    Dist {
        /// Its name.
        name: String,
        /// Which version.
        want: Want,
    },
    /// A source directory (a PGXS project).
    Dir(PathBuf),
    /// A release archive on disk (`.zip`, `.tar.gz`, `.tgz`, `.tar.bz2`).
    Archive(PathBuf),
}

/// Why a request cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct BadRequest(pub String);

fn looks_like_path(spec: &str) -> bool {
    spec.contains('/')
        || spec.starts_with('.')
        || [".zip", ".tar.gz", ".tgz", ".tar.bz2"]
            .iter()
            .any(|ext| spec.to_ascii_lowercase().ends_with(ext))
}

/// Reads a request: a path (with a `/`, starting with `.`, or with an archive suffix) to an
/// existing directory or archive, or `name[OP VERSION]` with `OP` one of `@`, `=`, `==`, `>=`,
/// `>`, `<=`, `<`.
///
/// # Errors
/// When it names a path that does not exist, or the name or version cannot be read.
pub fn parse(spec: &str) -> Result<Target, BadRequest> {
    // Only what looks like a path is one: a folder named like a dist in the current
    // directory must not shadow the registry's dist (`./name` names the folder).
    if looks_like_path(spec) {
        let path = Path::new(spec);
        if path.is_dir() {
            return Ok(Target::Dir(path.to_path_buf()));
        }
        if path.is_file() {
            return Ok(Target::Archive(path.to_path_buf()));
        }
        return Err(BadRequest(format!(
            "{spec}: no such directory or archive (a distribution name has no '/' or '.')"
        )));
    }
    let at = spec.find(['@', '=', '>', '<']).unwrap_or(spec.len());
    let (name, rest) = spec.split_at(at);
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_alphanumeric() || "_-".contains(c))
    {
        return Err(BadRequest(format!(
            "{spec}: expected a distribution name, optionally with @VERSION or a range such as >=1.2"
        )));
    }
    let exact = rest
        .strip_prefix('@')
        .or_else(|| rest.strip_prefix("=="))
        .or_else(|| rest.strip_prefix('='));
    let want = match exact {
        _ if rest.is_empty() => Want::Newest,
        Some(v) if !v.is_empty() => Want::Exact(v.to_string()),
        Some(_) => return Err(BadRequest(format!("{spec}: no version after the operator"))),
        None => Want::Range(
            semver::VersionReq::parse(rest)
                .map_err(|e| BadRequest(format!("{spec}: {rest} is not a version range: {e}")))?,
        ),
    };
    Ok(Target::Dist {
        name: name.to_string(),
        want,
    })
}

pub(crate) fn version_of(release: &DistRelease) -> Option<semver::Version> {
    let v = release.version.as_str();
    semver::Version::parse(v).ok().or_else(|| {
        // PGXN accepted versions such as `1.2`; read them as `1.2.0` to compare.
        let parts = v.split('.').count();
        (parts < 3)
            .then(|| format!("{v}{}", ".0".repeat(3 - parts)))
            .and_then(|v| semver::Version::parse(&v).ok())
    })
}

/// A chosen release, with a warning to show when it is yanked.
#[derive(Debug, Clone)]
pub struct Chosen {
    /// The release, from the distribution document.
    pub release: DistRelease,
    /// Set when the release is yanked (only an exact version chooses one).
    pub warning: Option<String>,
}

/// Chooses the release of `dist` that `select` names from its `/api/v1/dists/{dist}` document.
/// Yanked releases are chosen only by an exact version, and then with a warning.
///
/// # Errors
/// [`VerifyError::NotFound`] saying why nothing matched (and which flag would allow a match).
pub fn choose(doc: &Dist, dist: &str, select: &Select) -> Result<Chosen, VerifyError> {
    let releases = &doc.releases;
    if let Want::Exact(v) = &select.want {
        let release = releases
            .iter()
            .find(|r| r.version.eq_ignore_ascii_case(v))
            .cloned()
            .ok_or_else(|| VerifyError::NotFound(format!("{dist} has no version {v}")))?;
        let warning = release.yanked.then(|| {
            format!(
                "{dist} {v} is yanked ({}); installing it only because that version was named",
                release.yank_reason.as_deref().unwrap_or("no reason given")
            )
        });
        return Ok(Chosen { release, warning });
    }
    let matches = |r: &DistRelease| match &select.want {
        Want::Range(req) => version_of(r).is_some_and(|v| req.matches(&v)),
        Want::Within(range) => {
            pgext_spec::prereqs::Version::parse(&r.version).is_some_and(|v| range.matches(&v))
        }
        _ => true,
    };
    let candidates: Vec<&DistRelease> = releases
        .iter()
        .filter(|r| !r.yanked && matches(r))
        .collect();
    let best = candidates
        .iter()
        .filter(|r| select.stability.allows(r.status.as_str()))
        .max_by_key(|r| version_of(r));
    if let Some(r) = best {
        return Ok(Chosen {
            release: (*r).clone(),
            warning: None,
        });
    }
    let range = match &select.want {
        Want::Range(req) => format!(" matching {req}"),
        Want::Within(range) => format!(" matching {range}"),
        _ => String::new(),
    };
    // The least permissive flag that would allow a match, with the release it would choose.
    let wider = [
        (Stability::Testing, "testing"),
        (Stability::Unstable, "unstable"),
    ]
    .into_iter()
    .filter(|(s, _)| *s > select.stability)
    .find_map(|(s, flag)| {
        candidates
            .iter()
            .filter(|r| s.allows(r.status.as_str()))
            .max_by_key(|r| version_of(r))
            .map(|r| (r, flag))
    });
    let hint = match wider {
        Some((r, flag)) => format!(
            " ({} is {}: add --{flag} to allow it)",
            r.version,
            r.status.as_str(),
        ),
        None if releases.iter().any(|r| r.yanked) => {
            " (yanked versions are installed only when named exactly)".into()
        }
        None => String::new(),
    };
    Err(VerifyError::NotFound(format!(
        "{dist} has no {} release{range} that is not yanked{hint}",
        match select.stability {
            Stability::Stable => "stable",
            Stability::Testing => "stable or testing",
            Stability::Unstable => "",
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Dist {
        let r = |version: &str, status: &str, yanked: bool| {
            serde_json::from_value::<DistRelease>(json!({"version": version, "status": status,
                "sha256": "", "sha1": "", "size": 0, "meta_sha256": "", "provides": {}, "user": "u",
                "date": "", "index": 0, "yanked": yanked, "yank_reason": yanked.then_some("broken")}))
            .unwrap()
        };
        Dist {
            name: "d".into(),
            owners: Vec::new(),
            releases: vec![
                r("1.0.0", "stable", false),
                r("1.1.0", "stable", true),
                r("1.2.0", "testing", false),
                r("2.0.0", "unstable", false),
            ],
            history: Vec::new(),
            pgxn_user: None,
        }
    }

    fn pick(spec: &str, stability: Stability) -> Result<String, String> {
        let Target::Dist { want, .. } = parse(spec).unwrap() else {
            panic!("{spec} is not a dist");
        };
        choose(&doc(), "d", &Select { want, stability })
            .map(|c| c.release.version)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn statuses_ranges_and_yanks() {
        assert_eq!(pick("d", Stability::Stable).unwrap(), "1.0.0");
        assert_eq!(pick("d", Stability::Testing).unwrap(), "1.2.0");
        assert_eq!(pick("d", Stability::Unstable).unwrap(), "2.0.0");
        assert_eq!(pick("d<2", Stability::Unstable).unwrap(), "1.2.0");
        assert_eq!(pick("d>=1.1", Stability::Testing).unwrap(), "1.2.0");
        // The yanked 1.1.0 is chosen only by name, with a warning.
        assert_eq!(pick("d@1.1.0", Stability::Stable).unwrap(), "1.1.0");
        assert_eq!(pick("d==1.1.0", Stability::Stable).unwrap(), "1.1.0");
        let Target::Dist { want, .. } = parse("d=1.1.0").unwrap() else {
            unreachable!()
        };
        let c = choose(&doc(), "d", &Select::version(None)).unwrap();
        assert!(c.warning.is_none());
        let c = choose(
            &doc(),
            "d",
            &Select {
                want,
                stability: Stability::Stable,
            },
        )
        .unwrap();
        assert!(c.warning.unwrap().contains("yanked (broken)"));
        // An exact testing version needs no flag.
        assert_eq!(pick("d@1.2.0", Stability::Stable).unwrap(), "1.2.0");
        let e = pick("d>=1.2", Stability::Stable).unwrap_err();
        assert!(e.contains("1.2.0 is testing: add --testing"), "{e}");
        let e = pick("d@3.0.0", Stability::Unstable).unwrap_err();
        assert!(e.contains("no version 3.0.0"), "{e}");
    }

    #[test]
    fn requests_are_read_like_pgxnclient() {
        assert_eq!(
            parse("pair").unwrap(),
            Target::Dist {
                name: "pair".into(),
                want: Want::Newest
            }
        );
        assert_eq!(
            parse("pair@1.2.3").unwrap(),
            Target::Dist {
                name: "pair".into(),
                want: Want::Exact("1.2.3".into())
            }
        );
        assert!(matches!(
            parse("pair>=1.2").unwrap(),
            Target::Dist {
                want: Want::Range(_),
                ..
            }
        ));
        for bad in [
            "",
            "@1.0",
            "pair@",
            "pair>=x",
            "pa ir",
            "./nope.zip",
            "nope/dir",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            parse(dir.path().to_str().unwrap()).unwrap(),
            Target::Dir(dir.path().to_path_buf())
        );
    }
}
