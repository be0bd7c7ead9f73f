//! `pgext packages`: the name mapping from purls to OS packages (`spec/requirements.md`,
//! System packages). Maintainers of the mapping (accounts the registry's operator gave the role
//! `packages`) map and unmap; anyone shows a mapping, verified against the log.

use clap::Subcommand;
use pgext_spec::entry::Action;
use pgext_spec::packages::{SystemPackages, Systems};

use super::Env;
use super::account::submitter;
use crate::author;

#[derive(Subcommand)]
pub(crate) enum Cmd {
    /// The mapping from purls (pkg:generic/libxml2) to each OS's package names.
    Packages {
        #[command(subcommand)]
        command: PackagesCmd,
    },
}

#[derive(Subcommand)]
pub(crate) enum PackagesCmd {
    /// State which packages stand for PURL (replacing what was stated); comma-separated names.
    Map {
        /// The purl, such as pkg:generic/libxml2.
        purl: String,
        /// Debian packages a build needs.
        #[arg(long, value_name = "NAMES")]
        debian: Option<String>,
        /// Ubuntu packages a build needs.
        #[arg(long, value_name = "NAMES")]
        ubuntu: Option<String>,
        /// RHEL-family (RHEL, Fedora, Rocky, Alma) packages a build needs.
        #[arg(long, value_name = "NAMES")]
        rhel: Option<String>,
        /// Alpine packages a build needs.
        #[arg(long, value_name = "NAMES")]
        alpine: Option<String>,
        /// Homebrew formulae a build needs.
        #[arg(long, value_name = "NAMES")]
        homebrew: Option<String>,
        /// SYSTEM=NAMES: what a built extension needs to run, where it differs from the build's
        /// (the runtime library without its headers).
        #[arg(long, value_name = "SYSTEM=NAMES")]
        run: Vec<String>,
    },
    /// Withdraw the mapping of PURL.
    Unmap {
        /// The purl.
        purl: String,
    },
    /// Show the mapping of PURL, verified against the log.
    Show {
        /// The purl.
        purl: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn names(list: &str) -> Vec<String> {
    list.split(',')
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect()
}

/// The systems the flags name, run lists applied.
fn systems(given: [(&str, Option<String>); 5], run: &[String]) -> anyhow::Result<Systems> {
    let mut out = Systems::new();
    for (system, list) in given {
        if let Some(list) = list {
            out.insert(
                system.to_string(),
                SystemPackages {
                    build: names(&list),
                    run: None,
                },
            );
        }
    }
    for r in run {
        let Some((system, list)) = r.split_once('=') else {
            anyhow::bail!("--run {r}: write SYSTEM=NAMES");
        };
        let Some(p) = out.get_mut(system) else {
            anyhow::bail!("--run {system}=…: name {system}'s build packages (--{system}) too");
        };
        p.run = Some(names(list));
    }
    if out.is_empty() {
        anyhow::bail!(
            "name packages for at least one system (--debian, --ubuntu, --rhel, --alpine, --homebrew)"
        );
    }
    Ok(out)
}

pub(crate) async fn run(cmd: Cmd, env: Env) -> anyhow::Result<()> {
    let Cmd::Packages { command } = cmd;
    match command {
        PackagesCmd::Map {
            purl,
            debian,
            ubuntu,
            rhel,
            alpine,
            homebrew,
            run,
        } => {
            let systems = systems(
                [
                    ("debian", debian),
                    ("ubuntu", ubuntu),
                    ("rhel", rhel),
                    ("alpine", alpine),
                    ("homebrew", homebrew),
                ],
                &run,
            )?;
            // Checked here too, so a mistake is told before anything is signed.
            pgext_spec::packages::check_purl(&purl).map_err(|e| anyhow::anyhow!(e.0))?;
            pgext_spec::packages::check_systems(&systems).map_err(|e| anyhow::anyhow!(e.0))?;
            let id = author::load_identity(env.key.as_deref())?;
            let r = submitter(&env)?
                .submit(&id.sign(Action::PackageMap {
                    purl: purl.clone(),
                    systems,
                }))
                .await?;
            println!("mapped {purl} (log entry {})", r.index);
        }
        PackagesCmd::Unmap { purl } => {
            let id = author::load_identity(env.key.as_deref())?;
            let r = submitter(&env)?
                .submit(&id.sign(Action::PackageMap {
                    purl: purl.clone(),
                    systems: Systems::new(),
                }))
                .await?;
            println!("unmapped {purl} (log entry {})", r.index);
        }
        PackagesCmd::Show { purl, json } => {
            let Some(doc) = crate::sysdeps::lookup(env.registry()?, &purl).await? else {
                anyhow::bail!("{purl} is not mapped");
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&doc)?);
                return Ok(());
            }
            println!("{} (log entry {} by {})", doc.purl, doc.index, doc.user);
            for (system, p) in &doc.systems {
                let run = match &p.run {
                    Some(r) => format!("; to run: {}", r.join(", ")),
                    None => String::new(),
                };
                println!("  {system}: {}{run}", p.build.join(", "));
            }
        }
    }
    Ok(())
}
