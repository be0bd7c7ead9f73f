//! `pgext token create` and `pgext login`: read tokens of a private registry for CI jobs, other
//! clients (pgxnclient, through the mirror URL that carries the token) and browsers
//! (`spec/access.md`).

use anyhow::{Context as _, bail};
use clap::Subcommand;
use pgext_spec::token::Scope;

use super::Env;
use crate::auth::{make_token, mirror_url, parse_duration};

#[derive(Subcommand)]
pub(crate) enum Cmd {
    /// Read tokens of a private registry.
    Token {
        #[command(subcommand)]
        command: TokenCmd,
    },
    /// Sign in to a private registry's web site: prints a token and where to paste it.
    Login {
        /// How long the token lives (30d, 12h, 90m).
        #[arg(long, default_value = "12h")]
        expires: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum TokenCmd {
    /// Make a token, signed with your key: the token on the first line, then
    /// `pgxn-mirror URL` (the registry's URL carrying it, for `pgxn --mirror`).
    Create {
        /// A token to read the registry (the only kind there is; say so).
        #[arg(long)]
        read: bool,
        /// How long the token lives (30d, 12h, 90m).
        #[arg(long, default_value = "30d")]
        expires: String,
    },
}

pub(crate) fn run(cmd: Cmd, env: Env) -> anyhow::Result<()> {
    let reg = env.registry()?;
    let origin = reg.log_key()?.name().to_string();
    let id = crate::author::load_identity(env.key.as_deref())?;
    let url = reg
        .urls
        .first()
        .context("the registry has no URL")?
        .trim_end_matches('/')
        .to_string();
    match cmd {
        Cmd::Token {
            command: TokenCmd::Create { read, expires },
        } => {
            if !read {
                bail!("say what the token allows: --read");
            }
            let secs = parse_duration(&expires)?;
            let token = make_token(&id, &origin, &[Scope::Read], secs);
            println!("{token}");
            println!("pgxn-mirror {}", mirror_url(&url, &token));
        }
        Cmd::Login { expires } => {
            let secs = parse_duration(&expires)?;
            let token = make_token(&id, &origin, &[Scope::Read], secs);
            println!("{token}");
            eprintln!(
                "Open {url}/login and paste the token above to sign in as {} (it expires in {expires}).",
                id.user
            );
        }
    }
    Ok(())
}
