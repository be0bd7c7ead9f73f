//! Content-addressed blob store: release zips and META.json files under
//! `blobs/<first two hex digits>/<sha256 hex>`. A blob is only ever visible under its name once
//! its bytes are durable, so an entry is never sequenced or mirrored before the bytes it names
//! are on disk. Every write goes the same way: [`Blobs::stage`] writes the bytes under a
//! temporary name in `blobs/.staging/`, and [`Blobs::publish`] flushes them, renames them into
//! place and flushes the names. A few blobs (a publish) are flushed file by file; a mirror's
//! batch with two `syncfs` calls, two flushes instead of two per blob. A crash in between
//! leaves only files in `.staging/`, which [`Blobs::open`] empties.
//!
//! Reads fail closed: a blob that is missing, or whose bytes no longer hash to its name, is an
//! error ([`BlobError`]), never empty content. Everything here blocks on the disk: callers run
//! it on the blocking pool.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub use pgext_log::hex;
use pgext_log::sha256;

/// Where blobs are written before they are durable; on the blobs' file system, so a rename
/// moves them into place.
const STAGING: &str = ".staging";

/// Tells apart two writers of one blob in one process.
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

/// Why a blob could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// The name is not a SHA-256 in lowercase hex.
    #[error("{0:?} is not a SHA-256")]
    BadName(String),
    /// No blob of that name: an entry names bytes this node does not hold.
    #[error("blob {0} is missing")]
    Missing(String),
    /// The stored bytes do not hash to the blob's name.
    #[error("blob {0} is damaged: its bytes hash to {1}")]
    Damaged(String, String),
    /// The disk failed.
    #[error("blob {0}: {1}")]
    Io(String, std::io::Error),
}

impl BlobError {
    /// Whether this is the node's fault (anything but a malformed name).
    pub fn is_fault(&self) -> bool {
        !matches!(self, BlobError::BadName(_))
    }
}

/// The blob store.
#[derive(Debug, Clone)]
pub struct Blobs {
    dir: PathBuf,
}

impl Blobs {
    /// Opens (creating) the store in `dir`, removing what a crash left in the staging folder.
    ///
    /// # Errors
    /// When the folder cannot be created or emptied.
    pub fn open(dir: &Path) -> std::io::Result<Blobs> {
        let staging = dir.join(STAGING);
        match fs::remove_dir_all(&staging) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        fs::create_dir_all(&staging)?;
        Ok(Blobs {
            dir: dir.to_path_buf(),
        })
    }

