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
    /// Two members with one path (or paths that differ only in case, which no case-insensitive
    /// file system can hold apart).
    #[error("duplicate member {0:?}")]
    Duplicate(String),
    /// A zip whose central directory and local headers disagree, or that uses Zip64.
    #[error("inconsistent zip: {0}")]
    Inconsistent(String),
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
        // Never read past what the limits allow: the total, and the ratio to the packed size
        // (checked past 1 MiB), so a small bomb costs at most a little memory.
        let by_ratio = self
            .packed
            .max(1)
            .saturating_mul(self.limits.max_ratio)
            .max(1 << 20);
        let cap = self.limits.max_unpacked_bytes.min(by_ratio);
        let remaining = cap.saturating_sub(self.total);
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
        if self.total > cap || (self.total > 1 << 20 && self.total > by_ratio) {
            return Err(ArchiveError::Bomb {
                ratio: self.total / self.packed.max(1),
                limit: self.limits.max_ratio,
            });
        }
        if let Some(p) = path {
            self.raw.push((p, buf, executable));
        }
        Ok(())
    }
}

/// Longest member path accepted, in bytes.
pub const MAX_PATH_BYTES: usize = 1024;
/// Longest path component accepted, in bytes (what file systems hold).
pub const MAX_NAME_BYTES: usize = 255;

