//! Release archives: safe reading of what authors upload (`.zip`, `.tar.gz`/`.tgz`,
//! `.tar.bz2`) and the PGXN-style zip pgext serves, built deterministically so that the author's
//! client and the sequencer compute the same bytes, hence the same SHA-256 the author signs.

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Write};

use serde::{Deserialize, Serialize};

/// Limits on what an upload may contain. Defaults are documented in `spec/entries.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Largest archive accepted, in bytes.
    pub max_archive_bytes: u64,
    /// Most members (files) accepted.
    pub max_members: usize,
    /// Largest total unpacked size, in bytes.
    pub max_unpacked_bytes: u64,
    /// Largest unpacked/packed ratio once the unpacked size passes 1 MiB (zip bombs).
    pub max_ratio: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_archive_bytes: 20 << 20,
            max_members: 5_000,
            max_unpacked_bytes: 200 << 20,
            max_ratio: 200,
        }
    }
}

/// Why an archive is refused. Every message names the member at fault, if any.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArchiveError {
    /// Not a zip, gzip or bzip2 stream, or corrupt.
    #[error("unreadable archive: {0}")]
    Unreadable(String),
    /// A member path that is absolute, climbs out with `..`, or is not UTF-8.
    #[error("unsafe member path {0:?}")]
    UnsafePath(String),
    /// A symlink, hard link or device.
    #[error(
        "member {0:?} is a link or special file; only regular files and directories are accepted"
    )]
    SpecialFile(String),
    /// Two members with one path.
    #[error("duplicate member {0:?}")]
    Duplicate(String),
    /// Over a size or count limit.
    #[error("archive too large: {0}")]
    TooLarge(String),
    /// Expands far beyond its packed size.
    #[error("archive expands {ratio}x (limit {limit}x): refusing a likely zip bomb")]
    Bomb {
        /// Unpacked/packed.
        ratio: u64,
        /// The limit.
        limit: u64,
    },
    /// Nothing in it.
    #[error("archive has no files")]
    Empty,
}

/// The files of an archive by path, relative to its single top directory if it had one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Files {
    /// Path → (bytes, executable).
    pub files: BTreeMap<String, (Vec<u8>, bool)>,
}

impl Files {
    /// A file's bytes.
    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(|(d, _)| d.as_slice())
    }
}

struct Reader<'a> {
    limits: &'a Limits,
    packed: u64,
    total: u64,
    raw: Vec<(String, Vec<u8>, bool)>,
}

impl Reader<'_> {
    fn add(&mut self, name: &str, data: impl Read, executable: bool) -> Result<(), ArchiveError> {
        let path = safe_path(name)?;
        if self.raw.len() >= self.limits.max_members {
            return Err(ArchiveError::TooLarge(format!(
                "more than {} members",
                self.limits.max_members
            )));
        }
        let remaining = self.limits.max_unpacked_bytes - self.total;
        let mut buf = Vec::new();
        // Count real bytes: declared sizes in headers can lie.
        data.take(remaining + 1)
            .read_to_end(&mut buf)
            .map_err(|e| ArchiveError::Unreadable(format!("{name}: {e}")))?;
        self.total += buf.len() as u64;
        if self.total > self.limits.max_unpacked_bytes {
            return Err(ArchiveError::TooLarge(format!(
                "unpacks to more than {} bytes",
                self.limits.max_unpacked_bytes
            )));
        }
        if self.total > 1 << 20 {
            let ratio = self.total / self.packed.max(1);
            if ratio > self.limits.max_ratio {
                return Err(ArchiveError::Bomb {
                    ratio,
                    limit: self.limits.max_ratio,
                });
            }
        }
        if let Some(p) = path {
            self.raw.push((p, buf, executable));
        }
        Ok(())
    }
}

/// Returns the normalized relative path, `None` for an entry that names the archive root.
fn safe_path(name: &str) -> Result<Option<String>, ArchiveError> {
    let unsafe_path = || ArchiveError::UnsafePath(name.to_string());
    if name.starts_with('/')
        || name.contains('\\')
        || name.contains('\0')
        || name.as_bytes().get(1) == Some(&b':')
    {
        return Err(unsafe_path());
    }
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(unsafe_path()),
            p => parts.push(p),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

/// Reads an uploaded archive, detected by its magic bytes, refusing anything unsafe.
///
/// # Errors
/// [`ArchiveError`] naming what is wrong.
pub fn read_archive(bytes: &[u8], limits: &Limits) -> Result<Files, ArchiveError> {
    if bytes.len() as u64 > limits.max_archive_bytes {
        return Err(ArchiveError::TooLarge(format!(
            "{} bytes, limit {}",
            bytes.len(),
            limits.max_archive_bytes
        )));
    }
    let mut r = Reader {
        limits,
        packed: bytes.len() as u64,
        total: 0,
        raw: Vec::new(),
    };
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        read_zip(bytes, &mut r)?;
    } else if bytes.starts_with(&[0x1f, 0x8b]) {
        read_tar(flate2::read::GzDecoder::new(bytes), &mut r)?;
    } else if bytes.starts_with(b"BZh") {
        read_tar(bzip2::read::BzDecoder::new(bytes), &mut r)?;
    } else {
        return Err(ArchiveError::Unreadable(
            "not a zip, .tar.gz or .tar.bz2 archive".into(),
        ));
    }
    // Strip one top directory shared by every member, as release archives have.
    let top = r
        .raw
        .first()
        .and_then(|(p, _, _)| p.split_once('/').map(|(t, _)| t.to_string()));
    let strip = top.filter(|t| {
        r.raw
            .iter()
            .all(|(p, _, _)| p.starts_with(&format!("{t}/")))
    });
    let mut files = Files::default();
    for (path, data, exec) in r.raw {
        let rel = match &strip {
            Some(t) => path[t.len() + 1..].to_string(),
            None => path,
        };
        if files.files.insert(rel.clone(), (data, exec)).is_some() {
            return Err(ArchiveError::Duplicate(rel));
        }
    }
    // A file that is also used as a directory (a/b and a/b/c) cannot be unpacked.
    for path in files.files.keys() {
        let mut prefix = path.as_str();
        while let Some((parent, _)) = prefix.rsplit_once('/') {
            if files.files.contains_key(parent) {
                return Err(ArchiveError::Duplicate(parent.to_string()));
            }
            prefix = parent;
        }
    }
    if files.files.is_empty() {
        return Err(ArchiveError::Empty);
    }
    Ok(files)
}