    /// Opens an existing store without changing anything in it (`fsck`, `export-pgxn`): a
    /// running node's staging folder is left alone.
    ///
    /// # Errors
    /// When the folder does not exist.
    pub fn open_read_only(dir: &Path) -> std::io::Result<Blobs> {
        if !dir.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no blob store at {}", dir.display()),
            ));
        }
        Ok(Blobs {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, sha256_hex: &str) -> Option<PathBuf> {
        let ok = sha256_hex.len() == 64
            && sha256_hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| self.dir.join(&sha256_hex[..2]).join(sha256_hex))
    }

    fn checked_path(&self, sha256_hex: &str) -> Result<PathBuf, BlobError> {
        self.path(sha256_hex)
            .ok_or_else(|| BlobError::BadName(sha256_hex.chars().take(80).collect()))
    }

    fn io(sha256_hex: &str, e: std::io::Error) -> BlobError {
        if e.kind() == std::io::ErrorKind::NotFound {
            BlobError::Missing(sha256_hex.to_string())
        } else {
            BlobError::Io(sha256_hex.to_string(), e)
        }
    }

    /// Stores `data` durably; returns its SHA-256 hex.
    ///
    /// # Errors
    /// When writing or syncing fails.
    pub fn put(&self, data: &[u8]) -> std::io::Result<String> {
        let h = hex(&sha256(data));
        if let Some(staged) = self.stage_as(&h, data)? {
            self.publish(vec![staged])?;
        }
        Ok(h)
    }

    /// Writes `data` under a temporary name; [`Blobs::publish`] makes it durable and visible.
    /// `None` when the blob is stored already.
    ///
    /// # Errors
    /// When writing fails.
    pub fn stage(&self, data: &[u8]) -> std::io::Result<Option<Staged>> {
        self.stage_as(&hex(&sha256(data)), data)
    }

    fn stage_as(&self, h: &str, data: &[u8]) -> std::io::Result<Option<Staged>> {
        let path = self.path(h).unwrap_or_default();
        if path.exists() {
            return Ok(None);
        }
        let n = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = self.dir.join(STAGING).join(format!("{h}.{n}"));
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
        let few = staged.len() <= FEW;
        let root = File::open(&self.dir)?;
        if few {
            for s in &staged {
                File::open(&s.tmp)?.sync_all()?;
            }
        } else {
            rustix::fs::syncfs(&root)?;
        }
        let (mut dirs, mut made) = (BTreeSet::new(), false);
        for s in &staged {
            let dir = s.path.parent().unwrap_or(&self.dir);
            // Another writer may make the same prefix folder at the same moment.
            if dirs.insert(dir.to_path_buf()) && !dir.exists() {
                match fs::create_dir(dir) {
                    Ok(()) => made = true,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(e),
                }
            }
            fs::rename(&s.tmp, &s.path)?;
        }
        if few {
            for d in dirs {
                File::open(d)?.sync_all()?;
            }
            // A prefix folder made just now is a name in the store's own folder.
            if made {
                root.sync_all()?;
            }
            Ok(())
        } else {
            Ok(rustix::fs::syncfs(&root)?)
        }
    }

    /// Reads a blob whole and checks that its bytes hash to its name.
    ///
    /// # Errors
    /// [`BlobError::Missing`], [`BlobError::Damaged`], or the disk's error.
    pub fn get(&self, sha256_hex: &str) -> Result<Vec<u8>, BlobError> {
        let path = self.checked_path(sha256_hex)?;
        let bytes = fs::read(path).map_err(|e| Blobs::io(sha256_hex, e))?;
        let got = hex(&sha256(&bytes));
        if got != sha256_hex {
            return Err(BlobError::Damaged(sha256_hex.to_string(), got));
        }
        Ok(bytes)
    }

    /// Opens a blob for streaming, with its length; the reader checks the hash as it goes
    /// (`serve`'s download stream).
    ///
    /// # Errors
    /// [`BlobError::Missing`] or the disk's error.
    pub fn open_file(&self, sha256_hex: &str) -> Result<(File, u64), BlobError> {
        let path = self.checked_path(sha256_hex)?;
        let f = File::open(path).map_err(|e| Blobs::io(sha256_hex, e))?;
        let len = f.metadata().map_err(|e| Blobs::io(sha256_hex, e))?.len();
        Ok((f, len))
    }

    /// Whether a blob is stored.
    pub fn has(&self, sha256_hex: &str) -> bool {
        self.path(sha256_hex).is_some_and(|p| p.exists())
    }

    /// Reads up to `max` bytes of a blob from `offset`; returns its total size and the bytes.
    /// Peers check what they fetch against the hash, so chunks are not verified here.
    ///
    /// # Errors
    /// When it is missing or unreadable.
    pub fn read_chunk(
        &self,
        sha256_hex: &str,
        offset: u64,
        max: usize,
    ) -> Result<(u64, Vec<u8>), BlobError> {
        use std::io::{Read, Seek, SeekFrom};
        let io = |e| Blobs::io(sha256_hex, e);
        let (mut f, total) = self.open_file(sha256_hex)?;
        f.seek(SeekFrom::Start(offset.min(total))).map_err(io)?;
        let mut buf = Vec::with_capacity(max.min((total - offset.min(total)) as usize));
        f.take(max as u64).read_to_end(&mut buf).map_err(io)?;
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
        assert!(matches!(blobs.get(&hb), Err(BlobError::Missing(_))));
        // A crash between staging and publishing leaves a temporary file; opening sweeps it.
        let c = blobs.stage(b"third").unwrap().unwrap();
        let tmp = c.tmp.clone();
        std::mem::forget(c);
        assert!(tmp.exists());
        let reopened = Blobs::open(dir.path()).unwrap();
        assert!(!tmp.exists());
        assert!(!reopened.has(&hex(&sha256(b"third"))));
        assert_eq!(reopened.get(&ha).unwrap(), b"first");
        // A damaged blob is an error, never other bytes.
        fs::write(dir.path().join(&ha[..2]).join(&ha), b"firsT").unwrap();
        assert!(matches!(reopened.get(&ha), Err(BlobError::Damaged(..))));
        // Opening read-only leaves a running node's staging folder alone.
        let d = blobs.stage(b"fourth").unwrap().unwrap();
        Blobs::open_read_only(dir.path()).unwrap();
        assert!(d.tmp.exists());
        assert!(Blobs::open_read_only(&dir.path().join("nowhere")).is_err());
    }

    #[test]
    fn concurrent_writers_share_new_prefix_folders() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        // Started together, so that they meet on the prefix folders none has made yet.
        let start = std::sync::Barrier::new(8);
        std::thread::scope(|scope| {
            for t in 0..8u32 {
                let (blobs, start) = (&blobs, &start);
                scope.spawn(move || {
                    start.wait();
                    for i in 0..64u32 {
                        blobs
                            .put(&[t.to_be_bytes(), i.to_be_bytes()].concat())
                            .unwrap();
                    }
                });
            }
        });
        for t in 0..8u32 {
            for i in 0..64u32 {
                let data = [t.to_be_bytes(), i.to_be_bytes()].concat();
                assert_eq!(blobs.get(&hex(&sha256(&data))).unwrap(), data);
            }
        }
    }
}
