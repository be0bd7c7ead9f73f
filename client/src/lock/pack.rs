//! Offline packs (`spec/client.md`, Offline packs): `pgext pack` writes one zip holding a lock,
//! its release archives and binary packages, and a tlog-proof file for every entry they rest on,
//! each proving inclusion in the lock's checkpoint (with its cosignatures);
//! `pgext sync --from PACK` verifies all of it with no network and installs.
//!
//! Layout, below `pgext-pack/`: `pgext.lock`; `archives/SHA256.zip`; `binaries/SHA256.zip`;
//! `proofs/REGISTRY/INDEX.tlog-proof` (the entry in its `extra` line).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::Path;

use pgext_log::{ProofFile, leaf_hash};
use pgext_spec::archive::{Limits, deterministic_zip};
use pgext_spec::binary::read_binary;
use pgext_spec::entry::{Action, Entry};

use super::lockfile::{Lock, LockedDist};
use super::{SyncPlan, SyncStep, check_locked, installed_as_locked};
use crate::binary::VerifiedBinary;
use crate::installed;
use crate::ops::Context;
use crate::request::{Select, Stability, Want};
use crate::trust::RegistryConfig;
use crate::verify::{Remote, check_included, open_with_policy, verify_offline};
use crate::{Error, VerifyError};

/// The folder every member is below.
const ROOT: &str = "pgext-pack";
/// Members one pack may hold.
const MAX_MEMBERS: usize = 8192;
/// The largest member read (a release archive or binary package).
const MAX_MEMBER: u64 = 256 << 20;

fn proof_name(registry: &str, index: u64) -> String {
    format!("proofs/{registry}/{index}.tlog-proof")
}

fn bad(what: String) -> Error {
    Error::Verify(VerifyError::Malformed(what))
}

/// The size and root of a locked registry's checkpoint.
fn checkpoint_of(reg: &RegistryConfig, note: &str) -> Result<(u64, pgext_log::Hash), Error> {
    let (signed, _) = open_with_policy(reg, note)?;
    Ok((signed.checkpoint.size, signed.checkpoint.root))
}

