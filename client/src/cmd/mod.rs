//! The `pgext` command line: one file per command family, each with its arguments and its
//! `run`. The binary (`main.rs`) only calls [`main`]. Commands call the library and print; they
//! hold no logic of their own beyond arguments and output.

mod account;
mod advisory;
mod audit;
mod builder;
mod find;
mod install;
mod lock;
mod packages;
mod pgargs;
mod project;
mod publish;
mod registry;
mod token;
mod trusted;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::trust::{Config, State};

#[derive(Parser)]
#[command(
    name = "pgext",
    version,
    about = "Find, verify and install PostgreSQL extensions"
)]
struct Cli {
    /// The trust configuration (default: $PGEXT_CONFIG, else ~/.config/pgext/config.toml).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Which configured registry to use (default: the first).
    #[arg(long, global = true)]
    registry: Option<String>,
    /// The signing key file (default: the key line in $PGEXT_SIGNING_KEY, else the file
    /// ~/.config/pgext/signing.key).
    #[arg(long, global = true)]
    key: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Registries you trust.
    Registry {
        #[command(subcommand)]
        command: registry::RegistryCmd,
    },
    #[command(flatten)]
    Find(find::Cmd),
    #[command(flatten)]
    Project(project::Cmd),
    #[command(flatten)]
    Audit(audit::Cmd),
    #[command(flatten)]
    Account(account::Cmd),
    #[command(flatten)]
    Publish(publish::Cmd),
    #[command(flatten)]
    Install(install::Cmd),
    #[command(flatten)]
    Lock(lock::Cmd),
    #[command(flatten)]
    Token(token::Cmd),
    #[command(flatten)]
    Builder(builder::Cmd),
    #[command(flatten)]
    Packages(packages::Cmd),
    #[command(flatten)]
    Advisory(advisory::Cmd),
    #[command(flatten)]
    Trusted(trusted::Cmd),
}

/// What every command may need: the trust configuration and where it lives, the local state,
/// and the global flags.
pub(crate) struct Env {
    pub(crate) config: Config,
    pub(crate) config_path: PathBuf,
    pub(crate) state: State,
    pub(crate) registry: Option<String>,
    pub(crate) key: Option<PathBuf>,
}

impl Env {
    /// The registry `--registry` names (default: the first configured without `names`).
    pub(crate) fn registry(&self) -> anyhow::Result<&crate::trust::RegistryConfig> {
        Ok(match self.registry.as_deref() {
            Some(r) => self.config.registry(Some(r))?,
            None => self.config.default_registry()?,
        })
    }

    /// The registry to ask about `name`: its owner by `names` patterns, else as
    /// [`Env::registry`].
    pub(crate) fn route(&self, name: &str) -> anyhow::Result<&crate::trust::RegistryConfig> {
        Ok(self.config.route(name, self.registry.as_deref())?)
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config_path = cli.config.clone().unwrap_or_else(Config::default_path);
    let env = Env {
        config: Config::load(&config_path)?,
        config_path,
        state: State::from_env(),
        registry: cli.registry,
        key: cli.key,
    };
    match cli.command {
        Cmd::Registry { command } => registry::run(command, env).await,
        Cmd::Find(c) => find::run(c, env).await,
        Cmd::Project(c) => project::run(c),
        Cmd::Audit(c) => audit::run(c, env).await,
        Cmd::Account(c) => account::run(c, env).await,
        Cmd::Publish(c) => publish::run(c, env).await,
        Cmd::Install(c) => install::run(c, env).await,
        Cmd::Lock(c) => lock::run(c, env).await,
        Cmd::Token(c) => token::run(c, env),
        Cmd::Builder(c) => builder::run(c, env).await,
        Cmd::Packages(c) => packages::run(c, env).await,
        Cmd::Advisory(c) => advisory::run(c, env).await,
        Cmd::Trusted(c) => trusted::run(c, env).await,
    }
}

/// Runs the command line: parses it, runs the command on a single-threaded runtime, and turns
/// a failure into `error: …` on standard error and exit status 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
