//! What this machine is, as binary packages name targets (`spec/binary.md`, Targets): the OS
//! and its release, the architecture, the C library, the PostgreSQL major and the server ABI
//! `pg_config` reports; and the C compiler a PostgreSQL's builds need.

use std::path::Path;
use std::process::{Command, Stdio};

use pgext_spec::binary::Target;
use pgext_spec::requirements::{Platform, normal_arch};

use crate::Error;
use crate::pg::PgInstall;

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The major version in `pg_config --version` (`PostgreSQL 15.14 (Debian …)` → 15).
///
/// # Errors
/// When the text names no version.
pub fn pg_major(version: &str) -> Result<u64, Error> {
    version
        .split_whitespace()
        .nth(1)
        .and_then(|v| {
            v.split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|m| m.parse().ok())
        })
        .ok_or_else(|| Error::Postgres(format!("cannot read a major version in {version:?}")))
}

/// A value from an os-release file (`ID=debian`, `VERSION_ID="12"`).
pub(crate) fn os_release_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let v = l.strip_prefix(key)?.strip_prefix('=')?;
        Some(v.trim().trim_matches('"').to_string())
    })
}

/// This machine's os-release file (`/etc/os-release`, else `/usr/lib/os-release`).
pub(crate) fn os_release() -> Option<String> {
    std::fs::read_to_string("/etc/os-release")
        .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
        .ok()
}

/// Whether this program runs as root.
pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// Lowercase, with characters a target field may not hold dropped.
fn clean(s: &str) -> String {
    s.to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '_')
        .collect()
}

/// The OS release: `ID` and `VERSION_ID` of os-release on Linux, `uname -r` elsewhere.
fn os_version(os: &str) -> String {
    if os == "linux" {
        let text = os_release().unwrap_or_default();
        let id = os_release_value(&text, "ID").unwrap_or_else(|| "linux".into());
        let v = os_release_value(&text, "VERSION_ID").unwrap_or_default();
        return clean(&format!("{id}{v}"));
    }
    clean(&output("uname", &["-r"]).unwrap_or_default())
}

/// The C library: `glibc2.36` from `getconf`, `musl1.2` from its loader, else `system`.
fn libc() -> String {
    if let Some(v) = output("getconf", &["GNU_LIBC_VERSION"]) {
        // "glibc 2.36"
        return clean(&v.replace(' ', ""));
    }
    // musl's ldd prints its version on stderr and exits 1.
    if let Ok(out) = Command::new("ldd").arg("--version").output() {
        let text = String::from_utf8_lossy(&out.stderr).to_string();
        if text.contains("musl") {
            let v = text
                .lines()
                .find_map(|l| l.strip_prefix("Version "))
                .unwrap_or_default();
            return clean(&format!("musl{v}"));
        }
    }
    "system".into()
}

/// The server ABI `pg_config` can tell: the block size (`--with-blocksize`, in kB) and whether
/// float8 passes by value (64-bit builds unless configured off, which only PostgreSQL 12 and
/// older allowed; the server runs on this machine, whose pointer width is this program's). The other values the magic
/// block checks (NAMEDATALEN, FUNC_MAX_ARGS, INDEX_MAX_KEYS) change only by editing a header
/// `pg_config` does not report; a module built with others is refused by the server at LOAD.
pub fn abi(configure: &str) -> String {
    let flag = |name: &str| {
        configure.split_whitespace().find_map(|w| {
            w.trim_matches('\'')
                .strip_prefix(name)
                .map(|v| v.trim_start_matches('=').to_string())
        })
    };
    let blcksz = flag("--with-blocksize")
        .and_then(|k| k.parse::<u64>().ok())
        .map_or(8192, |k| k * 1024);
    let byval = cfg!(target_pointer_width = "64") && flag("--disable-float8-byval").is_none();
    format!("blcksz={blcksz},float8byval={}", u8::from(byval))
}

/// This machine's target for `pg`, with `toolchain` naming the compiler (`none` when the
/// target is only matched against, never built for).
///
/// # Errors
/// When `pg_config` cannot be asked.
pub fn local(pg: &PgInstall, toolchain: &str) -> Result<Target, Error> {
    let os = clean(&output("uname", &["-s"]).unwrap_or_else(|| std::env::consts::OS.into()));
    let arch = clean(&output("uname", &["-m"]).unwrap_or_else(|| std::env::consts::ARCH.into()));
    let target = Target {
        os_version: os_version(&os),
        os,
        arch,
        libc: libc(),
        pg: pg_major(&pg.version)?,
        abi: abi(&pg.value("--configure")?),
        toolchain: toolchain.to_string(),
    };
    target.check().map_err(Error::Postgres)?;
    Ok(target)
}

/// This machine as META platforms name it (`spec/requirements.md`, Platforms): the OS and
/// kernel release from `uname`, the C library, the architecture.
pub fn platform() -> Platform {
    let os = clean(&output("uname", &["-s"]).unwrap_or_else(|| std::env::consts::OS.into()));
    let arch = output("uname", &["-m"]).unwrap_or_else(|| std::env::consts::ARCH.into());
    let c = libc();
    let libc = [("glibc", "gnu"), ("musl", "musl")]
        .into_iter()
        .find_map(|(prefix, kind)| {
            c.strip_prefix(prefix)
                .map(|v| (kind.to_string(), v.to_string()))
        });
    Platform {
        os,
        version: output("uname", &["-r"]).unwrap_or_default(),
        libc,
        arch: normal_arch(&arch),
    }
}

