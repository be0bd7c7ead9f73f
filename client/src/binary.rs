//! Binary packages on the client (`spec/binary.md`): packing a staged install by `pg_config`
//! directory, choosing the package a trusted builder quorum attests for this machine and proving
//! it (each attestation's entry, signature, key and inclusion in the checkpoint the release was
//! verified in, then the package's digest and contents), and writing its files where this
//! PostgreSQL keeps them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use futures::future::try_join_all;
use pgext_spec::api;
use pgext_spec::authority::Registry;
use pgext_spec::binary::{Binary, DIRS, Manifest, Target, pack, read_binary};
use pgext_spec::entry::{Action, Installcheck};

use crate::pg::PgInstall;
use crate::trust::RegistryConfig;
use crate::verify::{Remote, VerifiedRelease};
use crate::{Error, VerifyError};

/// Each `pg_config` directory of [`DIRS`] this installation reports, by folder name.
pub fn pg_dirs(pg: &PgInstall) -> Vec<(&'static str, PathBuf)> {
    DIRS.iter()
        .filter_map(|(name, flag)| {
            let dir = pg.value(flag).ok()?;
            dir.starts_with('/').then(|| (*name, PathBuf::from(dir)))
        })
        .collect()
}

/// The folder of [`DIRS`] and the path below it for an absolute install path: the longest
/// directory holding it, the first of [`DIRS`] among equals.
fn place(dirs: &[(&'static str, PathBuf)], file: &Path) -> Option<(String, String)> {
    let mut best: Option<(&str, &Path)> = None;
    for (name, dir) in dirs {
        if file.starts_with(dir)
            && best.is_none_or(|(_, b)| dir.components().count() > b.components().count())
        {
            best = Some((name, dir));
        }
    }
    let (name, dir) = best?;
    let rel = file.strip_prefix(dir).ok()?.to_str()?.to_string();
    (!rel.is_empty()).then(|| (name.to_string(), rel))
}

/// Packs what a staged install (`make install DESTDIR=stage`) wrote: `files` are the absolute
/// paths the install would write, each read from below `stage`.
///
/// # Errors
/// A file outside every `pg_config` directory, or one that cannot be read.
pub fn pack_staged(
    stage: &Path,
    files: &[PathBuf],
    pg: &PgInstall,
    manifest: &Manifest,
) -> Result<Vec<u8>, Error> {
    use std::os::unix::fs::PermissionsExt as _;
    let dirs = pg_dirs(pg);
    let mut packed = BTreeMap::new();
    for f in files {
        let (dir, rel) = place(&dirs, f).ok_or_else(|| {
            Error::Release(format!(
                "{} is outside every pg_config directory: a binary package cannot carry it",
                f.display()
            ))
        })?;
        let staged = stage.join(f.strip_prefix("/").unwrap_or(f));
        let meta = staged
            .metadata()
            .map_err(|e| Error::Config(format!("{}: {e}", staged.display())))?;
        let data = std::fs::read(&staged)
            .map_err(|e| Error::Config(format!("{}: {e}", staged.display())))?;
        packed.insert((dir, rel), (data, meta.permissions().mode() & 0o111 != 0));
    }
    pack(manifest, &packed).map_err(|e| Error::Release(e.to_string()))
}

/// The paths a package's files go to in `pg`, in the package's order.
///
/// # Errors
/// A folder this installation's `pg_config` does not report.
pub fn destinations(pg: &PgInstall, b: &Binary) -> Result<Vec<PathBuf>, Error> {
    let dirs = pg_dirs(pg);
    b.files
        .keys()
        .map(|(dir, rel)| {
            let base = dirs
                .iter()
                .find(|(d, _)| d == dir)
                .map(|(_, p)| p)
                .ok_or_else(|| {
                    Error::Install(format!(
                        "{} does not report the {dir} directory the package installs into",
                        pg.pg_config_path().display()
                    ))
                })?;
            Ok(base.join(rel))
        })
        .collect()
}

/// Writes a package's files to `dests` (their [`destinations`] in a PostgreSQL), through
/// `sudo` when asked; returns them, sorted.
///
/// # Errors
/// When a folder is not writable (without `sudo`) or a file cannot be written.
pub fn install_files(b: &Binary, dests: Vec<PathBuf>, sudo: bool) -> Result<Vec<PathBuf>, Error> {
    let tmp = tempfile::tempdir().map_err(|e| Error::Config(e.to_string()))?;
    for (((_, _), (data, exec)), dest) in b.files.iter().zip(&dests) {
        let mode = if *exec { "0755" } else { "0644" };
        if sudo {
            let src = tmp.path().join("file");
            std::fs::write(&src, data).map_err(|e| Error::Config(e.to_string()))?;
            let out = Command::new("sudo")
                .args(["install", "-D", "-m", mode])
                .arg(&src)
                .arg(dest)
                .output()
                .map_err(|e| Error::Install(format!("cannot run sudo install: {e}")))?;
            if !out.status.success() {
                return Err(Error::Install(format!(
                    "sudo install {}: {}",
                    dest.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            continue;
        }
        let denied = |e: std::io::Error| {
            Error::Install(format!(
                "cannot write {}: {e}{}",
                dest.display(),
                if e.kind() == std::io::ErrorKind::PermissionDenied {
                    " (run again with --sudo)"
                } else {
                    ""
                }
            ))
        };
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(denied)?;
        }
        // Written aside, then renamed: a server loading the library never sees half of it.
        let part = dest.with_extension("pgext-part");
        std::fs::write(&part, data).map_err(denied)?;
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(
            &part,
            std::fs::Permissions::from_mode(if *exec { 0o755 } else { 0o644 }),
        )
        .map_err(denied)?;
        std::fs::rename(&part, dest).map_err(denied)?;
    }
    let mut files = dests;
    files.sort();
    Ok(files)
}

/// A binary package whose every check passed.
#[derive(Debug, Clone)]
pub struct VerifiedBinary {
    /// Its contents.
    pub binary: Binary,
    /// Its SHA-256.
    pub sha256: String,
    /// The trusted builders whose attestations of it verified.
    pub builders: Vec<String>,
    /// The target they built for.
    pub target: Target,
}

/// What to install.
#[derive(Debug)]
pub enum Choice {
    /// A verified binary.
    Binary(Box<VerifiedBinary>),
    /// Build from source, for this reason (no binary for this target, builders disagree, …).
    Source(String),
}

/// Chooses and proves the binary package of the verified release `v` for `local`: attested by
/// at least `builder_quorum` of the registry's trusted builders, for a target that loads here,
/// whose tests did not fail, with no trusted builder attesting other bytes for that target.
/// Each attestation is checked like the release: its entry is the one the log holds (a build of
/// exactly this release entry), signed by a key of the builder still active, included in the
/// checkpoint `v` was verified in; then the package's SHA-256, size and contents.
///
/// # Errors
/// A check that failed (tampering): the caller installs nothing. A missing or unusable binary is
/// not an error but [`Choice::Source`].
pub async fn choose(
    reg: &RegistryConfig,
    v: &VerifiedRelease,
    local: &Target,
) -> Result<Choice, Error> {
    if reg.builders.is_empty() {
        return Ok(Choice::Source(format!(
            "registry {} trusts no builder (pgext registry add … --builder ACCOUNT)",
            reg.name
        )));
    }
    let remote = &Remote::new(reg);
    let (dist, version) = (&v.provenance.dist, &v.provenance.version);
    let doc: api::Builds = match remote
        .json(&format!("/api/v1/dists/{dist}/{version}/builds"))
        .await
    {
        Ok(d) => d,
        Err(Error::Verify(VerifyError::NotFound(_))) => {
            return Ok(Choice::Source(format!(
                "the registry lists no build of {dist} {version}"
            )));
        }
        Err(e) => return Err(e),
    };
    let trusted = |b: &str| reg.builders.iter().any(|t| t.eq_ignore_ascii_case(b));
    let size = v.provenance.checkpoint_size;
    let usable: Vec<&api::BuildDoc> = doc
        .builds
        .iter()
        .filter(|b| trusted(&b.builder) && b.index < size)
        .filter(|b| b.target.loads_on(local).is_ok())
        .filter(|b| b.installcheck != Installcheck::Failed)
        .collect();
    if usable.is_empty() {
        return Ok(Choice::Source(format!(
            "no trusted builder attests a binary of {dist} {version} for {} ({})",
            local.slug(),
            local.libc
        )));
    }
    let packages: BTreeSet<&str> = usable.iter().map(|b| b.sha256.as_str()).collect();
    if packages.len() > 1 {
        let who: Vec<String> = usable
            .iter()
            .map(|b| {
                format!(
                    "{} attests {}",
                    b.builder,
                    &b.sha256[..12.min(b.sha256.len())]
                )
            })
            .collect();
        return Ok(Choice::Source(format!(
            "the trusted builders disagree on {dist} {version} for {}: {}",
            local.slug(),
            who.join(", ")
        )));
    }
    let builders: BTreeSet<String> = usable
        .iter()
        .map(|b| b.builder.to_ascii_lowercase())
        .collect();
    if builders.len() < reg.builder_quorum.max(1) {
        return Ok(Choice::Source(format!(
            "{} of the {} trusted builders the policy needs attest {dist} {version} for {}",
            builders.len(),
            reg.builder_quorum,
            local.slug()
        )));
    }
    let release_hash = pgext_log::leaf_hash(&v.entry.to_bytes()).to_hex();
    let bad = |m: String| Error::Verify(VerifyError::Binary(m));
    // The attestations, and the history of each builder's keys, proven in the checkpoint.
    let entries = try_join_all(
        usable
            .iter()
            .map(|b| async move { remote.entry(b.index).await.map(|e| (b.index, e)) }),
    )
    .await?;
    for (doc_build, (index, entry)) in usable.iter().zip(&entries) {
        let Action::Build(b) = &entry.statement.action else {
            return Err(bad(format!("log entry {index} is not a build attestation")));
        };
        if !entry
            .statement
            .actor
            .eq_ignore_ascii_case(&doc_build.builder)
            || b.sha256 != doc_build.sha256
            || b.size != doc_build.size
            || b.target != doc_build.target
            || b.installcheck != doc_build.installcheck
        {
            return Err(bad(format!(
                "the node described log entry {index} otherwise than the log holds it"
            )));
        }
        if b.release_index != v.provenance.index || b.release_hash != release_hash {
            return Err(bad(format!(
                "attestation {index} names entry {} ({}), not the release verified ({} {})",
                b.release_index, b.release_hash, v.provenance.index, release_hash
            )));
        }
    }
    // Each builder's key history, fetched for all builders at once.
    let histories = try_join_all(builders.iter().map(|builder| async move {
        let account: api::Account = remote.json(&format!("/api/v1/accounts/{builder}")).await?;
        let earlier = try_join_all(
            account
                .history
                .iter()
                .copied()
                .filter(|&i| i < size)
                .map(|i| async move { remote.entry(i).await.map(|e| (i, e)) }),
        )
        .await?;
        Ok::<_, Error>((builder.clone(), earlier))
    }))
    .await?;
    let mut proven: Vec<(u64, pgext_spec::entry::Entry)> = entries.clone();
    let mut states: BTreeMap<String, Registry> = BTreeMap::new();
    for (builder, earlier) in histories {
        let mut state = Registry::default();
        for (i, e) in &earlier {
            state.apply_logged(*i, e);
        }
        proven.extend(earlier);
        states.insert(builder, state);
    }
    for (index, entry) in &entries {
        let state = &states[&entry.statement.actor.to_ascii_lowercase()];
        // The key must be active at the checkpoint: a builder that revoked it withdrew what it
        // signed.
        state.check_publisher(entry).map_err(|v| {
            bad(format!(
                "attestation {index} by {}: {}",
                entry.statement.actor, v
            ))
        })?;
    }
    let (signed, _) = crate::verify::open_with_policy(reg, &v.provenance.checkpoint)?;
    let root = signed.checkpoint.root;
    let proofs = try_join_all(
        proven
            .iter()
            .map(|(i, _)| async move { remote.inclusion(*i, size).await }),
    )
    .await?;
    for ((i, e), proof) in proven.iter().zip(proofs) {
        pgext_log::verify_inclusion(
            *i,
            size,
            pgext_log::leaf_hash(&e.to_bytes()).as_ref(),
            &proof,
            root.as_ref(),
        )
        .map_err(|err| {
            Error::Verify(VerifyError::Inclusion {
                index: *i,
                size,
                detail: err.to_string(),
            })
        })?;
    }
    // The package: the bytes attested, then its contents and its manifest.
    let chosen = usable[0];
    let package = remote.get(&format!("/{}", chosen.url)).await?;
    let got = pgext_log::hex(&pgext_log::sha256(&package));
    if got != chosen.sha256 || package.len() as u64 != chosen.size {
        return Err(bad(format!(
            "its SHA-256 is {got} ({} bytes) but the attestations name {} ({} bytes): the bytes were changed on the way or on the server",
            package.len(),
            chosen.sha256,
            chosen.size
        )));
    }
    let binary = read_binary(&package, &pgext_spec::archive::Limits::default())
        .map_err(|e| bad(e.to_string()))?;
    let m = &binary.manifest;
    if m.target != chosen.target
        || !m.package.name.eq_ignore_ascii_case(dist)
        || !m.package.version.eq_ignore_ascii_case(version)
    {
        return Err(bad(
            "its trunk.json names another release or target than its attestations".into(),
        ));
    }
    Ok(Choice::Binary(Box::new(VerifiedBinary {
        binary,
        sha256: got,
        builders: builders.into_iter().collect(),
        target: chosen.target.clone(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_go_to_the_deepest_directory_holding_them() {
        let dirs = vec![
            ("pkglib", PathBuf::from("/pg/lib")),
            ("lib", PathBuf::from("/pg/lib")),
            ("include", PathBuf::from("/usr/include/postgresql")),
            ("server", PathBuf::from("/usr/include/postgresql/15/server")),
            ("share", PathBuf::from("/pg/share")),
        ];
        let at = |p: &str| place(&dirs, Path::new(p));
        assert_eq!(
            at("/pg/lib/pair.so"),
            Some(("pkglib".into(), "pair.so".into())),
            "the first of equals"
        );
        assert_eq!(
            at("/usr/include/postgresql/15/server/extension/pair/pair.h"),
            Some(("server".into(), "extension/pair/pair.h".into()))
        );
        assert_eq!(
            at("/pg/share/extension/pair.control"),
            Some(("share".into(), "extension/pair.control".into()))
        );
        assert_eq!(at("/etc/passwd"), None);
        assert_eq!(at("/pg/lib"), None);
    }
}
