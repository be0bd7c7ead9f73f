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
use pgext_spec::authority::{Registry, Rule};
use pgext_spec::binary::{Binary, DIRS, Manifest, Target, pack, read_binary};
use pgext_spec::entry::{Action, Entry, Installcheck};

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

/// Files by (folder of [`DIRS`], path below it) → (bytes, executable): a package's, or a
/// staged install's.
pub type Placed = BTreeMap<(String, String), (Vec<u8>, bool)>;

/// The folders of [`DIRS`] below a `--prefix` (`spec/client.md`, Rootless installs): libraries
/// in `PREFIX/lib`, control files and scripts in `PREFIX/share/extension`, the rest beside.
pub fn prefix_dirs(prefix: &Path) -> Vec<(&'static str, PathBuf)> {
    let at = |p: &str| prefix.join(p);
    vec![
        ("pkglib", at("lib")),
        ("lib", at("lib")),
        ("share", at("share")),
        ("doc", at("share/doc")),
        ("html", at("share/doc")),
        ("server", at("include/server")),
        ("pkginclude", at("include")),
        ("include", at("include")),
        ("bin", at("bin")),
        ("locale", at("share/locale")),
        ("man", at("share/man")),
        ("sysconf", at("etc")),
    ]
}

/// What a staged install (`make install DESTDIR=stage`) wrote, placed by folder: `files` are
/// the absolute paths the install would write, each read from below `stage`.
///
/// # Errors
/// A file outside every `pg_config` directory, or one that cannot be read.
pub fn staged(stage: &Path, files: &[PathBuf], pg: &PgInstall) -> Result<Placed, Error> {
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
    Ok(packed)
}

/// Packs what a staged install wrote ([`staged`]).
///
/// # Errors
/// As [`staged`], or when the package cannot be made.
pub fn pack_staged(
    stage: &Path,
    files: &[PathBuf],
    pg: &PgInstall,
    manifest: &Manifest,
) -> Result<Vec<u8>, Error> {
    let packed = staged(stage, files, pg)?;
    pack(manifest, &packed).map_err(|e| Error::Release(e.to_string()))
}

/// The paths a package's files go to in `pg`, in the package's order.
///
/// # Errors
/// A folder this installation's `pg_config` does not report.
pub fn destinations(pg: &PgInstall, b: &Binary) -> Result<Vec<PathBuf>, Error> {
    destinations_in(&pg_dirs(pg), &b.files, pg)
}

