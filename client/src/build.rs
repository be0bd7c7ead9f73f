//! Building and installing a PGXS project like a careful DBA: `./configure` if present, `make`
//! with `PG_CONFIG` set and its bindir first in `PATH`, a staged `make install DESTDIR=…` that
//! records the exact file manifest, then the real install (through `sudo` when asked), and
//! removal of exactly that manifest. Every command's output goes to a log kept on failure.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use pgext_spec::archive::{Limits, read_archive};

use crate::Error;
use crate::pg::{Conn, PgInstall};

/// Writes a release archive's files under `into` (the archive's top folder removed). Archives
/// are read with the registry's safety limits: no links, no paths out of `into`, no bombs.
///
/// # Errors
/// When the archive is unsafe or unreadable, or a file cannot be written.
pub fn unpack(archive: &[u8], into: &Path) -> Result<(), Error> {
    let files = read_archive(archive, &Limits::default())
        .map_err(|e| Error::Release(format!("the archive cannot be unpacked: {e}")))?;
    for (path, (data, executable)) in &files.files {
        let dest = into.join(path);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&dest, data).map_err(io(&dest))?;
        if *executable {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755))
                .map_err(io(&dest))?;
        }
    }
    Ok(())
}

/// Copies a source tree (regular files and folders, `.git` left out) to `into`, so a build
/// never writes into the user's checkout.
///
/// # Errors
/// When something cannot be read or written.
pub fn copy_tree(from: &Path, into: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(into).map_err(io(into))?;
    for e in std::fs::read_dir(from).map_err(io(from))? {
        let e = e.map_err(io(from))?;
        let (src, dest) = (e.path(), into.join(e.file_name()));
        let kind = e.file_type().map_err(io(&src))?;
        if kind.is_dir() && e.file_name() != ".git" {
            copy_tree(&src, &dest)?;
        } else if kind.is_file() {
            std::fs::copy(&src, &dest).map_err(io(&src))?;
        }
    }
    Ok(())
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Config(format!("{}: {e}", path.display()))
}

/// Runs build steps for one project, logging every command and its output to one file.
#[derive(Debug)]
pub struct Builder<'a> {
    pg: &'a PgInstall,
    dir: PathBuf,
    log_path: PathBuf,
    log: File,
    sudo: bool,
    make_args: Vec<String>,
    env: Vec<(String, String)>,
}