fn read_zip(bytes: &[u8], r: &mut Reader<'_>) -> Result<(), ArchiveError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| ArchiveError::Unreadable(e.to_string()))?;
    for i in 0..zip.len() {
        let file = zip
            .by_index(i)
            .map_err(|e| ArchiveError::Unreadable(e.to_string()))?;
        let name = std::str::from_utf8(file.name_raw())
            .map_err(|_| ArchiveError::UnsafePath(file.name().to_string()))?
            .to_string();
        let mode = file.unix_mode().unwrap_or(0o644);
        if file.is_symlink()
            || (mode & 0o170000 != 0 && mode & 0o170000 != 0o100000 && mode & 0o170000 != 0o040000)
        {
            return Err(ArchiveError::SpecialFile(name));
        }
        if file.is_dir() {
            safe_path(&name)?;
            continue;
        }
        r.add(&name, file, mode & 0o111 != 0)?;
    }
    Ok(())
}

fn read_tar(stream: impl Read, r: &mut Reader<'_>) -> Result<(), ArchiveError> {
    let mut tar = tar::Archive::new(stream);
    let entries = tar
        .entries()
        .map_err(|e| ArchiveError::Unreadable(e.to_string()))?;
    for entry in entries {
        let entry = entry.map_err(|e| ArchiveError::Unreadable(e.to_string()))?;
        let name = std::str::from_utf8(&entry.path_bytes())
            .map_err(|_| ArchiveError::UnsafePath("<not UTF-8>".into()))?
            .to_string();
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let exec = entry
                    .header()
                    .mode()
                    .map(|m| m & 0o111 != 0)
                    .unwrap_or(false);
                r.add(&name, entry, exec)?;
            }
            tar::EntryType::Directory => {
                safe_path(&name)?;
            }
            // Metadata records (git archive writes a pax global header).
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => {}
            _ => return Err(ArchiveError::SpecialFile(name)),
        }
    }
    Ok(())
}

/// The top directory of a release zip: lowercase `{dist}-{version}`.
pub fn zip_prefix(dist: &str, version: &str) -> String {
    format!("{dist}-{version}").to_ascii_lowercase()
}

/// Builds the PGXN-style release zip: every file under `{dist}-{version}/` (lowercase), sorted by
/// path, deflated, with a fixed timestamp and modes 0644/0755. Same files, same bytes.
///
/// # Errors
/// Only if writing to memory fails (never in practice).
pub fn pgxn_zip(dist: &str, version: &str, files: &Files) -> Result<Vec<u8>, ArchiveError> {
    let prefix = zip_prefix(dist, version);
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let err = |e: zip::result::ZipError| ArchiveError::Unreadable(e.to_string());
    for (path, (data, exec)) in &files.files {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(6))
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(if *exec { 0o755 } else { 0o644 });
        w.start_file(format!("{prefix}/{path}"), opts)
            .map_err(err)?;
        w.write_all(data)
            .map_err(|e| ArchiveError::Unreadable(e.to_string()))?;
    }
    Ok(w.finish().map_err(err)?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> Files {
        Files {
            files: list
                .iter()
                .map(|(p, d)| (p.to_string(), (d.as_bytes().to_vec(), false)))
                .collect(),
        }
    }

    #[test]
    fn zip_is_deterministic_and_round_trips() {
        let f = files(&[
            ("META.json", "{}"),
            ("sql/pair.sql", "select 1;"),
            ("Makefile", "all:"),
        ]);
        let a = pgxn_zip("Pair", "1.0.0", &f).unwrap();
        assert_eq!(a, pgxn_zip("Pair", "1.0.0", &f).unwrap());
        let back = read_archive(&a, &Limits::default()).unwrap();
        assert_eq!(back, f);
        let zip = zip::ZipArchive::new(Cursor::new(&a)).unwrap();
        assert!(zip.file_names().all(|n| n.starts_with("pair-1.0.0/")));
    }

    #[test]
    fn unsafe_paths() {
        for bad in ["/etc/passwd", "a/../../x", "..", "C:/x", "a\\b"] {
            assert!(
                matches!(safe_path(bad), Err(ArchiveError::UnsafePath(_))),
                "{bad}"
            );
        }
        assert_eq!(safe_path("./a//b/").unwrap().as_deref(), Some("a/b"));
    }
}
