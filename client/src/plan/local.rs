//! What the PostgreSQL installation already has: its version, and the extensions whose control
//! files are in its extension folder (those it shipped with, such as plpgsql and contrib's
//! dblink, and those pgext installed).

use std::collections::BTreeMap;

use pgext_spec::prereqs::{Range, Version, control_value};
use pgext_spec::requirements::Platform;

use crate::Error;
use crate::installed;
use crate::pg::PgInstall;
use crate::trust::State;

/// The longest control file read.
const MAX_CONTROL: u64 = 64 << 10;
/// Control files read from one extension folder.
const MAX_CONTROLS: usize = 10_000;

/// An extension the installation has.
#[derive(Debug, Clone)]
pub struct Present {
    /// Its `default_version`.
    pub version: String,
    /// `DIST VERSION` when pgext installed it.
    pub by_pgext: Option<String>,
}

impl Present {
    /// How it got there.
    pub fn how(&self) -> String {
        match &self.by_pgext {
            Some(d) => format!("installed by pgext ({d})"),
            None => "ships with PostgreSQL".into(),
        }
    }
}

/// The installation, as resolution sees it.
#[derive(Debug, Clone)]
pub struct Local {
    /// `pg_config --version`'s version.
    pub version: Option<Version>,
    /// `pg_config --version`, as printed.
    pub version_line: String,
    /// The `pg_config` asked.
    pub pg_config: String,
    /// This machine, as META platforms name it; `None` for a lock, which is applied on other
    /// hosts (each judges its own platform when it syncs).
    pub platform: Option<Platform>,
    extensions: BTreeMap<String, Present>,
}

impl Local {
    /// Reads the installation `pg` and pgext's records of it; what pgext installed counts only
    /// with `with_pgext`.
    ///
    /// # Errors
    /// When the records cannot be read.
    pub fn read(
        pg: &PgInstall,
        state: &State,
        with_pgext: bool,
        prefix: Option<&std::path::Path>,
    ) -> Result<Local, Error> {
        let mut extensions = BTreeMap::new();
        let records = installed::list(state, Some(&pg.key()))?;
        // A prefix's control files too (`install --prefix`): the server finds them there.
        let dirs = [
            Some(pg.extension_dir()),
            prefix.map(|p| p.join("share/extension")),
        ];
        for dir in dirs
            .iter()
            .flatten()
            .filter_map(|d| std::fs::read_dir(d).ok())
        {
            for e in dir.flatten().take(MAX_CONTROLS) {
                let path = e.path();
                let (Some(stem), Some("control")) = (
                    path.file_stem().and_then(|s| s.to_str()),
                    path.extension().and_then(|s| s.to_str()),
                ) else {
                    continue;
                };
                let small = e.metadata().is_ok_and(|m| m.len() <= MAX_CONTROL);
                let Some(text) = small.then(|| std::fs::read_to_string(&path).ok()).flatten()
                else {
                    continue;
                };
                let by_pgext = records
                    .iter()
                    .find(|r| r.files.contains(&path))
                    .map(|r| format!("{} {}", r.dist, r.version));
                if by_pgext.is_some() && !with_pgext {
                    continue;
                }
                extensions.insert(
                    stem.to_ascii_lowercase(),
                    Present {
                        version: control_value(&text, "default_version").unwrap_or_default(),
                        by_pgext,
                    },
                );
            }
        }
        Ok(Local {
            version: Version::of_postgres(&pg.version),
            version_line: pg.version.clone(),
            pg_config: pg.pg_config.display().to_string(),
            platform: with_pgext.then(crate::target::platform),
            extensions,
        })
    }

    /// The extension `name` (lowercase), when the installation has it.
    pub fn present(&self, name: &str) -> Option<&Present> {
        self.extensions.get(name)
    }

    /// Checks that this PostgreSQL is in `range`, which `label` requires.
    ///
    /// # Errors
    /// [`Error::Plan`] saying what is required, what was found, and which dist asked.
    pub fn check_postgres(
        &self,
        range: &Range,
        label: &str,
        chain: &[String],
    ) -> Result<(), Error> {
        match &self.version {
            Some(v) if range.matches(v) => Ok(()),
            found => {
                let via = if chain.len() > 1 {
                    format!(" (via {})", chain[..chain.len() - 1].join(" → "))
                } else {
                    String::new()
                };
                Err(Error::Plan(format!(
                    "{label} requires PostgreSQL {range}{via}, but {} is {}",
                    self.pg_config,
                    found.as_ref().map_or_else(
                        || format!("{:?}, a version pgext cannot read", self.version_line),
                        |v| format!("PostgreSQL {v}")
                    )
                )))
            }
        }
    }
}
