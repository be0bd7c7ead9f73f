//! Content-addressed blob store: release zips and META.json files under
//! `blobs/<first two hex digits>/<sha256 hex>`. Each blob is written to a temporary file, fsynced,
//! renamed into place and its directory fsynced, so an entry is never sequenced before the bytes
//! it names are durable.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use pgext_log::sha256;

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
        let tmp = dir.join(format!(".{h}.{}", std::process::id()));
        {
            let mut f = File::create(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &path)?;
        File::open(&dir)?.sync_all()?;
        Ok(h)
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
