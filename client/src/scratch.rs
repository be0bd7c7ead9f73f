//! A throwaway PostgreSQL for a build's `make installcheck`, that never touches the real
//! installation: a shadow of it (a copy of its programs, shared files and libraries) with the
//! build's staged files laid over it, and a cluster of that shadow on a Unix socket in a
//! temporary folder. PostgreSQL and `pg_config` find their folders relative to their own path,
//! so the shadow's server loads the staged extension as if it were installed, and a Makefile
//! run with the shadow's `pg_config` installs into the shadow. As root, the server runs as the
//! `postgres` account (initdb refuses root).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::Error;
use crate::pg::{Conn, PgInstall};

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Config(format!("{}: {e}", path.display()))
}

/// A running throwaway cluster; stopped and removed on drop.
#[derive(Debug)]
pub struct Scratch {
    dir: tempfile::TempDir,
    bindir: PathBuf,
    as_postgres: Option<u32>,
    port: u16,
    libs: Option<std::ffi::OsString>,
}

/// The folders outside the system's own where `ldd` finds the libraries of `program`: where a
/// relocatable build's programs find their libraries relative to themselves (an `$ORIGIN`
/// run path), which copies elsewhere no longer reach.
fn private_lib_dirs(program: &Path) -> Vec<PathBuf> {
    let Ok(out) = Command::new("ldd").arg(program).output() else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split("=>").nth(1))
        .filter_map(|r| r.split_whitespace().next())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .filter(|d| {
            !["/lib", "/usr/lib", "/lib64", "/usr/lib64"]
                .iter()
                .any(|s| d.starts_with(s))
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

fn under(root: &Path, abs: &Path) -> PathBuf {
    root.join(abs.strip_prefix("/").unwrap_or(abs))
}

/// Copies the folder `orig` to `shadow`: folders and files copied, links kept as links. Copies,
/// not links to the real files: a Makefile that writes into the shadow (with `cp`, which
/// follows links) writes into the copy.
fn copy_dir(orig: &Path, shadow: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(shadow).map_err(io(shadow))?;
    let entries = match std::fs::read_dir(orig) {
        // A folder removed while the copy ran (see below).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        r => r.map_err(io(orig))?,
    };
    for e in entries {
        let e = e.map_err(io(orig))?;
        let to = shadow.join(e.file_name());
        let copied = e.file_type().and_then(|kind| {
            if kind.is_dir() {
                return Ok(None);
            }
            if kind.is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(e.path())?, &to)?;
            } else {
                std::fs::copy(e.path(), &to)?;
            }
            Ok(Some(()))
        });
        match copied {
            Ok(None) => copy_dir(&e.path(), &to)?,
            Ok(Some(())) => {}
            // Removed while the copy ran (another install's uninstall): it is not part of
            // the installation any more.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(io(&to)(err)),
        }
    }
    Ok(())
}

