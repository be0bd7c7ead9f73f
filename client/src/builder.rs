//! `pgext builder run`: a service that follows a registry's log (as `pgext watch` does), and
//! for each release and each configured PostgreSQL verifies the release (as `pgext verify`
//! does), builds it in a fresh folder, runs `make installcheck` against a throwaway cluster of
//! that PostgreSQL, packs the staged install as a binary package and publishes the package
//! with a signed attestation (`spec/binary.md`, Builders). Its progress is kept in the state
//! folder, written after each release, so a restart resumes where it stopped; a release is
//! never attested twice for one target (the progress, the registry's list and the log's rules
//! each make sure of it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pgext_spec::api;
use pgext_spec::binary::{FORMAT_VERSION, Manifest, Package, Postgres, Target};
use pgext_spec::entry::{Action, Build, Entry, Installcheck, Release};
use serde::{Deserialize, Serialize};

use crate::author::Submitter;
use crate::build::{Builder as Make, unpack};
use crate::pg::PgInstall;
use crate::release::Identity;
use crate::request::Select;
use crate::scratch::Scratch;
use crate::target::{Compiler, compiler, local};
use crate::trust::{RegistryConfig, State};
use crate::verify::{Remote, fetch_verified};
use crate::watch::{WatchConfig, watch};
use crate::{Error, VerifyError};

/// What a builder does.
#[derive(Debug, Clone)]
pub struct BuilderConfig {
    /// The registry followed and published to.
    pub registry: RegistryConfig,
    /// One target per PostgreSQL.
    pub pg_configs: Vec<PathBuf>,
    /// The builder's account and signing key.
    pub identity: Identity,
    /// Progress, logs and the remembered checkpoint live here.
    pub state_dir: PathBuf,
    /// Where releases are built (a fresh folder below it per release and target).
    pub work_dir: PathBuf,
    /// Stop once every release up to the current checkpoint is handled.
    pub once: bool,
    /// How often to look for a new checkpoint.
    pub interval: Duration,
    /// Attempts for a step that failed for a passing reason (a node unreachable).
    pub attempts: u32,
    /// Install the OS packages a release needs (the registry's mapping of its purls) before
    /// building it.
    pub install_system_deps: bool,
}

/// One PostgreSQL built for.
#[derive(Debug, Clone)]
struct Platform {
    pg: PgInstall,
    compiler: Compiler,
    target: Target,
}

/// What happened to one release on one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Log index of the release.
    pub index: u64,
    /// Distribution.
    pub dist: String,
    /// Version.
    pub version: String,
    /// The target's slug.
    pub target: String,
    /// `attested`, `already` (attested before), `failed` or `skipped`.
    pub result: String,
    /// The attestation's log index, when attested.
    pub attestation: Option<u64>,
    /// `make installcheck`'s result, when built.
    pub installcheck: Option<Installcheck>,
    /// Why, when failed or skipped.
    pub detail: Option<String>,
}

/// The builder's progress, one file per registry and account.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Progress {
    /// Per target (its key), the next log index to look at: a PostgreSQL added later is built
    /// for from the first release on.
    next: BTreeMap<String, u64>,
    /// `dist@version target` → the attestation's index.
    done: BTreeMap<String, u64>,
    /// `dist@version target` → why it failed (not tried again).
    failed: BTreeMap<String, String>,
}

fn target_key(t: &Target) -> String {
    format!("{} {} {} {}", t.slug(), t.libc, t.abi, t.toolchain)
}

fn key(dist: &str, version: &str, t: &Target) -> String {
    format!(
        "{}@{} {}",
        dist.to_ascii_lowercase(),
        version.to_ascii_lowercase(),
        target_key(t)
    )
}

impl BuilderConfig {
    fn progress_path(&self) -> PathBuf {
        self.state_dir.join(format!(
            "builder-{}-{}.json",
            self.registry.name, self.identity.user
        ))
    }

