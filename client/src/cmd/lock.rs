//! Cluster manifests: `pgext lock`, `pgext sync [--from PACK]` and `pgext pack`.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::Env;
use super::install::{PgArgs, confirm, context_for, print_installed};
use crate::lock::SyncPlan;
use crate::lock::lockfile::Lock;
use crate::lock::manifest::Manifest;
use crate::lock::pack::Pack;
use crate::pg::PgInstall;

#[derive(Subcommand)]
pub(crate) enum Cmd {
    /// Resolve pgext.toml into pgext.lock beside it: exact releases, log indexes, entry
    /// hashes, artifact digests, and each registry's checkpoint.
    #[command(disable_help_flag = true)]
    Lock {
        /// The manifest (default: pgext.toml in the current folder).
        #[arg(long)]
        manifest: Option<PathBuf>,
        #[command(flatten)]
        pg: PgArgs,
        /// Print the lock as JSON too.
        #[arg(long)]
        json: bool,
    },
    /// Make this PostgreSQL match pgext.lock: install, replace and remove, every entry
    /// verified against its log (with --from, from a pack and with no network).
    #[command(disable_help_flag = true)]
    Sync {
        /// The manifest whose lock to apply (default: pgext.toml in the current folder).
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// A pack written by `pgext pack`: verify and install from it, offline.
        #[arg(long)]
        from: Option<PathBuf>,
        /// Do not ask before changing anything.
        #[arg(short = 'y', long)]
        yes: bool,
        /// Print what would change and stop.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        pg: PgArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write one file holding pgext.lock, its archives and binaries, and their proofs, for a
    /// host with no network.
    #[command(disable_help_flag = true)]
    Pack {
        /// Where to write the pack.
        #[arg(short = 'o', long)]
        output: PathBuf,
        /// The manifest whose lock to pack (default: pgext.toml in the current folder).
        #[arg(long)]
        manifest: Option<PathBuf>,
        #[command(flatten)]
        pg: PgArgs,
    },
}

fn manifest_path(m: Option<PathBuf>) -> PathBuf {
    m.unwrap_or_else(|| PathBuf::from("pgext.toml"))
}

/// The installation: `--pg-config`, else the one the manifest (or lock) names, else PATH's.
fn installation(pg: &PgArgs, named: Option<&Path>) -> anyhow::Result<PgInstall> {
    Ok(PgInstall::find(pg.pg_config.as_deref().or(named))?)
}

fn print_sync(plan: &SyncPlan) {
    for c in plan.view() {
        match (c.action.as_str(), &c.from) {
            ("replace", Some(from)) => {
                println!(
                    "  replace {} {from} with {} ({})",
                    c.dist, c.version, c.kind
                );
            }
            (action, _) => println!("  {action} {} {} ({})", c.dist, c.version, c.kind),
        }
    }
}

pub(crate) async fn run(cmd: Cmd, env: Env) -> anyhow::Result<()> {
    match cmd {
        Cmd::Lock { manifest, pg, json } => {
            let manifest = Manifest::read(&manifest_path(manifest))?;
            let install = installation(&pg, manifest.pg_config.as_deref())?;
            let ctx = context_for(env, &pg, json, install);
            let (lock, plan) = ctx.lock(&manifest).await?;
            let path = manifest.lock_path();
            crate::trust::write_atomically(&path, &lock.to_bytes()?)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&lock)?);
            } else {
                print!("{}", plan.view());
                println!("wrote {} ({} dists)", path.display(), lock.dists.len());
            }
        }
        Cmd::Sync {
            manifest,
            from,
            yes,
            dry_run,
            pg,
            json,
        } => {
            let (plan, ctx) = match from {
                Some(pack_path) => {
                    let mut pack = Pack::open(&pack_path)?;
                    // Nothing signs a pack's lock: the program it names is not run. The
                    // installation is --pg-config's, else PATH's.
                    let install = installation(&pg, None)?;
                    let ctx = context_for(env, &pg, json, install);
                    let plan = ctx.sync_plan_offline(&mut pack, &pack_path)?;
                    (plan, ctx)
                }
                None => {
                    let manifest_path = manifest_path(manifest);
                    let lock_path = manifest_path.with_file_name("pgext.lock");
                    let lock = Lock::read(&lock_path)?;
                    // A lock older than its manifest is not what the manifest says.
                    if let Ok(m) = Manifest::read(&manifest_path) {
                        if m.sha256 != lock.manifest_sha256 {
                            anyhow::bail!(
                                "{} changed since {} was written: run `pgext lock` (and review the lock) first",
                                manifest_path.display(),
                                lock_path.display()
                            );
                        }
                    }
                    let install = installation(&pg, lock.pg_config.as_deref())?;
                    let ctx = context_for(env, &pg, json, install);
                    let plan = ctx.sync_plan(&lock, &lock_path).await?;
                    (plan, ctx)
                }
            };
            if json && (dry_run || plan.is_noop()) {
                println!("{}", serde_json::to_string_pretty(&plan.view())?);
                return Ok(());
            }
            if plan.is_noop() {
                println!("{} is as the lock says: nothing to change", ctx.pg.version);
                return Ok(());
            }
            if !json {
                println!("sync {}:", ctx.pg.version);
                print_sync(&plan);
            }
            if dry_run {
                return Ok(());
            }
            if !json && !yes && !confirm("Apply?")? {
                anyhow::bail!("nothing was changed");
            }
            let done = ctx.apply_sync(&plan)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&plan.view())?);
            } else {
                for r in &plan.remove {
                    print_installed(r, "removed");
                }
                for i in &done {
                    print_installed(i, "installed");
                }
            }
        }
        Cmd::Pack {
            output,
            manifest,
            pg,
        } => {
            let lock_path = manifest_path(manifest).with_file_name("pgext.lock");
            let lock = Lock::read(&lock_path)?;
            // Packing installs nothing: a machine without PostgreSQL can pack.
            let install = installation(&pg, lock.pg_config.as_deref())
                .unwrap_or_else(|_| PgInstall::absent());
            let ctx = context_for(env, &pg, false, install);
            let bytes = ctx.pack(&lock, &output).await?;
            println!(
                "wrote {} ({} dists, {bytes} bytes)",
                output.display(),
                lock.dists.len()
            );
        }
    }
    Ok(())
}
