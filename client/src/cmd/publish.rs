//! Releasing: `pgext publish`, `owner add|remove|list`, `yank`, `unyank`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;
use pgext_spec::api;
use pgext_spec::entry::{Action, Status};

use super::Env;
use super::account::submitter_for;
use crate::author;
use crate::verify::Remote;

#[derive(Subcommand)]
pub(crate) enum Cmd {
    /// Sign and upload a release from a project folder or an archive.
    Publish {
        /// The project folder or archive.
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Release status when META.json names none: stable, testing or unstable.
        #[arg(long)]
        status: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Refuse to publish on a warning of `pgext validate` too.
        #[arg(long)]
        strict: bool,
        /// Publish from CI with its OIDC ID token instead of a signing key (trusted
        /// publishing: a trusted publisher of the dist must match the run).
        #[arg(long)]
        oidc: bool,
    },
    /// Owners of a distribution.
    Owner {
        #[command(subcommand)]
        command: OwnerCmd,
    },
    /// Mark a release as not to be chosen by installers (it stays in the log).
    Yank {
        /// Distribution.
        dist: String,
        /// Version.
        version: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Reverse a yank.
    Unyank {
        /// Distribution.
        dist: String,
        /// Version.
        version: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum OwnerCmd {
    /// Make USER a co-owner of DIST.
    Add {
        /// Distribution.
        dist: String,
        /// Account.
        user: String,
    },
    /// Remove USER from the owners of DIST.
    Remove {
        /// Distribution.
        dist: String,
        /// Account.
        user: String,
    },
    /// The owners of DIST.
    List {
        /// Distribution.
        dist: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn run(cmd: Cmd, env: Env) -> anyhow::Result<()> {
    match cmd {
        Cmd::Publish {
            path,
            status,
            json,
            strict,
            oidc,
        } => {
            let status = status
                .map(|s| {
                    Status::parse(&s).with_context(|| {
                        format!("status {s}: expected stable, testing or unstable")
                    })
                })
                .transpose()?;
            let route = |dist: &str| {
                submitter_for(&env, dist).map_err(|e| crate::Error::Config(format!("{e:#}")))
            };
            let issued = std::cell::RefCell::new(None);
            let p = if oidc {
                let sign = |to: &author::Submitter, r: &pgext_spec::entry::Release| {
                    let (to, r, issued) = (to.clone(), r.clone(), &issued);
                    async move {
                        let (entry, ci) = crate::trusted::sign_from_ci(&to, &r).await?;
                        *issued.borrow_mut() = Some(ci);
                        Ok(entry)
                    }
                };
                author::publish_signed(route, sign, &path, (status, strict)).await?
            } else {
                let id = author::load_identity(env.key.as_deref())?;
                author::publish(route, &id, &path, status, strict).await?
            };
            if let (Some(ci), false) = (issued.borrow().as_ref(), json) {
                let c = &ci.claims;
                eprintln!(
                    "trusted publishing: {} {} matched (CI key {}, log entry {}, for {})",
                    c.repository,
                    c.workflow.as_deref().unwrap_or(""),
                    ci.key_id,
                    ci.index,
                    ci.user
                );
            }
            for w in p.warnings.iter().filter(|_| !json) {
                eprintln!("{w}");
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&p)?);
            } else {
                println!("published {} {} (sha256 {})", p.dist, p.version, p.sha256);
                println!("  log entry   {}", p.index);
                println!("  checkpoint  size {}", p.checkpoint_size);
                println!("  {}", p.url);
            }
        }
        Cmd::Owner { command } => owner(command, &env).await?,
        Cmd::Yank {
            dist,
            version,
            reason,
        } => {
            let id = author::load_identity(env.key.as_deref())?;
            let r = submitter_for(&env, &dist)?
                .submit(&id.sign(Action::Yank {
                    dist: dist.clone(),
                    version: version.clone(),
                    reason,
                }))
                .await?;
            println!("{dist} {version} yanked (log entry {})", r.index);
        }
        Cmd::Unyank { dist, version } => {
            let id = author::load_identity(env.key.as_deref())?;
            let r = submitter_for(&env, &dist)?
                .submit(&id.sign(Action::Unyank {
                    dist: dist.clone(),
                    version: version.clone(),
                }))
                .await?;
            println!("{dist} {version} unyanked (log entry {})", r.index);
        }
    }
    Ok(())
}

async fn owner(command: OwnerCmd, env: &Env) -> anyhow::Result<()> {
    let (dist, action, done) = match command {
        OwnerCmd::List { dist, json } => {
            let doc: api::Dist = Remote::new(env.route(&dist)?)
                .json(&format!("/api/v1/dists/{dist}"))
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&doc.owners)?);
            } else {
                for o in &doc.owners {
                    println!("{o}");
                }
            }
            return Ok(());
        }
        OwnerCmd::Add { dist, user } => (
            dist.clone(),
            Action::OwnerGrant {
                dist: dist.clone(),
                user: user.clone(),
            },
            format!("{user} now owns {dist}"),
        ),
        OwnerCmd::Remove { dist, user } => (
            dist.clone(),
            Action::OwnerRevoke {
                dist: dist.clone(),
                user: user.clone(),
            },
            format!("{user} no longer owns {dist}"),
        ),
    };
    let id = author::load_identity(env.key.as_deref())?;
    let r = submitter_for(env, &dist)?.submit(&id.sign(action)).await?;
    println!("{done} (log entry {})", r.index);
    Ok(())
}