/// The paths `files` go to below `dirs` (an installation's, or a prefix's), in order.
///
/// # Errors
/// A folder `dirs` does not have.
pub fn destinations_in(
    dirs: &[(&'static str, PathBuf)],
    files: &Placed,
    pg: &PgInstall,
) -> Result<Vec<PathBuf>, Error> {
    files
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
pub fn install_files(b: &Placed, dests: Vec<PathBuf>, sudo: bool) -> Result<Vec<PathBuf>, Error> {
    let mut written = Vec::new();
    let result = write_files(b, &dests, sudo, &mut written);
    if let Err(e) = result {
        // Half an install is no install: what was written goes, so that nothing unrecorded
        // stays behind (and a retry is not refused as a file pgext did not install).
        let _ = crate::build::remove_files(&written, sudo);
        return Err(e);
    }
    let mut files = dests;
    files.sort();
    Ok(files)
}

fn write_files(
    b: &Placed,
    dests: &[PathBuf],
    sudo: bool,
    written: &mut Vec<PathBuf>,
) -> Result<(), Error> {
    let tmp = tempfile::tempdir().map_err(|e| Error::Config(e.to_string()))?;
    for (((_, _), (data, exec)), dest) in b.iter().zip(dests) {
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
            written.push(dest.clone());
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
        let renamed = std::fs::set_permissions(
            &part,
            std::fs::Permissions::from_mode(if *exec { 0o755 } else { 0o644 }),
        )
        .and_then(|()| std::fs::rename(&part, dest));
        if let Err(e) = renamed {
            let _ = std::fs::remove_file(&part);
            return Err(denied(e));
        }
        written.push(dest.clone());
    }
    Ok(())
}

/// A binary package whose every check passed.
#[derive(Debug, Clone)]
pub struct VerifiedBinary {
    /// Its contents.
    pub binary: Binary,
    /// Its SHA-256.
    pub sha256: String,
    /// Its size.
    pub size: u64,
    /// The trusted builders whose attestations of it verified.
    pub builders: Vec<String>,
    /// The target they built for.
    pub target: Target,
    /// The log indexes of the attestations counted.
    pub attestations: Vec<u64>,
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
/// exactly this release entry), its signature verifies with a key of the builder, included in
/// the checkpoint `v` was verified in; one signed with a key the builder has since retired or
/// revoked is withdrawn and not counted. Then the package's SHA-256, size and contents.
///
/// The builders' key histories are the node's account documents, as for publishers
/// (`spec/client.md`): a node that leaves a revocation out of one is not caught here.
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
    let none_for = || {
        Choice::Source(format!(
            "no trusted builder attests a binary of {dist} {version} for {} ({}) whose tests pass",
            local.slug(),
            local.libc
        ))
    };
    let candidates: Vec<&api::BuildDoc> = doc
        .builds
        .iter()
        .filter(|b| trusted(&b.builder) && b.index < size)
        .filter(|b| b.target.loads_on(local).is_ok())
        .collect();
    if candidates.is_empty() {
        return Ok(none_for());
    }
    let bad = |m: String| Error::Verify(VerifyError::Binary(m));

    // Every candidate's entry, as the log holds it, must be what the list said: a build of
    // exactly the release verified.
    let release_hash = pgext_log::leaf_hash(&v.entry.to_bytes()).to_hex();
    let entries = try_join_all(
        candidates
            .iter()
            .map(|b| async move { remote.entry(b.index).await.map(|e| (b.index, e)) }),
    )
    .await?;
    for (listed, (index, entry)) in candidates.iter().zip(&entries) {
        let Action::Build(b) = &entry.statement.action else {
            return Err(bad(format!("log entry {index} is not a build attestation")));
        };
        if !entry.statement.actor.eq_ignore_ascii_case(&listed.builder)
            || b.sha256 != listed.sha256
            || b.size != listed.size
            || b.target != listed.target
            || b.installcheck != listed.installcheck
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

    // Each builder's key history, for all builders at once: which keys are active now.
    let names: BTreeSet<String> = candidates
        .iter()
        .map(|b| b.builder.to_ascii_lowercase())
        .collect();
    let histories = try_join_all(names.iter().map(|builder| async move {
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
    let mut states: BTreeMap<String, (Registry, Vec<(u64, Entry)>)> = BTreeMap::new();
    for (builder, earlier) in histories {
        let mut state = Registry::default();
        for (i, e) in &earlier {
            state.apply_logged(*i, e);
        }
        states.insert(builder, (state, earlier));
    }
    let mut usable: Vec<(&api::BuildDoc, &(u64, Entry))> = Vec::new();
    for (listed, logged) in candidates.iter().zip(&entries) {
        let (state, _) = &states[&listed.builder.to_ascii_lowercase()];
        match state.check_publisher(&logged.1) {
            Ok(()) => usable.push((listed, logged)),
            // Signed with a key since retired or revoked: withdrawn by its builder.
            Err(v) if matches!(v.rule, Rule::KeyNotActive | Rule::UnknownActor) => {}
            Err(v) => {
                return Err(bad(format!(
                    "attestation {} by {}: {v}",
                    logged.0, listed.builder
                )));
            }
        }
    }
    usable.retain(|(b, _)| b.installcheck != Installcheck::Failed);
    if usable.is_empty() {
        return Ok(none_for());
    }
    let packages: BTreeSet<&str> = usable.iter().map(|(b, _)| b.sha256.as_str()).collect();
    if packages.len() > 1 {
        let who: Vec<String> = usable
            .iter()
            .map(|(b, _)| {
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
        .map(|(b, _)| b.builder.to_ascii_lowercase())
        .collect();
    let quorum = reg.builder_quorum.max(1);
    if builders.len() < quorum {
        return Ok(Choice::Source(format!(
            "{} of the {quorum} trusted builders the policy needs attest {dist} {version} for {}",
            builders.len(),
            local.slug()
        )));
    }

    // The attestations counted, and the key histories that judged them, are in the checkpoint.
    let mut proven: Vec<&(u64, Entry)> = usable.iter().map(|(_, e)| *e).collect();
    for b in &builders {
        proven.extend(states[b].1.iter());
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
        crate::verify::check_included(*i, size, &e.to_bytes(), &proof, &root)?;
    }

    // The package, by the digest attested (never a path the node chose), no longer than
    // attested; then its contents and its manifest.
    let chosen = usable[0].0;
    let path = format!(
        "/api/v1/dists/{}/{}/builds/{}",
        dist.to_ascii_lowercase(),
        version.to_ascii_lowercase(),
        chosen.sha256
    );
    let package = remote
        .get_limited(&path, &crate::progress::Quiet, Some(chosen.size))
        .await?;
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
        size: package.len() as u64,
        builders: builders.into_iter().collect(),
        target: chosen.target.clone(),
        attestations: usable.iter().map(|(_, (i, _))| *i).collect(),
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