impl<'a> Builder<'a> {
    /// A builder for the project in `dir`, logging to `log_path`; `sudo` runs the real install
    /// and removals through `sudo`.
    ///
    /// # Errors
    /// When the log cannot be created.
    pub fn new(
        pg: &'a PgInstall,
        dir: &Path,
        log_path: &Path,
        sudo: bool,
    ) -> Result<Builder<'a>, Error> {
        if let Some(parent) = log_path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        Ok(Builder {
            pg,
            dir: dir.to_path_buf(),
            log_path: log_path.to_path_buf(),
            log: File::create(log_path).map_err(io(log_path))?,
            sudo,
            make_args: Vec::new(),
            env: Vec::new(),
        })
    }

    /// The same project, log, arguments and environment, built against another installation
    /// (a throwaway shadow of this one, say).
    ///
    /// # Errors
    /// When the log cannot be shared.
    pub fn for_pg<'b>(&self, pg: &'b PgInstall) -> Result<Builder<'b>, Error> {
        Ok(Builder {
            pg,
            dir: self.dir.clone(),
            log_path: self.log_path.clone(),
            log: self.log.try_clone().map_err(io(&self.log_path))?,
            sudo: self.sudo,
            make_args: self.make_args.clone(),
            env: self.env.clone(),
        })
    }

    /// Adds `env` to every step's environment.
    pub fn with_env(mut self, env: Vec<(String, String)>) -> Builder<'a> {
        self.env.extend(env);
        self
    }

    /// Passes `args` (`CC=clang`, `COPT=…`) to every `make`, and `env` to every step.
    pub fn with(mut self, args: Vec<String>, env: Vec<(String, String)>) -> Builder<'a> {
        self.make_args = args;
        self.env = env;
        self
    }

    /// The log's path.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    fn make(&self, args: &[&str], sudo: bool) -> Command {
        let pg_config = format!("PG_CONFIG={}", self.pg.pg_config_path().display());
        let mut cmd = if sudo {
            // sudo resets PATH; `env` puts the bindir back in front.
            let mut c = Command::new("sudo");
            c.arg("env")
                .arg(format!("PATH={}", self.pg.path_env().to_string_lossy()))
                .arg("make");
            c
        } else {
            let mut c = Command::new("make");
            c.env("PATH", self.pg.path_env());
            c
        };
        cmd.arg(pg_config).args(&self.make_args).args(args);
        cmd
    }

    /// Runs one step; its output goes to the log. A failure names the step and the log.
    fn run(&mut self, step: &str, mut cmd: Command) -> Result<(), Error> {
        use std::io::Write as _;
        let _ = writeln!(self.log, "$ {cmd:?}");
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(self.log.try_clone().map_err(io(&self.log_path))?)
            .stderr(self.log.try_clone().map_err(io(&self.log_path))?);
        let status = cmd.status().map_err(|e| Error::Build {
            step: step.to_string(),
            log: self.log_path.clone(),
            detail: format!("cannot run it: {e}"),
        })?;
        if status.success() {
            Ok(())
        } else {
            Err(Error::Build {
                step: step.to_string(),
                log: self.log_path.clone(),
                detail: status.to_string(),
            })
        }
    }

    /// `./configure` when the project has one, then `make`.
    ///
    /// # Errors
    /// [`Error::Build`] naming the step and the log.
    pub fn build(&mut self) -> Result<(), Error> {
        let configure = self.dir.join("configure");
        if configure.is_file() {
            use std::os::unix::fs::PermissionsExt as _;
            // Archives made on some systems lose the executable bit; sh runs it anyway.
            let executable = configure
                .metadata()
                .is_ok_and(|m| m.permissions().mode() & 0o111 != 0);
            let mut cmd = if executable {
                Command::new("./configure")
            } else {
                let mut c = Command::new("sh");
                c.arg("./configure");
                c
            };
            cmd.env("PATH", self.pg.path_env())
                .env("PG_CONFIG", self.pg.pg_config_path());
            self.run("configure", cmd)?;
        }
        let make = self.make(&[], false);
        self.run("make", make)
    }

    /// `make install DESTDIR=…` into a scratch folder; returns the absolute paths the real
    /// install will write, sorted.
    ///
    /// # Errors
    /// [`Error::Build`] when the staged install fails or installs nothing.
    pub fn stage(&mut self) -> Result<Vec<PathBuf>, Error> {
        let stage = tempfile::tempdir().map_err(|e| Error::Config(e.to_string()))?;
        self.stage_to(stage.path())
    }

    /// [`Builder::stage`] into `stage`, kept for the caller.
    ///
    /// # Errors
    /// [`Error::Build`] when the staged install fails or installs nothing.
    pub fn stage_to(&mut self, stage: &Path) -> Result<Vec<PathBuf>, Error> {
        let destdir = format!("DESTDIR={}", stage.display());
        let make = self.make(&["install", &destdir], false);
        self.run("make install (staged)", make)?;
        let mut files = Vec::new();
        let mut dirs = vec![stage.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            for e in std::fs::read_dir(&dir).map_err(io(&dir))?.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    dirs.push(e.path());
                } else if let Ok(rel) = e.path().strip_prefix(stage) {
                    files.push(Path::new("/").join(rel));
                }
            }
        }
        files.sort();
        if files.is_empty() {
            return Err(Error::Build {
                step: "make install (staged)".into(),
                log: self.log_path.clone(),
                detail: "it installed no file".into(),
            });
        }
        Ok(files)
    }

    /// The real `make install`; then checks that every file of `manifest` is in place.
    ///
    /// # Errors
    /// [`Error::Install`] when the target folders are not writable and `sudo` was not
    /// asked for; [`Error::Build`] when the install fails.
    pub fn install(&mut self, manifest: &[PathBuf]) -> Result<(), Error> {
        if !self.sudo {
            if let Some(dir) = manifest.iter().find_map(|f| not_writable(f)) {
                return Err(Error::Install(format!(
                    "{} is not writable by you: run again with --sudo, or as a user who may write there",
                    dir.display()
                )));
            }
        }
        let make = self.make(&["install"], self.sudo);
        self.run("make install", make)?;
        if let Some(missing) = manifest.iter().find(|f| f.symlink_metadata().is_err()) {
            return Err(Error::Build {
                step: "make install".into(),
                log: self.log_path.clone(),
                detail: format!(
                    "{} is missing after the install, though the staged install wrote it",
                    missing.display()
                ),
            });
        }
        Ok(())
    }

    /// `make installcheck` against the database `conn` names (pg_regress creates and drops
    /// it), with the connection's host, port and user.
    ///
    /// # Errors
    /// [`Error::Build`]; the regression diffs, if any, are appended to the log.
    pub fn installcheck(&mut self, conn: &Conn) -> Result<(), Error> {
        let db = conn.dbname.as_ref().map(|d| format!("CONTRIB_TESTDB={d}"));
        let mut make = self.make(&["installcheck"], false);
        make.args(db.iter());
        Conn {
            dbname: None,
            ..conn.clone()
        }
        .apply(&mut make);
        let result = self.run("make installcheck", make);
        if result.is_err() {
            use std::io::Write as _;
            if let Ok(diffs) = std::fs::read(self.dir.join("regression.diffs")) {
                let _ = self.log.write_all(b"\n--- regression.diffs ---\n");
                let _ = self.log.write_all(&diffs);
            }
        }
        result
    }
}

