//! Binary packages (`spec/binary.md`): the target a binary was built for, and the package
//! itself, a zip laid out as PGXN's draft binary distribution format ("trunk", RFC 2) lays it
//! out: `trunk.json`, `digests`, and the installed files under `pgsql/{dir}/`, one folder per
//! `pg_config` directory. Packing is deterministic (same files, same bytes), and reading checks
//! every rule before anything is used.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::archive::{ArchiveError, Files, Limits, read_archive};

/// The format version written in `trunk.json`; readers refuse a greater major.
pub const FORMAT_VERSION: &str = "0.1.0";
/// The manifest's file name.
pub const MANIFEST: &str = "trunk.json";
/// The digests file's name.
pub const DIGESTS: &str = "digests";
/// Largest binary package a log attests and a node stores, in bytes.
pub const MAX_BINARY_BYTES: u64 = 64 << 20;
/// Most a binary package unpacks to (less where the reader's limits say less).
pub const MAX_UNPACKED_BYTES: u64 = 256 << 20;

/// What a binary was built for. Every field but `toolchain` must match the machine it is
/// installed on (`Target::loads_on`); `toolchain` records what built it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Target {
    /// Operating system, `uname -s` in lowercase: `linux`, `darwin`, `freebsd`.
    pub os: String,
    /// The OS release: on Linux `ID` and `VERSION_ID` of `/etc/os-release` joined without a
    /// separator (`debian12`); elsewhere `uname -r`.
    pub os_version: String,
    /// `uname -m`: `x86_64`, `aarch64`, `arm64`.
    pub arch: String,
    /// C library and version: `glibc2.36`, `musl1.2`; `system` where the OS has one libc.
    pub libc: String,
    /// PostgreSQL major version.
    pub pg: u64,
    /// The server settings a module's ABI depends on that `pg_config` reports:
    /// `blcksz=8192,float8byval=1` (`spec/binary.md`, Targets).
    pub abi: String,
    /// The compiler that built it, `{name}-{version}`: `gcc-12.2.0`, `clang-14.0.6`.
    pub toolchain: String,
}

fn word(field: &str, v: &str, max: usize, extra: &[u8]) -> Result<(), String> {
    if v.is_empty() || v.len() > max {
        return Err(format!("target {field} must be 1 to {max} characters"));
    }
    if !v
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || extra.contains(&b))
    {
        return Err(format!("target {field} {v:?} holds characters it may not"));
    }
    Ok(())
}

impl Target {
    /// The same target but for the toolchain: what "one attestation per builder and target"
    /// and the matrix compare.
    pub fn same_as(&self, other: &Target) -> bool {
        self.loads_on(other).is_ok()
    }

    /// Checks every field's form (`spec/binary.md`, Targets).
    ///
    /// # Errors
    /// What is wrong, for people.
    pub fn check(&self) -> Result<(), String> {
        word("os", &self.os, 32, b"_")?;
        word("os_version", &self.os_version, 32, b"_")?;
        word("arch", &self.arch, 32, b"_")?;
        word("libc", &self.libc, 32, b"_")?;
        word("abi", &self.abi, 160, b"=,_")?;
        word("toolchain", &self.toolchain, 64, b"-_+")?;
        if !(1..=999).contains(&self.pg) {
            return Err(format!(
                "target pg {} is not a PostgreSQL major version",
                self.pg
            ));
        }
        Ok(())
    }

    /// The platform part of a package's name as RFC 2 spells it: `pg15-linux-debian12-x86_64`.
    pub fn slug(&self) -> String {
        format!(
            "pg{}-{}-{}-{}",
            self.pg, self.os, self.os_version, self.arch
        )
    }