fn postgres_uid() -> Option<u32> {
    let out = Command::new("id").args(["-u", "postgres"]).output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

impl Scratch {
    /// Builds the shadow of `pg` with the files staged under `stage` (a `DESTDIR`) laid over
    /// it, creates a cluster and starts it. Commands and their output go to `log`.
    ///
    /// # Errors
    /// When the shadow cannot be made or the server does not start.
    pub fn start(pg: &PgInstall, stage: &Path, log: &Path) -> Result<Scratch, Error> {
        let dir = tempfile::tempdir().map_err(|e| Error::Config(e.to_string()))?;
        let root = dir.path().join("pg");
        let as_postgres = if crate::target::is_root() {
            Some(postgres_uid().ok_or_else(|| {
                Error::Postgres(
                    "running as root, installcheck needs a `postgres` account to run the server as"
                        .into(),
                )
            })?)
        } else {
            None
        };
        // The shadow: the installation's programs, shared files and libraries, copied.
        let bindir = under(&root, &pg.bindir);
        for d in [&pg.bindir, &pg.sharedir, &pg.pkglibdir] {
            let to = under(&root, d);
            if !to.exists() {
                copy_dir(d, &to)?;
            }
        }
        // The staged files over it.
        let mut dirs = vec![stage.to_path_buf()];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).map_err(io(&d))?.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    dirs.push(e.path());
                    continue;
                }
                let Ok(rel) = e.path().strip_prefix(stage).map(Path::to_path_buf) else {
                    continue;
                };
                let abs = Path::new("/").join(&rel);
                if ![&pg.sharedir, &pg.pkglibdir]
                    .iter()
                    .any(|b| abs.starts_with(b))
                {
                    continue;
                }
                let to = under(&root, &abs);
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent).map_err(io(parent))?;
                }
                let _ = std::fs::remove_file(&to);
                std::fs::copy(e.path(), &to).map_err(io(&to))?;
            }
        }
        let run = |dir: &Path| {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).map_err(io(dir))
        };
        run(dir.path())?;
        let data = dir.path().join("data");
        let sock = dir.path().join("sock");
        let run_dir = dir.path().join("run");
        for d in [&data, &sock, &run_dir] {
            std::fs::create_dir_all(d).map_err(io(d))?;
            if let Some(uid) = as_postgres {
                std::os::unix::fs::chown(d, Some(uid), None).map_err(io(d))?;
            }
        }
        // Sockets only: the port just names the socket file, so clusters never collide.
        let port = 5432;
        let mut libs: Vec<PathBuf> = private_lib_dirs(&pg.bindir.join("postgres"));
        libs.extend(private_lib_dirs(&pg.bindir.join("initdb")));
        libs.sort();
        libs.dedup();
        let libs = (!libs.is_empty())
            .then(|| std::env::join_paths(&libs).ok())
            .flatten();
        let s = Scratch {
            dir,
            bindir,
            as_postgres,
            port,
            libs,
        };
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(io(log))?;
        let mut initdb = s.server_cmd("initdb");
        initdb.arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ]);
        s.run(initdb, &log_file, "initdb")?;
        let mut start = s.server_cmd("pg_ctl");
        start
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(run_dir.join("server.log"))
            .args(["-w", "-t", "60", "-o"])
            .arg(format!(
                "-p {port} -c listen_addresses='' -k {} -c fsync=off",
                sock.display()
            ))
            .arg("start");
        s.run(start, &log_file, "pg_ctl start")?;
        Ok(s)
    }

    fn server_cmd(&self, prog: &str) -> Command {
        let mut c = match self.as_postgres {
            Some(_) => {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(self.bindir.join(prog));
                c
            }
            None => Command::new(self.bindir.join(prog)),
        };
        if let Some(libs) = &self.libs {
            c.env("LD_LIBRARY_PATH", libs);
        }
        c.current_dir("/").stdin(Stdio::null());
        c
    }

    fn run(&self, mut cmd: Command, log: &std::fs::File, step: &str) -> Result<(), Error> {
        use std::io::Write as _;
        let _ = writeln!(&*log, "$ {cmd:?}");
        let out = cmd
            .output()
            .map_err(|e| Error::Postgres(format!("{step}: {e}")))?;
        let _ = (&*log).write_all(&out.stdout);
        let _ = (&*log).write_all(&out.stderr);
        if !out.status.success() {
            let server_log =
                std::fs::read_to_string(self.dir.path().join("run").join("server.log"))
                    .unwrap_or_default();
            let _ = (&*log).write_all(server_log.as_bytes());
            return Err(Error::Postgres(format!(
                "{step} of the throwaway cluster failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    /// The shadow installation, as its own `pg_config` describes it: builds and tests run with
    /// it write into the shadow, never into the real installation.
    ///
    /// # Errors
    /// When the shadow has no `pg_config` that answers.
    pub fn pg(&self) -> Result<PgInstall, Error> {
        PgInstall::find(Some(&self.bindir.join("pg_config")))
    }

    /// What programs of the shadow need in their environment: the folders of the libraries
    /// the real programs find relative to themselves (`pg_regress` of a relocatable build).
    pub fn env(&self) -> Vec<(String, String)> {
        self.libs
            .iter()
            .map(|l| {
                (
                    "LD_LIBRARY_PATH".to_string(),
                    l.to_string_lossy().into_owned(),
                )
            })
            .collect()
    }

    /// Where to connect: the socket folder, as the `postgres` superuser.
    pub fn conn(&self) -> Conn {
        Conn {
            dbname: None,
            host: Some(self.dir.path().join("sock").display().to_string()),
            port: Some(self.port),
            user: Some("postgres".into()),
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let mut stop = self.server_cmd("pg_ctl");
        stop.arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = stop.status();
    }
}