/// Returns the normalized relative path, `None` for an entry that names the archive root.
/// Refuses absolute paths, `..`, drive letters and backslashes, control characters, and names
/// no file system can hold (a component over 255 bytes, a path over 1024).
pub fn safe_path(name: &str) -> Result<Option<String>, ArchiveError> {
    let unsafe_path = || ArchiveError::UnsafePath(name.chars().take(300).collect());
    if name.starts_with('/')
        || name.contains('\\')
        || name.chars().any(char::is_control)
        || name.as_bytes().get(1) == Some(&b':')
        || name.len() > MAX_PATH_BYTES
    {
        return Err(unsafe_path());
    }
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(unsafe_path()),
            p if p.len() > MAX_NAME_BYTES => return Err(unsafe_path()),
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
    let mut folded = std::collections::HashSet::new();
    for (path, data, exec) in r.raw {
        let rel = match &strip {
            Some(t) => path[t.len() + 1..].to_string(),
            None => path,
        };
        if !folded.insert(rel.to_lowercase())
            || files.files.insert(rel.clone(), (data, exec)).is_some()
        {
            return Err(ArchiveError::Duplicate(rel));
        }
    }
    // A file that is also used as a directory (a/b and a/b/c, or A/B/c on a file system that
    // folds case) cannot be unpacked.
    for path in files.files.keys() {
        let lower = path.to_lowercase();
        let mut prefix = lower.as_str();
        while let Some((parent, _)) = prefix.rsplit_once('/') {
            if folded.contains(parent) {
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
    check_zip_structure(bytes, &mut zip)?;
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

/// Checks what the zip reader does not: one central directory record per member (the reader
/// keeps one of several records of one name without a word), each pointing at a local header
/// of its own that names the same path (tools that unpack from local headers would otherwise
/// write other files than were checked), and no Zip64 (release archives are far below its
/// sizes, and its extra records are more ways to disagree).
fn check_zip_structure(
    bytes: &[u8],
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
) -> Result<(), ArchiveError> {
    let inconsistent = |s: String| ArchiveError::Inconsistent(s);
    let u16_at = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    // The end-of-central-directory record: the one whose comment ends the file exactly and
    // whose central directory ends where it begins (a record-like run of bytes inside a
    // comment is not it).
    let floor = bytes.len().saturating_sub(22 + 65_535);
    let eocd = (floor..bytes.len().saturating_sub(21))
        .rev()
        .find(|&i| {
            bytes[i..].starts_with(b"PK\x05\x06")
                && u16_at(i + 20).is_some_and(|c| i + 22 + usize::from(c) == bytes.len())
                && u32_at(i + 12)
                    .zip(u32_at(i + 16))
                    .is_some_and(|(size, offset)| offset.checked_add(size) == Some(i))
        })
        .ok_or_else(|| inconsistent("no end of central directory that ends the file".into()))?;
    let records = u16_at(eocd + 10).unwrap_or(0);
    let zip64 = records == 0xffff
        || eocd
            .checked_sub(20)
            .is_some_and(|at| bytes[at..].starts_with(b"PK\x06\x07"));
    if zip64 {
        return Err(inconsistent("Zip64 archives are not accepted".into()));
    }
    if usize::from(records) != zip.len() {
        return Err(ArchiveError::Duplicate(format!(
            "the central directory holds {records} records for {} distinct names",
            zip.len()
        )));
    }
    let mut starts = std::collections::HashSet::new();
    for i in 0..zip.len() {
        let f = zip
            .by_index_raw(i)
            .map_err(|e| ArchiveError::Unreadable(e.to_string()))?;
        let name = f.name_raw().to_vec();
        let shown = String::from_utf8_lossy(&name).into_owned();
        let start = usize::try_from(f.header_start()).unwrap_or(usize::MAX);
        if !starts.insert(start) {
            return Err(ArchiveError::Duplicate(shown));
        }
        let local = bytes
            .get(start..)
            .filter(|b| b.starts_with(b"PK\x03\x04"))
            .ok_or_else(|| inconsistent(format!("member {shown:?} has no local header")))?;
        let len = usize::from(u16_at(start + 26).unwrap_or(0));
        if local.get(30..30 + len) != Some(name.as_slice()) {
            let other = String::from_utf8_lossy(
                local
                    .get(30..(30 + len).min(local.len()))
                    .unwrap_or_default(),
            );
            return Err(inconsistent(format!(
                "member {shown:?} is named {other:?} in its local header"
            )));
        }
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
    deterministic_zip(&zip_prefix(dist, version), &files.files)
}

/// A zip of `files` (path → bytes, executable) under `prefix/`, sorted by path, deflated at
/// level 6, with the zip's fixed time and modes 0644/0755: the same files make the same bytes.
/// Release zips and binary packages (`spec/binary.md`) are written this way.
///
/// # Errors
/// Only if writing to memory fails (never in practice).
pub fn deterministic_zip(
    prefix: &str,
    files: &BTreeMap<String, (Vec<u8>, bool)>,
) -> Result<Vec<u8>, ArchiveError> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let err = |e: zip::result::ZipError| ArchiveError::Unreadable(e.to_string());
    for (path, (data, exec)) in files {
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

    /// A stored (uncompressed) zip written by hand: each member's central name, local name and
    /// data, so tests can make the archives no zip writer makes.
    fn raw_zip(members: &[(&str, &str, &[u8])], central_of: &[usize]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut offsets = Vec::new();
        for (_, local, data) in members {
            offsets.push(out.len() as u32);
            let crc = crc32(data);
            out.extend(b"PK\x03\x04");
            out.extend(20u16.to_le_bytes()); // version
            out.extend([0u8; 4]); // flags, method (stored)
            out.extend([0u8; 4]); // time, date
            out.extend(crc.to_le_bytes());
            out.extend((data.len() as u32).to_le_bytes());
            out.extend((data.len() as u32).to_le_bytes());
            out.extend((local.len() as u16).to_le_bytes());
            out.extend(0u16.to_le_bytes());
            out.extend(local.as_bytes());
            out.extend(*data);
        }
        let cd = out.len() as u32;
        for &k in central_of {
            let (central, _, data) = members[k];
            out.extend(b"PK\x01\x02");
            out.extend(20u16.to_le_bytes());
            out.extend(20u16.to_le_bytes());
            out.extend([0u8; 8]);
            out.extend(crc32(data).to_le_bytes());
            out.extend((data.len() as u32).to_le_bytes());
            out.extend((data.len() as u32).to_le_bytes());
            out.extend((central.len() as u16).to_le_bytes());
            out.extend([0u8; 8]); // extra, comment, disk, internal attrs
            out.extend([0u8; 4]); // external attrs
            out.extend(offsets[k].to_le_bytes());
            out.extend(central.as_bytes());
        }
        let size = out.len() as u32 - cd;
        out.extend(b"PK\x05\x06");
        out.extend([0u8; 4]);
        out.extend((central_of.len() as u16).to_le_bytes());
        out.extend((central_of.len() as u16).to_le_bytes());
        out.extend(size.to_le_bytes());
        out.extend(cd.to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn zips_the_reader_would_misread_are_refused() {
        let limits = Limits::default();
        // The hand-made zip is read when it is consistent.
        let ok = raw_zip(
            &[
                ("p/META.json", "p/META.json", b"{}"),
                ("p/a.sql", "p/a.sql", b"x"),
            ],
            &[0, 1],
        );
        assert_eq!(
            read_archive(&ok, &limits).unwrap().get("a.sql"),
            Some(&b"x"[..])
        );
        // Two central records of one name: the reader would keep one of them silently.
        let dup = raw_zip(
            &[
                ("p/a.sql", "p/a.sql", b"one"),
                ("p/a.sql", "p/a.sql", b"two"),
            ],
            &[0, 1],
        );
        assert!(matches!(
            read_archive(&dup, &limits),
            Err(ArchiveError::Duplicate(_))
        ));
        // Two records pointing at one local header.
        let twice = raw_zip(
            &[
                ("p/a.sql", "p/a.sql", b"one"),
                ("p/b.sql", "p/b.sql", b"two"),
            ],
            &[0, 0],
        );
        assert!(read_archive(&twice, &limits).is_err());
        // A local header naming another path than the central directory.
        let lie = raw_zip(&[("p/a.sql", "p/../../etc/x", b"one")], &[0]);
        let e = read_archive(&lie, &limits).unwrap_err();
        assert!(matches!(e, ArchiveError::Inconsistent(_)), "{e}");
        // Names that differ only in case, a control character, an over-long component.
        let case = raw_zip(
            &[
                ("p/README", "p/README", b"a"),
                ("p/readme", "p/readme", b"b"),
            ],
            &[0, 1],
        );
        let clash = raw_zip(
            &[("p/a/b", "p/a/b", b"a"), ("p/A/B/c", "p/A/B/c", b"b")],
            &[0, 1],
        );
        assert!(matches!(
            read_archive(&clash, &limits),
            Err(ArchiveError::Duplicate(_))
        ));
        // A record-like run in the comment (one that would count 1 record) is not the end
        // record: the real one, counting 2, is read.
        let mut fake = ok.clone();
        let n = fake.len();
        let comment: Vec<u8> = [&b"PK\x05\x06"[..], &[0; 4], &[1, 0, 1, 0], &[0; 10]].concat();
        fake[n - 2..].copy_from_slice(&(comment.len() as u16).to_le_bytes());
        fake.extend(&comment);
        assert_eq!(
            read_archive(&fake, &limits).unwrap().get("a.sql"),
            Some(&b"x"[..])
        );
        assert!(matches!(
            read_archive(&case, &limits),
            Err(ArchiveError::Duplicate(_))
        ));
        let ctl = raw_zip(&[("p/a\u{1b}[31m.sql", "p/a\u{1b}[31m.sql", b"a")], &[0]);
        assert!(matches!(
            read_archive(&ctl, &limits),
            Err(ArchiveError::UnsafePath(_))
        ));
        let long = format!("p/{}", "n".repeat(256));
        let long_zip = raw_zip(&[(&long, &long, b"a")], &[0]);
        assert!(matches!(
            read_archive(&long_zip, &limits),
            Err(ArchiveError::UnsafePath(_))
        ));
    }

    #[test]
    fn a_bomb_is_refused_before_it_is_unpacked_whole() {
        // 64 MiB of zeros packs into about 64 KiB: within the total limit, over the ratio.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        {
            let mut tar = tar::Builder::new(&mut gz);
            let zeros = vec![0u8; 64 << 20];
            let mut h = tar::Header::new_gnu();
            h.set_size(zeros.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, "p/zeros", zeros.as_slice())
                .unwrap();
            tar.finish().unwrap();
        }
        let bytes = gz.finish().unwrap();
        let got = read_archive(&bytes, &Limits::default()).map(|f| f.files.len());
        assert!(matches!(got, Err(ArchiveError::Bomb { .. })), "{got:?}");
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