    /// Whether a binary built for `self` loads on `local`: every field but the toolchain equal.
    ///
    /// # Errors
    /// The first field that differs, built and local value named.
    pub fn loads_on(&self, local: &Target) -> Result<(), String> {
        let fields = [
            (
                "PostgreSQL major",
                self.pg.to_string(),
                local.pg.to_string(),
            ),
            ("architecture", self.arch.clone(), local.arch.clone()),
            ("OS", self.os.clone(), local.os.clone()),
            (
                "OS release",
                self.os_version.clone(),
                local.os_version.clone(),
            ),
            ("C library", self.libc.clone(), local.libc.clone()),
            ("server ABI", self.abi.clone(), local.abi.clone()),
        ];
        for (what, built, here) in fields {
            if built != here {
                return Err(format!(
                    "{what}: built for {built}, this machine has {here}"
                ));
            }
        }
        Ok(())
    }
}

/// One `pg_config` directory a package may install into: its folder under `pgsql/` and the
/// `pg_config` flag that says where it is on a machine. In the order ties are broken when two
/// flags name one path (a file is packed under the first).
pub const DIRS: [(&str, &str); 12] = [
    ("pkglib", "--pkglibdir"),
    ("lib", "--libdir"),
    ("share", "--sharedir"),
    ("doc", "--docdir"),
    ("html", "--htmldir"),
    ("server", "--includedir-server"),
    ("pkginclude", "--pkgincludedir"),
    ("include", "--includedir"),
    ("bin", "--bindir"),
    ("locale", "--localedir"),
    ("man", "--mandir"),
    ("sysconf", "--sysconfdir"),
];

/// Whether `name` is one of [`DIRS`].
pub fn is_dir(name: &str) -> bool {
    DIRS.iter().any(|(d, _)| *d == name)
}

/// `trunk.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT_VERSION`].
    pub trunk: String,
    /// What was built.
    pub package: Package,
    /// The PostgreSQL it was built against.
    pub postgres: Postgres,
    /// What it loads on.
    pub target: Target,
}

/// `trunk.json`'s `package`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    /// Distribution name.
    pub name: String,
    /// Release version.
    pub version: String,
}

/// `trunk.json`'s `postgres`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Postgres {
    /// Major version, as the target says.
    pub major: u64,
    /// `pg_config --version` of the build: `PostgreSQL 15.14 (Debian 15.14-0+deb12u1)`.
    pub version: String,
}

/// Why a binary package is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BinaryError {
    /// Larger than [`MAX_BINARY_BYTES`].
    #[error("the binary package is {0} bytes; at most {MAX_BINARY_BYTES} are accepted")]
    TooLarge(u64),
    /// Unsafe or unreadable as an archive (traversal, links, bombs, …).
    #[error("{0}")]
    Archive(#[from] ArchiveError),
    /// A file outside `trunk.json`, `digests`, the notes and `pgsql/{dir}/`.
    #[error("{0:?} is outside the pg_config directories a binary package may install into")]
    Outside(String),
    /// `trunk.json` missing, malformed or of a newer format.
    #[error("trunk.json: {0}")]
    Manifest(String),
    /// `digests` missing, malformed, incomplete, or a file that does not match.
    #[error("digests: {0}")]
    Digests(String),
}

/// A binary package, read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binary {
    /// `trunk.json`.
    pub manifest: Manifest,
    /// Installed files: (folder of [`DIRS`], path below it) → (bytes, executable).
    pub files: BTreeMap<(String, String), (Vec<u8>, bool)>,
}

/// The notes a package may carry at its top (RFC 2): README, LICENSE, CHANGELOG, plain or `.md`.
fn is_note(path: &str) -> bool {
    ["README", "LICENSE", "CHANGELOG"]
        .iter()
        .any(|n| path == *n || path.strip_prefix(n) == Some(".md"))
}

/// The package's file name: `{dist}-{version}+{slug}.trunk`, lowercase.
pub fn file_name(dist: &str, version: &str, target: &Target) -> String {
    format!("{dist}-{version}+{}.trunk", target.slug()).to_ascii_lowercase()
}

