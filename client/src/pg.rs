//! Finding PostgreSQL the way psql and pgxnclient do: `pg_config` from `PATH` (or named), the
//! connection from the `PG*` environment variables unless `-d/-h/-p/-U` override them.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Error;

/// One PostgreSQL installation, as its `pg_config` describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PgInstall {
    /// The `pg_config` used.
    pub pg_config: PathBuf,
    /// `--bindir`: where `psql` is, and first in `PATH` for builds.
    pub bindir: PathBuf,
    /// `--sharedir`: control files and scripts go to `extension/` below it.
    pub sharedir: PathBuf,
    /// `--pkglibdir`: shared libraries.
    pub pkglibdir: PathBuf,
    /// `--version`, e.g. `PostgreSQL 15.8 (Debian 15.8-0+deb12u1)`.
    pub version: String,
    /// Everything `pg_config` printed when asked with no flag (`BINDIR`, `CONFIGURE`, `CC`, …),
    /// by name: one run answers every later question.
    #[serde(skip)]
    pub values: std::collections::BTreeMap<String, String>,
}

/// The name `pg_config` prints for a flag: `--includedir-server` → `INCLUDEDIR-SERVER`.
fn flag_name(flag: &str) -> String {
    flag.trim_start_matches("--").to_ascii_uppercase()
}

/// `pg_config FLAG`, or everything it prints for an empty flag.
fn pg_config_value(pg_config: &Path, flag: &str) -> Result<String, Error> {
    let mut cmd = Command::new(pg_config);
    if !flag.is_empty() {
        cmd.arg(flag);
    }
    let out = cmd.output().map_err(|e| {
        Error::Postgres(format!(
            "cannot run {}: {e}. Install PostgreSQL's development package, put its pg_config in PATH, or pass --pg-config",
            pg_config.display()
        ))
    })?;
    if !out.status.success() {
        return Err(Error::Postgres(format!(
            "{} {flag} failed: {}",
            pg_config.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl PgInstall {
    /// Asks `pg_config` (the one given, else the first in `PATH`).
    ///
    /// # Errors
    /// When it cannot be run.
    pub fn find(pg_config: Option<&Path>) -> Result<PgInstall, Error> {
        let pg_config = pg_config.map_or_else(|| PathBuf::from("pg_config"), Path::to_path_buf);
        // `pg_config` alone prints `NAME = value` for everything it knows.
        let values: std::collections::BTreeMap<String, String> = pg_config_value(&pg_config, "")?
            .lines()
            .filter_map(|l| l.split_once(" = "))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let value = |flag: &str| match values.get(&flag_name(flag)) {
            Some(v) => Ok(v.clone()),
            None => pg_config_value(&pg_config, flag),
        };
        Ok(PgInstall {
            bindir: value("--bindir")?.into(),
            sharedir: value("--sharedir")?.into(),
            pkglibdir: value("--pkglibdir")?.into(),
            version: value("--version")?,
            values,
            pg_config,
        })
    }

    /// No installation: for commands that install nothing (`pgext pack`) on a machine that may
    /// have no PostgreSQL.
    pub fn absent() -> PgInstall {
        PgInstall {
            pg_config: PathBuf::from("pg_config"),
            bindir: PathBuf::new(),
            sharedir: PathBuf::new(),
            pkglibdir: PathBuf::new(),
            version: String::new(),
            values: std::collections::BTreeMap::new(),
        }
    }

    /// What `pg_config FLAG` answers (from the one run of [`PgInstall::find`] when it printed
    /// it, else by running it).
    ///
    /// # Errors
    /// When `pg_config` cannot answer.
    pub fn value(&self, flag: &str) -> Result<String, Error> {
        match self.values.get(&flag_name(flag)) {
            Some(v) => Ok(v.clone()),
            None => pg_config_value(&self.pg_config, flag),
        }
    }

    /// Where control files and extension scripts live.
    pub fn extension_dir(&self) -> PathBuf {
        self.sharedir.join("extension")
    }

    /// `PATH` with this installation's bindir first: some Makefiles call `pg_config` by name
    /// and ignore `PG_CONFIG`.
    pub fn path_env(&self) -> std::ffi::OsString {
        let mut dirs = vec![self.bindir.clone()];
        if let Some(path) = std::env::var_os("PATH") {
            dirs.extend(std::env::split_paths(&path));
        }
        std::env::join_paths(dirs).unwrap_or_default()
    }

    /// A key naming this installation in the client's records.
    pub fn key(&self) -> String {
        self.sharedir.display().to_string()
    }
}

/// Where to connect. Unset fields leave libpq's `PG*` environment variables and defaults in
/// charge, as for psql.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conn {
    /// `-d`: database name (or a connection string).
    pub dbname: Option<String>,
    /// `-h`: host or socket folder.
    pub host: Option<String>,
    /// `-p`: port.
    pub port: Option<u16>,
    /// `-U`: user.
    pub user: Option<String>,
}

impl Conn {
    /// Sets the `PG*` variables this connection overrides on `cmd` (psql and pg_regress both
    /// read them).
    pub fn apply(&self, cmd: &mut Command) {
        if let Some(d) = &self.dbname {
            cmd.env("PGDATABASE", d);
        }
        if let Some(h) = &self.host {
            cmd.env("PGHOST", h);
        }
        if let Some(p) = self.port {
            cmd.env("PGPORT", p.to_string());
        }
        if let Some(u) = &self.user {
            cmd.env("PGUSER", u);
        }
    }
}

/// Runs SQL with the installation's psql and returns its unaligned, tuples-only output.
///
/// # Errors
/// [`Error::Postgres`] with psql's message.
pub fn psql(pg: &PgInstall, conn: &Conn, sql: &str) -> Result<String, Error> {
    let mut cmd = Command::new(pg.bindir.join("psql"));
    cmd.args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql]);
    conn.apply(&mut cmd);
    let out = cmd
        .output()
        .map_err(|e| Error::Postgres(format!("cannot run psql: {e}")))?;
    if !out.status.success() {
        return Err(Error::Postgres(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// An SQL identifier, quoted.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
