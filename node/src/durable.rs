//! Small files written whole or not at all, and durably: keys, webhook progress. A temporary
//! file beside the target is written and fsynced, renamed over the target, and the folder is
//! fsynced so the rename itself survives a crash.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// Writes a secret file durably with mode 0600.
///
/// # Errors
/// When the file cannot be written.
pub fn write_secret(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_durably(path, bytes, 0o600)
}

/// Writes a file whole or not at all, durably, with `mode`.
///
/// # Errors
/// When the file cannot be written.
pub fn write_durably(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
        let mut f = opts
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(bytes)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.sync_all()
            .with_context(|| format!("flushing {}", tmp.display()))?;
    }
    fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("flushing {}", dir.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("state");
        write_durably(&path, b"one", 0o644).unwrap();
        write_durably(&path, b"two", 0o644).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["state"]);
        write_secret(&path, b"s").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // The mode applies to the new file the secret is written to.
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }
}
