//! `pgext publisher add|remove|list`: the CI workflows a dist's owners trust to publish it
//! (`spec/trusted-publishing.md`).

use clap::{Args, Subcommand};
use pgext_spec::entry::Action;
use pgext_spec::trusted::Publisher;
use pgext_spec::trusted::Publishers;

use super::Env;
use super::account::submitter_for;
use crate::author;
use crate::verify::Remote;

#[derive(Subcommand)]
pub(crate) enum Cmd {
    /// CI workflows trusted to publish a dist with their OIDC ID tokens (no long-lived key).
    Publisher {
        #[command(subcommand)]
        command: PublisherCmd,
    },
}

/// A publisher as flags.
#[derive(Args)]
pub(crate) struct PublisherArgs {
    /// Distribution.
    dist: String,
    /// The OIDC issuer (GitHub Actions: https://token.actions.githubusercontent.com; GitLab:
    /// https://gitlab.com).
    #[arg(long)]
    issuer: String,
    /// The repository (owner/repo; GitLab: group/project).
    #[arg(long)]
    repository: String,
    /// The workflow file (.github/workflows/release.yml, .gitlab-ci.yml).
    #[arg(long)]
    workflow: Option<String>,
    /// The git ref (refs/tags/v1.0.0; refs/tags/* for any tag).
    #[arg(long = "ref")]
    git_ref: Option<String>,
    /// The CI environment.
    #[arg(long)]
    environment: Option<String>,
}

impl PublisherArgs {
    fn publisher(&self) -> anyhow::Result<Publisher> {
        let p = Publisher {
            issuer: self.issuer.clone(),
            repository: self.repository.clone(),
            workflow: self.workflow.clone(),
            git_ref: self.git_ref.clone(),
            environment: self.environment.clone(),
        };
        // Told here, before anything is signed.
        p.check().map_err(|e| anyhow::anyhow!(e.0))?;
        Ok(p)
    }
}

#[derive(Subcommand)]
pub(crate) enum PublisherCmd {
    /// Trust a CI workflow to publish DIST.
    Add(PublisherArgs),
    /// Trust it no more.
    Remove(PublisherArgs),
    /// The trusted publishers of DIST.
    List {
        /// Distribution.
        dist: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn run(cmd: Cmd, env: Env) -> anyhow::Result<()> {
    let Cmd::Publisher { command } = cmd;
    let (a, add) = match command {
        PublisherCmd::Add(a) => (a, true),
        PublisherCmd::Remove(a) => (a, false),
        PublisherCmd::List { dist, json } => return list(&env, &dist, json).await,
    };
    let (dist, publisher) = (a.dist.clone(), a.publisher()?);
    let action = if add {
        Action::PublisherAdd { dist, publisher }
    } else {
        Action::PublisherRemove { dist, publisher }
    };
    let id = author::load_identity(env.key.as_deref())?;
    let r = submitter_for(&env, &a.dist)?
        .submit(&id.sign(action))
        .await?;
    if add {
        println!(
            "{} now trusts {} ({}) to publish it (log entry {})",
            a.dist, a.repository, a.issuer, r.index
        );
    } else {
        println!(
            "{} no longer trusts {} (log entry {})",
            a.dist, a.repository, r.index
        );
    }
    Ok(())
}

/// `pgext publisher list`.
async fn list(env: &Env, dist: &str, json: bool) -> anyhow::Result<()> {
    let remote = Remote::new(env.route(dist)?);
    let doc: Publishers = remote
        .json(&format!("/api/v1/dists/{dist}/publishers"))
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    if doc.publishers.is_empty() {
        println!("{} has no trusted publisher", doc.dist);
    }
    for p in &doc.publishers {
        let q = &p.publisher;
        let opt = |name: &str, v: &Option<String>| {
            v.as_ref().map_or(String::new(), |v| format!(" {name} {v}"))
        };
        println!(
            "{} {}{}{}{} (added by {}, log entry {})",
            q.issuer,
            q.repository,
            opt("workflow", &q.workflow),
            opt("ref", &q.git_ref),
            opt("environment", &q.environment),
            p.user,
            p.index
        );
    }
    Ok(())
}