/// Builds a package: the files under `pgsql/{dir}/`, `trunk.json`, `digests`, in one top
/// folder named like the file, written as the release zip is (sorted, fixed time and modes).
///
/// # Errors
/// A folder not in [`DIRS`], or an unsafe path.
pub fn pack(
    manifest: &Manifest,
    files: &BTreeMap<(String, String), (Vec<u8>, bool)>,
) -> Result<Vec<u8>, BinaryError> {
    let mut all: BTreeMap<String, (Vec<u8>, bool)> = BTreeMap::new();
    for ((dir, rel), (data, exec)) in files {
        if !is_dir(dir) {
            return Err(BinaryError::Outside(format!("pgsql/{dir}/{rel}")));
        }
        let path = format!("pgsql/{dir}/{rel}");
        if crate::archive::safe_path(&path)?.as_deref() != Some(path.as_str()) {
            return Err(ArchiveError::UnsafePath(path).into());
        }
        all.insert(path, (data.clone(), *exec));
    }
    let manifest_json =
        serde_json::to_vec_pretty(manifest).map_err(|e| BinaryError::Manifest(e.to_string()))?;
    all.insert(MANIFEST.into(), (manifest_json, false));
    all.insert(DIGESTS.into(), (digests(&all).into_bytes(), false));
    let name = file_name(
        &manifest.package.name,
        &manifest.package.version,
        &manifest.target,
    );
    let prefix = name.trim_end_matches(".trunk");
    Ok(crate::archive::deterministic_zip(prefix, &all)?)
}

/// The `digests` file of `files` (every one but `digests` itself), BSD tag lines sorted by
/// path: `SHA256 (path) = hex`.
fn digests(files: &BTreeMap<String, (Vec<u8>, bool)>) -> String {
    let mut out = String::new();
    for (path, (data, _)) in files {
        if path != DIGESTS {
            out.push_str(&format!(
                "SHA256 ({path}) = {}\n",
                pgext_log::hex(&pgext_log::sha256(data))
            ));
        }
    }
    out
}