/// A tlog-proof file for `entry` at `index`, proven against the lock's checkpoint.
async fn proof_file(
    remote: &Remote,
    reg: &RegistryConfig,
    note: &str,
    index: u64,
    entry: &Entry,
) -> Result<Vec<u8>, Error> {
    let (size, root) = checkpoint_of(reg, note)?;
    if index >= size {
        return Err(bad(format!(
            "entry {index} is not in the lock's checkpoint of size {size}"
        )));
    }
    let bytes = entry.to_bytes();
    let proof = remote.inclusion(index, size).await?;
    check_included(index, size, &bytes, &proof, &root)?;
    let proof = proof
        .iter()
        .map(|h| {
            pgext_log::Hash::from_slice(h).ok_or_else(|| bad(format!("entry {index}: bad hash")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ProofFile {
        extra: Some(bytes),
        index,
        proof,
        checkpoint: note.as_bytes().to_vec(),
    }
    .to_bytes())
}

impl Context {
    /// Writes the pack of `lock` to `out`: each release verified online and held to the lock,
    /// its archive, its binary package and attestations, and a proof file for each entry at
    /// the lock's checkpoint.
    ///
    /// # Errors
    /// A lock that does not match its log; any failed verification or download.
    pub async fn pack(&self, lock: &Lock, out: &Path) -> Result<usize, Error> {
        let mut files: BTreeMap<String, (Vec<u8>, bool)> = BTreeMap::new();
        files.insert("pgext.lock".into(), (lock.to_bytes()?, false));
        for d in &lock.dists {
            let reg = self.locked_registry_for(lock, d)?;
            let note = &lock
                .registry(&d.registry)
                .ok_or_else(|| bad(format!("no registry {}", d.registry)))?
                .checkpoint;
            let remote = Remote::new(&reg);
            let select = Select {
                want: Want::Exact(d.version.clone()),
                stability: Stability::Unstable,
            };
            let v = self.fetch_in(&reg, &d.name, &select).await?;
            check_locked(d, &v)?;
            let proof = proof_file(&remote, &reg, note, d.index, &v.entry).await?;
            files.insert(proof_name(&d.registry, d.index), (proof, false));
            files.insert(format!("archives/{}.zip", d.sha256), (v.zip.clone(), false));
            let Some(b) = &d.binary else { continue };
            let path = format!(
                "/api/v1/dists/{}/{}/builds/{}",
                d.name.to_ascii_lowercase(),
                d.version.to_ascii_lowercase(),
                b.sha256
            );
            let package = remote
                .get_limited(&path, &crate::progress::Quiet, Some(b.size))
                .await?;
            if pgext_log::hex(&pgext_log::sha256(&package)) != b.sha256 {
                return Err(Error::Verify(VerifyError::Binary(format!(
                    "the package of {} {} is not the one the lock names",
                    d.name, d.version
                ))));
            }
            files.insert(format!("binaries/{}.zip", b.sha256), (package, false));
            for &i in &b.attestations {
                let entry = remote.entry(i).await?;
                let proof = proof_file(&remote, &reg, note, i, &entry).await?;
                files.insert(proof_name(&d.registry, i), (proof, false));
            }
        }
        let zip = deterministic_zip(ROOT, &files).map_err(|e| Error::Config(e.to_string()))?;
        crate::trust::write_atomically(out, &zip)?;
        Ok(zip.len())
    }
}

/// A pack opened for reading.
pub struct Pack {
    zip: zip::ZipArchive<std::fs::File>,
    /// The lock it carries.
    pub lock: Lock,
}

impl std::fmt::Debug for Pack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pack").field("lock", &self.lock).finish()
    }
}

impl Pack {
    /// Opens a pack and reads its lock.
    ///
    /// # Errors
    /// When it is not a pack: not a zip, too many members, no lock, or a lock that does not
    /// read.
    pub fn open(path: &Path) -> Result<Pack, Error> {
        let file = std::fs::File::open(path)
            .map_err(|e| Error::Request(format!("{}: {e}", path.display())))?;
        let zip = zip::ZipArchive::new(file)
            .map_err(|e| bad(format!("{} is not a pack: {e}", path.display())))?;
        if zip.len() > MAX_MEMBERS {
            return Err(bad(format!(
                "{} has {} members (at most {MAX_MEMBERS})",
                path.display(),
                zip.len()
            )));
        }
        let mut pack = Pack {
            zip,
            lock: Lock {
                format: 0,
                manifest_sha256: String::new(),
                pg_config: None,
                postgres: String::new(),
                registries: Vec::new(),
                dists: Vec::new(),
            },
        };
        let bytes = pack
            .member("pgext.lock", 16 << 20)?
            .ok_or_else(|| bad(format!("{} holds no pgext.lock", path.display())))?;
        pack.lock = Lock::parse(&path.join("pgext.lock"), &bytes)?;
        Ok(pack)
    }

    /// The member `name` (below the pack's folder), read whole up to `max` bytes.
    fn member(&mut self, name: &str, max: u64) -> Result<Option<Vec<u8>>, Error> {
        let full = format!("{ROOT}/{name}");
        let mut f = match self.zip.by_name(&full) {
            Ok(f) => f,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(bad(format!("{full}: {e}"))),
        };
        if f.size() > max {
            return Err(bad(format!("{full} is larger than {max} bytes")));
        }
        let mut out = Vec::with_capacity(f.size() as usize);
        (&mut f)
            .take(max + 1)
            .read_to_end(&mut out)
            .map_err(|e| bad(format!("{full}: {e}")))?;
        if out.len() as u64 > max {
            return Err(bad(format!("{full} is larger than {max} bytes")));
        }
        Ok(Some(out))
    }

    fn required(&mut self, name: &str, what: String) -> Result<Vec<u8>, Error> {
        self.member(name, MAX_MEMBER)?.ok_or_else(|| {
            bad(format!(
                "the pack has no {name} ({what}): it is incomplete; nothing was installed"
            ))
        })
    }
}

/// Verifies a locked binary from the pack with no network: each counted attestation's proof
/// file holds a build entry of exactly this release, by a builder the registry trusts, for the
/// locked package, included in the lock's checkpoint; enough distinct builders; then the
/// package's digest and contents, for a target that loads here.
fn verify_binary_offline(
    pack: &mut Pack,
    reg: &RegistryConfig,
    d: &LockedDist,
    release_hash: &str,
    note: &str,
    local: &pgext_spec::binary::Target,
) -> Result<VerifiedBinary, Error> {
    let b = d
        .binary
        .as_ref()
        .ok_or_else(|| bad(format!("{} has no binary", d.name)))?;
    let fail = |m: String| Error::Verify(VerifyError::Binary(m));
    // Every proof file must carry the lock's checkpoint (checked below): opened once.
    let (size, root) = checkpoint_of(reg, note)?;
    let mut builders = BTreeSet::new();
    let mut target = None;
    for &i in &b.attestations {
        let bytes = pack.required(
            &proof_name(&d.registry, i),
            format!("the proof of attestation {i} of {} {}", d.name, d.version),
        )?;
        let file = ProofFile::parse(&bytes)
            .map_err(|e| bad(format!("the proof file of entry {i}: {e}")))?;
        let entry_bytes = file
            .extra
            .as_deref()
            .ok_or_else(|| bad(format!("the proof file of entry {i} carries no entry")))?;
        if file.index != i || file.checkpoint != note.as_bytes() {
            return Err(bad(format!(
                "the proof file of entry {i} is for entry {} at another checkpoint than the lock's: a foreign proof file",
                file.index
            )));
        }
        let proof: Vec<Vec<u8>> = file.proof.iter().map(|h| h.as_bytes().to_vec()).collect();
        check_included(i, size, entry_bytes, &proof, &root)?;
        let entry = Entry::parse(entry_bytes)
            .map_err(|e| bad(format!("the proof file's entry {i}: {e}")))?;
        let Action::Build(build) = &entry.statement.action else {
            return Err(fail(format!("entry {i} is not a build attestation")));
        };
        // As online: an attestation whose tests failed is not counted.
        if build.installcheck == pgext_spec::entry::Installcheck::Failed {
            continue;
        }
        let trusted = reg
            .builders
            .iter()
            .any(|t| t.eq_ignore_ascii_case(&entry.statement.actor));
        if !trusted
            || build.release_index != d.index
            || build.release_hash != release_hash
            || build.sha256 != b.sha256
        {
            return Err(fail(format!(
                "attestation {i} is not a trusted builder's attestation of package {} of {} {}",
                b.sha256, d.name, d.version
            )));
        }
        builders.insert(entry.statement.actor.to_ascii_lowercase());
        target = Some(build.target.clone());
    }
    if builders.len() < reg.builder_quorum.max(1) {
        return Err(fail(format!(
            "{} of the {} trusted builders the policy needs attest {} {}",
            builders.len(),
            reg.builder_quorum.max(1),
            d.name,
            d.version
        )));
    }
    let target = target.ok_or_else(|| fail("no attestation".into()))?;
    target.loads_on(local).map_err(|why| {
        fail(format!(
            "{} {} was built for {}, which does not load here: {why}",
            d.name,
            d.version,
            target.slug()
        ))
    })?;
    let package = pack.required(
        &format!("binaries/{}.zip", b.sha256),
        format!("the binary package of {} {}", d.name, d.version),
    )?;
    let got = pgext_log::hex(&pgext_log::sha256(&package));
    if got != b.sha256 || package.len() as u64 != b.size {
        return Err(fail(format!(
            "the pack's package of {} {} is {got}, not the {} attested",
            d.name, d.version, b.sha256
        )));
    }
    let binary = read_binary(&package, &Limits::default()).map_err(|e| fail(e.to_string()))?;
    let m = &binary.manifest;
    if m.target != target
        || !m.package.name.eq_ignore_ascii_case(&d.name)
        || !m.package.version.eq_ignore_ascii_case(&d.version)
    {
        return Err(fail(
            "its trunk.json names another release or target than its attestations".into(),
        ));
    }
    Ok(VerifiedBinary {
        binary,
        sha256: got,
        size: package.len() as u64,
        builders: builders.into_iter().collect(),
        target,
        attestations: b.attestations.clone(),
    })
}

impl Context {
    /// Verifies a pack with no network and works out what a sync from it changes: each
    /// archive with its proof file (`verify_offline`), at the lock's checkpoint, held to the
    /// lock; each binary with its attestations. Nothing is installed.
    ///
    /// # Errors
    /// A missing or foreign member, a lock that does not match the proofs, any failed check.
    pub fn sync_plan_offline(&self, pack: &mut Pack, pack_path: &Path) -> Result<SyncPlan, Error> {
        let lock = pack.lock.clone();
        let records = installed::list(&self.state, Some(&self.pg.key()))?;
        let mut local = None;
        let mut steps = Vec::new();
        for d in &lock.dists {
            let reg = self.locked_registry_for(&lock, d)?;
            let note = lock
                .registry(&d.registry)
                .map(|r| r.checkpoint.clone())
                .unwrap_or_default();
            let what = format!("{} {}", d.name, d.version);
            let archive = pack.required(
                &format!("archives/{}.zip", d.sha256),
                format!("the archive of {what}"),
            )?;
            let proof = pack.required(
                &proof_name(&d.registry, d.index),
                format!("the proof file of {what}"),
            )?;
            let mut v = verify_offline(&reg, &self.state, &archive, &proof)?;
            if v.provenance.checkpoint != note {
                return Err(bad(format!(
                    "the proof file of {what} is at another checkpoint than the lock's: a foreign proof file; nothing was installed"
                )));
            }
            check_locked(d, &v)?;
            let (change, from) = installed_as_locked(&records, d);
            super::keep_only_what_installs(&change, &mut v);
            let binary = match change {
                super::Change::Keep | super::Change::Adopt => None,
                _ if d.binary.is_some() => {
                    let here = self.local_target(&mut local)?;
                    let release_hash = leaf_hash(&v.entry.to_bytes()).to_hex();
                    Some(verify_binary_offline(
                        pack,
                        &reg,
                        d,
                        &release_hash,
                        &note,
                        here,
                    )?)
                }
                _ => None,
            };
            steps.push(SyncStep {
                locked: d.clone(),
                change,
                from,
                verified: v,
                binary,
            });
        }
        Ok(self.finish_sync(&lock, pack_path, records, steps))
    }
}