    fn load(&self) -> Result<Progress, Error> {
        let path = self.progress_path();
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| Error::Config(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Progress::default()),
            Err(e) => Err(Error::Config(format!("{}: {e}", path.display()))),
        }
    }

    fn save(&self, p: &Progress) -> Result<(), Error> {
        let bytes = serde_json::to_vec_pretty(p).map_err(|e| Error::Config(e.to_string()))?;
        crate::trust::write_atomically(&self.progress_path(), &bytes)
    }
}

/// A failure worth another attempt: a node that did not answer, or answered that it is busy
/// or failing (429, 5xx).
fn passing(e: &Error) -> bool {
    match e {
        Error::Unreachable(_) | Error::Verify(VerifyError::Unreachable { .. }) => true,
        Error::Refused { status, .. } => *status == 429 || *status >= 500,
        _ => false,
    }
}

/// Runs the builder: follows the log from where it stopped, reporting each outcome to `report`.
/// Returns when `once` and the current checkpoint is handled, or on a failure of the log itself
/// (a checkpoint that does not verify, a log that does not extend).
///
/// # Errors
/// The first such failure, or a PostgreSQL that cannot be built for.
pub async fn run(
    cfg: &BuilderConfig,
    report: impl Fn(&Outcome) + Send + Sync + 'static,
) -> Result<(), Error> {
    let mut platforms = Vec::new();
    for p in &cfg.pg_configs {
        let pg = PgInstall::find(Some(p))?;
        let compiler = compiler(&pg)?;
        let target = local(&pg, &compiler.toolchain)?;
        platforms.push(Platform {
            pg,
            compiler,
            target,
        });
    }
    let progress = Arc::new(tokio::sync::Mutex::new(cfg.load()?));
    let from = {
        let p = progress.lock().await;
        platforms
            .iter()
            .map(|pl| p.next.get(&target_key(&pl.target)).copied().unwrap_or(0))
            .min()
            .unwrap_or(0)
    };
    let watch_cfg = WatchConfig {
        registry: cfg.registry.clone(),
        names: Vec::new(),
        from: Some(from),
        interval: cfg.interval,
        once: cfg.once,
        accounts: Vec::new(),
    };
    let (cfg2, platforms) = (Arc::new(cfg.clone()), Arc::new(platforms));
    let report = Arc::new(report);
    watch(&watch_cfg, move |ev| {
        let (cfg, platforms, progress, report) = (
            cfg2.clone(),
            platforms.clone(),
            progress.clone(),
            report.clone(),
        );
        async move {
            let Some(r) = ev.entry.statement.action.release() else {
                return Ok(());
            };
            let mut p = progress.lock().await;
            for platform in platforms.iter() {
                let t = target_key(&platform.target);
                let k = key(&r.dist, &r.version, &platform.target);
                let seen = p.next.get(&t).is_some_and(|&n| ev.index < n);
                if seen || p.done.contains_key(&k) || p.failed.contains_key(&k) {
                    continue;
                }
                let outcome = handle(&cfg, platform, ev.index, &ev.entry).await?;
                match (outcome.result.as_str(), outcome.attestation) {
                    ("attested" | "already", Some(i)) => {
                        p.done.insert(k, i);
                    }
                    ("failed" | "skipped", _) => {
                        p.failed
                            .insert(k, outcome.detail.clone().unwrap_or_default());
                    }
                    _ => {}
                }
                // Saved before it is told: what was reported is never done again.
                cfg.save(&p)?;
                report(&outcome);
            }
            for platform in platforms.iter() {
                p.next.insert(target_key(&platform.target), ev.index + 1);
            }
            cfg.save(&p)
        }
    })
    .await
}

/// A failure of this machine rather than of the release (PostgreSQL, the disk, the
/// configuration): the builder stops instead of marking the release failed.
fn ours(e: &Error) -> bool {
    matches!(e, Error::Postgres(_) | Error::Config(_))
}

