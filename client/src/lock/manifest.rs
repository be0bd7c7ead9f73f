//! `pgext.toml`: what a PostgreSQL installation should have (`spec/client.md`, Manifests and
//! locks).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pgext_spec::prereqs::Range;
use serde::Deserialize;

use crate::Error;

/// The largest manifest read.
const MAX_MANIFEST: u64 = 1 << 20;
/// Dists one manifest may name.
pub const MAX_DISTS: usize = 256;

/// One dist of a manifest: a range, or a table with its range, registry and kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum DistSpec {
    Range(String),
    Table(DistTable),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct DistTable {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    registry: Option<String>,
    #[serde(default)]
    kind: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Postgres {
    #[serde(default)]
    pg_config: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    postgres: Postgres,
    #[serde(default)]
    dists: BTreeMap<String, DistSpec>,
    #[serde(default)]
    with_recommends: bool,
    #[serde(default)]
    status: Option<String>,
}

/// How a manifest wants a dist installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KindWanted {
    /// A binary when the trusted builders attest one, else source.
    Auto,
    /// A binary or nothing.
    Binary,
    /// Always source.
    Source,
}

/// One dist a manifest names.
#[derive(Debug, Clone)]
pub struct Wanted {
    /// Dist name.
    pub name: String,
    /// Versions allowed (PGXN range syntax: a bare version means at least that one).
    pub range: Range,
    /// The registry to take it from.
    pub registry: Option<String>,
    /// Binary or source.
    pub kind: KindWanted,
}

/// A read manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Where it was read.
    pub path: PathBuf,
    /// Its bytes' SHA-256 (the lock names the manifest it was made from).
    pub sha256: String,
    /// `[postgres] pg_config`.
    pub pg_config: Option<PathBuf>,
    /// The dists, by name.
    pub dists: Vec<Wanted>,
    /// Install what releases recommend.
    pub with_recommends: bool,
    /// `stable` (default), `testing` or `unstable`.
    pub status: crate::request::Stability,
}

fn bad(path: &Path, what: String) -> Error {
    Error::Request(format!("{}: {what}", path.display()))
}

impl Manifest {
    /// Reads and checks a manifest.
    ///
    /// # Errors
    /// [`Error::Request`] naming the file and what is wrong: not TOML, an unknown key, a dist
    /// name or range that cannot be read, an unknown kind or status.
    pub fn read(path: &Path) -> Result<Manifest, Error> {
        let meta = std::fs::metadata(path).map_err(|e| bad(path, e.to_string()))?;
        if meta.len() > MAX_MANIFEST {
            return Err(bad(path, format!("larger than {MAX_MANIFEST} bytes")));
        }
        let bytes = std::fs::read(path).map_err(|e| bad(path, e.to_string()))?;
        Manifest::parse(path, &bytes)
    }

    /// Reads a manifest from its bytes (`path` names it in errors).
    ///
    /// # Errors
    /// As [`Manifest::read`].
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Manifest, Error> {
        let text = std::str::from_utf8(bytes).map_err(|e| bad(path, e.to_string()))?;
        let file: File = toml::from_str(text).map_err(|e| bad(path, e.to_string()))?;
        if file.dists.len() > MAX_DISTS {
            return Err(bad(path, format!("more than {MAX_DISTS} dists")));
        }
        let mut dists = Vec::new();
        for (name, spec) in file.dists {
            if name.is_empty()
                || name.len() > 128
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
            {
                return Err(bad(path, format!("{name:?} is not a dist name")));
            }
            let table = match spec {
                DistSpec::Range(r) => DistTable {
                    version: Some(r),
                    registry: None,
                    kind: None,
                },
                DistSpec::Table(t) => t,
            };
            let range = match &table.version {
                Some(r) => Range::parse(r).map_err(|e| bad(path, format!("dists.{name}: {e}")))?,
                None => Range::any(),
            };
            let kind = match table.kind.as_deref() {
                None | Some("auto") => KindWanted::Auto,
                Some("binary") => KindWanted::Binary,
                Some("source") => KindWanted::Source,
                Some(k) => {
                    return Err(bad(
                        path,
                        format!("dists.{name}.kind is {k:?}: binary, source or auto"),
                    ));
                }
            };
            dists.push(Wanted {
                name,
                range,
                registry: table.registry,
                kind,
            });
        }
        let status = match file.status.as_deref() {
            None | Some("stable") => crate::request::Stability::Stable,
            Some("testing") => crate::request::Stability::Testing,
            Some("unstable") => crate::request::Stability::Unstable,
            Some(s) => {
                return Err(bad(
                    path,
                    format!("status is {s:?}: stable, testing or unstable"),
                ));
            }
        };
        Ok(Manifest {
            path: path.to_path_buf(),
            sha256: pgext_log::hex(&pgext_log::sha256(bytes)),
            pg_config: file.postgres.pg_config,
            dists,
            with_recommends: file.with_recommends,
            status,
        })
    }

    /// The lock file beside it: `pgext.lock` in the same folder.
    pub fn lock_path(&self) -> PathBuf {
        self.path.with_file_name("pgext.lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, String> {
        Manifest::parse(Path::new("pgext.toml"), text.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn the_documented_shape() {
        let m = parse(
            r#"
[postgres]
pg_config = "/usr/lib/postgresql/15/bin/pg_config"
[dists]
semver = ">= 0.40.0"
pair = { version = "0.1.8", registry = "main", kind = "source" }
"#,
        )
        .unwrap();
        assert_eq!(
            m.pg_config.as_deref(),
            Some(Path::new("/usr/lib/postgresql/15/bin/pg_config"))
        );
        let pair = m.dists.iter().find(|d| d.name == "pair").unwrap();
        assert_eq!(pair.registry.as_deref(), Some("main"));
        assert_eq!(pair.kind, KindWanted::Source);
        assert_eq!(pair.range.to_string(), ">= 0.1.8");
        let semver = m.dists.iter().find(|d| d.name == "semver").unwrap();
        assert_eq!(semver.kind, KindWanted::Auto);
        assert_eq!(m.lock_path(), Path::new("pgext.lock"));
    }

    #[test]
    fn bad_manifests_name_what_is_wrong() {
        for (text, says) in [
            ("[dists]\nsemver = \">= x\"\n", "dists.semver"),
            ("[dists]\n\"a b\" = \"1.0\"\n", "is not a dist name"),
            (
                "[dists]\npair = { kind = \"fast\" }\n",
                "binary, source or auto",
            ),
            ("[dists]\npair = { versoin = \"1\" }\n", "pgext.toml"),
            ("[dist]\npair = \"1\"\n", "unknown field"),
            ("status = \"beta\"\n", "stable, testing or unstable"),
            ("not toml", "pgext.toml"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(says), "{text:?}: {e}");
        }
    }
}