impl PgInstall {
    /// The `pg_config` as a path: a bare name is looked up in `PATH`, so builds that change
    /// `PATH` still use this one.
    pub fn pg_config_path(&self) -> PathBuf {
        if self.pg_config.components().count() > 1 {
            return self.pg_config.clone();
        }
        std::env::var_os("PATH")
            .into_iter()
            .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .map(|d| d.join(&self.pg_config))
            .find(|p| p.is_file())
            .unwrap_or_else(|| self.bindir.join("pg_config"))
    }
}

/// The first folder on `file`'s path that exists, when this user cannot create files in it.
fn not_writable(file: &Path) -> Option<PathBuf> {
    let dir = file.ancestors().skip(1).find(|d| d.is_dir())?;
    tempfile::tempfile_in(dir)
        .is_err()
        .then(|| dir.to_path_buf())
}

/// Removes exactly `files` (through `sudo` when asked); a file already gone is not an error.
/// Returns the files removed.
///
/// # Errors
/// [`Error::Install`] naming the first file that could not be removed.
pub fn remove_files(files: &[PathBuf], sudo: bool) -> Result<Vec<PathBuf>, Error> {
    let present: Vec<PathBuf> = files
        .iter()
        .filter(|f| f.symlink_metadata().is_ok())
        .cloned()
        .collect();
    if sudo && !present.is_empty() {
        let out = Command::new("sudo")
            .args(["rm", "-f", "--"])
            .args(&present)
            .output()
            .map_err(|e| Error::Install(format!("cannot run sudo rm: {e}")))?;
        if !out.status.success() {
            return Err(Error::Install(format!(
                "sudo rm failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    } else {
        for f in &present {
            std::fs::remove_file(f).map_err(|e| {
                Error::Install(format!(
                    "cannot remove {}: {e}{}",
                    f.display(),
                    if e.kind() == std::io::ErrorKind::PermissionDenied {
                        " (run again with --sudo)"
                    } else {
                        ""
                    }
                ))
            })?;
        }
    }
    Ok(present)
}