/// One release on one target, attempted again after a passing failure.
///
/// # Errors
/// A failure of this machine ([`ours`]).
async fn handle(
    cfg: &BuilderConfig,
    platform: &Platform,
    index: u64,
    entry: &Entry,
) -> Result<Outcome, Error> {
    let Some(r) = entry.statement.action.release() else {
        unreachable!("only releases are handled")
    };
    let mut outcome = Outcome {
        index,
        dist: r.dist.clone(),
        version: r.version.clone(),
        target: platform.target.slug(),
        result: "failed".into(),
        attestation: None,
        installcheck: None,
        detail: None,
    };
    let mut wait = Duration::from_secs(1);
    for attempt in 1..=cfg.attempts.max(1) {
        match attempt_once(cfg, platform, index, r, entry.statement.time).await {
            Ok(Done::Attested(i, check)) => {
                outcome.result = "attested".into();
                outcome.attestation = Some(i);
                outcome.installcheck = Some(check);
                return Ok(outcome);
            }
            Ok(Done::Already(i)) => {
                outcome.result = "already".into();
                outcome.attestation = Some(i);
                return Ok(outcome);
            }
            Ok(Done::Skipped(why)) => {
                outcome.result = "skipped".into();
                outcome.detail = Some(why);
                return Ok(outcome);
            }
            Err(e) if ours(&e) => return Err(e),
            // Still unreachable or busy after every attempt: the release did not fail, the
            // builder stops (and resumes here when started again).
            Err(e) if passing(&e) && attempt == cfg.attempts.max(1) => return Err(e),
            Err(e) if passing(&e) && attempt < cfg.attempts => {
                eprintln!(
                    "{}@{}: {e}; trying again (attempt {attempt})",
                    r.dist, r.version
                );
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(e) => {
                outcome.detail = Some(e.to_string());
                return Ok(outcome);
            }
        }
    }
    Ok(outcome)
}

enum Done {
    Attested(u64, Installcheck),
    Already(u64),
    Skipped(String),
}

/// This builder's attestation of the release for the target, if the registry lists one.
async fn attested(
    remote: &Remote,
    me: &str,
    dist: &str,
    version: &str,
    target: &Target,
) -> Result<Option<u64>, Error> {
    let doc: api::Builds = match remote
        .json(&format!("/api/v1/dists/{dist}/{version}/builds"))
        .await
    {
        Ok(d) => d,
        Err(Error::Verify(VerifyError::NotFound(_))) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(doc
        .builds
        .iter()
        .find(|b| b.builder.eq_ignore_ascii_case(me) && b.target.same_as(target))
        .map(|b| b.index))
}

/// The OS packages the release unpacked in `src` needs for a build here, installed when the
/// builder may (as root, or through sudo); missing ones it may not install fail the build,
/// naming them. Purls the registry does not map are left to the build.
async fn system_packages(cfg: &BuilderConfig, pg: &PgInstall, src: &Path) -> Result<(), Error> {
    let Some(meta) = std::fs::read(src.join("META.json"))
        .ok()
        .and_then(|b| pgext_spec::meta::read_stored_meta(&b).ok())
        .filter(|m| m.spec == 2)
    else {
        return Ok(());
    };
    let needs = pgext_spec::requirements::Requirements::from_meta(&meta);
    let here = crate::target::platform();
    let version = pgext_spec::prereqs::Version::of_postgres(&pg.version);
    let report = crate::sysdeps::check(
        &cfg.registry,
        &needs,
        (&here, version.as_ref()),
        true,
        &mut crate::sysdeps::Lookups::new(),
    )
    .await?;
    let (Some(system), false) = (&report.system, report.missing.is_empty()) else {
        return Ok(());
    };
    let names = report.names();
    if !cfg.install_system_deps {
        return Err(Error::Install(format!(
            "OS packages missing: {} (the builder runs with --no-system-deps: install them, or run it without that flag)",
            names.join(", ")
        )));
    }
    let system = system.clone();
    tokio::task::spawn_blocking(move || crate::sysdeps::install(&system, &names, false))
        .await
        .map_err(|e| Error::Install(e.to_string()))?
}

/// One attempt at the release `r` (log entry `index`, stated at `time`) on one target.
async fn attempt_once(
    cfg: &BuilderConfig,
    platform: &Platform,
    index: u64,
    r: &Release,
    time: u64,
) -> Result<Done, Error> {
    let remote = Remote::new(&cfg.registry);
    if let Some(i) = attested(
        &remote,
        &cfg.identity.user,
        &r.dist,
        &r.version,
        &platform.target,
    )
    .await?
    {
        return Ok(Done::Already(i));
    }
    let state = State::at(&cfg.state_dir);
    let v = fetch_verified(
        &cfg.registry,
        &state,
        &r.dist,
        &Select::version(Some(&r.version)),
    )
    .await?;
    if v.provenance.index != index {
        return Err(Error::Verify(VerifyError::WrongEntry {
            index,
            wanted: format!("{}@{}", r.dist, r.version),
        }));
    }
    if let Some(why) = &v.provenance.yanked {
        return Ok(Done::Skipped(format!("yanked: {why}")));
    }
    let slug = platform.target.slug();
    let name = format!("{}-{}", r.dist, r.version).to_ascii_lowercase();
    let work = cfg.work_dir.join(format!("{name}+{slug}"));
    let _ = std::fs::remove_dir_all(&work);
    let src = work.join(&name);
    let stage = work.join("stage");
    for d in [&src, &stage] {
        std::fs::create_dir_all(d).map_err(|e| Error::Config(format!("{}: {e}", d.display())))?;
    }
    unpack(&v.zip, &src)?;
    system_packages(cfg, &platform.pg, &src).await?;
    let log = cfg
        .state_dir
        .join("logs")
        .join(format!("{name}+{slug}.log"));
    let (pg, r2) = (platform.pg.clone(), r.clone());
    let (compiler, target) = (platform.compiler.clone(), platform.target.clone());
    let (src2, stage2, log2) = (src.clone(), stage.clone(), log.clone());
    // Building is blocking work: off the async threads.
    let built = tokio::task::spawn_blocking(move || {
        build(
            &pg,
            &compiler,
            &target,
            &r2.dist,
            &r2.version,
            time,
            &src2,
            &stage2,
            &log2,
        )
    })
    .await
    .map_err(|e| Error::Config(e.to_string()))?;
    // A failed build's folder goes too (its log stays, in the state folder's `logs/`).
    let (package, check) = built.inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&work);
    })?;
    let log_bytes = std::fs::read(&log).unwrap_or_default();
    let release_hash = pgext_log::leaf_hash(&v.entry.to_bytes()).to_hex();
    let attestation = cfg.identity.sign(Action::Build(Build {
        dist: r.dist.clone(),
        version: r.version.clone(),
        release_index: index,
        release_hash,
        target: platform.target.clone(),
        sha256: pgext_log::hex(&pgext_log::sha256(&package)),
        size: package.len() as u64,
        log_sha256: pgext_log::hex(&pgext_log::sha256(&log_bytes)),
        installcheck: check,
    }));
    let file = pgext_spec::binary::file_name(&r.dist, &r.version, &platform.target);
    let submitter = Submitter::new(&cfg.registry, Some(&cfg.identity));
    match submitter.attest(&attestation, &package, &file).await {
        Ok(receipt) => {
            let _ = std::fs::remove_dir_all(&work);
            Ok(Done::Attested(receipt.index, check))
        }
        Err(Error::Refused { code, text, .. }) if code == "duplicate-build" => {
            match attested(
                &remote,
                &cfg.identity.user,
                &r.dist,
                &r.version,
                &platform.target,
            )
            .await?
            {
                Some(i) => Ok(Done::Already(i)),
                None => Err(Error::Api(text)),
            }
        }
        Err(Error::Refused { code, text, .. }) if code == "release-yanked" => {
            Ok(Done::Skipped(text))
        }
        Err(e) => Err(e),
    }
}