/// The C compiler builds for a PostgreSQL use, and what to call it in a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiler {
    /// The command (`CC=` for make), `None` for the one `pg_config` names.
    pub cc: Option<String>,
    /// `{name}-{version}`, as targets record it.
    pub toolchain: String,
}

/// `gcc (Debian 12.2.0-14) 12.2.0` → `gcc-12.2.0`; `Debian clang version 14.0.6` →
/// `clang-14.0.6`.
pub fn toolchain_name(version_line: &str) -> String {
    let name = if version_line.contains("clang") {
        "clang"
    } else if version_line.contains("gcc") || version_line.contains("GCC") {
        "gcc"
    } else {
        "cc"
    };
    let version = version_line
        .split_whitespace()
        .rev()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()) && w.contains('.'))
        .map(|w| w.split('-').next().unwrap_or(w))
        .unwrap_or("unknown");
    format!("{name}-{}", clean(version))
}

fn compiles(cc: &str, cflags: &str, dir: &Path) -> bool {
    let src = dir.join("probe.c");
    if std::fs::write(
        &src,
        "int pgext_probe(void);\nint pgext_probe(void) { return 0; }\n",
    )
    .is_err()
    {
        return false;
    }
    let mut cmd = Command::new(cc);
    cmd.args(cflags.split_whitespace())
        .args(["-c", "-o"])
        .arg(dir.join("probe.o"))
        .arg(&src)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd.status().is_ok_and(|s| s.success())
}

/// The compiler for builds against `pg`: `$CC` when set; else the one `pg_config --cc` names,
/// when it takes `pg_config --cflags`; else `clang` or `cc` when those do. PostgreSQL built
/// with a newer compiler than this machine's (the embedded PostgreSQL 18 wheels name clang
/// warnings gcc 12 refuses) builds with a compiler that understands its flags.
///
/// # Errors
/// [`Error::Postgres`] when no compiler takes the flags.
pub fn compiler(pg: &PgInstall) -> Result<Compiler, Error> {
    let named = |cc: &str| {
        let line = output(cc, &["--version"])?;
        Some(toolchain_name(line.lines().next().unwrap_or_default()))
    };
    if let Ok(cc) = std::env::var("CC") {
        if !cc.trim().is_empty() {
            let first = cc.split_whitespace().next().unwrap_or_default().to_string();
            return Ok(Compiler {
                toolchain: named(&first).unwrap_or_else(|| "cc-unknown".into()),
                cc: Some(cc),
            });
        }
    }
    let own = pg.value("--cc")?;
    let cflags = format!("{} {}", pg.value("--cflags")?, pg.value("--cflags_sl")?);
    let dir = tempfile::tempdir().map_err(|e| Error::Config(e.to_string()))?;
    let own_first = own.split_whitespace().next().unwrap_or("cc").to_string();
    for (cc, set) in [
        (own_first.as_str(), false),
        ("clang", true),
        ("gcc", true),
        ("cc", true),
    ] {
        if compiles(cc, &cflags, dir.path()) {
            if let Some(toolchain) = named(cc) {
                return Ok(Compiler {
                    cc: set.then(|| cc.to_string()),
                    toolchain,
                });
            }
        }
    }
    Err(Error::Postgres(format!(
        "no C compiler here takes the flags {} names ({own} was asked first, then clang, gcc, cc); install one, or set CC",
        pg.pg_config_path().display()
    )))
}

/// `make` arguments that pick the compiler for builds against `pg` ([`compiler`]): `CC=clang`
/// where `pg_config`'s own compiler refuses its flags, nothing otherwise (nor when no compiler
/// works: a project without C code still builds).
pub fn cc_args(pg: &PgInstall) -> Vec<String> {
    match compiler(pg) {
        Ok(Compiler { cc: Some(cc), .. }) => vec![format!("CC={cc}")],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_pg_config_and_compilers_print() {
        assert_eq!(
            pg_major("PostgreSQL 15.14 (Debian 15.14-0+deb12u1)").unwrap(),
            15
        );
        assert_eq!(pg_major("PostgreSQL 18.6").unwrap(), 18);
        assert_eq!(pg_major("PostgreSQL 19devel").unwrap(), 19);
        assert!(pg_major("nothing").is_err());
        assert_eq!(
            toolchain_name("gcc (Debian 12.2.0-14+deb12u1) 12.2.0"),
            "gcc-12.2.0"
        );
        assert_eq!(
            toolchain_name("Debian clang version 14.0.6"),
            "clang-14.0.6"
        );
        assert_eq!(
            toolchain_name("Apple clang version 15.0.0 (clang-1500.3.9.4)"),
            "clang-15.0.0"
        );
        let text = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\nID=debian\n";
        assert_eq!(os_release_value(text, "ID").as_deref(), Some("debian"));
        assert_eq!(os_release_value(text, "VERSION_ID").as_deref(), Some("12"));
        let abi64 = if cfg!(target_pointer_width = "64") {
            1
        } else {
            0
        };
        assert_eq!(
            abi("'--prefix=/usr' '--with-llvm'"),
            format!("blcksz=8192,float8byval={abi64}")
        );
        assert_eq!(
            abi("'--with-blocksize=32' '--disable-float8-byval'"),
            "blcksz=32768,float8byval=0"
        );
    }
}
