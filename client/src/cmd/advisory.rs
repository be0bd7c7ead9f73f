//! `pgext advisory publish|withdraw` (owners and the registry's security team state
//! advisories on the log) and `pgext advisories check` (which installed releases are
//! affected).

use std::path::PathBuf;

use clap::Subcommand;
use pgext_spec::advisory::Advisory;
use pgext_spec::entry::Action;
use pgext_spec::osv::Osv;

use super::Env;
use super::account::submitter_for;
use super::install::{PgArgs, context};
use crate::author;

/// Largest OSV file read, in bytes (an advisory entry holds at most 64 KiB).
const MAX_OSV_BYTES: u64 = 1 << 20;

#[derive(Subcommand)]
pub(crate) enum Cmd {
    /// Publish or withdraw a security advisory (owners of the dists it names, or the
    /// registry's security team).
    Advisory {
        #[command(subcommand)]
        command: AdvisoryCmd,
    },
    /// Known vulnerabilities of what is installed.
    Advisories {
        #[command(subcommand)]
        command: AdvisoriesCmd,
    },
}

#[derive(Subcommand)]
pub(crate) enum AdvisoryCmd {
    /// Publish the advisory an OSV JSON document states (or update the one with its id).
    Publish {
        /// The OSV document.
        file: PathBuf,
    },
    /// Withdraw an advisory (it was a mistake).
    Withdraw {
        /// The advisory's id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Subcommand)]
pub(crate) enum AdvisoriesCmd {
    /// Exit 1 when an installed release is affected by a known vulnerability, 0 otherwise.
    #[command(disable_help_flag = true)]
    Check {
        #[command(flatten)]
        pg: PgArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Reads an OSV file into an advisory, telling what of it was left out.
fn read_osv(file: &PathBuf) -> anyhow::Result<Advisory> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(MAX_OSV_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    if bytes.len() as u64 > MAX_OSV_BYTES {
        anyhow::bail!("{}: larger than {MAX_OSV_BYTES} bytes", file.display());
    }
    let doc: Osv = serde_json::from_slice(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: not an OSV document: {e}", file.display()))?;
    let (adv, left_out) = Advisory::from_osv(&doc).map_err(|e| anyhow::anyhow!(e.0))?;
    for l in left_out {
        eprintln!("note: left out {l}");
    }
    Ok(adv)
}

pub(crate) async fn run(cmd: Cmd, env: Env) -> anyhow::Result<()> {
    match cmd {
        Cmd::Advisory {
            command: AdvisoryCmd::Publish { file },
        } => {
            let adv = read_osv(&file)?;
            let id = author::load_identity(env.key.as_deref())?;
            let first = adv.affected[0].dist.clone();
            let (name, dists) = (adv.id.clone(), adv.dists().collect::<Vec<_>>().join(", "));
            let r = submitter_for(&env, &first)?
                .submit(&id.sign(Action::Advisory(adv)))
                .await?;
            println!(
                "published advisory {name} for {dists} (log entry {})",
                r.index
            );
        }
        Cmd::Advisory {
            command: AdvisoryCmd::Withdraw { id: adv, reason },
        } => {
            let id = author::load_identity(env.key.as_deref())?;
            let r = super::account::submitter(&env)?
                .submit(&id.sign(Action::AdvisoryWithdraw {
                    id: adv.clone(),
                    reason,
                }))
                .await?;
            println!("withdrew advisory {adv} (log entry {})", r.index);
        }
        Cmd::Advisories {
            command: AdvisoriesCmd::Check { pg, json },
        } => {
            let ctx = context(env, &pg, true)?;
            let installed = ctx.list()?;
            let report = crate::advisories::check_installed(&ctx.config, &installed).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                for f in &report.affected {
                    println!("{f}");
                }
                for u in &report.unchecked {
                    println!("not checked: {u}");
                }
                if report.affected.is_empty() {
                    println!(
                        "no known vulnerability affects the {} release(s) checked",
                        report.checked
                    );
                }
            }
            if !report.affected.is_empty() {
                anyhow::bail!(
                    "{} known vulnerabilit{} affect{} installed releases: upgrade to a fixed version",
                    report.affected.len(),
                    if report.affected.len() == 1 {
                        "y"
                    } else {
                        "ies"
                    },
                    if report.affected.len() == 1 { "s" } else { "" },
                );
            }
        }
    }
    Ok(())
}

/// Which installs known vulnerabilities affect, as `pgext list` marks them.
pub(crate) struct Marks(Vec<crate::advisories::Found>);

/// Asks the registries about `installed` (unless `offline`); a registry that cannot be asked
/// is told on standard error, and `list` goes on without marks.
pub(crate) async fn marks(
    ctx: &crate::ops::Context,
    installed: &[crate::installed::Installed],
    offline: bool,
) -> Marks {
    if offline || installed.iter().all(|i| i.provenance.is_none()) {
        return Marks(Vec::new());
    }
    match crate::advisories::check_installed(&ctx.config, installed).await {
        Ok(r) => Marks(r.affected),
        Err(e) => {
            eprintln!("warning: known vulnerabilities were not checked: {e}");
            Marks(Vec::new())
        }
    }
}

impl Marks {
    fn of(&self, i: &crate::installed::Installed) -> Vec<&str> {
        self.0
            .iter()
            .filter(|f| f.dist.eq_ignore_ascii_case(&i.dist) && f.version == i.version)
            .map(|f| f.id.as_str())
            .collect()
    }

    /// What `list` appends to an install's line.
    pub(crate) fn mark(&self, i: &crate::installed::Installed) -> String {
        match self.of(i).as_slice() {
            [] => String::new(),
            ids => format!(" VULNERABLE: {} (`pgext advisories check`)", ids.join(", ")),
        }
    }

    /// The installs as `list --json` prints them, each with `advisories`.
    pub(crate) fn json(
        &self,
        installed: &[crate::installed::Installed],
    ) -> anyhow::Result<Vec<serde_json::Value>> {
        let mut out = Vec::new();
        for i in installed {
            let mut v = serde_json::to_value(i)?;
            if let Some(o) = v.as_object_mut() {
                o.insert("advisories".into(), serde_json::to_value(self.of(i))?);
            }
            out.push(v);
        }
        Ok(out)
    }
}