/// Reads a binary package under `limits` and every rule of `spec/binary.md`: the archive's
/// safety (no traversal, links, duplicates or bombs), no file outside the known folders, a
/// `trunk.json` of this format, a `digests` that lists exactly the other files with their
/// SHA-256.
///
/// # Errors
/// The first rule broken.
pub fn read_binary(bytes: &[u8], limits: &Limits) -> Result<Binary, BinaryError> {
    if bytes.len() as u64 > MAX_BINARY_BYTES {
        return Err(BinaryError::TooLarge(bytes.len() as u64));
    }
    // A zip, as the format says (the archive reader would take tarballs too).
    if !bytes.starts_with(b"PK\x03\x04") {
        return Err(ArchiveError::Unreadable("a binary package is a zip".into()).into());
    }
    let limits = Limits {
        max_archive_bytes: MAX_BINARY_BYTES,
        max_unpacked_bytes: limits.max_unpacked_bytes.min(MAX_UNPACKED_BYTES),
        ..*limits
    };
    let Files { files: all } = read_archive(bytes, &limits)?;
    let manifest_bytes = all
        .get(MANIFEST)
        .ok_or_else(|| BinaryError::Manifest("missing".into()))?;
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes.0)
        .map_err(|e| BinaryError::Manifest(e.to_string()))?;
    let major = manifest.trunk.split('.').next().unwrap_or_default();
    if major != FORMAT_VERSION.split('.').next().unwrap_or_default() {
        return Err(BinaryError::Manifest(format!(
            "format {} is not one this reader knows ({FORMAT_VERSION})",
            manifest.trunk
        )));
    }
    manifest.target.check().map_err(BinaryError::Manifest)?;
    if manifest.postgres.major != manifest.target.pg {
        return Err(BinaryError::Manifest(
            "postgres.major and target.pg differ".into(),
        ));
    }
    let listed = all
        .get(DIGESTS)
        .ok_or_else(|| BinaryError::Digests("missing".into()))?;
    let listed =
        std::str::from_utf8(&listed.0).map_err(|_| BinaryError::Digests("not UTF-8".into()))?;
    let mut sums = BTreeMap::new();
    for line in listed.lines().filter(|l| !l.trim().is_empty()) {
        let parsed = line
            .strip_prefix("SHA256 (")
            .and_then(|l| l.rsplit_once(") = "))
            .filter(|(_, h)| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        let Some((path, hex)) = parsed else {
            return Err(BinaryError::Digests(format!(
                "line {line:?} is not `SHA256 (path) = hex`"
            )));
        };
        if sums
            .insert(path.to_string(), hex.to_ascii_lowercase())
            .is_some()
        {
            return Err(BinaryError::Digests(format!("{path} is listed twice")));
        }
    }
    let mut files = BTreeMap::new();
    for (path, (data, exec)) in &all {
        if path == DIGESTS {
            continue;
        }
        let Some(want) = sums.remove(path) else {
            return Err(BinaryError::Digests(format!("{path} is not listed")));
        };
        if pgext_log::hex(&pgext_log::sha256(data)) != want {
            return Err(BinaryError::Digests(format!(
                "{path} does not match its digest"
            )));
        }
        if path == MANIFEST || is_note(path) {
            continue;
        }
        let placed = path
            .strip_prefix("pgsql/")
            .and_then(|p| p.split_once('/'))
            .filter(|(dir, rel)| is_dir(dir) && !rel.is_empty());
        let Some((dir, rel)) = placed else {
            return Err(BinaryError::Outside(path.clone()));
        };
        files.insert((dir.to_string(), rel.to_string()), (data.clone(), *exec));
    }
    if let Some(path) = sums.keys().next() {
        return Err(BinaryError::Digests(format!(
            "{path} is listed but not in the package"
        )));
    }
    Ok(Binary { manifest, files })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::{Cursor, Write as _};

    use super::*;

    pub(crate) fn target() -> Target {
        Target {
            os: "linux".into(),
            os_version: "debian12".into(),
            arch: "x86_64".into(),
            libc: "glibc2.36".into(),
            pg: 15,
            abi: "blcksz=8192,float8byval=1,funcmaxargs=100,indexmaxkeys=32,namedatalen=64".into(),
            toolchain: "gcc-12.2.0".into(),
        }
    }

    fn manifest() -> Manifest {
        Manifest {
            trunk: FORMAT_VERSION.into(),
            package: Package {
                name: "pair".into(),
                version: "1.0.0".into(),
            },
            postgres: Postgres {
                major: 15,
                version: "PostgreSQL 15.14".into(),
            },
            target: target(),
        }
    }

    fn files() -> BTreeMap<(String, String), (Vec<u8>, bool)> {
        BTreeMap::from([
            (
                ("share".into(), "extension/pair.control".into()),
                (b"default_version = '1.0'\n".to_vec(), false),
            ),
            (
                ("pkglib".into(), "pair.so".into()),
                (vec![0x7f, b'E', b'L', b'F'], true),
            ),
        ])
    }

    /// A zip written member by member, for packages no packer makes.
    fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (p, d) in members {
            w.start_file(*p, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(d).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn sum(d: &[u8]) -> String {
        pgext_log::hex(&pgext_log::sha256(d))
    }

    #[test]
    fn pack_is_deterministic_and_reads_back() {
        let a = pack(&manifest(), &files()).unwrap();
        assert_eq!(a, pack(&manifest(), &files()).unwrap());
        let b = read_binary(&a, &Limits::default()).unwrap();
        assert_eq!(b.manifest, manifest());
        assert_eq!(b.files, files());
        let z = zip::ZipArchive::new(Cursor::new(&a)).unwrap();
        let names: Vec<&str> = z.file_names().collect();
        assert!(
            names.contains(&"pair-1.0.0+pg15-linux-debian12-x86_64/pgsql/pkglib/pair.so"),
            "{names:?}"
        );
        assert_eq!(
            file_name("Pair", "1.0.0", &target()),
            "pair-1.0.0+pg15-linux-debian12-x86_64.trunk"
        );
    }

    #[test]
    fn digests_are_checked_both_ways() {
        let m = serde_json::to_vec(&manifest()).unwrap();
        let so: &[u8] = b"\x7fELF";
        let good = format!(
            "SHA256 (pgsql/pkglib/pair.so) = {}\nSHA256 (trunk.json) = {}\n",
            sum(so),
            sum(&m)
        );
        let ok = zip_of(&[
            ("p/trunk.json", &m),
            ("p/pgsql/pkglib/pair.so", so),
            ("p/digests", good.as_bytes()),
        ]);
        read_binary(&ok, &Limits::default()).unwrap();
        // A flipped byte in a file.
        let bad = zip_of(&[
            ("p/trunk.json", &m),
            ("p/pgsql/pkglib/pair.so", b"\x7fELG"),
            ("p/digests", good.as_bytes()),
        ]);
        assert!(matches!(
            read_binary(&bad, &Limits::default()),
            Err(BinaryError::Digests(e)) if e.contains("pair.so")
        ));
        // A file not listed.
        let extra = zip_of(&[
            ("p/trunk.json", &m),
            ("p/pgsql/pkglib/pair.so", so),
            ("p/pgsql/pkglib/evil.so", so),
            ("p/digests", good.as_bytes()),
        ]);
        assert!(matches!(
            read_binary(&extra, &Limits::default()),
            Err(BinaryError::Digests(e)) if e.contains("evil.so is not listed")
        ));
        // A file listed but absent.
        let absent = zip_of(&[("p/trunk.json", &m), ("p/digests", good.as_bytes())]);
        assert!(matches!(
            read_binary(&absent, &Limits::default()),
            Err(BinaryError::Digests(e)) if e.contains("listed but not")
        ));
    }

    #[test]
    fn files_outside_the_pg_config_folders_are_refused() {
        let m = serde_json::to_vec(&manifest()).unwrap();
        for path in ["etc/passwd", "pgsql/tmp/x", "pgsql/share", "Makefile"] {
            let d = format!(
                "SHA256 ({path}) = {}\nSHA256 (trunk.json) = {}\n",
                sum(b"x"),
                sum(&m)
            );
            let z = zip_of(&[
                ("p/trunk.json", &m),
                (&format!("p/{path}"), b"x"),
                ("p/digests", d.as_bytes()),
            ]);
            assert_eq!(
                read_binary(&z, &Limits::default()),
                Err(BinaryError::Outside(path.into())),
                "{path}"
            );
        }
        // Traversal is refused by the archive reader before anything else.
        let z = zip_of(&[("p/../../etc/x", b"x")]);
        assert!(matches!(
            read_binary(&z, &Limits::default()),
            Err(BinaryError::Archive(_))
        ));
        assert!(matches!(
            pack(
                &manifest(),
                &BTreeMap::from([(("etc".into(), "x".into()), (vec![], false))])
            ),
            Err(BinaryError::Outside(_))
        ));
        assert!(
            pack(
                &manifest(),
                &BTreeMap::from([(("share".into(), "../x".into()), (vec![], false))])
            )
            .is_err()
        );
    }

    #[test]
    fn targets_name_what_differs() {
        let t = target();
        t.check().unwrap();
        assert!(t.loads_on(&t).is_ok());
        let mut other = t.clone();
        other.toolchain = "clang-14.0.6".into();
        assert!(t.loads_on(&other).is_ok(), "the toolchain need not match");
        other.pg = 18;
        assert_eq!(
            t.loads_on(&other).unwrap_err(),
            "PostgreSQL major: built for 15, this machine has 18"
        );
        let mut other = t.clone();
        other.libc = "musl1.2".into();
        assert!(t.loads_on(&other).unwrap_err().starts_with("C library"));
        let mut other = t.clone();
        other.arch = "aarch64".into();
        assert!(t.loads_on(&other).unwrap_err().starts_with("architecture"));
        let mut bad = t.clone();
        bad.os_version = "debian-12".into();
        assert!(bad.check().is_err());
        bad = t.clone();
        bad.pg = 0;
        assert!(bad.check().is_err());
    }
}