/// The `make` arguments and environment that make a build reproducible: the build folder
/// mapped to a fixed path in debug information and macros, the release's time as
/// `SOURCE_DATE_EPOCH`, one time zone and locale (`spec/binary.md`, Reproducible builds).
pub fn reproducible(
    compiler: &Compiler,
    src: &Path,
    dist: &str,
    version: &str,
    time: u64,
) -> (Vec<String>, Vec<(String, String)>) {
    let mut args = vec![format!(
        "COPT=-ffile-prefix-map={}=/usr/src/{}-{}",
        src.display(),
        dist.to_ascii_lowercase(),
        version.to_ascii_lowercase()
    )];
    let mut env = vec![
        ("SOURCE_DATE_EPOCH".to_string(), time.to_string()),
        ("TZ".to_string(), "UTC".to_string()),
        ("LC_ALL".to_string(), "C".to_string()),
    ];
    if let Some(cc) = &compiler.cc {
        args.push(format!("CC={cc}"));
        env.push(("CC".to_string(), cc.clone()));
    }
    (args, env)
}

/// Compiler flags that tie a build to the building CPU.
const NATIVE: [&str; 3] = ["-march=native", "-mcpu=native", "-mtune=native"];

/// Builds, stages, tests and packs one release for one PostgreSQL.
#[allow(clippy::too_many_arguments)]
fn build(
    pg: &PgInstall,
    compiler: &Compiler,
    target: &Target,
    dist: &str,
    version: &str,
    time: u64,
    src: &Path,
    stage: &Path,
    log: &Path,
) -> Result<(Vec<u8>, Installcheck), Error> {
    let (mut args, env) = reproducible(compiler, src, dist, version, time);
    // A Makefile that tunes for the building CPU (pgvector's OPTFLAGS) builds for any CPU of
    // the architecture when told to.
    let makefile = std::fs::read_to_string(src.join("Makefile")).unwrap_or_default();
    if NATIVE.iter().any(|n| makefile.contains(n)) && makefile.contains("OPTFLAGS") {
        args.push("OPTFLAGS=".into());
    }
    let mut make = Make::new(pg, src, log, false)?.with(args, env);
    make.build()?;
    let built = std::fs::read_to_string(log).unwrap_or_default();
    if let Some(flag) = NATIVE.iter().find(|n| built.contains(*n)) {
        return Err(Error::Release(format!(
            "the build compiles with {flag}: its binary would suit this builder's CPU only, and builders on other CPUs would make other bytes"
        )));
    }
    let files = make.stage_to(stage)?;
    let check = {
        let scratch = Scratch::start(pg, stage, log)?;
        // Tests run with the shadow's pg_config: whatever they install lands there.
        let shadow = scratch.pg()?;
        let mut tests = make.for_pg(&shadow)?.with_env(scratch.env());
        // pg_regress makes `results/` whenever it runs tests (and removes its other files when
        // they pass).
        let results = src.join("results");
        let _ = std::fs::remove_dir_all(&results);
        match tests.installcheck(&scratch.conn()) {
            Ok(()) if results.is_dir() => Installcheck::Passed,
            Ok(()) => Installcheck::None,
            Err(Error::Build { .. }) => Installcheck::Failed,
            Err(e) => return Err(e),
        }
    };
    let manifest = Manifest {
        trunk: FORMAT_VERSION.into(),
        package: Package {
            name: dist.to_string(),
            version: version.to_string(),
        },
        postgres: Postgres {
            major: target.pg,
            version: pg.version.clone(),
        },
        target: target.clone(),
    };
    let package = crate::binary::pack_staged(stage, &files, pg, &manifest)?;
    Ok((package, check))
}
