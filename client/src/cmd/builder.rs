//! `pgext builder run`: the build service (`spec/binary.md`, Builders).

use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;

use super::Env;
use crate::builder::{BuilderConfig, Outcome, run as run_builder};

#[derive(Subcommand)]
pub(crate) enum Cmd {
    /// Build every release of a registry for each PostgreSQL and publish signed attestations.
    Builder {
        #[command(subcommand)]
        command: BuilderCmd,
    },
}

#[derive(Subcommand)]
pub(crate) enum BuilderCmd {
    /// Follow the log, build, test, pack and attest each release, resuming where it stopped.
    Run {
        /// The pg_config of a PostgreSQL to build for (repeat for several).
        #[arg(long = "pg-config", required = true)]
        pg_configs: Vec<PathBuf>,
        /// Handle every release up to the current checkpoint, then exit.
        #[arg(long)]
        once: bool,
        /// Where releases are built (default: a `builds` folder in the state folder).
        #[arg(long)]
        work_dir: Option<PathBuf>,
        /// Seconds between looks at the checkpoint.
        #[arg(long, default_value_t = 10)]
        interval: u64,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
        /// Do not install the OS packages a release needs before building it (a release
        /// whose packages are missing then fails, naming them).
        #[arg(long)]
        no_system_deps: bool,
    },
}

pub(crate) async fn run(cmd: Cmd, env: Env) -> anyhow::Result<()> {
    let Cmd::Builder {
        command:
            BuilderCmd::Run {
                pg_configs,
                once,
                work_dir,
                interval,
                json,
                no_system_deps,
            },
    } = cmd;
    let identity = crate::author::load_identity(env.key.as_deref())?;
    let state_dir = env.state.dir().to_path_buf();
    let cfg = BuilderConfig {
        registry: env.registry()?.clone(),
        pg_configs,
        identity,
        work_dir: work_dir.unwrap_or_else(|| state_dir.join("builds")),
        state_dir,
        once,
        interval: Duration::from_secs(interval.max(1)),
        attempts: 3,
        install_system_deps: !no_system_deps,
    };
    run_builder(&cfg, move |o: &Outcome| {
        if json {
            println!("{}", serde_json::to_string(o).unwrap_or_default());
            return;
        }
        let what = match (o.result.as_str(), o.attestation, o.installcheck) {
            ("attested", Some(i), Some(c)) => {
                format!("attested at entry {i} (installcheck {})", c.as_str())
            }
            ("already", Some(i), _) => format!("attested before, at entry {i}"),
            (r, _, _) => format!("{r}: {}", o.detail.as_deref().unwrap_or_default()),
        };
        println!("{} {} {}: {what}", o.dist, o.version, o.target);
    })
    .await?;
    Ok(())
}
