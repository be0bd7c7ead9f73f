//! Content-addressed blob store: release zips and META.json files under
//! `blobs/<first two hex digits>/<sha256 hex>`. A blob is only ever visible under its name once
//! its bytes are durable, so an entry is never sequenced or mirrored before the bytes it names
//! are on disk:
//!
//! - [`Blobs::put`] (one publish): temporary file, fsync, rename, fsync of the folder.
//! - [`Blobs::stage`] + [`Blobs::publish`] (a mirror's batch): every blob written to a temporary
//!   file, one `syncfs` for all of them, the renames, one more `syncfs` for the names. Two
//!   flushes per batch instead of two per blob (a batch of a few blobs is flushed file by file,
//!   cheaper than flushing the file system); a crash in between leaves only temporary files,
//!   which [`Blobs::open`] removes.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use pgext_log::sha256;

/// Temporary files start with a dot; this tells apart two writers of one blob in one process.
static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Up to this many staged blobs are flushed one by one rather than with `syncfs`.
const FEW: usize = 16;

/// A blob written under a temporary name, not yet durable nor visible.
#[derive(Debug)]
pub struct Staged {
    tmp: PathBuf,
    path: PathBuf,
}

impl Drop for Staged {
    /// A staged blob never published (its batch failed) leaves nothing behind; after
    /// [`Blobs::publish`] the temporary name is gone already.
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.tmp);
    }
}

/// The blob store.
#[derive(Debug, Clone)]
pub struct Blobs {
    dir: PathBuf,
}

/// Hex of a SHA-256.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Blobs {
    /// Opens (creating) the store in `dir`.
    ///
    /// # Errors
    /// When the folder cannot be created.
    pub fn open(dir: &Path) -> std::io::Result<Blobs> {
        fs::create_dir_all(dir)?;
        // Leftovers of writes a crash interrupted: never named, never referenced.
        for sub in fs::read_dir(dir)?.flatten() {
            if sub.path().is_dir() {
                for f in fs::read_dir(sub.path())?.flatten() {
                    if f.file_name().to_string_lossy().starts_with('.') {
                        fs::remove_file(f.path())?;
                    }
                }
            }
        }
        Ok(Blobs {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, sha256_hex: &str) -> Option<PathBuf> {
        if sha256_hex.len() != 64 || !sha256_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(self.dir.join(&sha256_hex[..2]).join(sha256_hex))
    }

    /// Stores `data` durably; returns its SHA-256 hex.
    ///
    /// # Errors
    /// When writing or syncing fails.
    pub fn put(&self, data: &[u8]) -> std::io::Result<String> {
        let h = hex(&sha256(data));
        let path = self.path(&h).unwrap_or_default();
        if path.exists() {
            return Ok(h);
        }
        let dir = path.parent().unwrap_or(&self.dir).to_path_buf();
        fs::create_dir_all(&dir)?;
        let tmp = Self::tmp_name(&dir, &h);
        {
            let mut f = File::create(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &path)?;
        File::open(&dir)?.sync_all()?;
        Ok(h)
    }

    fn tmp_name(dir: &Path, h: &str) -> PathBuf {
        let n = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
        dir.join(format!(".{h}.{}.{n}", std::process::id()))
    }

    /// Writes `data` under a temporary name; [`Blobs::publish`] makes it durable and visible.
    /// `None` when the blob is stored already.
    ///
    /// # Errors
    /// When writing fails.
    pub fn stage(&self, data: &[u8]) -> std::io::Result<Option<Staged>> {
        let h = hex(&sha256(data));
        let path = self.path(&h).unwrap_or_default();
        if path.exists() {
            return Ok(None);
        }
        let dir = path.parent().unwrap_or(&self.dir).to_path_buf();
        fs::create_dir_all(&dir)?;
        let tmp = Self::tmp_name(&dir, &h);
        File::create(&tmp)?.write_all(data)?;
        Ok(Some(Staged { tmp, path }))
    }

    /// Makes staged blobs durable, then visible, then their names durable. Blocks on the disk.
    ///
    /// # Errors
    /// When a flush or rename fails; the blobs not yet renamed stay invisible.
    pub fn publish(&self, staged: Vec<Staged>) -> std::io::Result<()> {
        if staged.is_empty() {
            return Ok(());
        }
        // A few blobs (a publish or two): their own flushes cost less than flushing the whole
        // file system, which also holds whatever else is writing.
        if staged.len() <= FEW {
            let mut dirs = std::collections::BTreeSet::new();
            for s in &staged {
                File::open(&s.tmp)?.sync_all()?;
            }
            for s in &staged {
                fs::rename(&s.tmp, &s.path)?;
                dirs.insert(s.path.parent().unwrap_or(&self.dir).to_path_buf());
            }
            for d in dirs {
                File::open(d)?.sync_all()?;
            }
            return Ok(());
        }
        let root = File::open(&self.dir)?;
        rustix::fs::syncfs(&root)?;
        for s in &staged {
            fs::rename(&s.tmp, &s.path)?;
        }
        rustix::fs::syncfs(&root)?;
        Ok(())
    }

    /// Reads a blob.
    ///
    /// # Errors
    /// When it is missing or unreadable.
    pub fn get(&self, sha256_hex: &str) -> std::io::Result<Vec<u8>> {
        let path = self.path(sha256_hex).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a SHA-256")
        })?;
        fs::read(path)
    }

    /// Whether a blob is stored.
    pub fn has(&self, sha256_hex: &str) -> bool {
        self.path(sha256_hex).is_some_and(|p| p.exists())
    }

    /// Reads up to `max` bytes of a blob from `offset`; returns its total size and the bytes.
    ///
    /// # Errors
    /// When it is missing or unreadable.
    pub fn read_chunk(
        &self,
        sha256_hex: &str,
        offset: u64,
        max: usize,
    ) -> std::io::Result<(u64, Vec<u8>)> {
        use std::io::{Read, Seek, SeekFrom};
        let path = self.path(sha256_hex).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a SHA-256")
        })?;
        let mut f = File::open(path)?;
        let total = f.metadata()?.len();
        f.seek(SeekFrom::Start(offset.min(total)))?;
        let mut buf = Vec::with_capacity(max.min((total - offset.min(total)) as usize));
        f.take(max as u64).read_to_end(&mut buf)?;
        Ok((total, buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_blobs_are_invisible_until_published_and_leftovers_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        let a = blobs.stage(b"first").unwrap().unwrap();
        let b = blobs.stage(b"second").unwrap().unwrap();
        let (ha, hb) = (hex(&sha256(b"first")), hex(&sha256(b"second")));
        assert!(!blobs.has(&ha) && !blobs.has(&hb));
        blobs.publish(vec![a]).unwrap();
        assert_eq!(blobs.get(&ha).unwrap(), b"first");
        assert!(blobs.stage(b"first").unwrap().is_none(), "stored already");
        // A batch that fails leaves nothing behind once dropped.
        let tmp = b.tmp.clone();
        drop(b);
        assert!(!tmp.exists() && !blobs.has(&hb));
        // A crash between staging and publishing leaves a temporary file; opening sweeps it.
        let c = blobs.stage(b"third").unwrap().unwrap();
        let tmp = c.tmp.clone();
        std::mem::forget(c);
        assert!(tmp.exists());
        let reopened = Blobs::open(dir.path()).unwrap();
        assert!(!tmp.exists());
        assert!(!reopened.has(&hex(&sha256(b"third"))));
        assert_eq!(reopened.get(&ha).unwrap(), b"first");
    }
}
