//! How commands reach PostgreSQL and report: psql's connection flags and `pg_config`, the
//! library's context for an installation, progress bars on a terminal, and the question a
//! command asks before it changes something.

use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};

use super::Env;
use crate::ops::{Context, Progress};
use crate::pg::{Conn, PgInstall};

/// Which PostgreSQL, and how to reach it (psql's flags; unset ones come from `PG*`).
#[derive(clap::Args)]
pub(crate) struct PgArgs {
    /// The pg_config of the PostgreSQL to use (default: the first in PATH).
    #[arg(long)]
    pub(crate) pg_config: Option<PathBuf>,
    /// Database name.
    #[arg(short = 'd', long)]
    pub(crate) dbname: Option<String>,
    /// Database server host or socket folder.
    #[arg(short = 'h', long)]
    host: Option<String>,
    /// Database server port.
    #[arg(short = 'p', long)]
    port: Option<u16>,
    /// Database user.
    #[arg(short = 'U', long = "username")]
    user: Option<String>,
    /// Install and remove files through sudo.
    #[arg(long)]
    pub(crate) sudo: bool,
    /// Show each step as a line, not a bar.
    #[arg(short = 'v', long)]
    pub(crate) verbose: bool,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

impl PgArgs {
    pub(crate) fn conn(&self) -> Conn {
        Conn {
            dbname: self.dbname.clone(),
            host: self.host.clone(),
            port: self.port,
            user: self.user.clone(),
        }
    }
}

/// Bars on a terminal, lines with --verbose, nothing for --json.
struct Bars {
    bar: ProgressBar,
    verbose: bool,
    quiet: bool,
}

impl Progress for Bars {
    fn step(&self, what: &str) {
        if self.quiet {
            return;
        }
        if self.verbose {
            eprintln!("{what}");
        }
        self.bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        self.bar.set_message(what.to_string());
        self.bar
            .enable_steady_tick(std::time::Duration::from_millis(120));
    }
    fn bytes(&self, done: u64, total: Option<u64>) {
        if let Some(total) = total.filter(|_| !self.quiet) {
            if self.bar.length() != Some(total) {
                self.bar.set_length(total);
                self.bar.set_style(
                    ProgressStyle::with_template("{msg} {bar:30} {bytes}/{total_bytes}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
            }
            self.bar.set_position(done);
        }
    }
    fn done(&self) {
        self.bar.finish_and_clear();
    }
    fn warn(&self, message: &str) {
        self.bar.suspend(|| eprintln!("warning: {message}"));
    }
    fn note(&self, message: &str) {
        // Printed after the step's bar is cleared, so nothing draws over it.
        self.bar.finish_and_clear();
        eprintln!("note: {message}");
    }
}

pub(crate) fn context(env: Env, pg: &PgArgs, quiet: bool) -> anyhow::Result<Context> {
    let install = PgInstall::find(pg.pg_config.as_deref())?;
    Ok(context_for(env, pg, quiet, install))
}

/// A context for the installation `install`, with progress as `pg` asks.
pub(crate) fn context_for(env: Env, pg: &PgArgs, quiet: bool, install: PgInstall) -> Context {
    Context {
        config: env.config,
        state: env.state,
        registry: env.registry,
        pg: install,
        sudo: pg.sudo,
        prefix: None,
        progress: Box::new(Bars {
            bar: ProgressBar::new_spinner(),
            verbose: pg.verbose,
            quiet,
        }),
    }
}

/// Asks on a terminal whether to go on; elsewhere (a script, `--yes`) it goes on.
pub(crate) fn confirm(question: &str) -> anyhow::Result<bool> {
    use std::io::{IsTerminal as _, Write as _};
    if !std::io::stdin().is_terminal() {
        return Ok(true);
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}
